"""The held-out evaluation protocol: every agent plays the same fixed episodes.

One protocol serves ``lmgym eval``, ``lmgym bench``, the evaluations during ``lmgym train`` and the SB3
learning curves, so their numbers compare:

- the episodes are the **first** ``episodes`` examples of ``split`` (``validation`` by default), in
  order, one episode each (the whole split when it is smaller);
- a lockstep vector env (``autoreset_mode="disabled"``) plays them ``num_envs`` at a time: each round
  resets slot ``i`` to the round's ``i``-th example (``reset(options={"example_index": [...]})``);
  the last round fills its spare slots with its last example and ignores them;
- the reward of an episode is the env's scorer at its end; with ``metric_scorer`` the completions are
  also scored with the task metric (when the training reward uses another scorer).

The agent is anything with the small batched protocol :class:`BatchedAgent`; :class:`SlotAgents` batches
one-episode agents (the baselines), :class:`PredictAgent` wraps a batched ``obs -> actions`` function
(e.g. an SB3 model's ``predict``). Nothing here imports torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from lmgym.scorers import checked_score
from lmgym.token_env import batch_meta


class BatchedAgent(Protocol):
    """What :func:`evaluate_agent` needs from an agent: one action per slot per step.

    ``batched = True`` tells it apart from a one-episode agent (``reset(obs, info)``, ``act(obs, info) -> int``,
    see :mod:`lmgym.baselines`), which :class:`SlotAgents` batches.
    """

    batched: bool

    def reset(self, obs: Mapping[str, np.ndarray], infos: Mapping[str, Any]) -> None:
        """Every slot starts an episode (``obs``/``infos`` as the vector env's ``reset`` returns them)."""

    def act(self, obs: Mapping[str, np.ndarray], done: np.ndarray) -> np.ndarray:
        """``(num_envs,)`` token ids; ``done`` marks the slots whose episode has ended (their actions are ignored)."""


class SlotAgents:
    """A batched agent made of one-episode agents (``reset(obs, info)`` / ``act(obs, info) -> int``), one per slot.

    Args:
        agents: one agent per slot of the vector env.
    """

    batched = True

    def __init__(self, agents: Sequence[Any]) -> None:
        self.agents = list(agents)
        self._infos: list[dict[str, Any]] = []

    def reset(self, obs: Mapping[str, np.ndarray], infos: Mapping[str, Any]) -> None:
        keys = [k for k in ("prompt", "source", "references", "example_index", "split") if k in infos]
        self._infos = [{k: infos[k][i] for k in keys} for i in range(len(self.agents))]
        for i, agent in enumerate(self.agents):
            agent.reset(slot_obs(obs, i), self._infos[i])

    def act(self, obs: Mapping[str, np.ndarray], done: np.ndarray) -> np.ndarray:
        actions = np.zeros(len(self.agents), np.int64)
        for i, agent in enumerate(self.agents):
            if not done[i]:
                actions[i] = agent.act(slot_obs(obs, i), self._infos[i])
        return actions


class PredictAgent:
    """A batched agent from a stateless ``predict(obs) -> actions`` (e.g. an SB3 model, greedy)."""

    batched = True

    def __init__(self, predict: Callable[[dict[str, np.ndarray]], Any]) -> None:
        self.predict = predict

    def reset(self, obs: Mapping[str, np.ndarray], infos: Mapping[str, Any]) -> None:
        pass

    def act(self, obs: Mapping[str, np.ndarray], done: np.ndarray) -> np.ndarray:
        return np.asarray(self.predict(dict(obs))).reshape(len(done)).astype(np.int64)


def slot_obs(obs: Mapping[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """Slot ``i``'s observation out of a batched one."""
    return {key: value[i] for key, value in obs.items()}


@dataclass
class HeldOutResult:
    """The evaluated episodes, in example order (one entry per episode)."""

    example_index: list[int] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    references: list[list[str]] = field(default_factory=list)
    completions: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    """The env's scorer (the training reward)."""
    scores: list[float] = field(default_factory=list)
    """The task metric (``metric_scorer``; the rewards when none is given)."""
    lengths: list[int] = field(default_factory=list)
    """Response tokens written (EOS included)."""
    terminated: list[bool] = field(default_factory=list)
    """Ended by EOS (not by the token limit)."""
    details: dict[str, list[float]] = field(default_factory=dict)
    """Each component of the reward (weighted sums), per episode."""
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.rewards)


def evaluate_agent(
    envs: Any,
    agent: BatchedAgent,
    *,
    episodes: int | None = None,
    split: str = "validation",
    metric_scorer: Any = None,
) -> HeldOutResult:
    """Play the first ``episodes`` examples of ``split`` with ``agent`` (the protocol of this module).

    Args:
        envs: a lockstep ``BatchedTokenEnv`` (``autoreset_mode="disabled"``); its ``num_envs`` slots play
            one round of examples at a time.
        agent: a :class:`BatchedAgent` for ``envs``.
        episodes: how many examples (``None``: the whole split; capped at the split's size).
        split: the data split.
        metric_scorer: the task metric to score completions with too (default: the rewards are the scores).

    Returns:
        A :class:`HeldOutResult` with one entry per example.
    """
    start_time = time.perf_counter()
    examples = envs.task.examples(split)
    total = len(examples) if episodes is None else min(int(episodes), len(examples))
    N, out = envs.num_envs, HeldOutResult()
    for start in range(0, total, N):
        wanted = np.arange(start, min(start + N, total))
        index = np.concatenate([wanted, np.full(N - len(wanted), wanted[-1])])  # spare slots repeat the last
        obs, infos = envs.reset(options={"split": split, "example_index": index})
        agent.reset(obs, infos)
        done, rewards, finals = np.zeros(N, bool), np.zeros(N), [{} for _ in range(N)]
        while not done.all():
            obs, step_rewards, terminated, truncated, infos = envs.step(agent.act(obs, done))
            for i in np.flatnonzero((terminated | truncated) & ~done):
                rewards[i] = step_rewards[i]
                details = {k: v[i] for k, v in infos.get("score_details", {}).items() if not k.startswith("_")}
                finals[i] = {"completion": infos["completion"][i], "terminated": bool(terminated[i]),
                             "length": int(obs["step"][i, 0]), "details": details}
            done |= terminated | truncated
        n = len(wanted)
        chosen = [examples[k] for k in wanted]
        completions = [finals[i]["completion"] for i in range(n)]
        out.example_index += wanted.tolist()
        out.prompts += [ex.prompt for ex in chosen]
        out.references += [list(ex.references) for ex in chosen]
        out.completions += completions
        out.rewards += rewards[:n].tolist()
        out.lengths += [finals[i]["length"] for i in range(n)]
        out.terminated += [finals[i]["terminated"] for i in range(n)]
        for i in range(n):
            for key, value in finals[i]["details"].items():
                out.details.setdefault(key, []).append(float(value))
        if metric_scorer is None or metric_scorer.name == envs.scorer.name:
            out.scores += rewards[:n].tolist()
        else:
            out.scores += checked_score(metric_scorer, [ex.prompt for ex in chosen], completions,
                                        [list(ex.references) for ex in chosen], **batch_meta(chosen))
    out.seconds = time.perf_counter() - start_time
    return out


def make_heldout_envs(env_id: str, num_envs: int, **env_kwargs: Any) -> Any:
    """A lockstep native vector env of ``env_id`` for :func:`evaluate_agent`."""
    from lmgym.validation import make_checked_env

    return make_checked_env(env_id, num_envs=num_envs, autoreset_mode="disabled", **env_kwargs)


__all__ = ["BatchedAgent", "HeldOutResult", "PredictAgent", "SlotAgents", "evaluate_agent", "make_heldout_envs",
           "slot_obs"]
