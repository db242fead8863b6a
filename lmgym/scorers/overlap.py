"""Reference-overlap scorers: ROUGE (``rouge-score``) and BLEU / chrF / TER (``sacrebleu``).

Each value is the reference library's own sentence-level number for one completion:

- ROUGE: the F-measure of ``rouge_score.rouge_scorer.RougeScorer(..., use_stemmer=True)``, best
  over the example's references. In [0, 1].
- sacrebleu: ``BLEU`` / ``CHRF`` / ``TER`` ``.sentence_score(completion, references).score``
  **divided by 100**, so BLEU and chrF are in [0, 1] like every other reward here (clipped to
  it: sacrebleu's BLEU of a perfect match can be ``100.00000000000004``). sacrebleu
  handles several references itself (BLEU clips n-gram counts against all of them, chrF keeps
  the best reference, TER divides the fewest edits by the mean reference length).

ROUGE is computed by :class:`lmgym.scorers.rouge.RougeCalculator` (rouge-score's tokenizer and
formulas on memoised token ids, a bit-parallel LCS); the sacrebleu scorers keep each distinct
reference set's n-gram statistics (sacrebleu's own ``_extract_reference_info``) and score a
completion with sacrebleu's own segment statistics, so neither re-reads a reference it has seen;
plain chrF counts a whole batch's character n-grams with NumPy (:mod:`lmgym.scorers.chrf`).
Both give the libraries' numbers (``tests/test_scorers_equality.py``).

The computing objects are built on first use and dropped when pickled, so these scorers are
cheap to copy into worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmgym.scorers.base import Scorer


def references_of(name: str, references: Sequence[Sequence[str]] | None, i: int) -> list[str]:
    """The references of input ``i``, checked to be a non-empty list of strings.

    Raises:
        ValueError: if the task gave no references or input ``i`` has none.
    """
    if references is None:
        raise ValueError(f"{name} compares against references, but none were given.")
    refs = references[i]
    if isinstance(refs, str):
        refs = [refs]
    refs = list(refs)
    if not refs:
        raise ValueError(f"{name} needs at least one reference for input {i}; it has none.")
    return refs


class _LazyLibraryScorer(Scorer):
    """A scorer holding a library object that is built on first call and not pickled."""

    _impl: Any = None

    def _build(self) -> Any:
        raise NotImplementedError

    @property
    def impl(self) -> Any:
        """The library object that computes the score (built on first use)."""
        if self._impl is None:
            self._impl = self._build()
        return self._impl

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_impl", None)
        return state


class RougeScore(_LazyLibraryScorer):
    """ROUGE F-measure of one ROUGE type, best over references (base of the ``rouge*`` scorers).

    Args:
        rouge_type: ``"rouge1"``, ``"rouge2"``, ... ``"rougeL"`` or ``"rougeLsum"``.
        use_stemmer: strip English suffixes with the Porter stemmer before matching (the usual
            setting, and the default).

    Note:
        rouge-score's default tokenizer lowercases and keeps only ``[a-z0-9]`` runs, so text
        without ASCII letters or digits (e.g. Chinese) scores 0. ``rougeLsum`` splits
        summaries into sentences on newlines; without newlines it equals ``rougeL``. The
        numbers are rouge-score's, computed by :class:`~lmgym.scorers.rouge.RougeCalculator`
        from each distinct text's memoised tokens with a bit-parallel LCS.
    """

    library = "rouge-score"
    rouge_type = "rouge1"

    def __init__(self, rouge_type: str | None = None, use_stemmer: bool = True) -> None:
        if rouge_type is not None:
            self.rouge_type = rouge_type
            self.name = rouge_type
        self.use_stemmer = bool(use_stemmer)

    def _types(self) -> list[str]:
        return [self.rouge_type]

    def _build(self) -> Any:
        from lmgym.scorers.rouge import RougeCalculator

        return RougeCalculator(use_stemmer=self.use_stemmer)

    def __call__(self, prompts, completions, references=None, **meta):
        rouge = self.impl
        types = self._types()
        k = len(types)
        out = []
        for i, completion in enumerate(completions):
            best = 0.0
            for ref in references_of(self.name, references, i):
                best = max(best, sum(rouge.fmeasures(ref, completion, types)) / k)
            out.append(best)
        return out


class Rouge1(RougeScore):
    """ROUGE-1 F1 (unigram overlap, Porter-stemmed), best over references."""

    name = "rouge1"
    rouge_type = "rouge1"


class Rouge2(RougeScore):
    """ROUGE-2 F1 (bigram overlap, Porter-stemmed), best over references."""

    name = "rouge2"
    rouge_type = "rouge2"


class RougeL(RougeScore):
    """ROUGE-L F1 (longest common subsequence, Porter-stemmed), best over references."""

    name = "rougeL"
    rouge_type = "rougeL"


class RougeLsum(RougeScore):
    """ROUGE-Lsum F1 (summary-level LCS over newline-split sentences), best over references."""

    name = "rougeLsum"
    rouge_type = "rougeLsum"


class RougeMean(RougeScore):
    """Mean of ROUGE-1, ROUGE-2 and ROUGE-L F1 against one reference, best over references.

    For each reference the three F-measures are averaged; the score is the largest average.
    """

    name = "rouge"
    rouge_type = "rouge"

    def __init__(self, use_stemmer: bool = True) -> None:
        super().__init__(None, use_stemmer=use_stemmer)

    def _types(self) -> list[str]:
        return ["rouge1", "rouge2", "rougeL"]


class SentenceMetric:
    """A sacrebleu metric's sentence score that extracts each distinct reference set's statistics once.

    ``score(h, refs)`` equals ``metric.sentence_score(h, refs).score``: it runs the same steps
    as sacrebleu's ``sentence_score`` (``_preprocess_segment``, ``_extract_reference_info``,
    ``_compute_segment_statistics``, ``_aggregate_and_compute``), keeping the reference
    information, which in RL is asked for again and again, under the tuple of references.

    Args:
        metric: a ``sacrebleu.metrics`` ``BLEU``, ``CHRF`` or ``TER`` object.
        maxsize: the most reference sets kept; the memo is emptied when it is full.
    """

    def __init__(self, metric: Any, maxsize: int = 65_536) -> None:
        self.metric = metric
        self.maxsize = int(maxsize)
        self._references: dict[tuple[str, ...], Any] = {}

    def score(self, hypothesis: str, references: Sequence[str]) -> float:
        """sacrebleu's sentence-level score (0-100) of ``hypothesis`` against ``references``."""
        metric = self.metric
        metric._check_sentence_score_args(hypothesis, references)
        key = tuple(references)
        info = self._references.get(key)
        if info is None:
            if len(self._references) >= self.maxsize:
                self._references.clear()
            lines = [metric._preprocess_segment(x) for x in key if x is not None]
            info = self._references[key] = self.reference_info(lines)
        stats = self.segment_statistics(metric._preprocess_segment(hypothesis), info)
        return metric._aggregate_and_compute([stats]).score

    def reference_info(self, lines: list[str]) -> Any:
        """What is kept per reference set: sacrebleu's ``_extract_reference_info``."""
        return self.metric._extract_reference_info(lines)

    def segment_statistics(self, hypothesis: str, info: Any) -> list:
        """Match statistics of a preprocessed hypothesis: sacrebleu's ``_compute_segment_statistics``."""
        return self.metric._compute_segment_statistics(hypothesis, info)


class _SacreBleuScore(_LazyLibraryScorer):
    """A sacrebleu sentence-level metric divided by 100."""

    library = "sacrebleu"

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.impl  # noqa: B018  (fail now, not at the first episode end, on a bad option)

    def _metric(self) -> Any:
        raise NotImplementedError

    def _build(self) -> SentenceMetric:
        return SentenceMetric(self._metric())

    def __call__(self, prompts, completions, references=None, **meta):
        metric = self.impl
        values = [
            metric.score(c, references_of(self.name, references, i)) / 100.0 for i, c in enumerate(completions)
        ]
        hi = self.range[1]
        # sacrebleu's BLEU can return 100.00000000000004 for a perfect match: keep the documented range.
        return [min(max(v, 0.0), hi) for v in values]


class Bleu(_SacreBleuScore):
    """Sentence BLEU from sacrebleu, divided by 100 (so in [0, 1]).

    Same defaults as ``sacrebleu.sentence_bleu``: ``13a`` tokenization, ``exp`` smoothing and
    effective order (n-gram orders with no possible match are skipped). Keyword arguments go to
    ``sacrebleu.metrics.BLEU`` (e.g. ``tokenize="intl"``, ``lowercase=True``).
    """

    name = "bleu"

    def __init__(self, **options: Any) -> None:
        options.setdefault("effective_order", True)
        super().__init__(**options)

    def _metric(self) -> Any:
        from sacrebleu.metrics import BLEU

        return BLEU(**self.options)


class Chrf(_SacreBleuScore):
    """Sentence chrF from sacrebleu, divided by 100 (so in [0, 1]).

    Defaults of ``sacrebleu.sentence_chrf`` (character 6-grams, beta 2); ``word_order=2`` gives
    chrF++. Keyword arguments go to ``sacrebleu.metrics.CHRF``. Plain chrF counts a whole batch's
    character n-grams at once (:func:`lmgym.scorers.chrf.batch_chrf_scores`), with sacrebleu's numbers.
    """

    name = "chrf"

    def _metric(self) -> Any:
        from sacrebleu.metrics import CHRF

        return CHRF(**self.options)

    def __call__(self, prompts, completions, references=None, **meta):
        metric = self.impl.metric
        refs = [references_of(self.name, references, i) for i in range(len(completions))]
        if metric.word_order == 0 and all(isinstance(c, str) for c in completions) and all(
            isinstance(r, str) or r is None for rs in refs for r in rs
        ):
            from lmgym.scorers.chrf import batch_chrf_scores

            values = batch_chrf_scores(metric, completions, refs)
            if values is not None:
                return [min(max(v / 100.0, 0.0), 1.0) for v in values]
        return super().__call__(prompts, completions, refs, **meta)


class Ter(_SacreBleuScore):
    """Sentence TER (translation edit rate) from sacrebleu, divided by 100; lower is better.

    Edits needed to turn the completion into the closest reference, over the mean reference
    length: 0 is a perfect match, 1 means as many edits as reference words; it can exceed 1 for
    long completions. Use a negative weight in a weighted sum. Keyword arguments go to
    ``sacrebleu.metrics.TER`` (e.g. ``case_sensitive=True``).
    """

    name = "ter"
    higher_is_better = False
    range = (0.0, float("inf"))

    def _metric(self) -> Any:
        from sacrebleu.metrics import TER

        return TER(**self.options)
