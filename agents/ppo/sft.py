"""Supervised fine-tuning (SFT): the warm start before PPO.

Teacher-forced next-token cross-entropy on each train example's ``targets``: its demonstrations
where the task has them (the ``-v1`` envs: imperfect writers), else its references. The policy reads
the env's prompt exactly as the env shows it (same tokenizer, same left padding) and learns to
write ``target + EOS``. Only response tokens are in the loss. The value head is not trained here
(PPO fits it), but it takes part in the forward so data-parallel training sees every parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lmgym.agents.ppo.math import masked_mean
from lmgym.agents.ppo.rollout import used_prompt_columns


@dataclass
class SFTData:
    """Tokenized (prompt, reference) pairs, one row per reference, in the env's layout.

    ``prompt_ids``/``prompt_mask`` ``(M, P)`` left-padded; ``response_ids``/``response_mask``
    ``(M, R)`` right-padded, each response being ``reference + EOS`` cut to ``R`` tokens.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor
    loss_mask: torch.Tensor | None = None
    """``(M, R)``: the response tokens in the loss, where the env would write some itself (tool results:
    context, not imitated); ``None``: all of ``response_mask``."""

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def batch(self, rows: torch.Tensor, device: torch.device | str) -> tuple[torch.Tensor, ...]:
        """Rows ``rows`` trimmed of all-padding columns, on ``device``: the four layout tensors, then the loss
        mask when there is one."""
        out = trim_padding(*(t[rows].to(device) for t in (self.prompt_ids, self.prompt_mask,
                                                          self.response_ids, self.response_mask)))
        if self.loss_mask is None:
            return out
        return (*out, self.loss_mask[rows, : out[2].shape[1]].to(device))


def trim_padding(
    prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor, response_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Drop prompt columns that are padding in every row (left) and response columns likewise (right).

    The model output on the remaining tokens is unchanged (positions count real tokens only), and
    a batch of short examples no longer pays for the longest possible one.
    """
    used = used_prompt_columns(prompt_mask)
    length = max(int(response_mask.sum(1).max()), 1)
    return prompt_ids[:, used], prompt_mask[:, used], response_ids[:, :length], response_mask[:, :length]


def build_sft_data(env: Any, split: str = "train", max_examples: int | None = None) -> SFTData:
    """Tokenize a task split for SFT with a single :class:`~lmgym.token_env.TokenEnv` (e.g. ``envs.env``).

    Args:
        env: the env whose tokenizer, prompt encoding and sizes (``max_prompt_tokens``,
            ``max_new_tokens``) define the layout.
        split: the task split to read (the validation split is kept for evaluation).
        max_examples: use at most this many examples (the first ones).
    """
    examples = env.task.examples(split)
    n = len(examples) if max_examples is None else min(max_examples, len(examples))
    P, R = env.max_prompt_tokens, env.max_new_tokens
    pad, eos = env.pad_token_id, env.eos_token_id
    table, lengths = env.prompt_table(split)  # the env's own left-padded prompts (n, P) and lengths (n,)
    rows = [i for i in range(n) for _ in examples[i].targets]
    refs = env.tokenizer([ref for i in range(n) for ref in examples[i].targets], add_special_tokens=False)[
        "input_ids"
    ]
    prompt_ids = torch.as_tensor(table[rows], dtype=torch.long)  # (M, P)
    prompt_mask = (torch.arange(P)[None, :] >= torch.as_tensor(P - lengths[rows])[:, None]).long()
    response_ids = torch.full((len(rows), R), pad, dtype=torch.long)
    response_mask = torch.zeros_like(response_ids)
    for row, ref_ids in enumerate(refs):
        target = [*ref_ids, eos][:R]
        response_ids[row, : len(target)] = torch.as_tensor(target)
        response_mask[row, : len(target)] = 1
    loss_mask = None
    if env.trigger_ids:  # the env writes tokens too: they are context, not what the policy imitates
        written = [torch.as_tensor(env.env_written_in(row[: int(n)].tolist()))
                   for row, n in zip(response_ids, response_mask.sum(1))]
        loss_mask = response_mask.clone()
        for row, w in enumerate(written):
            loss_mask[row, : len(w)] -= w
    return SFTData(prompt_ids, prompt_mask, response_ids, response_mask, loss_mask)


def sft_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean token cross-entropy of the responses and the token accuracy of greedy predictions.

    ``batch``: :meth:`SFTData.batch`'s tensors; with a fifth (a loss mask), only its tokens count.
    """
    prompt_ids, prompt_mask, response_ids, response_mask, *loss_mask = batch
    out = model(prompt_ids, prompt_mask, response_ids, response_mask)
    response_mask = loss_mask[0] if loss_mask else response_mask
    logp = torch.log_softmax(out.logits.float(), -1)  # (B, R, V)
    nll = -logp.gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)  # (B, R)
    loss = masked_mean(nll, response_mask)
    # 0 * values: the value head joins the graph, so DDP finds a gradient for every parameter.
    loss = loss + 0.0 * out.values.sum()
    with torch.no_grad():
        accuracy = masked_mean((logp.argmax(-1) == response_ids).float(), response_mask)
    return loss, accuracy


def warmup_cosine(step: int, total: int, warmup_frac: float = 0.05, final_frac: float = 0.1) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``final_frac``."""
    warmup = max(1, int(total * warmup_frac))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def run_sft(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: SFTData,
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    accelerator: Any,
    seed: int = 0,
    max_grad_norm: float = 1.0,
    log: Callable[[int, dict[str, float]], None] | None = None,
    log_every: int = 10,
    progress: Any = None,
) -> dict[str, float]:
    """Train ``model`` for ``steps`` minibatch steps of teacher-forced cross-entropy.

    Args:
        model: the (accelerate-prepared) policy; called as ``model(prompt_ids, prompt_mask,
            response_ids, response_mask)``.
        optimizer: its (prepared) optimizer.
        data: the tokenized references (:func:`build_sft_data`).
        steps, batch_size, learning_rate: the schedule (warm-up + cosine, :func:`warmup_cosine`).
        accelerator: an ``accelerate.Accelerator``; each process draws its own minibatches.
        seed: minibatch sampling seed (the process index is added).
        max_grad_norm: gradient clipping.
        log: called as ``log(step, metrics)`` every ``log_every`` steps with ``sft/loss``,
            ``sft/token_accuracy``, ``sft/learning_rate`` (averaged over processes).
        progress: an optional tqdm bar, advanced once per step.

    Returns:
        The metrics of the last logged window.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + accelerator.process_index)
    model.train()
    window: list[tuple[float, float]] = []
    last: dict[str, float] = {}
    for step in range(steps):
        lr = learning_rate * warmup_cosine(step, steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = torch.randint(len(data), (min(batch_size, len(data)),), generator=generator)
        batch = data.batch(rows, accelerator.device)
        with accelerator.autocast():
            loss, accuracy = sft_loss(model, batch)
        accelerator.backward(loss)
        if max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window.append((loss.item(), accuracy.item()))
        if progress is not None:
            progress.update(1)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            stats = torch.tensor([sum(w[0] for w in window), sum(w[1] for w in window)], device=accelerator.device)
            stats = accelerator.reduce(stats, reduction="mean") / len(window)
            last = {"sft/loss": stats[0].item(), "sft/token_accuracy": stats[1].item(), "sft/learning_rate": lr}
            window = []
            if log is not None:
                log(step + 1, last)
            if progress is not None:
                progress.set_postfix(loss=f"{last['sft/loss']:.3f}", acc=f"{last['sft/token_accuracy']:.3f}")
    model.eval()
    return last
