"""``lmgym eval``: argument parsing, output, exit codes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lmgym.cli import main as cli_main
from lmgym.errors import ConfigError
from lmgym.evaluate import format_result, full_env_id, main
from lmgym.flags import parse_kwargs


def test_eval_prints_mean_and_std(capsys):
    assert cli_main(["eval", "lmgym/Summarize-v0", "--agent", "oracle", "--episodes", "5"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"lmgym/Summarize-v0\s+oracle\s+validation\s+n=5\s+score 1\.0000 ± 0\.0000", out), out


def test_eval_several_agents_json_and_env_kwargs(capsys):
    argv = ["Translate-v0", "--agent", "random,dictionary", "--episodes", "4", "--split", "test", "--seed", "2",
            "--env-kwargs", "direction=xx-en", "max_new_tokens=18", "--json"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["agent"] for r in rows] == ["random", "dictionary"]
    assert all(r["env"] == "lmgym/Translate-v0" and r["split"] == "test" and r["n"] == 4 for r in rows)
    assert rows[0]["mean"] < rows[1]["mean"]
    assert "scores" not in rows[0]


def test_weighted_scorers_show_their_parts(capsys):
    assert main(["PositiveReview-v0", "--agent", "template", "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "sentiment:" in out and "ngram_fluency:" in out and "repetition:" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lmgym/Summarize-v0", "--agent", "dictionary"], "works on translate"),
        (["lmgym/Summarize-v0", "--agent", "oracel"], "Did you mean 'oracle'"),
        (["lmgym/Summarise-v0"], "Summarize"),
        (["lmgym/Summarize-v0", "--kw", "corpus_sed=1"], "corpus_seed"),
        (["lmgym/Summarize-v0", "--kw", "novalue"], "key=value"),
        (["lmgym/Summarize-v0", "--split", "dev"], "Unknown split"),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys, argv, message):
    assert main([*argv, "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmgym eval: error:") and message in err, err


def test_parse_kwargs_and_helpers():
    assert parse_kwargs(["a=1", "b=xx-en", "c=None", "d={'source': 'x'}", "e=1.5"]) == {
        "a": 1, "b": "xx-en", "c": None, "d": {"source": "x"}, "e": 1.5}
    with pytest.raises(ConfigError):
        parse_kwargs(["=3"])
    assert full_env_id("Copy-v0") == "lmgym/Copy-v0" and full_env_id("other/X-v1") == "other/X-v1"
    line = format_result({"env": "e", "agent": "a", "split": "s", "n": 2, "mean": 0.5, "std": 0.1, "min": 0.4,
                          "max": 0.6, "seconds": 0.0, "details": {"x": 0.5}})
    assert "score 0.5000 ± 0.1000" in line


def test_help_lists_the_agents(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "lead-N" in capsys.readouterr().out


def test_trained_policy_folder_is_an_eval_agent(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    import gymnasium as gym

    from lmgym.agents.ppo.policy import build_policy
    from lmgym.agents.ppo.rollout import SamplingConfig, collect_rollout
    from lmgym.baselines import make_batched_agent
    from lmgym.heldout import evaluate_agent, make_heldout_envs

    kwargs = {"length": 4, "vocab_size": 6}
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=5, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", **kwargs)
    policy = build_policy("default", envs.env.tokenizer, 16, n_layer=1, n_embd=32, n_head=2, seed=3).eval()
    folder = tmp_path / "policy"
    policy.save_pretrained(str(folder), tokenizer=envs.env.tokenizer)
    heldout = make_heldout_envs("lmgym/Copy-v0", 3, **kwargs)
    result = evaluate_agent(heldout, make_batched_agent(str(folder), heldout), episodes=5)  # rounds of 3 + 2
    assert result.example_index == [0, 1, 2, 3, 4]
    # the folder's KV-cached greedy agent gives the batched greedy rollout's episodes
    obs, _ = envs.reset(options={"split": "validation", "example_index": np.arange(5)})
    with torch.no_grad():
        batch = collect_rollout(policy, envs, SamplingConfig(temperature=0.0), obs=obs)
    assert result.rewards == pytest.approx(batch.scores.tolist())
    assert result.completions == batch.completions
    assert main(["Copy-v0", "--agent", f"random,{folder}", "--episodes", "3", "--kw", "length=4",
                 "--kw", "vocab_size=6", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["agent"] for r in rows] == ["random", str(folder)] and rows[1]["n"] == 3
    with pytest.raises(ConfigError, match="not a model folder"):
        make_batched_agent(str(tmp_path), heldout)
