"""PPO math for token-level language RL: pure functions on tensors, no models, no envs.

Every tensor here is laid out per *response token*: ``(B, T)`` with a ``mask`` that is 1 on the
tokens an episode actually wrote (a prefix of each row) and 0 on the padding after it.

The pieces, in the order a PPO iteration uses them:

1. :func:`token_rewards`: the env's score lands on the last written token, and every token pays
   ``kl_coef * (logp - ref_logp)`` for drifting from the reference model;
2. :func:`compute_gae`: advantages and returns with GAE(gamma, lambda), the episode ending after
   its last written token (no bootstrap: the score is the whole future);
3. :func:`masked_whiten`: advantages normalised over the valid tokens of the batch;
4. :func:`policy_loss`, :func:`value_loss`, :func:`entropy_from_logits`: the clipped surrogate,
   the clipped value regression and the entropy bonus;
5. :class:`FixedKLController` / :class:`AdaptiveKLController`: how ``kl_coef`` moves between
   iterations (Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# ---- masked statistics --------------------------------------------------------------------------


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of ``x`` over the entries where ``mask`` is 1 (over ``dim``, or everything)."""
    return (x * mask).sum() if dim is None else (x * mask).sum(dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over the entries where ``mask`` is 1; 0 where the mask is empty."""
    return masked_sum(x, mask, dim) / mask.sum(dim).clamp(min=1)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` over the masked entries (Bessel-corrected when ``unbiased``)."""
    mean = masked_mean(x, mask)
    n = mask.sum()
    var = masked_sum((x - mean) ** 2, mask) / n.clamp(min=1)
    if unbiased:
        var = var * n / (n - 1).clamp(min=1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """Normalise ``x`` to zero mean, unit variance over the masked entries; padding becomes 0.

    Args:
        x: values, e.g. advantages ``(B, T)``.
        mask: 1 on valid entries.
        shift_mean: subtract the mean (``False`` only rescales, keeping the sign of every entry).
        eps: added to the variance so a constant batch does not divide by zero.
    """
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


# ---- rewards, advantages ------------------------------------------------------------------------


def agent_tokens_first(mask: torch.Tensor) -> torch.Tensor:
    """Column order ``(B, T)`` that moves each row's masked-in tokens to the front, keeping their order.

    Where the env writes tokens between the agent's (tool results), the agent's tokens are not a prefix
    of the response. ``x.gather(1, order)`` lays them out as one, so the per-token maths (rewards at the
    last token, GAE from each agent token to the next) runs unchanged; :func:`spread_agent_tokens` undoes it.
    """
    return torch.sort((mask <= 0).to(torch.int8), dim=1, stable=True).indices


def spread_agent_tokens(x: torch.Tensor, order: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Inverse of ``x.gather(1, order)`` for the ``mask``-ed (front) entries; 0 everywhere else."""
    return torch.zeros_like(x).scatter(1, order, x * mask)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last valid token of each row of a prefix ``mask (B, T)`` (0 for empty rows)."""
    return (mask.sum(-1).long() - 1).clamp(min=0)  # (B,)


def token_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: the KL penalty on every token plus the episode score on the last one.

    Args:
        scores: the env's reward for each episode ``(B,)``, placed on its last token; or already
            per-token score rewards ``(B, T)`` (e.g. dense shaping), used as they are.
        logprobs: log-probs of the written tokens under the rollout policy ``(B, T)``.
        ref_logprobs: the same under the reference model ``(B, T)``.
        mask: 1 on written tokens ``(B, T)``.
        kl_coef: the penalty weight beta.

    Returns:
        ``(rewards, kl)``, both ``(B, T)`` and zero on padding; ``kl = logp - ref_logp`` is the
        per-token sample estimate whose sum over a sequence is an unbiased estimate of
        KL(policy || reference) for that prompt.
    """
    kl = (logprobs - ref_logprobs) * mask  # (B, T)
    rewards = -kl_coef * kl
    if scores.dim() == 2:
        rewards = rewards + scores.to(rewards.dtype)
    else:
        last = last_token_index(mask)
        rewards[torch.arange(len(scores)), last] += scores.to(rewards.dtype)
    return rewards * mask, kl


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` and ``A_t = delta_t + gamma * lam * A_{t+1}``, with
    ``V`` and ``A`` taken as 0 after the last written token (the episode is over there).

    Args:
        rewards: ``(B, T)`` per-token rewards (see :func:`token_rewards`).
        values: ``(B, T)`` value estimates of the state before each token.
        mask: ``(B, T)`` prefix mask of written tokens.
        gamma: discount.
        lam: GAE lambda (1 gives Monte-Carlo returns minus values, 0 gives one-step TD).

    Returns:
        ``(advantages, returns)`` both ``(B, T)``, zero on padding; ``returns = advantages + values``
        are the value targets.
    """
    B, T = rewards.shape
    mask = mask.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)
    next_adv = torch.zeros_like(next_value)
    for t in reversed(range(T)):
        # Past the end of a row the mask is 0, which zeroes both the bootstrap and the carry.
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_adv) * mask[:, t]
        next_value = values[:, t] * mask[:, t]
        next_adv = advantages[:, t]
    returns = (advantages + values) * mask
    return advantages, returns


def group_center(advantages: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """Subtract each group's mean advantage; groups are consecutive blocks of ``group_size`` rows.

    When the rows of a block are samples for the same prompt, a value function that is off for
    that prompt shifts all their advantages alike; centering per block removes that shift and
    keeps only how the samples compare with each other (the baseline of RLOO / GRPO, applied on
    top of GAE).
    """
    B, T = advantages.shape
    if group_size <= 1:
        return advantages
    if B % group_size:
        raise ValueError(f"batch of {B} rows is not a whole number of groups of {group_size}.")
    adv = advantages.view(B // group_size, group_size * T)
    m = mask.to(advantages.dtype).view(B // group_size, group_size * T)
    mean = (adv * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1)  # (G, 1)
    return ((adv - mean) * m).view(B, T)


def group_totals(rewards: torch.Tensor, mask: torch.Tensor, group_size: int, method: str) -> torch.Tensor:
    """Each completion's total reward, in consecutive groups of ``group_size`` completions of one prompt.

    Args:
        rewards: ``(B, T)`` per-token rewards.
        mask: ``(B, T)`` prefix mask of written tokens.
        group_size: completions per prompt (``>= 2``); ``B`` must be a multiple of it.
        method: named in the error messages.

    Returns:
        ``(G, k)`` totals: ``G = B / k`` groups of ``k = group_size``.
    """
    B, _ = rewards.shape
    if group_size < 2:
        raise ValueError(f"{method} needs at least 2 completions per prompt; got group_size={group_size}.")
    if B % group_size:
        raise ValueError(f"batch of {B} rows is not a whole number of groups of {group_size}.")
    return (rewards * mask.to(rewards.dtype)).sum(1).view(B // group_size, group_size)


def rloo_advantages(rewards: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """REINFORCE leave-one-out advantages (RLOO) for consecutive groups of completions of one prompt.

    Each completion's total reward ``R_i`` (its score plus its per-token KL penalties) minus the
    mean total reward of the *other* ``group_size - 1`` completions of the same prompt, put on every
    one of its tokens. No value function is involved, so a group whose completions all score the
    same gets exactly zero advantage: near a task's ceiling, where most groups tie, this keeps the
    critic's errors out of the policy gradient.

    Args:
        rewards: ``(B, T)`` per-token rewards (see :func:`token_rewards`).
        mask: ``(B, T)`` prefix mask of written tokens.
        group_size: completions per prompt (``>= 2``); ``B`` must be a multiple of it.

    Returns:
        ``(B, T)`` advantages, zero on padding.
    """
    total = group_totals(rewards, mask, group_size, "RLOO")  # (G, k)
    others = (total.sum(1, keepdim=True) - total) / (group_size - 1)
    return (total - others).view(-1, 1) * mask.to(rewards.dtype)


def group_relative_advantages(
    rewards: torch.Tensor, mask: torch.Tensor, group_size: int, eps: float = 1e-4
) -> torch.Tensor:
    """Group-relative advantages (GRPO, Shao et al. 2024) for consecutive groups of one prompt's completions.

    Each completion's total reward minus its group's mean, divided by the group's standard deviation
    (sample std) plus ``eps``, on every one of its tokens. Like :func:`rloo_advantages` there is no
    critic and a tied group gets zero; unlike it, every group's signal has the same scale, so
    prompts whose completions differ little weigh as much as those that differ a lot.

    Args:
        rewards: ``(B, T)`` per-token rewards (see :func:`token_rewards`).
        mask: ``(B, T)`` prefix mask of written tokens.
        group_size: completions per prompt (``>= 2``); ``B`` must be a multiple of it.
        eps: added to each group's std.

    Returns:
        ``(B, T)`` advantages, zero on padding.
    """
    total = group_totals(rewards, mask, group_size, "GRPO")  # (G, k)
    centred = total - total.mean(1, keepdim=True)
    return (centred / (total.std(1, keepdim=True) + eps)).view(-1, 1) * mask.to(rewards.dtype)


# ---- losses -------------------------------------------------------------------------------------


@dataclass
class PolicyLossOutput:
    """The clipped surrogate loss and its diagnostics (all scalars)."""

    loss: torch.Tensor
    clipfrac: torch.Tensor
    approx_kl: torch.Tensor
    ratio_mean: torch.Tensor


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float = 0.2,
) -> PolicyLossOutput:
    """PPO's clipped surrogate objective, negated to be minimised, averaged over valid tokens.

    ``loss = mean(max(-A * r, -A * clip(r, 1 - eps, 1 + eps)))`` with ``r = exp(logp - old_logp)``.
    ``approx_kl`` is the low-variance estimator ``mean((r - 1) - log r)`` of KL(old || new);
    ``clipfrac`` is the fraction of tokens where the clipped branch is the active one.
    """
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)  # (B, T)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > unclipped).float(), mask)
        approx_kl = masked_mean((ratio - 1.0) - log_ratio, mask)
        ratio_mean = masked_mean(ratio, mask)
    return PolicyLossOutput(loss, clipfrac, approx_kl, ratio_mean)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range_value: float | None = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss ``0.5 * mean(max((V - G)^2, (V_clip - G)^2))`` over valid tokens.

    ``V_clip = old_V + clip(V - old_V, -eps_v, eps_v)`` keeps the value function near the one that
    produced the advantages. ``clip_range_value=None`` gives the plain squared error.

    Returns:
        ``(loss, clipfrac)``: the scalar loss and the fraction of tokens where clipping was active.
    """
    unclipped = (values - returns) ** 2
    if clip_range_value is None:
        return 0.5 * masked_mean(unclipped, mask), torch.zeros((), device=values.device)
    values_clipped = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
    clipped = (values_clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > unclipped).float(), mask)
    return loss, clipfrac


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position: ``(..., V) -> (...)``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Log-probability of ``tokens (...)`` under ``logits (..., V)``; computed in float32."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def kl_from_logits(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """Exact KL(policy || reference) of the next-token distributions: ``(..., V) -> (...)``.

    Clamped at 0: when the two distributions (nearly) agree, e.g. a LoRA policy a step away from its
    adapters-off reference, float rounding in the sum would otherwise give tiny negative values (-1e-8).
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    ref_logp = torch.log_softmax(ref_logits.float(), dim=-1)
    return (logp.exp() * (logp - ref_logp)).sum(-1).clamp_min(0.0)


# ---- KL controllers -----------------------------------------------------------------------------


class FixedKLController:
    """A constant KL coefficient."""

    def __init__(self, kl_coef: float) -> None:
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        """No-op: the coefficient never changes."""

    def state_dict(self) -> dict[str, float]:
        """The controller's state, for checkpoints."""
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.value = float(state["value"])


class AdaptiveKLController(FixedKLController):
    """Move ``kl_coef`` so the measured KL tracks ``target`` (Ziegler et al. 2019).

    After each iteration: ``error = clip(kl / target - 1, -0.2, 0.2)`` and
    ``kl_coef *= 1 + error * n_steps / horizon``. KL above target raises the penalty, below lowers
    it; the clip bounds the change per update, ``horizon`` (in episodes) sets its speed.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: float) -> None:
        if target <= 0 or horizon <= 0:
            raise ValueError(f"target and horizon must be > 0; got target={target}, horizon={horizon}.")
        super().__init__(init_kl_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Adjust the coefficient after an iteration that measured ``current_kl`` over ``n_steps`` episodes."""
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon


def make_kl_controller(kl_coef: float, target_kl: float | None, horizon: float = 10_000) -> FixedKLController:
    """An :class:`AdaptiveKLController` when ``target_kl`` is given, else a :class:`FixedKLController`."""
    if target_kl is None or target_kl <= 0:
        return FixedKLController(kl_coef)
    return AdaptiveKLController(kl_coef, target_kl, horizon)
