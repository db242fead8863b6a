"""Benchmarks: ``lmgym bench`` (agents x envs x seeds -> leaderboards) and ``lmgym speed``.

- :mod:`~lmgym.agents.bench.grid`: presets, the grid runner and the ``lmgym bench`` command;
- :mod:`~lmgym.agents.bench.agents`: the registry of agents the grid can run;
- :mod:`~lmgym.agents.bench.speed`: the rollout-speed benchmark (``lmgym speed``);
- :mod:`~lmgym.agents.bench.speed_report`: its Markdown table and result files;
- :mod:`~lmgym.agents.bench.provenance`: the commit and machine stored with every result.
"""
