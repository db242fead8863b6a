"""PPO trainer: the update moves log-probs the right way, metrics, early stop, KL control, learning."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

import gymnasium as gym

import lmgym  # noqa: F401
from lmgym.agents.ppo.math import logprobs_from_logits
from lmgym.agents.ppo.policy import build_policy
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import SamplingConfig, collect_rollout
from lmgym.agents.ppo.trainer import PPOTrainer, iteration_seed
from lmgym.agents.train import TrainConfig, train
from lmgym.errors import ConfigError

TIMING = ("charts/tokens_per_s", "charts/iteration_s", "time/rollout_s", "time/reference_s",
          "time/update_s")


def make_trainer(**overrides) -> PPOTrainer:
    from accelerate import Accelerator

    config = TrainConfig(**{"env": "lmgym/Copy-v0", "num_envs": 16, "epochs": 1, "minibatches": 1,
                            "learning_rate": 1e-3, "iterations": 10, **overrides})
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=config.num_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", length=3, vocab_size=5)
    policy = build_policy("default", envs.tokenizer, 8, n_layer=1, n_embd=32, n_head=2, seed=0).eval()
    return PPOTrainer(config, policy, ReferenceModel(policy), envs, Accelerator(cpu=True))


def teacher_forced_logprobs(trainer, ro):
    with torch.no_grad():
        out = trainer.policy(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask)
    return logprobs_from_logits(out.logits, ro.response_ids)


def test_one_update_raises_logprobs_of_positive_advantage_actions():
    trainer = make_trainer(whiten_advantages=False, value_lr_scale=1.0)
    ro = collect_rollout(trainer.policy, trainer.envs, SamplingConfig(), generator=torch.Generator().manual_seed(0),
                         seed=0)
    mask = ro.response_mask.float()
    sign = torch.where(torch.arange(len(mask)) % 2 == 0, 1.0, -1.0)[:, None]  # even rows good, odd rows bad
    advantages = sign * mask
    before = teacher_forced_logprobs(trainer, ro)
    trainer.update(ro, advantages, ro.values.clone(), torch.Generator().manual_seed(0))
    change = (teacher_forced_logprobs(trainer, ro) - before) * mask
    up = change[0::2].sum() / mask[0::2].sum()
    down = change[1::2].sum() / mask[1::2].sum()
    assert up > 0.01 and down < -0.01


def test_iteration_reports_namespaced_metrics_and_adapts_kl():
    trainer = make_trainer(target_kl=0.001, kl_horizon=16, kl_coef=0.1, learning_rate=3e-3, epochs=2)
    first = trainer.iterate()
    second = trainer.iterate()
    for key in ("reward/mean", "objective/kl", "objective/kl_coef", "losses/policy", "losses/value",
                "losses/entropy", "policy/approx_kl", "policy/clipfrac", "charts/tokens_per_s", "value/mean",
                "episode/length", "policy/epochs"):
        assert math.isfinite(second[key]), key
    assert first["objective/kl"] == pytest.approx(0.0, abs=1e-5)  # policy == reference before any update
    # The adaptive controller moved the coefficient by the clipped relative error x 16 episodes / horizon 16.
    error = min(max(second["objective/kl"] / 0.001 - 1, -0.2), 0.2)
    assert abs(error) == pytest.approx(0.2)
    assert trainer.kl_controller.value == pytest.approx(second["objective/kl_coef"] * (1 + error))
    assert trainer.iteration == 2 and trainer.episodes == 32


def test_early_stop_on_approx_kl():
    # approx-KL is measured on each minibatch before its step: with two minibatches the second one
    # already sees the first step's change, so the update stops after epoch 1.
    trainer = make_trainer(epochs=4, minibatches=2, target_approx_kl=1e-12, learning_rate=1e-2)
    assert trainer.iterate()["policy/epochs"] == 1.0
    trainer = make_trainer(epochs=3, target_approx_kl=None)
    assert trainer.iterate()["policy/epochs"] == 3.0


def test_same_seed_same_numbers():
    a = {k: v for k, v in make_trainer().iterate().items() if k not in TIMING}
    b = {k: v for k, v in make_trainer().iterate().items() if k not in TIMING}
    assert a == b
    assert iteration_seed(0, 1) != iteration_seed(0, 2) != iteration_seed(1, 1)
    assert iteration_seed(0, 1, rank=0) != iteration_seed(0, 1, rank=1)


def test_dense_score_rewards_match_the_dense_wrapper():
    from lmgym.agents.ppo.shaping import dense_score_rewards
    from lmgym.wrappers import DenseScoreReward

    envs = gym.make_vec("lmgym/Copy-v0", num_envs=8, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", length=4, min_length=2, vocab_size=4)
    policy = build_policy("default", envs.tokenizer, 16, n_layer=1, n_embd=32, n_head=2)
    ro = collect_rollout(policy, envs, SamplingConfig(), generator=torch.Generator().manual_seed(1), seed=1)
    dense = dense_score_rewards(envs, ro)
    torch.testing.assert_close(dense.sum(1), ro.scores)
    single = DenseScoreReward(gym.make("lmgym/Copy-v0", length=4, min_length=2, vocab_size=4))
    for i in range(8):
        single.reset(options={"example_index": ro.example_index[i]})
        n = int(ro.response_mask[i].sum())
        expected = [single.step(int(a))[1] for a in ro.response_ids[i, :n]]
        torch.testing.assert_close(dense[i, :n], torch.tensor(expected, dtype=torch.float32))
        assert dense[i, n:].abs().sum() == 0


def test_samples_per_prompt_groups_slots_on_one_prompt():
    trainer = make_trainer(samples_per_prompt=4)
    trainer.iterate()
    ro = trainer.last_rollout
    groups = [ro.example_index[i : i + 4] for i in range(0, 16, 4)]
    assert all(len(set(g)) == 1 for g in groups) and len({g[0] for g in groups}) > 1
    with pytest.raises(ConfigError, match="multiple of samples_per_prompt"):
        TrainConfig(num_envs=10, samples_per_prompt=4).validate()


def test_rloo_advantages_rank_completions_within_each_prompt():
    trainer = make_trainer(samples_per_prompt=4, advantage="rloo", whiten_advantages=False)
    metrics = trainer.iterate()
    assert math.isfinite(metrics["losses/policy"]) and math.isfinite(metrics["losses/value"])
    ro = trainer.last_rollout
    mask = ro.response_mask.float()
    rewards = torch.zeros_like(mask)
    rewards[torch.arange(16), mask.sum(1).long() - 1] = ro.scores  # no KL penalty: advantages are score gaps
    advantages, returns = trainer.advantages(ro.values, rewards, mask)
    for g in range(0, 16, 4):
        scores = ro.scores[g : g + 4]
        for i in range(4):
            gap = scores[i] - (scores.sum() - scores[i]) / 3
            torch.testing.assert_close(advantages[g + i][mask[g + i].bool()], gap.expand(int(mask[g + i].sum())))
    torch.testing.assert_close(returns[mask.bool()], ro.scores[:, None].expand_as(mask)[mask.bool()])
    for bad, match in (({"advantage": "gae2"}, "advantage must be"), ({"advantage": "rloo", "samples_per_prompt": 1},
                                                                "samples_per_prompt >= 2")):
        with pytest.raises(ConfigError, match=match):
            TrainConfig(**bad).validate()


def test_rollouts_need_a_lockstep_env():
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=2, vectorization_mode="vector_entry_point")
    policy = build_policy("default", envs.tokenizer, 16, n_layer=1, n_embd=32, n_head=2)
    with pytest.raises(ConfigError, match="lockstep"):
        collect_rollout(policy, envs, SamplingConfig())


@pytest.mark.slow
def test_ppo_learns_copy_from_scratch(tmp_path):
    """PPO alone (no SFT, random init) learns to copy 3 symbols: reward and greedy score rise a lot.

    Budget: 40 iterations x 64 episodes (about a minute on 2 CPU cores).
    """
    config = TrainConfig(env="lmgym/Copy-v0", env_kwargs={"length": 3, "vocab_size": 5}, algo="ppo",
                         iterations=40, num_envs=64, samples_per_prompt=1, epochs=4, minibatches=4,
                         learning_rate=3e-4, eval_every=40, eval_examples=100, output_dir=str(tmp_path),
                         name="copy", progress=False, tensorboard=False)
    results = train(config)
    rewards = [r["reward/mean"] for r in results["history"]]
    assert sum(rewards[-5:]) / 5 >= sum(rewards[:5]) / 5 + 0.4
    assert results["after"]["score"] >= results["before"]["score"] + 0.6
