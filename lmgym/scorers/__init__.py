"""Pluggable scorers: the batched contract, the registry and the built-in scorers.

See :mod:`lmgym.scorers.base` for the contract. Built-in scorers are registered here by
``"module:Class"`` strings, so nothing heavy is imported until a scorer is made.
"""

from lmgym.scorers.base import (
    CallableScorer,
    Scorer,
    WeightedSum,
    checked_score,
    make_scorer,
    register_scorer,
    score_with_details,
    scorer_names,
)

# Built-in scorers: name -> "module:Class". One flat list.
register_scorer("exact_match", "lmgym.scorers.match:ExactMatch")
register_scorer("token_accuracy", "lmgym.scorers.match:TokenAccuracy")
register_scorer("token_f1", "lmgym.scorers.match:TokenF1")

__all__ = [
    "CallableScorer",
    "Scorer",
    "WeightedSum",
    "checked_score",
    "make_scorer",
    "register_scorer",
    "score_with_details",
    "scorer_names",
]
