"""Tasks: the data side of an env. A task knows text, not tokens.

A :class:`Task` holds examples per split (``train``/``validation``/``test``), a prompt template and,
for built-in tasks, the closed vocabulary its texts are written in. Envs sample from it with their
own ``np_random``, so sampling is reproducible from ``reset(seed=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmgym.errors import TaskError, did_you_mean

SPLITS: tuple[str, ...] = ("train", "validation", "test")
_LOW32, _SHIFT32 = np.uint64(0xFFFFFFFF), np.uint64(32)
_min = np.minimum.reduce


@dataclass(frozen=True)
class Example:
    """One task example.

    Attributes:
        source: the raw input text (document, source sentence, review opening, keywords...).
            Seq2seq agents encode this.
        prompt: the text the env tokenizes into ``prompt_ids`` (the source with the task's
            template applied). Causal agents continue it.
        references: one or more target texts the scorer compares against.
        meta: extra per-example values handed to the scorer as keyword arguments
            (e.g. ``keywords`` for a keyword-coverage scorer).
        demonstrations: what a warm start imitates, when it differs from the references: outputs
            written by imperfect demonstrators (logged outputs, a crowd of annotators) that the
            reward does not fully agree with. Empty means "the references" (see :attr:`targets`).
    """

    source: str
    prompt: str
    references: tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    demonstrations: tuple[str, ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        """The texts supervised training imitates: the demonstrations, else the references."""
        return self.demonstrations or self.references


@dataclass
class Task:
    """A named collection of examples per split.

    Attributes:
        name: short identifier, e.g. ``"copy"`` or ``"summarize"``.
        splits: examples per split name.
        vocabulary: the closed word list all texts are written in, or ``None`` for open text
            (then a tokenizer must be given or built from the data).
        template: ``str.format`` template with a ``{source}`` field, used to build prompts.
        description: one line for ``lmgym list`` and docs.
    """

    name: str
    splits: dict[str, Sequence[Example]]
    vocabulary: Sequence[str] | None = None
    template: str = "{source}"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.splits:
            raise TaskError(f"Task {self.name!r} has no splits; give at least a 'train' split.")
        for split, examples in self.splits.items():
            if len(examples) == 0:
                raise TaskError(f"Split {split!r} of task {self.name!r} is empty; give it at least one example.")

    def examples(self, split: str) -> Sequence[Example]:
        """Return the examples of ``split``.

        Raises:
            TaskError: if the split does not exist (the message lists the ones that do).
        """
        try:
            return self.splits[split]
        except KeyError:
            known = list(self.splits)
            raise TaskError(
                f"Unknown split {split!r} for task {self.name!r}.{did_you_mean(split, known)} "
                f"Available splits: {', '.join(known)}."
            ) from None

    def sample(self, rng: np.random.Generator, split: str = "train") -> tuple[int, Example]:
        """Draw one example uniformly with ``rng``; returns ``(index, example)``."""
        examples = self.examples(split)
        index = int(rng.integers(len(examples)))
        return index, examples[index]

    def format_prompt(self, source: str) -> str:
        """Apply the task's template to a source text."""
        return self.template.format(source=source)


def make_example(source: str, references: str | Sequence[str], template: str = "{source}", **meta: Any) -> Example:
    """Build an :class:`Example`, applying ``template`` to ``source`` for the prompt."""
    refs = (references,) if isinstance(references, str) else tuple(references)
    return Example(source=source, prompt=template.format(source=source), references=refs, meta=dict(meta))


class ExampleStreams:
    """:meth:`Task.sample`'s example indices for many slots at once, each slot with its own generator.

    ``Task.sample`` draws ``rng.integers(n)``: NumPy's Lemire method on the generator's 32-bit outputs (for
    ``1 < n <= 2**32``; ``n == 1`` draws nothing). This class takes those outputs from each generator in
    blocks (``rng.integers(0, 2**32, size=k, dtype=np.uint32)`` yields exactly the next ``k`` of them) and applies
    the same method to every slot in one array operation, so :meth:`draw` returns, slot by slot, what
    successive ``rng.integers(n)`` calls would. A generator runs ahead of its slot by the unused part of its
    block; :meth:`generator` winds it back before anything else uses it.

    Args:
        rngs: one generator per slot (``None`` until seeded); the list is shared and read, never replaced.

    Example:
        >>> rngs = [np.random.default_rng(s) for s in (1, 2)]
        >>> streams = ExampleStreams(rngs)
        >>> twins = [np.random.default_rng(s) for s in (1, 2)]
        >>> [streams.draw(np.arange(2), 10).tolist() for _ in range(3)] == [
        ...     [int(r.integers(10)) for r in twins] for _ in range(3)]
        True
    """

    #: The most outputs taken from a generator at once (after one output, blocks double from 8 up to this).
    block: int = 256

    def __init__(self, rngs: list[np.random.Generator | None]) -> None:
        self.rngs = rngs
        n = len(rngs)
        self._raw = np.zeros((n, self.block), np.uint64)  # each slot's block of 32-bit outputs
        self._starts = np.arange(n) * self.block  # the flat position of each slot's block in ``_raw``
        self._pos = np.zeros(n, np.int64)  # the next unused output of each block
        self._end = np.zeros(n, np.int64)  # outputs in each block
        self._size = np.zeros(n, np.int64)  # the size of each slot's last block (0: none since seeding)
        self._saved: list[dict[str, Any] | None] = [None] * n  # generator state before each slot's block
        self._left = 0  # at most the unused outputs of any slot's block (0: look at every slot's block)

    def reseeded(self, slot: int) -> None:
        """Forget ``slot``'s block: its generator was replaced (or reseeded) and is used from its start."""
        self._pos[slot] = self._end[slot] = self._size[slot] = 0
        self._saved[slot] = None
        self._left = 0

    def generator(self, slot: int) -> np.random.Generator | None:
        """``slot``'s generator, wound back to where the slot's draws so far leave it."""
        rng, saved = self.rngs[slot], self._saved[slot]
        if rng is not None and saved is not None:
            rng.bit_generator.state = saved
            used = int(self._pos[slot])
            if used:
                rng.integers(0, 2**32, size=used, dtype=np.uint32)
            self._pos[slot] = self._end[slot] = 0
            self._saved[slot] = None
            self._left = 0
        return rng

    def _refill(self, slot: int) -> None:
        rng = self.rngs[slot]
        assert rng is not None and self._pos[slot] == self._end[slot], "refill a seeded slot's used-up block"
        # One output first (a slot reseeded for one episode costs one draw), then blocks of 8, 16, ... 64.
        size = int(min(self.block, max(8, 2 * self._size[slot]))) if self._size[slot] else 1
        self._saved[slot] = rng.bit_generator.state
        self._raw[slot, :size] = rng.integers(0, 2**32, size=size, dtype=np.uint32)
        self._pos[slot], self._end[slot], self._size[slot] = 0, size, size

    def _next(self, slot: int) -> int:
        self._left = 0
        if self._pos[slot] >= self._end[slot]:
            self._refill(slot)
        self._pos[slot] += 1
        return int(self._raw[slot, self._pos[slot] - 1])

    def draw(self, slots: np.ndarray, n: int) -> np.ndarray:
        """One index in ``[0, n)`` per slot of ``slots`` (distinct slots): each slot's next ``rng.integers(n)``."""
        if n == 1:
            return np.zeros(len(slots), np.int64)  # (NumPy draws nothing for a range of one)
        if not 1 < n <= 2**32:
            return np.array([self.generator(i).integers(n) for i in slots.tolist()], np.int64)
        every = len(slots) == len(self.rngs)
        at = slice(None) if every else slots  # every slot (the usual restart): whole arrays, no row lists
        pos = self._pos[at]  # (every slot: a view, moved on in place below)
        if self._left <= 0 or not every:  # some block may be used up: refill those
            used_up = pos >= self._end[at]
            if np.count_nonzero(used_up):
                for i in (np.flatnonzero(used_up) if every else slots[used_up]).tolist():
                    self._refill(i)
                pos = self._pos[at]
            # Every slot draws next from a block with at least this many outputs left (a partial draw: look again).
            self._left = int(_min(self._end - self._pos)) if every else 0
        # Lemire: m = u * n; the index is m >> 32 unless the low half is under (2**32 - n) % n (then redraw).
        m = self._raw.take((self._starts if every else self._starts[slots]) + pos)
        m *= np.uint64(n)
        pos += 1
        if every:
            self._left -= 1
        else:
            self._pos[at] = pos
        threshold = (2**32 - n) % n
        if threshold and m.size and int(_min(m & _LOW32)) < threshold:  # (rare for small n: 1 output in 2**32 / n)
            low = (m & _LOW32) < np.uint64(threshold)
            for j in low.nonzero()[0].tolist():
                while True:
                    mj = self._next(int(slots[j])) * n
                    if mj & 0xFFFFFFFF >= threshold:
                        m[j] = mj
                        break
        m >>= _SHIFT32
        return m.view(np.int64)  # (each below 2**32)
