"""The agents ``lmgym bench`` can run: a registry of ``RunSpec -> AgentResult`` functions.

Every agent is trained (or not, for baselines) on ``RunSpec.budget`` env steps and then scored on
the same held-out examples: the first ``eval_episodes`` examples of the validation split, one
episode each, greedy for learned agents: the protocol of :mod:`lmgym.heldout`, which ``lmgym eval``
and the evaluations of ``lmgym train`` follow too.

Registered agents:

- ``sb3-ppo``, ``sb3-a2c``, ``sb3-dqn``: stock stable-baselines3 with
  :class:`~lmgym.agents.sb3.TokenFeaturesExtractor` (:func:`~lmgym.agents.sb3.make_sb3_model`);
- ``sb3-maskable-ppo``: sb3-contrib's ``MaskablePPO`` with :class:`~lmgym.agents.sb3.TokenActionMasker`;
- ``lmgym-ppo``, ``lmgym-ppo-sft``: ``lmgym train`` (token-level PPO with value head and KL to a
  reference), from the initial model or after an SFT warm start;
- ``random``, ``oracle``, ``simple``: baselines of :mod:`lmgym.baselines` (no training).

Add your own with :func:`register_agent`.
"""

from __future__ import annotations

import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: an agent trained on one env with one seed."""

    env_id: str
    """Registered env id."""
    agent: str
    """Name in :data:`BENCH_AGENTS`."""
    seed: int
    """Seeds torch, numpy and the envs."""
    budget: int
    """Training env steps (tokens written)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env keyword arguments (training and evaluation)."""
    n_envs: int = 8
    """Parallel training episodes (SB3 agents; the lmgym agent sets its own ``num_envs``)."""
    eval_episodes: int = 100
    """Held-out examples per evaluation."""
    eval_points: int = 10
    """Evaluations during training (plus one before it)."""
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    """Agent hyperparameters overriding its defaults."""
    preset: str = "custom"
    """Preset name (recorded)."""
    device: str = "cpu"
    """torch device of learned agents."""

    @property
    def eval_every(self) -> int:
        """Env steps between evaluations."""
        return max(1, self.budget // max(1, self.eval_points))


@dataclass
class AgentResult:
    """What an agent's ``run`` returns; the bench adds the bookkeeping fields."""

    final_score: float
    """Mean held-out score after training."""
    curve: list[tuple[int, float]]
    """``(env steps, held-out score)`` points, from before training to the final one."""
    steps: int
    """Env steps used for training."""
    kl: float | None = None
    """KL(policy || reference) per completion (LM agents)."""
    train_time_s: float | None = None
    """Training wall time excluding evaluations (for tokens/s)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping (sample completions, SFT steps...)."""


@dataclass(frozen=True)
class BenchAgent:
    """A registered bench agent."""

    name: str
    kind: str
    """``"sb3"``, ``"lm"`` or ``"baseline"``."""
    description: str
    run: Callable[[RunSpec], AgentResult]
    check: Callable[[], str | None] = lambda: None
    """Why the agent cannot run here (missing module or extra), or ``None``."""
    applies: Callable[[str], bool] = lambda env_id: True
    """Whether the agent is defined for an env id (e.g. a summarization-only baseline)."""

    @property
    def unavailable(self) -> str | None:
        """Why the agent cannot run here, or ``None`` when it can."""
        return self.check()


BENCH_AGENTS: dict[str, BenchAgent] = {}


def register_agent(agent: BenchAgent) -> BenchAgent:
    """Add (or replace) an agent in :data:`BENCH_AGENTS`."""
    BENCH_AGENTS[agent.name] = agent
    return agent


def module_missing(module: str, hint: str) -> Callable[[], str | None]:
    """A ``check`` that reports ``module`` as missing (with ``hint``) when it cannot be imported."""

    def check() -> str | None:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        return None if found else f"{module} is not available ({hint})"

    return check


# ---- SB3 ----------------------------------------------------------------------------------------------
def sb3_runner(algo: str) -> Callable[[RunSpec], AgentResult]:
    """Stock SB3 ``algo`` with the token extractor, evaluated greedily during and after training."""

    def run(spec: RunSpec) -> AgentResult:
        from lmgym.agents.sb3 import (
            EvalScoreCallback,
            HeldOutEvaluator,
            LmgymMetricsCallback,
            TokenActionMasker,
            make_sb3_env,
            make_sb3_model,
        )

        kwargs = dict(spec.agent_kwargs)
        vec_env = kwargs.pop("vec_env", "auto")
        env = make_sb3_env(spec.env_id, spec.n_envs, seed=spec.seed, env_kwargs=spec.env_kwargs, vec_env=vec_env)
        model = make_sb3_model(algo, env, seed=spec.seed, device=spec.device, **kwargs)
        evaluator = HeldOutEvaluator(spec.env_id, spec.env_kwargs, n_episodes=spec.eval_episodes)
        masker = TokenActionMasker.from_env(evaluator.venv) if algo == "maskable_ppo" else None
        evaluation = EvalScoreCallback(evaluator, spec.eval_every, masker=masker)
        metrics = LmgymMetricsCallback(curve_every=spec.eval_every)
        start = time.perf_counter()
        model.learn(spec.budget, callback=[metrics, evaluation])
        elapsed = time.perf_counter() - start
        env.close()
        evaluator.close()
        samples = [{"prompt": p, "completion": c, "score": s} for p, c, s in metrics.samples]
        return AgentResult(
            final_score=evaluation.curve[-1][1],
            curve=evaluation.curve,
            steps=int(model.num_timesteps),
            train_time_s=elapsed - evaluation.eval_time,
            extra={"train_curve": metrics.curve, "samples": samples},
        )

    return run


for _algo in ("ppo", "a2c", "dqn"):
    register_agent(
        BenchAgent(
            f"sb3-{_algo}",
            "sb3",
            f"stable-baselines3 {_algo.upper()} (MultiInputPolicy + TokenFeaturesExtractor, lmgym defaults)",
            sb3_runner(_algo),
            module_missing("stable_baselines3", "pip install lmgym[sb3]"),
        )
    )


register_agent(
    BenchAgent(
        "sb3-maskable-ppo",
        "sb3",
        "sb3-contrib MaskablePPO: PPO that never picks pad/bos/unk, nor EOS as the first token",
        sb3_runner("maskable_ppo"),
        module_missing("sb3_contrib", "pip install lmgym[sb3] (or pip install sb3-contrib)"),
    )
)


# ---- baselines (lmgym.baselines) ---------------------------------------------------------------------
def heldout_baseline_scores(
    env_id: str, env_kwargs: dict[str, Any], name: str, seed: int, n_episodes: int
) -> tuple[list[float], str]:
    """Scores of baseline ``name`` on the held-out episodes (:func:`lmgym.evaluate.evaluate`), and its resolved name."""
    from lmgym.baselines import SIMPLE
    from lmgym.evaluate import evaluate

    result = evaluate(env_id, name, n_episodes, seed, "validation", **env_kwargs)
    return result["scores"], SIMPLE.get(task_kind(env_id), name) if name == "simple" else name


def baseline_runner(name: str) -> Callable[[RunSpec], AgentResult]:
    """A non-learning baseline: no training steps, a flat curve at its held-out score."""

    def run(spec: RunSpec) -> AgentResult:
        scores, resolved = heldout_baseline_scores(spec.env_id, spec.env_kwargs, name, spec.seed, spec.eval_episodes)
        score = float(np.mean(scores))
        return AgentResult(
            final_score=score, curve=[(0, score), (spec.budget, score)], steps=0, extra={"baseline": resolved}
        )

    return run


def task_kind(env_id: str) -> str:
    """The ``task_kind`` of an env id's class (``""`` when it has none), without building the env."""
    env_class = gym.spec(env_id).entry_point
    if isinstance(env_class, str):
        module, _, attr = env_class.partition(":")
        env_class = getattr(importlib.import_module(module), attr)
    return str(getattr(env_class, "task_kind", ""))


def _simple_applies(env_id: str) -> bool:
    from lmgym.baselines import SIMPLE

    return task_kind(env_id) in SIMPLE


for _name, _desc, _applies in (
    ("random", "uniformly random token ids (lower bound)", lambda env_id: True),
    ("oracle", "writes the first reference, then EOS (upper bound of reference-based scores)", lambda env_id: True),
    ("simple", "the task's simple heuristic (lead-2, dictionary, template)", _simple_applies),
):
    register_agent(
        BenchAgent(
            _name,
            "baseline",
            _desc,
            baseline_runner(_name),
            applies=_applies,
        )
    )


# ---- lmgym PPO (lmgym.agents.train) -------------------------------------------------------------------
def tokens_per_episode(
    env_id: str, env_kwargs: dict[str, Any], max_examples: int = 200, cap_only: bool = False
) -> float:
    """Expected env steps of an episode that writes a reference and EOS (capped at the token limit).

    ``cap_only``: the token limit itself, the length of an untrained policy's episodes (it rarely
    samples EOS), used for PPO without a warm start.
    """
    env = gym.make(env_id, **env_kwargs).unwrapped
    if cap_only:
        env.close()
        return float(env.max_new_tokens)
    refs = [ex.references[0] for ex in env.task.examples("train")[:max_examples]]
    lengths = [len(ids) + 1 for ids in env.tokenizer(refs, add_special_tokens=False)["input_ids"]]
    env.close()
    return float(min(env.max_new_tokens, statistics.fmean(lengths)))


# Bench defaults of the lmgym agent: TrainConfig's, but sized for minutes per run on a CPU.
LMGYM_BENCH_DEFAULTS: dict[str, Any] = {"num_envs": 64, "sft_steps": 300}


def bench_kwargs(spec: RunSpec) -> dict[str, Any]:
    """TrainConfig overrides of the lmgym agents: bench defaults, this process's torch threads, the spec's own."""
    import torch

    # run_one set torch's threads from `lmgym bench --threads`; train() would otherwise use all cores.
    return {**LMGYM_BENCH_DEFAULTS, "threads": torch.get_num_threads(), **spec.agent_kwargs}


def train_for_bench(spec: RunSpec, **settings: Any) -> tuple[Any, dict[str, Any]]:
    """``(config, results)`` of one quiet ``lmgym train`` run for ``spec`` in a temporary folder.

    ``settings`` are TrainConfig fields on top of the spec's env, seed, evaluation size and device
    (e.g. ``algo``, ``iterations`` and :func:`bench_kwargs`).
    """
    from transformers.utils import logging as hf_logging

    from lmgym.agents.train import TrainConfig, train

    hf_logging.disable_progress_bar()  # save_pretrained's shard bars would flood the bench log
    with tempfile.TemporaryDirectory(prefix="lmgym-bench-") as out:
        config = TrainConfig(
            env=spec.env_id,
            env_kwargs=dict(spec.env_kwargs),
            seed=spec.seed,
            eval_examples=spec.eval_episodes,
            output_dir=out,
            name="run",
            device="cuda" if spec.device.startswith("cuda") else "cpu",
            tensorboard=False,
            progress=False,
            checkpoint_every=0,
            keep_checkpoints=1,
            **settings,
        )
        return config, train(config)


def lmgym_ppo_runner(sft: bool, **overrides: Any) -> Callable[[RunSpec], AgentResult]:
    """``lmgym train`` (PPO, with or without an SFT warm start) on ``budget`` env steps.

    The budget becomes PPO iterations: ``budget / (num_envs * tokens per episode)``, with the
    tokens of a reference completion (after SFT) or the token limit (from scratch) as the
    episode-length estimate; the steps actually used (sum of each iteration's episode lengths) are
    reported. (``TrainConfig`` has no env-step limit to stop on exactly.) SFT trains on references outside the
    env-step budget (its optimizer steps are recorded in ``extra``).
    """

    def run(spec: RunSpec) -> AgentResult:
        kwargs = {**overrides, **bench_kwargs(spec)}
        num_envs = int(kwargs["num_envs"])
        per_episode = tokens_per_episode(spec.env_id, spec.env_kwargs, cap_only=not sft)
        iterations = max(1, round(spec.budget / (num_envs * per_episode)))
        config, results = train_for_bench(spec, algo="sft+ppo" if sft else "ppo", iterations=iterations,
                                          eval_every=max(1, iterations // max(1, spec.eval_points)), **kwargs)
        steps, curve, train_time = 0, [(0, float(results["before"]["score"]))], 0.0
        for record in results["history"]:
            steps += round(record["episode/length"] * num_envs)
            train_time += float(record.get("charts/iteration_s", 0.0))
            if "eval/score" in record:
                curve.append((steps, float(record["eval/score"])))
        after = results["after"]
        return AgentResult(
            final_score=float(after["score"]),
            curve=curve,
            steps=steps,
            kl=float(after["kl"]),
            train_time_s=train_time or None,
            extra={
                "iterations": iterations,
                "num_envs": num_envs,
                "sft_steps": config.sft_steps if sft else 0,
                "before_score": float(results["before"]["score"]),
                "samples": after.get("samples", []),
                "train_wall_time_s": results.get("wall_time_s"),
            },
        )

    return run


def lmgym_sft_runner(spec: RunSpec) -> AgentResult:
    """``lmgym train --algo sft``: the warm start alone (the same SFT steps as ``lmgym-ppo-sft``, no env steps).

    The row that shows what RL adds: on the same env, seed and SFT budget, ``lmgym-ppo-sft`` minus this.
    """
    config, results = train_for_bench(spec, algo="sft", **bench_kwargs(spec))
    score = float(results["after"]["score"])
    return AgentResult(final_score=score, curve=[(0, score), (spec.budget, score)], steps=0,
                       train_time_s=results.get("wall_time_s"),
                       extra={"sft_steps": config.sft_steps, "samples": results["after"].get("samples", [])})


register_agent(BenchAgent("lmgym-sft", "lm", "lmgym SFT warm start only (the lmgym-ppo-sft agent before PPO)",
                          lmgym_sft_runner))
for _sft in (True, False):
    register_agent(
        BenchAgent(
            "lmgym-ppo-sft" if _sft else "lmgym-ppo",
            "lm",
            "lmgym token-level PPO with value head and KL penalty" + (", after an SFT warm start" if _sft else ""),
            lmgym_ppo_runner(_sft),
        )
    )
# The advantage estimator that won the seed-0 sweep on PositiveReview (leaderboards/sweep/), as its own row.
register_agent(BenchAgent("lmgym-ppo-sft-grpo", "lm", "lmgym PPO after an SFT warm start, group-relative "
                          "advantages (--advantage grpo, no critic)", lmgym_ppo_runner(True, advantage="grpo")))
