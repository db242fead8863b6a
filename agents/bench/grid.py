"""``lmgym bench``: run agents x envs x seeds on env-step budgets and regenerate the leaderboards.

Each run writes one JSON record (fields in :data:`lmgym.leaderboard.RESULT_FIELDS`) to
``<out>/results/``; then ``<out>/README.md`` and ``<out>/curves/*.png`` are rebuilt from all the
JSON there by :func:`lmgym.leaderboard.build_leaderboard`::

    lmgym bench --preset tiny                      # seconds; writes runs/bench-tiny/
    lmgym bench --preset full --jobs 2             # the committed leaderboards/ (under an hour, 2 cores)
    lmgym bench --agents sb3-ppo random --envs lmgym/Copy-v0 --seeds 0 1 2 --budget 30000
    lmgym bench --leaderboard-only                 # rebuild leaderboards/README.md and curves from the JSON
    lmgym bench --list                             # agents (and why any is unavailable), presets

Agents live in a registry (:mod:`lmgym.agents.bench.agents`): a name, a kind and a
``run(RunSpec) -> AgentResult`` function. Agents whose code or extra is missing report why in
:attr:`BenchAgent.unavailable` and are skipped, never faked; agents that do not apply to an env
(e.g. ``simple`` on the toy envs) are left out of that env's grid.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmgym
from lmgym.agents.bench.agents import BENCH_AGENTS, AgentResult, BenchAgent, RunSpec, register_agent
from lmgym.agents.bench.provenance import REPO_ROOT, git_commit, machine_info
from lmgym.atomic import write_atomic
from lmgym.flags import add_env_kwargs_flag, parse_kwargs
from lmgym.leaderboard import SCHEMA_VERSION, build_leaderboard, config_key, env_slug


# ---- presets -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """A named grid. Budgets and env kwargs are per env id, with ``"*"`` as the default."""

    name: str
    agents: tuple[str, ...]
    seeds: tuple[int, ...]
    budgets: dict[str, int]
    env_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    agent_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    envs: tuple[str, ...] | None = None
    """``None``: every registered env."""
    n_envs: int = 8
    eval_episodes: int = 100
    eval_points: int = 10
    out_dir: str = "leaderboards"

    def specs(
        self,
        envs: Sequence[str] | None = None,
        agents: Sequence[str] | None = None,
        seeds: Sequence[int] | None = None,
        budget: int | None = None,
        device: str = "cpu",
        env_kwargs: dict[str, Any] | None = None,
    ) -> list[RunSpec]:
        """The grid's runs, env-major; agents that do not apply to an env are left out.

        ``env_kwargs`` are added to every env's (over the preset's).
        """
        out = []
        for env_id in envs or self.envs or lmgym.env_ids():
            kwargs = {**self.env_kwargs.get("*", {}), **self.env_kwargs.get(env_id, {}), **(env_kwargs or {})}
            for agent in agents or self.agents:
                if agent in BENCH_AGENTS and not BENCH_AGENTS[agent].applies(env_id):
                    continue
                for seed in seeds if seeds is not None else self.seeds:
                    out.append(
                        RunSpec(
                            env_id=env_id,
                            agent=agent,
                            seed=int(seed),
                            budget=int(budget or self.budgets.get(env_id, self.budgets["*"])),
                            env_kwargs=kwargs,
                            n_envs=self.n_envs,
                            eval_episodes=self.eval_episodes,
                            eval_points=self.eval_points,
                            agent_kwargs=dict(self.agent_kwargs.get(agent, {})),
                            preset=self.name,
                            device=device,
                        )
                    )
        return out


_TINY_SB3 = {"extractor": {"embed_dim": 16, "n_layers": 1, "n_heads": 2}}
_TINY_LM = {
    "n_layer": 1,
    "n_embd": 32,
    "n_head": 2,
    "num_envs": 8,
    "minibatches": 2,
    "sft_steps": 4,
    "sft_batch_size": 8,
    "eval_batch_size": 8,
}
GRID_PRESETS: dict[str, Preset] = {
    # Seconds per run: every agent on every env, short episodes; the tests run parts of it.
    "tiny": Preset(
        name="tiny",
        agents=(
            "lmgym-ppo-sft",
            "lmgym-ppo",
            "sb3-ppo",
            "sb3-a2c",
            "sb3-dqn",
            "sb3-maskable-ppo",
            "random",
            "oracle",
            "simple",
        ),
        seeds=(0,),
        budgets={"*": 256},
        env_kwargs={
            "*": {"max_new_tokens": 4},
            "lmgym/Copy-v0": {"length": 2, "vocab_size": 3},
            "lmgym/Reverse-v0": {"length": 2, "vocab_size": 3},
        },
        agent_kwargs={
            "sb3-ppo": {**_TINY_SB3, "n_steps": 16},
            "sb3-maskable-ppo": {**_TINY_SB3, "n_steps": 16},
            "sb3-a2c": {**_TINY_SB3, "n_steps": 4},
            "sb3-dqn": {**_TINY_SB3, "learning_starts": 64, "buffer_size": 1_000},
            "lmgym-ppo": _TINY_LM,
            "lmgym-ppo-sft": _TINY_LM,
        },
        n_envs=4,
        eval_episodes=8,
        eval_points=2,
        out_dir="runs/bench-tiny",
    ),
    # The committed leaderboards: every registered env x 3 seeds on 20k env steps. SB3 agents use the
    # "mlp" extractor here: on Summarize's 114-token observations the transformer's update costs
    # ~10x more CPU time (measured: 770 ms vs 65 ms per 256-observation forward+backward).
    # The text tasks run at -v1 (warm-start demonstrations from imperfect writers), where RL has headroom;
    # lmgym-sft is the same warm start without PPO, so the gap between the two rows is what RL adds.
    "full": Preset(
        name="full",
        agents=("lmgym-ppo-sft", "lmgym-ppo-sft-grpo", "lmgym-sft", "lmgym-ppo", "sb3-ppo", "sb3-a2c", "sb3-dqn",
                "random", "oracle", "simple"),
        envs=("lmgym/Copy-v0", "lmgym/Reverse-v0", "lmgym/Summarize-v1", "lmgym/Translate-v1",
              "lmgym/PositiveReview-v1", "lmgym/Keywords-v1"),
        seeds=(0, 1, 2),
        budgets={"*": 20_000},
        env_kwargs={
            "lmgym/Copy-v0": {"length": 3, "vocab_size": 10},
            "lmgym/Reverse-v0": {"length": 3, "vocab_size": 10},
        },
        agent_kwargs={
            **{f"sb3-{algo}": {"extractor": {"arch": "mlp"}} for algo in ("ppo", "a2c", "dqn")},
            "lmgym-ppo-sft": {"sft_steps": 600},  # the main job's warm start
            "lmgym-ppo-sft-grpo": {"sft_steps": 600},
            "lmgym-sft": {"sft_steps": 600},
        },
        n_envs=8,
        eval_episodes=100,
        eval_points=5,
        out_dir="leaderboards",
    ),
}


# ---- running and recording -----------------------------------------------------------------------------
def result_path(results_dir: Path, spec: RunSpec) -> Path:
    """``<results>/<env>__<config hash>__<agent>__s<seed>.json``."""
    import hashlib

    cfg = hashlib.sha1(
        config_key({"env_id": spec.env_id, "env_kwargs": spec.env_kwargs, "budget": spec.budget}).encode()
    ).hexdigest()[:8]
    return results_dir / f"{env_slug(spec.env_id)}__{cfg}__{spec.agent}__s{spec.seed}.json"


def split_size(env_id: str, env_kwargs: dict[str, Any], split: str) -> int:
    """Number of examples in ``split`` of the env's task (evaluations never use more)."""
    import gymnasium as gym

    env = gym.make(env_id, **env_kwargs)
    try:
        return len(env.unwrapped.task.examples(split))
    finally:
        env.close()


def run_one(spec: RunSpec, command: str = "", threads: int = 1) -> dict[str, Any]:
    """Train and evaluate one run; return its result record (not written)."""
    import torch

    torch.set_num_threads(threads)
    agent = BENCH_AGENTS[spec.agent]
    start, cpu_start = time.perf_counter(), time.process_time()
    result = agent.run(spec)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    train_time = result.train_time_s if result.train_time_s is not None else wall
    version = spec.env_id.rsplit("-v", 1)
    commit, dirty = git_commit()
    return {
        "schema": SCHEMA_VERSION,
        "env_id": spec.env_id,
        "env_version": int(version[1]) if len(version) == 2 and version[1].isdigit() else None,
        "env_kwargs": spec.env_kwargs,
        "agent": spec.agent,
        "agent_kind": agent.kind,
        "agent_config": spec.agent_kwargs,
        "seed": spec.seed,
        "budget": spec.budget,
        "steps": result.steps,
        "final_score": float(result.final_score),
        "best_score": float(max(s for _, s in result.curve)) if result.curve else float(result.final_score),
        "kl": result.kl,
        "eval_episodes": min(spec.eval_episodes, split_size(spec.env_id, spec.env_kwargs, "validation")),
        "eval_split": "validation",
        "curve": [[int(x), float(y)] for x, y in result.curve],
        "wall_time_s": round(wall, 3),
        "cpu_time_s": round(cpu, 3),
        "tokens_per_s": round(result.steps / train_time, 1) if result.steps and train_time > 0 else None,
        "n_envs": spec.n_envs,
        "preset": spec.preset,
        "command": command,
        "commit": commit,
        "commit_dirty": dirty,
        "machine": machine_info(spec.device),
        "lmgym_version": lmgym.__version__,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "extra": result.extra,
    }


def _run_and_write(spec: RunSpec, results_dir: str, command: str, threads: int) -> tuple[str, str | None]:
    """Worker: run, write the JSON atomically; return (path, error text or None)."""
    path = result_path(Path(results_dir), spec)
    try:
        record = run_one(spec, command, threads)
    except Exception:  # one failing run must not lose the rest of the grid
        return str(path), traceback.format_exc()
    write_atomic(path, json.dumps(record, indent=1, default=float) + "\n")
    return str(path), None


def run_grid(
    specs: Sequence[RunSpec],
    out_dir: str | os.PathLike,
    *,
    command: str = "",
    jobs: int = 1,
    threads: int = 1,
    skip_existing: bool = False,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Run ``specs`` (in ``jobs`` processes), writing ``<out_dir>/results/*.json``.

    Returns:
        Error messages of failed runs (empty when all succeeded).
    """
    results_dir = Path(out_dir) / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    todo = [s for s in specs if not (skip_existing and result_path(results_dir, s).exists())]
    if len(todo) < len(specs):
        log(f"{len(specs) - len(todo)} runs already have results; skipping them")
    errors: list[str] = []

    def report(spec: RunSpec, path: str, error: str | None) -> None:
        if error:
            errors.append(f"{spec.agent} on {spec.env_id} seed {spec.seed}:\n{error}")
            log(f"FAILED {spec.agent} {spec.env_id} s{spec.seed}: {error.strip().splitlines()[-1]}")
        else:
            record = json.loads(Path(path).read_text())
            log(
                f"{spec.env_id:<22} {spec.agent:<14} s{spec.seed}  score {record['final_score']:.3f}  "
                f"{record['wall_time_s']:.1f}s"
            )

    if jobs <= 1:
        for spec in todo:
            report(spec, *_run_and_write(spec, str(results_dir), command, threads))
    else:
        import multiprocessing

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_and_write, s, str(results_dir), command, threads): s for s in todo}
            for future in as_completed(futures):
                report(futures[future], *future.result())
    return errors


# ---- CLI -----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym bench`` argument parser."""
    p = argparse.ArgumentParser(
        prog="lmgym bench", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--preset", choices=sorted(GRID_PRESETS), help="grid preset (default: tiny; full with --leaderboard-only)"
    )
    p.add_argument("--agents", nargs="+", help="agent names (default: the preset's)")
    p.add_argument("--envs", nargs="+", help="env ids (default: the preset's, i.e. every registered env)")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the preset's)")
    p.add_argument("--budget", type=int, help="training env steps for every env (default: the preset's)")
    add_env_kwargs_flag(p, default=[])
    p.add_argument("--out", help="output folder with results/ (default: the preset's)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--device", default="cpu", help="torch device for learned agents (default cpu)")
    p.add_argument("--skip-existing", action="store_true", help="keep runs whose result file exists (resume)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="run even with uncommitted changes (every result records commit and dirty flag)")
    p.add_argument("--leaderboard-only", action="store_true", help="only rebuild README.md and curves")
    p.add_argument("--no-leaderboard", action="store_true", help="do not rebuild README.md after the runs")
    p.add_argument("--list", action="store_true", help="list agents and presets, then exit")
    return p


def list_agents() -> str:
    """One line per agent: name, kind, availability, description; then the presets."""
    lines = []
    for agent in BENCH_AGENTS.values():
        why = agent.unavailable
        lines.append(
            f"{agent.name:<14} {agent.kind:<8} {'ok' if why is None else 'unavailable: ' + why}\n"
            f"{'':<24}{agent.description}"
        )
    for preset in GRID_PRESETS.values():
        lines.append(
            f"preset {preset.name}: agents {', '.join(preset.agents)}; seeds {list(preset.seeds)}; "
            f"budgets {preset.budgets}; out {preset.out_dir}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym bench`` (``argv`` without the subcommand). Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from lmgym.validation import check_int

    for flag, value in (("--budget", args.budget), ("--jobs", args.jobs), ("--threads", args.threads)):
        check_int(flag, value, minimum=1, optional=flag == "--budget")  # a ConfigError: `lmgym` exits 2
    for seed in args.seeds or ():
        check_int("--seeds", seed, minimum=0)
    if args.list:
        print(list_agents())
        return 0
    # Runs default to the cheap grid; rebuilding defaults to the committed leaderboards.
    preset = GRID_PRESETS[args.preset or ("full" if args.leaderboard_only else "tiny")]
    out = Path(args.out or preset.out_dir)
    errors: list[str] = []
    if not args.leaderboard_only:
        unknown = [a for a in args.agents or () if a not in BENCH_AGENTS]
        if unknown:
            print(f"Unknown agents {unknown}; known: {sorted(BENCH_AGENTS)}", file=sys.stderr)
            return 2
        unknown_envs = [e for e in args.envs or () if e not in lmgym.env_ids()]
        if unknown_envs:
            print(f"Unknown envs {unknown_envs}; registered: {lmgym.env_ids()}", file=sys.stderr)
            return 2
        agents = []
        for name in args.agents or preset.agents:
            why = BENCH_AGENTS[name].unavailable
            if why:
                print(f"skipping {name}: {why}")
            else:
                agents.append(name)
        specs = preset.specs(args.envs, agents, args.seeds, args.budget, args.device, parse_kwargs(args.env_kwargs))
        commit, dirty = git_commit()
        if dirty and not args.allow_dirty and out.resolve().is_relative_to(REPO_ROOT / "leaderboards"):
            print(f"lmgym bench: error: the work tree has uncommitted changes, so the committed leaderboards would "
                  f"not match commit {(commit or '?')[:7]}; commit first, or pass --allow-dirty (every result "
                  "records its commit and dirty flag).", file=sys.stderr)
            return 2
        command = "lmgym bench " + " ".join(argv)
        start = time.perf_counter()
        errors = run_grid(
            specs, out, command=command, jobs=args.jobs, threads=args.threads, skip_existing=args.skip_existing
        )
        print(f"{len(specs)} runs in {time.perf_counter() - start:.1f}s ({len(errors)} failed) -> {out / 'results'}")
        for error in errors:
            print(error, file=sys.stderr)
    if not args.no_leaderboard:
        readme = build_leaderboard(out / "results", out)
        print(f"wrote {readme}")
    return 1 if errors else 0


__all__ = [
    "BENCH_AGENTS",
    "GRID_PRESETS",
    "AgentResult",
    "BenchAgent",
    "Preset",
    "RunSpec",
    "build_parser",
    "main",
    "register_agent",
    "result_path",
    "run_grid",
    "run_one",
]
