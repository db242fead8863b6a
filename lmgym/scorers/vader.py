"""VADER's compound sentiment, computed with vaderSentiment's own rules and remembered per word context.

``SentimentIntensityAnalyzer.polarity_scores(text)`` walks the text one character at a time (emoji
replacement) and, for every word, rebuilds the lowercased word list several times (its negation and
idiom checks). Yet the valence it gives one word, before the text-wide "but" rule, depends only on

- the word itself, and whether the text mixes ALL-CAPS words with others (``allcap_differential``);
- at most three words before it and two after it (no rule looks further), and which of those exist;
- of each such neighbour, only what a rule can see of it at that place: before the word, a word that some
  rule names (a negation, a booster, a word of an idiom, "no", "least", "kind", ...) counts as itself and
  any other word only as "in the lexicon" or "not"; after it, only "of", idiom words and (next word)
  lexicon membership count.

Words outside the lexicon always get 0. So :class:`VaderCompound` scores a text as ``polarity_scores``
does, step by step, with the library's functions: the words are ``SentiText``'s (each distinct token
stripped once); each lexicon word's valence comes from the library's ``sentiment_valence`` run once per
distinct context (the word, its neighbours reduced to what the rules see, the caps flag) and then
remembered; the library's ``_but_check`` and the compound lines of ``score_valence`` (its
``_punctuation_emphasis`` and ``normalize``, rounded to 4 decimals) finish. Texts with an emoji character go
to ``polarity_scores`` itself. The values equal ``polarity_scores(text)["compound"]`` exactly
(``tests/test_scorers_fast_paths.py`` compares thousands of random and real texts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain, compress
from operator import and_, itemgetter
from types import SimpleNamespace
from typing import Any

import numpy as np

from lmgym.scorers.base import _PLAIN_SUM

_min = np.minimum.reduce


class VaderCompound:
    """``SentimentIntensityAnalyzer().polarity_scores(text)["compound"]``, with memoised word contexts.

    Args:
        maxsize: the most texts, tokens and word contexts each memo keeps (a full memo is emptied).

    Example:
        >>> vader = VaderCompound()
        >>> vader.compound("The food was good, but the service was NOT great!")
        -0.5835
    """

    def __init__(self, maxsize: int = 65_536) -> None:
        from vaderSentiment import vaderSentiment as vs

        self.analyzer = vs.SentimentIntensityAnalyzer()
        self.maxsize = int(maxsize)
        self._boosters = vs.BOOSTER_DICT
        self._normalize = vs.normalize
        self._strip = vs.SentiText._strip_punc_if_word
        # polarity_scores replaces a character found in the emoji lexicon; only one-character keys can match.
        self._emoji_chars = frozenset(k for k in self.analyzer.emojis if len(k) == 1)
        self._ascii_safe = all(not c.isascii() for c in self._emoji_chars)  # an ASCII text then has no emoji
        # Words some rule names (lowercase); any other neighbour is seen only as in or out of the lexicon.
        named = {*vs.NEGATE, *RULE_WORDS}
        for phrase in (*vs.BOOSTER_DICT, *vs.SPECIAL_CASES):  # (its SENTIMENT_LADEN_IDIOMS check is never run)
            named.update(phrase.split())
        self._named = frozenset(named)
        # The words of its phrases of several words (idioms, "kind of"...): rules only look them up joined with
        # their neighbours. Some are named for nothing else (e.g. "the"); in a text where no two of these words
        # follow each other no phrase can match, and those words are seen as plain words.
        # "at" counts only right before "least" (its "least" rule): a phrase here too. "kind" and "of" count only
        # as "kind of", a phrase.
        phrases = [p.split() for p in (*vs.BOOSTER_DICT, *vs.SPECIAL_CASES, "at least")]
        self._phrase_words = frozenset(w for p in phrases if len(p) > 1 for w in p)
        single = {p[0] for p in phrases if len(p) == 1}
        rules = set(RULE_WORDS) - {"at", "kind", "of"}
        self._phrase_only = frozenset(self._phrase_words - {*vs.NEGATE, *rules, *single})
        # Three before a word, in a text without phrases, rules read a word only as "no", "never", "without", a
        # negation or a booster (else only whether it is in the lexicon).
        self._far = frozenset({"no", "never", "without", *vs.NEGATE, *single})
        # After a word, rules read less: the next word as "of" ("kind of"), as in or out of the lexicon ("no")
        # or as the 2nd word of an idiom; the one after that only as the 3rd word of an idiom.
        idioms = [phrase.split() for phrase in vs.SPECIAL_CASES]
        self._second = frozenset({"of", *(p[1] for p in idioms if len(p) > 1)})
        self._third = frozenset(p[2] for p in idioms if len(p) > 2)
        lexicon = self.analyzer.lexicon
        self._in_lexicon = min(w for w in lexicon if self._plain(w) and w == w.lower() and w.isalpha())
        self._outside = "<w>"
        assert self._outside not in lexicon and self._plain(self._outside)
        # Lexicon words whose valence can be zero before the neighbour rules run ("no" before a lexicon word, or a
        # zero entry): for them a neighbour outside the lexicon (valence + 0.0) may flip the sign of a zero, so
        # their contexts keep every neighbour's lexicon membership.
        self._exact = frozenset({"no", *(w for w, v in lexicon.items() if v == 0)})
        self._texts: dict[str, float] = {}
        # raw token -> its views (indexed by the names below): SentiText's word, what rules see of it before a word,
        # right after it and two after it, whether it is a lexicon word, what rules see of it one or two before a
        # word and right after a word (for a word not in ``_exact``), whether it is in ``_exact``, whether it is a
        # phrase word, and what rules see of it three before a word and one or two before it in a text without phrases
        self._tokens: dict[str, tuple[Any, ...]] = {}
        self._contexts: dict[tuple[Any, ...], Any] = {}  # (word, before, after, caps) -> valence
        # For the batch passes (compound_batch, compound_words): view -> symbol id, raw token -> row of the token
        # table, a context of symbol ids (packed into one int, or a tuple) -> valence.
        self._symbols: dict[str, int] = {}
        self._symbol_views: list[str] = []
        self._rows: dict[str, int] = {}
        self._table = np.zeros((256, _FLAGS + 6), np.int64)
        self._table[_PAD_ROW, :_FLAGS] = -1  # the pad row: no word (every view -1, no flag)
        self._int_contexts: dict[int | tuple[int, ...], Any] = {}
        self._alone = np.zeros(0)  # 2 * symbol + caps flag -> the valence of that word alone (NaN: not known yet)
        self._vocab_rows: tuple[np.ndarray, np.ndarray] | None = None  # (vocab, its words' rows): compound_words
        self._warmed: np.ndarray | None = None  # the vocabulary whose contexts _warm evaluated

    def _plain(self, word: str) -> bool:
        """Whether no rule names ``word`` (so as a neighbour only its lexicon membership counts)."""
        lower = word.lower()
        return lower not in self._named and "n't" not in lower

    def _token(self, raw: str) -> tuple[Any, ...]:
        word = self._strip(raw)
        lower = word.lower()
        listed = lower in self.analyzer.lexicon
        kind = self._in_lexicon if listed else self._outside
        plain = self._plain(word)
        free = plain or lower in self._phrase_only  # plain in a text without phrases
        far = lower in self._far or "n't" in lower  # read by a rule three before a word, in a text without phrases
        entry = self._tokens[raw] = (word, kind if plain else word,
                                     word if lower in self._second else kind,
                                     word if lower in self._third else self._outside, listed,
                                     self._outside if plain else word,
                                     word if lower in self._second else self._outside, lower in self._exact,
                                     lower in self._phrase_words, word if far else kind,
                                     self._outside if free else word)
        return entry

    def compound(self, text: str) -> float:
        """VADER's compound score of ``text``, in [-1, 1] (rounded to 4 decimals, as the library does)."""
        value = self._texts.get(text)
        if value is None:
            if len(self._texts) >= self.maxsize:
                self._texts.clear()
            value = self._texts[text] = self._compound(text)
        return value

    def _compound(self, text: str) -> float:
        if not (self._ascii_safe and text.isascii()) and not self._emoji_chars.isdisjoint(text):
            return self.analyzer.polarity_scores(text)["compound"]
        text = text.strip()  # what polarity_scores keeps of an emoji-free text
        if len(self._tokens) >= self.maxsize or len(self._contexts) >= self.maxsize:
            self._tokens.clear()
            self._contexts.clear()
        pieces = text.split()
        entries = list(map(self._tokens.get, pieces))
        if None in entries:
            token = self._token
            entries = [token(w) if e is None else e for w, e in zip(pieces, entries)]
        words = list(map(itemgetter(_WORD), entries))
        n = len(words)
        # The library's allcap_differential: some, but not all, words are ALL CAPS.
        is_cap_diff = 0 < n - sum(map(str.isupper, words)) < n
        contexts = self._contexts
        sentiments: list[Any] = [0] * n  # boosters, "kind of" and words outside the lexicon: the library's int 0
        phrase = list(map(itemgetter(_PHRASE), entries))
        free = sum(phrase) < 2 or not any(map(and_, phrase, phrase[1:]))  # no two phrase words in a row: no phrase
        seen_at, near_at = (_SEEN_FREE, _NEAR_FREE) if free else (_SEEN, _NEAR)
        for i in compress(range(n), map(itemgetter(_LISTED), entries)):  # the lexicon words
            if entries[i][_EXACT]:  # every neighbour as a rule could see it
                after = (entries[i + 1][_NEXT], entries[i + 2][_THIRD]) if i + 2 < n else \
                    (entries[i + 1][_NEXT],) if i + 1 < n else ()
                key = (words[i], tuple(e[_SEEN] for e in entries[max(i - 3, 0) : i]), after, is_cap_diff)
            else:
                # A plain word one or two before it, or right after it, changes nothing whether or not it is in
                # the lexicon (no rule names it, and outside the lexicon it adds a booster value of 0.0 and
                # negates nothing); three before it, its membership decides whether the idiom rules run. After
                # it, only phrases (idioms, "kind of") read words, and a text without phrases has none.
                if free:
                    after = _NOTHING_AFTER[n - 1 - i if i + 2 >= n else 2]
                else:
                    after = (entries[i + 1][_NEXT_PLAIN], entries[i + 2][_THIRD]) if i + 2 < n else \
                        (entries[i + 1][_NEXT_PLAIN],) if i + 1 < n else ()
                before = (entries[i - 3][seen_at], entries[i - 2][near_at], entries[i - 1][near_at]) if i > 2 else \
                    tuple(e[near_at] for e in entries[:i])
                key = (words[i], before, after, is_cap_diff)
            valence = contexts.get(key)
            if valence is None:
                valence = contexts[key] = self._valence(key)
            sentiments[i] = valence
        if "but" in text.lower():  # (else no word is "but", and the library's "but" rule changes nothing)
            sentiments = self.analyzer._but_check(words, sentiments)
        # The compound part of the library's score_valence (its pos/neu/neg parts are not needed here).
        if not sentiments:
            return 0.0
        sum_s = float(sum(sentiments))
        # (Without "!" or "?" the library's emphasis is 0.0, which changes no sum.)
        emphasis = self.analyzer._punctuation_emphasis(text) if "!" in text or "?" in text else 0.0
        if sum_s > 0:
            sum_s += emphasis
        elif sum_s < 0:
            sum_s -= emphasis
        return round(self._normalize(sum_s), 4)

    # ---- many texts in one array pass ------------------------------------------------------------
    def compound_batch(self, texts: Sequence[str]) -> list[float]:
        """:meth:`compound` of every text, the same numbers; the word contexts of all texts are built together.

        Every text's tokens become rows of a table of their views (as symbol ids); each lexicon word's context
        is read from the rows around it with array operations, as :meth:`_compound` reads it, and looked up
        (an unseen context runs the library once, as there). Each text's valences are summed in its order.
        A text with the word "but" gets the library's "but" rule on its valences; a text with an emoji takes
        :meth:`_compound`.
        """
        return self._remembered(texts, lambda todo: self._compound_many([texts[k] for k in todo]))

    def _remembered(self, texts: Sequence[str], score: Callable[[list[int]], list[float]]) -> list[float]:
        """Each text's remembered value; ``score(todo)`` gives those of the texts at ``todo`` (not remembered yet),
        which are then remembered."""
        out: list[Any] = list(map(self._texts.get, texts))
        todo = [k for k, v in enumerate(out) if v is None]
        if not todo:
            return out
        memo = self._texts
        for k, value in zip(todo, score(todo)):
            if len(memo) >= self.maxsize:
                memo.clear()
            out[k] = memo[texts[k]] = value
        return out

    def _symbol(self, view: str) -> int:
        sid = self._symbols.get(view)
        if sid is None:
            sid = self._symbols[view] = len(self._symbol_views)
            self._symbol_views.append(view)
        return sid

    def _row(self, raw: str) -> int:
        """``raw``'s row in the token table: its views as symbol ids (``_COLUMNS``), the outside symbol and its flags
        (listed, exact, phrase, upper, "but", marked)."""
        k = self._rows.get(raw)  # (a token seen earlier in the same batch)
        if k is not None:
            return k
        entry = self._tokens.get(raw) or self._token(raw)
        word = entry[_WORD]
        row = [*map(self._symbol, itemgetter(*_COLUMNS)(entry)), self._symbol(self._outside), entry[_LISTED],
               entry[_EXACT], entry[_PHRASE], word.isupper(), word.lower() == "but",
               "!" in raw or "?" in raw or not self._emoji_chars.isdisjoint(raw)]
        k = self._rows[raw] = len(self._rows) + 1  # (row 0 is the pad row)
        if k == len(self._table):
            self._table = np.concatenate([self._table, np.zeros_like(self._table)])
        self._table[k] = row
        return k

    def compound_words(self, texts: Sequence[str], words: np.ndarray, lengths: np.ndarray,
                       vocab: np.ndarray) -> list[float]:
        """:meth:`compound_batch` of ``texts``, where ``texts[i]`` is ``" ".join(vocab[words[i, :lengths[i]]])``.

        ``words`` ``(B, W)`` holds each text's words as indices into ``vocab`` (texts without whitespace), then
        negative padding (:class:`lmgym.word_ids.WordBatch`). The same numbers as :meth:`compound_batch`: its
        token table's rows are looked up by word id (each word's row found once) instead of splitting the texts.
        """
        return self._remembered(texts, lambda todo: self._compound_word_rows(texts, todo, words, lengths, vocab))

    def _compound_word_rows(self, texts: Sequence[str], todo: list[int], words: np.ndarray, lengths: np.ndarray,
                            vocab: np.ndarray) -> list[float]:
        """The compound scores of ``texts`` at ``todo`` (:meth:`compound_words`' arguments)."""
        self._trim()
        if self._vocab_rows is None or self._vocab_rows[0] is not vocab:
            # (V + 3,) each word's row of the token table (-1: not found yet); the padding ids -1, -2, -3 of
            # ``words`` read the last three entries: the pad row.
            self._vocab_rows = (vocab, np.concatenate([np.full(len(vocab), -1, np.int64), np.full(3, _PAD_ROW)]))
            if self._warmed is not vocab:
                self._warmed = vocab
                self._warm(vocab.tolist())
        row_of = self._vocab_rows[1]
        if len(todo) < len(texts):
            words, lengths = words[todo], lengths[todo]
        rows = row_of[words]  # (B, W) the pieces _compound_many splits, as rows, then the pad row
        if rows.size and _min(rows, axis=None) < 0:
            for w in np.unique(words[rows < 0]).tolist():
                row_of[w] = self._row(vocab[w])
            rows = row_of[words]
        return self._compound_rows([texts[k] for k in todo], rows, np.asarray(lengths, np.int64))

    #: The most texts :meth:`_warm` scores for one vocabulary (a larger vocabulary is not warmed).
    warm_texts: int = 30_000

    def _warm(self, vocab: list[str]) -> None:
        """Evaluate ahead the contexts that the vocabulary's lexicon words form with one rule word before them.

        Text over a word vocabulary is full of them ("not good", "so happy", "very bad"), and each new context costs
        a library call (~20 us). For every lexicon word ``L`` and every word ``N`` some rule names (both from
        ``vocab``), ``N`` goes 1, 2 or 3 words before ``L``, with a plain word outside the lexicon in the other places
        (or a lexicon word 3 before), at the start of the text or after 1-2 such words, and ``L`` is followed by 0-2
        of them. These texts are scored as any others (:meth:`_compound_rows`), which remembers their contexts.
        """
        lexicon = self.analyzer.lexicon
        words = [w for w in dict.fromkeys(vocab) if w and w.split() == [w]]
        plain = [w for w in words if self._plain(w) and w.lower() not in self._phrase_words and w == w.lower()
                 and "!" not in w and "?" not in w and self._emoji_chars.isdisjoint(w)]
        filler = next((w for w in plain if w.lower() not in lexicon), None)
        inside = next((w for w in plain if w.lower() in lexicon and w.lower() not in self._exact), None)
        listed = [w for w in words if w.lower() in lexicon]
        named = [w for w in words if not self._plain(w)]
        if filler is None or not listed or not named:
            return
        F, third = filler, [filler] if inside is None else [filler, inside]
        shapes = []  # the 1-3 words before L, None where N goes (d words before L)
        for before in (1, 2, 3):
            for d in range(1, before + 1):
                for first in (third if before == 3 and d < 3 else [F]):
                    shape = [first, *[F] * (before - 1)]
                    shape[before - d] = None
                    shapes.append(shape)
        if len(listed) * len(named) * len(shapes) * 3 > self.warm_texts:
            return
        texts = [[*(n if w is None else w for w in shape), item, *[F] * after]
                 for item in listed for n in named for shape in shapes for after in range(3)]
        for start in range(0, len(texts), 2048):
            chunk = texts[start : start + 2048]
            rows = [self._rows.get(w) or self._row(w) for t in chunk for w in t]
            counts = np.fromiter(map(len, chunk), np.int64, len(chunk))
            self._compound_rows([" ".join(t) for t in chunk], _rows_2d(rows, counts), counts)

    def _trim(self) -> None:
        """Empty the token table and the context memos where one is full."""
        if len(self._rows) >= self.maxsize or len(self._int_contexts) >= self.maxsize or \
                len(self._tokens) >= self.maxsize or len(self._contexts) >= self.maxsize:
            self._tokens.clear()
            self._contexts.clear()
            self._rows.clear()
            self._int_contexts.clear()
            self._symbols.clear()
            self._symbol_views.clear()
            self._vocab_rows = None
            self._alone = np.zeros(0)

    def _compound_many(self, texts: list[str]) -> list[float]:
        self._trim()
        pieces = [t.split() for t in texts]  # (the pieces of the stripped text: what _compound splits)
        flat = list(chain.from_iterable(pieces))
        rows = list(map(self._rows.get, flat))
        if None in rows:
            rows = [self._row(w) if r is None else r for w, r in zip(flat, rows)]
        counts = np.fromiter(map(len, pieces), np.int64, len(texts))
        return self._compound_rows(texts, _rows_2d(rows, counts), counts)

    def _compound_rows(self, texts: Sequence[str], rows: np.ndarray, counts: np.ndarray) -> list[float]:
        """The compound scores of ``texts``: ``rows`` ``(B, W)`` holds each one's pieces as rows of the token table,
        then the pad row; ``counts`` ``(B,)`` the pieces per text."""
        B, W = rows.shape
        flags = self._table[rows, _FLAGS:]  # (B, W, 6): listed, exact, phrase, upper, "but", marked
        upper = flags[:, :, _UPPER_FLAG].sum(1)
        caps = (upper > 0) & (upper < counts)  # (B,) the library's allcap_differential
        phrase = flags[:, :, _PHRASE_FLAG]
        free = ~(phrase[:, 1:] & phrase[:, :-1]).any(1)  # (B,) no two phrase words in a row (pads are none)
        b, i = np.nonzero(flags[:, :, _LISTED_FLAG])  # the lexicon words (K of them): text, place
        exact = flags[b, i, _EXACT_FLAG].astype(bool)
        # The words 3, 2, 1 before and 1, 2 after each lexicon word, each seen as _compound reads it: exact words
        # see every neighbour; other words in a text without phrases see less (and after them only whether a word
        # is there); the pad row's views are -1 (no word there).
        columns = np.where(exact[:, None], _EXACT_VIEWS, np.where(free[b][:, None], _FREE_VIEWS, _PHRASE_VIEWS))
        padded = np.zeros((B, W + 5), np.int64)  # _PAD_ROW around each text
        padded[:, 3 : W + 3] = rows
        around = self._table[padded[b[:, None], i[:, None] + _AROUND], columns]  # (K, 5)
        outside, inside = self._symbol(self._outside), self._symbol(self._in_lexicon)
        # Only plain neighbours (outside the lexicon, or in it three before): the valence is the word's own, as
        # in a text of that word alone (no rule fires; a plain word adds 0.0 to a non-zero valence at most).
        plain = (around == outside) | (around < 0)
        alone = ~exact & plain[:, 1:].all(1) & (plain[:, 0] | (around[:, 0] == inside))
        item, cap = self._table[rows[b, i], 0], caps[b]
        # A word alone: its valence by symbol (and caps flag) from an array; the others from the context memo.
        if len(self._alone) < 2 * len(self._symbol_views):
            self._alone = np.concatenate([self._alone, np.full(2 * len(self._symbol_views), np.nan)])
        valences = self._alone[2 * item + cap]
        valences[~alone] = np.nan
        unknown = np.isnan(valences)
        if unknown.any():
            k = np.flatnonzero(unknown)
            near = around[k]
            near[alone[k]] = -1
            if len(self._symbol_views) < _PACK_SYMBOLS:  # each key as one integer (an int never equals a tuple key)
                keys = ((item[k] * _PACK_SYMBOLS ** 5 + (near + 1) @ _PACK_POWERS) * 2 + cap[k]).tolist()
            else:
                keys = list(map(tuple, np.column_stack([item[k], near, cap[k]]).tolist()))
            found = list(map(self._int_contexts.get, keys))
            if None in found:
                ids = np.column_stack([item[k], near, cap[k]]).tolist()
                found = [self._int_valence(key, context) if v is None else v
                         for key, v, context in zip(keys, found, ids)]
            valences[k] = found
            self._alone[(2 * item + cap)[k[alone[k]]]] = valences[k[alone[k]]]
        # Each text's sum in its order, as sum() adds (a 0.0 first and between the lexicon words' valences).
        sums = np.zeros((B, W + 1))
        sums[b, i + 1] = valences
        totals = np.cumsum(sums, axis=1)[:, -1].tolist() if _PLAIN_SUM else [float(sum(r)) for r in sums.tolist()]
        views = self._symbol_views
        for k in np.flatnonzero(flags[:, :, _BUT_FLAG].any(1)).tolist():  # the library's "but" rule (as _compound)
            n = counts[k]
            words = [views[w] for w in self._table[rows[k, :n], 0].tolist()]
            totals[k] = float(sum(self.analyzer._but_check(words, sums[k, 1 : n + 1].tolist())))
        normalize = self._normalize
        out = [round(normalize(total), 4) for total in totals]
        # Texts with a "!", "?" or emoji character (a token has it: none is whitespace) take the library's
        # punctuation emphasis, or (emoji) _compound.
        for k in np.flatnonzero(flags[:, :, _MARK_FLAG].any(1)).tolist():
            text, total = texts[k], totals[k]
            if not (self._ascii_safe and text.isascii()) and not self._emoji_chars.isdisjoint(text):
                out[k] = self._compound(text)
                continue
            if total and ("!" in text or "?" in text):
                emphasis = self.analyzer._punctuation_emphasis(text.strip())
                total = total + emphasis if total > 0 else total - emphasis
            out[k] = round(normalize(total), 4)
        return out

    def _int_valence(self, key: Any, ids: list[int]) -> Any:
        """The valence of the context of symbol ids ``ids`` (see :meth:`_compound_rows`), remembered under ``key``
        (its integer or tuple form) and under its text form."""
        views = self._symbol_views
        item, b3, b2, b1, a1, a2, caps = ids
        skey = (views[item], tuple(views[b] for b in (b3, b2, b1) if b >= 0),
                tuple(views[a] for a in (a1, a2) if a >= 0), bool(caps))
        valence = self._contexts.get(skey)
        if valence is None:
            valence = self._contexts[skey] = self._valence(skey)
        self._int_contexts[key] = valence
        return valence

    def _valence(self, key: tuple[Any, ...]) -> Any:
        """The valence ``polarity_scores`` gives a lexicon word in the context ``key`` (its loop body)."""
        item, before, after, is_cap_diff = key
        window, i = [*before, item, *after], len(before)
        if item.lower() in self._boosters:
            return 0
        if i < len(window) - 1 and item.lower() == "kind" and window[i + 1].lower() == "of":
            return 0
        context = SimpleNamespace(words_and_emoticons=window, is_cap_diff=is_cap_diff)
        return self.analyzer.sentiment_valence(0, context, item, i, [])[-1]


# The views of a token entry (:meth:`VaderCompound._token`).
_WORD, _SEEN, _NEXT, _THIRD, _LISTED, _NEAR, _NEXT_PLAIN, _EXACT, _PHRASE, _SEEN_FREE, _NEAR_FREE = range(11)
_NOTHING_AFTER = ((), ("<w>",), ("<w>", "<w>"))  # the words after a word, in a text without phrases
# compound_batch's token table: these views as symbol ids, the symbol of a word outside the lexicon (what rules see
# of any word after a word in a text without phrases), then the flags listed, exact, phrase, upper, "but" and marked
# (a "!", "?" or emoji character in the token). Row 0 is the pad row (no word).
_COLUMNS = (_WORD, _SEEN, _NEXT, _THIRD, _NEAR, _NEXT_PLAIN, _SEEN_FREE, _NEAR_FREE)
_OUTSIDE_COL = len(_COLUMNS)
_FLAGS = _OUTSIDE_COL + 1
_LISTED_FLAG, _EXACT_FLAG, _PHRASE_FLAG, _UPPER_FLAG, _BUT_FLAG, _MARK_FLAG = range(6)
_PAD_ROW = 0
# The words around a lexicon word that _compound reads (3, 2, 1 before and 1, 2 after, as places in a text padded
# with 3 pad rows before and 2 after), and which view of each it reads (exact words; other words in a text without
# phrases; other words in a text with phrases).
_AROUND = np.array([0, 1, 2, 4, 5])
_EXACT_VIEWS = np.array([_COLUMNS.index(v) for v in (_SEEN, _SEEN, _SEEN, _NEXT, _THIRD)])
_FREE_VIEWS = np.array([*(_COLUMNS.index(v) for v in (_SEEN_FREE, _NEAR_FREE, _NEAR_FREE)), _OUTSIDE_COL,
                        _OUTSIDE_COL])
_PHRASE_VIEWS = np.array([_COLUMNS.index(v) for v in (_SEEN, _NEAR, _NEAR, _NEXT_PLAIN, _THIRD)])
#: With fewer symbols than this, a context's 6 symbol ids (+1: -1 is "no word") and caps flag pack into 61 bits.
_PACK_SYMBOLS = 1 << 10
_PACK_POWERS = _PACK_SYMBOLS ** np.arange(4, -1, -1)  # the places of the 5 neighbours' ids


def _rows_2d(rows: Sequence[int], counts: np.ndarray) -> np.ndarray:
    """Each text's rows ``(B, max(counts))``, from all texts' rows in order, padded with the pad row."""
    out = np.full((len(counts), int(counts.max(initial=0))), _PAD_ROW, np.int64)
    out[np.arange(out.shape[1]) < counts[:, None]] = rows
    return out


#: Words vaderSentiment's valence rules compare with by name, besides its negations, boosters and idioms. ("but" is
#: read only by the text-wide "but" rule, which runs on the valences afterwards: as a neighbour it is a plain word.)
RULE_WORDS = ("no", "or", "nor", "never", "so", "this", "without", "doubt", "least", "at", "very", "kind", "of")
