"""Policy + value head: building, KV-cached decoding vs teacher forcing, save/load, LoRA reference."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import gymnasium as gym

import lmgym  # noqa: F401
from lmgym.agents.ppo.policy import PolicyWithValue, build_policy, lm_forward
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import SamplingConfig, collect_rollout, sample_tokens
from lmgym.errors import ConfigError


def make_envs(num_envs: int = 6, **kwargs):
    # min_length < length: prompts of different lengths, so left padding really varies.
    kwargs = {"length": 6, "min_length": 2, "vocab_size": 8, **kwargs}
    return gym.make_vec("lmgym/Copy-v0", num_envs=num_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", **kwargs)


def small_policy(envs, kind: str = "default", seed: int = 0) -> PolicyWithValue:
    env = envs.env
    return build_policy(kind, env.tokenizer, env.max_prompt_tokens + env.max_new_tokens,
                        n_layer=2, n_embd=32, n_head=2, seed=seed).eval()


@pytest.mark.parametrize("kind", ["default", "default-seq2seq"])
def test_kv_cached_rollout_matches_teacher_forced_recompute(kind):
    envs = make_envs()
    policy = small_policy(envs, kind)
    ro = collect_rollout(policy, envs, SamplingConfig(temperature=1.0), generator=torch.Generator().manual_seed(0),
                         seed=3)
    assert len(set(ro.prompt_mask.sum(1).tolist())) > 1, "test needs prompts of different lengths"
    with torch.no_grad():
        out = policy(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask)
    logprobs = torch.log_softmax(out.logits, -1).gather(-1, ro.response_ids[..., None]).squeeze(-1)
    mask = ro.response_mask.bool()
    assert (logprobs - ro.logprobs)[mask].abs().max().item() < 1e-5
    assert (out.values - ro.values)[mask].abs().max().item() < 1e-5
    # the rollout's episodes are exactly the env's: each completion is the decoded sampled tokens
    for i in range(len(ro.completions)):
        n = int(ro.response_mask[i].sum())
        ids = ro.response_ids[i, :n].tolist()
        if ro.terminated[i]:
            assert ids[-1] == envs.env.eos_token_id
            ids = ids[:-1]
        assert envs.env.decode(ids) == ro.completions[i]


@pytest.mark.parametrize("kind", ["default", "default-seq2seq"])
def test_rollout_drops_prompt_columns_that_are_padding_in_every_row(kind):
    snug, wide = make_envs(), make_envs(max_prompt_tokens=40)
    policy = small_policy(wide, kind)
    runs = [collect_rollout(policy, envs, SamplingConfig(temperature=1.0), generator=torch.Generator().manual_seed(0),
                            seed=3) for envs in (snug, wide)]
    longest = int(runs[1].prompt_mask.sum(1).max())
    assert runs[1].prompt_ids.shape[1] == longest < 40 and bool(runs[1].prompt_mask[:, 0].any())
    assert torch.equal(runs[0].response_ids, runs[1].response_ids)
    torch.testing.assert_close(runs[0].logprobs, runs[1].logprobs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(runs[0].values, runs[1].values, atol=1e-5, rtol=1e-5)


def test_left_padding_does_not_change_causal_outputs():
    envs = make_envs()
    policy = small_policy(envs)
    prompt = torch.tensor([[5, 6, 7]])
    response = torch.tensor([[8, 9]])
    ones = torch.ones_like
    with torch.no_grad():
        plain = policy(prompt, ones(prompt), response, ones(response))
        padded_prompt = torch.cat([torch.zeros(1, 4, dtype=torch.long), prompt], 1)
        mask = torch.cat([torch.zeros(1, 4, dtype=torch.long), ones(prompt)], 1)
        padded = policy(padded_prompt, mask, response, ones(response))
    torch.testing.assert_close(plain.logits, padded.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain.values, padded.values, atol=1e-5, rtol=1e-5)


def test_sampling_controls():
    logits = torch.tensor([[0.0, 1.0, 3.0, 2.0]] * 64)
    greedy = sample_tokens(logits, SamplingConfig(temperature=0.0))
    assert greedy.tolist() == [2] * 64
    gen = torch.Generator().manual_seed(0)
    assert sample_tokens(logits, SamplingConfig(top_k=1), gen).tolist() == [2] * 64
    assert sample_tokens(logits, SamplingConfig(top_p=0.01), gen).tolist() == [2] * 64
    top2 = sample_tokens(logits, SamplingConfig(top_k=2), gen)
    assert set(top2.tolist()) == {2, 3}
    full = sample_tokens(logits, SamplingConfig(temperature=5.0), gen)
    assert len(set(full.tolist())) >= 3


def test_save_pretrained_loads_in_plain_transformers(tmp_path):
    envs = make_envs()
    policy = small_policy(envs)
    torch.nn.init.normal_(policy.value_head.weight)
    policy.save_pretrained(tmp_path / "p", tokenizer=envs.tokenizer)
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "p").eval()
    ids = torch.tensor([[4, 5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(plain(ids).logits, policy.model(ids).logits)
    again = PolicyWithValue.from_pretrained(tmp_path / "p")
    torch.testing.assert_close(again.value_head.weight, policy.value_head.weight)
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "p")
    assert len(tok) == len(envs.tokenizer)


@pytest.mark.parametrize("config_cls,model_cls", [
    ("GPT2Config", "GPT2LMHeadModel"),
    ("T5Config", "T5ForConditionalGeneration"),
])
def test_build_policy_from_a_local_hf_folder(tmp_path, config_cls, model_cls):
    envs = make_envs()
    V = len(envs.tokenizer)
    if config_cls == "GPT2Config":
        config = transformers.GPT2Config(vocab_size=V + 3, n_positions=32, n_embd=32, n_layer=1, n_head=2)
    else:
        config = transformers.T5Config(vocab_size=V + 3, d_model=32, d_ff=64, d_kv=16, num_layers=1, num_heads=2,
                                       decoder_start_token_id=0, pad_token_id=0, eos_token_id=2)
    getattr(transformers, model_cls)(config).save_pretrained(tmp_path / "m")
    policy = build_policy(str(tmp_path / "m"), envs.tokenizer, 32).eval()
    assert policy.is_seq2seq == (config_cls == "T5Config")
    ro = collect_rollout(policy, envs, SamplingConfig(), generator=torch.Generator().manual_seed(0), seed=0)
    assert ro.response_ids.shape[0] == envs.num_envs


def test_build_policy_errors(tmp_path):
    envs = make_envs()
    with pytest.raises(ConfigError, match="does not exist"):
        build_policy(str(tmp_path / "missing"), envs.tokenizer, 32)
    small = transformers.GPT2Config(vocab_size=5, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(small).save_pretrained(tmp_path / "tiny")
    with pytest.raises(ConfigError, match="embeddings"):
        build_policy(str(tmp_path / "tiny"), envs.tokenizer, 32)


def test_build_policy_is_deterministic_per_seed():
    envs = make_envs()
    a, b, c = small_policy(envs, seed=1), small_policy(envs, seed=1), small_policy(envs, seed=2)
    torch.testing.assert_close(a.value_head.weight, b.value_head.weight)
    assert not torch.equal(a.model.lm_head.weight, c.model.lm_head.weight)


def test_frozen_reference_copy_does_not_follow_the_policy():
    envs = make_envs()
    policy = small_policy(envs)
    reference = ReferenceModel(policy)
    prompt, response = torch.tensor([[4, 5]]), torch.tensor([[6, 7]])
    ones = torch.ones_like
    before = reference.logits(prompt, ones(prompt), response, ones(response))
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(0.1)
    torch.testing.assert_close(reference.logits(prompt, ones(prompt), response, ones(response)), before)
    assert all(not p.requires_grad for p in reference.model.parameters())


def test_lora_reference_is_the_policy_with_adapters_disabled():
    pytest.importorskip("peft")
    envs = make_envs()
    policy = small_policy(envs)
    prompt, response = torch.tensor([[4, 5]]), torch.tensor([[6, 7]])
    ones = torch.ones_like
    with torch.no_grad():
        base, _ = lm_forward(policy.model, prompt, ones(prompt), response, ones(response), want_hidden=False)
    policy.add_lora(r=4, alpha=8)
    reference = ReferenceModel(policy)
    assert reference.shares_weights and reference.model is None  # no second copy
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all("lora" in n or "value_head" in n for n in trainable)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)  # adapters now change the output
        adapted = policy(prompt, ones(prompt), response, ones(response)).logits
    assert not torch.allclose(adapted, base)
    torch.testing.assert_close(reference.logits(prompt, ones(prompt), response, ones(response)), base)
