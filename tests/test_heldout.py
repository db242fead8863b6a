"""The held-out evaluation protocol: fixed episodes, the same for eval, bench, SB3 and training."""

from __future__ import annotations

import numpy as np
import pytest

from lmgym.baselines import make_agent
from lmgym.evaluate import evaluate
from lmgym.heldout import PredictAgent, SlotAgents, evaluate_agent, make_heldout_envs

COPY = {"length": 3, "vocab_size": 10}


def test_first_examples_in_order_and_spare_slots_ignored():
    envs = make_heldout_envs("lmgym/Copy-v0", 3, **COPY)
    oracle = SlotAgents([make_agent("oracle", envs.env) for _ in range(3)])
    result = evaluate_agent(envs, oracle, episodes=5)  # rounds of 3 and 2 (+1 spare slot)
    examples = envs.task.examples("validation")
    assert result.example_index == [0, 1, 2, 3, 4] and len(result) == 5
    assert result.completions == [ex.references[0] for ex in examples[:5]]
    assert result.rewards == [1.0] * 5 and result.scores == result.rewards
    assert result.lengths == [4] * 5 and all(result.terminated)  # 3 tokens + EOS
    whole = evaluate_agent(envs, oracle, episodes=None, split="test")
    assert len(whole) == len(envs.task.examples("test"))


def test_task_metric_scores_the_same_completions():
    envs = make_heldout_envs("lmgym/Copy-v0", 4, **COPY)
    constant = PredictAgent(lambda obs: np.full(len(obs["step"]), 5))
    from lmgym.scorers import make_scorer

    result = evaluate_agent(envs, constant, episodes=6, metric_scorer=make_scorer("length"))
    assert result.scores != result.rewards and len(result.scores) == 6


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_batch_size_does_not_change_the_episodes(batch_size):
    base = evaluate("Copy-v0", "oracle", episodes=9, batch_size=3, **COPY)
    other = evaluate("Copy-v0", "oracle", episodes=9, batch_size=batch_size, **COPY)
    assert base["scores"] == other["scores"] and base["n"] == 9


def test_eval_bench_and_sb3_score_the_same_episodes():
    pytest.importorskip("stable_baselines3")
    from lmgym.agents.bench.agents import heldout_baseline_scores
    from lmgym.agents.sb3 import HeldOutEvaluator

    simple = evaluate("Translate-v0", "simple", episodes=10, max_new_tokens=12)
    scores, resolved = heldout_baseline_scores("lmgym/Translate-v0", {"max_new_tokens": 12}, "simple", 0, 10)
    assert scores == simple["scores"] and resolved == "dictionary"

    def predict(obs):  # the first prompt token, then EOS: deterministic and cheap
        return np.where(obs["step"][:, 0] == 0, obs["prompt_ids"][:, -1], 2)

    evaluator = HeldOutEvaluator("lmgym/Copy-v0", COPY, n_episodes=7, n_envs=4)
    assert evaluator(predict) == evaluate("Copy-v0", PredictAgent(predict), episodes=7, batch_size=4, **COPY)["scores"]
    evaluator.close()
