"""``lmgym rm train``: a reward model from preference pairs (see :mod:`lmgym.agents.rm.train`).

::

    lmgym rm train --data pairs.jsonl --env lmgym/PositiveReview-v1 --output runs/rm-review
    lmgym rm train --data pairs.jsonl --env lmgym/PositiveReview-v1 --model default-seq2seq --output runs/rm-t5
    lmgym rm train --data pairs.jsonl --model ./my-causal-lm --steps 1000 --output runs/rm-x
    lmgym rm train --data pairs.jsonl --model ./my-t5 --env lmgym/Copy-v0 --env-kwargs length=3 --output runs/rm-y
    lmgym rm train --output runs/rm-review --data pairs.jsonl --env lmgym/PositiveReview-v1 --resume

Every :class:`~lmgym.agents.rm.train.RMConfig` field is a flag. ``--model`` is ``default`` (a small GPT-2 for the
env's tokenizer), ``default-seq2seq`` (a small T5 classifier for it), or a local folder / hub id of a causal LM, a
seq2seq LM (T5, BART: its encoder-decoder gets a scalar head) or a classifier; ``--env`` (with ``--env-kwargs``)
gives a default model its tokenizer and every model the reference completions that normalise its rewards. The
model in ``<output>/model`` is a reward for any env, causal or seq2seq alike:
``gym.make(ENV, scorer=lmgym.make_scorer("reward_model", model="runs/rm-review/model"))``.
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
    train = sub.add_parser("train", help="train a reward model on preference pairs",
                           description="Train a reward model (a causal or seq2seq transformer with a scalar head) "
                                       "on preference pairs with the Bradley-Terry loss.")
    add_dataclass_flags(train, RMConfig)
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
