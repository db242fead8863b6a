"""The ``lmgym`` command line.

Subcommands::

    lmgym list                      registered envs: id, spaces, default scorer, description
    lmgym play ENV [--seed S]       play an env by typing words in the terminal
    lmgym scorers                   registered scorers with ranges and needed extras
    lmgym eval ENV --agent NAME     score a baseline agent (random, oracle, ...)
    lmgym train --env ENV ...       SFT warm start + PPO (the main job)
    lmgym bench ...                 agents x envs x seeds grid -> leaderboards/
    lmgym speed ...                 rollout-speed benchmark -> leaderboards/
    lmgym sweep ...                 PPO configs x envs x seeds: SFT vs SFT+PPO gains -> leaderboards/sweep/
    lmgym logs make ENV ...         reward-labelled logs {prompt, completion, reward} for offline RL
    lmgym offline-bench ...         SFT on all logs vs filtered BC vs ILQL -> leaderboards/offline/
    lmgym prefs make ENV ...        preference pairs {prompt, chosen, rejected} from a simulated annotator
    lmgym rm train --data PAIRS     a reward model (Bradley-Terry) the reward_model scorer loads
    lmgym rlhf ENV --output DIR     SFT -> pairs -> reward model -> PPO against it, proxy vs true metric
    lmgym rlhf-bench ...            that pipeline per env and seed -> leaderboards/rlhf/
    lmgym tool-bench ...            PPO on Calculator-v0 with and without the calculator -> leaderboards/tools/
    lmgym label --pairs F --output L  a person picks the better completion; every answer saved at once
    lmgym lm-demo [--task summarize]  SmolLM2-135M + PPO (LoRA): positive reviews / summaries -> leaderboards/smollm2/

Subcommands with many options live in their own modules and parse their own flags; this file
only dispatches, so ``lmgym list`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# subcommand -> ("module:function", help). The function takes the remaining argv.
DELEGATED: dict[str, tuple[str, str]] = {
    "scorers": ("lmgym.scorers.catalog:main", "list registered scorers"),
    "eval": ("lmgym.evaluate:main", "evaluate a baseline agent on an env"),
    "train": ("lmgym.agents.train.cli:main", "train an LM policy (SFT warm start, then PPO)"),
    "bench": ("lmgym.agents.bench.grid:main", "run the benchmark grid and regenerate leaderboards"),
    "speed": ("lmgym.agents.bench.speed:main", "measure rollout speed ratios"),
    "sweep": ("lmgym.agents.bench.sweep:main", "sweep PPO configurations: SFT vs SFT+PPO gain per env and seed"),
    "logs": ("lmgym.agents.offline.make_logs:main", "write reward-labelled logs for offline RL (logs make ENV)"),
    "offline-bench": ("lmgym.agents.bench.offline:main", "offline RL benchmark: SFT-all vs filtered BC vs ILQL"),
    "prefs": ("lmgym.agents.rm.prefs_make:main", "write preference pairs labelled by a simulated annotator"),
    "rm": ("lmgym.agents.rm.cli:main", "train a reward model on preference pairs (rm train)"),
    "rlhf": ("lmgym.agents.rm.pipeline:main", "SFT -> preference pairs -> reward model -> PPO, proxy vs true"),
    "rlhf-bench": ("lmgym.agents.bench.rlhf:main", "the RLHF pipeline per env and seed -> leaderboards/rlhf/"),
    "tool-bench": ("lmgym.agents.bench.tools:main", "Calculator-v0 with and without the tool -> leaderboards/tools/"),
    "label": ("lmgym.label:main", "people label preference pairs in the terminal (resumable)"),
    "lm-demo": ("lmgym.agents.bench.lm_demo:main",
                "SmolLM2-135M + PPO (LoRA): positive reviews or (--task summarize) summaries -> leaderboards/smollm2/"),
    "review-demo": ("lmgym.agents.bench.lm_demo:main", "the same as lm-demo (--task review is its default)"),
}


def _space_str(space: Any) -> str:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return f"Discrete({space.n})"
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}{tuple(v.shape)}" for k, v in space.spaces.items()) + ")"
    return str(space)


def env_table() -> list[dict[str, str]]:
    """One row per registered lmgym env: id, action space, observation space, scorer, description."""
    import gymnasium as gym

    import lmgym

    rows = []
    for env_id in lmgym.env_ids():
        env = gym.make(env_id).unwrapped
        doc = (type(env).__doc__ or "").strip().splitlines()
        rows.append(
            {
                "id": env_id,
                "action": _space_str(env.action_space),
                "observation": _space_str(env.observation_space),
                "scorer": env.scorer.name,
                "description": doc[0] if doc else "",
            }
        )
        env.close()
    return rows


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Format rows as a plain-text table with aligned columns."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def cmd_list(args: argparse.Namespace) -> int:
    rows = env_table()
    print(format_table(rows, ["id", "action", "observation", "scorer", "description"]))
    return 0


def cmd_play(args: argparse.Namespace, stdin=None) -> int:
    """Interactive episode: the user types words (or ``#id`` for a raw token id); empty line = EOS."""

    from lmgym.errors import InvalidActionError
    from lmgym.validation import make_checked_env

    stdin = stdin or sys.stdin
    env = make_checked_env(args.env, render_mode="ansi")
    tok = env.unwrapped.tokenizer
    obs, info = env.reset(seed=args.seed)
    print(f"{args.env}: type one word per line (or several, space-separated); '#N' sends token id N;")
    print("an empty line sends EOS; 'quit' leaves.")
    if env.unwrapped.trigger_ids:
        tools = ", ".join(env.unwrapped.tools)
        print(f"Tools ({tools}): write '<call> INPUT </call>'; the env answers '<result> ... </result>'.")
    print()
    print(env.render())
    episodes = 0
    while True:
        print("> ", end="", flush=True)
        line = stdin.readline() if stdin is not None else ""  # no stdin (closed): nothing to play
        if not line or line.strip() == "quit":
            break
        words = line.split() or [tok.eos_token]
        actions = []
        for word in words:  # a word may be several tokens (numbers in the calculator's tokenizer: 1 ##2 ##3)
            if word.startswith("#") and word[1:].isdigit():
                actions.append(int(word[1:]))
                continue
            ids = [tok.convert_tokens_to_ids(word)] if word in tok.all_special_tokens else \
                tok.convert_tokens_to_ids(tok.tokenize(word))
            if tok.unk_token_id in ids and word != tok.unk_token:
                print(f"  '{word}' is not in the vocabulary (it would be <unk>); sending <unk>.")
            actions += ids
        terminated = truncated = False
        for action in actions:
            try:
                obs, reward, terminated, truncated, info = env.step(action)
            except InvalidActionError as exc:
                print(f"  {exc}")
                continue
            if terminated or truncated:
                break
        print(env.render())
        if terminated or truncated:
            episodes += 1
            print(f"episode {episodes} over: reward {float(reward):.4f}  ({'EOS' if terminated else 'token limit'})")
            print(f"  details: {info['score_details']}\n")
            obs, info = env.reset()
            print(env.render())
    env.close()
    return 0


def dispatch(argv: list[str]) -> int:
    """Run the subcommand named by ``argv[0]``; returns its exit status."""
    if argv and argv[0] in DELEGATED:
        target, _ = DELEGATED[argv[0]]
        module, _, func = target.partition(":")
        return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)

    parser = argparse.ArgumentParser(prog="lmgym", description="Language tasks as Gymnasium environments.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list registered envs").set_defaults(func=cmd_list)
    play = sub.add_parser("play", help="play an env in the terminal")
    play.add_argument("env", help="env id, e.g. lmgym/Copy-v0")
    play.add_argument("--seed", type=int, default=None)
    play.set_defaults(func=cmd_play)
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args = parser.parse_args(argv)
    return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lmgym`` console script: bad input exits 2 with one line, never a traceback."""
    import gymnasium.error

    from lmgym.errors import LmgymError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return dispatch(argv)
    except (LmgymError, gymnasium.error.Error) as exc:
        command = argv[0] if argv and not argv[0].startswith("-") else ""
        print(f"lmgym {command}: error: {exc}".replace("  ", " "), file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
