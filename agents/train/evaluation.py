"""Evaluate a policy on a task split: greedy completions through the env, scored and compared
with the reference model.

Reported per evaluation (all means over the evaluated examples):

- ``score``: the **task metric**, i.e. the env class's default scorer (e.g. ROUGE for
  summarization), whatever scorer the training reward uses;
- ``reward``: the env's own scorer (the training reward; equal to ``score`` by default);
- ``kl``: KL(policy || reference) summed over the tokens of each greedy completion, computed
  exactly from both next-token distributions at every step (not a sample estimate);
- ``length``: response tokens written (EOS included);
- ``sampled_score`` (optional): the task metric of sampled completions (the stochastic policy);
- ``samples``: a few (prompt, completion, reference, reward) rows for the results table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lmgym.agents.ppo.math import kl_from_logits, masked_sum
from lmgym.agents.ppo.policy import PolicyWithValue, lm_forward
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import SamplingConfig, collect_rollout, reset_to_examples
from lmgym.scorers import checked_score, make_scorer
from lmgym.token_env import batch_meta


def task_metric_scorer(envs: Any) -> Any:
    """The task's own metric: the scorer the env uses by default (whatever scorer the reward uses).

    Text-task envs build it with ``make_default_scorer(task)`` (e.g. a weighted sum); other envs
    name it in the class attribute ``default_scorer``; without either, the env's scorer is used.
    """
    env = envs.env
    build = getattr(env, "make_default_scorer", None)
    spec = build(env.task) if callable(build) else getattr(type(env), "default_scorer", None)
    if spec is None:
        return envs.scorer
    scorer = make_scorer(spec)
    return envs.scorer if scorer.name == envs.scorer.name else scorer


@torch.no_grad()
def evaluate_policy(
    policy: PolicyWithValue,
    envs: Any,
    *,
    reference: ReferenceModel | None = None,
    split: str = "validation",
    max_examples: int | None = 200,
    num_samples: int = 3,
    metric_scorer: Any = None,
    sampling: SamplingConfig | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Greedy-decode the first ``max_examples`` examples of ``split`` and score them.

    Args:
        policy: the (unwrapped) policy.
        envs: a lockstep vector env of the task (its slots are reset to each example in turn).
        reference: when given, ``kl`` to it is reported.
        split: the task split.
        max_examples: how many examples (``None``: the whole split).
        num_samples: sample rows to return.
        metric_scorer: the task metric (default: :func:`task_metric_scorer`).
        sampling: when given, the same examples are also decoded by sampling with it (the
            distribution PPO optimises) and ``sampled_score`` reports the task metric on them.
        seed: sampling seed; the same seed gives the same random numbers to every policy
            evaluated, so before/after differences are not sampling noise.

    Returns:
        ``{"score", "reward", "kl", "length", "eos_rate", "num_examples", "metric", "samples"}``,
        plus ``"sampled_score"`` when ``sampling`` is given.
    """
    metric_scorer = metric_scorer or task_metric_scorer(envs)
    same_metric = metric_scorer.name == envs.scorer.name
    examples = envs.task.examples(split)
    total = len(examples) if max_examples is None else min(max_examples, len(examples))
    N = envs.num_envs
    rewards, scores, kls, lengths, eos, sampled = [], [], [], [], [], []
    generator = torch.Generator(device=next(policy.parameters()).device).manual_seed(seed)
    samples: list[dict[str, Any]] = []
    was_training = policy.training
    policy.eval()
    for start in range(0, total, N):
        wanted = list(range(start, min(start + N, total)))
        indices = wanted + [wanted[-1]] * (N - len(wanted))  # fill spare slots, then ignore them
        obs = reset_to_examples(envs, split, indices)
        ro = collect_rollout(policy, envs, SamplingConfig(temperature=0.0), obs=obs).select(range(len(wanted)))
        rewards += ro.scores.tolist()
        lengths += ro.response_mask.sum(1).tolist()
        eos += ro.terminated.float().tolist()
        if same_metric:
            scores += ro.scores.tolist()
        else:
            chosen = [examples[i] for i in wanted]
            scores += checked_score(metric_scorer, ro.prompts, ro.completions, ro.references, **batch_meta(chosen))
        if reference is not None:
            logits = policy.cut_logits(lm_forward(policy.model, ro.prompt_ids, ro.prompt_mask, ro.response_ids,
                                                  ro.response_mask, want_hidden=False)[0])
            ref_logits = reference.logits(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask)
            kls += masked_sum(kl_from_logits(logits, ref_logits), ro.response_mask, dim=1).tolist()
        if sampling is not None:
            obs = reset_to_examples(envs, split, indices)
            rs = collect_rollout(policy, envs, sampling, generator=generator, obs=obs).select(range(len(wanted)))
            if same_metric:
                sampled += rs.scores.tolist()
            else:
                chosen = [examples[i] for i in wanted]
                sampled += checked_score(metric_scorer, rs.prompts, rs.completions, rs.references,
                                         **batch_meta(chosen))
        for i in range(min(num_samples - len(samples), len(wanted))):
            samples.append({"prompt": ro.prompts[i], "completion": ro.completions[i],
                            "reference": ro.references[i][0] if ro.references[i] else "", "reward": rewards[start + i]})
    policy.train(was_training)
    extra = {"sampled_score": float(np.mean(sampled))} if sampled else {}
    return {
        **extra,
        "score": float(np.mean(scores)),
        "reward": float(np.mean(rewards)),
        "kl": float(np.mean(kls)) if kls else float("nan"),
        "length": float(np.mean(lengths)),
        "eos_rate": float(np.mean(eos)),
        "num_examples": total,
        "metric": metric_scorer.name,
        "samples": samples,
    }
