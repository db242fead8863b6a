"""String-match scorers: exact match, per-position token accuracy, token-level F1, numeric match."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from operator import eq
from typing import Any

import numpy as np

from lmgym.scorers.base import Scorer

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_min = np.minimum.reduce


def _refs(references: Sequence[Sequence[str]] | None, i: int) -> Sequence[str]:
    if references is None:
        raise ValueError("this scorer compares against references; the task gave none")
    return references[i]


class ExactMatch(Scorer):
    """1.0 if the completion equals a reference after whitespace normalisation, else 0.0."""

    name = "exact_match"
    range = (0.0, 1.0)

    def __call__(self, prompts, completions, references=None, **meta):
        out = []
        for i, c in enumerate(completions):
            norm = " ".join(c.split())
            out.append(float(any(norm == " ".join(r.split()) for r in _refs(references, i))))
        return out


class TokenAccuracy(Scorer):
    """Fraction of positions where the completion's word equals the reference's word.

    Divided by ``max(len(completion), len(reference))`` so both missing and extra words cost;
    the best reference counts.
    """

    name = "token_accuracy"
    range = (0.0, 1.0)

    def __call__(self, prompts, completions, references=None, **meta):
        out = []
        split = self.__dict__.get("_ref_words")  # reference -> its words: references come back every episode
        if split is None or len(split) > 65_536:
            split = self._ref_words = {}
        if references is None or len(references) != len(completions):
            references = [_refs(references, i) for i in range(len(completions))]  # (raises as before)
        for c, refs in zip(completions, references):
            words = c.split()
            n, best = len(words), 0.0
            for r in refs:
                ref = split.get(r)
                if ref is None:
                    ref = split[r] = r.split()
                denom = n if n > len(ref) else len(ref)
                acc = 1.0 if denom == 0 else sum(map(eq, words, ref)) / denom  # matches, position by position
                if acc > best:
                    best = acc
            out.append(best)
        return out

    def score_word_ids(self, batch: Any) -> np.ndarray | None:
        """:meth:`__call__` on texts given as word ids, for a whole batch in array operations (the token path of
        the native vector env, :mod:`lmgym.word_ids`).

        Args:
            batch: a :class:`lmgym.word_ids.WordBatch`. Its ``reference_ids()`` gives ``K`` arrays ``(B, W)``, each
                completion's ``k``-th reference as ids of the same map, cut or padded to ``W`` words (padding, and
                words no completion can have, are negative ids other than those in ``words``, so they never
                match), and ``K`` arrays ``(B,)`` of words per reference before the cut (``-1`` where a completion
                has fewer than ``K`` references).

        Returns:
            ``(B,)`` float64: exactly the values of :meth:`__call__` on the texts (the same integer matches over
            the same integer denominators, the best reference's); ``None`` without reference tables.

        >>> from lmgym.word_ids import WordBatch
        >>> batch = WordBatch(np.array([[1, 2, 3], [1, 9, -2]]), np.array([3, 2]), np.array([]), [], [], [],
        ...                   reference_ids=lambda: ([np.array([[1, 2, -1], [1, 2, 3]])], [np.array([2, 3])]))
        >>> TokenAccuracy().score_word_ids(batch).tolist()
        [0.6666666666666666, 0.3333333333333333]
        """
        found = batch.reference_ids()
        if found is None:
            return None
        words, lengths = batch.words, batch.lengths
        references, reference_lengths = found
        best = np.zeros(len(lengths))
        for k, (reference, reference_length) in enumerate(zip(references, reference_lengths)):
            matches = (words == reference).sum(1)  # (B,) positions that hold the same word
            # max(len(completion), len(reference)); a missing reference (length -1) counts as one word, so it
            # scores 0 (it has no words to match) where an empty completion would otherwise score 1.
            denom = np.maximum(lengths, np.abs(reference_length))
            if denom.size and _min(denom) > 0:  # the usual case: no two empty texts
                acc = matches / denom
            else:
                acc = matches / np.maximum(denom, 1)
                acc[denom == 0] = 1.0
            best = acc if k == 0 else np.maximum(best, acc)  # (all >= 0: the first is at least the 0.0 start)
        return best


class TokenF1(Scorer):
    """Bag-of-words F1 between completion and reference (SQuAD-style), best over references."""

    name = "token_f1"
    range = (0.0, 1.0)

    def __call__(self, prompts, completions, references=None, **meta):
        out = []
        for i, c in enumerate(completions):
            pred = Counter(c.split())
            best = 0.0
            for r in _refs(references, i):
                gold = Counter(r.split())
                if not pred and not gold:
                    best = max(best, 1.0)
                    continue
                common = sum((pred & gold).values())
                if common == 0:
                    continue
                p, rec = common / sum(pred.values()), common / sum(gold.values())
                best = max(best, 2 * p * rec / (p + rec))
            out.append(best)
        return out


class NumericMatch(Scorer):
    """1.0 when the completion's last number equals a reference's number exactly, else partial credit.

    Numbers are read as exact decimals (``"2.50"`` equals ``"2.5"``; ``"1,234"`` is ``1234``). A wrong
    number earns ``partial_credit * max(0, 1 - |x - ref| / max(|ref|, 1))`` (``partial_credit=0``: none);
    a completion without a number earns 0. The best reference counts.

    >>> NumericMatch()([""] * 3, ["it is 42", "42.0", "41"], [["42"]] * 3)
    [1.0, 1.0, 0.0]
    >>> NumericMatch(partial_credit=0.5)([""], ["40"], [["50"]])
    [0.4]
    """

    name = "numeric_match"
    range = (0.0, 1.0)

    def __init__(self, partial_credit: float = 0.0) -> None:
        from lmgym.validation import check_float

        self.partial_credit = check_float("partial_credit", partial_credit, minimum=0, maximum=1)

    @staticmethod
    def last_number(text: str) -> Fraction | None:
        """The last number written in ``text`` (commas between digit groups ignored), or ``None``."""
        found = _NUMBER.findall(text.replace(",", ""))
        return Fraction(found[-1]) if found else None

    def __call__(self, prompts, completions, references=None, **meta):
        out = []
        for i, c in enumerate(completions):
            value, best = self.last_number(c), 0.0
            for r in _refs(references, i):
                target = self.last_number(r)
                if value is None or target is None:
                    continue
                if value == target:
                    best = 1.0
                    break
                closeness = 1 - abs(value - target) / max(abs(target), 1)
                best = max(best, self.partial_credit * max(0.0, float(closeness)))
            out.append(best)
        return out
