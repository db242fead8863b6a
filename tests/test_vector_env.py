"""The native vector env matches N single envs step for step and is faster."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

import lmgym
from lmgym.errors import InvalidActionError, ResetNeededError
from lmgym.vector_env import BatchedTokenEnv, parse_autoreset_mode


def compare(env_id: str, mode: str, n: int = 6, steps: int = 80, eos_rate: float = 0.15, **kwargs) -> None:
    native = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode=mode, **kwargs)
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": parse_autoreset_mode(mode)}, **kwargs)
    assert isinstance(native, BatchedTokenEnv)
    assert native.single_observation_space == sync.single_observation_space
    a, ia = native.reset(seed=11)
    b, ib = sync.reset(seed=11)
    rng = np.random.default_rng(0)
    V = native.single_action_space.n
    for _ in range(steps):
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        if "prompt" in ia:
            assert list(ia["prompt"][ia["_prompt"]]) == list(ib["prompt"][ib["_prompt"]])
        # Bias toward EOS so episodes of all lengths occur.
        actions = np.where(rng.random(n) < eos_rate, native.env.eos_token_id, rng.integers(0, V, n))
        a, ra, ta, ua, ia = native.step(actions)
        b, rb, tb, ub, ib = sync.step(actions)
        np.testing.assert_allclose(ra, rb)
        np.testing.assert_array_equal(ta, tb)
        np.testing.assert_array_equal(ua, ub)
        same_infos(ia, ib)


def same_infos(ia: dict, ib: dict) -> None:
    """Every info key, mask and dtype the same, and every value where the mask is set (nested infos too)."""
    assert set(ia) == set(ib)
    for key, value in ia.items():
        if isinstance(value, dict):
            same_infos(value, ib[key])
            continue
        other = ib[key]
        assert value.dtype == other.dtype and value.shape == other.shape, key
        if key.startswith("_"):
            np.testing.assert_array_equal(value, other)
            continue
        for x, y in zip(value[ia["_" + key]], other[ib["_" + key]]):
            if isinstance(x, dict):  # final_obs
                assert set(x) == set(y) and all(np.array_equal(x[k], y[k]) for k in x), key
            else:
                assert x == y and type(x) is type(y), key


@pytest.mark.parametrize("env_id", lmgym.env_ids())
@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_matches_sync_vector_env(env_id, mode):
    compare(env_id, mode)


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_matches_sync_vector_env_when_every_slot_ends_together(mode):
    # No EOS: every episode runs to the token limit, so all slots end, and restart, on the same step.
    compare("lmgym/Copy-v0", mode, eos_rate=0.0)
    compare("lmgym/Summarize-v0", mode, steps=40, eos_rate=0.0, max_new_tokens=9)


def test_lockstep_mode_holds_finished_slots():
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", length=3)
    obs, _ = envs.reset(seed=0)
    eos = envs.env.eos_token_id
    obs, r, term, trunc, info = envs.step(np.array([eos, 5, 5]))
    assert term.tolist() == [True, False, False] and envs.active.tolist() == [False, True, True]
    obs, r, term, trunc, info = envs.step(np.array([5, eos, 5]))
    assert obs["step"][:, 0].tolist() == [1, 2, 2]  # slot 0 ignored its action
    assert r[0] == 0 and not term[0] and term[1]
    obs, _ = envs.reset(options={"reset_mask": np.array([True, False, False])})
    assert obs["step"][:, 0].tolist() == [0, 2, 2]


def test_example_index_per_slot():
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", length=3)
    single = gym.make("lmgym/Copy-v0", length=3)
    obs, info = envs.reset(options={"split": "validation", "example_index": np.array([4, 0, 4])})
    assert info["example_index"].tolist() == [4, 0, 4]
    for slot, index in enumerate([4, 0, 4]):
        one, _ = single.reset(options={"split": "validation", "example_index": index})
        assert (obs["prompt_ids"][slot] == one["prompt_ids"]).all()
    obs, info = envs.reset(options={"example_index": 2})  # an int: every slot
    assert info["example_index"].tolist() == [2, 2, 2]
    # Slots outside reset_mask keep their episode; their entries are not used.
    obs, info = envs.reset(options={"reset_mask": np.array([False, True, False]), "example_index": [-1, 1, -1]})
    assert info["example_index"][1] == 1 and not info["_example_index"][0]
    with pytest.raises(ValueError, match="one per slot"):
        envs.reset(options={"example_index": [1, 2]})
    with pytest.raises(ValueError, match="one per slot"):
        envs.reset(options={"example_index": [0.5, 1, 2]})
    with pytest.raises(IndexError, match="out of range"):
        envs.reset(options={"split": "validation", "example_index": [0, 1, 10**6]})


def test_vector_errors():
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ResetNeededError):
        envs.step(np.array([4, 4]))
    envs.reset(seed=0)
    with pytest.raises(InvalidActionError, match="shape"):
        envs.step(np.array([4]))
    with pytest.raises(InvalidActionError, match="slot 1"):
        envs.step(np.array([4, 99]))
    for dtype in (np.int64, np.int32, np.int8):  # negative ids of any signed width, caught by one reduction
        with pytest.raises(InvalidActionError, match="Action -1 of slot 0"):
            envs.step(np.array([-1, 4], dtype=dtype))
    with pytest.raises(InvalidActionError, match="slot 0"):
        envs.step(np.array([250, 4], dtype=np.uint8))
    with pytest.raises(InvalidActionError, match="dtype"):
        envs.step(np.array([4.0, 4.0]))
    obs, *_ = envs.step(np.array([4, 4]))  # still usable
    assert obs["step"][:, 0].tolist() == [1, 1]
    with pytest.raises(ValueError, match="autoreset_mode"):
        gym.make_vec("lmgym/Copy-v0", num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode="sometimes")


def test_one_batched_scorer_call_per_step():
    calls = []

    def scorer(prompts, completions, references=None, **meta):
        calls.append(len(completions))
        return [0.5] * len(completions)

    envs = gym.make_vec("lmgym/Copy-v0", num_envs=5, vectorization_mode="vector_entry_point", scorer=scorer)
    envs.reset(seed=0)
    _, r, term, *_ = envs.step(np.full(5, envs.env.eos_token_id))
    assert calls == [5] and term.all() and np.allclose(r, 0.5)


def test_vector_env_pickles():
    envs = gym.make_vec("lmgym/Reverse-v0", num_envs=2, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    clone = pickle.loads(pickle.dumps(envs))
    a = envs.step(np.array([4, 5]))
    b = clone.step(np.array([4, 5]))
    for x, y in zip(a[0].values(), b[0].values()):
        np.testing.assert_array_equal(x, y)
