"""The reference model that PPO's KL penalty measures drift from.

Two ways to have one, chosen by how the policy is trained:

- full fine-tuning: a **frozen copy** of the policy's LM at the start of PPO (the SFT model);
- LoRA (peft): the **same weights with the adapters disabled**, so no second copy is kept.

Either way the reference answers one question, in one teacher-forced pass per batch: the
log-probabilities (or logits) of the response tokens a rollout wrote.
"""

from __future__ import annotations

import copy
import os
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from lmgym.agents.ppo.math import logprobs_from_logits
from lmgym.agents.ppo.policy import PolicyWithValue, has_adapter, load_lm
from lmgym.agents.ppo.shared_prompts import shared_prompt_forward


class ReferenceModel:
    """Frozen reference logits for a policy.

    Args:
        policy: the policy at the start of PPO. With LoRA adapters the reference *is* this
            policy's LM with adapters disabled; otherwise a frozen deep copy of its LM is made.
        model: an explicit frozen LM to use instead (e.g. loaded from a run folder on resume).
    """

    def __init__(self, policy: PolicyWithValue, model: nn.Module | None = None) -> None:
        self.policy = policy
        self.shares_weights = model is None and has_adapter(policy.model)
        if self.shares_weights:
            self.model = None
        else:
            self.model = model if model is not None else copy.deepcopy(policy.model)
            self.model.eval()
            self.model.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, policy: PolicyWithValue, path: str | os.PathLike) -> ReferenceModel:
        """A reference loaded from a saved policy folder (adapter-sharing policies ignore ``path``)."""
        if has_adapter(policy.model):
            return cls(policy)
        lm = load_lm(os.fspath(path))
        device = next(policy.parameters()).device
        return cls(policy, model=lm.to(device))

    def to(self, device: torch.device | str) -> ReferenceModel:
        """Move the frozen copy (if any) to ``device``."""
        if self.model is not None:
            self.model.to(device)
        return self

    def _lm(self) -> tuple[nn.Module, Any]:
        if self.shares_weights:
            return self.policy.model, self.policy.model.disable_adapter()
        return self.model, nullcontext()

    @torch.no_grad()
    def logits(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Reference next-token logits at every response position ``(B, R, V)``."""
        model, context = self._lm()
        with context:
            # Each distinct prompt once: with k samples per prompt most of the tokens of a batch are shared prompts.
            logits, _ = shared_prompt_forward(model, prompt_ids, prompt_mask, response_ids, response_mask,
                                              want_hidden=False)
        return self.policy.cut_logits(logits)

    @torch.no_grad()
    def logprobs(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Reference log-probs of the written response tokens ``(B, R)`` (logits scaled by ``1/temperature``)."""
        logits = self.logits(prompt_ids, prompt_mask, response_ids, response_mask)
        return logprobs_from_logits(logits / temperature, response_ids)
