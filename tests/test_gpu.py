"""CUDA paths: KV-cached rollouts on the GPU, and SFT + PPO under bf16 / fp16 autocast.

Opt-in (``pytest -m gpu``); every test skips cleanly without CUDA.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_kv_cached_rollout_matches_teacher_forcing_on_cuda():
    import gymnasium as gym

    import lmgym  # noqa: F401
    from lmgym.agents.ppo.policy import build_policy
    from lmgym.agents.ppo.rollout import SamplingConfig, collect_rollout

    envs = gym.make_vec("lmgym/Copy-v0", num_envs=32, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", length=8, min_length=2)
    env = envs.env
    policy = build_policy("default", env.tokenizer, env.max_prompt_tokens + env.max_new_tokens).cuda().eval()
    ro = collect_rollout(policy, envs, SamplingConfig(), generator=torch.Generator("cuda").manual_seed(0), seed=0)
    assert ro.response_ids.is_cuda
    with torch.no_grad():
        out = policy(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask)
    logprobs = torch.log_softmax(out.logits.float(), -1).gather(-1, ro.response_ids[..., None]).squeeze(-1)
    mask = ro.response_mask.bool()
    assert (logprobs - ro.logprobs)[mask].abs().max().item() < 1e-4
    assert (out.values - ro.values)[mask].abs().max().item() < 1e-4


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_sft_and_ppo_under_autocast(tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("bf16 not supported on this GPU")
    from lmgym.agents.train import TrainConfig, train

    config = TrainConfig(env="lmgym/Copy-v0", env_kwargs={"length": 3, "vocab_size": 5}, sft_steps=20,
                         iterations=3, num_envs=32, eval_examples=32, eval_batch_size=32, device="cuda",
                         mixed_precision=precision, output_dir=str(tmp_path), name=precision, progress=False)
    results = train(config)
    last = results["history"][-1]
    for key in ("reward/mean", "objective/kl", "losses/policy", "losses/value", "policy/approx_kl"):
        assert math.isfinite(last[key]), key
    assert results["after"]["score"] >= 0
    assert (tmp_path / precision / "policy" / "model.safetensors").is_file()
