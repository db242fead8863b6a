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
