"""Command-line flags from dataclasses, and the one ``KEY=VALUE`` syntax of ``--env-kwargs``.

A config dataclass documents each field with a docstring under it (CleanRL style); :func:`add_dataclass_flags`
turns every field into a flag (``sft_steps`` -> ``--sft-steps``, a ``bool`` -> ``--x/--no-x``, a ``dict`` ->
``KEY=VALUE`` items, a tuple -> several values) whose help is that docstring. ``lmgym train`` and ``lmgym speed``
are built this way; ``lmgym eval`` and ``lmgym bench`` take the same ``--env-kwargs``::

    >>> parse_kwargs(["length=3", "direction=xx-en", 'scorer={"rougeL": 1}', "tokenizer=None"])
    {'length': 3, 'direction': 'xx-en', 'scorer': {'rougeL': 1}, 'tokenizer': None}
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import json
import textwrap
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from lmgym.errors import ConfigError

ENV_KWARGS_HELP = ("env keyword arguments as KEY=VALUE items (values are JSON or Python literals, else strings), "
                   "e.g. --env-kwargs length=3 direction=xx-en")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of the dataclass ``cls`` (read from its source)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def parse_value(text: str) -> Any:
    """A flag value: JSON (``3``, ``true``, ``{"a": 1}``), else a Python literal (``None``, ``'x'``), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_kwargs(items: Sequence[str], flag: str = "--env-kwargs") -> dict[str, Any]:
    """``["a=1", "b=x"]`` (or one JSON object string) -> ``{"a": 1, "b": "x"}``, values by :func:`parse_value`.

    Raises:
        ConfigError: an item without ``=`` or a key, or a ``{...}`` item that is not a JSON object.
    """
    if len(items) == 1 and items[0].lstrip().startswith("{"):
        value = parse_value(items[0])
        if not isinstance(value, dict):
            raise ConfigError(f"{flag} got invalid JSON {items[0]!r}.")
        return value
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} items must look like key=value; got {item!r}.")
        out[key.strip()] = parse_value(value)
    return out


def add_env_kwargs_flag(parser: argparse.ArgumentParser, *aliases: str, default: Any = None) -> None:
    """``--env-kwargs KEY=VALUE ...`` (repeatable; ``aliases`` such as ``--kw`` append to the same list)."""
    parser.add_argument("--env-kwargs", *aliases, dest="env_kwargs", nargs="+", action="extend", metavar="KEY=VALUE",
                        default=default, help=ENV_KWARGS_HELP)


def _optional(kind: type) -> Any:
    def convert(text: str) -> Any:
        return None if text.lower() in ("none", "null") else kind(text)

    convert.__name__ = kind.__name__
    return convert


def add_dataclass_flags(
    parser: argparse.ArgumentParser, cls: type, choices: Mapping[str, Sequence[Any]] | None = None
) -> None:
    """One flag per field of the dataclass ``cls``; a flag not given stays out of the parsed namespace."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    choices = choices or {}
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if optional else hint
        origin = typing.get_origin(base) or base
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{docs.get(f.name, '')} (default: {default!r})".replace("%", "%%")
        common = {"default": argparse.SUPPRESS, "help": help_text}
        if base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif origin is dict:
            parser.add_argument(flag, nargs="*", metavar="KEY=VALUE", **common)
        elif origin is tuple:
            item = (typing.get_args(base) or (str,))[0]
            parser.add_argument(flag, nargs="+", type=item, choices=choices.get(f.name), **common)
        else:
            kind = base if base in (int, float, str) else str
            parser.add_argument(flag, type=_optional(kind) if optional else kind, choices=choices.get(f.name),
                                **common)


def given_flags(parser: argparse.ArgumentParser, cls: type, argv: Sequence[str]) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (``dict`` fields parsed by :func:`parse_kwargs`)."""
    given = vars(parser.parse_args(list(argv)))
    hints = typing.get_type_hints(cls)
    for name, value in given.items():
        hint = hints.get(name)
        if hint is not None and dict in (typing.get_origin(hint), hint, *map(typing.get_origin, typing.get_args(hint))):
            given[name] = parse_kwargs(value, "--" + name.replace("_", "-"))
        elif isinstance(value, list):
            given[name] = tuple(value)
    return given


__all__ = ["add_dataclass_flags", "add_env_kwargs_flag", "field_docs", "given_flags", "parse_kwargs", "parse_value"]
