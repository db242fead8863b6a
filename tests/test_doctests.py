"""Run the ``>>>`` examples in env docstrings and library modules (docs that execute)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lmgym
import lmgym.envs


def modules_with_examples() -> list[str]:
    names = []
    for package in (lmgym, lmgym.envs):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.startswith("lmgym.agents"):
                continue  # agent modules need torch; their examples are covered by their own tests
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
