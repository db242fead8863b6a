"""``lmgym train``: flags generated from TrainConfig, run outputs, errors, seq2seq, scorer override."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from lmgym.agents.train import TrainConfig
from lmgym.agents.train.cli import build_parser, config_from_args, main
from lmgym.agents.train.metrics import read_metrics
from lmgym.cli import main as lmgym_main
from lmgym.flags import field_docs

TINY = ["--env", "lmgym/Copy-v0", "--env-kwargs", "length=3", "vocab_size=5", "--sft-steps", "5",
        "--sft-batch-size", "16", "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--num-envs", "16",
        "--epochs", "1", "--minibatches", "2", "--iterations", "2", "--eval-examples", "16",
        "--eval-batch-size", "16", "--no-progress", "--threads", "1"]

REQUIRED_METRICS = ["reward/mean", "objective/kl", "objective/kl_coef", "losses/policy", "losses/value",
                    "losses/entropy", "policy/approx_kl", "policy/clipfrac", "charts/tokens_per_s", "eval/score"]


def test_every_field_is_a_documented_flag():
    parser = build_parser()
    flags = {opt for action in parser._actions for opt in action.option_strings}
    docs = field_docs(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in flags, field.name
        assert docs.get(field.name), f"TrainConfig.{field.name} has no docstring"


def test_flags_parse_to_typed_values():
    config = config_from_args(["--env-kwargs", "length=3", "tokenizer=./tok", "--no-whiten-advantages",
                               "--target-kl", "none", "--target-approx-kl", "0.05", "--iterations", "7",
                               "--scorer", "exact_match"])
    assert config.env_kwargs == {"length": 3, "tokenizer": "./tok"}
    assert config.whiten_advantages is False and config.target_kl is None
    assert config.target_approx_kl == 0.05 and config.iterations == 7 and config.scorer == "exact_match"
    assert config_from_args(["--env-kwargs", '{"length": 4}']).env_kwargs == {"length": 4}
    assert config_from_args([]) == TrainConfig()


def test_bad_values_exit_with_a_message(capsys):
    assert main(["--num-envs", "0"]) == 2
    assert "--num-envs must be an integer >= 1" in capsys.readouterr().err
    assert main(["--env-kwargs", "novalue"]) == 2
    with pytest.raises(SystemExit):
        main(["--algo", "dqn"])
    with pytest.raises(SystemExit) as exc:
        lmgym_main(["train", "--help"])
    assert exc.value.code == 0
    assert "--sft-steps" in capsys.readouterr().out


def test_train_writes_the_run_folder(tmp_path, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    before = torch.get_num_threads()
    assert lmgym_main(["train", *TINY, "--output-dir", str(tmp_path), "--name", "r", "--threads", "2"]) == 0
    assert torch.get_num_threads() == before  # the run's thread count does not leak into the caller
    out = capsys.readouterr().out
    assert "| SFT |" in out and "| SFT+PPO |" in out
    run = tmp_path / "r"
    records = read_metrics(run / "metrics.jsonl")
    ppo = [r for r in records if r["phase"] == "ppo"]
    assert [r["step"] for r in ppo] == [1, 2]
    assert all(key in ppo[-1] for key in REQUIRED_METRICS)
    assert any(r["phase"] == "sft" and "sft/loss" in r for r in records)
    for name in ("results.md", "results.json", "learning_curve.png", "config.json", "eval_reference.json"):
        assert (run / name).is_file(), name
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(run / "tensorboard"))
    results = json.loads((run / "results.json").read_text())
    assert set(results["before"]) >= {"score", "reward", "kl", "length", "samples"}
    assert results["after"]["kl"] >= 0
    AutoModelForCausalLM.from_pretrained(run / "policy")  # plain transformers loads the trained policy
    assert (run / "policy" / "value_head.safetensors").is_file()

    # --resume takes the saved config; explicit flags (here --iterations) override it.
    assert main(["--resume", str(run), "--iterations", "3", "--no-progress"]) == 0
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl", "ppo")]
    assert steps == [1, 2, 3]


def test_seq2seq_model_trains_a_step(tmp_path):
    from lmgym.agents.train import train

    config = config_from_args([*TINY, "--model", "default-seq2seq", "--iterations", "1", "--output-dir",
                               str(tmp_path), "--name", "t5", "--no-tensorboard"])
    results = train(config)
    assert results["history"][0]["losses/policy"] == results["history"][0]["losses/policy"]  # finite
    assert (tmp_path / "t5" / "policy" / "config.json").is_file()
    cfg = json.loads((tmp_path / "t5" / "policy" / "config.json").read_text())
    assert cfg["is_encoder_decoder"] is True


def test_sft_only_and_scorer_override(tmp_path):
    from lmgym.agents.train import train

    config = config_from_args([*TINY, "--algo", "sft", "--scorer", "exact_match", "--output-dir", str(tmp_path),
                               "--name", "s", "--no-tensorboard"])
    results = train(config)
    assert results["before"]["metric"] == "token_accuracy"  # the task metric stays the env's default
    assert "| initial |" in results["table"] and "| SFT |" in results["table"]
    assert not (tmp_path / "s" / "checkpoints").exists()
    assert (tmp_path / "s" / "policy" / "model.safetensors").is_file()


def test_lora_ppo_run(tmp_path):
    pytest.importorskip("peft")
    from lmgym.agents.train import train

    config = config_from_args([*TINY, "--lora-r", "4", "--iterations", "1", "--output-dir", str(tmp_path),
                               "--name", "lora", "--no-tensorboard"])
    results = train(config)
    assert results["after"]["kl"] >= 0
    assert not (tmp_path / "lora" / "policy" / "adapter_config.json").exists()  # merged: plain transformers
