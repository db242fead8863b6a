"""Memoisation of scores: RL revisits the same completions often (early policies, short tasks).

:class:`Memoized` remembers each input's score under the key ``(prompt, completion, references,
meta)`` and sends only the unseen inputs of a batch to the wrapped scorer, in one batched call.
Only wrap pure, deterministic scorers (every built-in one is).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from lmgym.scorers.base import Scorer, checked_score


def _hashable(value: Any) -> Hashable:
    if isinstance(value, (str, bytes, int, float, bool, type(None))):
        return value
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(map(repr, value)) if isinstance(value, (set, frozenset)) else value
        return tuple(_hashable(v) for v in items)
    return repr(value)


class Memoized(Scorer):
    """Cache a scorer's values per input (least recently used entries go first).

    Attributes ``name``, ``range``, ``higher_is_better``, ``library`` and ``extra`` are the
    wrapped scorer's. ``hits`` and ``misses`` count inputs since construction (or :meth:`clear`).

    Args:
        scorer: the scorer to wrap (a name, object, callable or weights; see ``make_scorer``).
        maxsize: the most entries kept.

    Example:
        >>> from lmgym.scorers.memo import Memoized
        >>> s = Memoized("token_f1", maxsize=100)
        >>> s(["p", "p"], ["a b", "a b"], [["a"], ["a"]]), s.hits, s.misses
        ([0.6666666666666666, 0.6666666666666666], 1, 1)
    """

    def __init__(self, scorer: Any, maxsize: int = 65_536) -> None:
        from lmgym.scorers.base import make_scorer

        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1; got {maxsize}.")
        self.scorer = make_scorer(scorer)
        self.maxsize = int(maxsize)
        self.name = self.scorer.name
        self.range = self.scorer.range
        self.higher_is_better = self.scorer.higher_is_better
        self.library = self.scorer.library
        self.extra = self.scorer.extra
        self.clear()

    def clear(self) -> None:
        """Forget every cached value and reset the counters."""
        self._cache: OrderedDict[Hashable, float] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __call__(self, prompts, completions, references=None, **meta):
        n = len(completions)
        keys = [
            (
                prompts[i],
                completions[i],
                None if references is None else _hashable(references[i]),
                tuple((k, _hashable(v[i])) for k, v in sorted(meta.items())),
            )
            for i in range(n)
        ]
        out: list[float | None] = [None] * n
        todo: dict[Hashable, list[int]] = {}
        for i, key in enumerate(keys):
            if key in self._cache:
                self._cache.move_to_end(key)
                out[i] = self._cache[key]
                self.hits += 1
            elif key in todo:
                todo[key].append(i)
                self.hits += 1
            else:
                todo[key] = [i]
                self.misses += 1
        if todo:
            first = [idx[0] for idx in todo.values()]
            values = checked_score(
                self.scorer,
                [prompts[i] for i in first],
                [completions[i] for i in first],
                None if references is None else [references[i] for i in first],
                **{k: [v[i] for i in first] for k, v in meta.items()},
            )
            for (key, idx), value in zip(todo.items(), values):
                self._cache[key] = value
                for i in idx:
                    out[i] = value
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return out

    def __repr__(self) -> str:
        return f"Memoized({self.scorer!r}, maxsize={self.maxsize})"
