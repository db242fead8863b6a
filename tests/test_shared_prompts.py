"""Reading each distinct prompt once gives the plain pass's outputs and gradients (agents/ppo/shared_prompts.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lmgym.agents.ppo.policy import PolicyWithValue, default_lm, lm_forward
from lmgym.agents.ppo.shared_prompts import distinct_prompts, shared_prompt_forward, shared_prompt_start


def tiny_policy(seed: int = 0) -> PolicyWithValue:
    torch.manual_seed(seed)
    return PolicyWithValue(default_lm("default", 40, 32, 0, 1, 2, n_layer=2, n_embd=16, n_head=2)).eval()


def grouped_batch(k: int = 3) -> tuple[torch.Tensor, ...]:
    """Two prompts of different lengths (left-padded), each ``k`` times, with responses of different lengths."""
    g = torch.Generator().manual_seed(1)
    prompts = torch.tensor([[0, 0, 0, 5, 6, 7], [8, 9, 10, 11, 12, 13]])
    masks = (prompts != 0).long()
    prompt_ids, prompt_mask = prompts.repeat_interleave(k, 0), masks.repeat_interleave(k, 0)
    prompt_ids[0, 0] = 33  # a different id under padding must not split the group
    response_ids = torch.randint(3, 40, (2 * k, 5), generator=g)
    lengths = torch.tensor([5, 3, 1, 4, 5, 2][: 2 * k])
    response_mask = (torch.arange(5)[None] < lengths[:, None]).long()
    return prompt_ids, prompt_mask, response_ids * response_mask, response_mask


def test_distinct_prompts_groups_rows_by_prompt():
    prompt_ids, prompt_mask, *_ = grouped_batch()
    first, inverse = distinct_prompts(prompt_ids, prompt_mask)
    assert sorted(first.tolist()) == [0, 3]
    assert inverse.tolist() == [inverse[0]] * 3 + [inverse[3]] * 3 and inverse[0] != inverse[3]
    assert distinct_prompts(prompt_ids[[0, 3]], prompt_mask[[0, 3]]) is None


def test_shared_prompt_forward_equals_plain_pass_outputs_and_gradients():
    policy = tiny_policy()
    batch = grouped_batch()
    weights = torch.randn(6, 5, 40, generator=torch.Generator().manual_seed(2))
    results = []
    for forward in (lm_forward, shared_prompt_forward):
        policy.zero_grad()
        logits, hidden = forward(policy.model, *batch)
        mask = batch[3][..., None]
        ((logits * weights * mask).sum() + (policy.values_from_hidden(hidden) * batch[3]).sum()).backward()
        grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
        results.append((logits * mask, hidden * mask, grads))
    (plain_logits, plain_hidden, plain_grads), (logits, hidden, grads) = results
    torch.testing.assert_close(logits, plain_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden, plain_hidden, atol=1e-5, rtol=1e-5)
    assert plain_grads.keys() == grads.keys() and len(grads) > 10
    for name in grads:
        torch.testing.assert_close(grads[name], plain_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_shared_prompt_start_decodes_like_start():
    policy = tiny_policy()
    prompt_ids, prompt_mask, response_ids, _ = grouped_batch()
    with torch.no_grad():
        plain_state, plain_logits, plain_values = policy.start(prompt_ids, prompt_mask)
        state, logits, values = shared_prompt_start(policy, prompt_ids, prompt_mask)
        torch.testing.assert_close(logits, plain_logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(values, plain_values, atol=1e-5, rtol=1e-5)
        for t in range(3):  # the copied cache keeps decoding as the plain one does
            plain_logits, plain_values = policy.step(plain_state, response_ids[:, t])
            logits, values = policy.step(state, response_ids[:, t])
            torch.testing.assert_close(logits, plain_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(values, plain_values, atol=1e-5, rtol=1e-5)
