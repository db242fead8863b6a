"""Token-level PPO for language envs, one concept per module.

- :mod:`~lmgym.agents.ppo.policy`: the LM policy with a value head (KV-cached decoding, LoRA);
- :mod:`~lmgym.agents.ppo.reference`: the frozen reference model of the KL penalty;
- :mod:`~lmgym.agents.ppo.rollout`: episodes through the lockstep vector env, sampled with a KV cache;
- :mod:`~lmgym.agents.ppo.math`: GAE, whitening, the clipped losses, KL control (pure tensor maths);
- :mod:`~lmgym.agents.ppo.shaping`: dense rewards from score differences;
- :mod:`~lmgym.agents.ppo.sft`: the supervised warm start on references;
- :mod:`~lmgym.agents.ppo.checkpoint`: crash-safe checkpoints;
- :mod:`~lmgym.agents.ppo.trainer`: :class:`~lmgym.agents.ppo.trainer.PPOTrainer`, one iteration top to bottom;
- :mod:`~lmgym.agents.ppo.agent`: a saved policy as a step-by-step agent of one env.
"""
