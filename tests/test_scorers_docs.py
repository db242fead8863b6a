"""The scorer docs execute and agree with the scorer classes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmgym.scorers import base
from lmgym.scorers.catalog import scorer_table

README = Path(__file__).resolve().parents[1] / "README.md"


def scorer_section() -> str:
    """The README's "## Scorers" section (up to the next second-level heading)."""
    text = README.read_text()
    start = text.index("\n## Scorers\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


@pytest.fixture()
def registry_snapshot():
    saved = dict(base._REGISTRY)
    yield
    base._REGISTRY.clear()
    base._REGISTRY.update(saved)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_code_blocks_run(registry_snapshot, capsys):
    blocks = python_blocks(scorer_section())
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    details = namespace["info"]["score_details"]
    assert set(details) == {"token_accuracy", "ends_with", "brevity"}
    assert details["token_accuracy"] == 1.0 and details["brevity"] == pytest.approx(0.25)
    assert details["ends_with"] == float(namespace["info"]["completion"].endswith("b"))
    assert namespace["reward"] == pytest.approx(1.0 + 0.5 * details["ends_with"] + 0.025)
    assert "token_accuracy" in capsys.readouterr().out


def test_table_matches_scorer_classes():
    rows = {r["name"]: r for r in scorer_table()}
    documented = set()
    for line in scorer_section().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`(\w+)`", cells[0])
        for name in names:
            documented.add(name)
            row = rows[name]
            assert cells[1] == row["range"], name
            assert cells[2] == row["higher_is_better"], name
            assert cells[3] == row["library"], name
            assert cells[4].split(" ")[0] == row["extra"].split(" ")[0], name
    builtin = {n for n, f in base._REGISTRY.items() if isinstance(f, str) and f.startswith("lmgym.")}
    assert builtin <= documented
