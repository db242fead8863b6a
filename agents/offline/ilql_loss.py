"""ILQL's losses on a batch of logged ``(prompt, completion, reward)`` rows (pure tensor maths).

For each completion token ``a_t`` written in state ``s_t`` (the hidden state before it), with the
sequence reward ``r`` paid at the last token and ``V(s_{T+1}) = 0``:

- **Q** (both heads): ``(Q_i(s_t, a_t) - (r_t + gamma * V(s_{t+1})))^2``, V held fixed;
- **V**: expectile regression of ``V(s_t)`` on ``min_i Qtarget_i(s_t, a_t)`` with ``tau``; with ``tau > 0.5``
  V tracks the better actions of the data rather than their average (implicit maximisation over
  the actions the logs contain, never over unseen ones);
- **CQL**: the cross-entropy of each Q head's values as logits against ``a_t``, which pushes down Q of
  tokens the logs never chose;
- **policy (AWAC-style)**: the cross-entropy of the LM's logits against ``a_t``, weighted by
  ``exp(A / awac_temperature)`` when ``awac_temperature > 0`` (advantage-weighted regression), else
  unweighted (behaviour cloning: ILQL's ``beta = 0`` policy is then the BC policy of the logs).

All means are over the completion's tokens (``response_mask``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmgym.agents.ppo.math import masked_mean
from lmgym.agents.ppo.policy import lm_forward


@dataclass(frozen=True)
class ILQLSettings:
    """The weights and constants of the ILQL loss (defaults of the ILQL paper / trlX where they apply)."""

    gamma: float = 1.0
    """Discount over completion tokens."""
    tau: float = 0.7
    """Expectile of the V regression (0.5: mean; toward 1: the best logged action)."""
    cql_scale: float = 0.1
    """Weight of the CQL term."""
    awac_scale: float = 1.0
    """Weight of the policy (LM) term."""
    awac_temperature: float = 0.0
    """Advantage weighting of the policy term (0: plain behaviour cloning)."""
    max_awac_weight: float = 20.0
    """Cap of the advantage weights (AWR's usual guard against a few huge weights)."""


def terminal_rewards(rewards: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Per-token rewards ``(B, R)``: each row's reward at its last completion token, 0 elsewhere."""
    last = (response_mask.sum(1) - 1).clamp(min=0)  # (B,)
    out = torch.zeros_like(response_mask, dtype=rewards.dtype)
    out[torch.arange(len(rewards), device=rewards.device), last] = rewards
    return out * response_mask


def ilql_loss(policy: torch.nn.Module, batch: tuple[torch.Tensor, ...], rewards: torch.Tensor,
              settings: ILQLSettings) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The total ILQL loss of one batch and its parts (detached, for logging).

    Args:
        policy: an :class:`~lmgym.agents.offline.ilql.ILQLPolicy` (unwrapped, or wrapped by accelerate: its
            ``module`` is used for the heads).
        batch: ``(prompt_ids, prompt_mask, response_ids, response_mask)`` in the env's layout.
        rewards: the normalised sequence rewards ``(B,)``.
    """
    inner = getattr(policy, "module", policy)
    prompt_ids, prompt_mask, response_ids, response_mask = batch
    mask = response_mask.float()
    logits, hidden = lm_forward(inner.model, prompt_ids, prompt_mask, response_ids, response_mask)
    logits = inner.cut_logits(logits).float()  # (B, R, V)
    hidden = hidden.to(inner.value_head.weight.dtype)
    actions = response_ids.unsqueeze(-1)  # (B, R, 1)
    qs = [inner.cut_logits(q).float() for q in inner.heads.q_values(hidden)]  # 2 x (B, R, V)
    q_taken = [q.gather(-1, actions).squeeze(-1) for q in qs]  # 2 x (B, R)
    with torch.no_grad():
        target_q = inner.cut_logits(inner.heads.target_values(hidden)).float().gather(-1, actions).squeeze(-1)
    v = inner.values_from_hidden(hidden).float()  # (B, R)

    next_v = torch.cat([v[:, 1:], torch.zeros_like(v[:, :1])], 1).detach()
    next_mask = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], 1)  # 0 after the last token
    target = terminal_rewards(rewards.float(), response_mask) + settings.gamma * next_v * next_mask
    q_loss = sum(masked_mean((q - target) ** 2, mask) for q in q_taken)

    diff = target_q - v
    weight = torch.where(diff > 0, settings.tau, 1 - settings.tau)
    v_loss = masked_mean(weight * diff**2, mask)

    flat_actions = response_ids.reshape(-1)
    cql = sum(masked_mean(F.cross_entropy(q.reshape(-1, q.shape[-1]), flat_actions, reduction="none")
                          .view_as(mask), mask) for q in qs)

    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), flat_actions, reduction="none").view_as(mask)
    if settings.awac_temperature > 0:
        with torch.no_grad():
            weights = torch.exp((target_q - v) / settings.awac_temperature).clamp(max=settings.max_awac_weight)
        nll = nll * weights
    policy_loss = masked_mean(nll, mask)

    loss = q_loss + v_loss + settings.cql_scale * cql + settings.awac_scale * policy_loss
    parts = {"ilql/loss": loss, "ilql/q_loss": q_loss, "ilql/v_loss": v_loss, "ilql/cql_loss": cql,
             "ilql/policy_loss": policy_loss, "ilql/v_mean": masked_mean(v, mask),
             "ilql/q_mean": masked_mean(q_taken[0], mask)}
    return loss, {k: val.detach() for k, val in parts.items()}


__all__ = ["ILQLSettings", "ilql_loss", "terminal_rewards"]
