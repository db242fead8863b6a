"""Property-based tests (hypothesis) of the env and vector-env APIs.

Invariants, over random action arrays, dtypes, byte orders, reset options and autoreset modes:

- a call that raises changes nothing (observations, running slots, random streams);
- valid actions of any integer dtype and byte order act exactly like the same ids as ``int64``;
- a scored episode always ends (``terminated`` or ``truncated``), and no episode outlives its token limit.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lmgym  # noqa: F401  (registers envs)
from lmgym.errors import InvalidActionError

N, R = 3, 4
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MODES = ["next_step", "same_step", "disabled"]
INT_DTYPES = [np.dtype(f"{order}{kind}{size}") for order in "<>" for kind in "iu" for size in (1, 2, 4, 8)]


_PROTO = gym.make("lmgym/Copy-v0", max_new_tokens=R).unwrapped
VOCAB, EOS = _PROTO.vocab_size, _PROTO.eos_token_id
_VECS: dict[tuple[str, int], object] = {}


def make_vec(mode: str = "next_step", copy: int = 0):
    """A vector env sharing one prototype env (built once: examples only reset it, which sets every slot)."""
    key = (mode, copy)
    if key not in _VECS:
        _VECS[key] = gym.make_vec("lmgym/Copy-v0", num_envs=N, vectorization_mode="vector_entry_point",
                                  autoreset_mode=mode, env=_PROTO)
    return _VECS[key]
SPLITS = ["train", "validation", "test"]


def state_of(envs) -> dict:
    """Everything a step or reset may change, copied."""
    e = envs.unwrapped
    return {"obs": {k: v.copy() for k, v in e._obs().items()}, "active": e.active.copy(),
            "rngs": [None if r is None else r.bit_generator.state for r in e._rngs]}


def assert_same(a: dict, b: dict) -> None:
    for k in a["obs"]:
        np.testing.assert_array_equal(a["obs"][k], b["obs"][k])
    np.testing.assert_array_equal(a["active"], b["active"])
    assert a["rngs"] == b["rngs"]


action_arrays = st.one_of(
    hnp.arrays(st.sampled_from(INT_DTYPES), st.integers(0, 2).map(lambda k: (N,) if k else (N + 1,))),
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.bool_]), (N,)),
    hnp.arrays(st.sampled_from(INT_DTYPES), st.sampled_from([(), (N, 1), (1, N)])),
)


@SETTINGS
@given(mode=st.sampled_from(MODES), actions=action_arrays, warmup=st.lists(st.integers(0, VOCAB - 1), max_size=6))
def test_vector_step_random_arrays(mode, actions, warmup):
    envs, twin = make_vec(mode), make_vec(mode, copy=1)
    for e in (envs, twin):
        e.reset(seed=3)
        for a in warmup:
            e.step(np.full(N, a))
    before = state_of(envs)
    valid = (actions.shape == (N,) and actions.dtype.kind in "iu"
             and bool(((actions.astype(np.int64) >= 0) & (actions.astype(np.int64) < VOCAB)).all())
             and bool((actions.astype(np.float64) < VOCAB).all()))
    if not valid:
        with pytest.raises(InvalidActionError):
            envs.step(actions)
        assert_same(before, state_of(envs))
        return
    got, want = envs.step(actions), twin.step(actions.astype(np.int64))
    for k in want[0]:
        np.testing.assert_array_equal(got[0][k], want[0][k])
    for i in range(1, 4):
        np.testing.assert_array_equal(got[i], want[i])


reset_options = st.fixed_dictionaries(
    {},
    optional={
        "split": st.sampled_from([*SPLITS, "nope"]),
        "example_index": st.one_of(st.integers(-5, 5000), st.floats(0, 3), st.just([0, 1]),
                                   st.lists(st.integers(-1, 3), min_size=N, max_size=N)),
        "reset_mask": st.lists(st.booleans(), min_size=N - 1, max_size=N + 1),
    },
)


@SETTINGS
@given(mode=st.sampled_from(MODES), seed=st.one_of(st.none(), st.integers(-3, 2**40)), options=reset_options)
def test_vector_reset_random_options(mode, seed, options):
    envs = make_vec(mode)
    envs.reset(seed=7)
    envs.step(np.full(N, 5))
    before = state_of(envs)
    try:
        obs, info = envs.reset(seed=seed, options=options)
    except (ValueError, IndexError, LookupError):  # TaskError, ConfigError and IndexError are among these
        assert_same(before, state_of(envs))
        return
    mask = np.asarray(options.get("reset_mask", [True] * N), bool)
    assert (obs["step"][mask, 0] == 0).all()
    index = options.get("example_index")
    if index is not None and mask.any():
        want = np.broadcast_to(np.asarray(index), (N,))[mask]
        np.testing.assert_array_equal(info["example_index"][mask], want)


@SETTINGS
@given(mode=st.sampled_from(MODES), seed=st.integers(0, 100),
       script=st.lists(st.lists(st.sampled_from([EOS, 3, 4, 5, 6]), min_size=N, max_size=N), min_size=1,
                       max_size=14))
def test_scored_episodes_always_end(mode, seed, script):
    envs = make_vec(mode)
    envs.reset(seed=seed)
    for actions in script:
        if mode == "disabled" and not envs.unwrapped.active.any():
            envs.reset()
        obs, rewards, terminated, truncated, info = envs.step(np.array(actions))
        done = terminated | truncated
        scored = info.get("_score", info.get("final_info", {}).get("_score", np.zeros(N, bool)))
        np.testing.assert_array_equal(scored, done)  # scored <=> ended
        assert (rewards[~done] == 0).all()
        assert (obs["step"][:, 0] <= R).all()
        if mode == "same_step":
            assert (obs["step"][done, 0] == 0).all()  # ended slots already restarted


_SINGLE = gym.make("lmgym/Copy-v0", max_new_tokens=R)
single_actions = st.one_of(
    st.integers(-3, VOCAB + 3),
    st.sampled_from(INT_DTYPES).flatmap(lambda d: hnp.arrays(d, st.sampled_from([(), (1,), (2,), (1, 1)]))),
    st.floats(allow_nan=True), st.booleans(), st.text(max_size=2), st.none(),
)


@SETTINGS
@given(actions=st.lists(single_actions, min_size=1, max_size=8), seed=st.integers(0, 50))
def test_single_env_random_actions(actions, seed):
    env = _SINGLE
    obs, _ = env.reset(seed=seed)
    length = 0
    for action in actions:
        before = env.unwrapped._obs()
        try:
            obs, reward, terminated, truncated, info = env.step(action)
        except InvalidActionError:
            after = env.unwrapped._obs()
            for k in before:
                np.testing.assert_array_equal(before[k], after[k])
            continue
        length += 1
        assert obs["step"][0] == length <= R
        if terminated or truncated:
            assert "score" in info and reward == info["score"]
            obs, _ = env.reset()
            length = 0
        else:
            assert reward == 0.0 and "score" not in info
