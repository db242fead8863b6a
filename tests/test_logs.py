"""Reward-labelled logs (lmgym.logs): formats, validation errors, counted warnings, filtered BC's top fraction."""

from __future__ import annotations

import csv
import json
import math

import pytest

from lmgym.errors import LogsError, TaskError
from lmgym.logs import LoggedSample, RewardLogs, load_logs, write_logs

ROWS = [
    {"prompt": "the soup was", "completion": "great .", "reward": 1.0, "agent": "a"},
    {"prompt": "the soup was", "completion": "awful .", "reward": -1.0, "agent": "b"},
    {"prompt": "the bread was", "completion": "", "reward": 0.25, "agent": "b"},
]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_every_format_reads_the_same_samples(tmp_path):
    from_list = load_logs(ROWS)
    assert [s.reward for s in from_list.samples] == [1.0, -1.0, 0.25]
    assert from_list.samples[0] == LoggedSample("the soup was", "great .", 1.0, "a", None)
    with open(tmp_path / "logs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["prompt", "completion", "reward", "agent"])
        writer.writeheader()
        writer.writerows(ROWS)
    datasets = pytest.importorskip("datasets")
    for source in (_jsonl(tmp_path / "logs.jsonl", ROWS), tmp_path / "logs.csv", datasets.Dataset.from_list(ROWS)):
        assert load_logs(source).samples == from_list.samples, source


def test_write_then_load_round_trips(tmp_path):
    samples = [LoggedSample("p é 🙂", "c \"q\"", 0.5, "sft", 3), LoggedSample("p2", "c2", -2.0)]
    write_logs(tmp_path / "out.jsonl", samples)
    assert load_logs(tmp_path / "out.jsonl").samples == samples


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([{"prompt": "a", "completion": "b", "reward": float("nan")}, ROWS[0]], "finite"),
        ([{"prompt": "a", "completion": "b", "reward": None}, ROWS[0]], "no reward"),
        ([{"prompt": "a", "completion": "b"}, ROWS[0]], "lacks the column"),
        ([{"prompt": "a", "completion": "b", "reward": "good"}, ROWS[0]], "not a number"),
        ([{"prompt": " ", "completion": "b", "reward": 1}, ROWS[0]], "empty or non-text prompt"),
        ([{**ROWS[0], "reward": 2.0}, {**ROWS[1], "reward": 2.0}], "constant reward"),
        ([], "no rows"),
    ],
)
def test_bad_logs_raise_a_typed_error_naming_the_row(rows, match):
    with pytest.raises(LogsError, match=match):
        load_logs(rows)


def test_logs_error_is_a_task_error_and_missing_files_are_named(tmp_path):
    assert issubclass(LogsError, TaskError)
    with pytest.raises(LogsError, match="does not exist"):
        load_logs(str(tmp_path / "missing.jsonl"))


def test_empty_completions_are_counted_not_fatal():
    logs = load_logs(ROWS)
    assert logs.warnings == {"empty completion": 1}
    assert len(logs) == 3


def test_top_fraction_keeps_the_best_rows_in_file_order():
    logs = RewardLogs([LoggedSample("p", str(i), float(r)) for i, r in enumerate([3, 9, 1, 7, 5])])
    kept = logs.top_fraction(0.4)
    assert [s.completion for s in kept.samples] == ["1", "3"]  # rewards 9 and 7, in file order
    assert len(logs.top_fraction(1.0)) == 5 and len(logs.top_fraction(0.01)) == 1
    with pytest.raises(LogsError):
        logs.top_fraction(0)


def test_by_agent_summarises_the_writers():
    spread = load_logs(ROWS).by_agent()
    assert spread["a"] == {"n": 1, "mean": 1.0}
    assert math.isclose(spread["b"]["mean"], -0.375)
