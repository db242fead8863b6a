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
  ``exp(A_t / awac_temperature)`` (capped, normalised to mean 1 over the batch, see :func:`awac_weights`)
  when ``awac_temperature > 0``, else unweighted. ``A_t`` is ``G_t - V(s_t)`` (``awac_advantage="return"``, the
  default: the logged return against the learned V, AWR's Monte-Carlo advantage) or ``Q_target(s_t, a_t) - V(s_t)``
  (``"q"``). ILQL's ``beta = 0`` policy is this LM: plain behaviour cloning of the logs with temperature 0, the
  advantage-weighted (AWR) policy otherwise.

Why the return by default: with one reward per completion, ``Q - V`` of a single token is a small, bootstrapped
difference (about the sequence advantage divided by its length) that the Q heads learn slowly; weighting by it
changed little at temperature 0.3 and collapsed the policy at 0.05 on Translate-v1, while ``G_t - V(s_t)`` at 0.5
raised the ``beta = 0`` score from 0.47 to 0.70 (chrF, seed 0, learning rate 2e-3; SFT on all rows: 0.47).

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
    awac_advantage: str = "return"
    """What the policy term's advantage is: ``"q"``, ``Q_target(s_t, a_t) - V(s_t)`` (AWAC's, bootstrapped), or
    ``"return"``, ``G_t - V(s_t)`` with ``G_t`` the logged return from ``t`` (AWR's Monte-Carlo advantage)."""
    awac_normalize: bool = True
    """Divide the advantage weights by their mean over the batch's tokens, so the policy term keeps behaviour
    cloning's scale and the temperature only sets how unevenly the tokens count."""


def awac_weights(advantages: torch.Tensor, mask: torch.Tensor, settings: ILQLSettings) -> torch.Tensor:
    """The policy term's per-token weights ``(B, R)`` from the logged tokens' advantages ``A = Q_target - V``.

    ``exp(A / awac_temperature)`` capped at ``max_awac_weight`` and (``awac_normalize``) divided by its mean over
    the completion tokens of ``mask``; all ones when ``awac_temperature`` is 0 (behaviour cloning).
    """
    if settings.awac_temperature <= 0:
        return torch.ones_like(advantages)
    weights = torch.exp(advantages / settings.awac_temperature).clamp(max=settings.max_awac_weight)
    if settings.awac_normalize:
        weights = weights / masked_mean(weights, mask).clamp(min=1e-8)
    return weights


def terminal_rewards(rewards: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Per-token rewards ``(B, R)``: each row's reward at its last completion token, 0 elsewhere."""
    last = (response_mask.sum(1) - 1).clamp(min=0)  # (B,)
    out = torch.zeros_like(response_mask, dtype=rewards.dtype)
    out[torch.arange(len(rewards), device=rewards.device), last] = rewards
    return out * response_mask


def returns_to_go(token_rewards: torch.Tensor, response_mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = sum_{k >= t} gamma^(k - t) r_k`` over each row's completion tokens ``(B, R)`` (0 on padding)."""
    out = torch.zeros_like(token_rewards)
    running = torch.zeros_like(token_rewards[:, 0])
    for t in range(token_rewards.shape[1] - 1, -1, -1):
        running = token_rewards[:, t] + gamma * running
        out[:, t] = running
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
    token_rewards = terminal_rewards(rewards.float(), response_mask)  # (B, R)
    target = token_rewards + settings.gamma * next_v * next_mask
    q_loss = sum(masked_mean((q - target) ** 2, mask) for q in q_taken)

    diff = target_q - v
    weight = torch.where(diff > 0, settings.tau, 1 - settings.tau)
    v_loss = masked_mean(weight * diff**2, mask)

    flat_actions = response_ids.reshape(-1)
    cql = sum(masked_mean(F.cross_entropy(q.reshape(-1, q.shape[-1]), flat_actions, reduction="none")
                          .view_as(mask), mask) for q in qs)

    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), flat_actions, reduction="none").view_as(mask)
    with torch.no_grad():
        if settings.awac_advantage == "return":
            advantages = returns_to_go(token_rewards, mask, settings.gamma) - v
        else:
            advantages = target_q - v
        weights = awac_weights(advantages, mask, settings)  # (B, R)
    policy_loss = masked_mean(nll * weights, mask)

    loss = q_loss + v_loss + settings.cql_scale * cql + settings.awac_scale * policy_loss
    parts = {"ilql/loss": loss, "ilql/q_loss": q_loss, "ilql/v_loss": v_loss, "ilql/cql_loss": cql,
             "ilql/policy_loss": policy_loss, "ilql/v_mean": masked_mean(v, mask),
             "ilql/q_mean": masked_mean(q_taken[0], mask)}
    if settings.awac_temperature > 0:
        parts["ilql/awac_weight_max"] = (weights * mask).max()
    return loss, {k: val.detach() for k, val in parts.items()}


__all__ = ["ILQLSettings", "awac_weights", "ilql_loss", "returns_to_go", "terminal_rewards"]
