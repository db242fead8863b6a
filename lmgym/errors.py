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
    """An env was given a keyword argument it does not take.

    Build it with :meth:`for_env`; the plain one-message constructor exists because
    ``gym.make`` re-raises ``TypeError`` subclasses as ``type(e)(message)``.
    """

    @classmethod
    def for_env(cls, env_name: str, unknown: Iterable[str], valid: Iterable[str]) -> UnknownEnvKwargError:
        """The error for ``unknown`` kwargs of ``env_name``, with did-you-mean and the valid names."""
        valid = sorted(valid)
        parts = [f"{key!r}.{did_you_mean(key, valid)}" for key in sorted(unknown)]
        return cls(
            f"{env_name} got unknown keyword argument(s): {' '.join(parts)} "
            f"Valid keyword arguments: {', '.join(valid)}."
        )


class InvalidActionError(LmgymError, ValueError):
    """An action is not a token id of the env's vocabulary (bad value, dtype or shape)."""


class ResetNeededError(LmgymError, gymnasium.error.ResetNeeded):
    """``step`` was called before ``reset`` or after the episode ended."""


class UnknownScorerError(LmgymError, ValueError):
    """A scorer name is not registered."""

    def __init__(self, name: str, known: Iterable[str] | None = None) -> None:
        if known is None:  # already a full message
            super().__init__(name)
            return
        known = sorted(known)
        super().__init__(
            f"Unknown scorer {name!r}.{did_you_mean(name, known)} Known scorers: {', '.join(known)}. "
            "Register your own with lmgym.register_scorer(name, factory) or pass a callable."
        )


class ScorerError(LmgymError, RuntimeError):
    """A scorer raised, returned non-finite values or the wrong number of values."""


class TaskError(LmgymError, ValueError):
    """A task or dataset is malformed (missing columns, empty split, unknown preset...)."""


class LogsError(TaskError):
    """Reward-labelled logs are malformed: a missing column, a non-finite or missing reward, constant rewards."""


class PreferenceError(TaskError):
    """Preference pairs are malformed: a missing column, an empty prompt, a margin that is not a number."""


class TokenizerError(LmgymError, ValueError):
    """A tokenizer cannot be built or loaded, or text tokenizes to nothing."""


class MissingDependencyError(LmgymError, ImportError):
    """An optional dependency is missing; the message names the ``pip install`` that fixes it."""

    def __init__(self, package: str, extra: str, purpose: str, install: str | None = None) -> None:
        command = install or f"pip install 'lmgym[{extra}]'"
        super().__init__(f"{purpose} needs the optional package {package!r}. Install it with: {command}")


class CheckpointError(LmgymError, ValueError):
    """A checkpoint is missing, corrupt or does not match the model/config being resumed."""


class ConfigError(LmgymError, ValueError):
    """A training or benchmark configuration value is invalid."""


class ArithmeticExpressionError(LmgymError, ValueError):
    """An arithmetic expression for a calculator tool is malformed, too large or cannot be evaluated."""
