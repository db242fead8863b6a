"""Teacher-forced and cached passes that read each distinct prompt once.

With ``samples_per_prompt = k`` every prompt of a PPO batch appears ``k`` times, and on the built-in tasks the prompt
is most of each sequence (Summarize: ~80 prompt tokens for ~30 response tokens). A causal LM's prompt activations do
not depend on the response, so the prompt can be run once per *distinct* prompt, its KV cache indexed out to every
row that shares it, and only the responses run per row. The outputs are those of the plain pass
(:func:`~lmgym.agents.ppo.policy.lm_forward`, :meth:`~lmgym.agents.ppo.policy.PolicyWithValue.start`) and so are
the gradients: indexing the cache sums the gradient of every row into its prompt's activations.

Used by the PPO update and the reference pass (:func:`shared_prompt_forward`) and by the rollout's prefill
(:func:`shared_prompt_start`). Seq2seq models, and batches whose prompts are all distinct, take the plain path.
"""

from __future__ import annotations

import torch
from torch import nn

from lmgym.agents.ppo.policy import (
    CACHE_FIELD,
    DecodeState,
    PolicyWithValue,
    lm_forward,
    position_ids_from_mask,
    unwrap_lm,
)


def distinct_prompts(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(first, inverse)``: the row index of each distinct (ids, mask) prompt ``(U,)`` and, for every row, which
    distinct prompt it is ``(B,)``; ``None`` when every row's prompt is distinct (nothing to share)."""
    key = torch.cat([prompt_ids * prompt_mask, prompt_mask], 1)  # padding ids never split a group
    unique, inverse = torch.unique(key, dim=0, return_inverse=True)
    if len(unique) == len(key):
        return None
    first = torch.full((len(unique),), len(key), dtype=torch.long, device=key.device)
    first = first.scatter_reduce(0, inverse, torch.arange(len(key), device=key.device), reduce="amin")
    return first, inverse


def _prefill(model: nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, want_hidden: bool) -> object:
    """One cached pass over left-padded prompts, positions counted over real tokens; keeps the last logits only."""
    return model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=position_ids_from_mask(prompt_mask),
                 use_cache=True, output_hidden_states=want_hidden, logits_to_keep=1)


def shared_prompt_forward(
    model: nn.Module,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    response_ids: torch.Tensor,
    response_mask: torch.Tensor,
    want_hidden: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`~lmgym.agents.ppo.policy.lm_forward` with each distinct prompt run once.

    Returns:
        ``(logits (B, R, V), hidden (B, R, H) or None)``: position ``t`` is the state that predicts
        ``response_ids[:, t]``, exactly as :func:`~lmgym.agents.ppo.policy.lm_forward` gives them.
    """
    shared = None if unwrap_lm(model).config.is_encoder_decoder else distinct_prompts(prompt_ids, prompt_mask)
    if shared is None:
        return lm_forward(model, prompt_ids, prompt_mask, response_ids, response_mask, want_hidden)
    first, inverse = shared
    P, R = prompt_ids.shape[1], response_ids.shape[1]
    out = _prefill(model, prompt_ids[first], prompt_mask[first], want_hidden)  # (U, 1, V): U distinct prompts
    logits = out.logits[inverse]  # (B, 1, V): the state before the first response token
    hidden = out.hidden_states[-1][inverse][:, -1:] if want_hidden else None
    if R > 1:
        cache = getattr(out, CACHE_FIELD)
        cache.batch_select_indices(inverse)  # (U, ...) -> (B, ...), differentiable
        mask = torch.cat([prompt_mask, response_mask], 1)  # (B, P+R)
        # The states before response tokens 1..R-1 are those after tokens 0..R-2: the last token is never fed.
        rest = model(input_ids=response_ids[:, :-1], attention_mask=mask[:, : P + R - 1],
                     position_ids=position_ids_from_mask(mask)[:, P : P + R - 1], use_cache=True,
                     output_hidden_states=want_hidden, **{CACHE_FIELD: cache})
        logits = torch.cat([logits, rest.logits], 1)  # (B, R, V)
        if want_hidden:
            hidden = torch.cat([hidden, rest.hidden_states[-1]], 1)  # (B, R, H)
    return logits, hidden


@torch.no_grad()
def shared_prompt_start(
    policy: PolicyWithValue, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor
) -> tuple[DecodeState, torch.Tensor, torch.Tensor]:
    """:meth:`~lmgym.agents.ppo.policy.PolicyWithValue.start` with each distinct prompt prefilled once and its KV
    cache copied to the rows that share it; returns the decode state, ``logits (B, V)`` and ``values (B,)``."""
    shared = None if policy.is_seq2seq else distinct_prompts(prompt_ids, prompt_mask)
    if shared is None:
        return policy.start(prompt_ids, prompt_mask)
    first, inverse = shared
    state, logits, values = policy.start(prompt_ids[first], prompt_mask[first])
    state.cache.batch_select_indices(inverse)
    state.attention_mask, state.position = state.attention_mask[inverse], state.position[inverse]
    return state, logits[inverse], values[inverse]
