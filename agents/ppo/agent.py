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

from lmgym.agents.ppo.policy import PolicyWithValue, build_policy
from lmgym.agents.ppo.rollout import SamplingConfig, sample_tokens, used_prompt_columns
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
        rounds: with ``record``, one ``(prompt_ids, prompt_mask, response_ids, response_mask)`` per reset.
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
        """Feed the previous tokens (if any) and pick the next ones; ended slots get padding."""
        if self._state is None:
            raise ConfigError("PolicyAgent.act() before reset(): call agent.reset(obs, infos) first.")
        if self._last is not None:
            self._logits, _ = self.policy.step(self._state, self._last)
        active = torch.as_tensor(~np.asarray(done, bool), device=self._device)  # (N,)
        token = sample_tokens(self._logits, self.sampling, self.generator)  # (N,)
        token = torch.where(active, token, torch.full_like(token, self.pad))
        if self.record:
            self._tokens.append(token)
            self._masks.append(active.long())
        self._last = token
        return token.cpu().numpy()

    def finish(self) -> None:
        """Close the current round (:attr:`rounds` then holds it)."""
        self._finish_round()

    def _finish_round(self) -> None:
        if self.record and self._tokens:
            self.rounds.append((*self._prompt, torch.stack(self._tokens, 1), torch.stack(self._masks, 1)))
        self._tokens, self._masks = [], []
