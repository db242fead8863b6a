"""Stable-Baselines3 on lmgym envs (needs ``pip install lmgym[sb3]``).

- :mod:`~lmgym.agents.sb3.env`: SB3 ``VecEnv`` adapters (:func:`make_sb3_env`), action masks;
- :mod:`~lmgym.agents.sb3.model`: the token features extractor, :func:`make_sb3_model` with lmgym-sized
  defaults, and callbacks (lmgym metrics, held-out learning curve).

Both are re-exported here: ``from lmgym.agents.sb3 import make_sb3_env, make_sb3_model``.
"""

from lmgym.agents.sb3.env import (
    HeldOutEvaluator,
    LmgymVecEnv,
    TokenActionMasker,
    TokenActionMaskWrapper,
    evaluate_policy_scores,
    make_native_vec_env,
    make_sb3_env,
    unbatch_infos,
    vec_env_speed,
)
from lmgym.agents.sb3.model import (
    SB3_ALGOS,
    SB3_DEFAULTS,
    EvalScoreCallback,
    LmgymMetricsCallback,
    TokenFeaturesExtractor,
    make_sb3_model,
    masked_predict,
    token_policy_kwargs,
)

__all__ = [
    "SB3_ALGOS",
    "SB3_DEFAULTS",
    "EvalScoreCallback",
    "HeldOutEvaluator",
    "LmgymMetricsCallback",
    "LmgymVecEnv",
    "TokenActionMaskWrapper",
    "TokenActionMasker",
    "TokenFeaturesExtractor",
    "evaluate_policy_scores",
    "make_native_vec_env",
    "make_sb3_env",
    "make_sb3_model",
    "masked_predict",
    "token_policy_kwargs",
    "unbatch_infos",
    "vec_env_speed",
]
