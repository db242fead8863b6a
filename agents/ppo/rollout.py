"""Rollouts: sample responses token by token through a lockstep vector env, with a KV cache.

The env owns the episode (it appends each token, ends it on EOS or at the token limit and scores
it); the policy keeps a KV cache per slot, so each env step costs **one forward over one new
token** per slot. Every sampled token is stored with its log-probability and the value estimate
of the state it was sampled in, which is all PPO needs from the rollout policy (reference
log-probs come later from one teacher-forced pass, see :mod:`lmgym.agents.ppo.reference`).

The vector env must run in lockstep (``autoreset_mode="disabled"``): all slots start at
``reset()``, a finished slot ignores actions, and the rollout ends when every slot has ended.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from lmgym.agents.ppo.policy import PolicyWithValue
from lmgym.agents.ppo.shared_prompts import shared_prompt_start
from lmgym.errors import ConfigError


@dataclass
class SamplingConfig:
    """How tokens are drawn from the policy's next-token distribution.

    Attributes:
        temperature: logits are divided by it; the PPO policy *is* this tempered distribution,
            so log-probs use it too. ``0`` means greedy decoding.
        top_k: sample among the ``k`` most likely tokens only (0 = all).
        top_p: sample from the smallest set of tokens whose probability exceeds ``p`` (1 = all).
            ``top_k``/``top_p`` only change which tokens are drawn; log-probs stay those of the
            full tempered distribution, so keep them off for on-policy PPO unless you need them.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0


def sample_tokens(
    logits: torch.Tensor, sampling: SamplingConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw one token per row from ``logits (B, V)``; returns ``(B,)`` token ids."""
    if sampling.temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / sampling.temperature
    if sampling.top_k > 0:
        kth = torch.topk(logits, min(sampling.top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, -1)
        # Drop a token when the tokens before it already hold top_p of the mass (the first is always kept).
        drop_sorted = (probs.cumsum(-1) - probs) > sampling.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@dataclass
class Rollout:
    """One batch of finished episodes, laid out per response token.

    Tensors (on the policy's device): ``prompt_ids``/``prompt_mask`` ``(N, P')``, the env's left-padded
    prompts without the columns that are padding in every row (``P' <= P``);
    ``response_ids``/``response_mask``/``logprobs``/``values`` ``(N, T)`` where ``T`` is the
    longest response in the batch; ``scores``/``terminated`` ``(N,)``. Where the env writes tokens too
    (tool results), ``response_mask`` covers every response token, ``agent_mask`` the agent's (log-probs
    and values are 0 elsewhere); ``agent_mask`` is ``None`` otherwise.
    Python lists (one entry per episode): ``prompts``, ``completions``, ``references``,
    ``example_index``.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor
    terminated: torch.Tensor
    prompts: list[str]
    completions: list[str]
    references: list[list[str]]
    example_index: list[int]
    agent_mask: torch.Tensor | None = None

    @property
    def loss_mask(self) -> torch.Tensor:
        """``(N, T)``: 1 at the tokens the agent wrote, what losses, KL and advantages cover (``agent_mask``
        where the env writes tokens too, e.g. tool results; else ``response_mask``)."""
        return self.response_mask if self.agent_mask is None else self.agent_mask

    @property
    def num_tokens(self) -> int:
        """Tokens the agent wrote in the batch (the env steps that counted)."""
        return int(self.loss_mask.sum().item())

    def select(self, rows: torch.Tensor | np.ndarray | list[int]) -> Rollout:
        """A new rollout with only ``rows`` (tensor fields indexed, lists picked)."""
        rows_list = [int(i) for i in (rows.tolist() if hasattr(rows, "tolist") else rows)]
        index = torch.as_tensor(rows_list, dtype=torch.long, device=self.prompt_ids.device)
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                out[f.name] = None
            else:
                out[f.name] = value[index] if isinstance(value, torch.Tensor) else [value[i] for i in rows_list]
        return Rollout(**out)


def used_prompt_columns(prompt_mask: np.ndarray | torch.Tensor) -> slice:
    """The columns of a left-padded ``prompt_mask (N, P)`` (numpy or torch) that hold a real token in some row."""
    used = prompt_mask.any(0)
    # ``nonzero()[0][0]`` is the first used column for both libraries (torch cannot argmax booleans).
    return slice(int(used.nonzero()[0][0]) if used.any() else 0, None)


def check_lockstep(envs: Any) -> None:
    """Raise :class:`ConfigError` unless ``envs`` is a vector env in lockstep (``autoreset_mode="disabled"``)."""
    mode = getattr(envs, "metadata", {}).get("autoreset_mode")
    if mode != AutoresetMode.DISABLED:
        raise ConfigError(
            f"Rollouts need a lockstep vector env; got autoreset_mode={mode!r}. Make it with "
            "gym.make_vec(env_id, num_envs=N, vectorization_mode='vector_entry_point', autoreset_mode='disabled')."
        )


@torch.no_grad()
def collect_rollout(
    policy: PolicyWithValue,
    envs: Any,
    sampling: SamplingConfig,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    obs: dict[str, np.ndarray] | None = None,
) -> Rollout:
    """Run every slot of a lockstep vector env to the end of its episode.

    Args:
        policy: the policy (unwrapped from DDP); run in inference mode with its KV cache.
        envs: a lockstep ``BatchedTokenEnv`` (see :func:`check_lockstep`).
        sampling: temperature / top-k / top-p (``temperature=0``: greedy).
        generator: torch RNG for sampling, on the policy's device (reproducible rollouts).
        seed, options: passed to ``envs.reset`` (slot ``i`` is seeded ``seed + i``).
        obs: observations of envs that were already reset (then ``reset`` is not called).

    Returns:
        A :class:`Rollout` of ``envs.num_envs`` finished episodes.
    """
    check_lockstep(envs)
    device = next(policy.parameters()).device
    if obs is None:
        obs, _ = envs.reset(seed=seed, options=options)
    N = envs.num_envs
    limit = obs["response_ids"].shape[1]
    pad = int(envs.env.pad_token_id)
    # Prompts are left-padded to the split's longest: drop the columns no slot uses (positions come from
    # the mask, so the model's output is unchanged) before the prefill and the later teacher-forced passes.
    used = used_prompt_columns(obs["prompt_mask"])
    prompt_ids = torch.as_tensor(obs["prompt_ids"][:, used], device=device)  # (N, P')
    prompt_mask = torch.as_tensor(obs["prompt_mask"][:, used], device=device)
    temperature = sampling.temperature if sampling.temperature > 0 else 1.0

    state, logits, values = shared_prompt_start(policy, prompt_ids, prompt_mask)  # (N, V), (N,); each prompt once
    writes = "agent_mask" in obs  # the env writes tokens too (tool results): responses come from its obs
    length = obs["step"][:, 0].copy()  # response tokens so far per slot; the next agent token goes there
    active = torch.ones(N, dtype=torch.bool, device=device)
    tokens, logps, vals, masks, places = [], [], [], [], []
    scores = np.zeros(N, np.float64)
    terminated = np.zeros(N, bool)
    prompts, completions, references = [""] * N, [""] * N, [[] for _ in range(N)]
    example_index = [-1] * N
    for _ in range(limit):
        token = sample_tokens(logits, sampling, generator)  # (N,)
        token = torch.where(active, token, torch.full_like(token, pad))
        logp = torch.log_softmax(logits.float() / temperature, -1).gather(-1, token[:, None]).squeeze(-1)
        tokens.append(token)
        logps.append(logp)
        vals.append(values.float())
        masks.append(active.long())
        if writes:
            places.append(length)  # where this step's agent tokens land (``length`` is replaced, never mutated)
        obs, rewards, term, trunc, infos = envs.step(token.cpu().numpy())
        ended = np.flatnonzero(term | trunc)
        for i in ended:
            scores[i], terminated[i] = rewards[i], bool(term[i])
            # Vector-env infos: one array per key, filled at the slots that ended this step.
            prompts[i], completions[i] = infos["prompt"][i], infos["completion"][i]
            references[i] = list(infos["references"][i])
            example_index[i] = int(infos["example_index"][i])
        if ended.size:
            active[torch.as_tensor(ended, device=device)] = False
        if not bool(active.any()):
            break
        if writes:
            logits, values = feed_new_tokens(policy, state, obs, length, token, pad)
            length = obs["step"][:, 0].copy()
        else:
            logits, values = policy.step(state, token)
    if bool(active.any()):
        raise RuntimeError("The vector env did not end every episode within its token limit.")
    common = dict(prompt_ids=prompt_ids, prompt_mask=prompt_mask,
                  scores=torch.as_tensor(scores, dtype=torch.float32, device=device),
                  terminated=torch.as_tensor(terminated, device=device), prompts=prompts, completions=completions,
                  references=references, example_index=example_index)
    if not writes:
        return Rollout(response_ids=torch.stack(tokens, 1), response_mask=torch.stack(masks, 1),  # (N, T)
                       logprobs=torch.stack(logps, 1), values=torch.stack(vals, 1), **common)
    # The env's final obs holds every response, env-written tokens included; the agent's log-probs and
    # values go to the positions where its tokens landed.
    T = int(obs["step"].max())
    agent_mask = torch.as_tensor(obs["agent_mask"][:, :T], device=device)
    taken = torch.stack(masks, 1).bool()  # (N, steps): the slot was running, so its token counted
    at = torch.where(taken, torch.as_tensor(np.stack(places, 1), device=device), T)  # column T: a spare

    def place(per_step: list[torch.Tensor]) -> torch.Tensor:
        return torch.zeros(N, T + 1, device=device).scatter(1, at, torch.stack(per_step, 1).float())[:, :T]

    return Rollout(response_ids=torch.as_tensor(obs["response_ids"][:, :T], device=device),
                   response_mask=torch.as_tensor(obs["response_mask"][:, :T], device=device),
                   logprobs=place(logps), values=place(vals), agent_mask=agent_mask, **common)


def feed_new_tokens(policy: PolicyWithValue, state: Any, obs: dict[str, np.ndarray], before: np.ndarray,
                    token: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Feed each slot's new response tokens since ``before`` (its agent token and any env reply) to the KV
    cache in one forward. Slots with none (ended earlier) take a masked-out pad, so their positions stop
    where their response did. Returns the next ``logits (N, V)`` and ``values (N,)``."""
    count = obs["step"][:, 0] - before  # (N,) new tokens per slot
    if (count == 1).all():
        return policy.step(state, token)
    ids, real = response_block(obs["response_ids"], before, count, pad)
    device = token.device
    return policy.feed(state, torch.as_tensor(ids, device=device), torch.as_tensor(real, device=device).long())


def response_block(response_ids: np.ndarray, start: np.ndarray, count: np.ndarray,
                   pad: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, real)``, both ``(N, k)`` with ``k = max(count, 1)``: row ``i`` holds ``response_ids[i, start[i] :
    start[i] + count[i]]`` left-aligned, padded with ``pad`` where ``real`` is False."""
    k = max(int(count.max()), 1)
    cols = np.minimum(start[:, None] + np.arange(k)[None, :], response_ids.shape[1] - 1)  # (N, k)
    real = np.arange(k)[None, :] < count[:, None]
    return np.where(real, np.take_along_axis(response_ids, cols, 1), pad), real
