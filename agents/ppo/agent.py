"""A trained policy as an agent of one env: ``lmgym eval ENV --agent runs/<name>/policy``.

The policy decodes with its KV cache (one new-token forward per ``act``), greedily by default, so
a folder written by ``lmgym train`` (or any HF LM folder that fits the env's tokenizer) can be
scored on any split with the same episodes as the baselines::

    lmgym eval Translate-v0 --split test --episodes 500 --agent runs/a/reference,runs/a/policy
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from lmgym.agents.ppo.policy import build_policy
from lmgym.agents.ppo.rollout import SamplingConfig, sample_tokens, used_prompt_columns
from lmgym.errors import ConfigError


def is_policy_folder(name: str) -> bool:
    """Whether ``name`` is a folder holding an HF model (what :class:`PolicyAgent` loads)."""
    return os.path.isdir(name) and os.path.isfile(os.path.join(name, "config.json"))


class PolicyAgent:
    """Decode with a saved policy, one token per :meth:`act`.

    Args:
        path: a folder saved by ``PolicyWithValue.save_pretrained`` (e.g. ``runs/<name>/policy``)
            or any HF causal / seq2seq LM folder whose vocabulary covers the env's tokenizer.
        env: the env the agent plays (its tokenizer sets the action space).
        seed: seeds sampling (unused when greedy).
        temperature: ``0`` decodes greedily (as ``lmgym train`` evaluates); ``> 0`` samples.

    Raises:
        ConfigError: a folder that is not a model, or a model too small for the env's vocabulary.
    """

    def __init__(self, path: str, env: Any, seed: int | None = None, temperature: float = 0.0) -> None:
        if not is_policy_folder(path):
            raise ConfigError(f"{path!r} is not a model folder (no config.json); pass e.g. runs/<name>/policy.")
        base = env.unwrapped
        self.policy = build_policy(path, base.tokenizer, base.max_prompt_tokens + base.max_new_tokens).eval()
        self.sampling = SamplingConfig(temperature=temperature)
        self.generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        self._state: Any = None
        self._logits: torch.Tensor | None = None
        self._last: torch.Tensor | None = None

    @torch.no_grad()
    def reset(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> None:
        """Read the prompt (its padding columns dropped) into a fresh KV cache."""
        used = used_prompt_columns(obs["prompt_mask"][None])
        ids = torch.as_tensor(obs["prompt_ids"][None, used])
        mask = torch.as_tensor(obs["prompt_mask"][None, used])
        self._state, self._logits, _ = self.policy.start(ids, mask)
        self._last = None

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> int:
        """Feed the previous token (if any) and pick the next one."""
        if self._state is None:
            raise ConfigError("PolicyAgent.act() before reset(): call agent.reset(obs, info) first.")
        if self._last is not None:
            self._logits, _ = self.policy.step(self._state, self._last)
        self._last = sample_tokens(self._logits, self.sampling, self.generator)  # (1,)
        return int(self._last.item())
