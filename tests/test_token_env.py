"""Foundation checks that every registered lmgym env must pass."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lmgym
from lmgym.errors import InvalidActionError, ResetNeededError, UnknownEnvKwargError

ENV_IDS = lmgym.env_ids()


def rollout(env: gym.Env, seed: int, steps: int = 50) -> list:
    """Run ``steps`` random steps (resetting at episode ends) and record everything."""
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [(obs, info.get("prompt"))]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append((obs, float(reward), terminated, truncated, info.get("completion")))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append((obs, info.get("prompt")))
    return trace


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env_without_warnings(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(env, warn=True)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_rollout(env_id):
    a, b = rollout(gym.make(env_id), seed=7), rollout(gym.make(env_id), seed=7)
    assert same(a, b)
    c = rollout(gym.make(env_id), seed=8)
    assert not same(a, c)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip_mid_episode(env_id):
    env = gym.make(env_id)
    env.reset(seed=1)
    env.step(5)
    clone = pickle.loads(pickle.dumps(env))
    env.action_space.seed(2)
    actions = [int(env.action_space.sample()) for _ in range(5)]
    out_a, out_b = [], []
    for target, out in ((env, out_a), (clone, out_b)):
        for a in actions:
            step = target.step(a)
            out.append(step)
            if step[2] or step[3]:
                break
    assert same(out_a, out_b)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_with_module_prefix(env_id):
    env = gym.make("lmgym:" + env_id)
    assert env.unwrapped.spec.id == env_id


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_observation_contract(env_id):
    env = gym.make(env_id).unwrapped
    obs, _ = env.reset(seed=0)
    for key, space in env.observation_space.spaces.items():
        assert np.issubdtype(space.dtype, np.integer), key
        assert obs[key].shape == space.shape
    assert obs["step"][0] == 0 and obs["response_mask"].sum() == 0
    # Left padding: the prompt ends in the last slot.
    assert obs["prompt_mask"][-1] == 1
    token = next(t for t in range(int(env.eos_token_id) + 2, env.vocab_size) if t not in env.trigger_ids)
    obs, *_ = env.step(token)  # a plain token (not one a tool env answers)
    assert obs["step"][0] == 1 and obs["response_mask"][0] == 1


def test_import_does_not_import_torch():
    code = "import sys, lmgym, gymnasium as gym; gym.make('lmgym/Copy-v0'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registry_lists_lmgym_namespace(capsys):
    gym.pprint_registry()
    out = capsys.readouterr().out
    assert "lmgym" in out and "Copy-v0" in out


# ---- typed errors; the env keeps working afterwards -----------------------------------------------


def test_unknown_kwarg_names_the_fix():
    with pytest.raises(UnknownEnvKwargError, match="lenght.*Did you mean 'length'") as exc:
        gym.make("lmgym/Copy-v0", lenght=3)
    assert "vocab_size" in str(exc.value)
    assert isinstance(exc.value, TypeError)


@pytest.mark.parametrize(
    "action, match",
    [
        (-1, "outside the vocabulary"),
        (10**6, "outside the vocabulary"),
        (1.0, "integer token id"),
        (True, "integer token id"),
        ("a", "integer token id"),
        (np.array([1, 2]), "shape"),
        (np.array(1.5), "dtype"),
    ],
)
def test_invalid_action_leaves_episode_intact(action, match):
    env = gym.make("lmgym/Copy-v0")
    obs, _ = env.reset(seed=0)
    env.step(5)
    before = env.unwrapped._obs()
    with pytest.raises(InvalidActionError, match=match):
        env.step(action)
    assert same(env.unwrapped._obs(), before)
    obs, reward, *_ = env.step(np.int64(6))  # still usable
    assert obs["step"][0] == 2


def test_numpy_scalar_and_0d_actions_accepted():
    env = gym.make("lmgym/Copy-v0")
    env.reset(seed=0)
    env.step(np.int32(5))
    obs, *_ = env.step(np.array(6))
    assert obs["response_ids"][:2].tolist() == [5, 6]


def test_step_before_reset_and_after_end():
    env = gym.make("lmgym/Copy-v0", length=2)
    with pytest.raises(ResetNeededError, match="before reset"):
        env.step(5)
    env.reset(seed=0)
    *_, terminated, truncated, _ = env.step(env.unwrapped.eos_token_id)
    assert terminated and not truncated
    with pytest.raises(ResetNeededError, match="call env.reset"):
        env.step(5)
    assert isinstance(ResetNeededError("x"), gym.error.ResetNeeded)
    env.reset()
    env.step(5)


def test_unknown_split_and_render_mode():
    with pytest.raises(lmgym.errors.TaskError, match="Did you mean 'validation'"):
        gym.make("lmgym/Copy-v0", split="valid")
    with pytest.raises(ValueError, match="render_mode"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium warns before the env raises
        gym.make("lmgym/Copy-v0", render_mode="rgb_array")


# ---- episode semantics --------------------------------------------------------------------------


def speak(env, words):
    tok = env.unwrapped.tokenizer
    for w in words:
        out = env.step(tok.convert_tokens_to_ids(w))
    return out


def test_oracle_gets_full_reward_and_terminates():
    env = gym.make("lmgym/Reverse-v0", length=4)
    _, info = env.reset(seed=3)
    obs, reward, terminated, truncated, info = speak(env, [*info["references"][0].split(), "<eos>"])
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["completion"] == info["references"][0]
    assert info["score_details"] == {"token_accuracy": 1.0}


def test_truncation_at_token_limit_scores_partial_answer():
    env = gym.make("lmgym/Copy-v0", length=4, max_new_tokens=2)
    _, info = env.reset(seed=0)
    ref = info["references"][0].split()
    obs, reward, terminated, truncated, info = speak(env, ref[:2])
    assert (terminated, truncated) == (False, True)
    assert reward == pytest.approx(0.5)  # 2 of 4 positions right


def test_specs_set_no_time_limit():
    # The env's own max_new_tokens is the single truncation mechanism (it scores the episode).
    for env_id in lmgym.env_ids():
        assert gym.spec(env_id).max_episode_steps is None


def test_reset_options_pick_example_and_split():
    env = gym.make("lmgym/Copy-v0")
    _, a = env.reset(options={"split": "validation", "example_index": 4})
    _, b = env.reset(seed=123, options={"split": "validation", "example_index": 4})
    assert a["prompt"] == b["prompt"] and a["split"] == "validation"
    assert a["prompt"] == env.unwrapped.task.examples("validation")[4].prompt


def test_render_modes(capsys):
    env = gym.make("lmgym/Copy-v0", render_mode="ansi")
    _, info = env.reset(seed=0)
    speak(env, [*info["references"][0].split(), "<eos>"])
    text = env.render()
    assert info["prompt"] in text and "reward     : 1.0000" in text
    human = gym.make("lmgym/Copy-v0", render_mode="human")
    human.reset(seed=0)
    assert human.render() is None
    assert "prompt" in capsys.readouterr().out


def test_splits_are_disjoint_and_deterministic():
    a = gym.make("lmgym/Copy-v0").unwrapped.task
    b = gym.make("lmgym/Copy-v0").unwrapped.task
    assert a.splits == b.splits
    prompts = {s: {e.prompt for e in a.examples(s)} for s in a.splits}
    assert not prompts["train"] & prompts["validation"] and not prompts["train"] & prompts["test"]
    assert len(a.examples("train")) == 10_000
    c = gym.make("lmgym/Copy-v0", corpus_seed=1).unwrapped.task
    assert c.splits != a.splits


def test_small_sequence_space_still_splits():
    env = gym.make("lmgym/Copy-v0", length=2, vocab_size=3)  # only 9 sequences exist
    task = env.unwrapped.task
    assert sum(len(task.examples(s)) for s in task.splits) == 9
    assert all(len(task.examples(s)) >= 1 for s in task.splits)
