"""``lmgym rlhf-bench`` and ``lmgym tool-bench``: records, tables generated from them, and the committed results."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from lmgym.agents.bench import rlhf, tools

REPO = Path(__file__).resolve().parent.parent


def fake_rlhf_record(env: str, seed: int, sft: float, final: float) -> dict:
    curve = [{"iteration": 0, "kl": 0.0, "true": sft, "proxy": -1.0},
             {"iteration": 3, "kl": 1.5, "true": final, "proxy": 0.5}]
    return {"env": env, "seed": seed, "annotator": {"pairs": 900, "flipped": 90, "agreement": 0.9},
            "rm_accuracy": 0.8, "rm_calibration": [], "sft": curve[0], "final": curve[-1], "best_true": curve[-1],
            "curve": curve, "prompts": 300, "noise": 0.1, "rm_steps": 100, "iterations": 3, "minutes": 1.0,
            "command": f"lmgym rlhf-bench --envs {env} --seeds {seed}", "commit": "abc1234", "dirty": False,
            "machine": {"cpu": "test", "cores": 2}}


def test_rlhf_tables_come_from_the_records(tmp_path):
    out = tmp_path / "rlhf"
    (out / "results").mkdir(parents=True)
    for seed, (sft, final) in enumerate([(1.0, 1.5), (1.1, 1.4), (0.9, 1.6)]):
        record = fake_rlhf_record("lmgym/PositiveReview-v1", seed, sft, final)
        (out / "results" / f"PositiveReview-v1__s{seed}.json").write_text(json.dumps(record))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{rlhf.README_BEGIN}\nold\n{rlhf.README_END}\n")
    assert rlhf.main(["--table-only", "--output", str(out), "--readme", str(readme)]) == 0
    gains = [0.5, 0.3, 0.7]
    row = f"**{statistics.mean(gains):+.4f} ± {statistics.stdev(gains):.4f}**"
    assert row in (out / "README.md").read_text() and row in readme.read_text()
    assert (out / "PositiveReview-v1.png").stat().st_size > 1000
    assert rlhf.main(["--table-only", "--output", str(tmp_path / "none")]) == 2


def test_tool_bench_runs_a_variant_and_tables_it(tmp_path, capsys):
    out = tmp_path / "tools"
    args = ["--variants", "no-tool", "--seeds", "0", "--sft-steps", "5", "--iterations", "1", "--eval-every", "1",
            "--episodes", "20", "--threads", "1", "--output", str(out)]
    assert tools.main(args) == 0
    record = json.loads((out / "results" / "no-tool__s0.json").read_text())
    assert record["env_kwargs"] == {"max_calls": 0} and record["final"]["episodes"] == 20
    assert sum(v["problems"] for v in record["final"]["by_level"].values()) == 20
    assert [p["iteration"] for p in record["curve"]] == [0, 1]
    assert "| no-tool | 1 |" in (out / "README.md").read_text()
    assert (out / "curves.png").exists()


def committed(name: str) -> list[dict]:
    results = REPO / "leaderboards" / name / "results"
    if not results.is_dir():
        pytest.skip(f"no committed {name} benchmark yet")
    return [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]


def test_committed_rlhf_results_beat_sft_on_the_true_metric():
    """Per env: 3 seeds from one clean commit; the reward model is far above chance on held-out pairs, and PPO
    against it alone raises the true task metric over SFT (mean gain above its std); README blocks agree."""
    records = committed("rlhf")
    assert {r["commit"] for r in records} and not any(r["dirty"] for r in records)
    output = REPO / "leaderboards" / "rlhf"
    assert rlhf.readme_block(records) in (REPO / "README.md").read_text()
    assert (output / "README.md").read_text() == rlhf.summarize(output, records)
    for env, rows in rlhf.by_env(records).items():
        assert len({r["seed"] for r in rows}) >= 3, env
        assert min(r["rm_accuracy"] for r in rows) >= 0.6, env  # chance is 0.5, 1 - noise (0.9) about the ceiling
        gains = [r["final"]["true"] - r["sft"]["true"] for r in rows]
        assert statistics.mean(gains) > statistics.stdev(gains) > 0 or min(gains) > 0, env


def test_committed_tool_results_the_calculator_pays():
    """3 seeds per variant from one clean commit; with the calculator the trained agent is more accurate than
    without it on every seed, and it calls the tool; README blocks agree."""
    records = committed("tools")
    assert not any(r["dirty"] for r in records)
    assert tools.readme_block(records) in (REPO / "README.md").read_text()
    assert (REPO / "leaderboards" / "tools" / "README.md").read_text() == tools.summarize(records)
    by = {(r["variant"], r["seed"]): r for r in records}
    seeds = sorted({s for _, s in by})
    assert len(seeds) >= 3 and all((v, s) in by for v in tools.VARIANTS for s in seeds)
    for s in seeds:
        tool, plain = by[("tool", s)]["final"], by[("no-tool", s)]["final"]
        assert tool["accuracy"] > plain["accuracy"] + 0.1 and tool["call_rate"] > 0.5 and plain["call_rate"] == 0
