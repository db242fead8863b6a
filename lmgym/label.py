"""``lmgym label``: people pick the better of two completions; every answer is on disk before the next question.

::

    lmgym label --pairs candidates.jsonl --output labels.jsonl --name alice

Each question shows a prompt and two completions, A and B (their order is shuffled with a seed, so the file's
order says nothing). The person types ``1`` or ``a`` (A is better), ``2`` or ``b`` (B is better), ``t`` (tie),
``s`` (skip) or ``q`` (quit), then Enter. Each answer is appended to ``--output`` as one JSON line and flushed
and fsynced at once, so Ctrl-C, a closed terminal or a crash loses nothing; the next start skips the questions
already answered. Candidates are ``{prompt, a, b}`` or ``{prompt, chosen, rejected}`` records (e.g. from
``lmgym prefs make``). The labels file is itself preference data: ``lmgym rm train --data labels.jsonl`` reads it
(ties and skips are left out).

From Python, :func:`collect` asks any annotator (a person at a terminal, or a script in tests and in
human-in-the-loop training between PPO iterations, ``lmgym train --label-every``) the same way.
:func:`parse_annotator` reads the ``terminal`` / ``scorer:NOISE`` spec of those runs, and
:func:`scripted_annotator` is the scripted stand-in: a true score per completion plus a known error rate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from lmgym.errors import LmgymError, PreferenceError

CHOICES = {"1": "a", "a": "a", "2": "b", "b": "b", "t": "tie", "s": "skip"}


@dataclass(frozen=True)
class Question:
    """One comparison to ask: ``id`` is its row number in the candidates file."""

    id: int
    prompt: str
    a: str
    b: str


def read_questions(source: Any, seed: int = 0) -> list[Question]:
    """Questions from ``{prompt, a, b}`` or ``{prompt, chosen, rejected}`` rows (A/B order shuffled by ``seed``)."""
    from lmgym.datasets import read_records

    rows = read_records(source, PreferenceError)
    rng, questions = random.Random(seed), []
    for i, row in enumerate(rows):
        if "a" in row and "b" in row:
            a, b = row["a"], row["b"]
        elif "chosen" in row and "rejected" in row:
            a, b = (row["chosen"], row["rejected"]) if rng.random() < 0.5 else (row["rejected"], row["chosen"])
        else:
            raise PreferenceError(f"Row {i} needs 'prompt' and either 'a'/'b' or 'chosen'/'rejected'; "
                                  f"found {sorted(row)}.")
        if not isinstance(row.get("prompt"), str) or not all(isinstance(x, str) for x in (a, b)):
            raise PreferenceError(f"Row {i} has a prompt or completion that is not text.")
        questions.append(Question(i, row["prompt"], a, b))
    if not questions:
        raise PreferenceError(f"No questions in {source!r}.")
    return questions


def answered_ids(path: str) -> set[int]:
    """Ids already in a labels file (a torn last line, from a crash mid-write, is ignored)."""
    if not os.path.isfile(path):
        return set()
    done = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                done.add(int(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                continue
    return done


def label_record(question: Question, choice: str, source: str) -> dict[str, Any]:
    """The JSON line of one answer; A/B choices also name ``chosen`` and ``rejected``."""
    record = {"id": question.id, "prompt": question.prompt, "a": question.a, "b": question.b, "choice": choice,
              "source": source}
    if choice in ("a", "b"):
        record["chosen"], record["rejected"] = (question.a, question.b) if choice == "a" else (question.b, question.a)
    return record


def collect(questions: Iterable[Question], annotator: Callable[[Question], str | None], output: str,
            source: str = "person") -> int:
    """Ask ``annotator`` every question not yet in ``output``; append each answer durably. Returns answers written.

    ``annotator`` returns ``"a"``, ``"b"``, ``"tie"``, ``"skip"``, or ``None`` to stop.
    """
    done, written = answered_ids(output), 0
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "a", encoding="utf-8") as f:
        for question in questions:
            if question.id in done:
                continue
            choice = annotator(question)
            if choice is None:
                break
            if choice not in ("a", "b", "tie", "skip"):
                raise PreferenceError(f"An annotator answered {choice!r}; answers are a, b, tie or skip.")
            f.write(json.dumps(label_record(question, choice, source), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
            written += 1
    return written


ANNOTATORS = ("terminal", "scorer:NOISE")
"""The annotator specs :func:`parse_annotator` reads."""


def parse_annotator(spec: str) -> tuple[str, float]:
    """``"terminal"`` -> ``("terminal", 0.0)``; ``"scorer:0.1"`` -> ``("scorer", 0.1)`` (``"scorer"``: no noise).

    Raises:
        ConfigError: another spec, or a noise outside [0, 0.5) (0.5 is a coin flip).
    """
    from lmgym.errors import ConfigError

    kind, _, noise_text = str(spec).partition(":")
    if kind == "terminal" and not noise_text:
        return "terminal", 0.0
    if kind == "scorer":
        try:
            noise = float(noise_text or 0.0)
        except ValueError:
            noise = float("nan")
        if 0.0 <= noise < 0.5:
            return "scorer", noise
    raise ConfigError(f"--annotator must be 'terminal' (a person) or 'scorer:NOISE' with 0 <= NOISE < 0.5 (the "
                      f"env's task metric, wrong with probability NOISE, e.g. scorer:0.1); got {spec!r}.")


def scripted_annotator(true_scores: dict[int, tuple[float, float]], noise: float = 0.0,
                       seed: int = 0) -> Callable[[Question], str]:
    """An annotator that knows the true score of each question's A and B (``{question id: (a, b)}``).

    It prefers the higher score and says ``"tie"`` when they are equal; with probability ``noise`` it picks the
    other one. Each question's coin is seeded by ``seed`` and its id, so the answer does not depend on which
    questions were asked before (a resumed run answers as the first one would have).
    """

    def ask(question: Question) -> str:
        a, b = true_scores[question.id]
        if a == b:
            return "tie"
        better, worse = ("a", "b") if a > b else ("b", "a")
        return worse if random.Random(f"{seed}:{question.id}").random() < noise else better

    return ask


def terminal_annotator(stdin: TextIO, stdout: TextIO, total: int, already: int) -> Callable[[Question], str | None]:
    """An annotator that shows each question on ``stdout`` and reads the person's key from ``stdin``."""
    asked = [already]

    def ask(question: Question) -> str | None:
        asked[0] += 1
        stdout.write(f"\n[{asked[0]}/{total}] PROMPT: {question.prompt}\n  A: {question.a}\n  B: {question.b}\n")
        while True:
            stdout.write("Better? 1/a = A, 2/b = B, t = tie, s = skip, q = quit > ")
            stdout.flush()
            line = stdin.readline()
            if not line:  # closed stdin: stop, everything answered so far is saved
                return None
            key = line.strip().lower()
            if key == "q":
                return None
            if key in CHOICES:
                return CHOICES[key]
            stdout.write(f"  {key!r} is not an answer.\n")

    return ask


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym label`` argument parser."""
    parser = argparse.ArgumentParser(prog="lmgym label", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", required=True, help="candidates: {prompt, a, b} or {prompt, chosen, rejected}")
    parser.add_argument("--output", required=True, help="the labels .jsonl (appended to; resumes where it stopped)")
    parser.add_argument("--name", default="person", help="recorded as the answers' source (default: person)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the A/B order (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym label``; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        questions = read_questions(args.pairs, args.seed)
        already = len(answered_ids(args.output) & {q.id for q in questions})
        print(f"{len(questions)} questions, {already} already answered in {args.output}.", flush=True)
        try:
            written = collect(questions, terminal_annotator(sys.stdin, sys.stdout, len(questions), already),
                              args.output, source=f"person:{args.name}")
        except KeyboardInterrupt:
            written = None
    except LmgymError as exc:
        print(f"lmgym label: error: {exc}", file=sys.stderr)
        return 2
    total = len(answered_ids(args.output))
    print(f"\nSaved {'' if written is None else f'{written} new answers, '}{total} in all, to {args.output}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
