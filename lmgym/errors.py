"""Typed errors raised by lmgym.

Every error says what went wrong *and* how to fix it. Each class also derives from the
closest built-in exception (``TypeError``, ``ValueError``, ...) so generic handlers still work.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import gymnasium.error


class LmgymError(Exception):
    """Base class of every lmgym error."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return a ``" Did you mean 'x'?"`` suffix for the closest known name, or ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


class UnknownEnvKwargError(LmgymError, TypeError):
    """An env was given a keyword argument it does not take."""

    def __init__(self, env_name: str, unknown: Iterable[str], valid: Iterable[str]) -> None:
        valid = sorted(valid)
        parts = []
        for key in sorted(unknown):
            parts.append(f"{key!r}.{did_you_mean(key, valid)}")
        super().__init__(
            f"{env_name} got unknown keyword argument(s): {' '.join(parts)} "
            f"Valid keyword arguments: {', '.join(valid)}."
        )


class InvalidActionError(LmgymError, ValueError):
    """An action is not a token id of the env's vocabulary (bad value, dtype or shape)."""


class ResetNeededError(LmgymError, gymnasium.error.ResetNeeded):
    """``step`` was called before ``reset`` or after the episode ended."""


class UnknownScorerError(LmgymError, ValueError):
    """A scorer name is not registered."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        super().__init__(
            f"Unknown scorer {name!r}.{did_you_mean(name, known)} Known scorers: {', '.join(known)}. "
            "Register your own with lmgym.register_scorer(name, factory) or pass a callable."
        )


class ScorerError(LmgymError, RuntimeError):
    """A scorer raised, returned non-finite values or the wrong number of values."""


class TaskError(LmgymError, ValueError):
    """A task or dataset is malformed (missing columns, empty split, unknown preset...)."""


class TokenizerError(LmgymError, ValueError):
    """A tokenizer cannot be built or loaded, or text tokenizes to nothing."""


class MissingDependencyError(LmgymError, ImportError):
    """An optional dependency is missing; the message names the ``pip install`` that fixes it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the optional package {package!r}. Install it with: pip install 'lmgym[{extra}]'"
        )


class CheckpointError(LmgymError, ValueError):
    """A checkpoint is missing, corrupt or does not match the model/config being resumed."""


class ConfigError(LmgymError, ValueError):
    """A training or benchmark configuration value is invalid."""
