"""``lmgym offline-bench``: one JSON per (env, learner, seed), tables generated from them, README block, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from lmgym.agents.bench import offline
from lmgym.agents.bench.sweep import read_results
from lmgym.agents.train import TrainConfig

REPO = Path(__file__).resolve().parent.parent
TINY = ["--envs", "lmgym/Copy-v0", "--seeds", "0", "--prompts", "6", "--iterations", "2", "--ilql-iterations", "3",
        "--steps-per-iteration", "3", "--betas", "2", "0", "--logs-sft-steps", "5"]


def test_runs_write_records_and_the_tables_come_from_them(tmp_path, capsys):
    out = tmp_path / "offline"
    assert offline.main([*TINY, "--output", str(out)]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    assert set(records) == {f"Copy-v0__{learner}__s0" for learner in offline.LEARNERS}
    ilql = records["Copy-v0__ilql__s0"]
    assert set(ilql["betas"]) == {"0.0", "2.0"} and ilql["score"] == ilql["betas"]["0.0"]
    assert ilql["settings"]["iterations"] * ilql["settings"]["ilql_steps_per_iteration"] == 9  # --ilql-iterations
    assert records["Copy-v0__sft-all__s0"]["settings"]["sft_steps"] == 6  # --iterations x --steps-per-iteration
    assert ilql["settings"]["ilql_target_alpha"] == offline.DEFAULT_TARGET_ALPHA
    assert records["Copy-v0__bc-top__s0"]["settings"]["data_top_fraction"] == 0.25
    logs = (out / "logs" / "Copy-v0.jsonl").read_text().splitlines()
    assert len(logs) == 18  # 3 writers x 6 prompts
    table = (out / "README.md").read_text()
    assert table == offline.summarize(out, 2.0)
    sft_all = records["Copy-v0__sft-all__s0"]["score"]
    assert "| lmgym/Copy-v0 | `token_accuracy` | 1 |" in table and f"{sft_all:.4f} ± 0.0000" in table
    assert f"**{ilql['betas']['2.0'] - sft_all:+.4f} ± 0.0000**" in table
    commit = (ilql["commit"] or "?")[:7]
    assert f"--betas 2.0 0.0  # {commit}: sft-all, bc-top, ilql\n" in table  # the command, what it wrote and where
    assert ilql["settings"]["ilql_awac_temperature"] == offline.DEFAULT_AWAC_TEMPERATURE
    assert ilql["settings"]["ilql_learning_rate"] == TrainConfig.sft_learning_rate  # the SFT learners' rate

    # A rerun skips the runs already there; --readme fills the block from the same JSON.
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{offline.README_BEGIN}\nold\n{offline.README_END}\noutro\n")
    before = {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert offline.main([*TINY, "--output", str(out), "--readme", str(readme)]) == 0
    assert before == {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert readme.read_text() == f"intro\n{offline.readme_block(out, 2.0)}\noutro\n"


def test_errors_exit_2(tmp_path, capsys):
    assert offline.main(["--table-only", "--output", str(tmp_path)]) == 2
    assert "run lmgym offline-bench first" in capsys.readouterr().err
    assert offline.main([*TINY, "--iterations", "0", "--output", str(tmp_path)]) == 2


def test_committed_offline_results_and_readme_agree():
    """The README's offline table is what the committed JSON gives, from clean commits, 3 seeds per env."""
    output = REPO / "leaderboards" / "offline"
    if not (output / "results").is_dir():
        pytest.skip("no committed offline benchmark yet")
    block = offline.readme_block(output, offline.DEFAULT_BETAS[0])
    assert block in (REPO / "README.md").read_text()
    assert (output / "README.md").read_text() == offline.summarize(output, offline.DEFAULT_BETAS[0])
    records = read_results(output, *offline.NO_RESULTS)
    assert not any(r["dirty"] for r in records)
    for env in {r["env"] for r in records}:
        for learner in offline.LEARNERS:
            assert sorted(r["seed"] for r in records if r["env"] == env and r["learner"] == learner) == [0, 1, 2]
