"""Where a benchmark number came from: the code's commit and the machine it ran on.

``lmgym bench``, ``lmgym speed`` and ``lmgym sweep`` store both with every result, so a number in
a leaderboard can be traced back to its code and compared only with numbers from a like machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_commit(root: str | os.PathLike = REPO_ROOT) -> tuple[str | None, bool | None]:
    """``(git rev-parse HEAD, whether tracked files have uncommitted changes)``; ``(None, None)`` outside git."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: Any = "cpu") -> dict[str, Any]:
    """This machine: CPU model, cores, platform, library versions, torch threads and the device.

    Args:
        device: the device the run uses (``"cpu"``, ``"cuda"``, a ``torch.device``); on CUDA the
            GPU's name is added as ``gpu``.

    Returns:
        ``cpu``, ``cores``, ``python``, ``platform``, ``device`` (as given, a string), ``torch`` and
        ``transformers`` (versions, ``None`` when not installed), ``threads`` (torch threads) and,
        on CUDA, ``gpu``.
    """
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "torch": None,
        "transformers": None,
    }
    try:
        import torch
    except ImportError:
        return info
    info["torch"], info["threads"] = torch.__version__, torch.get_num_threads()
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info
