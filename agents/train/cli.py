"""``lmgym train``: SFT warm start, then token-level PPO, on any lmgym env.

    lmgym train --env lmgym/Summarize-v0                      # the main job (built-in defaults)
    lmgym train --env lmgym/Copy-v0 --algo ppo --iterations 50
    lmgym train --env lmgym/Translate-v0 --advantage rloo --temperature 0.5 --learning-rate 1e-4 --iterations 100
    lmgym train --env lmgym/Summarize-v0 --model ./my-model --scorer rougeL --env-kwargs max_new_tokens=30
    lmgym train --resume runs/summarize-sft+ppo-s0              # continue from the newest checkpoint
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
import ast
import dataclasses
import inspect
import itertools
import json
import sys
import textwrap
import typing
from collections.abc import Sequence
from typing import Any

from lmgym.agents.train.config import ALGOS, TrainConfig, saved_config
from lmgym.errors import ConfigError, LmgymError

# ---- CLI generated from the dataclass --------------------------------------------------------------


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each dataclass field (read from the source, CleanRL style)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_kwargs(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` or one JSON object string -> dict (values parsed as JSON when they are)."""
    if len(items) == 1 and items[0].lstrip().startswith("{"):
        value = _parse_value(items[0])
        if not isinstance(value, dict):
            raise ConfigError(f"--env-kwargs got invalid JSON {items[0]!r}.")
        return value
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env-kwargs items must look like KEY=VALUE; got {item!r}.")
        out[key] = _parse_value(value)
    return out


def _optional(kind: type) -> Any:
    def convert(text: str) -> Any:
        return None if text.lower() in ("none", "null") else kind(text)

    convert.__name__ = kind.__name__
    return convert


def build_parser() -> argparse.ArgumentParser:
    """An argparse parser with one flag per :class:`TrainConfig` field; unset flags stay absent."""
    parser = argparse.ArgumentParser(prog="lmgym train", description=__doc__.split("\n\n")[0])
    hints = typing.get_type_hints(TrainConfig)
    docs = field_docs(TrainConfig)
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if optional else hint
        help_text = f"{docs.get(f.name, '')} (default: {getattr(defaults, f.name)!r})".replace("%", "%%")
        if base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        elif typing.get_origin(base) is dict or base is dict:
            parser.add_argument(flag, nargs="*", metavar="KEY=VALUE", default=argparse.SUPPRESS, help=help_text)
        else:
            kind = base if base in (int, float, str) else str
            parser.add_argument(flag, type=_optional(kind) if optional else kind, default=argparse.SUPPRESS,
                                help=help_text, choices=ALGOS if f.name == "algo" else None)
    return parser


def config_from_args(argv: Sequence[str]) -> TrainConfig:
    """Parse CLI flags into a :class:`TrainConfig`; with ``--resume`` the saved config is the base."""
    given = vars(build_parser().parse_args(list(argv)))
    if "env_kwargs" in given:
        given["env_kwargs"] = parse_kwargs(given["env_kwargs"])
    base: dict[str, Any] = {}
    if given.get("resume"):
        base = saved_config(given["resume"])
    known = {f.name for f in dataclasses.fields(TrainConfig)}
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
