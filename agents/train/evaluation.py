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

from lmgym.agents.ppo.agent import PolicyAgent
from lmgym.agents.ppo.math import kl_from_logits, masked_sum
from lmgym.agents.ppo.policy import PolicyWithValue, lm_forward
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import SamplingConfig
from lmgym.heldout import evaluate_agent
from lmgym.scorers import make_scorer


def task_metric_scorer(envs: Any) -> Any:
    """The task's own metric: the scorer the env uses by default (whatever scorer the reward uses).

    That is the env's :meth:`~lmgym.token_env.TokenEnv.make_default_scorer` hook (e.g. a weighted
    sum for the generation envs); an env without the hook is judged by its own scorer.
    """
    env = envs.env
    build = getattr(env, "make_default_scorer", None)
    if build is None:
        return envs.scorer
    scorer = make_scorer(build(env.task))
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
    """Greedy-decode the first ``max_examples`` examples of ``split`` and score them (the protocol of
    :mod:`lmgym.heldout`, with the policy as a :class:`~lmgym.agents.ppo.agent.PolicyAgent`).

    Args:
        policy: the (unwrapped) policy.
        envs: a lockstep vector env of the task (its slots play one round of examples at a time).
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
        plus ``"sampled_score"`` when ``sampling`` is given, and ``"tool_calls"`` (calls per episode) and
        ``"call_rate"`` (episodes with a call) in tool-use envs.
    """
    metric_scorer = metric_scorer or task_metric_scorer(envs)
    pad = envs.env.pad_token_id
    was_training = policy.training
    policy.eval()
    greedy = PolicyAgent(policy, pad, SamplingConfig(temperature=0.0), record=reference is not None)
    result = evaluate_agent(envs, greedy, episodes=max_examples, split=split, metric_scorer=metric_scorer)
    greedy.finish()
    kls = reference_kl(policy, reference, greedy.rounds, len(result)) if reference is not None else []
    sampled: list[float] = []
    if sampling is not None:
        generator = torch.Generator(device=next(policy.parameters()).device).manual_seed(seed)
        agent = PolicyAgent(policy, pad, sampling, generator)
        sampled = evaluate_agent(envs, agent, episodes=max_examples, split=split, metric_scorer=metric_scorer).scores
    policy.train(was_training)
    samples = [{"prompt": result.prompts[i], "completion": result.completions[i],
                "reference": result.references[i][0] if result.references[i] else "", "reward": result.rewards[i]}
               for i in range(min(num_samples, len(result)))]
    extra = {"sampled_score": float(np.mean(sampled))} if sampled else {}
    if "tool_calls" in result.details:  # tool-use envs: how often the greedy policy calls a tool
        calls = np.asarray(result.details["tool_calls"])
        extra.update(tool_calls=float(calls.mean()), call_rate=float((calls > 0).mean()))
    return {
        **extra,
        "score": float(np.mean(result.scores)),
        "reward": float(np.mean(result.rewards)),
        "kl": float(np.mean(kls)) if kls else float("nan"),
        "length": float(np.mean(result.lengths)),
        "eos_rate": float(np.mean(result.terminated)),
        "num_examples": len(result),
        "metric": metric_scorer.name,
        "samples": samples,
    }


def reference_kl(
    policy: PolicyWithValue, reference: ReferenceModel, rounds: list[tuple[torch.Tensor, ...]], total: int
) -> list[float]:
    """Exact KL(policy || reference) summed over each recorded completion's agent tokens (the first ``total`` rows)."""
    kls: list[float] = []
    for prompt_ids, prompt_mask, response_ids, response_mask, agent_mask in rounds:
        n = min(len(prompt_ids), total - len(kls))  # the last round's spare slots do not count
        rows = (prompt_ids[:n], prompt_mask[:n], response_ids[:n], response_mask[:n])
        logits = policy.cut_logits(lm_forward(policy.model, *rows, want_hidden=False)[0])  # (n, T, V)
        ref_logits = reference.logits(*rows)
        kls += masked_sum(kl_from_logits(logits, ref_logits), agent_mask[:n], dim=1).tolist()  # the agent's tokens
    return kls
