"""String-match scorers: exact match, per-position token accuracy, token-level F1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from lmgym.scorers.base import Scorer


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
        for i, c in enumerate(completions):
            words = c.split()
            best = 0.0
            for r in _refs(references, i):
                ref = r.split()
                denom = max(len(words), len(ref))
                acc = 1.0 if denom == 0 else sum(a == b for a, b in zip(words, ref)) / denom
                best = max(best, acc)
            out.append(best)
        return out


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
