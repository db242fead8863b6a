"""Bad input to the torch-free core fails early, with a typed error that names the fix (issue #14).

Each test reproduces one reported hole: it failed (wrong result, hang or raw traceback) before the fix.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import lmgym  # noqa: F401  (registers envs)
from lmgym.datasets import load_task
from lmgym.errors import ConfigError, LmgymError, ScorerError, TaskError
from lmgym.validation import check_float, check_int


class FlakyScorer:
    """Token accuracy that raises while ``broken`` is set."""

    def __init__(self) -> None:
        self.broken = False

    def __call__(self, prompts, completions, references=None, **meta):
        if self.broken:
            raise RuntimeError("scorer service down")
        return [float(c == r[0]) for c, r in zip(completions, references)]


def make_vec(mode: str, scorer, n: int = 3, **kwargs):
    return gym.make_vec("lmgym/Copy-v0", num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode=mode,
                        scorer=scorer, length=2, max_new_tokens=2, **kwargs)


# ---- numbers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, -3, 10**9, 2.5, True, "8"])
def test_max_new_tokens_out_of_range_is_rejected(value):
    # Before: 0 silently became 32 and 10**9 ran into a numpy MemoryError.
    with pytest.raises(ConfigError, match="max_new_tokens must be an integer in"):
        gym.make("lmgym/Copy-v0", max_new_tokens=value)


def test_max_new_tokens_valid_values_unchanged():
    assert gym.make("lmgym/Copy-v0", max_new_tokens=np.int64(5)).unwrapped.max_new_tokens == 5
    assert gym.make("lmgym/Copy-v0").unwrapped.max_new_tokens == gym.make("lmgym/Copy-v0").unwrapped.max_new_tokens


@pytest.mark.parametrize("value", [0, -1])
def test_vector_env_max_episode_steps_must_be_positive(value):
    # Before: -1 truncated every episode after one token.
    with pytest.raises(ConfigError, match="max_episode_steps"):
        gym.make_vec("lmgym/Copy-v0", num_envs=2, vectorization_mode="vector_entry_point", max_episode_steps=value)


@pytest.mark.parametrize("index", [-1, 10**6, 1.0, True])
def test_example_index_must_be_in_range(index):
    # Before: -1 (counted from the end) and float indices picked an example silently.
    env = gym.make("lmgym/Copy-v0")
    env.reset(seed=0)
    before = env.unwrapped.np_random.bit_generator.state
    with pytest.raises((IndexError, ValueError), match="example_index"):
        env.reset(seed=5, options={"example_index": index})
    assert env.unwrapped.np_random.bit_generator.state == before  # no reseed on a raised error


def test_vector_example_index_negative_is_rejected():
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(IndexError, match="example_index -1"):
        envs.reset(options={"example_index": -1})


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), "x", None])
def test_scorer_weights_must_be_finite_numbers(weight):
    # Before: NaN/inf gave NaN rewards silently and "x" a bare ValueError.
    with pytest.raises(ScorerError, match="weight of scorer 'token_accuracy' must be a finite number"):
        gym.make("lmgym/Copy-v0", scorer={"token_accuracy": weight})


def test_check_helpers_name_the_setting_and_range():
    assert check_int("n", np.int32(3), minimum=1) == 3
    assert check_int("n", None, optional=True) is None
    assert check_float("lr", 1, minimum=0, exclusive_minimum=True) == 1.0
    with pytest.raises(ConfigError, match=r"lr must be a finite number > 0; got -1"):
        check_float("lr", -1, minimum=0, exclusive_minimum=True)
    with pytest.raises(ConfigError, match=r"gamma must be a finite number in \[0, 1\]; got nan"):
        check_float("gamma", float("nan"), minimum=0, maximum=1)


# ---- actions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [">i8", ">i4", ">u2", "<i2"])
def test_vector_env_reads_any_byte_order(dtype):
    # Before: a big-endian int array was viewed as native unsigned and ended in an IndexError.
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=3, vectorization_mode="vector_entry_point")
    ref = gym.make_vec("lmgym/Copy-v0", num_envs=3, vectorization_mode="vector_entry_point")
    envs.reset(seed=1)
    ref.reset(seed=1)
    for step in range(4):
        actions = np.array([3 + step, 4, envs.unwrapped.env.eos_token_id], dtype=dtype)
        a, b = envs.step(actions), ref.step(actions.astype(np.int64))
        for k in a[0]:
            np.testing.assert_array_equal(a[0][k], b[0][k])
        np.testing.assert_array_equal(a[1], b[1])


# ---- scorer failures -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["next_step", "same_step", "disabled"])
def test_vector_env_recovers_from_a_scorer_error(mode):
    # Before: in same_step mode the failed slots stayed ended but never restarted: reward 0 and
    # terminated/truncated False forever, so `while not done` hung.
    scorer = FlakyScorer()
    envs = make_vec(mode, scorer)
    obs, _ = envs.reset(seed=0)
    eos = envs.unwrapped.env.eos_token_id
    envs.step(np.array([3, 3, 3]))
    snapshot = {k: v.copy() for k, v in envs.unwrapped._obs().items()}
    scorer.broken = True
    with pytest.raises(ScorerError):
        envs.step(np.array([eos, 4, 4]))  # slot 0 terminates, 1 and 2 hit the limit
    for k, v in envs.unwrapped._obs().items():
        np.testing.assert_array_equal(v, snapshot[k])  # the failed step changed nothing
    assert envs.unwrapped.active.all()
    scorer.broken = False
    _, rewards, terminated, truncated, _ = envs.step(np.array([eos, 4, 4]))
    assert terminated.tolist() == [True, False, False] and truncated.tolist() == [False, True, True]
    _, rewards, terminated, truncated, _ = envs.step(np.array([5, 5, 5]))
    if mode == "disabled":
        assert not envs.unwrapped.active.any()
    else:  # every slot is running a new episode
        assert not (terminated | truncated).any()


def test_single_env_scorer_error_leaves_the_episode_unchanged():
    scorer = FlakyScorer()
    env = gym.make("lmgym/Copy-v0", scorer=scorer, length=2)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(3)
    scorer.broken = True
    with pytest.raises(ScorerError):
        env.step(env.unwrapped.eos_token_id)
    again = env.unwrapped._obs()
    for k in obs:
        np.testing.assert_array_equal(again[k], obs[k])
    scorer.broken = False
    _, reward, terminated, truncated, info = env.step(env.unwrapped.eos_token_id)
    assert terminated and not truncated and info["completion"] == env.unwrapped.decode([3])


def test_sync_vector_env_same_step_recovers_from_a_scorer_error():
    scorer = FlakyScorer()
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=2, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}, scorer=scorer, length=2)
    envs.reset(seed=0)
    eos = envs.envs[0].unwrapped.eos_token_id
    scorer.broken = True
    with pytest.raises(ScorerError):
        envs.step(np.array([eos, eos]))
    scorer.broken = False
    _, _, terminated, _, info = envs.step(np.array([eos, eos]))
    assert terminated.all() and "final_info" in info


# ---- datasets -------------------------------------------------------------------------------------------
ROWS = [{"document": f"doc number {i}", "summary": f"sum {i}"} for i in range(40)]


def test_row_without_the_target_column_is_a_task_error():
    rows = [*ROWS, {"document": "no summary here"}]
    with pytest.raises(TaskError, match=r"Row 40 has no 'summary' column"):
        load_task(rows, "summarize")


def test_non_dict_row_after_row_100_is_a_task_error():
    rows = [{"document": f"doc {i}", "summary": f"s {i}"} for i in range(150)] + ["just a string"]
    with pytest.raises(TaskError, match="Row 150 is a str; every row must be a dict"):
        load_task(rows, "summarize")


def test_jsonl_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in ROWS).encode())
    plain = tmp_path / "plain.jsonl"
    plain.write_text("\n".join(json.dumps(r) for r in ROWS))
    with_bom, without = load_task(str(path), "summarize"), load_task(str(plain), "summarize")
    assert [e.source for e in with_bom.examples("train")] == [e.source for e in without.examples("train")]


@pytest.mark.parametrize("value", [0, -1, 2.0])
def test_max_examples_must_be_positive(value):
    # Before: 0 meant "no limit" and -1 dropped one example.
    with pytest.raises(TaskError, match="max_examples must be an integer >= 1"):
        load_task(ROWS, "summarize", max_examples=value)


def test_max_examples_keeps_that_many():
    task = load_task(ROWS, "summarize", max_examples=3)
    assert len(task.examples("train")) == 3


def test_errors_are_lmgym_errors():
    assert issubclass(ConfigError, LmgymError) and issubclass(TaskError, LmgymError)
