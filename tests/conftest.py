"""Shared test settings: small thread counts (CI machines have 2 cores) and env id lists."""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:  # torch is an extra; tests that need it import it themselves
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
