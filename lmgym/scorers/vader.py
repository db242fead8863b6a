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

from itertools import compress
from operator import itemgetter
from types import SimpleNamespace
from typing import Any


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
        # Words some rule names (lowercase); any other neighbour is seen only as in or out of the lexicon.
        named = {*vs.NEGATE, *RULE_WORDS}
        for phrase in (*vs.BOOSTER_DICT, *vs.SPECIAL_CASES):  # (its SENTIMENT_LADEN_IDIOMS check is never run)
            named.update(phrase.split())
        self._named = frozenset(named)
        # After a word, rules read less: the next word as "of" ("kind of"), as in or out of the lexicon ("no")
        # or as the 2nd word of an idiom; the one after that only as the 3rd word of an idiom.
        idioms = [phrase.split() for phrase in vs.SPECIAL_CASES]
        self._second = frozenset({"of", *(p[1] for p in idioms if len(p) > 1)})
        self._third = frozenset(p[2] for p in idioms if len(p) > 2)
        lexicon = self.analyzer.lexicon
        self._in_lexicon = min(w for w in lexicon if self._plain(w) and w == w.lower() and w.isalpha())
        self._outside = "<w>"
        assert self._outside not in lexicon and self._plain(self._outside)
        self._texts: dict[str, float] = {}
        # raw token -> SentiText's word, what rules see of it before a word, right after it and two after it,
        # and whether it is a lexicon word
        self._tokens: dict[str, tuple[str, str, str, str, bool]] = {}
        self._contexts: dict[tuple[Any, ...], Any] = {}  # (word, before, after, caps) -> valence

    def _plain(self, word: str) -> bool:
        """Whether no rule names ``word`` (so as a neighbour only its lexicon membership counts)."""
        lower = word.lower()
        return lower not in self._named and "n't" not in lower

    def _token(self, raw: str) -> tuple[str, str, str, str, bool]:
        word = self._strip(raw)
        lower = word.lower()
        listed = lower in self.analyzer.lexicon
        kind = self._in_lexicon if listed else self._outside
        entry = self._tokens[raw] = (word, kind if self._plain(word) else word,
                                     word if lower in self._second else kind,
                                     word if lower in self._third else self._outside, listed)
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
        if not self._emoji_chars.isdisjoint(text):
            return self.analyzer.polarity_scores(text)["compound"]
        text = text.strip()  # what polarity_scores keeps of an emoji-free text
        if len(self._tokens) >= self.maxsize or len(self._contexts) >= self.maxsize:
            self._tokens.clear()
            self._contexts.clear()
        get, token = self._tokens.get, self._token
        entries = [get(w) or token(w) for w in text.split()]
        words, seen = list(map(itemgetter(0), entries)), list(map(itemgetter(1), entries))
        n = len(words)
        # The library's allcap_differential: some, but not all, words are ALL CAPS.
        is_cap_diff = 0 < n - sum(map(str.isupper, words)) < n
        contexts = self._contexts
        sentiments: list[Any] = [0] * n  # boosters, "kind of" and words outside the lexicon: the library's int 0
        for i in compress(range(n), map(itemgetter(4), entries)):  # the lexicon words
            after = (entries[i + 1][2], entries[i + 2][3]) if i + 2 < n else (entries[i + 1][2],) if i + 1 < n else ()
            key = (words[i], tuple(seen[max(i - 3, 0) : i]), after, is_cap_diff)
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
        emphasis = self.analyzer._punctuation_emphasis(text)
        if sum_s > 0:
            sum_s += emphasis
        elif sum_s < 0:
            sum_s -= emphasis
        return round(self._normalize(sum_s), 4)

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


#: Words vaderSentiment's rules compare with by name, besides its negations, boosters and idioms.
RULE_WORDS = ("no", "or", "nor", "never", "so", "this", "without", "doubt", "least", "at", "very", "kind", "of",
              "but")
