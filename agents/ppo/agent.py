"""A policy as a batched agent (:class:`~lmgym.heldout.BatchedAgent`) of a lockstep vector env.

It decodes with its KV cache, one new-token forward per step, exactly as a rollout does
(:func:`~lmgym.agents.ppo.rollout.collect_rollout`), so the held-out protocol of :mod:`lmgym.heldout`
scores a policy during training and a saved folder (``lmgym eval ENV --agent runs/<name>/policy``)
on the same episodes as the baselines::

    lmgym eval Translate-v0 --split test --episodes 500 --agent runs/a/reference,runs/a/policy
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from lmgym.agents.ppo.math import agent_tokens_first
from lmgym.agents.ppo.policy import PolicyWithValue, build_policy
from lmgym.agents.ppo.rollout import (
    SamplingConfig,
    feed_new_tokens,
    response_block,
    sample_tokens,
    used_prompt_columns,
)
from lmgym.errors import ConfigError


def is_policy_folder(name: str) -> bool:
    """Whether ``name`` is a folder holding an HF model (what :meth:`PolicyAgent.from_folder` loads)."""
    return os.path.isdir(name) and os.path.isfile(os.path.join(name, "config.json"))


class PolicyAgent:
    """Decode every slot with ``policy``, one token per :meth:`act`.

    Args:
        policy: the (unwrapped) policy, in eval mode.
        pad_token_id: the token fed to the model for slots whose episode has ended.
        sampling: ``temperature=0`` decodes greedily.
        generator: torch RNG for sampling, on the policy's device.
        record: keep each round's prompt and response tensors in :attr:`rounds` (for a teacher-forced
            pass afterwards, e.g. the KL to a reference).

    Attributes:
        rounds: with ``record``, one ``(prompt_ids, prompt_mask, response_ids, response_mask, agent_mask)`` per
            reset (``agent_mask``: the agent's tokens; the env's, e.g. tool results, are context only).
    """

    batched = True

    def __init__(
        self,
        policy: PolicyWithValue,
        pad_token_id: int,
        sampling: SamplingConfig | None = None,
        generator: torch.Generator | None = None,
        record: bool = False,
    ) -> None:
        self.policy = policy
        self.pad = int(pad_token_id)
        self.sampling = sampling or SamplingConfig(temperature=0.0)
        self.generator = generator
        self.record = record
        self.rounds: list[tuple[torch.Tensor, ...]] = []
        self._device = next(policy.parameters()).device
        self._state: Any = None
        self._logits: torch.Tensor | None = None
        self._last: torch.Tensor | None = None
        self._tokens: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []
        self._agent: list[torch.Tensor] = []
        self._length: np.ndarray | None = None  # response tokens per slot before the last act (envs that write)

    @classmethod
    def from_folder(cls, path: str, envs: Any, seed: int | None = None, temperature: float = 0.0,
                    beta: float | None = None) -> PolicyAgent:
        """Load a folder saved by ``PolicyWithValue.save_pretrained`` (e.g. ``runs/<name>/policy``), or any HF
        causal / seq2seq LM folder whose vocabulary covers the env's tokenizer, for the vector env ``envs``.
        ``beta``: the advantage steering of an ILQL policy (``None``: as saved).

        Raises:
            ConfigError: a folder that is not a model, a model too small for the env's vocabulary, or a
                ``beta`` for a policy that is not ILQL's.
        """
        if not is_policy_folder(path):
            raise ConfigError(f"{path!r} is not a model folder (no config.json); pass e.g. runs/<name>/policy.")
        base = envs.env
        policy = build_policy(path, base.tokenizer, base.max_prompt_tokens + base.max_new_tokens).eval()
        if beta is not None:
            if not hasattr(policy, "beta"):
                raise ConfigError(f"beta steers ILQL policies; {path!r} is not one (train it with --algo ilql).")
            from lmgym.agents.offline.ilql import check_beta

            policy.beta = check_beta(beta)
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        return cls(policy, base.pad_token_id, SamplingConfig(temperature=temperature), generator)

    @torch.no_grad()
    def reset(self, obs: Mapping[str, np.ndarray], infos: Mapping[str, Any]) -> None:
        """Read the prompts (without the columns that are padding in every row) into a fresh KV cache."""
        self._finish_round()
        used = used_prompt_columns(obs["prompt_mask"])
        ids = torch.as_tensor(obs["prompt_ids"][:, used], device=self._device)  # (N, P')
        mask = torch.as_tensor(obs["prompt_mask"][:, used], device=self._device)
        self._state, self._logits, _ = self.policy.start(ids, mask)  # (N, V)
        self._prompt = (ids, mask)
        self._last = None

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray], done: np.ndarray) -> np.ndarray:
        """Feed the previous tokens (if any) and pick the next ones; ended slots get padding.

        Where the env writes tokens too (``agent_mask`` in ``obs``: tool results), what it wrote after the
        previous token is fed with it, and recorded as context, not as the agent's.
        """
        if self._state is None:
            raise ConfigError("PolicyAgent.act() before reset(): call agent.reset(obs, infos) first.")
        writes = "agent_mask" in obs
        if self._last is not None:
            if writes:
                self._logits, _ = feed_new_tokens(self.policy, self._state, dict(obs), self._length, self._last,
                                                  self.pad)
                if self.record:
                    self._record_env_tokens(obs)
            else:
                self._logits, _ = self.policy.step(self._state, self._last)
        active = torch.as_tensor(~np.asarray(done, bool), device=self._device)  # (N,)
        token = sample_tokens(self._logits, self.sampling, self.generator)  # (N,)
        token = torch.where(active, token, torch.full_like(token, self.pad))
        if self.record:
            self._tokens.append(token[:, None])
            self._masks.append(active.long()[:, None])
            self._agent.append(active.long()[:, None])
        if writes:
            self._length = np.asarray(obs["step"])[:, 0].copy()
        self._last = token
        return token.cpu().numpy()

    def _record_env_tokens(self, obs: Mapping[str, np.ndarray]) -> None:
        """Record the tokens the env wrote after each slot's previous token (none for most slots)."""
        count = np.maximum(np.asarray(obs["step"])[:, 0] - self._length - 1, 0)
        if not count.any():
            return
        ids, real = response_block(np.asarray(obs["response_ids"]), self._length + 1, count, self.pad)
        self._tokens.append(torch.as_tensor(ids, device=self._device))
        self._masks.append(torch.as_tensor(real, device=self._device).long())
        self._agent.append(torch.zeros_like(self._masks[-1]))

    def finish(self) -> None:
        """Close the current round (:attr:`rounds` then holds it)."""
        self._finish_round()

    def _finish_round(self) -> None:
        if self.record and self._tokens:
            ids, present, agent = (torch.cat(t, 1) for t in (self._tokens, self._masks, self._agent))
            order = agent_tokens_first(present)  # each slot's tokens as one prefix (a no-op without env tokens)
            ids, present, agent = (t.gather(1, order) for t in (ids, present, agent))
            self.rounds.append((*self._prompt, ids, present, agent))
        self._tokens, self._masks, self._agent = [], [], []
