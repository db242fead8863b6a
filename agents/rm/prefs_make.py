"""``lmgym prefs make``: preference pairs for any env, labelled by a simulated annotator with a known error rate.

::

    lmgym prefs make lmgym/PositiveReview-v1 --output pairs.jsonl                  # 2 SFT samples + demonstrator
    lmgym prefs make lmgym/Summarize-v1 --writers sft sft lead-2 --noise 0.2 --prompts 500 --output s.jsonl

Each writer completes the first ``--prompts`` train prompts through the env (as ``lmgym logs make``: baseline
names, ``sft`` = a policy SFT-trained on the env's demonstrations and *sampled*, or policy folders). For every
prompt, every two writers' completions form a pair; the annotator prefers the one with the higher true reward
(the env's scorer) and, with probability ``--noise``, picks the other. Equal rewards are no information and make
no pair. The whole RLHF pipeline then runs with no network and no people.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from collections.abc import Sequence
from typing import Any

from lmgym.agents.offline.make_logs import add_writer_flags
from lmgym.errors import ConfigError, LmgymError
from lmgym.flags import parse_kwargs
from lmgym.prefs import PreferencePair, write_pairs
from lmgym.validation import check_float

DEFAULT_WRITERS = ("sft", "sft", "demonstrator")


def make_pairs(env_id: str, writers: Sequence[str] = DEFAULT_WRITERS, prompts: int = 1000, noise: float = 0.1,
               seed: int = 0, sft_steps: int = 300, temperature: float = 1.0,
               **env_kwargs: Any) -> tuple[list[PreferencePair], dict[str, float]]:
    """Pairs and the annotator's record: ``{"pairs", "flipped", "agreement"}`` (agreement with the true reward).

    Raises:
        ConfigError: fewer than two writers, a noise outside [0, 0.5), or a bad writer/setting.
    """
    from lmgym.agents.offline.make_logs import make_logs

    check_float("noise", noise, minimum=0, maximum=0.5)
    if noise >= 0.5:
        raise ConfigError(f"--noise must be below 0.5 (0.5 is a coin flip); got {noise}.")
    if len(writers) < 2:
        raise ConfigError("Give at least two --writers: a pair compares two completions.")
    samples = make_logs(env_id, writers, prompts=prompts, seed=seed, sft_steps=sft_steps, temperature=temperature,
                        **env_kwargs)
    by_prompt: dict[int, list[Any]] = {}
    for s in samples:
        by_prompt.setdefault(int(s.example_index), []).append(s)
    rng = random.Random(seed)
    pairs, flipped = [], 0
    for index in sorted(by_prompt):
        for a, b in itertools.combinations(by_prompt[index], 2):
            if a.reward == b.reward or a.completion == b.completion:
                continue
            better, worse = (a, b) if a.reward > b.reward else (b, a)
            if rng.random() < noise:
                better, worse = worse, better
                flipped += 1
            pairs.append(PreferencePair(a.prompt, better.completion, worse.completion,
                                        source=f"scorer+noise({noise:g})"))
    if not pairs:
        raise ConfigError("No pair had two different rewards; use writers of different quality or more prompts.")
    return pairs, {"pairs": len(pairs), "flipped": flipped, "agreement": 1 - flipped / len(pairs)}


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym prefs`` argument parser (one subcommand: ``make``)."""
    parser = argparse.ArgumentParser(prog="lmgym prefs", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="write preference pairs for an env")
    add_writer_flags(make, "--writers", DEFAULT_WRITERS)
    make.add_argument("--noise", type=float, default=0.1, help="the annotator's error rate (default 0.1)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym prefs``; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    import gymnasium.error

    try:
        pairs, record = make_pairs(args.env, args.writers, args.prompts, args.noise, args.seed, args.sft_steps,
                                   args.temperature, **parse_kwargs(args.env_kwargs or []))
        write_pairs(args.output, pairs)
    except (LmgymError, gymnasium.error.Error) as exc:
        print(f"lmgym prefs: error: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {record['pairs']} pairs to {args.output} (annotator flipped {record['flipped']}, agreement with "
          f"the true reward {record['agreement']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
