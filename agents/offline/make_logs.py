"""``lmgym logs make``: reward-labelled logs for any env, from baselines and sampled policies.

::

    lmgym logs make lmgym/Summarize-v1 --output logs/summarize.jsonl        # demonstrator, sft, random
    lmgym logs make lmgym/PositiveReview-v1 --agents demonstrator template sft --prompts 500 --output r.jsonl
    lmgym logs make lmgym/Translate-v1 --agents runs/a/policy random --temperature 0.7 --output t.jsonl

Each agent writes one completion for each of the first ``--prompts`` prompts of ``--split`` (the
env's own episodes, through its lockstep vector env), and the env's reward labels it, so the file
mixes the quality of its writers as real logs do. Agents are baseline names (``lmgym eval``'s:
``random``, ``demonstrator``, ``simple``, ``lead-2``...), ``sft`` (a policy SFT-trained on the env's
demonstrations for ``--sft-steps``, then *sampled* at ``--temperature``), or policy folders (sampled
at ``--temperature``). The file is ``{prompt, completion, reward, agent, example_index}`` JSON lines.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from lmgym.errors import ConfigError, LmgymError
from lmgym.flags import add_env_kwargs_flag, parse_kwargs
from lmgym.logs import LoggedSample, write_logs
from lmgym.validation import check_float, check_int

DEFAULT_AGENTS = ("demonstrator", "sft", "random")


def sft_policy(env_id: str, env_kwargs: dict[str, Any], folder: str, steps: int, seed: int) -> str:
    """Train an SFT policy on the env's demonstrations into ``folder``; returns its policy folder."""
    from lmgym.agents.train import TrainConfig, train

    config = TrainConfig(env=env_id, env_kwargs=dict(env_kwargs), algo="sft", sft_steps=steps, seed=seed,
                         output_dir=folder, name="sft", eval_examples=1, tensorboard=False, progress=False,
                         checkpoint_every=0, num_samples=0, device="cpu")
    return train(config)["run_dir"] + "/policy"


def make_logs(env_id: str, agents: Sequence[str] = DEFAULT_AGENTS, prompts: int = 1000, split: str = "train",
              seed: int = 0, temperature: float = 1.0, sft_steps: int = 300, batch_size: int = 100,
              **env_kwargs: Any) -> list[LoggedSample]:
    """One logged sample per (agent, prompt): the first ``prompts`` examples of ``split``, rewarded by the env.

    Raises:
        ConfigError: an unknown agent or bad setting (before anything runs).
    """
    from lmgym.agents.ppo.agent import PolicyAgent
    from lmgym.baselines import make_batched_agent
    from lmgym.evaluate import full_env_id
    from lmgym.heldout import evaluate_agent, make_heldout_envs

    check_int("prompts", prompts, minimum=1)
    check_int("sft_steps", sft_steps, minimum=1)
    check_float("temperature", temperature, minimum=0)
    if not agents:
        raise ConfigError("Give at least one agent (--agents), e.g. demonstrator sft random.")
    env_id = full_env_id(env_id)
    envs = make_heldout_envs(env_id, min(batch_size, prompts), **env_kwargs)
    samples: list[LoggedSample] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lmgym-logs-") as tmp:
            sft_folder = None  # trained once, however many times "sft" is listed (each listing samples anew)
            for k, name in enumerate(agents):
                if name == "sft" or os.path.isdir(name):
                    if name == "sft" and sft_folder is None:
                        sft_folder = sft_policy(env_id, env_kwargs, tmp, sft_steps, seed)
                    folder = sft_folder if name == "sft" else name
                    agent: Any = PolicyAgent.from_folder(folder, envs, seed=seed * 1000 + k, temperature=temperature)
                else:
                    agent = make_batched_agent(name, envs, seed=seed * 1000 + k * 100)
                result = evaluate_agent(envs, agent, episodes=prompts, split=split)
                samples += [LoggedSample(p, c, float(r), name, int(i)) for p, c, r, i in
                            zip(result.prompts, result.completions, result.rewards, result.example_index)]
    finally:
        envs.close()
    return samples


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym logs`` argument parser (one subcommand: ``make``)."""
    parser = argparse.ArgumentParser(prog="lmgym logs", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="write reward-labelled logs for an env")
    add_writer_flags(make, "--agents", DEFAULT_AGENTS)
    make.add_argument("--split", default="train", help="split the prompts come from (default train)")
    return parser


def add_writer_flags(parser: argparse.ArgumentParser, flag: str, default: Sequence[str]) -> None:
    """The flags of a command whose writers complete an env's prompts (``lmgym logs make``, ``lmgym prefs make``):
    the env, ``--output``, the writers (``flag``), ``--prompts``, ``--seed``, ``--temperature``, ``--sft-steps``
    and ``--env-kwargs``."""
    parser.add_argument("env", help="env id, e.g. lmgym/Summarize-v1")
    parser.add_argument("--output", required=True, help="the .jsonl file to write")
    parser.add_argument(flag, nargs="+", default=list(default),
                        help=f"baseline names, 'sft' or policy folders (default: {' '.join(default)})")
    parser.add_argument("--prompts", type=int, default=1000, help="prompts each writer completes (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of writers, SFT and sampling (default 0)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of policies (default 1)")
    parser.add_argument("--sft-steps", type=int, default=300, help="SFT steps of the 'sft' writer (default 300)")
    add_env_kwargs_flag(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym logs``; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    import gymnasium.error

    from lmgym.logs import RewardLogs

    try:
        samples = make_logs(args.env, args.agents, args.prompts, args.split, args.seed, args.temperature,
                            args.sft_steps, **parse_kwargs(args.env_kwargs or []))
        write_logs(args.output, samples)
    except (LmgymError, gymnasium.error.Error) as exc:
        print(f"lmgym logs: error: {exc}", file=sys.stderr)
        return 2
    spread = RewardLogs(samples).by_agent()
    print(f"Wrote {len(samples)} rows to {args.output}")
    for name, stats in spread.items():
        print(f"  {name:<16} n={stats['n']:<6} mean reward {stats['mean']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
