"""DenseScoreReward: per-token rewards are score differences and sum to the sparse score."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import lmgym  # noqa: F401  (registers the envs)
from lmgym.scorers import make_scorer
from lmgym.task import Task, make_example
from lmgym.token_env import TokenEnv
from lmgym.wrappers import DenseScoreReward


def play(env, actions_rng, seed):
    """One episode with random actions; returns (rewards, final info)."""
    env.reset(seed=seed)
    rewards = []
    while True:
        _, reward, terminated, truncated, info = env.step(int(actions_rng.integers(env.action_space.n)))
        rewards.append(float(reward))
        if terminated or truncated:
            return rewards, info


@pytest.mark.parametrize(
    ("env_id", "scorer"),
    [
        ("lmgym/Copy-v0", None),
        ("lmgym/Reverse-v0", None),
        ("lmgym/Copy-v0", {"token_accuracy": 1.0, "repetition": -0.5, "length": 0.3, "chrf": 0.7}),
        ("lmgym/Copy-v0", "ter"),
    ],
)
def test_episode_sum_equals_sparse_score(env_id, scorer):
    kwargs = {} if scorer is None else {"scorer": scorer}
    dense = DenseScoreReward(gym.make(env_id, length=4, vocab_size=6, max_new_tokens=6, **kwargs))
    sparse = gym.make(env_id, length=4, vocab_size=6, max_new_tokens=6, **kwargs)
    exact = 0
    for seed in range(150):
        rewards, info = play(dense, np.random.default_rng(seed), seed)
        sparse_rewards, sparse_info = play(sparse, np.random.default_rng(seed), seed)
        assert info["completion"] == sparse_info["completion"]
        assert all(r == 0.0 for r in sparse_rewards[:-1])
        assert sum(rewards) == pytest.approx(sparse_rewards[-1], abs=1e-12)
        assert info["potential"] == info["score"] == sparse_rewards[-1]
        exact += sum(rewards) == sparse_rewards[-1]
    assert exact >= 145  # float rounding almost never shows, and never more than 1e-12


def test_rewards_are_score_differences():
    env = DenseScoreReward(gym.make("lmgym/Copy-v0", length=4, vocab_size=6, scorer="token_f1"))
    scorer = make_scorer("token_f1")
    obs, info = env.reset(seed=3)
    ref = info["references"][0]
    tok = env.unwrapped.tokenizer
    words = [*ref.split()[:2], "a", "a"]
    previous = 0.0
    for t, w in enumerate(words, start=1):
        obs, reward, terminated, truncated, step_info = env.step(tok.convert_tokens_to_ids(w))
        now = scorer([info["prompt"]], [" ".join(words[:t])], [[ref]])[0]
        assert reward == pytest.approx(now - previous, abs=1e-12)
        assert step_info["potential"] == pytest.approx(now)
        previous = now
    obs, reward, terminated, truncated, step_info = env.step(tok.eos_token_id)
    assert terminated and reward == 0.0  # EOS after the same text adds nothing
    assert step_info["score"] == pytest.approx(previous)


def test_truncated_episode_and_first_step_potential():
    env = DenseScoreReward(gym.make("lmgym/Copy-v0", length=3, vocab_size=4, scorer="length", max_new_tokens=2))
    obs, info = env.reset(seed=0)
    a, b = env.unwrapped.tokenizer.convert_tokens_to_ids(["a", "b"])
    r1 = env.step(a)[1]  # one word of a 3-word target: Φ_1 = 1/3 (Φ_0 is 0, not score(""))
    _, r2, terminated, truncated, info = env.step(b)
    assert truncated and not terminated
    assert r1 == pytest.approx(1 / 3) and info["score"] == pytest.approx(2 / 3)
    assert r1 + r2 == pytest.approx(info["score"], abs=1e-12)


def test_own_scorer_and_meta_from_task():
    examples = [make_example("x", "the dog runs in the park", keywords=["dog", "park"])]
    task = Task(name="kw", splits={"train": examples}, vocabulary=["the", "dog", "runs", "in", "park", "cat"])
    base = TokenEnv(task, scorer="token_accuracy", max_new_tokens=5)
    env = DenseScoreReward(base, scorer={"keyword_coverage": 1.0, "repetition": -1.0})
    env.reset(seed=0)
    tok = base.tokenizer
    rewards = []
    for w in ["the", "dog", "the", "dog", "park"]:
        _, r, terminated, truncated, info = env.step(tok.convert_tokens_to_ids(w))
        rewards.append(r)
    assert truncated
    potentials = [0.0, 0.5, 0.5, 0.5 - 1 / 3, 1.0 - 1 / 4]  # coverage minus repeated-bigram fraction
    assert rewards == pytest.approx(np.diff([0.0, *potentials]).tolist(), abs=1e-12)
    assert sum(rewards) == pytest.approx(0.75, abs=1e-12)
    assert info["potential"] == pytest.approx(0.75)
    assert info["score"] == pytest.approx(2 / 6)  # the env's own (sparse) scorer is untouched


def test_needs_an_lmgym_env():
    with pytest.raises(TypeError, match="TokenEnv"):
        DenseScoreReward(gym.make("CartPole-v1"))
