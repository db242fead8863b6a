"""The run-folder contract of ``lmgym train`` and one-line errors of every CLI (issue #14).

- a new run never writes into an existing run folder (``--resume``, ``--name`` or ``--overwrite``);
- ``--resume`` compares the saved settings with the command line before writing anything;
- ``metrics.jsonl`` is cut back to the checkpoint's step on resume, for SFT and PPO alike;
- a damaged checkpoint, config or reference model is a ``CheckpointError`` and changes nothing on disk;
- bad input exits 2 with one line on stderr, never a traceback.
"""

from __future__ import annotations

import io
import json
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytest.importorskip("safetensors")

from lmgym.agents.ppo.checkpoint import _state_hash, latest_checkpoint
from lmgym.agents.train import TrainConfig, train
from lmgym.agents.train.cli import main as train_main
from lmgym.agents.train.metrics import read_metrics
from lmgym.cli import main as lmgym_main
from lmgym.errors import CheckpointError, ConfigError

TINY = ["--env", "lmgym/Copy-v0", "--env-kwargs", "length=3", "vocab_size=5", "--sft-steps", "4",
        "--sft-batch-size", "16", "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--num-envs", "16",
        "--epochs", "1", "--minibatches", "2", "--iterations", "2", "--eval-examples", "16", "--eval-every", "0",
        "--eval-batch-size", "16", "--no-progress", "--no-tensorboard", "--threads", "1", "--checkpoint-every", "1"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def snapshot(folder) -> dict[str, bytes]:
    """Every file of a folder and its bytes."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished two-iteration SFT+PPO run; tests copy it before damaging it."""
    out = tmp_path_factory.mktemp("runs")
    assert train_main([*TINY, "--output-dir", str(out), "--name", "run"]) == 0
    return out / "run"


@pytest.fixture
def run(finished_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    config = json.loads((copy / "config.json").read_text())
    config.update(output_dir=str(tmp_path))
    (copy / "config.json").write_text(json.dumps(config))
    return copy


# ---- 1. the same command twice -------------------------------------------------------------------
def test_same_command_twice_is_refused_and_changes_nothing(run, capsys):
    before = snapshot(run)
    assert train_main([*TINY, "--output-dir", str(run.parent), "--name", "run"]) == 2
    err = one_line_error(capsys)
    assert "already exists" in err and "--resume" in err and "--name" in err and "--overwrite" in err
    assert snapshot(run) == before


def test_overwrite_starts_afresh(run):
    assert train_main([*TINY, "--output-dir", str(run.parent), "--name", "run", "--overwrite", "--iterations",
                       "1"]) == 0
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl", "ppo")] == [1]
    assert [os.path.basename(latest_checkpoint(run))] == ["iter_000001"]


# ---- 2. resume with changed settings --------------------------------------------------------------
@pytest.mark.parametrize("flags, named", [
    (["--env", "lmgym/Reverse-v0"], "--env"),
    (["--n-embd", "64"], "--n-embd"),
    (["--env-kwargs", "length=4"], "--env-kwargs"),
    (["--learning-rate", "0.5", "--seed", "3"], "--learning-rate"),
])
def test_resume_with_changed_settings_is_refused_before_writing(run, flags, named, capsys):
    before = snapshot(run)
    assert train_main(["--resume", str(run), *flags, "--iterations", "3"]) == 2
    err = one_line_error(capsys)
    assert named in err and "cannot change" in err
    assert snapshot(run) == before  # config.json untouched: a plain --resume still works
    assert train_main(["--resume", str(run), "--iterations", "3", "--no-progress"]) == 0
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl", "ppo")] == [1, 2, 3]


# ---- 3. damaged files -----------------------------------------------------------------------------
def edit_state(run, change, rehash: bool):
    path = os.path.join(latest_checkpoint(run), "state.json")
    with open(path) as f:
        state = json.load(f)
    change(state)
    if rehash:
        state["state_sha256"] = _state_hash(state)
    with open(path, "w") as f:
        json.dump(state, f)


@pytest.mark.parametrize("rehash", [False, True])
@pytest.mark.parametrize("change", [
    lambda s: s.update(iteration=-7),
    lambda s: s.update(kl_controller={"value": "garbage"}),
    lambda s: s.update(kl_controller=[1, 2]),
    lambda s: s["extra"].update(episodes=-1),
    lambda s: s.update(iteration=5),
], ids=["iteration", "kl_value", "kl_type", "episodes", "iteration_vs_folder"])
def test_damaged_state_is_a_checkpoint_error_and_keeps_metrics(run, change, rehash):
    edit_state(run, change, rehash)
    before = snapshot(run)
    with pytest.raises(CheckpointError, match="damaged state.json"):
        train(TrainConfig(**{**json.loads((run / "config.json").read_text()), "resume": str(run)}))
    assert snapshot(run) == before  # before: "iteration": -7 erased every PPO record


def test_corrupt_config_json_is_a_checkpoint_error(run, capsys):
    (run / "config.json").write_text('{"env": "lmgym/Co')
    assert train_main(["--resume", str(run)]) == 2
    assert "config.json" in one_line_error(capsys)


def test_truncated_reference_model_is_a_checkpoint_error(run, capsys):
    path = run / "reference" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    before = snapshot(run)
    assert train_main(["--resume", str(run), "--iterations", "3"]) == 2
    assert "reference/model.safetensors" in one_line_error(capsys)
    assert snapshot(run) == before


# ---- 4. metrics cut back on resume ----------------------------------------------------------------
def test_resumed_sft_logs_each_step_once(tmp_path):
    # SFT has no checkpoint: a run killed during SFT redoes it. Before, its records were appended twice.
    argv = [*TINY, "--algo", "sft", "--output-dir", str(tmp_path), "--name", "s"]
    assert train_main(argv) == 0
    first = read_metrics(tmp_path / "s" / "metrics.jsonl", "sft")
    with open(tmp_path / "s" / "metrics.jsonl", "a") as f:  # a kill mid-SFT leaves partial records behind
        f.write(json.dumps({"phase": "sft", "step": 2, "sft/loss": 9.0}) + "\n")
    assert train_main(["--resume", str(tmp_path / "s"), "--no-progress"]) == 0
    again = read_metrics(tmp_path / "s" / "metrics.jsonl", "sft")
    assert [r["step"] for r in again] == [r["step"] for r in first] and len(first) > 0


def test_resume_from_an_older_checkpoint_cuts_ppo_records(run):
    import shutil

    newest = latest_checkpoint(run)
    shutil.rmtree(newest)  # back to iteration 1
    assert train_main(["--resume", str(run), "--no-progress"]) == 0
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl", "ppo")] == [1, 2]


# ---- 5. bad numbers and one-line errors -----------------------------------------------------------
@pytest.mark.parametrize("flags, named", [
    (["--learning-rate", "-1"], "--learning-rate"),
    (["--gamma", "-5"], "--gamma"),
    (["--checkpoint-every", "-1"], "--checkpoint-every"),
    (["--sft-max-examples", "0"], "--sft-max-examples"),
    (["--scorer", "{bad"], "--scorer"),
    (["--env-kwargs", "length=abc"], "length"),
    (["--env", "nope"], "nope"),
    (["--env", "lmgym/Nope-v0"], "Nope"),
])
def test_bad_train_input_exits_2_with_one_line_and_no_folder(tmp_path, capsys, flags, named):
    assert train_main([*TINY, "--output-dir", str(tmp_path / "out"), *flags]) == 2
    assert named in one_line_error(capsys)
    assert not (tmp_path / "out").exists()  # before: a failed --env nope left an empty run folder


def test_python_config_values_are_checked():
    for bad in ({"learning_rate": -1.0}, {"gamma": float("nan")}, {"iterations": 2.5}, {"num_envs": "16"}):
        with pytest.raises(ConfigError):
            TrainConfig(**bad).validate()


@pytest.mark.parametrize("argv, named", [
    (["eval", "Copy-v0", "--kw", "length=abc", "--episodes", "2"], "length"),
    (["eval", "Copy-v0", "--seed", "-1", "--episodes", "2"], "seed"),
    (["eval", "Copy-v0", "--episodes", "0"], "episodes"),
    (["play", "lmgym/Nope-v0"], "Nope"),
    (["bench", "--budget", "-5"], "--budget"),
    (["bench", "--jobs", "0"], "--jobs"),
])
def test_cli_bad_input_exits_2_with_one_line(argv, named, capsys):
    assert lmgym_main(argv) == 2
    assert named in one_line_error(capsys)


def test_play_with_closed_stdin_and_bad_token_id(monkeypatch, capsys):
    import argparse

    from lmgym.cli import cmd_play

    monkeypatch.setattr("sys.stdin", None)
    assert cmd_play(argparse.Namespace(env="lmgym/Copy-v0", seed=0)) == 0  # before: AttributeError
    assert cmd_play(argparse.Namespace(env="lmgym/Copy-v0", seed=0), stdin=io.StringIO("#999\nquit\n")) == 0
    assert "outside the vocabulary" in capsys.readouterr().out  # before: UnboundLocalError


def test_evaluation_env_has_no_more_slots_than_examples(tmp_path):
    """Spare evaluation slots would decode copies of the last example: the eval env is sized to the examples."""
    from lmgym.agents.train.run import set_up

    def slots(eval_examples: int) -> tuple[int, int]:
        config = TrainConfig(env="lmgym/Copy-v0", env_kwargs={"length": 3, "vocab_size": 5},
                             eval_examples=eval_examples, eval_batch_size=100, output_dir=str(tmp_path),
                             name=f"slots{eval_examples}", progress=False, tensorboard=False)
        run = set_up(config)
        return run.eval_envs.num_envs, len(run.eval_envs.env.task.examples("validation"))

    assert slots(3)[0] == 3
    num_envs, split_size = slots(50)
    assert split_size < 50 and num_envs == split_size  # a small split: one slot per example
