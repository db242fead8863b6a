"""Token-level PPO for language envs: one iteration = rollout, rewards, GAE, clipped updates.

Reading order of :meth:`PPOTrainer.iterate` (CleanRL style, one algorithm top to bottom):

1. **rollout**: ``num_envs`` episodes through the lockstep vector env, sampled with a KV cache;
   every token keeps its log-prob and value (:func:`~lmgym.agents.ppo.rollout.collect_rollout`);
2. **reference**: one teacher-forced pass of the reference model gives its log-probs;
3. **rewards**: score on the last token (or, with ``dense_reward``, spread over the tokens as score
   differences, :mod:`lmgym.agents.ppo.shaping`), ``-kl_coef * (logp - ref_logp)`` on every token;
4. **advantages**: GAE(gamma, lambda); with ``samples_per_prompt = k > 1`` each prompt is sampled
   ``k`` times and advantages are centred per prompt group; then whitened over the batch's tokens
   (``advantage="rloo"``: each completion's total reward minus its prompt's other completions' mean);
5. **update**: ``epochs`` passes over shuffled minibatches (of whole prompt groups), each one teacher-forced
   forward/backward per sequence, each distinct prompt read once (:mod:`~lmgym.agents.ppo.shared_prompts`):
   clipped policy loss + ``vf_coef`` * clipped value loss -
   ``ent_coef`` * entropy, gradient clipping; an epoch whose approx-KL exceeds
   ``target_approx_kl`` ends the update early;
6. **KL control**: the adaptive controller moves ``kl_coef`` towards ``target_kl``.

Data parallelism comes from ``accelerate``: each process rolls out its own episodes (its own env
seeds), gradients are averaged by DDP, metrics are averaged over processes, and the early-stop
decision is taken on the averaged approx-KL so every process runs the same number of steps.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lmgym.agents.ppo.checkpoint import load_checkpoint, save_checkpoint
from lmgym.agents.ppo.math import (
    agent_tokens_first,
    compute_gae,
    entropy_from_logits,
    group_center,
    group_relative_advantages,
    logprobs_from_logits,
    make_kl_controller,
    masked_mean,
    masked_sum,
    masked_var,
    masked_whiten,
    policy_loss,
    rloo_advantages,
    spread_agent_tokens,
    token_rewards,
    value_loss,
)
from lmgym.agents.ppo.policy import PolicyOutput, PolicyWithValue
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import Rollout, SamplingConfig, collect_rollout
from lmgym.agents.ppo.sft import trim_padding
from lmgym.agents.ppo.shaping import dense_score_rewards
from lmgym.agents.ppo.shared_prompts import shared_prompt_forward
from lmgym.errors import ConfigError

if TYPE_CHECKING:
    from lmgym.agents.train.config import TrainConfig


def iteration_seed(seed: int, iteration: int, rank: int = 0) -> int:
    """A 31-bit seed for one process's iteration: distinct streams, reproducible on resume."""
    return int(np.random.SeedSequence([seed, iteration, rank]).generate_state(1)[0] & 0x7FFFFFFF)


def prompt_group_examples(num_examples: int, num_groups: int, seed: int) -> np.ndarray:
    """The train examples of one iteration's prompt groups: ``num_groups`` indices drawn with replacement from
    ``range(num_examples)`` by ``seed`` (an :func:`iteration_seed`). Public so a peer trainer can be fed the
    same prompts in the same order (:mod:`lmgym.agents.bench.peer_trl`)."""
    return np.random.default_rng(seed).integers(num_examples, size=num_groups)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """``1 - Var(returns - values) / Var(returns)`` over valid tokens (1 = perfect, <= 0 = useless)."""
    var = masked_var(returns, mask)
    if var.item() == 0:
        return float("nan")
    return float(1 - masked_var(returns - values, mask) / var)


class PPOTrainer:
    """Runs PPO iterations on a policy with a lockstep vector env.

    Args:
        config: the :class:`~lmgym.agents.train.config.TrainConfig` (PPO fields are read from it).
        policy: the policy, not yet prepared by accelerate.
        reference: the frozen reference (see :class:`~lmgym.agents.ppo.reference.ReferenceModel`).
        envs: this process's lockstep vector env.
        accelerator: an ``accelerate.Accelerator``.
        resume_from: a checkpoint folder to restore before training (weights, optimizer, KL state).

    Attributes:
        iteration: iterations completed so far.
        kl_controller: fixed or adaptive KL coefficient.
    """

    def __init__(
        self,
        config: TrainConfig,
        policy: PolicyWithValue,
        reference: ReferenceModel,
        envs: Any,
        accelerator: Any,
        resume_from: str | None = None,
    ) -> None:
        if config.dense_reward and envs.env.trigger_ids:
            raise ConfigError("--dense-reward scores response prefixes, which envs that write tokens (tool use) "
                              "do not have; train them with the final reward (drop --dense-reward).")
        self.config = config
        self.envs = envs
        self.accelerator = accelerator
        self.reference = reference
        self.sampling = SamplingConfig(config.temperature, config.top_k, config.top_p)
        self.kl_controller = make_kl_controller(config.kl_coef, config.target_kl, config.kl_horizon)
        # Two parameter groups: the value head starts untrained while the LM is already good, so it
        # gets a larger learning rate (``value_lr_scale``) to catch up with the returns quickly.
        head = [p for p in policy.value_head.parameters() if p.requires_grad]
        head_ids = {id(p) for p in head}
        trunk = [p for p in policy.parameters() if p.requires_grad and id(p) not in head_ids]
        optimizer = torch.optim.AdamW([{"params": trunk, "lr_scale": 1.0},
                                       {"params": head, "lr_scale": config.value_lr_scale}],
                                      lr=config.learning_rate, eps=1e-5, weight_decay=0.0)
        self.iteration = 0
        self.episodes = 0
        if resume_from is not None:
            state = load_checkpoint(resume_from, policy=policy, optimizer=optimizer, kl_controller=self.kl_controller)
            self.iteration = int(state["iteration"])
            self.episodes = int(state["extra"].get("episodes", 0))
        self.model, self.optimizer = accelerator.prepare(policy, optimizer)

    @property
    def policy(self) -> PolicyWithValue:
        """The policy without its DDP wrapper (for rollouts, evaluation and saving)."""
        return self.accelerator.unwrap_model(self.model)

    # ---- one iteration ------------------------------------------------------------------------------
    def iterate(self) -> dict[str, float]:
        """Run one PPO iteration; returns its metrics (averaged over processes)."""
        cfg, acc = self.config, self.accelerator
        it = self.iteration + 1
        seed = iteration_seed(cfg.seed, it, acc.process_index)
        generator = torch.Generator(device=acc.device).manual_seed(seed)
        lr = cfg.learning_rate * ((1.0 - (it - 1) / cfg.iterations) if cfg.anneal_lr else 1.0)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]

        # 1. rollout: KV-cached sampling through the env; log-probs and values come with it.
        t0 = time.perf_counter()
        self.model.eval()
        obs = self._group_reset(seed) if cfg.samples_per_prompt > 1 else None
        with acc.autocast():
            ro = collect_rollout(self.policy, self.envs, self.sampling, generator=generator, seed=seed, obs=obs)
        t_rollout = time.perf_counter() - t0
        mask = ro.loss_mask.float()  # (N, T): the agent's tokens

        # 2.-4. reference log-probs (one teacher-forced pass), rewards, advantages.
        with acc.autocast():
            ref_logprobs = self.reference.logprobs(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask,
                                                   temperature=self.sampling.temperature or 1.0)
        t_reference = time.perf_counter() - t0 - t_rollout
        scores = dense_score_rewards(self.envs, ro, self.envs.env.split) if cfg.dense_reward else ro.scores
        logprobs, values, order = ro.logprobs, ro.values, None
        if ro.agent_mask is not None:  # the env wrote tokens too: per-token maths over the agent's tokens only
            order = agent_tokens_first(mask)
            logprobs, ref_logprobs, values, mask = (t.gather(1, order) for t in (logprobs, ref_logprobs, values, mask))
        rewards, kl = token_rewards(scores, logprobs, ref_logprobs, mask, self.kl_controller.value)
        if it == 1:
            shift = self._value_bias_shift(values, rewards, mask)
            values = values + shift * mask
            ro.values.add_(shift * ro.loss_mask)
        advantages, returns = self.advantages(values, rewards, mask)
        if order is not None:  # back to the response layout of the update's teacher-forced pass
            advantages, returns = (spread_agent_tokens(t, order, mask) for t in (advantages, returns))

        # 5. update.
        t1 = time.perf_counter()
        stats = self.update(ro, advantages, returns, generator)
        t_update = time.perf_counter() - t1

        # 6. KL control, counters, metrics.
        seq_kl = masked_sum(kl, mask, dim=1)  # (N,)
        world = acc.num_processes
        local = {
            "reward/mean": ro.scores.mean(),
            "reward/std": ro.scores.std(unbiased=False),
            "reward/max": ro.scores.max(),
            "reward/min": ro.scores.min(),
            "reward/total": (rewards * mask).sum(1).mean(),
            "objective/kl": seq_kl.mean(),
            "objective/kl_per_token": masked_mean(kl, mask),
            "objective/kl_penalty": self.kl_controller.value * seq_kl.mean(),
            "value/mean": masked_mean(ro.values, ro.loss_mask),
            "value/returns": masked_mean(returns, ro.loss_mask),
            "value/explained_variance": torch.tensor(explained_variance(ro.values, returns, ro.loss_mask)),
            "episode/length": mask.sum(1).mean(),
            "episode/eos_rate": ro.terminated.float().mean(),
            **stats,
        }
        end_call = getattr(self.envs.env, "end_call_id", None)
        if end_call is not None:  # tool-use envs: calls per episode (the agent's </call> tokens)
            local["episode/tool_calls"] = ((ro.response_ids == end_call) & ro.loss_mask.bool()).sum(1).float().mean()
        metrics = self._reduce(local)
        tokens = ro.num_tokens * world
        metrics["objective/kl_coef"] = self.kl_controller.value
        self.kl_controller.update(metrics["objective/kl"], cfg.num_envs * world)
        self.iteration = it
        self.episodes += cfg.num_envs * world
        metrics.update({
            "charts/learning_rate": lr,
            "charts/episodes": float(self.episodes),
            "charts/tokens_per_s": tokens / max(t_rollout, 1e-9),
            "charts/iteration_s": time.perf_counter() - t0,
            "time/rollout_s": t_rollout,
            "time/reference_s": t_reference,
            "time/update_s": t_update,
        })
        self.last_rollout = ro
        return metrics

    def advantages(
        self, values: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(advantages, value targets)`` of a rollout, both ``(N, T)``, by the configured estimator.

        ``gae``: GAE(gamma, lambda) from the value head, centred per prompt group. ``rloo``: each
        completion's total reward minus the mean of its prompt's other completions (no critic); the
        value head still learns Monte-Carlo returns. ``grpo``: the same, divided by the group's std.
        Then optional whitening over the batch's tokens (for ``rloo``/``grpo`` a rescale only, so tied
        groups keep zero advantage).
        """
        cfg = self.config
        if cfg.advantage in ("rloo", "grpo"):
            _, returns = compute_gae(rewards, values, mask, cfg.gamma, 1.0)
            estimator = rloo_advantages if cfg.advantage == "rloo" else group_relative_advantages
            advantages = estimator(rewards, mask, cfg.samples_per_prompt)
        else:
            advantages, returns = compute_gae(rewards, values, mask, cfg.gamma, cfg.lam)
            advantages = group_center(advantages, mask, cfg.samples_per_prompt)
        if cfg.whiten_advantages:
            advantages = masked_whiten(advantages, mask, shift_mean=cfg.advantage == "gae")
        return advantages, returns

    @torch.no_grad()
    def _value_bias_shift(self, values: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Before the first update, shift the new value head's bias by the mean error of its predictions;
        returns the shift (the caller moves the rollout's values by it).

        The head starts untrained while returns sit far from 0 (e.g. around 0.7 for a good SFT
        model); without this, the first iterations spend their value steps on the offset and the
        value errors leak into the advantages. Averaged over processes, so every replica agrees.
        """
        _, returns = compute_gae(rewards, values, mask, self.config.gamma, 1.0)
        shift = masked_mean(returns - values, mask).reshape(1)
        shift = self.accelerator.reduce(shift, reduction="mean")
        self.policy.value_head.bias.add_(shift.to(self.policy.value_head.bias.dtype))
        return shift

    def _group_reset(self, seed: int) -> dict[str, np.ndarray]:
        """Reset the slots to ``num_envs / samples_per_prompt`` random train examples, each in consecutive slots."""
        k = self.config.samples_per_prompt
        split = self.envs.env.split
        chosen = prompt_group_examples(len(self.envs.task.examples(split)), self.envs.num_envs // k, seed)
        return self.envs.reset(options={"split": split, "example_index": np.repeat(chosen, k)})[0]

    def update(self, ro: Rollout, advantages: torch.Tensor, returns: torch.Tensor, generator: torch.Generator) -> dict:
        """``epochs`` x ``minibatches`` clipped PPO steps; returns mean loss statistics."""
        cfg, acc = self.config, self.accelerator
        N = len(ro.scores)
        mb_size = max(1, N // cfg.minibatches)
        temperature = self.sampling.temperature or 1.0
        sums: dict[str, float] = {}
        count, epochs_run = 0, 0
        self.model.train()
        for _epoch in range(cfg.epochs):
            order = self.minibatch_order(N, mb_size, generator)
            epoch_kl, epoch_n = 0.0, 0
            for start in range(0, mb_size * cfg.minibatches, mb_size):
                rows = order[start : start + mb_size]
                prompt_ids, prompt_mask, response_ids, response_mask = trim_padding(
                    ro.prompt_ids[rows], ro.prompt_mask[rows], ro.response_ids[rows], ro.response_mask[rows])
                T = response_ids.shape[1]
                mask = ro.loss_mask[rows, :T].float()  # env-written tokens (tool results) are context only
                with acc.autocast():
                    out = self.forward(prompt_ids, prompt_mask, response_ids, response_mask)  # one pass per sequence
                logits = out.logits.float() / temperature  # (b, T, V)
                logprobs = logprobs_from_logits(logits, response_ids)
                pg = policy_loss(logprobs, ro.logprobs[rows, :T], advantages[rows, :T], mask, cfg.clip_range)
                v_loss, v_clipfrac = value_loss(out.values.float(), ro.values[rows, :T], returns[rows, :T], mask,
                                                cfg.clip_range_value)
                entropy = masked_mean(entropy_from_logits(logits), mask)
                loss = pg.loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
                acc.backward(loss)
                grad_norm = None
                if cfg.max_grad_norm:
                    grad_norm = acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                step_stats = {
                    "losses/policy": pg.loss.item(), "losses/value": v_loss.item(), "losses/entropy": entropy.item(),
                    "losses/total": loss.item(), "policy/approx_kl": pg.approx_kl.item(),
                    "policy/clipfrac": pg.clipfrac.item(), "policy/ratio": pg.ratio_mean.item(),
                    "value/clipfrac": v_clipfrac.item(),
                    "policy/grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                }
                for key, value in step_stats.items():
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
                epoch_kl += pg.approx_kl.item()
                epoch_n += 1
            epochs_run += 1
            if cfg.target_approx_kl:
                # Averaged over processes so that all of them stop after the same epoch.
                mean_kl = acc.reduce(torch.tensor(epoch_kl / epoch_n, device=acc.device), reduction="mean").item()
                if mean_kl > cfg.target_approx_kl:
                    break
        self.model.eval()
        out_stats = {key: torch.tensor(value / max(count, 1)) for key, value in sums.items()}
        out_stats["policy/epochs"] = torch.tensor(float(epochs_run))
        return out_stats

    def minibatch_order(self, n: int, mb_size: int, generator: torch.Generator) -> torch.Tensor:
        """A random order of the batch's ``n`` rows for one epoch.

        Where minibatches hold whole prompt groups (``samples_per_prompt`` consecutive rows share a prompt), whole
        groups are shuffled, so each minibatch reads each of its prompts once (:meth:`forward`); else rows are.
        """
        k = self.config.samples_per_prompt
        if k > 1 and n % k == 0 and mb_size % k == 0:
            groups = torch.randperm(n // k, generator=generator, device=generator.device)
            order = (groups[:, None] * k + torch.arange(k, device=groups.device)).reshape(-1)
        else:
            order = torch.randperm(n, generator=generator, device=generator.device)
        return order.to(self.accelerator.device)

    def forward(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor,
                response_mask: torch.Tensor) -> PolicyOutput:
        """The update's teacher-forced pass: logits and values at every response position.

        In one process each distinct prompt is read once (:func:`~lmgym.agents.ppo.shared_prompts.
        shared_prompt_forward`: the same outputs and gradients, a fraction of the prompt tokens); under DDP the
        pass goes through the wrapper, whose forward prepares the gradient all-reduce.
        """
        if self.accelerator.num_processes > 1:
            return self.model(prompt_ids, prompt_mask, response_ids, response_mask)
        policy = self.policy
        logits, hidden = shared_prompt_forward(policy.model, prompt_ids, prompt_mask, response_ids, response_mask)
        return PolicyOutput(logits=policy.cut_logits(logits), values=policy.values_from_hidden(hidden))

    def _reduce(self, local: dict[str, Any]) -> dict[str, float]:
        """Average scalar metrics over processes (one collective for all of them)."""
        keys = sorted(local)
        values = torch.stack([torch.as_tensor(local[k], dtype=torch.float32).detach().reshape(()).cpu() for k in keys])
        values = self.accelerator.reduce(values.to(self.accelerator.device), reduction="mean").cpu()
        return {k: float(v) for k, v in zip(keys, values)}

    # ---- checkpoints --------------------------------------------------------------------------------
    def save(self, run_dir: str, config: dict[str, Any]) -> str | None:
        """Checkpoint after the current iteration (main process writes; every process waits)."""
        path = None
        if self.accelerator.is_main_process:
            path = save_checkpoint(run_dir, iteration=self.iteration, policy=self.policy, optimizer=self.optimizer,
                                   kl_controller=self.kl_controller, config=config,
                                   extra={"episodes": self.episodes}, keep=self.config.keep_checkpoints)
        self.accelerator.wait_for_everyone()
        return path
