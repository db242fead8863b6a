"""``lmgym bench``: presets, the agent registry, result files and the CLI (tiny budgets, seconds)."""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

import lmgym
from lmgym.agents.bench.agents import BENCH_AGENTS, RunSpec
from lmgym.agents.bench.grid import GRID_PRESETS, main, result_path, run_grid
from lmgym.leaderboard import RESULT_FIELDS

COPY = {"length": 2, "vocab_size": 3, "max_new_tokens": 4}


def test_presets_cover_every_env_and_skip_agents_that_do_not_apply():
    for preset in GRID_PRESETS.values():
        assert set(preset.agents) <= set(BENCH_AGENTS)
        specs = preset.specs()
        # full: the toy envs and the text tasks at -v1 (where RL has headroom); tiny: every env
        expected = set(preset.envs or lmgym.env_ids())
        assert {s.env_id for s in specs} == expected
        assert not [s for s in specs if s.agent == "simple" and s.env_id in ("lmgym/Copy-v0", "lmgym/Reverse-v0")]
        assert {s.env_id for s in specs if s.agent == "simple"} == expected - {
            "lmgym/Copy-v0",
            "lmgym/Reverse-v0",
            "lmgym/Calculator-v0",  # no simple baseline: the no-tool variant is its comparison (lmgym tool-bench)
        }
    full = GRID_PRESETS["full"]
    assert full.seeds == (0, 1, 2)
    assert {"lmgym-sft", "lmgym-ppo-sft"} <= set(full.agents)
    assert {e for e in full.envs if e.endswith("-v1")} == {f"lmgym/{t}-v1" for t in
                                                           ("Summarize", "Translate", "PositiveReview", "Keywords")}
    tiny = {s.env_id: s for s in GRID_PRESETS["tiny"].specs(agents=["random"])}
    assert tiny["lmgym/Copy-v0"].env_kwargs == COPY  # "*" defaults merged under the env's own kwargs
    assert tiny["lmgym/Summarize-v0"].env_kwargs == {"max_new_tokens": 4}
    assert GRID_PRESETS["tiny"].specs(envs=["lmgym/Copy-v0"], seeds=[4], budget=99)[0].budget == 99


def test_grid_writes_complete_result_files(tmp_path):
    specs = [
        RunSpec(
            "lmgym/Copy-v0",
            agent,
            0,
            96,
            env_kwargs=COPY,
            n_envs=4,
            eval_episodes=6,
            eval_points=2,
            agent_kwargs=GRID_PRESETS["tiny"].agent_kwargs.get(agent, {}),
            preset="test",
        )
        for agent in ("sb3-ppo", "sb3-dqn", "oracle", "random")
    ]
    errors = run_grid(specs, tmp_path, command="pytest", log=lambda _: None)
    assert errors == []
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    records = {}
    for spec in specs:
        path = result_path(tmp_path / "results", spec)
        records[spec.agent] = r = json.loads(path.read_text())
        assert set(RESULT_FIELDS) <= set(r)
        assert (r["env_id"], r["env_version"], r["seed"], r["budget"], r["command"]) == (
            "lmgym/Copy-v0",
            0,
            0,
            96,
            "pytest",
        )
        assert r["commit"] == (commit or None)
        assert r["machine"]["cores"] >= 1 and r["machine"]["torch"]
        assert r["curve"][0][0] == 0 and r["final_score"] == r["curve"][-1][1]
        assert r["best_score"] == max(y for _, y in r["curve"])
        assert r["eval_episodes"] == 1 and r["eval_split"] == "validation"  # Copy 2-of-3 has 1 validation example
    assert records["oracle"]["final_score"] == 1.0 and records["oracle"]["steps"] == 0
    assert records["oracle"]["kl"] is None and records["oracle"]["tokens_per_s"] is None
    sb3 = records["sb3-ppo"]
    assert sb3["steps"] == 128  # 2 PPO rollouts of n_steps=16 x 4 envs cover the 96-step budget
    assert [x for x, _ in sb3["curve"]] == [0, 48, 96, 128]  # every budget / eval_points steps, and at the end
    assert sb3["tokens_per_s"] > 0 and sb3["agent_config"]["n_steps"] == 16
    assert records["sb3-dqn"]["steps"] == 96


def test_grid_reports_failures_and_keeps_going(tmp_path):
    specs = [
        RunSpec("lmgym/Copy-v0", "sb3-ppo", 0, 32, env_kwargs=COPY, agent_kwargs={"bogus": 1}),
        RunSpec("lmgym/Copy-v0", "oracle", 0, 32, env_kwargs=COPY, eval_episodes=3),
    ]
    errors = run_grid(specs, tmp_path, log=lambda _: None)
    assert len(errors) == 1 and "bogus" in errors[0]
    assert result_path(tmp_path / "results", specs[1]).exists()
    assert not result_path(tmp_path / "results", specs[0]).exists()


def test_lmgym_ppo_rows_record_kl_and_steps(tmp_path):
    specs = [
        RunSpec(
            "lmgym/Copy-v0",
            agent,
            0,
            96,
            env_kwargs=COPY,
            eval_episodes=4,
            eval_points=2,
            agent_kwargs=GRID_PRESETS["tiny"].agent_kwargs[agent],
        )
        for agent in ("lmgym-ppo-sft", "lmgym-ppo")
    ]
    assert run_grid(specs, tmp_path, log=lambda _: None) == []
    sft, scratch = (json.loads(result_path(tmp_path / "results", s).read_text()) for s in specs)
    for r in (sft, scratch):
        assert r["agent_kind"] == "lm" and r["kl"] is not None and r["kl"] >= 0
        assert r["steps"] == pytest.approx(96, rel=0.5)
        assert r["curve"][0][0] == 0 and r["curve"][-1][0] == r["steps"]
    assert sft["extra"]["iterations"] == 4  # 96 steps / (8 envs x (2 reference tokens + EOS))
    assert scratch["extra"]["iterations"] == 3  # 96 steps / (8 envs x the 4-token limit)
    assert sft["extra"]["sft_steps"] == 4 and scratch["extra"]["sft_steps"] == 0


def test_cli_runs_a_grid_and_rebuilds_the_leaderboard(tmp_path, capsys):
    out = tmp_path / "board"
    argv = [
        "--preset",
        "tiny",
        "--envs",
        "lmgym/Copy-v0",
        "--agents",
        "random",
        "oracle",
        "--seeds",
        "0",
        "1",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    results = sorted((out / "results").glob("*.json"))
    assert len(results) == 6
    records = [json.loads(p.read_text()) for p in results]
    assert {r["command"] for r in records} == {"lmgym bench " + " ".join(argv)}
    readme = (out / "README.md").read_text()
    randoms = [r["final_score"] for r in records if r["agent"] == "random"]
    expected = f"{statistics.fmean(randoms):.3f} ± {statistics.stdev(randoms):.3f}"
    assert f"| random | baseline | {expected} |" in readme
    assert "| oracle | baseline | 1.000 ± 0.000 |" in readme
    assert (out / "curves" / "Copy-v0.png").exists()
    # --skip-existing resumes without rerunning; --leaderboard-only rebuilds the same page.
    assert main([*argv, "--skip-existing"]) == 0
    assert "6 runs already have results" in capsys.readouterr().out
    (out / "README.md").unlink()
    assert main(["--leaderboard-only", "--out", str(out)]) == 0
    assert (out / "README.md").read_text() == readme


def test_bench_refuses_a_dirty_tree_for_the_committed_leaderboards(monkeypatch, capsys):
    from lmgym.agents.bench import grid

    monkeypatch.setattr(grid, "git_commit", lambda: ("abcdef0123", True))
    argv = ["--preset", "tiny", "--envs", "lmgym/Copy-v0", "--agents", "random", "--seeds", "0"]
    assert main([*argv, "--out", str(grid.REPO_ROOT / "leaderboards")]) == 2
    assert "uncommitted changes" in capsys.readouterr().err


def test_sft_only_agent_scores_the_warm_start(tmp_path):
    from lmgym.agents.bench.agents import lmgym_sft_runner

    spec = RunSpec("lmgym/Copy-v0", "lmgym-sft", 0, 64, env_kwargs=COPY, eval_episodes=8,
                   agent_kwargs={"sft_steps": 4, "num_envs": 8})
    result = lmgym_sft_runner(spec)
    assert result.steps == 0 and result.extra["sft_steps"] == 4
    assert 0.0 <= result.final_score <= 1.0


def test_cli_list_and_errors(capsys):
    assert main(["--list"]) == 0
    listing = capsys.readouterr().out
    for name in BENCH_AGENTS:
        assert name in listing
    assert "preset full" in listing
    assert main(["--agents", "nope"]) == 2
    assert main(["--envs", "lmgym/Nope-v0"]) == 2
    assert "Unknown envs" in capsys.readouterr().err
