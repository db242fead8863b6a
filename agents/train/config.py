"""What a training run needs: :class:`TrainConfig` (one field per setting, a docstring per field) and
the run folders a ``resume`` points at."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from lmgym.errors import CheckpointError, ConfigError
from lmgym.validation import check_float, check_int

ALGOS = ("sft+ppo", "sft", "ppo", "ilql")


@dataclass
class TrainConfig:
    """Everything a training run needs. Defaults are the main job: ~5 min on 2 CPU cores."""

    # ---- what to train ----
    env: str = "lmgym/PositiveReview-v1"
    """Env id of any registered lmgym env (see ``lmgym list``)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env keyword arguments, e.g. ``--env-kwargs length=5 max_new_tokens=8`` (values parsed as JSON)."""
    scorer: str | None = None
    """Reward scorer name (or a JSON ``{name: weight}`` mapping); ``None`` uses the env's default."""
    reward_model: str | None = None
    """A reward model folder (``lmgym rm train``'s ``<output>/model``) as the reward, instead of ``scorer``;
    evaluations still report the env's own task metric (``score``) beside it (``reward``)."""
    model: str = "default"
    """``default`` (small GPT-2 from a config), ``default-seq2seq`` (small T5), or a local folder / hub id."""
    n_layer: int = 2
    """Layers of a default model: 2 learns the built-in tasks in minutes on a CPU."""
    n_embd: int = 128
    """Width of a default model."""
    n_head: int = 4
    """Attention heads of a default model."""
    lora_r: int = 0
    """LoRA rank for PPO (0 = full fine-tuning). With LoRA the reference is the same weights, adapters off."""
    lora_alpha: int = 16
    """LoRA scaling numerator."""
    lora_target_modules: str | None = None
    """Comma-separated module names for LoRA; ``None`` lets peft pick for known architectures."""
    algo: str = "sft+ppo"
    """``sft+ppo`` (warm start then PPO), ``sft`` (supervised only), ``ppo`` (RL from the initial model) or
    ``ilql`` (offline RL on the reward-labelled logs of ``--data``)."""

    # ---- run ----
    name: str | None = None
    """Run name; the run folder is ``output_dir/name`` (default: env, algo and seed)."""
    output_dir: str = "runs"
    """Where run folders go."""
    seed: int = 0
    """Seeds model init, SFT batches, env resets and sampling (each iteration and process gets its own stream)."""
    resume: str | None = None
    """A run folder (newest checkpoint) or checkpoint folder to continue from. Only the settings in
    ``RESUMABLE_CHANGES`` (iterations, evaluation, logging, checkpointing, threads) may differ from the saved run."""
    overwrite: bool = False
    """Delete an existing run folder of the same name and start afresh (without it, a new run refuses to write
    into an existing folder)."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    mixed_precision: str = "auto"
    """``auto`` (bf16 on CUDA if supported, else fp16; none on CPU), ``no``, ``bf16`` or ``fp16``."""
    threads: int = 0
    """torch CPU threads per process (0: CPU cores / processes)."""

    # ---- SFT warm start ----
    sft_steps: int = 600
    """Optimizer steps of teacher-forced training on the train split's references."""
    sft_batch_size: int = 32
    """Sequences per SFT step (per process)."""
    sft_learning_rate: float = 2e-3
    """Peak SFT learning rate (warm-up, then cosine decay to 10%)."""
    sft_max_examples: int | None = None
    """Use only the first N train examples for SFT (``None``: all)."""

    # ---- training on reward-labelled logs (offline) ----
    data: str | None = None
    """Reward-labelled logs (``{prompt, completion, reward}`` .jsonl/.csv/.parquet, see ``lmgym logs make``).
    ``algo=ilql`` learns from them; with ``algo=sft`` the model imitates them instead of the env's targets."""
    data_top_fraction: float = 1.0
    """SFT on logs keeps this fraction of the rows with the highest rewards (filtered behaviour cloning; 1: all)."""
    ilql_steps_per_iteration: int = 50
    """ILQL optimizer steps per iteration (``iterations``, ``eval_every`` and ``checkpoint_every`` count these)."""
    ilql_learning_rate: float = 2e-3
    """ILQL learning rate (AdamW; linear warm-up over the first iteration, then constant); the SFT learners' rate."""
    ilql_beta: float = 1.0
    """Advantage steering of the saved ILQL policy: decoding uses ``log pi + beta * (Q - V)`` (0: the BC policy)."""
    ilql_eval_betas: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
    """Steering strengths the final ILQL policy is evaluated at (``results.json``'s ``betas``)."""
    ilql_tau: float = 0.7
    """Expectile of ILQL's V regression (0.5: the mean of the logged actions; toward 1: the best)."""
    ilql_cql_scale: float = 0.1
    """Weight of ILQL's CQL term (pushes down the values of tokens the logs never chose)."""
    ilql_awac_scale: float = 1.0
    """Weight of ILQL's policy (language-model) term."""
    ilql_awac_temperature: float = 0.5
    """Advantage-weighted policy term, ``exp(A / T)`` with ``A = G_t - V(s_t)`` (beta = 0 is this AWR policy; 0:
    unweighted, so beta = 0 is behaviour cloning). 0.5 beat SFT on all logs on three tasks (leaderboards/offline)."""
    ilql_target_alpha: float = 0.1
    """Polyak rate of ILQL's target Q heads per step. A terminal reward reaches token ``t`` of a completion only
    through the chain ``Q <- V(next) <- target Q``, so each token back waits about ``1 / alpha`` steps: at 0.005
    (the ILQL paper's) 1,000 steps taught values to the last few tokens only and steering never paid on
    Translate-v1 (chrF fell from beta = 0); at 0.1 it rose from 0.685 to 0.749 at beta = 8 (3,000 steps, seed 0)."""

    # ---- PPO ----
    iterations: int = 30
    """PPO iterations (rollout + update)."""
    num_envs: int = 256
    """Episodes per iteration per process (the vector env's slots, sampled in lockstep)."""
    epochs: int = 2
    """Passes over each rollout batch."""
    minibatches: int = 2
    """Minibatches per epoch (the batch is split into this many)."""
    learning_rate: float = 5e-5
    """PPO learning rate (Adam)."""
    value_lr_scale: float = 3.0
    """Learning-rate multiplier of the value head (it starts untrained; the LM does not)."""
    anneal_lr: bool = False
    """Decay the PPO learning rate linearly to 0 over ``iterations``."""
    clip_range: float = 0.2
    """Policy ratio clip epsilon."""
    clip_range_value: float | None = 0.2
    """Value clip range around the rollout's values (``None``: unclipped)."""
    vf_coef: float = 0.1
    """Weight of the value loss in the shared trunk (the head's own step size is set by ``value_lr_scale``)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    gamma: float = 1.0
    """Discount over response tokens (1: the score counts fully from every token)."""
    lam: float = 0.95
    """GAE lambda."""
    max_grad_norm: float = 1.0
    """Gradient clipping (0: off)."""
    target_approx_kl: float | None = 0.1
    """Stop an update early after an epoch whose approx-KL(old || new) exceeds this (``None``: never)."""
    samples_per_prompt: int = 4
    """Completions sampled per prompt in a rollout; with k > 1 advantages are centred per prompt group."""
    dense_reward: bool = False
    """Shape the end-of-episode score into per-token score differences (same total; better credit)."""
    advantage: str = "gae"
    """``gae`` (value head, GAE(gamma, lam), centred per prompt group), ``rloo`` (each completion's total reward
    minus the mean of its prompt's other completions; no critic, zero for tied groups; needs samples_per_prompt
    >= 2) or ``grpo`` (the group-centred total reward divided by the group's std). See leaderboards/sweep/."""
    whiten_advantages: bool = True
    """Normalise advantages over the batch's tokens."""
    kl_coef: float = 0.05
    """Initial weight of the per-token KL penalty to the reference."""
    target_kl: float | None = None
    """Adaptive KL control: move ``kl_coef`` so the KL per sequence tracks this (``None``: fixed)."""
    kl_horizon: float = 10000
    """Adaptive KL control speed, in episodes."""
    temperature: float = 1.0
    """Sampling temperature of rollouts (the PPO policy is the tempered distribution)."""
    top_k: int = 0
    """Sample among the k most likely tokens (0: all)."""
    top_p: float = 1.0
    """Nucleus sampling mass (1: all)."""

    # ---- human in the loop (lmgym.agents.rm.in_the_loop) ----
    label_every: int = 0
    """Every N PPO iterations, ask for preferences between two samples of the current policy and fine-tune
    ``reward_model`` on all labels so far, which then becomes the reward (0: never; needs ``reward_model`` and
    ``labels``)."""
    label_pairs: int = 16
    """Pairs asked per labelling round (two completions for each of this many random train prompts)."""
    labels: str | None = None
    """The labels file (.jsonl, as ``lmgym label`` writes it): answers are appended and fsynced, a resumed run asks
    only what is unanswered, and labels already in it train the reward model too."""
    annotator: str = "terminal"
    """Who answers: ``terminal`` (a person, as in ``lmgym label``) or ``scorer:NOISE`` (the env's task metric,
    answering wrong with probability NOISE, e.g. ``scorer:0.1``: a stand-in for tests and simulations)."""
    label_rm_steps: int = 50
    """Reward-model fine-tuning steps per labelling round (from the current reward model's weights)."""

    # ---- evaluation and output ----
    eval_every: int = 10
    """Evaluate (greedy, validation split) every N iterations and at the end (0: only at the end)."""
    eval_examples: int = 200
    """Validation examples per evaluation."""
    eval_batch_size: int = 100
    """Slots of the evaluation vector env."""
    num_samples: int = 3
    """Sample completions in the results table."""
    checkpoint_every: int = 10
    """Checkpoint every N iterations and at the end (0: only at the end)."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept."""
    tensorboard: bool = True
    """Also log to TensorBoard (``run_dir/tensorboard``)."""
    progress: bool = True
    """Show tqdm progress bars."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work: wrong type, out of range, inconsistent."""
        if self.algo not in ALGOS:
            raise ConfigError(f"algo must be one of {ALGOS}; got {self.algo!r}.")
        for name, (low, optional) in _INT_RANGES.items():
            check_int(_flag(name), getattr(self, name), minimum=low, optional=optional)
        for name, (low, high, exclusive, optional) in _FLOAT_RANGES.items():
            check_float(_flag(name), getattr(self, name), minimum=low, maximum=high, exclusive_minimum=exclusive,
                        optional=optional)
        if not isinstance(self.env, str) or not self.env:
            raise ConfigError(f"--env must be an env id such as lmgym/Copy-v0; got {self.env!r}.")
        if not isinstance(self.env_kwargs, dict):
            raise ConfigError(f"--env-kwargs must be KEY=VALUE items; got {self.env_kwargs!r}.")
        self.scorer_spec()
        if self.reward_model is not None and self.scorer is not None:
            raise ConfigError("Pass --scorer or --reward-model, not both (the reward model is the reward).")
        self.validate_labelling()
        if self.algo == "ilql" and not self.data:
            raise ConfigError("algo='ilql' learns from reward-labelled logs: pass --data logs.jsonl "
                              "(make them with: lmgym logs make ENV).")
        if self.data and self.algo not in ("ilql", "sft"):
            raise ConfigError(f"--data trains offline (algo 'ilql' or 'sft'); algo={self.algo!r} samples from the "
                              "env instead. Drop --data or pick --algo ilql / --algo sft.")
        if not isinstance(self.ilql_eval_betas, (tuple, list)) or not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and b >= 0 for b in self.ilql_eval_betas):
            raise ConfigError(f"--ilql-eval-betas must be numbers >= 0; got {self.ilql_eval_betas!r}.")
        if self.samples_per_prompt < 1 or self.num_envs % self.samples_per_prompt:
            raise ConfigError(f"num_envs ({self.num_envs}) must be a multiple of samples_per_prompt "
                              f"({self.samples_per_prompt}).")
        if self.advantage not in ("gae", "rloo", "grpo"):
            raise ConfigError(f"advantage must be gae, rloo or grpo; got {self.advantage!r}.")
        if self.advantage != "gae" and self.samples_per_prompt < 2:
            raise ConfigError(f"advantage={self.advantage!r} compares completions of one prompt: "
                              "set samples_per_prompt >= 2.")
        if self.minibatches > self.num_envs:
            raise ConfigError(f"minibatches ({self.minibatches}) cannot exceed num_envs ({self.num_envs}).")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda; got {self.device!r}.")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ConfigError(f"mixed_precision must be auto, no, bf16 or fp16; got {self.mixed_precision!r}.")
        if not 0 < self.top_p <= 1 or self.temperature < 0:
            raise ConfigError("Need 0 < top_p <= 1 and temperature >= 0.")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}).")

    def validate_labelling(self) -> None:
        """Raise :class:`ConfigError` for human-in-the-loop settings that cannot work, naming the fix."""
        from lmgym.label import parse_annotator

        parse_annotator(self.annotator)
        if not self.label_every:
            if self.labels is not None:
                raise ConfigError("--labels is where labelling rounds append answers: pass --label-every N too "
                                  "(or drop --labels).")
            return
        if self.reward_model is None:
            raise ConfigError("--label-every fine-tunes a reward model between PPO iterations: pass --reward-model "
                              "RM_DIR (the model/ folder of `lmgym rm train`), or drop --label-every.")
        if not self.labels:
            raise ConfigError("--label-every needs --labels FILE.jsonl: where the answers are appended (a resumed "
                              "run asks only what is unanswered).")
        if self.algo not in ("ppo", "sft+ppo"):
            raise ConfigError(f"--label-every runs between PPO iterations; algo={self.algo!r} has none. Use --algo "
                              "ppo or sft+ppo.")

    def scorer_spec(self) -> Any:
        """``scorer`` as ``make_scorer`` takes it: ``None``, a name, or a ``{name: weight}`` dict from JSON.

        Raises:
            ConfigError: a ``{...}`` value that is not a JSON object, or a value that is not a string.
        """
        if self.scorer is None:
            return None
        if not isinstance(self.scorer, str):
            raise ConfigError(f"--scorer must be a scorer name or a JSON object; got {self.scorer!r}.")
        if not self.scorer.lstrip().startswith("{"):
            return self.scorer
        try:
            spec = json.loads(self.scorer)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--scorer {self.scorer!r} is not valid JSON ({exc}); write it like "
                              '\'{"rouge": 1.0, "repetition": -0.5}\'.') from None
        if not isinstance(spec, dict):
            raise ConfigError(f"--scorer {self.scorer!r} must be a JSON object of scorer names to weights.")
        return spec


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# name -> (minimum, None allowed)
_INT_RANGES = {
    "num_envs": (1, False), "epochs": (1, False), "minibatches": (1, False), "eval_batch_size": (1, False),
    "n_layer": (1, False), "n_embd": (1, False), "n_head": (1, False), "samples_per_prompt": (1, False),
    "iterations": (0, False), "sft_steps": (0, False), "sft_batch_size": (1, False), "eval_examples": (0, False),
    "lora_r": (0, False), "lora_alpha": (1, False), "threads": (0, False), "seed": (0, False),
    "eval_every": (0, False), "checkpoint_every": (0, False), "keep_checkpoints": (0, False),
    "num_samples": (0, False), "top_k": (0, False), "sft_max_examples": (1, True),
    "ilql_steps_per_iteration": (1, False), "label_every": (0, False), "label_pairs": (1, False),
    "label_rm_steps": (1, False),
}
# name -> (minimum, maximum, minimum excluded, None allowed)
_FLOAT_RANGES = {
    "learning_rate": (0, None, True, False), "sft_learning_rate": (0, None, True, False),
    "value_lr_scale": (0, None, False, False), "clip_range": (0, None, True, False),
    "clip_range_value": (0, None, True, True), "vf_coef": (0, None, False, False),
    "ent_coef": (None, None, False, False),
    "gamma": (0, 1, False, False), "lam": (0, 1, False, False), "max_grad_norm": (0, None, False, False),
    "target_approx_kl": (0, None, True, True), "kl_coef": (0, None, False, False), "target_kl": (0, None, False, True),
    "kl_horizon": (0, None, True, False), "temperature": (0, None, False, False), "top_p": (0, 1, True, False),
    "data_top_fraction": (0, 1, True, False), "ilql_learning_rate": (0, None, True, False),
    "ilql_beta": (0, None, False, False), "ilql_tau": (0, 1, True, False), "ilql_cql_scale": (0, None, False, False),
    "ilql_awac_scale": (0, None, False, False), "ilql_awac_temperature": (0, None, False, False),
    "ilql_target_alpha": (0, 1, True, False),
}

RESUMABLE_CHANGES = frozenset({
    "iterations", "eval_every", "eval_examples", "eval_batch_size", "num_samples", "tensorboard", "progress",
    "checkpoint_every", "keep_checkpoints", "threads", "ilql_beta", "ilql_eval_betas", "annotator",
    "resume", "overwrite", "name", "output_dir",  # where the run is, not what it is
})
"""Settings a ``--resume`` may change; any other difference from the saved config is a :class:`CheckpointError`."""


def check_resume_config(config: TrainConfig, saved: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` naming every setting of ``config`` that differs from the saved run's.

    Settings missing from ``saved`` (a run of an older lmgym) are not compared.
    """
    current = asdict(config)
    changed = sorted(k for k, v in current.items()
                     if k in saved and k not in RESUMABLE_CHANGES and _canonical(saved[k]) != _canonical(v))
    if changed:
        shown = ", ".join(f"{_flag(k)} {saved[k]!r} -> {current[k]!r}" for k in changed)
        raise CheckpointError(f"--resume cannot change the run's settings: {shown}. Only "
                              f"{', '.join(sorted(_flag(k) for k in RESUMABLE_CHANGES - {'resume', 'overwrite'}))} "
                              "may change; start a new run (--name) for the others.")


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def saved_config(resume: str) -> dict[str, Any]:
    """The config saved in a run folder (or in a checkpoint folder's state)."""
    run_dir, _ = resolve_resume(resume)
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise CheckpointError(f"{run_dir!r} has no config.json; is it an lmgym run folder?")
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path!r} is damaged ({exc}); restore it or start the run again.") from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path!r} is damaged (not a JSON object); restore it or start the run again.")
    return saved


def resolve_resume(resume: str) -> tuple[str, str | None]:
    """``(run_dir, checkpoint or None)`` for a run folder or a checkpoint folder."""
    from lmgym.agents.ppo.checkpoint import CHECKPOINT_DIR, latest_checkpoint

    path = os.path.abspath(resume)
    if not os.path.isdir(path):
        raise CheckpointError(f"Nothing to resume at {resume!r}: the folder does not exist.")
    if os.path.isfile(os.path.join(path, "state.json")):
        parent = os.path.dirname(path)
        if os.path.basename(parent) != CHECKPOINT_DIR:
            raise CheckpointError(f"Checkpoint {resume!r} is not inside a run's {CHECKPOINT_DIR}/ folder.")
        return os.path.dirname(parent), path
    return path, latest_checkpoint(path)


__all__ = ["ALGOS", "RESUMABLE_CHANGES", "TrainConfig", "check_resume_config", "resolve_resume", "saved_config"]
