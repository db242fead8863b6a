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
register_scorer("numeric_match", "lmgym.scorers.match:NumericMatch")
register_scorer("rouge1", "lmgym.scorers.overlap:Rouge1")
register_scorer("rouge2", "lmgym.scorers.overlap:Rouge2")
register_scorer("rougeL", "lmgym.scorers.overlap:RougeL")
register_scorer("rougeLsum", "lmgym.scorers.overlap:RougeLsum")
register_scorer("rouge", "lmgym.scorers.overlap:RougeMean")
register_scorer("bleu", "lmgym.scorers.overlap:Bleu")
register_scorer("chrf", "lmgym.scorers.overlap:Chrf")
register_scorer("ter", "lmgym.scorers.overlap:Ter")
register_scorer("sentiment", "lmgym.scorers.lexical:Sentiment")
register_scorer("keyword_coverage", "lmgym.scorers.lexical:KeywordCoverage")
register_scorer("repetition", "lmgym.scorers.lexical:Repetition")
register_scorer("length", "lmgym.scorers.lexical:Length")
register_scorer("ngram_fluency", "lmgym.scorers.fluency:NgramFluency")
register_scorer("hf_sentiment", "lmgym.scorers.models:HFSentiment")
register_scorer("embedding_similarity", "lmgym.scorers.models:EmbeddingSimilarity")
register_scorer("fluency_lm", "lmgym.scorers.models:FluencyLM")
register_scorer("perplexity", "lmgym.scorers.models:Perplexity")
register_scorer("reward_model", "lmgym.scorers.models:RewardModel")

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
