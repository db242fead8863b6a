"""lmgym.agents: LM policies with a value head, SFT, PPO, baselines and SB3 adapters.

Everything here may import torch; this ``__init__`` does not, so ``import lmgym.agents`` stays
cheap. Import the modules you need, e.g. ``from lmgym.agents.train import TrainConfig, train``.
"""
