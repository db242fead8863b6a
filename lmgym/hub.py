"""Local folders and Hugging Face hub ids, told apart the same way for tokenizers and models.

A string names a **local path** when it exists, or when it can only be a path: it is absolute,
starts with ``.`` or ``~``, contains the OS's own separator where that is not ``/``, or has more
than one ``/``. Anything else is a **hub id** (``gpt2``, ``someorg/model``), handed to
``from_pretrained``: first with ``local_files_only=True``, so an id already in the Hugging Face
cache (``$HF_HUB_CACHE``) loads with no network at all, then (unless ``HF_HUB_OFFLINE`` is set)
with downloads allowed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def is_local_path(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names a filesystem path rather than a hub id (see the module docstring).

    >>> is_local_path("someorg/model"), is_local_path("gpt2"), is_local_path("./model"), is_local_path("a/b/c")
    (False, False, True, True)
    """
    path = os.fspath(spec)
    if os.path.exists(path) or os.path.isabs(path) or path.startswith((".", "~")):
        return True
    return (os.sep != "/" and os.sep in path) or path.count("/") > 1


def hub_offline() -> bool:
    """Whether downloads from the hub are switched off (``HF_HUB_OFFLINE=1``)."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return False
    return bool(constants.HF_HUB_OFFLINE)


def load_pretrained(load: Callable[..., T], spec: str, **kwargs: Any) -> T:
    """``load(spec, **kwargs)`` for a local folder or a hub id, trying the local cache first.

    For a hub id the first attempt passes ``local_files_only=True`` (the HF cache, no network);
    if it fails, the second goes to the hub, unless :func:`hub_offline`, in which case the first
    attempt's error is raised.
    """
    if is_local_path(spec):
        return load(spec, **kwargs)
    try:
        return load(spec, local_files_only=True, **kwargs)
    except Exception:
        if hub_offline():
            raise
    return load(spec, **kwargs)
