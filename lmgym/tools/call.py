"""Calling a user's Python tool safely: a time limit, an output cap, and errors turned into text.

A tool is any callable that takes the text a language model wrote between ``<call>`` and ``</call>``
and returns something printable. Model output is adversarial by accident, and user tools are code the
env does not control, so :meth:`Tool.run` never raises and never blocks for longer than ``timeout``:

- an exception becomes ``"error: <ExceptionType>: <message>"``;
- a call still running after ``timeout`` seconds becomes ``"error: timed out"`` (the call runs
  in a daemon thread, which Python cannot stop: a tool that loops forever keeps that thread busy, so make
  long-running tools check a deadline themselves);
- the result is converted with ``str`` and cut to ``max_chars`` characters (in the same thread, under the
  same time limit, so a tool that returns megabytes costs one slice).

>>> Tool("upper", str.upper).run("abc")
'ABC'
>>> Tool("div", lambda s: 1 / int(s)).run("0")
'error: ZeroDivisionError: division by zero'
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmgym.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Tool:
    """A named tool: ``fn(text) -> Any``, called with a time limit and an output cap.

    Attributes:
        name: what the model writes to pick this tool when an env has several (one word).
        fn: the callable; its result is shown to the model as ``str(result)``.
        timeout: seconds a call may take (``None``: called inline with no limit, for tools that bound
            their own cost, such as :func:`lmgym.tools.arith.calculate`).
        max_chars: the longest result shown to the model, in characters.
    """

    name: str
    fn: Callable[[str], Any]
    timeout: float | None = 1.0
    max_chars: int = 200

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(f"A tool name is one word of letters, digits, '_', '.', '-'; got {self.name!r}.")
        if not callable(self.fn):
            raise ConfigError(f"Tool {self.name!r}: fn must be callable (text -> result); got {self.fn!r}.")
        if self.timeout is not None and not (isinstance(self.timeout, (int, float)) and math.isfinite(self.timeout)
                                             and self.timeout > 0):
            raise ConfigError(f"Tool {self.name!r}: timeout must be a positive number of seconds or None; "
                              f"got {self.timeout!r}.")
        if isinstance(self.max_chars, bool) or not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise ConfigError(f"Tool {self.name!r}: max_chars must be a positive int; got {self.max_chars!r}.")

    def _call(self, text: str) -> str:
        try:
            return str(self.fn(text))[: self.max_chars]
        except Exception as exc:  # a user's tool may raise anything; the model sees what went wrong
            return f"error: {type(exc).__name__}: {exc}"[: self.max_chars]

    def run(self, text: str) -> str:
        """The tool's answer to ``text`` as the model will see it; never raises, never blocks past ``timeout``."""
        if self.timeout is None:
            return self._call(text)
        box: list[str] = []
        worker = threading.Thread(target=lambda: box.append(self._call(text)), daemon=True,
                                  name=f"lmgym-tool-{self.name}")
        worker.start()
        worker.join(self.timeout)
        return box[0] if box else "error: timed out"


def as_tools(tools: Any, timeout: float | None = 1.0, max_chars: int = 200) -> dict[str, Tool]:
    """``{name: Tool}`` from a mapping of names to callables or :class:`Tool` objects, or a list of tools.

    Callables get ``timeout`` and ``max_chars``; :class:`Tool` objects keep their own.

    Raises:
        ConfigError: no tools, a bad name, a non-callable, or two tools with one name.
    """
    if isinstance(tools, dict):
        items = [t if isinstance(t, Tool) and t.name == name else
                 Tool(name, t.fn if isinstance(t, Tool) else t, timeout, max_chars) for name, t in tools.items()]
    elif isinstance(tools, (list, tuple)):
        if not all(isinstance(t, Tool) for t in tools):
            raise ConfigError("A list of tools must hold Tool objects; use a dict {name: callable} for functions.")
        items = list(tools)
    else:
        raise ConfigError(f"tools must be a dict {{name: callable}} or a list of Tool objects; got {tools!r}.")
    if not items:
        raise ConfigError("Give at least one tool, e.g. tools={'calculator': lmgym.tools.arith.calculate}.")
    out: dict[str, Tool] = {}
    for tool in items:
        if tool.name in out:
            raise ConfigError(f"Two tools are named {tool.name!r}; tool names must be unique.")
        out[tool.name] = tool
    return out
