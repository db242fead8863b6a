"""Reference-free text scorers: VADER sentiment, keyword coverage, repetition and length.

Words are found with :func:`words`: lowercased runs of Unicode letters, digits and ``_``
(``re.findall(r"\\w+", text.lower())``), so punctuation never glues to a word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmgym.scorers.base import Scorer

_WORD = re.compile(r"\w+")
#: For ASCII text, ``\w`` is ``[A-Za-z0-9_]``: one byte table lowercases word characters and blanks the rest.
_ASCII_WORDS = bytes(c + 32 if chr(c).isupper() and c < 128 else c if re.fullmatch(r"[a-z0-9_]", chr(c)) else 32
                     for c in range(256))


def words(text: str) -> list[str]:
    """Lowercased word tokens of ``text`` (Unicode ``\\w+`` runs)."""
    if text.isascii():  # the same tokens as the regular expression, without it
        return text.encode().translate(_ASCII_WORDS).decode().split()
    return _WORD.findall(text.lower())


class Sentiment(Scorer):
    """VADER compound sentiment of the completion, in [-1, 1] (1 = most positive).

    Uses ``vaderSentiment``'s rule-based analyser (its lexicon ships in the wheel, so nothing
    downloads). The empty completion scores 0 (neutral). The numbers are the library's
    ``polarity_scores(text)["compound"]``, computed by :class:`~lmgym.scorers.vader.VaderCompound`
    (the library's rules, each word context evaluated once).
    """

    name = "sentiment"
    range = (-1.0, 1.0)
    library = "vaderSentiment"
    #: Batches at least this large have their word contexts built together (``VaderCompound.compound_batch``).
    batch_from: int = 4
    _vader: Any = None

    def __call__(self, prompts, completions, references=None, **meta):
        if self._vader is None:
            from lmgym.scorers.vader import VaderCompound

            self._vader = VaderCompound()
        if len(completions) >= self.batch_from:
            return self._vader.compound_batch(completions)
        compound = self._vader.compound
        return [float(compound(c)) for c in completions]

    def score_word_ids(self, batch: Any) -> list[float]:
        """:meth:`__call__` on a :class:`lmgym.word_ids.WordBatch`'s texts, reading its words by id
        (:meth:`~lmgym.scorers.vader.VaderCompound.compound_words`)."""
        if self._vader is None:
            from lmgym.scorers.vader import VaderCompound

            self._vader = VaderCompound()
        return self._vader.compound_words(batch.completions, batch.words, batch.lengths, batch.vocab)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_vader", None)
        return state


class KeywordCoverage(Scorer):
    """Fraction of an example's keywords that appear in the completion, in [0, 1].

    The keywords come per example from the ``keywords`` meta (``keywords=[["dog", "park"], ...]``,
    which tasks pass through ``Example.meta``), or, for every example, from the ``keywords``
    argument. A keyword string of several words (``"ice cream"``) must appear as consecutive
    words; a comma-separated string ``"dog, park"`` counts as the list ``["dog", "park"]``.

    Matching is case-insensitive on :func:`words`. With ``stem=True`` (default) a word also
    matches when its Porter stem equals the keyword's stem (nltk's ``PorterStemmer``, no
    download): ``runs``/``running`` match ``run`` and ``dogs`` matches ``dog``, but irregular
    forms (``ran``) do not. ``stem=False`` asks for the exact word. An example with an empty
    keyword list scores 1 (nothing is missing).

    Args:
        keywords: keywords used for every example when no ``keywords`` meta is given.
        stem: also count inflected forms that share the keyword's Porter stem.
    """

    name = "keyword_coverage"
    library = "lmgym (nltk Porter stemmer)"

    def __init__(self, keywords: Sequence[str] | None = None, stem: bool = True) -> None:
        self.keywords = None if keywords is None else list(keywords)
        self.stem = bool(stem)
        self._stem_cache: dict[str, str] = {}
        self._phrase_cache: dict[str, tuple[str, ...]] = {}

    def _norm(self, word: str) -> str:
        if not self.stem:
            return word
        cached = self._stem_cache.get(word)
        if cached is None:
            if not hasattr(self, "_stemmer"):
                from nltk.stem.porter import PorterStemmer

                self._stemmer = PorterStemmer()
            cached = self._stem_cache[word] = self._stemmer.stem(word)
        return cached

    def _keyword_lists(self, n: int, meta: dict[str, Any]) -> list[Any]:
        given = meta.get("keywords")
        if given is None:
            if self.keywords is None:
                raise ValueError(
                    "keyword_coverage needs keywords: give each example a 'keywords' meta list "
                    "(Example(meta={'keywords': [...]})) or make the scorer with keywords=[...]."
                )
            return [self.keywords] * n
        given = list(given)
        if len(given) != n:
            raise ValueError(f"keyword_coverage got {len(given)} keyword lists for {n} completions.")
        return given

    def _phrases(self, keywords: Any) -> list[tuple[str, ...]]:
        """The non-empty keyword phrases of one example, as tuples of normalised words (each keyword's
        remembered: the same concept words come back in many examples)."""
        cache, phrases = self._phrase_cache, []
        for keyword in keywords.split(",") if isinstance(keywords, str) else keywords:
            phrase = cache.get(keyword) if isinstance(keyword, str) else None
            if phrase is None:
                if not isinstance(keyword, str):
                    raise TypeError(f"keyword_coverage: a keyword must be a string; got {keyword!r} "
                                    f"({type(keyword).__name__}). Give each example a list of words or phrases, "
                                    "e.g. ['dog', 'ice cream'].")
                phrase = tuple(self._norm(w) for w in words(keyword))
                if len(cache) >= 65_536:
                    cache.clear()
                cache[keyword] = phrase
            if phrase:
                phrases.append(phrase)
        return phrases

    def _example_phrases(self, i: int, keywords: Any) -> list[tuple[str, ...]]:
        """:meth:`_phrases` of input ``i``'s keywords, remembered (an example's keywords come back every episode)."""
        if keywords is None:
            raise ValueError(f"keyword_coverage: input {i} has no 'keywords' meta.")
        lists = self.__dict__.setdefault("_lists_cache", {})
        try:
            key = keywords if isinstance(keywords, str) else tuple(keywords) \
                if isinstance(keywords, (list, tuple)) else None
            phrases = None if key is None else lists.get(key)
        except TypeError:  # (keywords that are not strings)
            key = phrases = None
        if phrases is None:
            phrases = self._phrases(keywords)
            if key is not None:
                if len(lists) >= 65_536:
                    lists.clear()
                lists[key] = phrases
        return phrases

    def score_word_ids(self, batch: Any) -> list[float] | None:
        """:meth:`__call__` on a :class:`lmgym.word_ids.WordBatch`'s texts, from its word ids in array operations.

        Each vocabulary word's normalised word (:meth:`_norm` of its one :func:`words` token) is found once; a
        keyword is found where a word of the text has its normalised form. ``None`` (score the texts, which also
        raises for missing keywords) where a word holds several tokens or a keyword several words.
        """
        from lmgym.word_ids import vocab_table

        norm_of, ids, several = vocab_table(self, batch.vocab, self._word_norms)  # (V + 3,) -2: several words
        norms = norm_of[batch.words]  # (B, W); padding and words without tokens: the spare column len(ids) + 1
        if several and np.count_nonzero(norms == -2):
            return None
        B, absent = len(norms), len(ids)  # (a keyword no word of the vocabulary has: a column never set)
        try:
            lists = self._keyword_lists(B, batch.meta)
            phrases = [self._example_phrases(i, k) for i, k in enumerate(lists)]
        except Exception:  # (the texts' path raises the error that names the input)
            return None
        sizes = np.fromiter(map(len, phrases), np.int64, B)
        wanted = [ids.get(p[0], absent) if len(p) == 1 else None for ps in phrases for p in ps]
        if None in wanted:
            return None
        present = np.zeros((B, absent + 2), bool)
        present[np.arange(B)[:, None], norms] = True
        found = np.bincount(np.repeat(np.arange(B), sizes), present[np.repeat(np.arange(B), sizes), wanted], B)
        return np.where(sizes > 0, found / np.maximum(sizes, 1), 1.0).tolist()

    def _word_norms(self, vocab: np.ndarray) -> tuple[np.ndarray, dict[str, int], bool]:
        """Each vocabulary text's normalised word as an id (``-2``: several words; none: the spare id), then three
        spare ids (for the padding of :class:`lmgym.word_ids.WordBatch`); the ids; whether any is ``-2``."""
        found = [words(text) for text in vocab.tolist()]
        ids: dict[str, int] = {}
        for tokens in found:
            if len(tokens) == 1:
                ids.setdefault(self._norm(tokens[0]), len(ids))
        spare = len(ids) + 1
        out = np.full(len(vocab) + 3, spare, np.int64)
        out[: len(vocab)] = [-2 if len(t) > 1 else ids[self._norm(t[0])] if t else spare for t in found]
        return out, ids, any(len(t) > 1 for t in found)

    def __call__(self, prompts, completions, references=None, **meta):
        out = []
        for i, (completion, keywords) in enumerate(zip(completions, self._keyword_lists(len(completions), meta))):
            phrases = self._example_phrases(i, keywords)
            if not phrases:
                out.append(1.0)
                continue
            text = words(completion)
            if self.stem:  # each word's stem, from the cache (the stemmer only for words not seen yet)
                stems = list(map(self._stem_cache.get, text))
                text = [self._norm(w) if t is None else t for w, t in zip(text, stems)] if None in stems else stems
            unigrams = set(text)
            found = 0
            for phrase in phrases:
                if len(phrase) == 1:
                    found += phrase[0] in unigrams
                else:
                    k = len(phrase)
                    found += any(tuple(text[j : j + k]) == phrase for j in range(len(text) - k + 1))
            out.append(found / len(phrases))
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_stemmer", None)
        state["_stem_cache"] = {}
        state["_phrase_cache"] = {}
        state.pop("_lists_cache", None)
        state.pop("_vocab_table", None)
        return state


class Repetition(Scorer):
    """Fraction of repeated word n-grams: ``1 - distinct_n / total_n``, in [0, 1]; lower is better.

    ``"a b a b"`` has bigrams ``ab, ba, ab``: 2 distinct of 3, so 1/3. Text with fewer than ``n``
    words has no n-grams and scores 0. Meant for a negative weight, e.g.
    ``{"sentiment": 1.0, "repetition": -1.0}``.

    Args:
        n: n-gram order (default 2).
    """

    name = "repetition"
    higher_is_better = False

    def __init__(self, n: int = 2) -> None:
        if n < 1:
            raise ValueError(f"repetition needs n >= 1; got {n}.")
        self.n = int(n)

    def __call__(self, prompts, completions, references=None, **meta):
        out = []
        n = self.n
        for completion in completions:
            w = words(completion)
            total = len(w) - n + 1  # the number of n-grams
            out.append(0.0 if total <= 0 else 1.0 - len(set(zip(*(w[k:] for k in range(n))))) / total)
        return out

    def score_word_ids(self, batch: Any) -> np.ndarray | None:
        """:meth:`__call__` on a :class:`lmgym.word_ids.WordBatch`'s texts, from its word ids in array operations.

        Each vocabulary entry's lowercased word tokens are found once: a text's tokens are its words' tokens in
        order (``\\w`` runs never cross the spaces between words). Each n-gram becomes one integer; a row's
        distinct n-grams are counted after sorting. ``None`` (score the texts) where a word in the batch holds
        several tokens, or the n-gram integers would not stay below 2**62.
        """
        from lmgym.word_ids import compact, vocab_table

        token_of, size, several = vocab_table(self, batch.vocab, _one_token_ids)  # (V + 3,) -1: none, -2: several
        n, base = self.n, size + 1
        if base ** n >= 1 << 62:
            return None
        tokens = token_of[batch.words]  # (B, W); the padding ids -1, -2, -3 read -1 (no token)
        if several and np.count_nonzero(tokens == -2):
            return None
        kept = tokens >= 0
        counts = np.count_nonzero(kept, axis=1)
        if not np.array_equal(counts, batch.lengths):  # words without tokens (marks): close the gaps
            tokens = compact(tokens, kept, -1)
        total = counts - n + 1  # n-grams per text
        G = tokens.shape[1] - n + 1  # n-gram places per row
        if G <= 0:
            return np.zeros(len(counts))
        keys = tokens[:, :G].copy()
        for k in range(1, n):
            keys *= base
            keys += tokens[:, k : G + k]
        beyond = base ** n  # above every n-gram's integer: the places past a text's last n-gram
        keys[np.arange(G) >= total[:, None]] = beyond
        keys.sort(axis=1)
        # Distinct n-grams: the first, and each change of value, less the change into the padding (where there is).
        distinct = np.count_nonzero(keys[:, 1:] != keys[:, :-1], axis=1) + 1 - (total < G)
        return np.where(total > 0, 1.0 - distinct / np.maximum(total, 1), 0.0)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_vocab_table", None)  # rebuilt on use
        return state


class Length(Scorer):
    """Closeness of the completion's word count to a target length, in [0, 1].

    ``score = max(0, 1 - |words - target| / target)``: 1 at the target, 0 at zero words or at
    twice the target. The target is ``target`` words if given, otherwise ``ratio`` times the
    length of each reference (the best reference counts). A target of 0 words scores 1 for the
    empty completion and 0 otherwise.

    Args:
        target: target length in words, the same for every example.
        ratio: target as a multiple of the reference length (default 1.0 when ``target`` is
            not given).
    """

    name = "length"

    def __init__(self, target: int | None = None, ratio: float | None = None) -> None:
        if target is not None and ratio is not None:
            raise ValueError("length takes target= (words) or ratio= (times the reference length), not both.")
        if target is not None and target < 0:
            raise ValueError(f"length target must be >= 0; got {target}.")
        if ratio is not None and ratio < 0:
            raise ValueError(f"length ratio must be >= 0; got {ratio}.")
        self.target = target
        self.ratio = 1.0 if target is None and ratio is None else ratio

    def _word_count(self, reference: str) -> int:
        """``len(words(reference))``, remembered (references come back every episode)."""
        counts = self.__dict__.setdefault("_counts", {})
        n = counts.get(reference)
        if n is None:
            if len(counts) >= 65_536:
                counts.clear()
            n = counts[reference] = len(words(reference))
        return n

    @staticmethod
    def closeness(length: int, target: float) -> float:
        """``max(0, 1 - |length - target| / target)``; for target 0, 1 if length is 0 else 0."""
        if target <= 0:
            return float(length == 0)
        return max(0.0, 1.0 - abs(length - target) / target)

    def __call__(self, prompts, completions, references=None, **meta):
        out = []
        for i, completion in enumerate(completions):
            n = len(words(completion))
            if self.target is not None:
                out.append(self.closeness(n, self.target))
                continue
            if references is None or not references[i]:
                raise ValueError(
                    "length with ratio= compares with the reference length, but input "
                    f"{i} has no references; pass target= (words) instead."
                )
            refs = [references[i]] if isinstance(references[i], str) else references[i]
            out.append(max(self.closeness(n, self.ratio * self._word_count(r)) for r in refs))
        return out


def _one_token_ids(vocab: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Each vocabulary text's word token (:func:`words`) as an id, ``-1`` for none and ``-2`` for several, then
    three entries ``-1`` (for the padding ids of :class:`lmgym.word_ids.WordBatch`); the number of ids; whether any
    is ``-2``."""
    ids: dict[str, int] = {}
    out = np.full(len(vocab) + 3, -1, np.int64)
    for i, text in enumerate(vocab.tolist()):
        tokens = words(text)
        out[i] = -2 if len(tokens) > 1 else ids.setdefault(tokens[0], len(ids)) if tokens else -1
    return out, len(ids), bool(np.count_nonzero(out == -2))
