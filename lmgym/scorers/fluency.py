"""A smoothed word n-gram language model as a fluency scorer (no torch, no download).

:class:`NgramFluency` is fit on a corpus (typically the task's training references) and scores
how natural a completion looks *to that corpus*:

1. Tokens: the lowercased text split into words and single punctuation marks
   (``re.findall(r"\\w+|[^\\w\\s]", text.lower())``), with ``n - 1`` start markers before and
   one end marker ``</s>`` after, so ending mid-sentence costs too.
2. Probabilities: interpolated absolute discounting (discount ``d``, default 0.75), recursively
   down to a uniform distribution over the ``V`` = corpus word types + ``</s>`` + one unknown
   word::

       P_k(w | h) = max(c(h, w) - d, 0) / c(h) + d * T(h) / c(h) * P_{k-1}(w | h[1:])
       P_0(w)     = 1 / V

   where ``c(h)`` counts the context ``h`` of length ``k - 1``, ``c(h, w)`` the n-gram and
   ``T(h)`` the distinct words seen after ``h``; an unseen context falls back to ``P_{k-1}``.
   The probabilities over the vocabulary sum to 1.
3. Score: with ``H`` the mean negative natural log-probability per token (the log-perplexity),
   ``score = clip(1 - H / log V, 0, 1)``. Uniform guessing (perplexity ``V``) or worse scores 0;
   a fully predictable text scores 1; the empty completion scores 0.

Repeating one word over and over scores near 0 (each repeat is an unseen bigram), while
sentences like the corpus's score well above text in random word order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from lmgym.scorers.base import Scorer

_TOKEN = re.compile(r"\w+|[^\w\s]")
BOS, EOS = "<s>", "</s>"


def fluency_tokens(text: str) -> list[str]:
    """The tokens :class:`NgramFluency` models: lowercased words and single punctuation marks."""
    return _TOKEN.findall(text.lower())


class NgramFluency(Scorer):
    """Naturalness of a completion under a smoothed n-gram LM fit on ``corpus``, in [0, 1].

    See the module docstring for the exact model and normalisation.

    Args:
        corpus: texts to fit on (e.g. the task's training references). At least one must
            contain a word.
        n: n-gram order (2 = bigrams, the default).
        discount: absolute discount ``d`` in (0, 1).

    Example:
        >>> lm = NgramFluency(["the cat sat on the mat .", "the dog sat on the rug ."])
        >>> good, bad = lm(["", ""], ["the cat sat on the rug .", "the the the the the"])
        >>> good > 0.5 > bad
        True
    """

    name = "ngram_fluency"

    def __init__(self, corpus: Sequence[str] | None = None, n: int = 2, discount: float = 0.75) -> None:
        if corpus is None:
            raise TypeError(
                "ngram_fluency needs a corpus to fit on: make_scorer('ngram_fluency', corpus=texts) "
                "or NgramFluency(texts), e.g. the task's training references."
            )
        if isinstance(corpus, str):
            raise TypeError("corpus must be a sequence of texts, not one string; wrap it in a list.")
        if n < 1:
            raise ValueError(f"n must be >= 1; got {n}.")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1); got {discount}.")
        self.n = int(n)
        self.discount = float(discount)
        # counts[context] = {word: count}, for contexts of length 0 .. n-1.
        counts: dict[tuple[str, ...], dict[str, int]] = {}
        types: set[str] = set()
        for text in corpus:
            toks = fluency_tokens(text)
            if not toks:
                continue
            types.update(toks)
            seq = [BOS] * (self.n - 1) + toks + [EOS]
            for i in range(self.n - 1, len(seq)):
                for k in range(self.n):
                    ctx = tuple(seq[i - k : i])
                    follow = counts.setdefault(ctx, {})
                    follow[seq[i]] = follow.get(seq[i], 0) + 1
        if not types:
            raise ValueError("ngram_fluency's corpus has no words; give it some texts to fit on.")
        self.vocab_size = len(types) + 2  # + </s> + one unknown word
        # context -> (total count, distinct followers, {word: count})
        self._table = {ctx: (sum(f.values()), len(f), f) for ctx, f in counts.items()}

    def prob(self, word: str, context: Iterable[str]) -> float:
        """``P(word | context)`` under the model; ``context`` is cut to the last ``n - 1`` tokens."""
        ctx = tuple(context)[-(self.n - 1) :] if self.n > 1 else ()
        ctx = (BOS,) * (self.n - 1 - len(ctx)) + ctx
        p = 1.0 / self.vocab_size
        d = self.discount
        for k in range(len(ctx) + 1):  # lowest order first: (), then last 1 word, ...
            entry = self._table.get(ctx[len(ctx) - k :])
            if entry is None:
                continue
            total, distinct, follow = entry
            p = max(follow.get(word, 0) - d, 0.0) / total + d * distinct / total * p
        return p

    def log_perplexity(self, text: str) -> float:
        """Mean negative natural log-probability per token of ``text`` (its words and ``</s>``)."""
        seq = [BOS] * (self.n - 1) + fluency_tokens(text) + [EOS]
        start = self.n - 1
        total = 0.0
        for i in range(start, len(seq)):
            total -= math.log(self.prob(seq[i], seq[i - start : i]))
        return total / (len(seq) - start)

    def score_text(self, text: str) -> float:
        """``clip(1 - log_perplexity / log V, 0, 1)``; 0 for text without tokens."""
        if not fluency_tokens(text):
            return 0.0
        return min(1.0, max(0.0, 1.0 - self.log_perplexity(text) / math.log(self.vocab_size)))

    def __call__(self, prompts, completions, references=None, **meta):
        return [self.score_text(c) for c in completions]
