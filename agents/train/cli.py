"""``lmgym train``: SFT warm start, then token-level PPO, on any lmgym env.

    lmgym train --env lmgym/PositiveReview-v1                 # the main job (built-in defaults)
    lmgym train --env lmgym/Copy-v0 --algo ppo --iterations 50
    lmgym train --env lmgym/Translate-v0 --advantage rloo --temperature 0.5 --learning-rate 1e-4 --iterations 100
    lmgym train --env lmgym/Summarize-v0 --model ./my-model --scorer rougeL --env-kwargs max_new_tokens=30
    lmgym train --resume runs/summarize-sft+ppo-s0              # continue from the newest checkpoint
    lmgym train --env lmgym/Copy-v0 --reward-model runs/rm/model --label-every 5 --labels labels.jsonl  # people label
    accelerate launch --multi_gpu --num_processes 2 -m lmgym.agents.train --env ...     # data parallel, GPUs
    torchrun --nproc_per_node 2 -m lmgym.agents.train --env lmgym/Copy-v0               # data parallel, CPUs (gloo)

(``accelerate.Accelerator`` picks the process group up from ``torchrun``; ``accelerate launch --cpu``
starts several CPU processes only through mpirun.)

Every :class:`TrainConfig` field is a flag (``--sft-steps 200``, ``--no-whiten-advantages``); ``--help``
lists them with their docs. From Python: ``train(TrainConfig(env="lmgym/Copy-v0"))`` returns a dict of
results (see :func:`train`). A run folder ``runs/<name>/`` gets ``config.json``, ``metrics.jsonl``,
``tensorboard/``, ``reference/`` (the policy PPO starts from, i.e. the SFT model), ``checkpoints/``,
``policy/`` (the final policy; loads in plain transformers), ``results.md``/``results.json`` (the
before/after table) and ``learning_curve.png``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from lmgym.agents.train.config import ALGOS, TrainConfig, saved_config
from lmgym.errors import LmgymError
from lmgym.flags import add_dataclass_flags, given_flags


def build_parser() -> argparse.ArgumentParser:
    """An argparse parser with one flag per :class:`TrainConfig` field; unset flags stay absent."""
    parser = argparse.ArgumentParser(prog="lmgym train", description=__doc__.split("\n\n")[0])
    add_dataclass_flags(parser, TrainConfig, choices={"algo": ALGOS})
    return parser


def config_from_args(argv: Sequence[str]) -> TrainConfig:
    """Parse CLI flags into a :class:`TrainConfig`; with ``--resume`` the saved config is the base."""
    given = given_flags(build_parser(), TrainConfig, argv)
    base: dict[str, Any] = saved_config(given["resume"]) if given.get("resume") else {}
    known = set(TrainConfig.__dataclass_fields__)
    return TrainConfig(**{k: v for k, v in {**base, **given}.items() if k in known})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym train`` (and ``python -m lmgym.agents.train``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config = config_from_args(argv)
        from lmgym.agents.train.run import train

        results = train(config)
    except LmgymError as exc:
        print(f"lmgym train: error: {exc}", file=sys.stderr)
        return 2
    if results.get("is_main_process", True):
        print(results["table"])
        print(f"Run folder: {results['run_dir']}  ({results['wall_time_s']:.0f} s)")
    return 0
