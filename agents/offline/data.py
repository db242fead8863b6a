"""Reward-labelled logs as tensors in an env's layout (what SFT-all, filtered BC and ILQL train on).

Prompts are tokenized with the env's tokenizer and left-padded to its ``max_prompt_tokens`` (cut
at the end, as the env cuts its own prompts); completions become ``completion + EOS`` cut to
``max_new_tokens``, right-padded. The result is an :class:`~lmgym.agents.ppo.sft.SFTData` (so the
supervised trainer reads it unchanged) plus one reward per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lmgym.agents.ppo.sft import SFTData
from lmgym.errors import LogsError
from lmgym.logs import RewardLogs


@dataclass
class LogData:
    """Tokenized logs: ``data`` (prompts and completions), ``rewards (M,)`` and counted warnings."""

    data: SFTData
    rewards: torch.Tensor
    warnings: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rewards)


def build_log_data(env: object, logs: RewardLogs) -> LogData:
    """Tokenize ``logs`` for ``env`` (a single :class:`~lmgym.token_env.TokenEnv`, e.g. ``envs.env``).

    Warnings (counted, not fatal): prompts longer than the env's prompt limit (cut), completions longer
    than its token limit (cut), prompts or completions with tokens the tokenizer does not know (``unk``).

    Raises:
        LogsError: a prompt that tokenizes to nothing.
    """
    P, R = env.max_prompt_tokens, env.max_new_tokens
    pad, eos = env.pad_token_id, env.eos_token_id
    unk = getattr(env.tokenizer, "unk_token_id", None)
    prompts = env.tokenizer([s.prompt for s in logs.samples], add_special_tokens=False)["input_ids"]
    completions = env.tokenizer([s.completion for s in logs.samples], add_special_tokens=False)["input_ids"]
    M = len(logs.samples)
    prompt_ids = torch.full((M, P), pad, dtype=torch.long)
    prompt_mask = torch.zeros((M, P), dtype=torch.long)
    response_ids = torch.full((M, R), pad, dtype=torch.long)
    response_mask = torch.zeros((M, R), dtype=torch.long)
    warnings = dict(logs.warnings)

    def count(problem: str) -> None:
        warnings[problem] = warnings.get(problem, 0) + 1

    for row, (prompt, completion) in enumerate(zip(prompts, completions)):
        if not prompt:
            raise LogsError(f"Row {row}'s prompt {logs.samples[row].prompt!r} tokenizes to nothing with the env's "
                            "tokenizer; give the env a tokenizer that covers the logs (env kwarg tokenizer=...).")
        if unk is not None and unk in prompt:
            count("prompt with unknown tokens")
        if unk is not None and unk in completion:
            count("completion with unknown tokens")
        if len(prompt) > P:
            count("prompt cut to max_prompt_tokens")
        if len(completion) + 1 > R:
            count("completion cut to max_new_tokens")
        prompt = prompt[:P]
        prompt_ids[row, P - len(prompt):] = torch.as_tensor(prompt)
        prompt_mask[row, P - len(prompt):] = 1
        target = [*completion, eos][:R]
        response_ids[row, : len(target)] = torch.as_tensor(target)
        response_mask[row, : len(target)] = 1
    rewards = torch.tensor(logs.rewards, dtype=torch.float32)
    return LogData(SFTData(prompt_ids, prompt_mask, response_ids, response_mask), rewards, warnings)


def format_warnings(warnings: dict[str, int], total: int) -> str:
    """``"3 of 100 rows: empty completion; ..."`` (empty string when there is nothing to say)."""
    return "; ".join(f"{count} of {total} rows: {problem}" for problem, count in sorted(warnings.items()))


__all__ = ["LogData", "build_log_data", "format_warnings"]
