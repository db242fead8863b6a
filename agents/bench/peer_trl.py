"""``lmgym speed --peer trl``: lmgym's PPO trainer against TRL's ``GRPOTrainer``, time to quality on one CPU budget.

    lmgym speed --peer trl --threads 1          # the main job's task, 30 steps each (minutes on 2 cores)
    lmgym speed --peer trl --preset tiny        # seconds (the test suite runs it)

Both trainers start from the same SFT warm start (a small GPT-2 trained here, or ``--model DIR``), see the same
prompts in the same order (``steps`` × ``prompts_per_step`` train prompts, each sampled ``samples_per_prompt``
times: lmgym's :func:`~lmgym.agents.ppo.trainer.prompt_group_examples` picks them, TRL reads them unshuffled),
are rewarded by the env's own scorer, sample at the same temperature and learn at the same rate with the same KL
coefficient. Every ``eval_every`` steps each run pauses for the same greedy validation evaluation
(:func:`~lmgym.agents.train.evaluation.evaluate_policy`, the held-out protocol); that time is not counted.

Reported per trainer: completions/s, completion tokens/s, wall time split into rollout (sampling and scoring),
reference (the frozen reference's log-probs) and update (everything else: TRL's recomputed old log-probs, the
loss passes, the optimizer), and the curve of greedy score against wall time. The headline is the
``time_to_quality_ratio`` of :func:`~lmgym.agents.bench.peer_report.time_to_quality`.

TRL's GRPO computes the log-probs of left-padded prompts without position ids (GPT-2 then reads every prompt
shifted by its padding). By default the benchmark gives TRL's models the positions of the real tokens (a forward
pre-hook, :func:`add_position_ids`), so both trainers optimise the distribution they sample from;
``--no-trl-position-ids`` runs TRL as it ships.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lmgym.agents.bench.peer_report import format_markdown, time_to_quality, write_results
from lmgym.agents.bench.provenance import git_commit, machine_info
from lmgym.agents.ppo.policy import PolicyWithValue, build_policy, position_ids_from_mask
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.sft import build_sft_data, run_sft
from lmgym.agents.ppo.trainer import PPOTrainer, iteration_seed, prompt_group_examples
from lmgym.agents.train.config import TrainConfig
from lmgym.agents.train.evaluation import evaluate_policy, task_metric_scorer
from lmgym.agents.train.run import make_accelerator, make_envs, save_policy
from lmgym.errors import ConfigError, LmgymError, MissingDependencyError
from lmgym.flags import add_dataclass_flags, given_flags
from lmgym.scorers.base import score_with_details
from lmgym.token_env import batch_meta

PEERS = ("trl",)
TRL_SHAPES = ("stock", "lmgym")


@dataclass
class PeerConfig:
    """Settings of one side-by-side run (each field is a flag: ``--steps 100``)."""

    peer: str = "trl"
    """The peer trainer (``trl``: TRL's ``GRPOTrainer``)."""
    preset: str = "default"
    """``default`` (the issue's setting, minutes) or ``tiny`` (seconds, for tests)."""
    env: str = "lmgym/PositiveReview-v1"
    """The task (default: the main job's, ``lmgym train``'s); its scorer is the reward of both trainers, its task
    metric the evaluation's."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env keyword arguments (``KEY=VALUE`` items)."""
    model: str | None = None
    """A warm-start policy folder (``runs/<name>/reference``); ``None``: SFT a default GPT-2 here."""
    n_layer: int = 2
    """Layers of the default GPT-2 (as ``lmgym train``)."""
    n_embd: int = 128
    """Width of the default GPT-2."""
    n_head: int = 4
    """Heads of the default GPT-2."""
    sft_steps: int = 600
    """SFT steps of the warm start (``lmgym train``'s default)."""
    steps: int = 30
    """Training steps of each trainer (one rollout batch and its update per step); 30 as the main job's PPO."""
    prompts_per_step: int = 64
    """Train prompts per step."""
    samples_per_prompt: int = 4
    """Completions per prompt (TRL's ``num_generations``)."""
    temperature: float = 0.7
    """Sampling temperature of both (their log-probs are those of the tempered distribution)."""
    learning_rate: float = 1e-4
    """Adam learning rate of both (constant)."""
    kl_coef: float = 0.05
    """KL coefficient to the reference: lmgym's per-token reward penalty, TRL's ``beta`` (a loss term)."""
    advantage: str = "grpo"
    """lmgym's advantage estimator (``grpo``, ``rloo`` or ``gae``); ``grpo`` gained the most per completion here."""
    epochs: int = 2
    """lmgym's passes over each batch."""
    minibatches: int = 2
    """lmgym's minibatches per pass."""
    trl_shape: str = "stock"
    """TRL's update: ``stock`` (one optimizer step on the whole batch, TRL's default) or ``lmgym`` (``epochs``
    passes × ``minibatches`` steps: ``num_iterations`` and ``steps_per_generation``)."""
    trl_position_ids: bool = True
    """Give TRL's forward passes the positions of the real tokens (see the module docstring)."""
    eval_every: int = 5
    """Steps between greedy evaluations (and after the last step)."""
    eval_examples: int = 500
    """Validation examples per evaluation (500: the whole validation split of the built-in tasks)."""
    threads: int = 1
    """torch CPU threads (the same for both)."""
    seed: int = 0
    """Seeds the warm start, prompts, sampling and both trainers."""
    out: str = "leaderboards/speed"
    """Folder for ``<name>.json``, ``.md`` and ``.png`` (empty: write nothing)."""
    name: str = "peer-trl"
    """File name stem of the results."""


PEER_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": dict(env_kwargs={"max_new_tokens": 6}, n_layer=1, n_embd=32, n_head=2, sft_steps=4, steps=2,
                 prompts_per_step=2, samples_per_prompt=2, eval_every=1, eval_examples=4, out=""),
}


def import_trl() -> Any:
    """The ``trl`` module, or a :class:`MissingDependencyError` naming ``pip install 'lmgym[trl]'``."""
    try:
        import trl
    except ImportError as exc:
        raise MissingDependencyError("trl", "trl", "The peer benchmark against TRL (lmgym speed --peer trl)") from exc
    return trl


def train_config(cfg: PeerConfig, model: str) -> TrainConfig:
    """lmgym's side as a :class:`TrainConfig` (validated)."""
    tc = TrainConfig(env=cfg.env, env_kwargs=dict(cfg.env_kwargs), model=model, n_layer=cfg.n_layer,
                     n_embd=cfg.n_embd, n_head=cfg.n_head, seed=cfg.seed, device="cpu", mixed_precision="no",
                     threads=cfg.threads, iterations=cfg.steps, num_envs=cfg.prompts_per_step * cfg.samples_per_prompt,
                     samples_per_prompt=cfg.samples_per_prompt, epochs=cfg.epochs, minibatches=cfg.minibatches,
                     learning_rate=cfg.learning_rate, kl_coef=cfg.kl_coef, advantage=cfg.advantage,
                     temperature=cfg.temperature, sft_steps=cfg.sft_steps, eval_examples=cfg.eval_examples,
                     progress=False, tensorboard=False)
    tc.validate()
    return tc


def warm_start(cfg: PeerConfig, envs: Any, folder: str) -> str:
    """The folder both trainers start from: ``cfg.model``, or a default GPT-2 SFT-trained here, saved to ``folder``."""
    if cfg.model:
        return cfg.model
    proto = envs.env
    tc = train_config(cfg, "default")
    policy = build_policy("default", proto.tokenizer, proto.max_prompt_tokens + proto.max_new_tokens,
                          n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, seed=cfg.seed)
    accelerator = make_accelerator(tc)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=tc.sft_learning_rate, weight_decay=0.0)
    model, optimizer = accelerator.prepare(policy, optimizer)
    run_sft(model, optimizer, build_sft_data(proto, "train"), steps=cfg.sft_steps, batch_size=tc.sft_batch_size,
            learning_rate=tc.sft_learning_rate, accelerator=accelerator, seed=cfg.seed)
    save_policy(accelerator.unwrap_model(model).eval(), proto.tokenizer, folder)
    return folder


class Evaluator:
    """The greedy validation evaluation both runs pause for; keeps the curve and the time it took.

    Each point also has ``kl``: the exact KL(policy || warm start) summed over each greedy completion, so a higher
    score can be read against how far the policy moved to get it.
    """

    def __init__(self, cfg: PeerConfig, eval_envs: Any, metric: Any, reference: ReferenceModel, name: str) -> None:
        self.cfg, self.envs, self.metric, self.reference, self.name = cfg, eval_envs, metric, reference, name
        self.curve: list[dict[str, Any]] = [{"step": 0, "completions": 0, "wall_s": 0.0, "score": math.nan,
                                             "kl": 0.0}]
        self.seconds = 0.0

    def start(self, policy: PolicyWithValue) -> Evaluator:
        """Score the warm start (the curve's point 0); returns ``self``."""
        result = evaluate_policy(policy, self.envs, max_examples=self.cfg.eval_examples, num_samples=0,
                                 metric_scorer=self.metric, seed=self.cfg.seed)
        self.curve[0]["score"] = result["score"]
        return self

    def due(self, step: int) -> bool:
        """Whether to evaluate after ``step`` training steps."""
        return step == self.cfg.steps or (self.cfg.eval_every > 0 and step % self.cfg.eval_every == 0)

    def __call__(self, policy: PolicyWithValue, step: int, wall_s: float) -> None:
        t0 = time.perf_counter()
        result = evaluate_policy(policy, self.envs, reference=self.reference, max_examples=self.cfg.eval_examples,
                                 num_samples=0, metric_scorer=self.metric, seed=self.cfg.seed)
        self.seconds += time.perf_counter() - t0
        per_step = self.cfg.prompts_per_step * self.cfg.samples_per_prompt
        self.curve.append({"step": step, "completions": step * per_step, "wall_s": wall_s, "score": result["score"],
                           "kl": result["kl"]})
        print(f"{self.name} step {step}/{self.cfg.steps}: greedy score {result['score']:.4f} (KL {result['kl']:.2f}) "
              f"after {wall_s:.1f} s", file=sys.stderr, flush=True)


def summarize(cfg: PeerConfig, shape: str, curve: list[dict[str, Any]], times: dict[str, float],
              tokens: int) -> dict[str, Any]:
    """One trainer's row: throughput, the wall-time split and the curve."""
    completions = cfg.steps * cfg.prompts_per_step * cfg.samples_per_prompt
    total = times["total_s"]
    return {"shape": shape, "completions": completions, "completion_tokens": tokens,
            "completions_per_s": completions / total, "tokens_per_s": tokens / total,
            "time": {k: float(v) for k, v in times.items()}, "curve": curve}


def run_lmgym(cfg: PeerConfig, model: str, evaluator: Evaluator) -> dict[str, Any]:
    """lmgym's PPO trainer for ``cfg.steps`` iterations from ``model``."""
    tc = train_config(cfg, model)
    torch.manual_seed(cfg.seed)
    accelerator = make_accelerator(tc)
    envs = make_envs(tc, tc.num_envs)
    proto = envs.env
    policy = build_policy(model, proto.tokenizer, proto.max_prompt_tokens + proto.max_new_tokens, seed=cfg.seed)
    policy.to(accelerator.device).eval()
    trainer = PPOTrainer(tc, policy, ReferenceModel(policy), envs, accelerator)
    proto.prompt_table(proto.split)  # tokenize the train prompts before the clock starts (TRL's dataset is ready too)
    times = dict.fromkeys(("total_s", "rollout_s", "reference_s", "update_s"), 0.0)
    tokens = 0
    for step in range(1, cfg.steps + 1):
        t0 = time.perf_counter()
        metrics = trainer.iterate()
        times["total_s"] += time.perf_counter() - t0
        for key in ("rollout_s", "reference_s", "update_s"):
            times[key] += metrics[f"time/{key}"]
        tokens += trainer.last_rollout.num_tokens
        if evaluator.due(step):
            evaluator(trainer.policy, step, times["total_s"])
    envs.close()
    times["other_s"] = times["total_s"] - times["rollout_s"] - times["reference_s"] - times["update_s"]
    shape = f"{cfg.advantage}, {cfg.epochs} epochs × {cfg.minibatches} minibatches"
    return summarize(cfg, shape, evaluator.curve, times, tokens)


def add_position_ids(model: torch.nn.Module) -> None:
    """Make ``model`` compute position ids from the attention mask on every full (uncached) forward that lacks them,
    so a left-padded prompt reads as the unpadded one (what lmgym's :func:`~lmgym.agents.ppo.policy.lm_forward`
    does). Cached decoding steps and calls that pass positions are left alone."""

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        mask = kwargs.get("attention_mask")
        cached = kwargs.get("past_key_values") is not None or kwargs.get("cache") is not None
        if kwargs.get("position_ids") is None and mask is not None and not cached:
            kwargs["position_ids"] = position_ids_from_mask(mask)
        return args, kwargs

    model.register_forward_pre_hook(hook, with_kwargs=True)


def trl_dataset(cfg: PeerConfig, proto: Any) -> Any:
    """TRL's training rows: lmgym's prompts of every step, in order (``prompt`` text and ``example_index``).

    Raises:
        ConfigError: TRL's tokenizer call would read other prompt tokens than the env does.
    """
    from datasets import Dataset

    examples = proto.task.examples(proto.split)
    index = [int(i) for step in range(1, cfg.steps + 1)
             for i in prompt_group_examples(len(examples), cfg.prompts_per_step, iteration_seed(cfg.seed, step))]
    prompts = [examples[i].prompt for i in index]
    ids, lengths = proto.prompt_table(proto.split)
    for i, got in zip(index[: cfg.prompts_per_step], proto.tokenizer(prompts[: cfg.prompts_per_step])["input_ids"]):
        if list(got) != ids[i, ids.shape[1] - lengths[i]:].tolist():
            raise ConfigError(f"TRL would tokenize prompt {i} of {cfg.env} differently from the env (special tokens "
                              "or a prompt longer than max_prompt_tokens); the peer benchmark needs the same tokens.")
    return Dataset.from_dict({"prompt": prompts, "example_index": index})


def run_trl(cfg: PeerConfig, model: str, proto: Any, evaluator: Evaluator, workdir: str) -> dict[str, Any]:
    """TRL's ``GRPOTrainer`` for ``cfg.steps`` generation batches from ``model``, timed and evaluated alike."""
    import_trl()
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    examples, scorer = proto.task.examples(proto.split), proto.scorer
    counted = {"tokens": 0}

    def env_reward(prompts: list[str], completions: list[str], completion_ids: list[list[int]],
                   example_index: list[int], **_: Any) -> list[float]:
        """The env's scorer on TRL's decoded completions (the env's own scoring call)."""
        counted["tokens"] += sum(len(c) for c in completion_ids)
        chosen = [examples[i] for i in example_index]
        return score_with_details(scorer, [e.prompt for e in chosen], completions,
                                  [list(e.references) for e in chosen], **batch_meta(chosen))[0]

    lmgym_shape = cfg.trl_shape == "lmgym"
    batch = cfg.prompts_per_step * cfg.samples_per_prompt
    passes, steps_per_batch = (cfg.epochs, cfg.minibatches) if lmgym_shape else (1, 1)
    args = GRPOConfig(output_dir=workdir, per_device_train_batch_size=batch // steps_per_batch,
                      steps_per_generation=steps_per_batch, num_iterations=passes,
                      num_generations=cfg.samples_per_prompt, max_completion_length=proto.max_new_tokens,
                      temperature=cfg.temperature, learning_rate=cfg.learning_rate, lr_scheduler_type="constant",
                      beta=cfg.kl_coef, max_steps=cfg.steps * passes * steps_per_batch, shuffle_dataset=False,
                      seed=cfg.seed, use_cpu=True, bf16=False, fp16=False, report_to="none", save_strategy="no",
                      logging_steps=10**9, disable_tqdm=True, dataloader_num_workers=0)
    timing = dict.fromkeys(("rollout_s", "reference_s", "old_logps_s"), 0.0)

    class TimedGRPOTrainer(GRPOTrainer):
        """GRPOTrainer that adds up where its time goes (generation + scoring, reference pass, old log-probs)."""

        in_rollout = False

        def _generate_and_score_completions(self, inputs: Any) -> Any:
            t0, before = time.perf_counter(), timing["reference_s"] + timing["old_logps_s"]
            self.in_rollout = True
            try:
                return super()._generate_and_score_completions(inputs)
            finally:
                self.in_rollout = False
                inner = timing["reference_s"] + timing["old_logps_s"] - before
                timing["rollout_s"] += time.perf_counter() - t0 - inner

        def _get_per_token_logps_and_entropies(self, model: Any, *a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            out = super()._get_per_token_logps_and_entropies(model, *a, **k)
            if self.in_rollout:
                timing["reference_s" if model is self.ref_model else "old_logps_s"] += time.perf_counter() - t0
            return out

    class Evaluate(TrainerCallback):
        """Time the training (evaluations excluded) and evaluate after every ``eval_every`` generation batches."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            per = passes * steps_per_batch
            if state.global_step % per == 0 and evaluator.due(state.global_step // per):
                wall = time.perf_counter() - self.start - evaluator.seconds
                timing["total_s"] = wall
                evaluator(PolicyWithValue(model, num_actions=len(proto.tokenizer)), state.global_step // per, wall)

    torch.manual_seed(cfg.seed)
    trainer = TimedGRPOTrainer(model=model, reward_funcs=env_reward, args=args, train_dataset=trl_dataset(cfg, proto),
                               processing_class=proto.tokenizer, callbacks=[Evaluate()])
    trainer.remove_callback(PrinterCallback)  # its end-of-training dict; this benchmark reports its own numbers
    if cfg.trl_position_ids:
        for lm in (trainer.model, trainer.ref_model):
            if lm is not None:
                add_position_ids(lm)
    trainer.train()
    timing["update_s"] = timing["total_s"] - timing["rollout_s"] - timing["reference_s"]
    shape = (f"{passes} passes × {steps_per_batch} steps" if lmgym_shape else "stock: 1 step per batch") + (
        "" if cfg.trl_position_ids else ", no position ids")
    return summarize(cfg, shape, evaluator.curve, timing, counted["tokens"])


def differences(cfg: PeerConfig) -> list[str]:
    """What still differs between the two trainers in this run (the Markdown report lists it)."""
    trl_update = (f"{cfg.epochs} passes × {cfg.minibatches} optimizer steps per batch" if cfg.trl_shape == "lmgym"
                  else "one optimizer step per batch")
    return [
        f"KL placement: lmgym puts -{cfg.kl_coef} × (log π − log π_ref) into each token's reward, so the KL enters "
        f"the advantages in reward units; TRL adds β = {cfg.kl_coef} × the k3 estimator of KL to the loss, beside "
        "advantages divided by each group's std, so near the task's ceiling (small score spreads) its KL term weighs "
        "relatively less.",
        f"Update shape: lmgym {cfg.epochs} epochs × {cfg.minibatches} minibatches per batch, reusing the rollout's "
        f"log-probs as the old policy's; TRL {trl_update}"
        + (", recomputing the old log-probs in an extra pass." if cfg.trl_shape == "lmgym" else "."),
        f"Advantages: lmgym `{cfg.advantage}` on each completion's total reward (score and KL penalty), then rescaled "
        "over the batch's tokens; TRL the score's group-mean baseline divided by the group's std "
        "(`scale_rewards='group'`), loss averaged over all tokens (`loss_type='dapo'`).",
        "Adam epsilon: lmgym 1e-5, TRL 1e-8 (transformers' default); both without weight decay, gradient norm clipped "
        "to 1.",
        "lmgym trains a value head beside the LM (vf_coef 0.1; rloo and grpo advantages do not read it), TRL has "
        "none.",
        "Position ids: " + ("TRL's forward passes get the positions of the real tokens from the benchmark (TRL as "
                            "shipped reads left-padded GPT-2 prompts shifted)." if cfg.trl_position_ids else
                            "TRL runs as shipped: its log-prob passes read left-padded prompts shifted."),
    ]


def run(cfg: PeerConfig, command: str = "") -> dict[str, Any]:
    """The whole benchmark: warm start, lmgym's run, TRL's run, the comparison."""
    if cfg.peer not in PEERS:
        raise ConfigError(f"--peer must be one of {PEERS}; got {cfg.peer!r}.")
    if cfg.trl_shape not in TRL_SHAPES:
        raise ConfigError(f"--trl-shape must be one of {TRL_SHAPES}; got {cfg.trl_shape!r}.")
    trl = import_trl()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # model save/load bars
    torch.set_num_threads(cfg.threads)
    load_start, wall_start = os.getloadavg()[0], time.perf_counter()
    envs = make_envs(train_config(cfg, "default"), cfg.prompts_per_step * cfg.samples_per_prompt)
    proto = envs.env
    eval_envs = type(envs.unwrapped)(num_envs=min(100, cfg.eval_examples), autoreset_mode="disabled", env=proto)
    metric = task_metric_scorer(eval_envs)
    with tempfile.TemporaryDirectory(prefix="lmgym-peer-") as workdir:
        model = warm_start(cfg, envs, os.path.join(workdir, "warm-start"))
        start = build_policy(model, proto.tokenizer, proto.max_prompt_tokens + proto.max_new_tokens, seed=cfg.seed)
        reference = ReferenceModel(start)  # the warm start, frozen: what both runs' KL is measured to
        lmgym = run_lmgym(cfg, model, Evaluator(cfg, eval_envs, metric, reference, "lmgym").start(start))
        peer = run_trl(cfg, model, proto, Evaluator(cfg, eval_envs, metric, reference, "trl").start(start),
                       os.path.join(workdir, "trl"))
    commit, dirty = git_commit()
    machine = {**machine_info("cpu"), "load_avg_start": load_start, "load_avg_end": os.getloadavg()[0]}
    return {
        "command": command, "config": asdict(cfg), "git": {"commit": commit, "dirty": dirty}, "machine": machine,
        "versions": {"trl": trl.__version__}, "reward": metric.name,
        "warm_start": cfg.model or f"default GPT-2 {cfg.n_layer} × {cfg.n_embd}, {cfg.sft_steps} SFT steps",
        "lmgym": lmgym, "trl": peer, "time_to_quality": time_to_quality(lmgym["curve"], peer["curve"]),
        "time_to_quality_ratio": time_to_quality(lmgym["curve"], peer["curve"])["time_to_quality_ratio"],
        "differences": differences(cfg), "wall_s": time.perf_counter() - wall_start,
    }


def config_from_args(argv: Sequence[str]) -> PeerConfig:
    """Parse ``lmgym speed --peer trl`` flags (one per :class:`PeerConfig` field) over the preset's values."""
    parser = argparse.ArgumentParser(prog="lmgym speed --peer", description=__doc__.split("\n\n")[0])
    choices = {"peer": PEERS, "preset": sorted(PEER_PRESETS), "trl_shape": TRL_SHAPES,
               "advantage": ("rloo", "grpo", "gae")}
    add_dataclass_flags(parser, PeerConfig, choices=choices)
    given = given_flags(parser, PeerConfig, argv)
    return PeerConfig(**{**PEER_PRESETS[given.get("preset", "default")], **given})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym speed --peer trl``: run both trainers, print the report, write the results."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = config_from_args(argv)
        res = run(cfg, command=shlex.join(["lmgym", "speed", *argv]))
    except LmgymError as exc:
        print(f"lmgym speed --peer: error: {exc}", file=sys.stderr)
        return 2
    print(format_markdown(res))
    if cfg.out:
        print("Wrote " + ", ".join(str(p) for p in write_results(res, cfg.out, cfg.name)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
