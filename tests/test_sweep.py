"""lmgym sweep: config parsing, tables generated from the JSON alone, and the README block it owns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from lmgym.agents.bench import sweep
from lmgym.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_parse_config():
    assert sweep.parse_config("gae:") == ("gae", {})
    name, over = sweep.parse_config("rloo:advantage=rloo learning_rate=1e-4 iterations=40")
    assert name == "rloo" and over == {"advantage": "rloo", "learning_rate": 1e-4, "iterations": 40}
    for bad in ["noname", ":x=1", "a:nofield=1", "a:advantage"]:
        with pytest.raises(ConfigError):
            sweep.parse_config(bad)


def _record(env, config, seed, sft, ppo):
    return {"env": env, "config": config, "overrides": {}, "seed": seed, "sft": sft, "ppo": ppo, "gain": ppo - sft,
            "kl": 1.0, "minutes": 2.0, "ppo_minutes": 0.5, "command": f"lmgym sweep --seeds {seed}",
            "commit": "abcdef123", "dirty": False, "machine": {"cpu": "cpu", "cores": 2}}


def _write(tmp_path, records):
    (tmp_path / "results").mkdir()
    for r in records:
        sweep.result_file(tmp_path, r["env"], r["config"], r["seed"]).write_text(json.dumps(r))


def test_tables_come_from_the_json(tmp_path):
    _write(tmp_path, [_record("lmgym/Copy-v0", "gae", s, 0.5, 0.5 + 0.1 * (s + 1)) for s in range(3)]
           + [_record("lmgym/Copy-v0", "rloo", 0, 0.5, 0.4)])
    table = sweep.summarize(tmp_path)
    assert "| gae | `defaults` | lmgym/Copy-v0 | 3 | 0.5000 | 0.7000 | **+0.2000 ± 0.1000** |" in table
    assert "+0.1000, +0.2000, +0.3000" in table
    assert "| rloo |" in table and "**-0.1000 ± 0.0000**" in table
    block = sweep.readme_block(tmp_path)
    assert block.startswith(sweep.README_BEGIN) and block.endswith(sweep.README_END)
    assert "s0: 0.500 → 0.600; s1: 0.500 → 0.700; s2: 0.500 → 0.800" in block
    assert "`token_accuracy`" in block and "commit abcdef1" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{sweep.README_BEGIN}\nold\n{sweep.README_END}\noutro\n")
    sweep.update_readme(readme, block)
    assert readme.read_text() == f"intro\n{block}\noutro\n"
    assert sweep.main(["--table-only", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "README.md").read_text() == sweep.summarize(tmp_path)


def test_errors_exit_2(tmp_path, capsys):
    assert sweep.main(["--table-only", "--output", str(tmp_path)]) == 2
    assert "run a sweep first" in capsys.readouterr().err
    assert sweep.main(["--config", "x:bogus=1", "--output", str(tmp_path)]) == 2


def test_committed_sweep_and_readme_agree():
    """The README's 3-seed table is exactly what the committed sweep JSON gives, and RL pays on every seed."""
    output = REPO / "leaderboards" / "sweep"
    block = sweep.readme_block(output)
    assert block in (REPO / "README.md").read_text()
    assert (output / "README.md").read_text() == sweep.summarize(output)
    gae = [r for r in sweep.read_results(output) if r["config"] == "gae"]
    assert {r["env"] for r in gae} == set(sweep.DEFAULT_ENVS)
    assert all(r["gain"] > 0 and not r["dirty"] for r in gae)
    main_job = [r for r in gae if r["env"] == "lmgym/PositiveReview-v1"]
    assert len(main_job) == 3 and all(r["gain"] >= 0.02 for r in main_job)
