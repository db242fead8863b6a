"""PPO checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a folder ``run_dir/checkpoints/iter_000010/`` holding

- ``policy.safetensors``: every parameter of the policy (LM, LoRA adapters if any, value head);
- ``optimizer.pt``: the optimizer state (``torch.save`` of tensors and numbers only);
- ``rng.pt``: the torch / CUDA / NumPy / Python RNG states;
- ``state.json``: iteration, KL-controller state, the training config, the SHA-256 of every
  file above and of the run's ``reference/`` files (so a damaged file is caught before it reaches
  torch), and ``state_sha256``, the SHA-256 of ``state.json``'s own content without that field.
  Every value is checked on reading: nothing is loaded or changed from a checkpoint that fails.

The folder is first written as ``.tmp-iter_000010`` and renamed into place, so a process killed
mid-save leaves the previous checkpoints intact and at most the iteration in flight is lost.
Loading problems (missing, truncated or edited files, a checkpoint of another model) raise
:class:`~lmgym.errors.CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
from typing import Any

import numpy as np
import torch

from lmgym.atomic import replace_path
from lmgym.errors import CheckpointError

FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^iter_(\d+)$")
FILES = ("policy.safetensors", "optimizer.pt", "rng.pt")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory fds)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def rng_state() -> dict[str, Any]:
    """All global RNG states, as tensors and plain numbers (loadable with ``weights_only=True``)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_py = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.as_tensor(key.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss_py},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s output."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["key"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_name(iteration: int) -> str:
    """Folder name of the checkpoint taken after ``iteration``."""
    return f"iter_{iteration:06d}"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, str]]:
    """``(iteration, path)`` of the complete checkpoints of a run, oldest first."""
    root = os.path.join(os.fspath(run_dir), CHECKPOINT_DIR)
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        match = _NAME.match(name)
        if match and os.path.isfile(os.path.join(root, name, "state.json")):
            found.append((int(match.group(1)), os.path.join(root, name)))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> str | None:
    """Path of the newest checkpoint of a run, or ``None``."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def save_checkpoint(
    run_dir: str | os.PathLike,
    *,
    iteration: int,
    policy: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    kl_controller: Any = None,
    config: dict[str, Any],
    extra: dict[str, Any] | None = None,
    keep: int | None = 2,
) -> str:
    """Write the checkpoint after ``iteration`` atomically and prune old ones.

    Args:
        run_dir: the run folder (checkpoints go to ``run_dir/checkpoints``).
        iteration: PPO iterations completed.
        policy: the *unwrapped* policy module.
        optimizer: its optimizer.
        kl_controller: an object with ``state_dict()`` (``None``: the run has no KL control, e.g. ILQL).
        config: the training config as a JSON-able dict.
        extra: more JSON-able state (e.g. counters).
        keep: keep this many newest checkpoints (``None``: all).

    Returns:
        The checkpoint folder.
    """
    from safetensors.torch import save_model

    root = os.path.join(os.fspath(run_dir), CHECKPOINT_DIR)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, checkpoint_name(iteration))
    tmp = os.path.join(root, ".tmp-" + checkpoint_name(iteration))
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_model(policy, os.path.join(tmp, "policy.safetensors"))
    torch.save(optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"))
    torch.save(rng_state(), os.path.join(tmp, "rng.pt"))
    state = {
        "format_version": FORMAT_VERSION,
        "iteration": int(iteration),
        "kl_controller": None if kl_controller is None else kl_controller.state_dict(),
        "config": config,
        "extra": extra or {},
        "parameters": {name: list(p.shape) for name, p in policy.state_dict().items()},
        "sha256": {name: _sha256(os.path.join(tmp, name)) for name in FILES},
        "reference_sha256": _reference_hashes(os.fspath(run_dir)),
    }
    state["state_sha256"] = _state_hash(state)
    with open(os.path.join(tmp, "state.json"), "w") as f:
        json.dump(state, f, indent=1)
    for name in (*FILES, "state.json"):
        with open(os.path.join(tmp, name), "rb") as f:
            os.fsync(f.fileno())
    _fsync_dir(tmp)
    replace_path(tmp, final)  # re-saving an iteration (e.g. after a resume) swaps the old folder out
    _fsync_dir(root)
    if keep:
        for _, old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read and verify a checkpoint's ``state.json`` and file hashes.

    Raises:
        CheckpointError: when the folder, a file or a hash is missing or wrong.
    """
    path = os.fspath(path)
    state_path = os.path.join(path, "state.json")
    if not os.path.isfile(state_path):
        raise CheckpointError(f"{path!r} is not a checkpoint (no state.json). Pass a run or checkpoint folder.")
    try:
        with open(state_path) as f:
            state = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Checkpoint {path!r} has an unreadable state.json: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"Checkpoint {path!r} has a state.json that is not a JSON object.")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"Checkpoint {path!r} has format version {state.get('format_version')!r}; "
            f"this lmgym reads {FORMAT_VERSION}."
        )
    missing = [name for name in FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise CheckpointError(f"Checkpoint {path!r} is missing {', '.join(missing)}.")
    for name in FILES:
        file = os.path.join(path, name)
        if _sha256(file) != (state.get("sha256") or {}).get(name):
            raise CheckpointError(f"Checkpoint file {file!r} is corrupt (its SHA-256 does not match state.json).")
    _check_state(path, state)
    return state


def _state_hash(state: dict[str, Any]) -> str:
    """SHA-256 of a state dict's canonical JSON, without its ``state_sha256`` field."""
    body = {k: v for k, v in state.items() if k != "state_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def _reference_hashes(run_dir: str) -> dict[str, str]:
    """``{"reference/<file>": sha256}`` of the run's reference model (written once, so hashed once)."""
    folder = os.path.join(run_dir, "reference")
    hashes = {}
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            file = os.path.join(folder, name)
            if os.path.isfile(file):
                st = os.stat(file)
                key = (file, st.st_size, st.st_mtime_ns)
                if key not in _HASH_CACHE:
                    _HASH_CACHE[key] = _sha256(file)
                hashes[f"reference/{name}"] = _HASH_CACHE[key]
    return hashes


def _check_state(path: str, state: dict[str, Any]) -> None:
    """Every value of a checkpoint's state is of the right type and range, and matches the files around it."""

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"Checkpoint {path!r} has a damaged state.json: {what}. Resume from another "
                               "checkpoint (pass its folder to --resume) or start the run again.")

    if "state_sha256" in state and state["state_sha256"] != _state_hash(state):
        raise bad("its content does not match its SHA-256 (it was edited or damaged)")
    iteration = state.get("iteration")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise bad(f"iteration must be an int >= 0, got {iteration!r}")
    match = _NAME.match(os.path.basename(os.path.normpath(path)))
    if match and int(match.group(1)) != iteration:
        raise bad(f"iteration {iteration} does not match the folder name")
    kl = state.get("kl_controller")
    if kl is not None and (
            not isinstance(kl, dict) or not isinstance(kl.get("value"), (int, float)) or isinstance(kl["value"], bool)
            or not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in kl.values())):
        raise bad(f"kl_controller must map names to finite numbers >= 0 with a 'value', got {kl!r}")
    for key in ("config", "extra", "parameters", "sha256"):
        if not isinstance(state.get(key), dict):
            raise bad(f"{key} must be a JSON object, got {state.get(key)!r}")
    episodes = state["extra"].get("episodes", 0)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 0:
        raise bad(f"extra.episodes must be an int >= 0, got {episodes!r}")
    if not all(isinstance(s, list) and all(isinstance(d, int) and d >= 0 for d in s)
               for s in state["parameters"].values()):
        raise bad("parameters must map names to shapes (lists of ints)")
    run_dir = os.path.dirname(os.path.dirname(os.path.normpath(path)))
    for name, digest in (state.get("reference_sha256") or {}).items():
        file = os.path.join(run_dir, name)
        if not os.path.isfile(file) or _sha256(file) != digest:
            raise CheckpointError(f"The run's {name} is missing or damaged (its SHA-256 does not match checkpoint "
                                  f"{path!r}); the KL reference cannot be restored. Start the run again.")


def load_checkpoint(
    path: str | os.PathLike,
    *,
    policy: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    kl_controller: Any = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint into ``policy`` (and optimizer, KL controller, RNGs); returns its state dict.

    Raises:
        CheckpointError: for a corrupt checkpoint or one whose parameters do not match ``policy``.
    """
    from safetensors.torch import load_model

    path = os.fspath(path)
    state = read_checkpoint_state(path)
    expected = {name: list(p.shape) for name, p in policy.state_dict().items()}
    saved = state.get("parameters", {})
    if saved != expected:
        missing = sorted(set(expected) - set(saved))[:3]
        unexpected = sorted(set(saved) - set(expected))[:3]
        shapes = sorted(k for k in set(saved) & set(expected) if saved[k] != expected[k])[:3]
        raise CheckpointError(
            f"Checkpoint {path!r} does not match this model (missing {missing}, unexpected {unexpected}, "
            f"different shapes {shapes}). Resume with the same --model/size/LoRA settings it was saved with."
        )
    device = next(policy.parameters()).device
    try:
        load_model(policy, os.path.join(path, "policy.safetensors"), strict=True, device=str(device))
    except Exception as exc:
        raise CheckpointError(f"Could not load the policy weights of {path!r}: {exc}") from exc
    if optimizer is not None:
        try:
            optimizer.load_state_dict(torch.load(os.path.join(path, "optimizer.pt"), map_location=device,
                                                 weights_only=True))
        except Exception as exc:
            raise CheckpointError(f"Could not load the optimizer state of {path!r}: {exc}") from exc
    if kl_controller is not None:
        if state["kl_controller"] is None:
            raise CheckpointError(f"Checkpoint {path!r} has no KL-controller state (it is not a PPO run's).")
        kl_controller.load_state_dict(state["kl_controller"])
    if restore_rng:
        try:
            set_rng_state(torch.load(os.path.join(path, "rng.pt"), weights_only=True))
        except Exception as exc:
            raise CheckpointError(f"Could not restore the RNG states of {path!r}: {exc}") from exc
    return state
