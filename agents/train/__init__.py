"""Training runs: ``lmgym train`` and :func:`train`.

- :mod:`~lmgym.agents.train.config`: :class:`TrainConfig`, one field per setting;
- :mod:`~lmgym.agents.train.run`: :func:`train`, the run (set-up, warm start, PPO loop, outputs);
- :mod:`~lmgym.agents.train.evaluation`: the held-out evaluation of a policy;
- :mod:`~lmgym.agents.train.metrics`: ``metrics.jsonl``, TensorBoard, the learning curve and results table;
- :mod:`~lmgym.agents.train.cli`: the ``lmgym train`` flags (``python -m lmgym.agents.train`` runs it).

::

    from lmgym.agents.train import TrainConfig, train
    results = train(TrainConfig(env="lmgym/Copy-v0", iterations=20))
"""

from lmgym.agents.train.config import TrainConfig
from lmgym.agents.train.run import train

__all__ = ["TrainConfig", "train"]
