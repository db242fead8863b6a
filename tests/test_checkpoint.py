"""Checkpoints: round trip, atomic writes, typed errors, and exact resume of a PPO run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("accelerate")

import gymnasium as gym

import lmgym  # noqa: F401
from lmgym.agents.ppo.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_checkpoint_state,
    save_checkpoint,
)
from lmgym.agents.ppo.math import AdaptiveKLController
from lmgym.agents.ppo.policy import build_policy
from lmgym.agents.train import TrainConfig, train
from lmgym.agents.train.metrics import read_metrics
from lmgym.errors import CheckpointError

TIMING_KEYS = ("charts/tokens_per_s", "charts/iteration_s", "time/rollout_s", "time/reference_s",
               "time/update_s")


def tiny_config(tmp_path, **overrides) -> TrainConfig:
    """A PPO run of a few seconds on a 3-symbol copy task."""
    base = dict(env="lmgym/Copy-v0", env_kwargs={"length": 3, "vocab_size": 5}, algo="sft+ppo", sft_steps=5,
                sft_batch_size=16, n_layer=1, n_embd=32, n_head=2, num_envs=16, epochs=2, minibatches=2,
                iterations=3, learning_rate=1e-3, eval_examples=16, eval_batch_size=16, checkpoint_every=1,
                output_dir=str(tmp_path), name="run", progress=False, tensorboard=False, threads=1)
    base.update(overrides)
    return TrainConfig(**base)


def make_policy(n_embd: int = 32, seed: int = 0):
    env = gym.make("lmgym/Copy-v0", length=3, vocab_size=5).unwrapped
    return build_policy("default", env.tokenizer, 8, n_layer=1, n_embd=n_embd, n_head=2, seed=seed)


def trained_step(policy):
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    ids = torch.tensor([[4, 5, 6]])
    policy(ids, torch.ones_like(ids), ids, torch.ones_like(ids)).logits.sum().backward()
    optimizer.step()
    return optimizer


def test_round_trip_restores_weights_optimizer_kl_and_rng(tmp_path):
    policy = make_policy()
    optimizer = trained_step(policy)
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=100)
    ctl.update(12.0, 10)
    torch.manual_seed(123)
    path = save_checkpoint(tmp_path, iteration=7, policy=policy, optimizer=optimizer, kl_controller=ctl,
                           config={"a": 1}, extra={"episodes": 42})
    expected_draw = torch.rand(3)
    assert os.path.basename(path) == "iter_000007" and latest_checkpoint(tmp_path) == path

    other = make_policy(seed=5)
    other_opt = torch.optim.AdamW(other.parameters(), lr=1e-2)
    other_ctl = AdaptiveKLController(0.1, target=6.0, horizon=100)
    state = load_checkpoint(path, policy=other, optimizer=other_opt, kl_controller=other_ctl)
    assert state["iteration"] == 7 and state["extra"] == {"episodes": 42} and state["config"] == {"a": 1}
    for (name, a), b in zip(policy.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name
    assert other_ctl.value == ctl.value
    saved_state = optimizer.state_dict()["state"]
    for key, value in other_opt.state_dict()["state"].items():
        torch.testing.assert_close(value["exp_avg"], saved_state[key]["exp_avg"])
    torch.testing.assert_close(torch.rand(3), expected_draw)  # RNG continues where it was saved


def test_damaged_or_foreign_checkpoints_raise_checkpoint_error(tmp_path):
    policy = make_policy()
    optimizer = trained_step(policy)
    ctl = AdaptiveKLController(0.1, 6.0, 100)
    path = save_checkpoint(tmp_path, iteration=1, policy=policy, optimizer=optimizer, kl_controller=ctl, config={})

    with pytest.raises(CheckpointError, match="does not match this model"):
        load_checkpoint(path, policy=make_policy(n_embd=16))

    weights = os.path.join(path, "policy.safetensors")
    with open(weights, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    with open(weights, "wb") as f:
        f.write(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, policy=make_policy())

    os.remove(os.path.join(path, "optimizer.pt"))
    with pytest.raises(CheckpointError, match="missing optimizer.pt"):
        read_checkpoint_state(path)

    with open(os.path.join(path, "state.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        read_checkpoint_state(path)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        read_checkpoint_state(tmp_path)


def test_half_written_checkpoints_are_ignored_and_old_ones_pruned(tmp_path):
    policy = make_policy()
    optimizer = trained_step(policy)
    ctl = AdaptiveKLController(0.1, 6.0, 100)
    for it in (1, 2, 3):
        save_checkpoint(tmp_path, iteration=it, policy=policy, optimizer=optimizer, kl_controller=ctl, config={},
                        keep=2)
    assert [it for it, _ in list_checkpoints(tmp_path)] == [2, 3]
    # A save killed before its rename leaves only a .tmp folder: never picked up.
    shutil.copytree(latest_checkpoint(tmp_path), os.path.join(tmp_path, "checkpoints", ".tmp-iter_000004"))
    assert latest_checkpoint(tmp_path).endswith("iter_000003")


def _comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


def test_resume_continues_exactly(tmp_path):
    full = train(tiny_config(tmp_path / "a"))
    train(tiny_config(tmp_path / "b", iterations=2))
    resumed = train(tiny_config(tmp_path / "b", iterations=3, resume=str(tmp_path / "b" / "run")))
    a = read_metrics(os.path.join(full["run_dir"], "metrics.jsonl"), "ppo")
    b = read_metrics(os.path.join(resumed["run_dir"], "metrics.jsonl"), "ppo")
    assert [r["step"] for r in a] == [1, 2, 3] and [r["step"] for r in b] == [1, 2, 3]
    assert _comparable(b[2]) == _comparable(a[2])  # the iteration after the resume: identical numbers
    assert resumed["after"]["score"] == full["after"]["score"]
    with open(os.path.join(full["run_dir"], "eval_reference.json")) as f:
        ref_a = json.load(f)
    assert resumed["before"]["score"] == ref_a["score"]


def test_sigkill_mid_run_loses_at_most_the_iteration_in_flight(tmp_path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "lmgym.agents.train", "--env", "lmgym/Copy-v0", "--env-kwargs", "length=3",
            "vocab_size=5", "--algo", "ppo", "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--num-envs", "16",
            "--epochs", "1", "--minibatches", "1", "--iterations", "1000", "--checkpoint-every", "1",
            "--eval-every", "0", "--eval-examples", "16", "--eval-batch-size", "16", "--output-dir", str(tmp_path),
            "--name", "run", "--no-progress", "--no-tensorboard", "--threads", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while len(list_checkpoints(run_dir)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = list_checkpoints(run_dir)[-1][0]
    assert killed_at >= 2
    records = read_metrics(run_dir / "metrics.jsonl", "ppo")
    assert max(r["step"] for r in records) <= killed_at + 1  # at most the iteration in flight is lost
    with open(run_dir / "config.json") as f:
        saved = json.load(f)
    results = train(TrainConfig(**{**saved, "resume": str(run_dir), "iterations": killed_at + 2}))
    steps = [r["step"] for r in read_metrics(os.path.join(results["run_dir"], "metrics.jsonl"), "ppo")]
    assert steps == list(range(1, killed_at + 3))  # each iteration logged exactly once
