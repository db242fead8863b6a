"""Every lmgym env, registered from one flat list. Entry points are strings: nothing heavy is imported.

Token limits live in the env (``max_new_tokens``) so truncation has a single source and the
truncated episode is still scored; the specs therefore set no ``max_episode_steps`` (a gymnasium
``TimeLimit`` would end episodes without a score). Pass ``max_new_tokens=N`` to change the limit.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

#: What the -v1 text envs add to -v0 (see the comment on the -v1 entries below).
V1_KWARGS: dict = {"demo_error_rate": 0.6, "lossless": True}

ENVS: list[dict] = [
    dict(id="lmgym/Copy-v0", entry_point="lmgym.envs.toy:CopyEnv",
         vector_entry_point="lmgym.envs.toy:CopyVectorEnv"),
    dict(id="lmgym/Reverse-v0", entry_point="lmgym.envs.toy:ReverseEnv",
         vector_entry_point="lmgym.envs.toy:ReverseVectorEnv"),
    dict(id="lmgym/Summarize-v0", entry_point="lmgym.envs.summarize:SummarizeEnv",
         vector_entry_point="lmgym.envs.summarize:SummarizeVectorEnv"),
    dict(id="lmgym/Translate-v0", entry_point="lmgym.envs.translate:TranslateEnv",
         vector_entry_point="lmgym.envs.translate:TranslateVectorEnv"),
    dict(id="lmgym/PositiveReview-v0", entry_point="lmgym.envs.generate:PositiveReviewEnv",
         vector_entry_point="lmgym.envs.generate:PositiveReviewVectorEnv"),
    dict(id="lmgym/Keywords-v0", entry_point="lmgym.envs.generate:KeywordsEnv",
         vector_entry_point="lmgym.envs.generate:KeywordsVectorEnv"),
    # v1: the same episodes and rewards, warm-start demonstrations from imperfect writers (see the
    # envs' Version History and lmgym.envs.demonstrations). 0.6 is lmgym.envs.demonstrations.V1_ERROR_RATE.
    # With dataset=, v1 also takes the lossless data path (byte-level BPE, text as written, max_new_tokens
    # from the references; see lmgym.envs.text_task_env); the built-in corpora ignore lossless.
    dict(id="lmgym/Summarize-v1", entry_point="lmgym.envs.summarize:SummarizeEnv",
         vector_entry_point="lmgym.envs.summarize:SummarizeVectorEnv", kwargs=dict(V1_KWARGS)),
    dict(id="lmgym/Translate-v1", entry_point="lmgym.envs.translate:TranslateEnv",
         vector_entry_point="lmgym.envs.translate:TranslateVectorEnv", kwargs=dict(V1_KWARGS)),
    dict(id="lmgym/PositiveReview-v1", entry_point="lmgym.envs.generate:PositiveReviewEnv",
         vector_entry_point="lmgym.envs.generate:PositiveReviewVectorEnv", kwargs=dict(V1_KWARGS)),
    dict(id="lmgym/Keywords-v1", entry_point="lmgym.envs.generate:KeywordsEnv",
         vector_entry_point="lmgym.envs.generate:KeywordsVectorEnv", kwargs=dict(V1_KWARGS)),
    # Tool use: the agent may call a calculator; results are env-written tokens (lmgym.tool_env).
    dict(id="lmgym/Calculator-v0", entry_point="lmgym.envs.calculator:CalculatorEnv",
         vector_entry_point="lmgym.envs.calculator:CalculatorVectorEnv"),
]


def register_envs() -> None:
    """Register every env in :data:`ENVS` (idempotent)."""
    for spec in ENVS:
        if spec["id"] not in registry:
            # order_enforce=False: the env raises its own typed ResetNeededError.
            register(**spec, order_enforce=False, max_episode_steps=None)


def env_ids() -> list[str]:
    """The ids of all lmgym envs, in registration order."""
    return [spec["id"] for spec in ENVS]
