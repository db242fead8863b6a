"""The scorer contract, the scorer registry and the checked call every env uses.

A scorer is a batched, pure, deterministic callable::

    scorer(prompts, completions, references=None, **meta) -> list[float]   # one value per input

``references`` is a list (one entry per input) of lists of reference strings; ``meta`` holds
per-input values as lists (e.g. ``keywords=[["dog", "park"], ...]``). Scorers ignore meta keys
they do not use. Any plain function with that signature is a scorer.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lmgym.errors import ScorerError, UnknownScorerError
from lmgym.validation import check_float

#: Whether builtin ``sum()`` adds floats one by one, rounding each addition (as ``np.cumsum`` does): before 3.12.
_PLAIN_SUM = sys.version_info < (3, 12)

ScorerFn = Callable[..., Sequence[float]]


class Scorer:
    """Base class for scorers. Subclasses implement :meth:`__call__`.

    Attributes:
        name: registry name, used in metrics and error messages.
        higher_is_better: whether larger scores are better.
        range: the documented (min, max) of the score; ``math.inf`` where unbounded.
        library: the package that computes the score (shown by ``lmgym scorers``).
        extra: the ``pip install 'lmgym[extra]'`` the scorer needs beyond the core install,
            or ``None``.
    """

    name: str = "scorer"
    higher_is_better: bool = True
    range: tuple[float, float] = (0.0, 1.0)
    library: str = "lmgym"
    extra: str | None = None

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        references: Sequence[Sequence[str]] | None = None,
        **meta: Any,
    ) -> list[float]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class CallableScorer(Scorer):
    """Wrap a plain function ``f(prompts, completions, references=None, **meta)`` as a scorer."""

    def __init__(self, fn: ScorerFn, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callable")
        self.range = (-math.inf, math.inf)

    def __call__(self, prompts, completions, references=None, **meta):
        return list(self.fn(prompts, completions, references, **meta))


class WeightedSum(Scorer):
    """A weighted sum of scorers, e.g. ``{"sentiment": 1.0, "repetition": -0.5}``.

    ``details`` returns each component's values so envs can report them in ``info``.
    """

    def __init__(self, weights: Mapping[Any, float]) -> None:
        if not weights:
            raise ScorerError("WeightedSum needs at least one (scorer, weight) pair.")
        self.parts: list[tuple[str, Scorer, float]] = []
        for spec, weight in weights.items():
            weight = check_float(f"The weight of scorer {spec!r}", weight, error=ScorerError,
                                 hint='Give each scorer a finite number, e.g. {"rouge": 1.0, "repetition": -0.5}.')
            scorer = make_scorer(spec)
            name, k = scorer.name, 2
            while any(name == n for n, _, _ in self.parts):  # two parts with one name stay apart
                name, k = f"{scorer.name}#{k}", k + 1
            self.parts.append((name, scorer, float(weight)))
        self.name = "+".join(f"{w:g}*{n}" for n, _, w in self.parts)
        lo = sum(min(w * s.range[0], w * s.range[1]) for _, s, w in self.parts)
        hi = sum(max(w * s.range[0], w * s.range[1]) for _, s, w in self.parts)
        self.range = (lo, hi)

    def details(self, prompts, completions, references=None, **meta) -> dict[str, list[float]]:
        """Score with every component; returns ``{component_name: values}``."""
        return {name: checked_score(s, prompts, completions, references, **meta) for name, s, _ in self.parts}

    #: Batches at least this large are summed with NumPy (the same additions, in the same order).
    batch_from: int = 8

    def combine(self, parts: dict[str, list[float]]) -> list[float]:
        """The weighted sums of :meth:`details`' values (added part by part, in the parts' order)."""
        weights = [w for _, _, w in self.parts]
        columns = [parts[n] for n, _, _ in self.parts]
        # NumPy adds part by part, as sum() does up to Python 3.11 (from 3.12 sum() compensates the rounding of
        # floats, which changes a sum of three or more parts; two are one correctly rounded addition either way).
        if columns and len(columns[0]) >= self.batch_from and (_PLAIN_SUM or len(columns) <= 2):
            total = np.zeros(len(columns[0]))  # sum() starts from 0; then + w * v per part, as below
            for w, values in zip(weights, columns):
                total = total + w * np.asarray(values, np.float64)
            return total.tolist()
        return [sum(w * v for w, v in zip(weights, values)) for values in zip(*columns)]

    def __call__(self, prompts, completions, references=None, **meta):
        return self.combine(self.details(prompts, completions, references, **meta))


# name -> "module:attribute" (imported lazily so `import lmgym` stays light) or a factory.
_REGISTRY: dict[str, str | Callable[..., Scorer]] = {}
_ENTRY_POINTS_LOADED = False
ENTRY_POINT_GROUP = "lmgym.scorers"


def register_scorer(name: str, factory: str | Callable[..., Scorer], *, override: bool = False) -> None:
    """Register a scorer factory under ``name``.

    Args:
        name: the name used in ``make_scorer(name)`` and ``gym.make(..., scorer=name)``.
        factory: a class/function returning a scorer, a :class:`Scorer` object, a plain scoring
            function (one whose ``prompts, completions`` parameters are required), or a
            ``"module:attribute"`` string naming one of these, imported on first use.
        override: replace an existing registration instead of raising.
    """
    if name in _REGISTRY and not override:
        raise ValueError(f"Scorer {name!r} is already registered; pass override=True to replace it.")
    _REGISTRY[name] = factory


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _REGISTRY.setdefault(ep.name, ep.value)


def scorer_names() -> list[str]:
    """Names of all registered scorers (built-in and entry-point ones)."""
    _load_entry_points()
    return sorted(_REGISTRY)


def _resolve(factory: str | Callable[..., Any]) -> Callable[..., Any]:
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    return factory


def _is_scoring_function(obj: Any) -> bool:
    """Whether ``obj`` is a plain scoring function (``prompts, completions`` required) rather
    than a factory that returns a scorer."""
    if inspect.isclass(obj) or not callable(obj):
        return False
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(required) >= 2


def make_scorer(spec: Any, *, cache: bool | int = False, **kwargs: Any) -> Scorer:
    """Turn a scorer spec into a :class:`Scorer`.

    Args:
        spec: a registered name, a :class:`Scorer`, a plain callable, or a mapping of
            specs to weights (a :class:`WeightedSum`).
        cache: wrap the result in :class:`~lmgym.scorers.memo.Memoized`, which remembers
            ``(prompt, completion, references, meta)`` results; ``True`` keeps up to 65,536
            entries, an int sets that limit.
        **kwargs: passed to the scorer's factory when ``spec`` is a name.

    Raises:
        UnknownScorerError: for an unregistered name (with did-you-mean and the known names).
        TypeError: for kwargs given with a spec that is not a name, or a spec of another type.

    Example:
        >>> import lmgym
        >>> lmgym.make_scorer("token_f1")(["p"], ["a b"], [["a c"]])
        [0.5]
    """
    if cache:
        from lmgym.scorers.memo import Memoized

        maxsize = 65_536 if cache is True else int(cache)
        if isinstance(spec, Mapping) and not kwargs:
            # Cache each part, so score_with_details still reports every component.
            return WeightedSum({Memoized(make_scorer(s), maxsize): w for s, w in spec.items()})
        return Memoized(make_scorer(spec, **kwargs), maxsize=maxsize)
    if kwargs and not isinstance(spec, str):
        raise TypeError(
            f"make_scorer got keyword arguments {sorted(kwargs)} with a {type(spec).__name__}; "
            "keyword arguments configure a registered scorer given by name."
        )
    if isinstance(spec, Scorer):
        return spec
    if isinstance(spec, Mapping):
        return WeightedSum(spec)
    if isinstance(spec, str):
        _load_entry_points()
        if spec not in _REGISTRY:
            raise UnknownScorerError(spec, _REGISTRY)
        factory = _resolve(_REGISTRY[spec])
        if isinstance(factory, Scorer) or _is_scoring_function(factory):
            if kwargs:
                raise TypeError(f"Scorer {spec!r} is registered as a ready scorer; it takes no keyword arguments.")
            obj = factory
        else:
            obj = factory(**kwargs)
        return obj if isinstance(obj, Scorer) else CallableScorer(obj, name=spec)
    if callable(spec):
        return CallableScorer(spec)
    raise TypeError(
        f"scorer must be a name, a Scorer, a callable or a {{name: weight}} mapping; got {type(spec).__name__}."
    )


def checked_score(
    scorer: Scorer,
    prompts: Sequence[str],
    completions: Sequence[str],
    references: Sequence[Sequence[str]] | None = None,
    **meta: Any,
) -> list[float]:
    """Call ``scorer`` and check its output: one finite float per input.

    Raises:
        ScorerError: naming the scorer and the offending input index if the scorer raises,
            returns the wrong number of values, or returns NaN/inf/non-numbers.
    """
    n = len(completions)
    try:
        values = list(scorer(prompts, completions, references, **meta))
    except ScorerError:
        raise
    except Exception as exc:
        i = _failing_input(scorer, prompts, completions, references, meta)
        where = f"input {i} ({completions[i]!r})" if i is not None else f"a batch of {n}"
        raise ScorerError(
            f"Scorer {scorer.name!r} raised {type(exc).__name__}: {exc} on {where}. "
            "Fix the scorer or its inputs; the env is still usable (reset it)."
        ) from exc
    if len(values) != n:
        raise ScorerError(
            f"Scorer {scorer.name!r} returned {len(values)} values for {n} inputs; it must return one per input."
        )
    try:  # the usual case, in one pass each; any bad value is found (and named) by the loop below
        out = list(map(float, values))
        if all(map(math.isfinite, out)):
            return out
    except (TypeError, ValueError):
        pass
    out = []
    for i, v in enumerate(values):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ScorerError(
                f"Scorer {scorer.name!r} returned a non-number {v!r} for input {i} ({completions[i]!r})."
            ) from None
        if not math.isfinite(f):
            raise ScorerError(
                f"Scorer {scorer.name!r} returned {f} for input {i} ({completions[i]!r}); scores must be finite."
            )
        out.append(f)
    return out


def _failing_input(scorer, prompts, completions, references, meta) -> int | None:
    """Index of the first input the scorer raises on when called alone (error path only)."""
    if len(completions) == 1:
        return 0
    for i in range(len(completions)):
        try:
            scorer(
                prompts[i : i + 1],
                completions[i : i + 1],
                None if references is None else references[i : i + 1],
                **{k: v[i : i + 1] for k, v in meta.items()},
            )
        except Exception:
            return i
    return None


def score_with_details(
    scorer: Scorer,
    prompts: Sequence[str],
    completions: Sequence[str],
    references: Sequence[Sequence[str]] | None = None,
    **meta: Any,
) -> tuple[list[float], list[dict[str, float]]]:
    """Score a batch and return ``(scores, details)``.

    A scorer with parts (``details()`` and ``combine()``, e.g. :class:`WeightedSum`) reports each part.
    """
    scores, columns = score_with_detail_columns(scorer, prompts, completions, references, **meta)
    names = list(columns)
    return scores, [dict(zip(names, values)) for values in zip(*columns.values())]


def score_with_detail_columns(
    scorer: Scorer,
    prompts: Sequence[str],
    completions: Sequence[str],
    references: Sequence[Sequence[str]] | None = None,
    **meta: Any,
) -> tuple[list[float], dict[str, list[float]]]:
    """:func:`score_with_details` with the details as one column per part: ``(scores, {part: values})``."""
    if callable(getattr(scorer, "details", None)) and callable(getattr(scorer, "combine", None)):
        parts = scorer.details(prompts, completions, references, **meta)
        return scorer.combine(parts), parts
    scores = checked_score(scorer, prompts, completions, references, **meta)
    return scores, {scorer.name: scores}
