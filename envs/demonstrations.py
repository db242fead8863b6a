"""Imperfect demonstrators for the built-in corpora: the warm-start data of the ``-v1`` envs.

In practice the demonstrations a policy is warm-started on are not what the reward asks for:
they come from a crowd of writers, from logs, or from an older system, and each has habits the
reward penalises. Likelihood training copies those habits, and when a habit is the most common
choice, greedy decoding makes it on *every* example. RL with the task reward is then the step that
fixes it: this is the RLHF setting (SFT on available demonstrations, then RL on a reward that
knows better), and it leaves a clear, measurable gap between SFT and SFT + RL.

Each built-in task gets one realistic habit, applied to a demonstration with probability
``error_rate`` (``-v1`` envs: 0.6, so the habit is the majority and hence the greedy mode):

- **PositiveReview** (an IMDB-style corpus of mixed reviews): the writer continues the review
  negatively (half of the habitual demonstrations) or with mixed feelings (the other half);
- **Summarize** (lead bias, as in news corpora): the annotator copies the document's first
  sentence, usually a distractor, instead of fusing the three facts;
- **Keywords** (dropped concepts): the writer leaves out the place phrase (``in the park``);
- **Translate** (literal translation): en-xx drops the particles English lacks (the object marker
  ``ka`` and the definite particle ``ti``); xx-en drops the articles English needs.

References, prompts and rewards are untouched: the env scores against the same references as
``-v0``. Demonstrations are drawn from their own random stream per example, so they never change
the corpus itself, and they are deterministic for a given corpus seed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import numpy as np

from lmgym.envs import keywords_corpus, review_corpus, translate_corpus
from lmgym.errors import TaskError
from lmgym.task import Example, Task

#: Rate of the habitual error in the demonstrations of the ``-v1`` envs.
V1_ERROR_RATE = 0.6

#: ``habit(example, reference, rng) -> demonstration``: the reference as the imperfect writer writes it.
Habit = Callable[[Example, str, np.random.Generator], str]


def check_error_rate(error_rate: float) -> float:
    """``error_rate`` as a float in [0, 1], or a :class:`~lmgym.errors.TaskError` naming the fix."""
    try:
        rate = float(error_rate)
    except (TypeError, ValueError):
        raise TaskError(f"demo_error_rate must be a number in [0, 1]; got {error_rate!r}.") from None
    if not 0.0 <= rate <= 1.0:
        raise TaskError(f"demo_error_rate must be in [0, 1]; got {error_rate!r}.")
    return rate


def with_demonstrations(
    splits: dict[str, list[Example]], habit: Habit, seed: int, error_rate: float
) -> dict[str, list[Example]]:
    """Copies of ``splits`` whose examples carry one demonstration per reference.

    Each demonstration is ``habit(example, reference, rng)`` with probability ``error_rate``, else
    the reference itself. ``error_rate == 0`` returns ``splits`` unchanged (no demonstrations).
    """
    rate = check_error_rate(error_rate)
    if rate == 0.0:
        return splits
    out: dict[str, list[Example]] = {}
    for split_id, (split, examples) in enumerate(splits.items()):
        rows = []
        for index, example in enumerate(examples):
            rng = np.random.default_rng([seed, split_id, index, 0x64656D6F])
            demos = tuple(habit(example, ref, rng) if rng.random() < rate else ref for ref in example.references)
            rows.append(dataclasses.replace(example, demonstrations=demos))
        out[split] = rows
    return out


_DEMONSTRATED: dict[tuple[int, int, float], tuple[Task, Task]] = {}


def demonstrated_task(task: Task, habit: Habit, seed: int, error_rate: float) -> Task:
    """``task`` with demonstrations (see :func:`with_demonstrations`), built once per process."""
    key = (id(task), seed, error_rate)
    cached = _DEMONSTRATED.get(key)
    if cached is None or cached[0] is not task:
        demo = dataclasses.replace(task, splits=with_demonstrations(dict(task.splits), habit, seed, error_rate))
        cached = _DEMONSTRATED[key] = (task, demo)
    return cached[1]


# ---- the habits ------------------------------------------------------------------------------------


def review_habit(example: Example, reference: str, rng: np.random.Generator) -> str:
    """A negative or mixed continuation about the same aspects the positive reference praises."""
    aspects = [w for w in reference.split() if w in review_corpus.ASPECTS]
    aspects = list(dict.fromkeys(aspects)) or ["price"]
    first, second = aspects[0], aspects[-1]
    words = {slot: str(rng.choice(review_corpus.WORDS[slot])) for slot in ("bad", "good", "very", "person")}
    words["bad_2"] = str(rng.choice([w for w in review_corpus.WORDS["bad"] if w != words["bad"]]))
    pool = review_corpus.NEGATIVE if rng.random() < 0.5 else review_corpus.MIXED
    body = str(rng.choice(pool[0] if first == second else pool[1]))
    closer = str(rng.choice(pool[2]))
    return f"{body} {closer}".format(aspect=first, aspect_2=second, **words)


def summary_habit(example: Example, reference: str, rng: np.random.Generator) -> str:
    """The document's first sentence (lead bias: the annotator copies the lead instead of summarising)."""
    return example.source.split(" . ")[0] + " ."


_PLACE_PHRASE = re.compile(r"^(?:{p}) the (?P<a>\w+) , | (?:{p}) the (?P<b>\w+)(?= )".format(
    p="|".join(keywords_corpus.PREPOSITIONS)))


def keywords_habit(example: Example, reference: str, rng: np.random.Generator) -> str:
    """The sentence without its place phrase (``in the park``), so the place concept is missing."""
    places = set(keywords_corpus.PLACES) & set(example.source.split())

    def drop(match: re.Match) -> str:
        return "" if (match.group("a") or match.group("b")) in places else match.group(0)

    return _PLACE_PHRASE.sub(drop, reference)


def translate_habit(drop: frozenset[str]) -> Habit:
    """A literal translator's habit: leave out the words in ``drop`` (the source language has none)."""

    def habit(example: Example, reference: str, rng: np.random.Generator) -> str:
        return " ".join(w for w in reference.split() if w not in drop)

    return habit


#: Per direction, the words a literal translator leaves out.
TRANSLATE_DROPS: dict[str, frozenset[str]] = {
    "en-xx": frozenset({translate_corpus.OBJECT, translate_corpus.DEFINITE}),
    "xx-en": frozenset({"the", "a", "an"}),
}
