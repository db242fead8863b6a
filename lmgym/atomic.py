"""Atomic writes: a file or folder appears at its path complete, or not at all.

Everything is first written to ``<path>.tmp`` next to the target and then renamed onto it, so a
process killed mid-write leaves the previous version (or nothing) at ``path``, never half of one.
Readers that list a folder by extension (``results/*.json``) never see the temporary, whose name
ends in ``.tmp``.

    write_atomic("results/run.json", json.dumps(record))
    with atomic_path("curves/copy.png") as tmp:       # any writer that takes a path
        fig.savefig(tmp, format="png")
    with atomic_path("run/policy") as tmp:            # a folder: the old one is swapped out
        model.save_pretrained(tmp)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from typing import Any


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def replace_path(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the finished file or folder ``tmp`` onto ``path``.

    A file at ``path`` is replaced in one rename. A folder cannot be (``os.replace`` refuses a
    non-empty one), so it is renamed aside to ``<path>.old`` first and deleted after the swap.
    """
    target = os.fspath(path)
    if os.path.isdir(target) and not os.path.islink(target):
        old = target + ".old"
        _remove(old)
        os.replace(target, old)
        os.replace(tmp, target)
        _remove(old)
    else:
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    The block writes one file or one folder at the yielded path (see :func:`replace_path`). When
    the block raises, the temporary is deleted and ``path`` is left as it was.
    """
    tmp = os.fspath(path) + ".tmp"
    _remove(tmp)  # left by an earlier process that was killed mid-write
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    replace_path(tmp, path)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text or bytes) to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    """Write ``records`` as JSON lines (UTF-8 text kept as is), atomically."""
    write_atomic(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
