"""Human in the loop (``lmgym train --label-every``): labelling rounds between PPO iterations, with the env's task
metric plus noise standing in for a person."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lmgym.errors import ConfigError
from lmgym.label import Question, parse_annotator, scripted_annotator

ENV_KWARGS = {"length": 3, "vocab_size": 5}


def test_annotator_specs_and_the_scripted_annotator():
    assert parse_annotator("terminal") == ("terminal", 0.0)
    assert parse_annotator("scorer") == ("scorer", 0.0) and parse_annotator("scorer:0.2") == ("scorer", 0.2)
    for bad in ("person", "scorer:0.5", "scorer:x", "terminal:1", "scorer:-0.1"):
        with pytest.raises(ConfigError, match="terminal.*scorer:NOISE"):
            parse_annotator(bad)
    truth = {i: (1.0, 0.0) if i % 2 else (0.0, 1.0) for i in range(200)}
    truth[7] = (0.5, 0.5)
    questions = [Question(i, "p", "x", "y") for i in range(200)]
    exact = scripted_annotator(truth, 0.0)
    assert [exact(q) for q in questions[:4]] == ["b", "a", "b", "a"] and exact(questions[7]) == "tie"
    noisy = scripted_annotator(truth, 0.25, seed=3)
    answers = [noisy(q) for q in questions]
    wrong = sum(a != exact(q) for a, q in zip(answers, questions))
    assert 30 <= wrong <= 70  # about 0.25 of 199
    assert [noisy(q) for q in reversed(questions)] == answers[::-1]  # a question's answer ignores the order asked


torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from lmgym.agents.train import TrainConfig
from lmgym.agents.train.cli import main as train_main


def tiny_config(tmp_path, **overrides):
    settings = dict(env="lmgym/Copy-v0", env_kwargs=ENV_KWARGS, algo="ppo", n_layer=1, n_embd=32, n_head=2,
                    num_envs=16, epochs=1, minibatches=2, iterations=2, eval_every=0, eval_examples=16,
                    eval_batch_size=16, threads=1, progress=False, tensorboard=False, output_dir=str(tmp_path),
                    name="loop", label_every=1, label_pairs=24, annotator="scorer:0.1", label_rm_steps=5,
                    labels=str(tmp_path / "labels.jsonl"))
    return TrainConfig(**{**settings, **overrides})


@pytest.mark.parametrize(("flags", "match"), [
    (["--label-every", "2", "--labels", "l.jsonl"], "pass --reward-model RM_DIR"),
    (["--label-every", "2", "--reward-model", "rm/model"], "--label-every needs --labels"),
    (["--labels", "l.jsonl"], "pass --label-every N too"),
    (["--label-every", "2", "--labels", "l.jsonl", "--reward-model", "rm", "--annotator", "mturk"],
     "--annotator must be 'terminal'"),
    (["--label-every", "2", "--labels", "l.jsonl", "--reward-model", "rm", "--algo", "sft"], "--algo ppo"),
    (["--label-every", "-1"], "--label-every must be"),
])
def test_bad_labelling_flags_name_the_fix(tmp_path, capsys, flags, match):
    assert train_main([*flags, "--output-dir", str(tmp_path)]) == 2
    assert match in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # nothing was written


class ScorerLog:
    """A user callback (the Python API): records the reward model in use after every iteration."""

    def __init__(self) -> None:
        self.models: list[str] = []
        self.started_at: int | None = None

    def start(self, run, trainer):
        self.started_at = trainer.iteration

    def after_iteration(self, run, trainer):
        self.models.append(os.fspath(run.envs.unwrapped.scorer.model_spec))
        assert run.eval_envs.unwrapped.scorer is run.envs.unwrapped.scorer is run.envs.env.scorer
        return {"custom/iteration": float(trainer.iteration)}


def read_labels(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_labelling_rounds_fine_tune_the_reward_model_and_training_continues(tmp_path):
    from safetensors.torch import load_file

    from lmgym.agents.rm.prefs_make import make_pairs
    from lmgym.agents.rm.train import RMConfig, train_reward_model
    from lmgym.agents.train import train
    from lmgym.agents.train.metrics import read_metrics
    from lmgym.prefs import write_pairs

    pairs, _ = make_pairs("lmgym/Copy-v0", ["oracle", "random"], prompts=40, noise=0.0, **ENV_KWARGS)
    write_pairs(tmp_path / "pairs.jsonl", pairs)
    rm = train_reward_model(RMConfig(data=str(tmp_path / "pairs.jsonl"), env="lmgym/Copy-v0", env_kwargs=ENV_KWARGS,
                                     n_layer=1, n_embd=32, n_head=2, steps=10, batch_size=16, eval_every=10,
                                     eval_fraction=0.25, threads=1, output=str(tmp_path / "rm")))
    log = ScorerLog()
    config = tiny_config(tmp_path, reward_model=rm["model_dir"])
    results = train(config, callbacks=[log])
    run_dir = results["run_dir"]
    labels = read_labels(tmp_path / "labels.jsonl")
    metrics = read_metrics(os.path.join(run_dir, "metrics.jsonl"), "ppo")
    assert [m["step"] for m in metrics] == [1, 2]
    assert [m["labels/new"] for m in metrics] == [m["labels/asked"] for m in metrics]  # every question answered
    assert len(labels) == sum(m["labels/new"] for m in metrics) > 24  # appended round after round
    assert len({r["id"] for r in labels}) == len(labels) and {r["source"] for r in labels} == {"scorer+noise(0.1)"}
    assert all(m["labels/rm_updated"] == 1.0 and 0.0 <= m["labels/rm_accuracy"] <= 1.0 for m in metrics)
    assert [m["custom/iteration"] for m in metrics] == [1.0, 2.0] and log.started_at == 0
    # Each round trained the previous round's model on every label so far, and became the reward at once.
    state = json.loads(Path(run_dir, "reward_model", "state.json").read_text())
    assert [r["iteration"] for r in state["rounds"]] == [1, 2]
    assert log.models == [r["model_dir"] for r in state["rounds"]]
    assert state["rounds"][1]["labels"] > state["rounds"][0]["labels"]
    round2 = os.path.join(run_dir, "reward_model", "round-000002")
    assert len(read_labels(os.path.join(round2, "labels.jsonl"))) == len(labels)
    rm_config = json.loads(Path(round2, "rm", "config.json").read_text())
    assert rm_config["model"] == state["rounds"][0]["model_dir"] and rm_config["steps"] == 5
    before = load_file(os.path.join(rm["model_dir"], "model.safetensors"))
    after = load_file(os.path.join(state["rounds"][1]["model_dir"], "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert results["after"]["reward"] == results["after"]["reward"]  # evaluated under the newest reward model

    # Resumed: it starts from the reward model current at the checkpoint, never asks an answered question again.
    log = ScorerLog()
    resumed = train(TrainConfig(**{**config.__dict__, "resume": run_dir, "iterations": 3}), callbacks=[log])
    assert log.started_at == 2 and len(log.models) == 1
    more = read_labels(tmp_path / "labels.jsonl")
    assert more[: len(labels)] == labels and len({r["id"] for r in more}) == len(more) > len(labels)
    assert [h["step"] for h in resumed["history"]] == [1, 2, 3]


def test_a_person_answers_in_the_terminal_and_may_stop_a_round(tmp_path, monkeypatch, capsys):
    import io

    from lmgym.agents.rm.prefs_make import make_pairs
    from lmgym.agents.rm.train import RMConfig, train_reward_model
    from lmgym.agents.train import train
    from lmgym.prefs import write_pairs

    pairs, _ = make_pairs("lmgym/Copy-v0", ["oracle", "random"], prompts=20, noise=0.0, **ENV_KWARGS)
    write_pairs(tmp_path / "pairs.jsonl", pairs)
    rm = train_reward_model(RMConfig(data=str(tmp_path / "pairs.jsonl"), env="lmgym/Copy-v0", env_kwargs=ENV_KWARGS,
                                     n_layer=1, n_embd=32, n_head=2, steps=2, batch_size=8, eval_every=2,
                                     eval_fraction=0.25, threads=1, output=str(tmp_path / "rm")))
    monkeypatch.setattr("sys.stdin", io.StringIO("1\nmaybe\n2\nq\n"))  # two answers, a typo, then quit
    results = train(tiny_config(tmp_path, reward_model=rm["model_dir"], iterations=1, label_pairs=6,
                                annotator="terminal"))
    screen = capsys.readouterr().out
    assert "PPO iteration 1:" in screen and "[2/" in screen and "'maybe' is not an answer" in screen
    labels = read_labels(tmp_path / "labels.jsonl")
    assert [r["choice"] for r in labels] == ["a", "b"] and {r["source"] for r in labels} == {"person"}
    (metrics,) = [h for h in results["history"] if "labels/new" in h]
    assert metrics["labels/new"] == 2 and metrics["labels/asked"] >= 3  # training went on after the person quit
