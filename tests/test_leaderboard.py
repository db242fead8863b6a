"""Generated leaderboards: README tables and curves from result JSON only, numbers exact."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from lmgym.leaderboard import (
    MIN_SEEDS,
    RESULT_FIELDS,
    build_leaderboard,
    config_key,
    format_mean_std,
    load_results,
    mean_curve,
)

SCORES = {  # agent -> final score per seed
    "sb3-ppo": [0.81, 0.9, 0.77],
    "random": [0.12, 0.1, 0.15],
    "lmgym-ppo-sft": [0.95, 0.97, 0.99],
}


def record(
    agent: str, seed: int, final: float, *, env_id: str = "lmgym/Copy-v0", budget: int = 20_000, kl: float | None = None
) -> dict:
    """A complete result record (every field of RESULT_FIELDS) with a 3-point curve."""
    return {
        "schema": 1,
        "env_id": env_id,
        "env_version": 0,
        "env_kwargs": {"length": 3, "vocab_size": 10},
        "agent": agent,
        "agent_kind": "lm" if agent.startswith("lmgym") else "sb3",
        "agent_config": {},
        "seed": seed,
        "budget": budget,
        "steps": budget + 480,
        "final_score": final,
        "best_score": final + 0.01,
        "kl": kl,
        "eval_episodes": 45,
        "eval_split": "validation",
        "curve": [[0, 0.1], [budget // 2, (0.1 + final) / 2], [budget + 480, final]],
        "wall_time_s": 30.0 + seed,
        "cpu_time_s": 29.0,
        "tokens_per_s": 700.0 + 10 * seed,
        "preset": "full",
        "command": "lmgym bench --preset full",
        "commit": "0123456789abcdef",
        "commit_dirty": False,
        "machine": {"cpu": "Test CPU", "cores": 2, "torch": "2.13.0", "device": "cpu"},
    }


def write(results: Path, records: list[dict]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(records):
        (results / f"{i:03d}.json").write_text(json.dumps(r))


def table_rows(readme: str, heading: str, budget: str = "20,000") -> dict[str, list[str]]:
    """The cells of the table of ``budget`` under ``## heading``, by agent."""
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    table = section.split(f"Budget **{budget}**", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| agent")]
    return {cells[0]: cells for cells in ([c.strip() for c in row.strip("|").split("|")] for row in rows)}


@pytest.fixture
def board(tmp_path: Path) -> tuple[Path, str]:
    records = [
        record(a, s, v, kl=0.5 + s if a.startswith("lmgym") else None)
        for a, vals in SCORES.items()
        for s, v in enumerate(vals)
    ]
    records.append(record("sb3-a2c", 0, 0.4))  # a single seed: marked
    records.append(record("sb3-ppo", 0, 0.3, budget=5_000))  # another budget: another table
    records.append(record("random", 0, 0.05, env_id="lmgym/Reverse-v0"))
    records.append({**record("simple", 0, 0.2, env_id="lmgym/Reverse-v0"), "extra": {"baseline": "lead-2"}})
    write(tmp_path / "results", records)
    readme = build_leaderboard(tmp_path / "results", tmp_path)
    return tmp_path, readme.read_text()


def test_tables_hold_the_exact_mean_and_sample_std_over_seeds(board):
    _, readme = board
    rows = table_rows(readme, "lmgym/Copy-v0")
    for agent, values in SCORES.items():
        cells = rows[agent]
        assert cells[2] == f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"
        assert cells[3] == f"{statistics.fmean(v + 0.01 for v in values):.3f}"  # best
        assert cells[4] == "3"
        assert cells[5] == "20,480"
        assert cells[7] == f"{statistics.fmean([700.0, 710.0, 720.0]):,.0f}"
        assert cells[8] == f"{statistics.fmean([30.0, 31.0, 32.0]):,.1f}"
    assert rows["lmgym-ppo-sft"][6] == "1.500"  # mean KL of 0.5, 1.5, 2.5
    assert rows["sb3-ppo"][6] == "—"  # no KL for SB3
    assert rows["sb3-a2c"][2] == "0.400" and rows["sb3-a2c"][4] == "1 †"
    # sorted by mean score, best first
    assert list(rows) == ["lmgym-ppo-sft", "sb3-ppo", "sb3-a2c", "random"]
    assert list(table_rows(readme, "lmgym/Reverse-v0")) == ["simple (lead-2)", "random"]


def test_one_table_per_budget_and_a_section_per_env(board):
    out, readme = board
    assert readme.count("## lmgym/Copy-v0") == 1 and readme.count("## lmgym/Reverse-v0") == 1
    copy_section = readme.split("## lmgym/Copy-v0\n", 1)[1].split("\n## ", 1)[0]
    assert "Budget **5,000** env steps" in copy_section and "Budget **20,000** env steps" in copy_section
    assert copy_section.count("| agent |") == 2
    assert copy_section.index("**5,000**") < copy_section.index("**20,000**")  # configs by budget
    assert table_rows(readme, "lmgym/Copy-v0", "5,000")["sb3-ppo"][2] == "0.300"
    # Two configurations on Copy: two curve files with config hashes; Reverse has one plain file.
    pngs = sorted(p.name for p in (out / "curves").glob("*.png"))
    assert len(pngs) == 3 and "Reverse-v0.png" in pngs
    for name in pngs:
        assert (out / "curves" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](curves/{name})" in readme
    assert f"fewer than {MIN_SEEDS} seeds" in readme and "Test CPU (2 cores)" in readme
    assert "- Cost: 13 runs, 6.3 CPU-minutes in total" in readme  # 13 x 29 s
    assert "GENERATED" in readme.splitlines()[2]


def test_regeneration_is_deterministic(board):
    out, readme = board
    pngs = {p.name: p.read_bytes() for p in (out / "curves").glob("*.png")}
    again = build_leaderboard(out / "results", out).read_text()
    assert again == readme
    assert {p.name: p.read_bytes() for p in (out / "curves").glob("*.png")} == pngs


def test_format_and_curve_helpers():
    assert format_mean_std([0.5]) == "0.500"
    assert format_mean_std([]) == "—"
    assert format_mean_std([1.0, 2.0, 4.0]) == "2.333 ± 1.528"
    # Same steps: averaged point by point (population std); different steps: interpolated on the union.
    assert mean_curve([[[0, 0.0], [10, 1.0]], [[0, 0.5], [10, 0.5]]]) == ([0.0, 10.0], [0.25, 0.75], [0.25, 0.25])
    xs, means, _ = mean_curve([[[0, 0.0], [10, 1.0]], [[0, 0.2], [5, 0.4], [12, 1.0]]])
    assert xs == [0.0, 5.0, 10.0]
    assert means[1] == pytest.approx((0.5 + 0.4) / 2)
    assert means[2] == pytest.approx((1.0 + 0.4 + 0.6 * 5 / 7) / 2)


def test_load_results_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"agent": "a"}))
    with pytest.raises(ValueError, match="not an lmgym bench result"):
        load_results(tmp_path)
    assert config_key(record("a", 0, 0.1)) == config_key(record("b", 1, 0.2))
    assert set(record("a", 0, 0.1)) >= set(RESULT_FIELDS)


def test_empty_results_give_a_page_that_says_so(tmp_path):
    readme = build_leaderboard(tmp_path / "results", tmp_path, plots=False).read_text()
    assert "_No results yet._" in readme


def test_leaderboard_module_does_not_import_torch():
    code = "import sys, lmgym.leaderboard; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_committed_leaderboard_is_one_clean_commit_where_rl_wins_every_text_task():
    """The committed leaderboard: one clean commit, 3 seeds, and on every text task the best lmgym RL row
    beats both the task's simple baseline and the same SFT warm start without RL (mean over seeds)."""
    results = Path(__file__).resolve().parent.parent / "leaderboards" / "results"
    records = load_results(results)
    assert len({r["commit"] for r in records}) == 1 and not any(r["commit_dirty"] for r in records)
    means: dict[tuple[str, str], float] = {}
    for env in {r["env_id"] for r in records}:
        for agent in {r["agent"] for r in records if r["env_id"] == env}:
            runs = [r for r in records if r["env_id"] == env and r["agent"] == agent]
            assert sorted(r["seed"] for r in runs) == [0, 1, 2], (env, agent)
            means[env, agent] = statistics.mean(r["final_score"] for r in runs)
    text_envs = {env for env, agent in means if agent == "simple"}
    assert len(text_envs) == 4
    for env in text_envs:
        best_rl = max(means[env, a] for a in ("lmgym-ppo-sft", "lmgym-ppo-sft-grpo", "lmgym-ppo"))
        assert best_rl > means[env, "simple"] and best_rl > means[env, "lmgym-sft"], env
