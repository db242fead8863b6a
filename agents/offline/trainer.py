"""ILQL training on tokenized logs: :class:`ILQLTrainer`, one iteration (a fixed number of steps) at a time.

Each iteration draws its minibatches from a generator seeded by ``(seed, iteration, process)``, so a run
resumed from a checkpoint continues with exactly the batches it would have seen. Rewards are normalised
once, over the whole dataset (``(r - mean) / std``), and the statistics travel with the saved policy.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lmgym.agents.offline.data import LogData
from lmgym.agents.offline.ilql import ILQLPolicy
from lmgym.agents.offline.ilql_loss import ILQLSettings, ilql_loss
from lmgym.agents.ppo.checkpoint import load_checkpoint, save_checkpoint
from lmgym.agents.ppo.trainer import iteration_seed


def settings_from_config(config: Any) -> ILQLSettings:
    """The loss settings of a :class:`~lmgym.agents.train.TrainConfig`."""
    return ILQLSettings(gamma=config.gamma, tau=config.ilql_tau, cql_scale=config.ilql_cql_scale,
                        awac_scale=config.ilql_awac_scale, awac_temperature=config.ilql_awac_temperature)


class ILQLTrainer:
    """Optimises an :class:`ILQLPolicy` on logged data.

    Args:
        config: a :class:`~lmgym.agents.train.TrainConfig` (the ``ilql_*`` fields, ``sft_batch_size``,
            ``max_grad_norm``, ``gamma``, ``seed``, ``keep_checkpoints``).
        policy: the policy, on the accelerator's device.
        data: the tokenized logs.
        accelerator: an ``accelerate.Accelerator``.
        resume_from: a checkpoint folder to restore (weights, target heads, optimizer, RNGs).
    """

    def __init__(self, config: Any, policy: ILQLPolicy, data: LogData, accelerator: Any,
                 resume_from: str | None = None) -> None:
        self.config = config
        self.data = data
        self.accelerator = accelerator
        self.settings = settings_from_config(config)
        mean, std = float(data.rewards.mean()), float(data.rewards.std()) if len(data) > 1 else 1.0
        std = std if math.isfinite(std) and std > 1e-8 else 1.0
        policy.reward_stats = {"mean": mean, "std": std}
        self.rewards = (data.rewards - mean) / std
        params = [p for p in policy.parameters() if p.requires_grad]  # the target heads are not trained
        optimizer = torch.optim.AdamW(params, lr=config.ilql_learning_rate, weight_decay=0.0)
        self.iteration = 0
        if resume_from is not None:
            state = load_checkpoint(resume_from, policy=policy, optimizer=optimizer)
            self.iteration = int(state["iteration"])
        self.model, self.optimizer = accelerator.prepare(policy, optimizer)

    @property
    def policy(self) -> ILQLPolicy:
        """The policy without its DDP wrapper."""
        return self.accelerator.unwrap_model(self.model)

    def iterate(self) -> dict[str, float]:
        """``ilql_steps_per_iteration`` optimizer steps; returns the mean of each loss part."""
        cfg, acc = self.config, self.accelerator
        steps = cfg.ilql_steps_per_iteration
        generator = torch.Generator().manual_seed(iteration_seed(cfg.seed, self.iteration, acc.process_index))
        self.model.train()
        totals: dict[str, float] = {}
        for step in range(steps):
            done = self.iteration * steps + step
            lr = cfg.ilql_learning_rate * min(1.0, (done + 1) / steps)  # warm-up over the first iteration
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            rows = torch.randint(len(self.data), (min(cfg.sft_batch_size, len(self.data)),), generator=generator)
            batch = self.data.data.batch(rows, acc.device)
            with acc.autocast():
                loss, parts = ilql_loss(self.model, batch, self.rewards[rows].to(acc.device), self.settings)
            acc.backward(loss)
            if cfg.max_grad_norm:
                acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.policy.heads.sync_targets(cfg.ilql_target_alpha)
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + float(value)
        self.model.eval()
        self.iteration += 1
        keys = sorted(totals)
        means = torch.tensor([totals[k] / steps for k in keys], device=acc.device)
        means = acc.reduce(means, reduction="mean").cpu()
        return {**{k: float(v) for k, v in zip(keys, means)}, "ilql/learning_rate": lr}

    def save(self, run_dir: str, config: dict[str, Any]) -> str | None:
        """Checkpoint after the current iteration (main process writes; every process waits)."""
        path = None
        if self.accelerator.is_main_process:
            path = save_checkpoint(run_dir, iteration=self.iteration, policy=self.policy, optimizer=self.optimizer,
                                   config=config, keep=self.config.keep_checkpoints)
        self.accelerator.wait_for_everyone()
        return path


__all__ = ["ILQLTrainer", "settings_from_config"]
