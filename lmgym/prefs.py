"""Pairwise preferences: the data a reward model learns from (``{prompt, chosen, rejected}`` records).

RLHF's first stage collects comparisons: for one prompt, two completions and which one is better. This
module reads and writes them. One record per row::

    {"prompt": "...", "chosen": "...", "rejected": "..."}

with optional ``margin`` (how much better, for a margin in the Bradley-Terry loss) and ``source`` (who
labelled it: a simulated annotator, a person). Files are ``.jsonl``/``.json``/``.csv``/``.parquet``, a folder of
them, a list of dicts or a ``datasets.Dataset`` (anything :func:`lmgym.datasets.read_splits` reads).
``lmgym prefs make ENV`` writes such a file for a built-in task, ``lmgym label`` collects them from people.

Bad rows raise :class:`~lmgym.errors.PreferenceError` naming the row and the fix. Pairs whose two
completions are the same text carry no information; they are dropped and counted in
:attr:`Preferences.warnings`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lmgym.atomic import write_jsonl
from lmgym.errors import PreferenceError

COLUMNS = ("prompt", "chosen", "rejected")
"""The required columns."""


@dataclass(frozen=True)
class PreferencePair:
    """One comparison: ``chosen`` was judged better than ``rejected`` for ``prompt``."""

    prompt: str
    chosen: str
    rejected: str
    margin: float | None = None
    """How much better (a margin of the Bradley-Terry loss), when known."""
    source: str = ""
    """Who judged: ``"scorer+noise(0.1)"``, a person's name..."""


@dataclass
class Preferences:
    """Validated pairs plus counted, non-fatal problems (``{problem: count}``)."""

    pairs: list[PreferencePair]
    warnings: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pairs)


def _text(row: Mapping[str, Any], column: str, number: int, allow_empty: bool = True) -> str:
    value = row[column]
    if value is None:
        value = ""
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise PreferenceError(f"Row {number} has an empty or non-text {column!r}: {value!r}.")
    return value


def parse_pairs(rows: Sequence[Mapping[str, Any]], start: int = 0) -> Preferences:
    """Check and convert raw rows (``start`` numbers them in messages)."""
    pairs, warnings = [], {}
    for number, row in enumerate(rows, start):
        if not isinstance(row, Mapping):
            raise PreferenceError(f"Row {number} is a {type(row).__name__}, not a record with {COLUMNS}.")
        if row.get("choice") in ("tie", "skip"):  # an `lmgym label` answer that prefers neither
            warnings["tie or skip (dropped)"] = warnings.get("tie or skip (dropped)", 0) + 1
            continue
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise PreferenceError(f"Row {number} lacks the column(s) {missing}; preference pairs need "
                                  f"{list(COLUMNS)} (found {sorted(map(str, row))}).")
        prompt = _text(row, "prompt", number, allow_empty=False)
        chosen, rejected = _text(row, "chosen", number), _text(row, "rejected", number)
        margin = row.get("margin")
        if margin is not None and margin != "":
            try:
                margin = float(margin)
            except (TypeError, ValueError):
                raise PreferenceError(f"Row {number} has margin {margin!r}, which is not a number.") from None
            if not math.isfinite(margin):
                raise PreferenceError(f"Row {number} has margin {margin}; margins must be finite.")
        else:
            margin = None
        if chosen == rejected:
            warnings["identical completions (dropped)"] = warnings.get("identical completions (dropped)", 0) + 1
            continue
        pairs.append(PreferencePair(prompt, chosen, rejected, margin, str(row.get("source") or "")))
    return Preferences(pairs, warnings)


def load_pairs(source: Any) -> Preferences:
    """Read and validate preference pairs from a file, folder, rows or ``datasets.Dataset``.

    Raises:
        PreferenceError: no usable pair, or a malformed row (naming it).
    """
    from lmgym.datasets import read_records

    rows = read_records(source, PreferenceError)
    out = parse_pairs(rows)
    if not out.pairs:
        raise PreferenceError(f"The preference data {source!r} has no usable pairs (rows: {len(rows)}).")
    return out


def write_pairs(path: str | os.PathLike, pairs: Sequence[PreferencePair]) -> None:
    """Write pairs as JSON lines, atomically."""
    write_jsonl(path, ({k: v for k, v in asdict(p).items() if k in COLUMNS or v not in (None, "")} for p in pairs))


__all__ = ["COLUMNS", "PreferencePair", "Preferences", "load_pairs", "parse_pairs", "write_pairs"]
