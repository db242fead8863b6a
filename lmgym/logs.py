"""Reward-labelled logs: the data of offline RL (``{prompt, completion, reward}`` records).

Real users often have logs, not an environment to sample from: past model outputs with a rating, a
thumbs up/down or a metric. This module reads and writes them; offline agents (ILQL, filtered
behaviour cloning) train on them. The format is one record per row::

    {"prompt": "...", "completion": "...", "reward": 0.73}

with optional ``agent`` (who wrote the completion) and ``example_index`` columns. Files are
``.jsonl``/``.json``/``.csv``/``.parquet``, a folder of them, a list of dicts or a ``datasets.Dataset``
(anything :func:`lmgym.datasets.read_splits` reads; every split is used). ``lmgym logs make ENV``
writes such a file for any env (see :mod:`lmgym.agents.offline.make_logs`).

Bad data raises :class:`~lmgym.errors.LogsError` naming the row and the fix: a missing column, a
reward that is not a finite number, an empty prompt. Rewards that are all equal (nothing to learn
from) raise too. Empty completions are allowed (an agent may end at once) but counted in
:attr:`RewardLogs.warnings`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lmgym.atomic import write_jsonl
from lmgym.errors import LogsError

COLUMNS = ("prompt", "completion", "reward")
"""The required columns."""


@dataclass(frozen=True)
class LoggedSample:
    """One logged completion and its reward."""

    prompt: str
    completion: str
    reward: float
    agent: str = ""
    """Who wrote the completion (a baseline name, a policy folder), when known."""
    example_index: int | None = None
    """The env example the prompt came from, when the logs were made from an env."""


@dataclass
class RewardLogs:
    """Validated logged samples plus the counted, non-fatal problems (``{problem: count}``)."""

    samples: list[LoggedSample]
    warnings: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def rewards(self) -> list[float]:
        return [s.reward for s in self.samples]

    def top_fraction(self, fraction: float) -> RewardLogs:
        """The ``fraction`` of samples with the highest rewards (ties kept in file order): filtered BC's data."""
        if not 0 < fraction <= 1:
            raise LogsError(f"The kept fraction must be in (0, 1]; got {fraction!r}.")
        keep = max(1, math.ceil(fraction * len(self.samples)))
        order = sorted(range(len(self.samples)), key=lambda i: -self.samples[i].reward)[:keep]
        return RewardLogs([self.samples[i] for i in sorted(order)], dict(self.warnings))

    def by_agent(self) -> dict[str, dict[str, float]]:
        """``{agent: {"n", "mean"}}``: how the logged quality is spread over the writers."""
        groups: dict[str, list[float]] = {}
        for s in self.samples:
            groups.setdefault(s.agent or "?", []).append(s.reward)
        return {name: {"n": len(r), "mean": sum(r) / len(r)} for name, r in groups.items()}


def _reward(value: Any, row: int) -> float:
    if isinstance(value, bool):  # thumbs up/down as booleans: 1 / 0
        return float(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise LogsError(f"Row {row} has no reward. Every record needs a numeric 'reward'; drop unrated rows first.")
    try:
        reward = float(value)
    except (TypeError, ValueError):
        raise LogsError(f"Row {row} has reward {value!r}, which is not a number.") from None
    if not math.isfinite(reward):
        raise LogsError(f"Row {row} has reward {reward}; rewards must be finite numbers (drop or fix the row).")
    return reward


def parse_samples(rows: Iterable[Mapping[str, Any]], start: int = 0) -> tuple[list[LoggedSample], dict[str, int]]:
    """Check and convert raw rows; returns ``(samples, warnings)``. ``start`` numbers the rows in messages."""
    samples, warnings = [], {}
    for row_number, row in enumerate(rows, start):
        if not isinstance(row, Mapping):
            raise LogsError(f"Row {row_number} is a {type(row).__name__}, not a record with {COLUMNS}.")
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise LogsError(f"Row {row_number} lacks the column(s) {missing}; reward-labelled logs need "
                            f"{list(COLUMNS)} (found {sorted(map(str, row))}).")
        prompt, completion = row["prompt"], row["completion"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise LogsError(f"Row {row_number} has an empty or non-text prompt {prompt!r}.")
        if completion is None:
            completion = ""
        if not isinstance(completion, str):
            raise LogsError(f"Row {row_number} has a non-text completion {completion!r}.")
        if not completion.strip():
            warnings["empty completion"] = warnings.get("empty completion", 0) + 1
        index = row.get("example_index")
        index = None if index is None or index == "" else int(index)
        samples.append(LoggedSample(prompt, completion, _reward(row["reward"], row_number),
                                    str(row.get("agent") or ""), index))
    return samples, warnings


def load_logs(source: Any) -> RewardLogs:
    """Read and validate reward-labelled logs from a file, folder, rows or ``datasets.Dataset``.

    Raises:
        LogsError: no rows, a malformed row (naming it), or rewards that are all equal.
    """
    from lmgym.datasets import read_records

    samples, warnings = parse_samples(read_records(source, LogsError))
    if not samples:
        raise LogsError(f"The logs {source!r} have no rows.")
    if len({s.reward for s in samples}) == 1:
        raise LogsError(f"Every reward in the logs is {samples[0].reward}: a constant reward says nothing about "
                        "which completions are better. Log a metric or rating that varies.")
    return RewardLogs(samples, warnings)


def write_logs(path: str | os.PathLike, samples: Sequence[LoggedSample]) -> None:
    """Write samples as JSON lines, atomically (a crash leaves the old file or none)."""
    write_jsonl(path, ({k: v for k, v in asdict(s).items() if v is not None} for s in samples))


__all__ = ["COLUMNS", "LoggedSample", "RewardLogs", "load_logs", "parse_samples", "write_logs"]
