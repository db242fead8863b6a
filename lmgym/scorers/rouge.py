"""ROUGE F-measures computed as ``rouge-score`` computes them, from memoised token ids.

``rouge_score.rouge_scorer.RougeScorer`` re-tokenises and re-stems both texts on every call and
finds the longest common subsequence (LCS) with a pure-Python table of ``len(a) * len(b)`` cells.
In RL the references are the same few texts over and over, so :class:`RougeCalculator`

1. tokenises each distinct text once, the way rouge-score's tokenizer does, with its regular
   expressions and Porter stemmer (each distinct word stemmed once), and keeps the tokens as
   integer ids and, per id, a bit mask of its positions;
2. counts n-gram overlaps on those ids with rouge-score's formulas, in its order of operations,
   looking only at the prediction's n-grams made of tokens the target has (the others add nothing),
   and reading an n-gram's count in the target off the masks (its first token's positions that the
   next tokens follow);
3. finds LCS lengths with the bit-parallel algorithm (Allison & Dix 1986, Hyyrö 2004): one pass
   over the prediction tokens that occur in the target, with Python integers as bit vectors,
   instead of ``len(a) * len(b)`` table cells.

ROUGE-Lsum needs the LCS itself (its union over sentences), so it builds rouge-score's table,
one row per NumPy operation, and backtracks it with rouge-score's tie-breaking.

Every value equals rouge-score's to 1e-9 (``tests/test_scorers_equality.py`` checks thousands
of random and real texts; in practice they are bit-identical).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import compress
from typing import Any

import numpy as np

#: ROUGE-N types and their n (rouge-score accepts rouge1 .. rouge9).
_ROUGE_ORDERS = {f"rouge{n}": n for n in range(1, 10)}
#: For ASCII text, rouge-score's ``lower()`` then ``NON_ALPHANUM_RE.sub(" ", ...)`` (before splitting) as one
#: byte table: A-Z -> a-z, a-z and 0-9 kept, anything else -> a space.
_ASCII_WORDS = bytes(c if re.fullmatch(r"[a-z0-9]", chr(c)) else c + 32 if re.fullmatch(r"[A-Z]", chr(c)) else 32
                     for c in range(256))


def fmeasure(precision: float, recall: float) -> float:
    """rouge-score's F1 of a precision and a recall (0 when both are 0)."""
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def lcs_length(masks: dict[int, int], m: int, seq: Iterable[int]) -> int:
    """Length of the LCS of a length-``m`` sequence ``a`` (given as ``masks``) and ``seq``.

    Args:
        masks: for each id in ``a``, the integer whose bit ``i`` is set where ``a[i]`` is that id.
        m: ``len(a)``.
        seq: the other sequence.

    Bit ``i`` of ``v`` is 0 where row ``i`` of the LCS table steps up; the LCS length is the
    number of zero bits after the last column. A token absent from ``a`` leaves ``v`` as it is.
    """
    full = (1 << m) - 1
    v = full
    get = masks.get
    for c in seq:
        match = get(c)
        if match:
            u = v & match
            v = ((v + u) | (v - u)) & full
    return m - bin(v).count("1")


def lcs_table(ref: Sequence[int], can: Sequence[int]) -> np.ndarray:
    """rouge-score's LCS table, ``(len(ref) + 1, len(can) + 1)``, one NumPy row at a time.

    Cell ``[i, j]`` is the LCS length of ``ref[:i]`` and ``can[:j]``. Row ``i`` is the running
    maximum of ``table[i-1, j-1] + 1`` where ``ref[i-1] == can[j-1]`` and ``table[i-1, j]``
    elsewhere (a row grows by at most one over the row above, so this equals the usual recurrence).
    """
    table = np.zeros((len(ref) + 1, len(can) + 1), dtype=np.int64)
    can_arr = np.asarray(can, dtype=np.int64)
    for i, r in enumerate(ref, start=1):
        prev = table[i - 1]
        step = prev.copy()
        step[1:] = np.where(can_arr == r, prev[:-1] + 1, prev[1:])
        np.maximum.accumulate(step, out=table[i])
    return table


def lcs_indices(ref: Sequence[int], can: Sequence[int]) -> list[int]:
    """Indices into ``ref`` of one LCS of ``ref`` and ``can``: the one rouge-score's backtrack reads."""
    t = lcs_table(ref, can).tolist()
    i, j, out = len(ref), len(can), []
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            out.append(i - 1)
            i -= 1
            j -= 1
        elif t[i][j - 1] > t[i - 1][j]:
            j -= 1
        else:
            i -= 1
    out.reverse()
    return out


class _Text:
    """One text's token ids and what is derived from them on first use (position masks, sentences)."""

    __slots__ = ("_masks", "ids", "sentences")

    def __init__(self, ids: tuple[int, ...]) -> None:
        self.ids = ids
        self._masks: dict[int, int] | None = None
        self.sentences: list[tuple[int, ...]] | None = None

    @property
    def masks(self) -> dict[int, int]:
        """For each id, the bit mask of its positions (the LCS's match vectors)."""
        if self._masks is None:
            masks: dict[int, int] = {}
            get = masks.get
            for i, c in enumerate(self.ids):
                masks[c] = get(c, 0) | (1 << i)
            self._masks = masks
        return self._masks


def _count(items: Iterable[Any]) -> dict[Any, int]:
    """``{item: count}`` (a plain dict: cheaper than a ``Counter`` for the few items of one text)."""
    counts: dict[Any, int] = {}
    get = counts.get
    for item in items:
        counts[item] = get(item, 0) + 1
    return counts


class RougeCalculator:
    """ROUGE F-measures of (target, prediction) pairs, equal to ``rouge-score``'s, with memoised texts.

    Tokens are rouge-score's ``tokenize.tokenize(text, stemmer)``: the text lowercased, runs of
    characters other than ``[a-z0-9]`` replaced by a space (the library's own regular
    expression), split, words longer than 3 letters Porter-stemmed (the library's stemmer) and
    tokens not matching ``^[a-z0-9]+$`` dropped. The per-word steps run once per distinct
    word, the rest once per distinct text.

    Args:
        use_stemmer: as ``RougeScorer(use_stemmer=...)``: Porter-stem words longer than 3 letters.
        maxsize: the most texts kept; all memos are emptied when it is full (references come
            back on their next use, at the cost of one tokenisation).

    Example:
        >>> calc = RougeCalculator()
        >>> calc.fmeasures("the cat sat", "the cats sat down", ["rouge1", "rouge2", "rougeL"])
        [0.8571428571428571, 0.8, 0.8571428571428571]
    """

    def __init__(self, use_stemmer: bool = True, maxsize: int = 65_536) -> None:
        from rouge_score import tokenize, tokenizers

        self._stemmer = tokenizers.DefaultTokenizer(use_stemmer=use_stemmer)._stemmer
        self._non_alphanum = tokenize.NON_ALPHANUM_RE
        self._valid = tokenize.VALID_TOKEN_RE
        self.maxsize = int(maxsize)
        self._reset()

    def _reset(self) -> None:
        self._texts: dict[str, _Text] = {}
        self._word_ids: dict[str, int] = {}  # raw word -> token id, or -1 for a dropped token
        self._byte_ids: dict[bytes, int] = {}  # the same for ASCII words, as bytes
        self._ids: dict[str, int] = {}  # token (stemmed) -> id

    def _word_id(self, word: str) -> int:
        token = self._stemmer.stem(word) if self._stemmer is not None and len(word) > 3 else word
        i = self._ids.setdefault(token, len(self._ids)) if self._valid.match(token) else -1
        self._word_ids[word] = i
        return i

    def token_ids(self, text: str) -> tuple[int, ...]:
        """rouge-score's tokens of ``text``, as ids (equal tokens, equal ids)."""
        if text.isascii():  # the library's lower() and [^a-z0-9]+ -> " " are one byte table for ASCII text
            words = text.encode().translate(_ASCII_WORDS).split()
            ids = list(map(self._byte_ids.get, words))
            if None in ids:
                ids = [self._byte_id(w) if i is None else i for w, i in zip(words, ids)]
        else:
            words = self._non_alphanum.sub(" ", text.lower()).split()
            ids = list(map(self._word_ids.get, words))
            if None in ids:
                ids = [self._word_id(w) if i is None else i for w, i in zip(words, ids)]
        return tuple(filter((-1).__ne__, ids)) if -1 in ids else tuple(ids)

    def _byte_id(self, word: bytes) -> int:
        text = word.decode()
        i = self._word_ids.get(text)
        self._byte_ids[word] = i = self._word_id(text) if i is None else i
        return i

    def text(self, text: str) -> _Text:
        """The memoised tokens (as ids) of ``text``."""
        entry = self._texts.get(text)
        if entry is None:
            entry = self._texts[text] = _Text(self.token_ids(text))
        return entry

    def _sentences(self, entry: _Text, text: str) -> list[tuple[int, ...]]:
        if entry.sentences is None:  # rouge-score: newline-separated, empty strings dropped
            entry.sentences = [self.token_ids(s) for s in text.split("\n") if len(s)]
        return entry.sentences

    def fmeasures(self, target: str, prediction: str, rouge_types: Sequence[str]) -> list[float]:
        """F-measures of ``rouge_types`` (``rouge1`` .. ``rouge9``, ``rougeL``, ``rougeLsum``) of one pair."""
        if len(self._texts) >= self.maxsize or len(self._word_ids) >= 4 * self.maxsize:
            self._reset()  # between pairs, so both texts' ids come from one mapping
        t, p = self.text(target), self.text(prediction)
        if "rougeLsum" not in rouge_types:
            return _pair_fmeasures(t, p, rouge_types)
        return [summary_level_lcs(self._sentences(t, target), self._sentences(p, prediction))
                if rouge_type == "rougeLsum" else _pair_fmeasures(t, p, [rouge_type])[0] for rouge_type in rouge_types]


def _pair_fmeasures(target: _Text, prediction: _Text, rouge_types: Sequence[str]) -> list[float]:
    """F-measures of ``rouge1`` .. ``rouge9`` and ``rougeL`` of one pair of tokenised texts.

    Only prediction tokens that occur in the target can match (in an n-gram or in the LCS), so their
    positions are picked out once; an n-gram can only match where n of them stand in a row. The target
    is read through its position masks only: an n-gram's count in it is the number of positions where
    its first token's mask and the next tokens' masks, shifted back, all have a bit.
    """
    out = []
    masks, ids = target.masks, prediction.ids
    at = list(compress(range(len(ids)), map(masks.__contains__, ids)))  # positions of tokens the target has
    found = [ids[j] for j in at]
    for rouge_type in rouge_types:
        if rouge_type == "rougeL":
            m, n = len(target.ids), len(ids)
            lcs = lcs_length(masks, m, found) if m and n else 0  # other tokens leave the LCS vector as it is
            out.append(fmeasure(lcs / n, lcs / m) if m and n else 0.0)
            continue
        n = _ROUGE_ORDERS.get(rouge_type)
        if n is None:
            raise ValueError(f"Invalid rouge type: {rouge_type!r}")
        inter = 0  # sum over the prediction's n-grams of min(count in the prediction, count in the target)
        if n == 1:
            for token, count in _count(found).items():
                other = masks[token].bit_count()
                inter += count if count < other else other
        else:
            where = set(at)
            grams = [ids[j : j + n] for j in at if all(j + k in where for k in range(1, n))]
            for gram, count in _count(grams).items():
                bits = masks[gram[0]]
                for k in range(1, n):
                    bits &= masks[gram[k]] >> k
                other = bits.bit_count()
                inter += count if count < other else other
        precision = inter / max(len(ids) - n + 1, 1)  # rouge-score: its n-gram count, at least 1
        recall = inter / max(len(target.ids) - n + 1, 1)
        out.append(fmeasure(precision, recall))
    return out


def summary_level_lcs(ref_sents: list[tuple[int, ...]], can_sents: list[tuple[int, ...]]) -> float:
    """rouge-score's ``_summary_level_lcs`` F-measure (ROUGE-Lsum) of tokenised sentences."""
    if not ref_sents or not can_sents:
        return 0.0
    m = sum(map(len, ref_sents))
    n = sum(map(len, can_sents))
    if not n or not m:
        return 0.0
    counts_r: Counter = Counter()
    counts_c: Counter = Counter()
    for s in ref_sents:
        counts_r.update(s)
    for s in can_sents:
        counts_c.update(s)
    hits = 0
    for r in ref_sents:
        union = sorted(set().union(*(lcs_indices(r, c) for c in can_sents)))
        for tok in (r[i] for i in union):  # each token counts at most as often as both texts have it
            if counts_c[tok] > 0 and counts_r[tok] > 0:
                hits += 1
                counts_c[tok] -= 1
                counts_r[tok] -= 1
    return fmeasure(hits / n, hits / m)
