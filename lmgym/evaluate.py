"""``lmgym eval``: score a baseline agent or a trained policy on an env (mean ± std over episodes).

::

    lmgym eval lmgym/Summarize-v0 --agent oracle --episodes 200
    lmgym eval Translate-v0 --agent random,dictionary,oracle --episodes 200 --env-kwargs direction=xx-en
    lmgym eval lmgym/Summarize-v0 --agent lead-2 --env-kwargs dataset=./my_news.jsonl --json
    lmgym eval Translate-v0 --split test --agent runs/a/reference,runs/a/policy   # trained policies (greedy)
    lmgym eval Summarize-v1 --agent runs/ilql/policy --beta 4                      # ILQL, steered with beta 4

The same numbers come from :func:`evaluate` in Python. The episodes are those of the held-out protocol
(:mod:`lmgym.heldout`): the first ``episodes`` examples of the split, in order, as ``lmgym bench`` and
``lmgym train`` evaluate. Baseline agents live in :mod:`lmgym.baselines`; ``seed`` seeds them (slot ``i``
gets ``seed + i``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmgym.errors import LmgymError
from lmgym.flags import add_env_kwargs_flag, parse_kwargs
from lmgym.validation import check_int


def full_env_id(env_id: str) -> str:
    """``"Summarize-v0"`` -> ``"lmgym/Summarize-v0"``; ids with a namespace are kept."""
    return env_id if "/" in env_id else f"lmgym/{env_id}"


def evaluate(
    env_id: str,
    agent: Any = "random",
    episodes: int = 100,
    seed: int = 0,
    split: str = "validation",
    batch_size: int = 64,
    beta: float | None = None,
    **env_kwargs: Any,
) -> dict[str, Any]:
    """Score ``agent`` on the first ``episodes`` examples of ``split`` and summarize the rewards.

    Args:
        env_id: a registered id (``"lmgym/Summarize-v0"``; the ``lmgym/`` prefix may be left out).
        agent: a baseline name or a trained policy folder (see :func:`lmgym.baselines.make_batched_agent`),
            a :class:`~lmgym.heldout.BatchedAgent` for a vector env of ``batch_size`` slots, or a one-episode
            agent (``reset(obs, info)``, ``act(obs, info) -> int``; it plays the episodes one at a time).
        episodes: number of episodes (>= 1; at most the split's size).
        seed: seeds a baseline agent (slot ``i`` gets ``seed + i``).
        split: ``"train"``, ``"validation"`` or ``"test"``.
        batch_size: episodes played at once (the vector env's slots).
        beta: the advantage steering of an ILQL policy folder (``None``: as saved; 0: its behaviour cloning).
        **env_kwargs: passed to ``gym.make_vec``.

    Returns:
        ``{"env", "agent", "split", "seed", "n", "mean", "std", "min", "max", "details",
        "scores", "seconds"}``; ``std`` is the population standard deviation and ``details`` the
        mean of each scorer component (for weighted sums).
    """
    from lmgym.baselines import make_batched_agent
    from lmgym.heldout import SlotAgents, evaluate_agent, make_heldout_envs

    check_int("episodes", episodes, minimum=1)
    check_int("seed", seed, minimum=0)
    check_int("batch_size", batch_size, minimum=1)
    env_id = full_env_id(env_id)
    one_episode = not isinstance(agent, str) and not getattr(agent, "batched", False)
    envs = make_heldout_envs(env_id, 1 if one_episode else max(1, min(episodes, batch_size)), **env_kwargs)
    try:
        name = agent if isinstance(agent, str) else type(agent).__name__
        player = make_batched_agent(agent, envs, seed=seed, beta=beta) if isinstance(agent, str) else agent
        if one_episode:
            player = SlotAgents([agent])
        result = evaluate_agent(envs, player, episodes=episodes, split=split)
    finally:
        envs.close()
    values = np.asarray(result.rewards, dtype=np.float64)
    return {
        "env": env_id, "agent": name, "split": split, "seed": seed, "n": len(result),
        "mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
        "max": float(values.max()), "details": {k: float(np.mean(v)) for k, v in result.details.items()},
        "scores": result.rewards, "seconds": result.seconds,
    }


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym eval`` argument parser."""
    parser = argparse.ArgumentParser(prog="lmgym eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("env", help="env id, e.g. lmgym/Summarize-v0 (the lmgym/ prefix is optional)")
    parser.add_argument("--agent", default="random",
                        help="baseline name(s) or trained policy folder(s), comma-separated: random, oracle, "
                             "lead-N, dictionary, template, simple, runs/<name>/policy (default: random)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per agent (default: 100)")
    parser.add_argument("--split", default="validation", help="train, validation or test (default: validation)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first reset and the agent (default: 0)")
    parser.add_argument("--beta", type=float, default=None,
                        help="ILQL policy folders: advantage steering (0: behaviour cloning; default: as saved)")
    add_env_kwargs_flag(parser, "--kw", default=[])
    parser.add_argument("--json", action="store_true", help="print one JSON object per agent (without scores)")
    return parser


def format_result(result: dict[str, Any]) -> str:
    """One human-readable line (plus one per scorer component) for an :func:`evaluate` result."""
    lines = [f"{result['env']}  {result['agent']:<12} {result['split']}  n={result['n']}  "
             f"score {result['mean']:.4f} ± {result['std']:.4f}  "
             f"(min {result['min']:.4f}, max {result['max']:.4f}, {result['seconds']:.1f}s)"]
    if len(result["details"]) > 1:
        lines += [f"    {key}: {value:.4f}" for key, value in result["details"].items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym eval``; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    import gymnasium.error

    from lmgym.baselines import parse_names

    try:
        kwargs = parse_kwargs(args.env_kwargs)
        for name in parse_names(args.agent):
            result = evaluate(args.env, name, args.episodes, args.seed, args.split, beta=args.beta, **kwargs)
            if args.json:
                print(json.dumps({k: v for k, v in result.items() if k != "scores"}))
            else:
                print(format_result(result))
    except (LmgymError, gymnasium.error.Error) as exc:
        print(f"lmgym eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
