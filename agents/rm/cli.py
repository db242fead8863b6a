"""``lmgym rm train``: a reward model from preference pairs (see :mod:`lmgym.agents.rm.train`).

::

    lmgym rm train --data pairs.jsonl --env lmgym/PositiveReview-v1 --output runs/rm-review
    lmgym rm train --data pairs.jsonl --model ./my-causal-lm --steps 1000 --output runs/rm-x
    lmgym rm train --output runs/rm-review --data pairs.jsonl --env lmgym/PositiveReview-v1 --resume

Every :class:`~lmgym.agents.rm.train.RMConfig` field is a flag. The model in ``<output>/model`` is a reward for any
env: ``gym.make(ENV, scorer=lmgym.make_scorer("reward_model", model="runs/rm-review/model"))``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lmgym.errors import LmgymError
from lmgym.flags import add_dataclass_flags, given_flags


def build_parser() -> argparse.ArgumentParser:
    """``lmgym rm`` with one subcommand, ``train``, whose flags are :class:`RMConfig`'s fields."""
    from lmgym.agents.rm.train import RMConfig

    parser = argparse.ArgumentParser(prog="lmgym rm", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_dataclass_flags(sub.add_parser("train", help="train a reward model on preference pairs"), RMConfig)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym rm``; returns the exit status (0 ok, 2 bad input)."""
    from lmgym.agents.rm.train import RMConfig, train_reward_model

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        train_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
        config = RMConfig(**given_flags(train_parser, RMConfig, argv[1:]))
        results = train_reward_model(config)
    except LmgymError as exc:
        print(f"lmgym rm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    with open(f"{results['run_dir']}/results.md") as f:
        print(f.read())
    print(f"Reward model: {results['model_dir']}  ({results['wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
