"""Tools that tool-use envs call: deterministic, torch-free functions that take the text a language model
wrote between ``<call>`` and ``</call>`` and return the text the env appends (a result or an ``error: ...``
line), bounded in time and memory whatever the model writes. ``lmgym.tools.arith`` is the calculator.
"""
