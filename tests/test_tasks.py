"""The real-task envs (Summarize, Translate, PositiveReview, Keywords): API contract and semantics."""

from __future__ import annotations

import pickle
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lmgym
from lmgym.errors import TaskError, UnknownEnvKwargError

# id -> (V, P, R, default scorer name)
SIZES = {
    "lmgym/Summarize-v0": (355, 82, 32, "rouge"),
    "lmgym/Translate-v0": (511, 16, 20, "chrf"),
    "lmgym/PositiveReview-v0": (257, 16, 24, "1*sentiment+1*ngram_fluency+-1*repetition"),
    "lmgym/Keywords-v0": (154, 5, 20, "1*keyword_coverage+1*ngram_fluency"),
}
IDS = list(SIZES)


def rollout(env: gym.Env, seed: int, steps: int = 50) -> list:
    """``steps`` random actions (from a seeded action space) with resets; returns everything seen."""
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    seen = [obs, info["prompt"]]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        seen += [obs, float(reward), terminated, truncated, info.get("completion")]
        if terminated or truncated:
            obs, info = env.reset()
            seen += [obs, info["prompt"]]
    return seen


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_registered_and_listed():
    assert set(IDS) <= set(lmgym.env_ids())
    for env_id in IDS:
        assert gym.spec(env_id).vector_entry_point.endswith("VectorEnv")


@pytest.mark.parametrize("env_id", IDS)
def test_sizes_and_default_scorer(env_id):
    V, P, R, scorer = SIZES[env_id]
    env = gym.make("lmgym:" + env_id)
    assert env.action_space == gym.spaces.Discrete(V)
    assert env.observation_space["prompt_ids"].shape == (P,)
    assert env.observation_space["response_ids"].shape == (R,)
    assert env.unwrapped.scorer.name == scorer
    for section in ("## Description", "## Action Space", "## Observation Space", "## Rewards",
                    "## Starting State", "## Episode End", "## Arguments", "## Version History", ">>>"):
        assert section in type(env.unwrapped).__doc__


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_and_sb3_checkers(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_rollout_and_pickle_round_trip(env_id):
    env = gym.make(env_id)
    first = rollout(env, seed=7)
    assert same(first, rollout(gym.make(env_id), seed=7))
    assert not same(first, rollout(gym.make(env_id), seed=8))
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert same(rollout(clone, seed=7), first)


@pytest.mark.parametrize("env_id", IDS)
def test_vector_env_matches_single_env(env_id):
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    obs, info = envs.reset(seed=3)
    single, single_info = gym.make(env_id).reset(seed=3)
    assert np.array_equal(obs["prompt_ids"][0], single["prompt_ids"])
    envs.close()


def test_make_is_fast_once_the_corpus_is_built():
    gym.make("lmgym/Summarize-v0").reset(seed=0)
    start = time.perf_counter()
    env = gym.make("lmgym/Summarize-v0")
    env.reset(seed=1)
    assert time.perf_counter() - start < 0.5


def test_reference_scores_the_maximum_and_limits_hold():
    for env_id in IDS:
        env = gym.make(env_id)
        tok = env.unwrapped.tokenizer
        obs, info = env.reset(seed=0)
        for token in tok(info["references"][0], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]:
            obs, reward, terminated, truncated, info = env.step(token)
        assert terminated and not truncated
        assert info["completion"] == info["references"][0]
        if env_id in ("lmgym/Summarize-v0", "lmgym/Translate-v0"):
            assert reward == pytest.approx(1.0)
        assert tok.unk_token_id not in obs["prompt_ids"]


def test_review_reward_resists_repetition_hacking():
    env = gym.make("lmgym/PositiveReview-v0").unwrapped
    score = env.scorer
    fluent = "the screen is great and the keyboard is lovely . i would recommend it to my sister ."
    hacks = ["great " * 23, "love great best amazing perfect wonderful superb excellent fantastic lovely",
             "great . great . great . great . great . great .", "i love it . i love it . i love it . i love it ."]
    values = score([""] * 5, [fluent, *hacks], None)
    assert values[0] > 1.4
    assert all(v < values[0] - 0.4 for v in values[1:]), values
    negative = score([""], ["the screen is terrible and the keyboard is awful ."], None)[0]
    assert negative < values[0] - 1.0


def test_keywords_reward_needs_both_coverage_and_fluency():
    env = gym.make("lmgym/Keywords-v0").unwrapped
    meta = {"keywords": [["dog", "ball", "throw", "park"]] * 3}
    good, listed, off_topic = env.scorer(
        [""] * 3,
        ["the dog likes to throw the ball in the park .", "dog ball throw park", "the cat likes to eat the cake ."],
        None, **meta,
    )
    assert good > listed + 0.3
    assert good > off_topic + 0.5


def test_translate_directions_share_pairs_and_vocabulary():
    en_xx = gym.make("lmgym/Translate-v0").unwrapped
    xx_en = gym.make("lmgym/Translate-v0", direction="xx-en").unwrapped
    assert en_xx.vocab_size == xx_en.vocab_size
    a, b = en_xx.task.examples("test")[0], xx_en.task.examples("test")[0]
    assert (a.source, a.references[0]) == (b.references[0], b.source)
    assert en_xx.word_dictionary()["the"] == "ti"


def test_corpus_seed_changes_the_data_but_not_the_spaces():
    a = gym.make("lmgym/Keywords-v0").unwrapped
    b = gym.make("lmgym/Keywords-v0", corpus_seed=1).unwrapped
    assert a.action_space == b.action_space and a.observation_space == b.observation_space
    assert a.task.examples("train")[0] != b.task.examples("train")[0]


def test_bad_arguments_raise_typed_errors():
    with pytest.raises(UnknownEnvKwargError, match="corpus_seed"):
        gym.make("lmgym/Summarize-v0", corpus_sed=1)
    with pytest.raises(TaskError, match="en-xx"):
        gym.make("lmgym/Translate-v0", direction="en-de")
    with pytest.raises(TaskError, match="validation"):
        gym.make("lmgym/Keywords-v0", split="dev")
    with pytest.raises(TaskError, match="dataset="):
        gym.make("lmgym/PositiveReview-v0", columns={"text": "body"})


def test_validation_split_and_max_new_tokens():
    env = gym.make("lmgym/Summarize-v0", split="validation", max_new_tokens=3)
    obs, info = env.reset(seed=0)
    assert info["split"] == "validation"
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(10)
    assert truncated and not terminated
    assert 0.0 <= reward <= 1.0
