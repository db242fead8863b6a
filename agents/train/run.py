"""The training run behind ``lmgym train``: devices, envs, SFT, PPO, evaluation, outputs.

:func:`train` is the public entry point (re-exported as ``lmgym.agents.train.train``)::

    from lmgym.agents.train import TrainConfig, train
    results = train(TrainConfig(env="lmgym/Copy-v0", iterations=20))
    results["before"]["score"], results["after"]["score"], results["after"]["kl"]
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch

from lmgym.agents.ppo.checkpoint import read_checkpoint_state
from lmgym.agents.ppo.policy import PolicyWithValue, build_policy
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import SamplingConfig
from lmgym.agents.ppo.sft import build_sft_data, run_sft
from lmgym.agents.ppo.trainer import PPOTrainer
from lmgym.agents.train.config import TrainConfig, check_resume_config, resolve_resume, saved_config
from lmgym.agents.train.evaluation import evaluate_policy, task_metric_scorer
from lmgym.agents.train.metrics import (
    CURVE_PNG,
    RESULTS_JSON,
    RESULTS_MD,
    MetricsLogger,
    plot_learning_curve,
    read_metrics,
    results_table,
)
from lmgym.atomic import atomic_path, write_atomic
from lmgym.errors import CheckpointError, ConfigError, MissingDependencyError, TaskError
from lmgym.model_presets import resolve_model
from lmgym.validation import make_checked_env

REFERENCE_DIR = "reference"
POLICY_DIR = "policy"
REFERENCE_EVAL = "eval_reference.json"


def make_accelerator(config: TrainConfig) -> Any:
    """An ``accelerate.Accelerator`` for the config's device and precision."""
    try:
        from accelerate import Accelerator
    except ImportError as exc:
        raise MissingDependencyError("accelerate", "agents", "Training") from exc
    cuda = torch.cuda.is_available() and config.device != "cpu"
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but CUDA is not available; use --device auto or cpu.")
    precision = config.mixed_precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "no"
    if not cuda and precision != "no":
        raise ConfigError(f"mixed_precision={precision!r} needs CUDA; use --mixed-precision no on CPU.")
    return Accelerator(cpu=not cuda, mixed_precision=precision)


def make_envs(config: TrainConfig, num_envs: int) -> Any:
    """A lockstep vector env of ``config.env`` with the config's env kwargs and scorer."""
    kwargs = dict(config.env_kwargs)
    if config.scorer is not None:
        kwargs["scorer"] = config.scorer_spec()
    if config.reward_model is not None:
        from lmgym.scorers import make_scorer

        kwargs["scorer"] = make_scorer("reward_model", model=config.reward_model)
    # A model folder that ships its tokenizer (e.g. one saved by lmgym, or a converted preset) brings it to the env.
    model = resolve_model(config.model)
    if "tokenizer" not in kwargs and os.path.isfile(os.path.join(model, "tokenizer_config.json")):
        kwargs["tokenizer"] = model
    return make_checked_env(config.env, num_envs=num_envs, autoreset_mode="disabled", **kwargs)


def eval_split_size(env: Any, split: str = "validation") -> int:
    """Examples in ``env``'s evaluation split (a large number when the env has no such split)."""
    try:
        return max(1, len(env.task.examples(split)))
    except (AttributeError, TaskError):  # no task or no such split: evaluation reports it later
        return 1 << 30


def default_run_name(config: TrainConfig) -> str:
    """``<env>-<algo>-s<seed>``, e.g. ``summarize-v0-sft+ppo-s0``."""
    return f"{config.env.split('/')[-1].lower()}-{config.algo}-s{config.seed}"


def _to_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class IterationCallback(Protocol):
    """A hook of the PPO loop (Stable-Baselines3's callbacks, smaller), passed as ``train(config, callbacks=...)``.

    ``start`` runs once before the first iteration (also of a resumed run, whose ``trainer.iteration`` says where
    it is); ``after_iteration`` after each iteration, before its evaluation and checkpoint, and what it returns is
    logged with the iteration's metrics. ``--label-every`` adds :class:`lmgym.agents.rm.in_the_loop.LabelLoop`.
    """

    def start(self, run: Run, trainer: PPOTrainer) -> None: ...

    def after_iteration(self, run: Run, trainer: PPOTrainer) -> dict[str, float] | None: ...


def train(config: TrainConfig, callbacks: Sequence[IterationCallback] = ()) -> dict[str, Any]:
    """Train a policy on an env: SFT warm start and/or PPO, with evaluation and run outputs.

    The run reads as its four stages: :func:`set_up` (devices, run folder, envs), :func:`warm_start`
    (the policy PPO starts from: built, SFT-trained, or reloaded on resume), :func:`ppo_loop` (PPO
    iterations with evaluations and checkpoints; for ``algo="sft"`` :func:`sft_only` evaluates instead)
    and :func:`write_outputs` (results table, JSON, learning curve).

    Returns:
        A dict with ``run_dir``; ``before`` and ``after`` (validation evaluations of the policy
        PPO starts from and of the final policy: ``score`` (task metric), ``reward``, ``kl``,
        ``length``, ``eos_rate``, ``samples``); ``history`` (the PPO metrics per iteration);
        ``table`` (Markdown); ``wall_time_s``; ``is_main_process``.

    ``callbacks`` (:class:`IterationCallback`) run between PPO iterations, after the labelling rounds of
    ``config.label_every``.

    Raises:
        ConfigError: invalid settings. CheckpointError: a bad ``resume`` target.

    The run sets torch's CPU thread count (``config.threads``) and restores the caller's at the end.
    """
    from lmgym.agents.rm.in_the_loop import label_callbacks

    threads = torch.get_num_threads()
    try:
        if callbacks and config.algo not in ("ppo", "sft+ppo"):
            raise ConfigError(f"callbacks run between PPO iterations; algo={config.algo!r} has none.")
        run = set_up(config)
        run.callbacks = [*label_callbacks(config), *callbacks]
        policy = warm_start(run)
        if run.config.algo == "ilql":
            from lmgym.agents.train.offline import ilql_loop as stage
        else:
            stage = ppo_loop if run.do_ppo else sft_only
        before, after, history = stage(run, policy)
        return write_outputs(run, before, after, history)
    finally:
        torch.set_num_threads(threads)


@dataclass
class Run:
    """What the stages of a run share."""

    config: TrainConfig
    accelerator: Any
    run_dir: str
    checkpoint: str | None
    """The checkpoint a resumed run continues from."""
    logger: MetricsLogger
    envs: Any
    """This process's lockstep training vector env."""
    eval_envs: Any
    """The evaluation vector env (same task, tokenizer and scorer)."""
    metric: Any
    """The task metric of evaluations."""
    start_time: float
    callbacks: list[IterationCallback] = field(default_factory=list)
    """Run between PPO iterations (see :class:`IterationCallback`)."""

    @property
    def main(self) -> bool:
        """Whether this is the main process (the one that evaluates and writes)."""
        return bool(self.accelerator.is_main_process)

    @property
    def do_sft(self) -> bool:
        return self.config.algo in ("sft", "sft+ppo")

    @property
    def do_ppo(self) -> bool:
        return self.config.algo in ("ppo", "sft+ppo")

    @property
    def proto(self) -> Any:
        """The prototype single env: tokenizer, task, token limits."""
        return self.envs.env

    @property
    def max_positions(self) -> int:
        return self.proto.max_prompt_tokens + self.proto.max_new_tokens

    @property
    def row_names(self) -> tuple[str, str]:
        """The results table's two rows: the start policy and the trained one."""
        if self.config.algo == "ilql":
            zero = "AWR" if self.config.ilql_awac_temperature > 0 else "BC"
            return f"ILQL beta=0 ({zero})", f"ILQL beta={self.config.ilql_beta:g}"
        start = "SFT" if self.do_sft else "initial"
        return (start, f"{start}+PPO") if self.do_ppo else ("initial", "SFT")

    def evaluate(self, policy: PolicyWithValue, reference: ReferenceModel | None = None) -> dict[str, Any]:
        """The held-out evaluation of ``policy`` (greedy and sampled, KL to ``reference`` when given)."""
        cfg = self.config
        return evaluate_policy(policy, self.eval_envs, reference=reference, max_examples=cfg.eval_examples,
                               num_samples=cfg.num_samples, metric_scorer=self.metric, seed=cfg.seed,
                               sampling=SamplingConfig(cfg.temperature, cfg.top_k, cfg.top_p))

    def progress(self, **kwargs: Any) -> Any:
        """A tqdm bar (silent unless ``config.progress`` and the main process)."""
        from tqdm.auto import tqdm

        return tqdm(disable=not (self.config.progress and self.main), dynamic_ncols=True, **kwargs)


def check_run_folder(config: TrainConfig) -> tuple[str, str | None]:
    """``(run_dir, checkpoint or None)`` of the run, after every check of the run-folder contract; writes nothing.

    A new run never writes into an existing folder (unless ``overwrite``). A resumed run's settings must match
    the saved ones (see :data:`RESUMABLE_CHANGES`) and its checkpoint must read back intact.

    Raises:
        ConfigError: the new run's folder exists. CheckpointError: a bad resume target or changed settings.
    """
    if not config.resume:
        run_dir = os.path.abspath(os.path.join(config.output_dir, config.name or default_run_name(config)))
        if os.path.exists(run_dir) and not config.overwrite and (not os.path.isdir(run_dir) or os.listdir(run_dir)):
            raise ConfigError(f"The run folder {run_dir} already exists. Continue that run with --resume {run_dir}, "
                              "or start a new one with --name NEW_NAME (or replace it with --overwrite).")
        return run_dir, None
    run_dir, checkpoint = resolve_resume(config.resume)
    check_resume_config(config, saved_config(run_dir))
    if checkpoint is not None:
        state = read_checkpoint_state(checkpoint)  # fail fast on a damaged checkpoint
        check_resume_config(config, state["config"])
    return run_dir, checkpoint


def set_up(config: TrainConfig) -> Run:
    """Validate the config, start accelerate, build the envs, then create (or find, on resume) the run folder.

    Everything that can fail on bad input runs before the first write, so a failed start leaves no folder
    behind and a refused resume leaves the run as it was.
    """
    config.validate()
    start_time = time.perf_counter()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # save/load shard bars would clutter the training output
    accelerator = make_accelerator(config)
    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // accelerator.num_processes))
    run_dir, checkpoint = check_run_folder(config)
    envs = make_envs(config, config.num_envs)
    accelerator.wait_for_everyone()  # every process has checked the run before the main one writes
    if accelerator.is_main_process:
        if config.overwrite and not config.resume and os.path.exists(run_dir):
            if os.path.isdir(run_dir):
                shutil.rmtree(run_dir)
            else:
                os.remove(run_dir)
        os.makedirs(run_dir, exist_ok=True)
        write_atomic(os.path.join(run_dir, "config.json"), json.dumps(asdict(config), indent=1))
    accelerator.wait_for_everyone()
    logger = MetricsLogger(run_dir, tensorboard=config.tensorboard, enabled=accelerator.is_main_process)
    # The evaluation env shares the task, tokenizer and scorer of the training env's prototype.
    # No more slots than examples per evaluation: spare slots would decode copies of the last example.
    slots = min(config.eval_batch_size, max(1, config.eval_examples), eval_split_size(envs.env))
    eval_envs = type(envs.unwrapped)(num_envs=slots, autoreset_mode="disabled", env=envs.env)
    # The task metric: the env's own scorer unless the reward scorer was overridden (then the default).
    overridden = config.scorer is not None or config.reward_model is not None or "scorer" in config.env_kwargs
    # Tool-use envs: the metric judges the answer without the reward's per-call penalty.
    metric = task_metric_scorer(eval_envs) if overridden or eval_envs.env.trigger_ids else eval_envs.scorer
    return Run(config, accelerator, run_dir, checkpoint, logger, envs, eval_envs, metric, start_time)


def warm_start(run: Run) -> PolicyWithValue:
    """The policy PPO starts from (or the SFT result): built and SFT-trained, or reloaded on resume.

    It is saved as ``reference/`` (``policy/`` for an SFT-only run) so a resumed run starts from the same weights.
    """
    cfg, accelerator = run.config, run.accelerator
    ref_dir = os.path.join(run.run_dir, REFERENCE_DIR)
    resumed = cfg.resume is not None and os.path.isdir(ref_dir) and run.do_ppo
    try:
        policy = build_policy(ref_dir if resumed else cfg.model, run.proto.tokenizer, run.max_positions,
                              n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, seed=cfg.seed)
    except (OSError, ValueError, RuntimeError) as exc:
        if not resumed:
            raise
        raise CheckpointError(f"The run's reference model {ref_dir!r} cannot be loaded ({exc}); start the run "
                              "again.") from exc
    policy.to(accelerator.device)
    if cfg.algo == "ilql":  # Q and V heads on the model; a resumed run loads everything from its checkpoint
        from lmgym.agents.offline.ilql import ILQLPolicy

        return policy if isinstance(policy, ILQLPolicy) else ILQLPolicy.from_policy(policy, cfg.ilql_beta, cfg.seed)
    if resumed:
        return policy
    if run.do_sft:
        if cfg.resume:  # SFT has no checkpoints: a resumed run redoes it, so its old records go
            run.logger.truncate("sft", 0)
        if cfg.data:  # SFT on reward-labelled logs (all, or the top fraction: filtered behaviour cloning)
            from lmgym.agents.train.offline import read_log_data

            data = read_log_data(run, cfg.data_top_fraction).data
        else:
            data = build_sft_data(run.proto, "train", cfg.sft_max_examples)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.sft_learning_rate, weight_decay=0.0)
        model, optimizer = accelerator.prepare(policy, optimizer)
        with run.progress(total=cfg.sft_steps, desc="SFT", leave=False) as bar:
            run_sft(model, optimizer, data, steps=cfg.sft_steps, batch_size=cfg.sft_batch_size,
                    learning_rate=cfg.sft_learning_rate, accelerator=accelerator, seed=cfg.seed,
                    log=lambda step, m: run.logger.log("sft", step, m), progress=bar)
        accelerator.free_memory(model, optimizer)  # drop the DDP wrapper before PPO wraps again
        policy.eval()
    if run.main:
        save_policy(policy, run.proto.tokenizer, ref_dir if run.do_ppo else os.path.join(run.run_dir, POLICY_DIR))
    accelerator.wait_for_everyone()
    return policy


def ppo_loop(run: Run, policy: PolicyWithValue) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict]]:
    """PPO from the warm start to ``config.iterations``: evaluations, metrics and checkpoints on the way.

    Returns:
        ``(before, after, history)``: the evaluations of the start and final policies (main process only)
        and the metrics of every iteration.
    """
    cfg, accelerator = run.config, run.accelerator
    reference = make_reference(run, policy)
    before = _reference_eval(run.run_dir, run.main, cfg, lambda: run.evaluate(policy, reference))
    trainer = PPOTrainer(cfg, policy, reference, run.envs, accelerator, resume_from=run.checkpoint)
    run.logger.truncate("ppo", trainer.iteration)
    history = read_metrics(run.logger.path, "ppo") if run.main else []
    after = None
    for callback in run.callbacks:
        callback.start(run, trainer)
    with run.progress(total=cfg.iterations, initial=trainer.iteration, desc="PPO") as bar:
        while trainer.iteration < cfg.iterations:
            metrics = trainer.iterate()
            for callback in run.callbacks:
                metrics.update(callback.after_iteration(run, trainer) or {})
            it = trainer.iteration
            last = it == cfg.iterations
            if run.main and ((cfg.eval_every and it % cfg.eval_every == 0) or last):
                after = run.evaluate(trainer.policy, reference)
                metrics.update({f"eval/{key}": after[key] for key in ("score", "sampled_score", "reward", "kl",
                                                                       "length", "tool_calls", "call_rate")
                                if key in after})
            run.logger.log("ppo", it, metrics)
            history.append({"phase": "ppo", "step": it, **metrics})
            bar.update(1)
            bar.set_postfix(reward=f"{metrics['reward/mean']:.3f}", kl=f"{metrics['objective/kl']:.2f}",
                            **({"eval": f"{metrics['eval/score']:.3f}"} if "eval/score" in metrics else {}))
            if (cfg.checkpoint_every and it % cfg.checkpoint_every == 0) or last:
                trainer.save(run.run_dir, asdict(cfg))
            accelerator.wait_for_everyone()
    if run.main:
        if after is None:  # nothing left to run (resumed a finished run)
            after = run.evaluate(trainer.policy, reference)
        save_policy(trainer.policy, run.proto.tokenizer, os.path.join(run.run_dir, POLICY_DIR))
    return before, after, history


def make_reference(run: Run, policy: PolicyWithValue) -> ReferenceModel:
    """The KL reference: the saved start-of-PPO policy, or (with LoRA) the policy with its adapters off."""
    cfg = run.config
    if cfg.lora_r:
        modules = cfg.lora_target_modules.split(",") if cfg.lora_target_modules else None
        policy.add_lora(r=cfg.lora_r, alpha=cfg.lora_alpha, target_modules=modules)
        policy.to(run.accelerator.device)
    ref_dir = os.path.join(run.run_dir, REFERENCE_DIR)
    reference = ReferenceModel(policy, model=None if cfg.lora_r else _frozen_reference(ref_dir, policy))
    return reference.to(run.accelerator.device)


def sft_only(run: Run, policy: PolicyWithValue) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict]]:
    """For ``algo="sft"``: evaluate the untrained model (before) and the SFT one (after)."""
    if not run.main:
        return {}, None, []
    return run.evaluate(_initial_policy(run.config, run.proto, run.max_positions)), run.evaluate(policy), []


def write_outputs(
    run: Run, before: dict[str, Any], after: dict[str, Any] | None, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """Write ``results.md``, ``results.json`` and the learning curve; return the run's results."""
    cfg = run.config
    results: dict[str, Any] = {"run_dir": run.run_dir, "is_main_process": run.main, "history": history,
                               "before": before, "after": after, "table": ""}
    if run.main and after is not None:
        names = run.row_names
        rows = [{"name": names[0], **before}, {"name": names[1], **after}]
        samples = [{"prompt": b["prompt"], "reference": b["reference"], names[0]: b["completion"],
                    names[1]: a["completion"]} for b, a in zip(before["samples"], after["samples"])]
        title = f"{cfg.env}: {names[0]} vs {names[1]} (seed {cfg.seed})"
        results["table"] = results_table(rows, title=title, samples=samples)
        results["wall_time_s"] = time.perf_counter() - run.start_time
        write_atomic(os.path.join(run.run_dir, RESULTS_MD), results["table"])
        summary = {k: results[k] for k in ("before", "after", "wall_time_s")}
        write_atomic(os.path.join(run.run_dir, RESULTS_JSON),
                     json.dumps(_to_json({**summary, "names": names, "config": asdict(cfg)}), indent=1))
        plot_learning_curve(read_metrics(run.logger.path), os.path.join(run.run_dir, CURVE_PNG), title=cfg.env,
                            start_score=before.get("score"), start_name=names[0],
                            start_sampled=before.get("sampled_score"))
    results["wall_time_s"] = time.perf_counter() - run.start_time
    run.logger.close()
    run.envs.close()
    run.accelerator.wait_for_everyone()
    return results


def save_policy(policy: PolicyWithValue, tokenizer: Any, path: str) -> None:
    """``save_pretrained`` into ``path`` through a temporary folder and a rename."""
    with atomic_path(path) as tmp:
        policy.save_pretrained(tmp, tokenizer=tokenizer)


def _frozen_reference(ref_dir: str, policy: PolicyWithValue) -> torch.nn.Module:
    """The reference LM: the saved start-of-PPO policy (exactly what a resumed run must use)."""
    if not os.path.isdir(ref_dir):
        raise CheckpointError(f"The run's reference model {ref_dir!r} is missing; cannot compute the KL penalty.")
    try:
        ref = ReferenceModel.from_pretrained(policy, ref_dir)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"The run's reference model {ref_dir!r} cannot be loaded ({exc}).") from exc
    return ref.model


def _reference_eval(run_dir: str, main: bool, config: TrainConfig, run: Any) -> dict[str, Any]:
    """Evaluation of the policy PPO starts from; cached in the run folder so a resumed run reuses it."""
    if not main:
        return {}
    path = os.path.join(run_dir, REFERENCE_EVAL)
    if config.resume and os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    result = run()
    write_atomic(path, json.dumps(_to_json(result), indent=1))
    return result


def _initial_policy(config: TrainConfig, proto: Any, max_positions: int) -> PolicyWithValue:
    """The untrained starting model (the 'before' row of an SFT-only run)."""
    return build_policy(config.model, proto.tokenizer, max_positions, n_layer=config.n_layer,
                        n_embd=config.n_embd, n_head=config.n_head, seed=config.seed)
