"""lmgym's own model calls raise no deprecation warnings (issue #16, part 4).

A policy forward pass, the KV-cached rollout through the native vector env, the reference model's
log-probs and ``generate`` (as ``lmgym speed`` section a calls it) run with every
``DeprecationWarning``, ``PendingDeprecationWarning`` and ``FutureWarning`` recorded; none may appear.
Both policy kinds (decoder-only and encoder-decoder) are covered.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import gymnasium as gym

import lmgym  # noqa: F401
from lmgym.agents.ppo.policy import build_policy
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import SamplingConfig, collect_rollout

DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def deprecations(fn) -> list[str]:
    """Run ``fn`` and return the deprecation-like warnings it raised (``file:line: message``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in caught
            if issubclass(w.category, DEPRECATIONS)]


@pytest.mark.parametrize("kind", ["default", "default-seq2seq"])
def test_policy_forward_rollout_reference_and_generate_raise_no_deprecation(kind):
    envs = gym.make_vec("lmgym/Copy-v0", num_envs=4, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", length=5, min_length=2)
    env = envs.env
    policy = build_policy(kind, env.tokenizer, env.max_prompt_tokens + env.max_new_tokens, n_layer=1, n_embd=32,
                          n_head=2, seed=0).eval()
    reference = ReferenceModel(policy)

    def rollout():
        ro = collect_rollout(policy, envs, SamplingConfig(temperature=1.0), generator=torch.Generator().manual_seed(0),
                             seed=1)
        with torch.no_grad():
            policy(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask)
        reference.logprobs(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask, temperature=1.0)
        with torch.no_grad():  # section a of `lmgym speed`: generate with the env's pad and EOS ids
            policy.model.generate(input_ids=ro.prompt_ids, attention_mask=ro.prompt_mask, do_sample=True,
                                  temperature=1.0, top_k=None, top_p=None, max_new_tokens=3, min_new_tokens=3,
                                  pad_token_id=env.pad_token_id, eos_token_id=env.eos_token_id)

    found = deprecations(rollout)
    assert not found, "\n".join(found)
