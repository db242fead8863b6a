"""Dense score shaping for rollouts: per-token score differences that sum to the episode's score.

The env rewards an episode once, at its end. For credit assignment PPO can instead use the
potential-based shaping of :class:`lmgym.wrappers.DenseScoreReward`, computed here for a whole
rollout batch after the fact: the potential after token ``t`` is the env scorer's value of the
text written so far (``Φ_0 = 0``), token ``t`` is rewarded ``Φ_t - Φ_{t-1}``, and the last token
gets whatever makes the total equal the env's own score. With ``gamma = 1`` this changes no
optimal policy (Ng et al. 1999) but tells each token how much it moved the score, so a token's
return no longer carries the noise of the tokens before it.

Cost: one batched scorer call over every prefix of the batch (``N x T`` texts) per iteration.
"""

from __future__ import annotations

from typing import Any

import torch

from lmgym.agents.ppo.rollout import Rollout
from lmgym.scorers import checked_score
from lmgym.token_env import batch_meta


def prefix_potentials(envs: Any, ro: Rollout, split: str = "train") -> torch.Tensor:
    """Scores of every proper prefix ``response[:t]``, ``t = 1..L-1``, of each episode: ``(N, T)``.

    Entry ``[i, t - 1]`` is ``Φ_t`` for ``t < L_i``; entries at and after the last token are 0
    (the last potential is the env's final score, taken from the rollout).
    """
    N, T = ro.response_ids.shape
    lengths = ro.response_mask.sum(1).tolist()
    rows, texts_ids = [], []
    ids = ro.response_ids.tolist()
    for i in range(N):
        for t in range(1, int(lengths[i])):
            rows.append((i, t - 1))
            texts_ids.append(ids[i][:t])
    potentials = torch.zeros(N, T, dtype=torch.float32)
    if rows:
        texts = envs.tokenizer.batch_decode(texts_ids, skip_special_tokens=True)
        examples = envs.task.examples(split)
        owners = [i for i, _ in rows]
        values = checked_score(
            envs.scorer,
            [ro.prompts[i] for i in owners],
            texts,
            [ro.references[i] for i in owners],
            **batch_meta([examples[ro.example_index[i]] for i in owners]),
        )
        index = torch.tensor(rows, dtype=torch.long)
        potentials[index[:, 0], index[:, 1]] = torch.tensor(values, dtype=torch.float32)
    return potentials.to(ro.scores.device)


def dense_score_rewards(envs: Any, ro: Rollout, split: str = "train") -> torch.Tensor:
    """Per-token score rewards ``(N, T)``: ``Φ_t - Φ_{t-1}``, summing exactly to ``ro.scores`` per row."""
    mask = ro.response_mask.float()
    potentials = prefix_potentials(envs, ro, split)  # (N, T): Φ_1 .. Φ_{L-1}, then 0
    last = (mask.sum(1).long() - 1).clamp(min=0)
    rows = torch.arange(len(last), device=mask.device)
    potentials[rows, last] = ro.scores.float()  # Φ_L = the env's final score
    previous = torch.cat([torch.zeros_like(potentials[:, :1]), potentials[:, :-1]], 1)
    return (potentials - previous) * mask
