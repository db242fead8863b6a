"""Reward models from preferences (RLHF's first two stages), one concept per module.

- :mod:`~lmgym.agents.rm.prefs_make`: ``lmgym prefs make ENV``: pairs labelled by a simulated annotator;
- :mod:`~lmgym.agents.rm.train`: ``RMConfig`` and :func:`~lmgym.agents.rm.train.train_reward_model`
  (Bradley-Terry, held-out accuracy, calibration, checkpoints);
- :mod:`~lmgym.agents.rm.cli`: ``lmgym rm train``;
- :mod:`~lmgym.agents.rm.in_the_loop`: :class:`~lmgym.agents.rm.in_the_loop.LabelLoop`, labelling rounds between
  PPO iterations (``lmgym train --label-every``) that fine-tune the reward model and swap it in;
- :mod:`~lmgym.agents.rm.pipeline`: ``lmgym rlhf``, all the stages with a simulated annotator.

The trained folder is what the ``reward_model`` scorer loads, so PPO optimises it like any other reward.
"""
