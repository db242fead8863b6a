"""lmgym.agents: agents that learn on lmgym envs, one subpackage per concept.

- :mod:`lmgym.agents.ppo`: the LM policy with a value head, reference, rollout, PPO maths, SFT, checkpoints, trainer;
- :mod:`lmgym.agents.train`: :class:`~lmgym.agents.train.TrainConfig` and the run behind ``lmgym train``;
- :mod:`lmgym.agents.sb3`: Stable-Baselines3 adapters;
- :mod:`lmgym.agents.bench`: ``lmgym bench`` (the leaderboard grid) and ``lmgym speed``.

Everything here may import torch; this ``__init__`` does not, so ``import lmgym.agents`` stays
cheap. Torch-free baselines live in the core (:mod:`lmgym.baselines`). Import what you need, e.g.
``from lmgym.agents.train import TrainConfig, train``.
"""
