"""Checks of user-given numbers: one place for the type, the range and a message that names the fix.

Env kwargs, :class:`~lmgym.agents.train.TrainConfig`, ``lmgym bench`` and ``lmgym eval`` options all
go through these, so a bad value fails the same way everywhere, before any work starts::

    >>> check_int("max_new_tokens", 8, minimum=1)
    8
    >>> check_int("max_new_tokens", 0, minimum=1)
    Traceback (most recent call last):
    ...
    lmgym.errors.ConfigError: max_new_tokens must be an integer >= 1; got 0.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from lmgym.errors import ConfigError

MAX_TOKENS = 1 << 16
"""Upper bound of token limits (``max_new_tokens``, ``max_prompt_tokens``): the arrays are ``N x limit``."""


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f">= {minimum}"
    if maximum is not None:
        return f"<= {maximum}"
    return ""


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
    hint: str = "",
    error: type[Exception] = ConfigError,
) -> Any:
    """``value`` as an ``int`` if it is an integer (not a bool) within ``[minimum, maximum]``.

    Args:
        name: the setting's name, as the user wrote it.
        value: the value to check; ``None`` passes through when ``optional``.
        minimum, maximum: inclusive bounds (``None``: unbounded).
        optional: accept ``None``.
        hint: appended to the message (how to fix it).
        error: the exception class raised.

    Raises:
        ``error`` (a :class:`~lmgym.errors.ConfigError` by default) naming the setting, the range and the value.
    """
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        value = int(value)
        ok = (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        what = f"an integer {_bounds(minimum, maximum)}".rstrip() + (" or None" if optional else "")
        raise error(f"{name} must be {what}; got {value!r}.{' ' + hint if hint else ''}")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    optional: bool = False,
    hint: str = "",
    error: type[Exception] = ConfigError,
) -> Any:
    """``value`` as a finite ``float`` within the bounds (``exclusive_minimum``: strictly above ``minimum``).

    Raises:
        ``error`` naming the setting, the range and the value (NaN and infinities never pass).
    """
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        value = float(value)
        low_ok = minimum is None or (value > minimum if exclusive_minimum else value >= minimum)
        ok = low_ok and (maximum is None or value <= maximum)
    if not ok:
        bounds = _bounds(minimum, maximum)
        if exclusive_minimum and minimum is not None:
            bounds = f"in ({minimum}, {maximum}]" if maximum is not None else f"> {minimum}"
        what = f"a finite number {bounds}".rstrip() + (" or None" if optional else "")
        raise error(f"{name} must be {what}; got {value!r}.{' ' + hint if hint else ''}")
    return value


def make_checked_env(env_id: str, *, num_envs: int | None = None, **kwargs: Any) -> Any:
    """``gym.make(env_id, **kwargs)``, or the native vector env of ``num_envs`` slots, with bad input as one error.

    Raises:
        ConfigError: an unknown env id (with ``lmgym list`` as the fix) or keyword arguments the env rejects
            (a wrong type or value): the message names the env and the arguments. Other
            :class:`~lmgym.errors.LmgymError` subclasses pass through unchanged.
    """
    import gymnasium as gym

    from lmgym.errors import LmgymError

    try:
        if num_envs is None:
            return gym.make(env_id, **kwargs)
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    except LmgymError:
        raise
    except gym.error.Error as exc:
        raise ConfigError(f"Cannot make env {env_id!r}: {exc} (see `lmgym list`).") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no arguments"
        raise ConfigError(f"{env_id} rejected its arguments ({shown}): {exc}") from exc


__all__ = ["MAX_TOKENS", "check_float", "check_int", "make_checked_env"]
