"""Stock SB3 PPO with the token extractor learns Copy-v0 (slow: ~30-60 s on one CPU core)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from lmgym.agents.sb3 import evaluate_policy_scores, make_sb3_env, make_sb3_model

COPY = {"length": 3, "vocab_size": 5}  # 125 sequences: 115 train, 5 validation, 5 test
BUDGET = 20_000  # env steps (tokens)


@pytest.mark.slow
def test_sb3_ppo_solves_small_copy():
    env = make_sb3_env("lmgym/Copy-v0", 8, seed=0, env_kwargs=COPY)
    model = make_sb3_model("ppo", env, seed=0)  # default transformer extractor and lmgym PPO defaults
    model.learn(BUDGET)

    def predict(obs):
        return model.predict(obs, deterministic=True)[0]

    train = evaluate_policy_scores(predict, "lmgym/Copy-v0", n_episodes=100, env_kwargs=COPY, split="train")
    held_out = evaluate_policy_scores(predict, "lmgym/Copy-v0", n_episodes=100, env_kwargs=COPY)
    assert len(train) == 100 and len(held_out) == 5
    assert np.mean(train) >= 0.9 and np.mean(held_out) >= 0.9
