"""Data-parallel training: a 2-process CPU run (gloo) trains and writes the single-process metrics format.

The processes are started with ``torchrun`` (``torch.distributed.run``); ``accelerate.Accelerator``
picks the process group up from its environment (``accelerate launch --cpu`` needs mpirun for
several CPU processes, which this machine does not have).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from lmgym.agents.ppo.checkpoint import latest_checkpoint, read_checkpoint_state
from lmgym.agents.train import train
from lmgym.agents.train.cli import config_from_args
from lmgym.agents.train.metrics import read_metrics

ARGS = ["--env", "lmgym/Copy-v0", "--env-kwargs", "length=3", "vocab_size=5", "--sft-steps", "4",
        "--sft-batch-size", "8", "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--num-envs", "8",
        "--epochs", "2", "--minibatches", "2", "--iterations", "2", "--eval-examples", "8",
        "--eval-batch-size", "8", "--no-progress", "--no-tensorboard", "--threads", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_cpu_run_writes_the_same_metrics(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "lmgym.agents.train", *ARGS,
           "--output-dir", str(tmp_path), "--name", "ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("| SFT+PPO |") == 1  # only the main process prints and writes

    single = train(config_from_args([*ARGS, "--output-dir", str(tmp_path), "--name", "single"]))
    ddp = read_metrics(tmp_path / "ddp" / "metrics.jsonl", "ppo")
    one = read_metrics(os.path.join(single["run_dir"], "metrics.jsonl"), "ppo")
    assert [r["step"] for r in ddp] == [1, 2]  # one record per iteration, not one per process
    assert set(ddp[-1]) == set(one[-1])  # same metric names
    assert ddp[0]["charts/episodes"] == 2 * one[0]["charts/episodes"]  # both processes rolled out
    assert len(read_metrics(tmp_path / "ddp" / "metrics.jsonl", "sft")) == 1
    state = read_checkpoint_state(latest_checkpoint(tmp_path / "ddp"))
    assert state["iteration"] == 2 and state["extra"]["episodes"] == 32
    for name in ("results.md", "learning_curve.png", "policy/model.safetensors"):
        assert (tmp_path / "ddp" / name).is_file(), name
