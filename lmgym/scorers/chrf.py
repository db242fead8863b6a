"""sacrebleu's sentence chrF for a whole batch at once, with NumPy n-gram counts.

``sacrebleu.metrics.CHRF.sentence_score`` counts each text's character n-grams (orders 1 to
``char_order``) in Python ``Counter`` objects. :func:`batch_chrf_scores` gets the same counts for
every completion and reference of a batch with a few NumPy operations per order: characters become
small integer codes, an n-gram becomes one integer (its codes in base ``k``, ``k`` the number of
distinct characters in the batch, plus the text's index above them), and sorted unique keys give
the counts. Per completion and reference it forms sacrebleu's statistics ``[hypothesis n-grams,
reference n-grams, matches]`` per order, computes every F-score with sacrebleu's ``_compute_f_score``
arithmetic on whole arrays (:func:`f_scores`) and keeps the best reference's, as sacrebleu does.
``tests/test_scorers_equality.py`` checks the values against ``sacrebleu.sentence_chrf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _strip(metric: Any, text: str) -> str:
    """The text sacrebleu counts: preprocessed (lowercased if asked), whitespace removed unless kept."""
    text = metric._preprocess_segment(text)
    return text if metric.whitespace else "".join(text.split())


def batch_chrf_scores(
    metric: Any, hypotheses: Sequence[str], references: Sequence[Sequence[str]]
) -> list[float] | None:
    """``[metric.sentence_score(h, refs).score for h, refs in zip(hypotheses, references)]``, batched.

    Args:
        metric: a ``sacrebleu.metrics.CHRF`` with ``word_order == 0`` (plain chrF).
        hypotheses: one string per input.
        references: the references of each input (``None`` entries are skipped, as in sacrebleu).

    Returns:
        The scores (0-100), or ``None`` when the batch's n-gram keys would not fit in 63 bits (the
        caller then scores it with sacrebleu's own per-sentence code).
    """
    order = metric.char_order
    units = [[_strip(metric, r) for r in refs if r is not None] for refs in references]
    hyps = [_strip(metric, h) for h in hypotheses]
    owner = np.array([i for i, refs in enumerate(units) for _ in refs], dtype=np.int64)  # unit -> input
    texts = hyps + [r for refs in units for r in refs]
    n_hyp, n_unit = len(hyps), len(owner)
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    joined = "".join(texts)
    _, codes = np.unique(np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32), return_inverse=True)
    base = int(codes.max()) + 1 if len(codes) else 1
    if (max(n_hyp, n_unit) + 1) * base**order >= 2**62:
        return None
    seg = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)  # (T,) the text of each character
    end = np.cumsum(lengths)[seg]  # (T,) where that text ends
    pos = np.arange(len(codes), dtype=np.int64)
    is_hyp = seg < n_hyp
    stats = np.zeros((n_unit, order, 3), dtype=np.int64)
    gram = codes.astype(np.int64)
    for n in range(1, order + 1):
        if n > 1:
            gram = gram[:-1] * base + codes[n - 1 :]  # (T - n + 1,) the n-gram starting at each position
        size = base**n
        valid = pos[: len(gram)] + n <= end[: len(gram)]
        s, g, h = seg[: len(gram)], gram, is_hyp[: len(gram)]
        hyp_keys, hyp_counts = np.unique(s[valid & h] * size + g[valid & h], return_counts=True)
        ref_keys, ref_counts = np.unique((s[valid & ~h] - n_hyp) * size + g[valid & ~h], return_counts=True)
        unit = ref_keys // size
        wanted = owner[unit] * size + ref_keys % size  # the same n-gram in the unit's hypothesis
        at = np.minimum(np.searchsorted(hyp_keys, wanted), max(len(hyp_keys) - 1, 0))
        found = hyp_keys[at] == wanted if len(hyp_keys) else np.zeros(len(wanted), dtype=bool)
        matches = np.minimum(ref_counts, np.where(found, hyp_counts[at] if len(hyp_keys) else 0, 0))
        ref_total = np.maximum(lengths[n_hyp:] - n + 1, 0)
        hyp_total = np.maximum(lengths[:n_hyp] - n + 1, 0)[owner]
        stats[:, n - 1, 0] = np.where(ref_total > 0, hyp_total, 0)
        stats[:, n - 1, 1] = ref_total
        stats[:, n - 1, 2] = np.bincount(unit, weights=matches, minlength=n_unit).round().astype(np.int64)
    f = f_scores(metric, stats).tolist()
    out, u = [], 0
    for refs in units:
        if not refs:  # sacrebleu's own error for an input without references
            out.append(metric._aggregate_and_compute([[]]).score)
            continue
        # sacrebleu keeps the first reference with the largest F and scores it again: that F
        out.append(max(f[u : u + len(refs)]))
        u += len(refs)
    return out


def f_scores(metric: Any, stats: np.ndarray) -> np.ndarray:
    """sacrebleu's ``CHRF._compute_f_score`` of every row of ``stats`` ``(n, order, 3)`` at once.

    The same float operations in the same order (one order at a time, as its loop adds them), so
    the values are bit for bit sacrebleu's.
    """
    eps, factor = 1e-16, metric.beta**2
    n = len(stats)
    score, avg_prec, avg_rec, effective = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(stats.shape[1]):
            n_hyp, n_ref, n_match = stats[:, i, 0], stats[:, i, 1], stats[:, i, 2]
            prec = np.where(n_hyp > 0, n_match / n_hyp, eps)
            rec = np.where(n_ref > 0, n_match / n_ref, eps)
            denom = factor * prec + rec
            score = score + np.where(denom > 0, (1 + factor) * prec * rec / denom, eps)
            both = (n_hyp > 0) & (n_ref > 0)
            avg_prec = np.where(both, avg_prec + prec, avg_prec)
            avg_rec = np.where(both, avg_rec + rec, avg_rec)
            effective += both
        if metric.eps_smoothing:
            return 100 * score / stats.shape[1]
        avg_prec = np.where(effective > 0, avg_prec / effective, 0.0)
        avg_rec = np.where(effective > 0, avg_rec / effective, 0.0)
        total = (1 + factor) * avg_prec * avg_rec
        total = total / ((factor * avg_prec) + avg_rec)
        return np.where(avg_prec + avg_rec != 0, 100 * total, 0.0)
