"""Stable-Baselines3 adapters: run stock SB3 algorithms (PPO, A2C, DQN) on every lmgym env.

Three small hooks, in SB3's own extension style:

- :class:`TokenFeaturesExtractor` — a ``BaseFeaturesExtractor`` that embeds the token ids of the
  ``Dict`` observation (prompt and response, with their masks) and encodes them with a small
  transformer (or GRU). SB3's ``preprocess_obs`` turns every ``Box`` into a float tensor; the
  extractor casts ids back to ``long`` and looks them up in an embedding, so no policy ever treats
  ids as magnitudes or one-hots a whole vocabulary.
- :func:`make_sb3_env` — an SB3 ``VecEnv`` for an lmgym env id: by default :class:`LmgymVecEnv`,
  which adapts lmgym's native batched vector env (``same_step`` autoreset, ``terminal_observation``
  in the per-env infos), or SB3's ``DummyVecEnv``/``SubprocVecEnv`` over single envs.
- :class:`LmgymMetricsCallback` — logs ``lmgym/score``, completion length and sample completions,
  and keeps a learning curve of training-episode scores.

Typical use::

    from stable_baselines3 import PPO
    from lmgym.agents.sb3 import make_sb3_env, token_policy_kwargs

    env = make_sb3_env("lmgym/Copy-v0", n_envs=8, env_kwargs={"length": 3, "vocab_size": 5})
    model = PPO("MultiInputPolicy", env, policy_kwargs=token_policy_kwargs()).learn(20_000)

:func:`make_sb3_model` does the same with lmgym-sized defaults (e.g. a DQN replay buffer that fits
in memory). :func:`evaluate_policy_scores` scores any ``obs -> actions`` function on held-out data.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor
from torch import nn

import lmgym  # noqa: F401  (registers the lmgym/... env ids)

__all__ = [
    "SB3_ALGOS",
    "LmgymMetricsCallback",
    "LmgymVecEnv",
    "TokenFeaturesExtractor",
    "evaluate_policy_scores",
    "make_native_vec_env",
    "make_sb3_env",
    "make_sb3_model",
    "token_policy_kwargs",
    "unbatch_infos",
]

SB3_ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "dqn": DQN}


# ---- features extractor ---------------------------------------------------------------------------
class TokenFeaturesExtractor(BaseFeaturesExtractor):
    """Embed an lmgym observation's token ids and encode them into one feature vector.

    The prompt (left-padded, ``P`` slots) and response (right-padded, ``R`` slots) are laid out as
    one sequence of ``P + R`` slots, as a causal LM would read them. Each slot gets a token, a
    segment (prompt/response) and a position embedding; padding slots are zeroed and masked out.
    The feature is the encoder's output at the *cursor*: the last written token (or the last
    prompt token before the first step), i.e. the position from which the next token is predicted.

    Args:
        observation_space: an lmgym ``Dict`` observation space (``prompt_ids``, ``prompt_mask``,
            ``response_ids``, ``response_mask``; ``step`` is not needed).
        embed_dim: embedding and feature size.
        n_layers: encoder layers.
        n_heads: attention heads (transformer only; must divide ``embed_dim``).
        arch: ``"transformer"`` (bidirectional encoder over the written prefix, with key padding
            mask) or ``"gru"`` (left-to-right, so the cursor only sees what precedes it).
        dropout: dropout in the transformer layers (0: RL targets are noisy enough).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        embed_dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        arch: str = "transformer",
        dropout: float = 0.0,
    ) -> None:
        missing = {"prompt_ids", "prompt_mask", "response_ids", "response_mask"} - set(observation_space.spaces)
        if missing:
            raise ValueError(f"TokenFeaturesExtractor needs an lmgym Dict observation; missing keys {sorted(missing)}.")
        if arch not in ("transformer", "gru"):
            raise ValueError(f"arch must be 'transformer' or 'gru'; got {arch!r}.")
        super().__init__(observation_space, features_dim=embed_dim)
        self.prompt_len = int(observation_space["prompt_ids"].shape[0])
        self.response_len = int(observation_space["response_ids"].shape[0])
        self.vocab_size = (
            int(max(observation_space["prompt_ids"].high.max(), observation_space["response_ids"].high.max())) + 1
        )
        self.arch = arch
        total = self.prompt_len + self.response_len
        self.token = nn.Embedding(self.vocab_size, embed_dim)
        self.segment = nn.Embedding(2, embed_dim)
        self.position = nn.Embedding(total, embed_dim)
        self.register_buffer("segment_ids", (torch.arange(total) >= self.prompt_len).long(), persistent=False)
        self.register_buffer("position_ids", torch.arange(total), persistent=False)
        self.encoder: nn.Module
        if arch == "transformer":
            layer = nn.TransformerEncoderLayer(
                embed_dim,
                n_heads,
                dim_feedforward=4 * embed_dim,
                dropout=dropout,
                batch_first=True,
                norm_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        else:
            self.encoder = nn.GRU(embed_dim, embed_dim, num_layers=n_layers, batch_first=True)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Features at the cursor, shape ``(B, embed_dim)``."""
        # preprocess_obs made every Box a float tensor; ids are exact in float32 (< 2**24), cast back.
        ids = torch.cat([observations["prompt_ids"], observations["response_ids"]], dim=1).long()  # (B, T)
        ids = ids.clamp_(0, self.vocab_size - 1)
        mask = torch.cat([observations["prompt_mask"], observations["response_mask"]], dim=1) > 0.5  # (B, T)
        written = mask[:, self.prompt_len :].sum(dim=1)  # (B,)
        cursor = (self.prompt_len - 1 + written).clamp_(max=ids.shape[1] - 1)  # (B,)
        x = self.token(ids) + self.segment(self.segment_ids) + self.position(self.position_ids)  # (B, T, C)
        x = x * mask.unsqueeze(-1)
        if self.arch == "transformer":
            h = self.encoder(x, src_key_padding_mask=~mask)  # (B, T, C)
        else:
            h, _ = self.encoder(x)  # (B, T, C)
        out = h[torch.arange(h.shape[0], device=h.device), cursor]  # (B, C)
        return self.norm(out)


def token_policy_kwargs(
    embed_dim: int = 64, n_layers: int = 2, n_heads: int = 4, arch: str = "transformer", **extra: Any
) -> dict[str, Any]:
    """``policy_kwargs`` that plug :class:`TokenFeaturesExtractor` into any SB3 ``MultiInputPolicy``."""
    return {
        "features_extractor_class": TokenFeaturesExtractor,
        "features_extractor_kwargs": {
            "embed_dim": embed_dim,
            "n_layers": n_layers,
            "n_heads": n_heads,
            "arch": arch,
        },
        **extra,
    }


# ---- vector env adapter ---------------------------------------------------------------------------
def unbatch_infos(infos: dict[str, Any], num_envs: int, rows: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Split a Gymnasium vector-style info dict (values with ``_key`` masks) into per-env dicts.

    Args:
        infos: the vector env's info dict; nested dicts are split recursively.
        num_envs: number of envs (length of the returned list).
        rows: only fill these envs (the others get empty dicts); all by default.
    """
    out: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    wanted = range(num_envs) if rows is None else rows
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get(f"_{key}")
        present = [i for i in wanted if mask is None or mask[i]]
        if isinstance(value, dict):
            parts = unbatch_infos(value, num_envs, present)
            for i in present:
                if mask is not None or parts[i]:
                    out[i][key] = parts[i]
            continue
        for i in present:
            item = value[i]
            out[i][key] = item.item() if isinstance(item, np.generic) else item
    return out


def make_native_vec_env(
    env_id: str, num_envs: int, autoreset_mode: str = "same_step", **env_kwargs: Any
) -> gym.vector.VectorEnv:
    """lmgym's native batched vector env for ``env_id`` (its registered ``vector_entry_point``)."""
    return gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=autoreset_mode,
        **env_kwargs,
    )


class LmgymVecEnv(VecEnv):
    """An SB3 ``VecEnv`` over lmgym's native batched vector env.

    The native env runs in ``same_step`` autoreset mode, which is SB3's convention: a finished slot
    is reset in the step that ends it. The adapter moves ``info["final_obs"]`` to
    ``terminal_observation`` and ``info["final_info"]`` (score, completion, ...) to the finished
    env's info dict, sets ``TimeLimit.truncated``, and keeps the reset infos in ``reset_infos``.

    Attribute access (``get_attr``, ``env_method``) goes to the batched env when it has the name,
    else to its prototype single env (shared task, tokenizer and scorer), once per index.

    Args:
        venv: a ``BatchedTokenEnv`` built with ``autoreset_mode="same_step"``.
    """

    def __init__(self, venv: gym.vector.VectorEnv) -> None:
        mode = getattr(venv, "autoreset_mode", None) or venv.metadata.get("autoreset_mode")
        if getattr(mode, "value", mode) != gym.vector.AutoresetMode.SAME_STEP.value:
            raise ValueError(f"LmgymVecEnv needs a vector env with autoreset_mode='same_step'; got {mode!r}.")
        self.venv = venv
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self.spec = getattr(venv, "spec", None)

    def reset(self) -> dict[str, np.ndarray]:
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        options = self._options[0] if self._options[0] else None
        obs, infos = self.venv.reset(seed=seeds, options=options)
        self.reset_infos = unbatch_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs).astype(np.int64, copy=False)

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async().")
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        self._actions = None
        dones = np.logical_or(terminated, truncated)
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            finished = np.flatnonzero(dones).tolist()
            per_env = unbatch_infos(infos, self.num_envs, finished)
            for i in finished:
                info = per_env[i]
                final = dict(info.pop("final_info", {}))
                final["terminal_observation"] = info.pop("final_obs")
                self.reset_infos[i] = info
                out[i] = final
        for i in range(self.num_envs):
            out[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, rewards.astype(np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    def _target(self, name: str) -> Any:
        if hasattr(self.venv, name):
            return self.venv
        return getattr(self.venv, "env", self.venv)

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The attribute of the batched env (or its prototype env), once per index."""
        if attr_name == "render_mode":
            return [getattr(self.venv, "render_mode", None)] * len(self._indices(indices))
        value = getattr(self._target(attr_name), attr_name)
        return [value] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute on the batched env (shared by all slots)."""
        setattr(self._target(attr_name), attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        """Call a method of the prototype env (or batched env) once per index."""
        method = getattr(self._target(method_name), method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        """Slots of a batched env carry no per-env wrappers."""
        return [False] * len(self._indices(indices))

    def get_images(self) -> Sequence[np.ndarray | None]:
        """lmgym envs render text, not images."""
        return [None] * self.num_envs


def _single_env_fn(env_id: str, env_kwargs: dict[str, Any], monitor: bool) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        env = gym.make(env_id, **env_kwargs)
        return Monitor(env) if monitor else env

    return make


def make_sb3_env(
    env_id: str,
    n_envs: int = 8,
    *,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vec_env: str = "native",
    monitor: bool = True,
) -> VecEnv:
    """An SB3 ``VecEnv`` of ``n_envs`` copies of an lmgym env.

    Args:
        env_id: e.g. ``"lmgym/Copy-v0"``.
        n_envs: number of parallel episodes.
        seed: seeds env ``i`` with ``seed + i`` at the first reset (SB3 convention).
        env_kwargs: keyword arguments of the env (``length``, ``scorer``, ``split``...).
        vec_env: ``"native"`` (default: :class:`LmgymVecEnv` over the batched env, faster — see
            ``leaderboards/README.md`` for measured steps/s), ``"dummy"`` (``DummyVecEnv`` of single
            envs, each in a ``Monitor``) or ``"subproc"`` (``SubprocVecEnv``).
        monitor: record episode return/length (``info["episode"]``) so SB3 logs ``rollout/ep_rew_mean``.
    """
    env_kwargs = dict(env_kwargs or {})
    if vec_env == "native":
        env: VecEnv = LmgymVecEnv(make_native_vec_env(env_id, n_envs, "same_step", **env_kwargs))
        if seed is not None:
            env.seed(seed)
        return VecMonitor(env) if monitor else env
    if vec_env in ("dummy", "subproc"):
        # SB3's make_vec_env would ask for render_mode="rgb_array", which text envs do not have.
        fns = [_single_env_fn(env_id, env_kwargs, monitor) for _ in range(n_envs)]
        venv: VecEnv = DummyVecEnv(fns) if vec_env == "dummy" else SubprocVecEnv(fns)
        if seed is not None:
            venv.seed(seed)
        return venv
    raise ValueError(f"vec_env must be 'native', 'dummy' or 'subproc'; got {vec_env!r}.")


# ---- models ---------------------------------------------------------------------------------------
# lmgym-sized defaults per algorithm: short episodes, sparse end rewards (gamma 1). Measured on
# Copy-v0 (length 3, 5 symbols, 20k steps, seed 0): PPO with SB3's orthogonal init (gain sqrt 2 on
# the transformer's linear layers) and lr 3e-4 reached 0.17; without it, 0.66; with lr 1e-3, 0.96.
# DQN's replay buffer holds whole token observations: SB3's 1M-transition default would not fit.
SB3_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {
        "n_steps": 128,
        "batch_size": 256,
        "n_epochs": 4,
        "learning_rate": 1e-3,
        "ent_coef": 0.01,
        "gamma": 1.0,
        "gae_lambda": 0.95,
        "policy_kwargs": {"ortho_init": False},
    },
    "a2c": {
        "n_steps": 16,
        "learning_rate": 7e-4,
        "ent_coef": 0.01,
        "gamma": 1.0,
        "policy_kwargs": {"ortho_init": False},
    },
    "dqn": {
        "buffer_size": 50_000,
        "learning_starts": 1_000,
        "batch_size": 128,
        "train_freq": 4,
        "target_update_interval": 1_000,
        "exploration_fraction": 0.3,
        "learning_rate": 3e-4,
        "gamma": 1.0,
    },
}


def make_sb3_model(
    algo: str,
    env: VecEnv,
    *,
    seed: int | None = None,
    extractor: dict[str, Any] | None = None,
    device: str = "auto",
    verbose: int = 0,
    **algo_kwargs: Any,
) -> BaseAlgorithm:
    """A stock SB3 ``PPO``/``A2C``/``DQN`` with :class:`TokenFeaturesExtractor` and lmgym defaults.

    Args:
        algo: ``"ppo"``, ``"a2c"`` or ``"dqn"``.
        env: from :func:`make_sb3_env`.
        seed: SB3 seed (torch, numpy and env seeds).
        extractor: keyword arguments of :func:`token_policy_kwargs`.
        device: torch device (``"auto"``: CUDA when present).
        verbose: SB3 verbosity.
        **algo_kwargs: override :data:`SB3_DEFAULTS` or pass any other constructor argument.
    """
    key = algo.lower()
    if key not in SB3_ALGOS:
        raise ValueError(f"Unknown SB3 algorithm {algo!r}; choose from {sorted(SB3_ALGOS)}.")
    kwargs = {**SB3_DEFAULTS[key], **algo_kwargs}
    user_policy_kwargs = {**SB3_DEFAULTS[key].get("policy_kwargs", {}), **algo_kwargs.get("policy_kwargs", {})}
    if key == "ppo":
        # SB3 needs the rollout (n_steps * n_envs) to be a multiple of batch_size for full batches.
        kwargs["batch_size"] = min(kwargs["batch_size"], kwargs["n_steps"] * env.num_envs)
    kwargs.pop("policy_kwargs", None)
    policy_kwargs = {**token_policy_kwargs(**(extractor or {})), **user_policy_kwargs}
    return SB3_ALGOS[key](
        "MultiInputPolicy",
        env,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device=device,
        verbose=verbose,
        **kwargs,
    )


# ---- metrics --------------------------------------------------------------------------------------
class LmgymMetricsCallback(BaseCallback):
    """Log lmgym episode metrics from the infos of finished episodes.

    Records (SB3 logger, averaged between dumps): ``lmgym/score`` (the scorer's value, i.e. the
    episode reward), ``lmgym/completion_tokens`` and ``lmgym/eos_rate`` (share of episodes ended by
    EOS rather than the token limit), and ``lmgym/sample`` (the latest completion, excluded from
    CSV). Keeps :attr:`curve` — ``(num_timesteps, mean score)`` every ``curve_every`` steps — and
    :attr:`samples`, the last ``n_samples`` ``(prompt, completion, score)`` triples.

    Args:
        curve_every: env steps between learning-curve points.
        n_samples: completions kept in :attr:`samples`.
        verbose: print a sample completion at each curve point when >= 1.
    """

    def __init__(self, curve_every: int = 1_000, n_samples: int = 5, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.curve_every = int(curve_every)
        self.curve: list[tuple[int, float]] = []
        self.samples: deque[tuple[str, str, float]] = deque(maxlen=n_samples)
        self.episodes = 0
        self._window: list[float] = []
        self._next_point = self.curve_every
        self._start = time.perf_counter()

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._next_point = self.num_timesteps + self.curve_every

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if not done or "score" not in info:
                continue
            score = float(info["score"])
            self.episodes += 1
            self._window.append(score)
            self.logger.record_mean("lmgym/score", score)
            obs = info.get("terminal_observation")
            if obs is not None:
                self.logger.record_mean("lmgym/completion_tokens", float(np.sum(obs["response_mask"])))
            self.logger.record_mean("lmgym/eos_rate", float(not info.get("TimeLimit.truncated", False)))
            completion = str(info.get("completion", ""))
            self.samples.append((str(info.get("prompt", "")), completion, score))
            self.logger.record("lmgym/sample", completion, exclude=("csv", "json"))
        if self.num_timesteps >= self._next_point and self._window:
            self.curve.append((int(self.num_timesteps), float(np.mean(self._window))))
            self.logger.record("lmgym/episodes", self.episodes)
            self.logger.record("lmgym/steps_per_s", self.num_timesteps / max(time.perf_counter() - self._start, 1e-9))
            if self.verbose and self.samples:
                prompt, completion, score = self.samples[-1]
                print(f"[{self.num_timesteps}] score {self.curve[-1][1]:.3f}  {prompt!r} -> {completion!r}")
            self._window = []
            self._next_point = self.num_timesteps + self.curve_every
        return True


def evaluate_policy_scores(
    predict: Callable[[dict[str, np.ndarray]], np.ndarray],
    env_id: str,
    *,
    n_episodes: int = 100,
    n_envs: int = 16,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    split: str = "validation",
) -> list[float]:
    """Scores of ``n_episodes`` episodes of ``predict`` (batched ``obs -> actions``) on ``split``.

    Runs the native batched env in lockstep (``autoreset_mode="disabled"``) so every slot plays
    exactly one episode per round; the first ``n_episodes`` episodes are returned in slot order.
    For an SB3 model use ``predict=lambda obs: model.predict(obs, deterministic=True)[0]``.
    """
    kwargs = {**(env_kwargs or {}), "split": split}
    n_envs = max(1, min(n_envs, n_episodes))
    venv = make_native_vec_env(env_id, n_envs, "disabled", **kwargs)
    scores: list[float] = []
    try:
        obs, _ = venv.reset(seed=seed)
        while len(scores) < n_episodes:
            round_scores = np.zeros(n_envs)
            running = np.ones(n_envs, bool)
            while running.any():
                actions = np.asarray(predict(obs)).reshape(n_envs).astype(np.int64)
                obs, rewards, terminated, truncated, _ = venv.step(actions)
                ended = running & (terminated | truncated)
                round_scores[ended] = rewards[ended]
                running &= ~ended
            scores.extend(round_scores.tolist())
            obs, _ = venv.reset()
    finally:
        venv.close()
    return scores[:n_episodes]
