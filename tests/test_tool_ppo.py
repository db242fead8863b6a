"""PPO on a tool-use env: env-written tokens are context in the KV rollout, the update and the warm start."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

import gymnasium as gym

import lmgym  # noqa: F401
from lmgym.agents.ppo.agent import PolicyAgent
from lmgym.agents.ppo.math import agent_tokens_first, logprobs_from_logits, spread_agent_tokens
from lmgym.agents.ppo.policy import build_policy
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import SamplingConfig, collect_rollout
from lmgym.agents.ppo.sft import build_sft_data, run_sft
from lmgym.agents.ppo.trainer import PPOTrainer
from lmgym.agents.train import TrainConfig
from lmgym.errors import ConfigError


def calculator_envs(n: int = 16):
    return gym.make_vec("lmgym/Calculator-v0", num_envs=n, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", max_new_tokens=32)


def warm_policy(envs, steps: int = 60):
    """A tiny policy SFT'd briefly on the demonstrations, so its samples call the calculator."""
    from accelerate import Accelerator

    torch.manual_seed(0)
    base = envs.env
    policy = build_policy("default", base.tokenizer, base.max_prompt_tokens + base.max_new_tokens, n_layer=1,
                          n_embd=32, n_head=2, seed=0)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    run_sft(policy, optimizer, build_sft_data(base, "train", 400), steps=steps, batch_size=32,
            learning_rate=3e-3, accelerator=Accelerator(cpu=True))
    return policy.eval()


@pytest.fixture(scope="module")
def warm():
    envs = calculator_envs()
    return envs, warm_policy(envs)


def test_rollout_logprobs_equal_the_teacher_forced_pass_at_the_agent_tokens(warm):
    envs, policy = warm
    ro = collect_rollout(policy, envs, SamplingConfig(temperature=1.0), generator=torch.Generator().manual_seed(0),
                         seed=0)
    assert ro.agent_mask is not None
    env_written = (ro.response_mask - ro.agent_mask)
    assert int(env_written.sum()) > 0, "the warm policy should have called the calculator"
    assert (ro.agent_mask <= ro.response_mask).all()
    # Tool results are the env's: <result> ... </result> right after </call>.
    tok = envs.env.tokenizer
    for i in range(len(ro.prompts)):
        ids = ro.response_ids[i][ro.response_mask[i].bool()].tolist()
        assert (env_written[i][: len(ids)].numpy() == envs.env.env_written_in(ids)).all()
        assert ro.completions[i].startswith(tok.decode(ids[: 1], skip_special_tokens=True) or "")
    with torch.no_grad():
        out = policy(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask)
    tf = logprobs_from_logits(out.logits, ro.response_ids)
    agent = ro.agent_mask.bool()
    assert torch.allclose(tf[agent], ro.logprobs[agent], atol=1e-4)
    assert torch.allclose(out.values[agent], ro.values[agent], atol=1e-4)
    assert (ro.logprobs[~agent] == 0).all()
    assert ro.num_tokens == int(ro.agent_mask.sum())


def test_greedy_agent_on_the_held_out_protocol_records_only_agent_tokens(warm):
    from lmgym.heldout import evaluate_agent

    envs, policy = warm
    agent = PolicyAgent(policy, envs.env.pad_token_id, record=True)
    result = evaluate_agent(envs, agent, episodes=16)
    agent.finish()
    prompt_ids, prompt_mask, response_ids, response_mask, agent_mask = agent.rounds[0]
    greedy = collect_rollout(policy, envs, SamplingConfig(temperature=0.0), options={
        "split": "validation", "example_index": np.arange(16)})
    assert result.completions == greedy.completions  # the agent and the rollout feed tool results alike
    T = greedy.response_ids.shape[1]
    assert torch.equal(agent_mask[:, :T] * response_ids[:, :T], greedy.agent_mask * greedy.response_ids)


def test_agent_token_layout_round_trips():
    mask = torch.tensor([[1, 1, 0, 0, 1, 0], [1, 0, 1, 1, 1, 1]]).float()
    x = torch.arange(12.0).view(2, 6)
    order = agent_tokens_first(mask)
    compact = x.gather(1, order)
    assert compact[0, :3].tolist() == [0, 1, 4] and compact[1, :5].tolist() == [6, 8, 9, 10, 11]
    assert torch.equal(spread_agent_tokens(compact, order, mask.gather(1, order)), x * mask)


def test_ppo_iteration_trains_only_on_the_agent_tokens(warm):
    from accelerate import Accelerator

    envs, policy = warm
    config = TrainConfig(env="lmgym/Calculator-v0", num_envs=16, epochs=1, minibatches=1, learning_rate=1e-3,
                         iterations=2)
    trainer = PPOTrainer(config, policy, ReferenceModel(policy), envs, Accelerator(cpu=True))
    metrics = trainer.iterate()
    ro = trainer.last_rollout
    assert all(np.isfinite(v) for v in metrics.values())
    assert metrics["episode/length"] == pytest.approx(float(ro.agent_mask.sum(1).float().mean()), rel=1e-5)
    with pytest.raises(ConfigError, match="dense"):
        PPOTrainer(TrainConfig(env="lmgym/Calculator-v0", num_envs=16, dense_reward=True), policy,
                   ReferenceModel(policy), envs, Accelerator(cpu=True))


def test_warm_start_does_not_imitate_tool_results():
    envs = calculator_envs(4)
    data = build_sft_data(envs.env, "train", 200)
    assert data.loss_mask is not None
    written = data.response_mask - data.loss_mask
    result_id = envs.env.result_id
    assert (data.response_ids[written.bool()] == result_id).sum() == (data.response_ids == result_id).sum()
    assert int(written.sum()) > 0 and (data.loss_mask <= data.response_mask).all()
