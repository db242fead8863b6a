"""The ILQL policy: an LM with twin Q heads, their target copies and a V head on the shared trunk.

Implicit Language Q-Learning (Snell et al. 2022) learns token-level values from logged rewards, with
no sampling during training. At decoding it steers the language model (trained on the same logs by
behaviour cloning, or by advantage-weighted regression with ``--ilql-awac-temperature``) with the
learned advantage::

    logits'(a | s) = log pi(a | s) + beta * (min_i Qtarget_i(s, a) - V(s))

so ``beta = 0`` is the trained LM alone (the behaviour-cloning policy, or the AWR policy) and a larger
``beta`` trusts the values more.
:class:`ILQLPolicy` is a :class:`~lmgym.agents.ppo.policy.PolicyWithValue` (its value head is V), so
every decoder of a policy (rollouts, evaluation, ``lmgym eval --agent runs/x/policy``, the env agent)
decodes the steered distribution. Losses are in :mod:`lmgym.agents.offline.ilql_loss`.

A saved folder is a plain transformers model plus ``value_head.safetensors``, ``ilql_heads.safetensors``
and ``lmgym_policy.json`` (``kind: "ilql"``, ``beta``, the reward normalisation), so
``PolicyWithValue.from_pretrained`` (and :func:`~lmgym.agents.ppo.policy.build_policy`) loads it back as
an :class:`ILQLPolicy`.
"""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Any

import torch
from torch import nn

from lmgym.agents.ppo.policy import POLICY_META_FILE, PolicyWithValue, load_policy_parts
from lmgym.errors import CheckpointError, ConfigError

HEADS_FILE = "ilql_heads.safetensors"


def _mlp(hidden: int, out: int) -> nn.Sequential:
    """A two-layer head ``H -> 2H -> out`` (the shape the ILQL paper and trlX use for Q and V)."""
    return nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, out))


class ILQLHeads(nn.Module):
    """Twin Q heads ``H -> V_model`` and their target copies (Polyak-averaged, never trained directly)."""

    def __init__(self, hidden: int, vocab: int) -> None:
        super().__init__()
        self.q = nn.ModuleList([_mlp(hidden, vocab) for _ in range(2)])
        self.target_q = copy.deepcopy(self.q)
        self.target_q.requires_grad_(False)

    def q_values(self, hidden: torch.Tensor) -> list[torch.Tensor]:
        """Both Q heads' values of every token ``(..., H) -> [(..., V_model)] * 2``."""
        return [head(hidden) for head in self.q]

    def target_values(self, hidden: torch.Tensor) -> torch.Tensor:
        """The pessimistic target ``min_i Qtarget_i`` of every token ``(..., V_model)``."""
        first, second = (head(hidden) for head in self.target_q)
        return torch.minimum(first, second)

    @torch.no_grad()
    def sync_targets(self, alpha: float) -> None:
        """Polyak step: ``target <- (1 - alpha) * target + alpha * q``."""
        for target, online in zip(self.target_q.parameters(), self.q.parameters()):
            target.lerp_(online, alpha)


class ILQLPolicy(PolicyWithValue):
    """A policy whose decoding is steered by ILQL's advantage (see the module docstring).

    Args:
        model: the transformers LM (its LM head is the unsteered policy: BC or AWR, see the module docstring).
        value_head: V (``nn.Linear(H, 1)``); new by default.
        num_actions: the env's vocabulary size (logits and Q values are cut to it).
        beta: steering strength at decoding (``0``: the LM alone). Change it any time with :attr:`beta`.
        heads: existing Q heads; new by default.
    """

    def __init__(self, model: nn.Module, value_head: nn.Linear | None = None, num_actions: int | None = None,
                 beta: float = 1.0, heads: ILQLHeads | None = None) -> None:
        super().__init__(model, value_head, num_actions)
        vocab = self.model.get_output_embeddings().out_features if heads is None else None
        self.heads = heads if heads is not None else ILQLHeads(self.lm_config.hidden_size, int(vocab))
        self.beta = check_beta(beta)
        self.reward_stats: dict[str, float] = {"mean": 0.0, "std": 1.0}
        """The reward normalisation the values were trained with (``(r - mean) / std``)."""

    @classmethod
    def from_policy(cls, policy: PolicyWithValue, beta: float = 1.0, seed: int = 0) -> ILQLPolicy:
        """Wrap a built policy's LM and value head with new Q heads (seeded by ``seed``)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            out = cls(policy.model, policy.value_head, policy.num_actions, beta)
        return out.to(next(policy.parameters()).device)

    def advantages(self, hidden: torch.Tensor) -> torch.Tensor:
        """``min_i Qtarget_i(s, .) - V(s)`` of every token ``(..., H) -> (..., V)``."""
        q = self.cut_logits(self.heads.target_values(hidden.to(self.value_head.weight.dtype)))
        return q - self.values_from_hidden(hidden).unsqueeze(-1)

    def decode_outputs(self, logits: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Steered logits ``log pi + beta * (Q - V)`` and V."""
        logp = torch.log_softmax(self.cut_logits(logits).float(), -1)
        if self.beta:
            logp = logp + self.beta * self.advantages(hidden).float()
        return logp, self.values_from_hidden(hidden)

    # ---- save / load ------------------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike, tokenizer: Any = None) -> None:
        """Save like :meth:`PolicyWithValue.save_pretrained`, plus the Q heads and the ILQL settings."""
        from safetensors.torch import save_file

        super().save_pretrained(path, tokenizer=tokenizer)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()},
                  os.path.join(path, HEADS_FILE))
        meta_path = os.path.join(path, POLICY_META_FILE)
        with open(meta_path) as f:
            meta = json.load(f)
        meta.update(kind="ilql", heads=HEADS_FILE, beta=self.beta, reward_stats=self.reward_stats)
        with open(meta_path, "w") as f:
            json.dump(meta, f)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> ILQLPolicy:
        """Load a folder written by :meth:`save_pretrained`."""
        from safetensors.torch import load_file

        path = os.fspath(path)
        model, value_head = load_policy_parts(path, **kwargs)
        heads_file = os.path.join(path, HEADS_FILE)
        if not os.path.isfile(heads_file):
            raise CheckpointError(f"{path!r} is not an ILQL policy folder: {HEADS_FILE} is missing.")
        with open(os.path.join(path, POLICY_META_FILE)) as f:
            meta = json.load(f)
        policy = cls(model, value_head, beta=float(meta.get("beta", 1.0)))
        try:
            policy.heads.load_state_dict(load_file(heads_file))
        except Exception as exc:
            raise CheckpointError(f"Q heads {heads_file!r} are corrupt or do not fit the model: {exc}") from exc
        policy.reward_stats = dict(meta.get("reward_stats") or policy.reward_stats)
        return policy


def check_beta(beta: Any) -> float:
    """``beta`` as a finite float >= 0, else :class:`~lmgym.errors.ConfigError`."""
    try:
        value = float(beta)
    except (TypeError, ValueError):
        raise ConfigError(f"ILQL beta must be a number >= 0; got {beta!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"ILQL beta must be a finite number >= 0; got {beta!r}.")
    return value


__all__ = ["HEADS_FILE", "ILQLHeads", "ILQLPolicy", "check_beta"]
