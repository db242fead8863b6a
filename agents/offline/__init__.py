"""Offline RL from reward-labelled logs, one concept per module.

- :mod:`~lmgym.agents.offline.data`: logs (:mod:`lmgym.logs`) as tensors in an env's layout;
- :mod:`~lmgym.agents.offline.ilql`: :class:`~lmgym.agents.offline.ilql.ILQLPolicy`, an LM with Q/V heads
  whose decoding is steered by ``beta * (Q - V)``;
- :mod:`~lmgym.agents.offline.ilql_loss`: ILQL's Q, expectile-V, CQL and policy losses;
- :mod:`~lmgym.agents.offline.trainer`: :class:`~lmgym.agents.offline.trainer.ILQLTrainer` (steps, resume);
- :mod:`~lmgym.agents.offline.make_logs`: ``lmgym logs make ENV``.

``lmgym train --algo ilql --data logs.jsonl`` runs ILQL; ``lmgym train --algo sft --data logs.jsonl
[--data-top-fraction 0.2]`` is SFT on all the logs (or filtered behaviour cloning) for comparison.
"""
