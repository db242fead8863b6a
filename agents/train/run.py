"""The training run behind ``lmgym train``: devices, envs, SFT, PPO, evaluation, outputs.

:func:`train` is the public entry point (re-exported as ``lmgym.agents.train.train``)::

    from lmgym.agents.train import TrainConfig, train
    results = train(TrainConfig(env="lmgym/Copy-v0", iterations=20))
    results["before"]["score"], results["after"]["score"], results["after"]["kl"]
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Any

import gymnasium as gym
import torch

import lmgym  # noqa: F401  (registers the envs)
from lmgym.agents.ppo.checkpoint import read_checkpoint_state
from lmgym.agents.ppo.policy import PolicyWithValue, build_policy
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import SamplingConfig
from lmgym.agents.ppo.sft import build_sft_data, run_sft
from lmgym.agents.ppo.trainer import PPOTrainer
from lmgym.agents.train.config import TrainConfig, resolve_resume
from lmgym.agents.train.evaluation import evaluate_policy, task_metric_scorer
from lmgym.agents.train.metrics import (
    CURVE_PNG,
    RESULTS_JSON,
    RESULTS_MD,
    MetricsLogger,
    plot_learning_curve,
    read_metrics,
    results_table,
    write_atomic,
)
from lmgym.errors import CheckpointError, ConfigError, MissingDependencyError

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
        scorer: Any = config.scorer
        if scorer.lstrip().startswith("{"):
            scorer = json.loads(scorer)
        kwargs["scorer"] = scorer
    # A model folder that ships its tokenizer (e.g. one saved by lmgym) brings it to the env.
    if "tokenizer" not in kwargs and os.path.isfile(os.path.join(config.model, "tokenizer_config.json")):
        kwargs["tokenizer"] = config.model
    try:
        return gym.make_vec(config.env, num_envs=num_envs, vectorization_mode="vector_entry_point",
                            autoreset_mode="disabled", **kwargs)
    except gym.error.Error as exc:
        raise ConfigError(f"Cannot make env {config.env!r}: {exc} (see `lmgym list`).") from exc


def default_run_name(config: TrainConfig) -> str:
    """``<env>-<algo>-s<seed>``, e.g. ``summarize-v0-sft+ppo-s0``."""
    return f"{config.env.split('/')[-1].lower()}-{config.algo}-s{config.seed}"


def _to_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def train(config: TrainConfig) -> dict[str, Any]:
    """Train a policy on an env: SFT warm start and/or PPO, with evaluation and run outputs.

    Returns:
        A dict with ``run_dir``; ``before`` and ``after`` (validation evaluations of the policy
        PPO starts from and of the final policy: ``score`` (task metric), ``reward``, ``kl``,
        ``length``, ``eos_rate``, ``samples``); ``history`` (the PPO metrics per iteration);
        ``table`` (Markdown); ``wall_time_s``; ``is_main_process``.

    Raises:
        ConfigError: invalid settings. CheckpointError: a bad ``resume`` target.

    The run sets torch's CPU thread count (``config.threads``) and restores the caller's at the end.
    """
    threads = torch.get_num_threads()
    try:
        return _train(config)
    finally:
        torch.set_num_threads(threads)


def _train(config: TrainConfig) -> dict[str, Any]:
    config.validate()
    t_start = time.perf_counter()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # save/load shard bars would clutter the training output
    accelerator = make_accelerator(config)
    world = accelerator.num_processes
    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // world))
    main = accelerator.is_main_process

    checkpoint = None
    if config.resume:
        run_dir, checkpoint = resolve_resume(config.resume)
    else:
        run_dir = os.path.abspath(os.path.join(config.output_dir, config.name or default_run_name(config)))
    if checkpoint is not None:
        read_checkpoint_state(checkpoint)  # fail fast on a damaged checkpoint
    if main:
        os.makedirs(run_dir, exist_ok=True)
        write_atomic(os.path.join(run_dir, "config.json"), json.dumps(asdict(config), indent=1))
    accelerator.wait_for_everyone()
    logger = MetricsLogger(run_dir, tensorboard=config.tensorboard, enabled=main)

    envs = make_envs(config, config.num_envs)
    # The evaluation env shares the task, tokenizer and scorer of the training env's prototype.
    eval_envs = type(envs.unwrapped)(num_envs=config.eval_batch_size, autoreset_mode="disabled", env=envs.env)
    proto = envs.env
    # The task metric: the env's own scorer unless the reward scorer was overridden (then the default).
    overridden = config.scorer is not None or "scorer" in config.env_kwargs
    metric = task_metric_scorer(eval_envs) if overridden else eval_envs.scorer

    def evaluate(p: PolicyWithValue, ref: ReferenceModel | None = None) -> dict[str, Any]:
        return evaluate_policy(p, eval_envs, reference=ref, max_examples=config.eval_examples,
                               num_samples=config.num_samples, metric_scorer=metric, seed=config.seed,
                               sampling=SamplingConfig(config.temperature, config.top_k, config.top_p))

    max_positions = proto.max_prompt_tokens + proto.max_new_tokens
    ref_dir = os.path.join(run_dir, REFERENCE_DIR)
    do_sft, do_ppo = config.algo in ("sft", "sft+ppo"), config.algo in ("ppo", "sft+ppo")
    tqdm = _tqdm(config.progress and main)

    # ---- the policy PPO starts from: built (+ SFT), or reloaded on resume -----------------------------
    resumed = config.resume is not None and os.path.isdir(ref_dir) and do_ppo
    policy = build_policy(ref_dir if resumed else config.model, proto.tokenizer, max_positions,
                          n_layer=config.n_layer, n_embd=config.n_embd, n_head=config.n_head, seed=config.seed)
    policy.to(accelerator.device)
    if do_sft and not resumed:
        data = build_sft_data(proto, "train", config.sft_max_examples)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=config.sft_learning_rate, weight_decay=0.0)
        model, optimizer = accelerator.prepare(policy, optimizer)
        with tqdm(total=config.sft_steps, desc="SFT", leave=False) as bar:
            run_sft(model, optimizer, data, steps=config.sft_steps, batch_size=config.sft_batch_size,
                    learning_rate=config.sft_learning_rate, accelerator=accelerator, seed=config.seed,
                    log=lambda step, m: logger.log("sft", step, m), progress=bar)
        accelerator.free_memory(model, optimizer)  # drop the DDP wrapper before PPO wraps again
        policy.eval()
    if main and not resumed:
        target = ref_dir if do_ppo else os.path.join(run_dir, POLICY_DIR)
        _save_policy_atomic(policy, proto.tokenizer, target)
    accelerator.wait_for_everyone()
    start_name = "SFT" if do_sft else "initial"

    # ---- PPO -----------------------------------------------------------------------------------------
    history: list[dict[str, Any]] = []
    reference = None
    if do_ppo:
        if config.lora_r:
            modules = config.lora_target_modules.split(",") if config.lora_target_modules else None
            policy.add_lora(r=config.lora_r, alpha=config.lora_alpha, target_modules=modules)
            policy.to(accelerator.device)
        reference = ReferenceModel(policy, model=None if config.lora_r else _frozen_reference(ref_dir, policy))
        reference.to(accelerator.device)
    before: dict[str, Any] = {}
    after: dict[str, Any] | None = None
    if do_ppo:
        before = _reference_eval(run_dir, main, config, lambda: evaluate(policy, reference))
        trainer = PPOTrainer(config, policy, reference, envs, accelerator, resume_from=checkpoint)
        logger.truncate("ppo", trainer.iteration)
        history = read_metrics(logger.path, "ppo") if main else []
        with tqdm(total=config.iterations, initial=trainer.iteration, desc="PPO") as bar:
            while trainer.iteration < config.iterations:
                metrics = trainer.iterate()
                it = trainer.iteration
                last = it == config.iterations
                if main and ((config.eval_every and it % config.eval_every == 0) or last):
                    after = evaluate(trainer.policy, reference)
                    metrics.update({"eval/score": after["score"], "eval/sampled_score": after["sampled_score"],
                                    "eval/reward": after["reward"], "eval/kl": after["kl"],
                                    "eval/length": after["length"]})
                logger.log("ppo", it, metrics)
                history.append({"phase": "ppo", "step": it, **metrics})
                bar.update(1)
                bar.set_postfix(reward=f"{metrics['reward/mean']:.3f}", kl=f"{metrics['objective/kl']:.2f}",
                                **({"eval": f"{metrics['eval/score']:.3f}"} if "eval/score" in metrics else {}))
                if (config.checkpoint_every and it % config.checkpoint_every == 0) or last:
                    trainer.save(run_dir, asdict(config))
                accelerator.wait_for_everyone()
        policy = trainer.policy
        if main:
            if after is None:  # nothing left to run (resumed a finished run)
                after = evaluate(policy, reference)
            _save_policy_atomic(policy, proto.tokenizer, os.path.join(run_dir, POLICY_DIR))
    elif main:
        before = evaluate(_initial_policy(config, proto, max_positions))
        after = evaluate(policy)

    # ---- outputs ---------------------------------------------------------------------------------------
    results: dict[str, Any] = {"run_dir": run_dir, "is_main_process": main, "history": history,
                               "before": before, "after": after, "table": ""}
    if main:
        names = (start_name, f"{start_name}+PPO") if do_ppo else ("initial", "SFT")
        rows = [{"name": names[0], **before}, {"name": names[1], **after}]
        samples = [{"prompt": b["prompt"], "reference": b["reference"], names[0]: b["completion"],
                    names[1]: a["completion"]} for b, a in zip(before["samples"], after["samples"])]
        title = f"{config.env}: {names[0]} vs {names[1]} (seed {config.seed})"
        results["table"] = results_table(rows, title=title, samples=samples)
        results["wall_time_s"] = time.perf_counter() - t_start
        write_atomic(os.path.join(run_dir, RESULTS_MD), results["table"])
        summary = {k: results[k] for k in ("before", "after", "wall_time_s")}
        write_atomic(os.path.join(run_dir, RESULTS_JSON),
                     json.dumps(_to_json({**summary, "names": names, "config": asdict(config)}), indent=1))
        plot_learning_curve(read_metrics(logger.path), os.path.join(run_dir, CURVE_PNG), title=config.env,
                            start_score=before.get("score"), start_name=names[0],
                            start_sampled=before.get("sampled_score"))
    results["wall_time_s"] = time.perf_counter() - t_start
    logger.close()
    envs.close()
    accelerator.wait_for_everyone()
    return results


def _tqdm(enabled: bool) -> Any:
    from functools import partial

    from tqdm.auto import tqdm

    return partial(tqdm, disable=not enabled, dynamic_ncols=True)


def _save_policy_atomic(policy: PolicyWithValue, tokenizer: Any, path: str) -> None:
    """``save_pretrained`` into ``path`` through a temporary folder and a rename."""
    import shutil

    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_pretrained(tmp, tokenizer=tokenizer)
    old = path + ".old"
    if os.path.exists(path):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _frozen_reference(ref_dir: str, policy: PolicyWithValue) -> torch.nn.Module:
    """The reference LM: the saved start-of-PPO policy (exactly what a resumed run must use)."""
    if not os.path.isdir(ref_dir):
        raise CheckpointError(f"The run's reference model {ref_dir!r} is missing; cannot compute the KL penalty.")
    ref = ReferenceModel.from_pretrained(policy, ref_dir)
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
