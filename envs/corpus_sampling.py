"""Deterministic sampling and disjoint splits for the built-in generated corpora.

Every built-in corpus is a pure function of its ``corpus_seed``: the same seed gives the same
examples on every machine (NumPy's PCG64 stream), different seeds give different corpora. The
generators draw many small choices per example, so :class:`Draws` pre-draws uniform floats in
blocks: one NumPy call per few thousand choices keeps 10,000 examples well under a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

import numpy as np

from lmgym.task import Example

T = TypeVar("T")

#: Default split sizes of every built-in corpus.
SPLIT_SIZES: dict[str, int] = {"train": 10_000, "validation": 500, "test": 500}


class Draws:
    """A seeded stream of choices backed by pre-drawn uniform floats.

    Args:
        seed: the corpus seed; the stream is ``numpy.random.default_rng(seed)``.
        block: how many floats to draw per refill.
    """

    def __init__(self, seed: int, block: int = 65_536) -> None:
        self._rng = np.random.default_rng(seed)
        self._block = block
        self._buf: list[float] = []
        self._pos = 0

    def uniform(self) -> float:
        """One float in ``[0, 1)``."""
        if self._pos >= len(self._buf):
            self._buf = self._rng.random(self._block).tolist()
            self._pos = 0
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def pick(self, items: Sequence[T]) -> T:
        """One element of ``items``, uniformly."""
        return items[int(self.uniform() * len(items))]

    def integer(self, low: int, high: int) -> int:
        """An integer in ``[low, high]`` (both ends included)."""
        return low + int(self.uniform() * (high - low + 1))

    def chance(self, p: float) -> bool:
        """``True`` with probability ``p``."""
        return self.uniform() < p

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        """``k`` distinct elements (by position) of ``items`` in random order."""
        n = len(items)
        if not 0 <= k <= n:
            raise ValueError(f"Cannot sample {k} of {n} items.")
        if k == 1:
            return [items[int(self.uniform() * n)]]
        if 4 * k <= n:  # few of many: redraw the rare repeats instead of copying the pool
            taken: list[int] = []
            while len(taken) < k:
                i = int(self.uniform() * n)
                if i not in taken:
                    taken.append(i)
            return [items[i] for i in taken]
        pool = list(items)
        return [pool.pop(int(self.uniform() * len(pool))) for _ in range(k)]

    def shuffle(self, items: Sequence[T]) -> list[T]:
        """A shuffled copy of ``items``."""
        return self.sample(items, len(items))


def disjoint_splits(
    make: Callable[[Draws], tuple[Hashable, Example | Callable[[], Example]]],
    seed: int,
    sizes: dict[str, int] | None = None,
    max_tries_factor: int = 5,
) -> dict[str, list[Example]]:
    """Draw examples until enough distinct keys exist, then cut them into disjoint splits.

    Args:
        make: draws one example from the stream and returns ``(key, example)``; two examples
            with the same key count as the same item (e.g. the same source text or the same
            keyword set), so a key never appears in two splits. ``example`` may be a
            zero-argument function that finishes the example (drawing more choices): it is
            called only for a new key, which saves the work for duplicates.
        seed: corpus seed.
        sizes: examples per split (default :data:`SPLIT_SIZES`). Validation and test come first
            in the stream, so their content does not depend on the train size.
        max_tries_factor: give up after ``factor * total`` draws (the key space is too small).

    Raises:
        ValueError: if the generator cannot produce enough distinct keys.
    """
    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    held_out = [s for s in ("validation", "test") if s in sizes]
    order = held_out + [s for s in sizes if s not in held_out]
    total = sum(sizes.values())
    draws = Draws(seed)
    seen: set[Hashable] = set()
    picked: list[Example] = []
    for _ in range(max_tries_factor * total):
        if len(picked) == total:
            break
        key, example = make(draws)
        if key in seen:
            continue
        seen.add(key)
        picked.append(example() if callable(example) else example)
    if len(picked) < total:
        raise ValueError(f"Only {len(picked)} distinct examples could be drawn; {total} were asked for.")
    splits: dict[str, list[Example]] = {}
    start = 0
    for split in order:
        splits[split] = picked[start : start + sizes[split]]
        start += sizes[split]
    return {split: splits[split] for split in sizes}


def join_tokens(tokens: Iterable[str]) -> str:
    """Join word tokens with single spaces (the built-in corpora's text format)."""
    return " ".join(tokens)


def corpus_hash(splits: dict[str, Sequence[Example]]) -> str:
    """A SHA-256 over every split's prompts and references: equal hashes mean equal corpora."""
    digest = hashlib.sha256()
    for split in sorted(splits):
        for ex in splits[split]:
            digest.update(f"{split}\t{ex.prompt}\t{' || '.join(ex.references)}\n".encode())
    return digest.hexdigest()
