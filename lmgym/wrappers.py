"""Gymnasium wrappers for lmgym envs.

:class:`DenseScoreReward` turns the sparse end-of-episode score of a
:class:`~lmgym.token_env.TokenEnv` into a per-token reward that sums to the same value.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym

from lmgym.scorers import checked_score, make_scorer


class DenseScoreReward(gym.Wrapper):
    """Per-token reward shaping by score differences (potential-based, sums to the sparse score).

    After token ``t`` the text written so far, ``prefix_t``, is scored; that score is the
    potential ``Φ_t``. With ``Φ_0 = 0`` before the first token and ``Φ_T`` the env's own final
    score (``info["score"]``, which is computed on the completion without its EOS), the reward
    of step ``t`` is::

        reward_t = Φ_t - (reward_1 + ... + reward_{t-1})     # = Φ_t - Φ_{t-1}

    so the rewards of an episode add up to the sparse score ``Φ_T`` (the running sum of emitted
    rewards is used instead of ``Φ_{t-1}`` so float rounding cannot make the total drift). The
    first reward is the score of the first token alone, including whatever the scorer gives a
    near-empty text (e.g. ``ter`` or ``length``), which is why ``Φ_0`` is 0 and not
    ``score("")``. Emitting EOS right after a prefix whose score equals the final score gives a
    last reward of 0.

    Cost: one scorer call (batch of one) per step instead of one per episode. Fine for the
    string metrics; wrap a model-based scorer with ``make_scorer(..., cache=True)`` or keep it
    sparse.

    The wrapper reads only the env's public API: ``unwrapped.scorer``, ``unwrapped.decode``,
    ``unwrapped.task``, the ``response_ids``/``step`` observation, and the ``prompt``,
    ``references``, ``split``, ``example_index`` (and ``meta``, if present) reset info.
    ``info["potential"]`` reports ``Φ_t`` on every step.

    Args:
        env: an lmgym env (any wrapping of a :class:`~lmgym.token_env.TokenEnv`).
        scorer: shape with this scorer spec instead of the env's; the last reward then makes the
            total equal this scorer's value on the final completion.

    Example:
        >>> import gymnasium as gym, lmgym
        >>> from lmgym.wrappers import DenseScoreReward
        >>> env = DenseScoreReward(gym.make("lmgym/Copy-v0", length=3, vocab_size=4))
        >>> obs, info = env.reset(seed=0)
        >>> first, second, third = info["references"][0].split()
        >>> wrong = "d" if second != "d" else "a"
        >>> tok = env.unwrapped.tokenizer
        >>> rewards = [env.step(tok.convert_tokens_to_ids(w))[1] for w in [first, wrong, third, "<eos>"]]
        >>> [round(r, 4) for r in rewards], round(sum(rewards), 4)  # token_accuracy: 1/3, +0, +1/3, +0
        ([0.3333, 0.0, 0.3333, 0.0], 0.6667)
    """

    def __init__(self, env: gym.Env, scorer: Any = None) -> None:
        super().__init__(env)
        base = env.unwrapped
        for attr in ("scorer", "decode", "task"):
            if not hasattr(base, attr):
                raise TypeError(f"DenseScoreReward needs an lmgym TokenEnv; {type(base).__name__} has no {attr!r}.")
        self.own_scorer = scorer is not None
        self.scorer = make_scorer(scorer) if self.own_scorer else base.scorer
        self._prompt = ""
        self._references: list[str] = []
        self._meta: dict[str, list[Any]] = {}
        self._emitted = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._prompt = info["prompt"]
        self._references = list(info["references"])
        meta = info.get("meta")
        if meta is None:
            meta = self.env.unwrapped.task.examples(info["split"])[info["example_index"]].meta
        self._meta = {k: [v] for k, v in dict(meta).items()}
        self._emitted = 0.0
        return obs, info

    def _score(self, text: str) -> float:
        return checked_score(self.scorer, [self._prompt], [text], [self._references], **self._meta)[0]

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, sparse, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            potential = self._score(info["completion"]) if self.own_scorer else float(info["score"])
        else:
            length = int(obs["step"][0])
            potential = self._score(self.env.unwrapped.decode(obs["response_ids"][:length]))
        reward = potential - self._emitted
        self._emitted += reward
        info = dict(info)
        info["potential"] = potential
        return obs, reward, terminated, truncated, info
