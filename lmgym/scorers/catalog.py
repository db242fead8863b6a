"""The ``lmgym scorers`` command: every registered scorer with its range, direction and needs.

Rows come from the scorer classes' own attributes (``name``, ``range``, ``higher_is_better``,
``library``, ``extra``) and the first line of their docstrings; nothing here repeats them. A
registered factory is imported to read them but never called, so no model loads.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
from collections.abc import Sequence
from typing import Any

from lmgym.scorers import base
from lmgym.scorers.base import Scorer, scorer_names

COLUMNS = ("name", "range", "higher_is_better", "library", "extra", "description")


def format_range(lo: float, hi: float) -> str:
    """``(0.0, inf)`` -> ``"[0, inf)"``: brackets say whether an end is reached."""

    def end(v: float) -> str:
        return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"

    return f"{'(' if lo == -math.inf else '['}{end(lo)}, {end(hi)}{')' if hi == math.inf else ']'}"


def scorer_row(name: str) -> dict[str, Any]:
    """Describe the scorer registered as ``name`` from its class attributes."""
    try:
        factory = base._resolve(base._REGISTRY[name])
    except Exception as exc:  # a broken third-party entry point should not hide the others
        return {
            "name": name,
            "range": "?",
            "higher_is_better": "?",
            "library": "?",
            "extra": "?",
            "description": f"(cannot import: {type(exc).__name__}: {exc})",
        }
    if isinstance(factory, Scorer):
        cls, obj = type(factory), factory
    elif inspect.isclass(factory) and issubclass(factory, Scorer):
        cls, obj = factory, factory
    else:  # a plain function or a factory of unknown type: describe what we can
        doc = (inspect.getdoc(factory) or "").splitlines()
        return {
            "name": name,
            "range": "?",
            "higher_is_better": "?",
            "library": getattr(factory, "__module__", "?"),
            "extra": "",
            "description": doc[0] if doc else "",
        }
    doc = (inspect.getdoc(cls) or "").splitlines()
    return {
        "name": name,
        "range": format_range(*obj.range),
        "higher_is_better": "yes" if obj.higher_is_better else "no",
        "library": obj.library,
        "extra": obj.extra or "",
        "description": doc[0] if doc else "",
    }


def scorer_table() -> list[dict[str, Any]]:
    """One row per registered scorer (built-in and entry-point ones), sorted by name."""
    return [scorer_row(n) for n in scorer_names()]


def to_markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """Rows as a Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``lmgym scorers [--format table|markdown|json] [NAME ...]``."""
    from lmgym.cli import format_table

    parser = argparse.ArgumentParser(prog="lmgym scorers", description="List registered scorers.")
    parser.add_argument("names", nargs="*", help="only these scorers (default: all)")
    parser.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    args = parser.parse_args(list(argv or []))
    if args.names:
        from lmgym.errors import UnknownScorerError

        known = scorer_names()
        for n in args.names:
            if n not in known:
                raise UnknownScorerError(n, known)
        rows = [scorer_row(n) for n in args.names]
    else:
        rows = scorer_table()
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "markdown":
        print(to_markdown(rows))
    else:
        print(format_table(rows, COLUMNS))
    return 0
