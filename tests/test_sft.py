"""SFT warm start: data layout matches the env's observations, and training learns the references."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

import gymnasium as gym

import lmgym  # noqa: F401
from lmgym.agents.ppo.policy import build_policy
from lmgym.agents.ppo.sft import build_sft_data, run_sft, sft_loss, trim_padding, warmup_cosine


def make_env(**kwargs):
    return gym.make("lmgym/Copy-v0", length=5, min_length=2, vocab_size=6, **kwargs).unwrapped


def test_sft_rows_match_the_env_observation_and_reference():
    env = make_env()
    data = build_sft_data(env, "train", max_examples=20)
    assert len(data) == 20
    for i in (0, 7, 19):
        obs, info = env.reset(options={"example_index": i})
        assert data.prompt_ids[i].tolist() == obs["prompt_ids"].tolist()
        assert data.prompt_mask[i].tolist() == obs["prompt_mask"].tolist()
        n = int(data.response_mask[i].sum())
        ids = data.response_ids[i, :n].tolist()
        assert ids[-1] == env.eos_token_id
        assert env.decode(ids[:-1]) == info["references"][0]
        assert data.response_ids[i, n:].eq(env.pad_token_id).all()


def test_multiple_references_give_one_row_each():
    env = gym.make("lmgym/Keywords-v0").unwrapped
    examples = env.task.examples("train")[:5]
    data = build_sft_data(env, "train", max_examples=5)
    assert len(data) == sum(len(ex.references) for ex in examples)


def test_trim_padding_drops_only_all_padding_columns():
    prompt = torch.tensor([[0, 0, 5, 6], [0, 0, 0, 7]])
    prompt_mask = (prompt > 0).long()
    response = torch.tensor([[8, 2, 0, 0], [2, 0, 0, 0]])
    response_mask = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])
    p, pm, r, rm = trim_padding(prompt, prompt_mask, response, response_mask)
    assert p.tolist() == [[5, 6], [0, 7]] and pm.tolist() == [[1, 1], [0, 1]]
    assert r.tolist() == [[8, 2], [2, 0]] and rm.tolist() == [[1, 1], [1, 0]]


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 100) == pytest.approx(0.2)  # 5 warm-up steps: 1/5
    assert warmup_cosine(4, 100) == pytest.approx(1.0)
    assert warmup_cosine(99, 100) == pytest.approx(0.1, abs=1e-3)


def test_sft_learns_copy():
    from accelerate import Accelerator

    env = make_env()
    policy = build_policy("default", env.tokenizer, 16, n_layer=1, n_embd=32, n_head=2, seed=0)
    data = build_sft_data(env, "train", max_examples=2000)
    batch = data.batch(torch.arange(64), "cpu")
    with torch.no_grad():
        loss_before, acc_before = sft_loss(policy, batch)
    accelerator = Accelerator(cpu=True)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    model, optimizer = accelerator.prepare(policy, optimizer)
    logged = []
    last = run_sft(model, optimizer, data, steps=150, batch_size=32, learning_rate=3e-3, accelerator=accelerator,
                   log=lambda step, m: logged.append((step, m)), log_every=50)
    with torch.no_grad():
        loss_after, acc_after = sft_loss(policy, batch)
    assert [s for s, _ in logged] == [50, 100, 150]
    assert last["sft/loss"] == logged[-1][1]["sft/loss"]
    assert loss_after < 0.5 * loss_before
    assert acc_after > acc_before + 0.3
    assert not policy.training  # left in eval mode for rollouts
