"""``lmgym speed``: the rollout-speed benchmark. Six measurements, one run, one model, one batch.

    lmgym speed                      # default sizes (~3 min on 2 CPU cores) -> leaderboards/speed/
    lmgym speed --threads 1          # on a busy machine (other processes on the cores)
    lmgym speed --preset tiny        # seconds (the test suite runs it)
    lmgym speed --preset gpu         # GPT-2-124M-size model, --device cuda --dtype bf16
    lmgym speed --peer trl           # another benchmark: lmgym vs TRL's GRPOTrainer (lmgym.agents.bench.peer_trl)

- **a** ``model.generate`` with its KV cache, sampling ``R`` new tokens (``min_new_tokens=R``): the limit;
- **b** PPO's rollout as PPO runs it: lockstep vector env + :func:`~lmgym.agents.ppo.rollout.collect_rollout`
  (KV cache, sampling, values, log-probs) + :meth:`ReferenceModel.logprobs` (one teacher-forced pass);
- **c** a per-token full recompute through the env (no cache: every step re-reads prompt + response);
- **d** env-only steps/s: native ``BatchedTokenEnv`` vs ``SyncVectorEnv``, the same random non-EOS actions, for
  ``env``, Copy, Translate, PositiveReview and Keywords with their default scorers, then with ``length``;
- **e** tensor bytes (and CUDA peak) of policy + value + reference: full copy vs LoRA adapters disabled;
- **f** one PPO update (:meth:`PPOTrainer.update`: ``epochs x minibatches`` steps) on the rollout of b.

a, b, c and f share the model, ``N``, ``P`` and ``R``; the EOS logit is masked (a hook on the LM head)
so every path writes exactly ``N x R`` tokens. Timed blocks alternate (a, b, a, b...; native, sync...)
``repeats`` times (d: once per episode) and the fastest counts: the machine is shared, so ratios count.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import itertools
import math
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from lmgym.agents.bench.provenance import git_commit, machine_info
from lmgym.agents.bench.speed_report import format_markdown, write_results
from lmgym.agents.ppo.math import token_rewards
from lmgym.agents.ppo.policy import build_policy, position_ids_from_mask
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.agents.ppo.rollout import SamplingConfig, collect_rollout, sample_tokens, used_prompt_columns
from lmgym.agents.ppo.trainer import PPOTrainer
from lmgym.agents.train.config import TrainConfig
from lmgym.agents.train.run import make_accelerator
from lmgym.errors import ConfigError, LmgymError
from lmgym.flags import add_dataclass_flags, given_flags

SECTIONS = ("a", "b", "c", "d", "e", "f")
DTYPES = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}  # --dtype -> accelerate mixed_precision
TARGETS = {  # ratio name -> (comparison, bound), at default sizes
    "b_over_a": (">=", 0.9),
    "b_over_c": (">=", 10.0),
    # d: native vector env vs SyncVectorEnv, each env with its default scorer (issue #16: >= 10 for every task)
    "d_native_over_sync": (">=", 10.0),
    "d_copy_native_over_sync": (">=", 10.0),
    "d_translate_native_over_sync": (">=", 10.0),
    "d_review_native_over_sync": (">=", 10.0),
    "d_keywords_native_over_sync": (">=", 10.0),
    "e_lora_over_one_model": ("<=", 1.3),
}


@dataclass
class SpeedConfig:
    """Sizes and settings of one benchmark run (each field is a flag: ``--num-envs 32``)."""

    preset: str = "default"
    """``default`` (CPU, minutes), ``tiny`` (tests, seconds) or ``gpu`` (GPT-2-124M size, CUDA bf16)."""
    env: str = "lmgym/Summarize-v0"
    """Env of sections a, b, c, f and the first env of d."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of that env, e.g. ``--env-kwargs scorer=length`` (sizes set ``P`` and ``R``)."""
    num_envs: int = 32
    """Batch ``N``: env slots = sequences generated together."""
    prompt_tokens: int = 96
    """Prompt length ``P`` (the env's ``max_prompt_tokens``; shorter prompts are left-padded)."""
    new_tokens: int = 64
    """New tokens ``R`` per sequence (the env's ``max_new_tokens``); the prompt plus ``R`` is the context of c."""
    n_layer: int = 4
    """Layers of the GPT-2-style model."""
    n_embd: int = 256
    """Width of the model."""
    n_head: int = 4
    """Attention heads of the model."""
    lora_r: int = 8
    """LoRA rank of the adapter-sharing reference in e."""
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``auto``."""
    dtype: str = "fp32"
    """``fp32``, ``bf16`` or ``fp16``: autocast mixed precision (as PPO runs), the same in every section."""
    threads: int = 2
    """torch CPU threads."""
    seed: int = 0
    """Seeds model init, env resets, actions and sampling."""
    repeats: int = 3
    """Alternating rounds of a and b; the fastest of each is kept."""
    env_steps: int = 640
    """Vector-env steps per env in d (whole episode cycles, at least one)."""
    sections: tuple[str, ...] = SECTIONS
    """Sections to run (all by default)."""
    out: str = "leaderboards/speed"
    """Folder for ``<preset>.json`` and ``<preset>.md`` (empty: write nothing)."""


SPEED_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": dict(num_envs=4, prompt_tokens=24, new_tokens=8, n_layer=1, n_embd=32, n_head=2, lora_r=4, threads=1,
                 repeats=1, env_steps=40),
    "gpu": dict(num_envs=64, prompt_tokens=96, new_tokens=128, n_layer=12, n_embd=768, n_head=12, lora_r=16,
                device="cuda", dtype="bf16", env_steps=1280),
}


# ---- helpers ------------------------------------------------------------------------------------------
def tensor_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of the unique storages behind the parameters and buffers of ``modules`` (shared counted once)."""
    storages: dict[tuple[str, int], int] = {}
    for module in modules:
        for t in itertools.chain(module.parameters(), module.buffers()):
            st = t.untyped_storage()
            storages[(str(st.device), st.data_ptr())] = st.nbytes()
    return sum(storages.values())


def mask_eos(model: torch.nn.Module, eos_id: int) -> None:
    """Make ``model`` never pick ``eos_id``: its LM head's output gets a logit of -1e4 there."""
    index: dict[torch.device, torch.Tensor] = {}  # one index tensor per device: no copy per forward

    def hook(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        if output.device not in index:
            index[output.device] = torch.tensor([eos_id], device=output.device)
        return output.index_fill(-1, index[output.device], -1e4)

    model.get_output_embeddings().register_forward_hook(hook)


@contextlib.contextmanager
def timed(device: torch.device, out: dict[str, float], key: str = "seconds") -> Iterator[None]:
    """Store the block's wall-clock seconds in ``out[key]`` (CUDA synchronised) and its process CPU seconds in
    ``out[key + "_cpu"]`` (with one thread, CPU time is immune to other processes' load)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    yield
    sync()
    out[key], out[key + "_cpu"] = time.perf_counter() - t0, time.process_time() - c0


# ---- the setup shared by a, b, c, e, f --------------------------------------------------------------------
@dataclass
class Setup:
    """The lockstep vector env, EOS-masked policy, full-copy reference and accelerator of a run."""

    cfg: SpeedConfig
    envs: Any
    policy: Any
    reference: Any
    accelerator: Any
    train_config: Any
    sampling: Any  # PPO's default sampling (temperature 1, no top-k/top-p), used by a, b and c alike

    @property
    def device(self) -> torch.device:
        """Where the models run."""
        return self.accelerator.device


def build_setup(cfg: SpeedConfig) -> Setup:
    """Build the env, a policy of the config's size (EOS masked), its full-copy reference and accelerator."""
    if cfg.dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPES)}; got {cfg.dtype!r}.")
    if cfg.dtype != "fp32" and (cfg.device == "cpu" or not torch.cuda.is_available()):
        raise ConfigError(f"--dtype {cfg.dtype} needs CUDA (autocast mixed precision); use --dtype fp32 on CPU.")
    train_config = TrainConfig(env=cfg.env, num_envs=cfg.num_envs, n_layer=cfg.n_layer, n_embd=cfg.n_embd,
                               n_head=cfg.n_head, seed=cfg.seed, device=cfg.device, mixed_precision=DTYPES[cfg.dtype],
                               threads=cfg.threads, progress=False, tensorboard=False)
    train_config.validate()
    accelerator = make_accelerator(train_config)
    envs = gym.make_vec(cfg.env, num_envs=cfg.num_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", **{**cfg.env_kwargs, "max_prompt_tokens": cfg.prompt_tokens,
                                                      "max_new_tokens": cfg.new_tokens})
    policy = build_policy("default", envs.env.tokenizer, cfg.prompt_tokens + cfg.new_tokens, n_layer=cfg.n_layer,
                          n_embd=cfg.n_embd, n_head=cfg.n_head, seed=cfg.seed)
    mask_eos(policy.model, envs.env.eos_token_id)
    policy.to(accelerator.device).eval()
    reference = ReferenceModel(policy).to(accelerator.device)  # a frozen full copy, as PPO without LoRA runs
    sampling = SamplingConfig(train_config.temperature, train_config.top_k, train_config.top_p)
    return Setup(cfg, envs, policy, reference, accelerator, train_config, sampling)


# ---- a, b, c: tokens through the model ---------------------------------------------------------------------
def run_generate(s: Setup, obs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Section a: ``model.generate`` with its KV cache, plain sampling, exactly ``R`` new tokens per row.

    It gets the prompts as b's rollout feeds them: without the columns that are padding in every row.
    """
    used = used_prompt_columns(obs["prompt_mask"])
    prompt_ids = torch.as_tensor(obs["prompt_ids"][:, used], device=s.device)  # (N, P')
    prompt_mask = torch.as_tensor(obs["prompt_mask"][:, used], device=s.device)
    env, sampling, out = s.envs.env, s.sampling, {}
    torch.manual_seed(s.cfg.seed)
    with timed(s.device, out), torch.no_grad(), s.accelerator.autocast():
        ids = s.policy.model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, do_sample=True,
                                      temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p,
                                      max_new_tokens=s.cfg.new_tokens, min_new_tokens=s.cfg.new_tokens,
                                      pad_token_id=env.pad_token_id, eos_token_id=env.eos_token_id)  # (N, P+R)
    out["tokens"] = int(ids[:, prompt_ids.shape[1] :].numel())
    out["tokens_per_s"] = out["tokens"] / out["seconds"]
    return out


def run_rollout(s: Setup) -> tuple[dict[str, Any], Any, torch.Tensor]:
    """Section b: env + KV-cached rollout + reference log-probs; returns timings, rollout, reference log-probs."""
    sampling, out = s.sampling, {}
    generator = torch.Generator(device=s.device).manual_seed(s.cfg.seed)
    with timed(s.device, out, "rollout_s"), s.accelerator.autocast():
        ro = collect_rollout(s.policy, s.envs, sampling, generator=generator, seed=s.cfg.seed)
    with timed(s.device, out, "reference_s"), s.accelerator.autocast():
        ref_logprobs = s.reference.logprobs(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask,
                                            temperature=sampling.temperature or 1.0)
    out["seconds"] = out["rollout_s"] + out["reference_s"]
    out["tokens"] = int(ro.response_ids.numel())  # N x steps: every row is computed on every step
    out["valid_tokens"] = ro.num_tokens
    out["tokens_per_s"] = out["tokens"] / out["seconds"]
    out["rollout_only_tokens_per_s"] = out["tokens"] / out["rollout_s"]
    out["mean_score"] = float(ro.scores.mean())
    return out, ro, ref_logprobs


def run_recompute(s: Setup) -> dict[str, Any]:
    """Section c: step the env with one full forward over prompt + response-so-far per token (no cache)."""
    sampling, dev, out, steps = s.sampling, s.device, {}, 0
    generator = torch.Generator(device=dev).manual_seed(s.cfg.seed)
    with timed(dev, out), torch.no_grad(), s.accelerator.autocast():
        obs, _ = s.envs.reset(seed=s.cfg.seed)
        active = np.ones(s.cfg.num_envs, bool)
        used = used_prompt_columns(obs["prompt_mask"])  # the same prompt columns as a and b
        prompt_ids = torch.as_tensor(obs["prompt_ids"][:, used], device=dev)  # (N, P'): fixed in lockstep
        prompt_mask = torch.as_tensor(obs["prompt_mask"][:, used], device=dev)
        while active.any():
            t = int(obs["step"].max())
            ids = torch.cat([prompt_ids, torch.as_tensor(obs["response_ids"][:, :t], device=dev)], 1)  # (N, P'+t)
            mask = torch.cat([prompt_mask, torch.as_tensor(obs["response_mask"][:, :t], device=dev)], 1)
            lm = s.policy.model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                                use_cache=False, output_hidden_states=True, logits_to_keep=1)
            logits = s.policy.cut_logits(lm.logits[:, -1])  # (N, V)
            s.policy.values_from_hidden(lm.hidden_states[-1][:, -1])  # (N,) the value PPO would store
            token = sample_tokens(logits, sampling, generator)  # (N,)
            logp = torch.log_softmax(logits.float() / (sampling.temperature or 1.0), -1)  # (N, V)
            logp.gather(-1, token[:, None])  # the log-prob PPO would store
            obs, _, term, trunc, _ = s.envs.step(token.cpu().numpy())
            active &= ~(term | trunc)
            steps += 1
    out["tokens"] = s.cfg.num_envs * steps
    out["tokens_per_s"] = out["tokens"] / out["seconds"]
    out["context"] = prompt_ids.shape[1] + steps
    return out


# ---- d: env-only --------------------------------------------------------------------------------------------
# Section d's other text tasks (key, env name): chrF and weighted-sum default scorers.
D_TEXT_TASKS = (("translate", "Translate"), ("review", "PositiveReview"), ("keywords", "Keywords"))


def run_env(env_id: str, num_envs: int, steps: int, seed: int, **env_kwargs: Any) -> dict[str, Any]:
    """Section d: slot-steps/s of the native vector env vs ``SyncVectorEnv`` (both autoreset on the next step).

    Both get the same random non-special actions. After one warm-up episode (prompt tables, scorers)
    they alternate timed blocks of one episode cycle (``R`` steps and the restart step) for about
    ``steps`` steps; the fastest block of each counts (short blocks filter out other processes' bursts). A timed
    block holds the env's steps alone: its episodes and rewards are counted after the clock stops.
    ``episodes`` and ``total_reward`` add up all blocks: the same for both when the envs agree.
    ``mean_ratio`` compares the wall time of all blocks and ``cpu_ratio`` their process CPU time (one
    thread, so other processes' load hardly moves it).
    ``native.scoring_share`` is the part of the native time spent decoding and scoring finished
    episodes (``native.scorer_share``: in the scorer itself); ``ratio_bound_scoring_only`` is the native/sync
    ratio if nothing else cost time.
    """
    envs = {"native": gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs),
            "sync": gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **env_kwargs)}
    proto = envs["native"].env
    words = np.setdiff1d(np.arange(proto.vocab_size), proto.tokenizer.all_special_ids)
    cycle = proto.max_new_tokens + 1
    blocks = max(1, math.ceil(steps / cycle))
    actions = np.random.default_rng(seed).choice(words, size=(1 + blocks, cycle, num_envs))
    out: dict[str, Any] = {"env": env_id, "scorer": proto.scorer.name, "num_envs": num_envs, "blocks": blocks,
                           "episode_tokens": proto.max_new_tokens}
    for name, env in envs.items():
        out[name] = {"seconds": math.inf, "total_seconds": 0.0, "total_cpu_seconds": 0.0, "episodes": 0,
                     "total_reward": 0.0}
        env.reset(seed=seed)
        for a in actions[0]:
            env.step(a)
    # The native env's decoding + scoring of finished episodes (work SyncVectorEnv does alike, per env).
    scoring_start, scorer_start = envs["native"].scoring_seconds, envs["native"].scorer_seconds
    for block in actions[1:]:
        for name, env in envs.items():
            row, t, results = out[name], {}, []
            with timed(torch.device("cpu"), t):  # the env's steps alone: the counting below is not timed
                for a in block:
                    results.append(env.step(a)[1:4])
            for r, term, trunc in results:
                done = term | trunc
                row["episodes"] += int(done.sum())
                row["total_reward"] += float(r[done].sum())
            row["seconds"] = min(row["seconds"], t["seconds"])
            row["total_seconds"] += t["seconds"]
            row["total_cpu_seconds"] += t["seconds_cpu"]
    for name, env in envs.items():
        out[name]["steps_per_s"] = num_envs * cycle / out[name]["seconds"]  # fastest block
        out[name]["mean_steps_per_s"] = num_envs * cycle * blocks / out[name]["total_seconds"]
        env.close()
    out["ratio"] = out["native"]["steps_per_s"] / out["sync"]["steps_per_s"]
    out["mean_ratio"] = out["native"]["mean_steps_per_s"] / out["sync"]["mean_steps_per_s"]
    # Process CPU time of all blocks: both sides run in this one thread, so other processes' load hardly moves it.
    out["cpu_ratio"] = out["sync"]["total_cpu_seconds"] / max(out["native"]["total_cpu_seconds"], 1e-12)
    # Where the native time goes, and the ratio native could reach if its per-step array work were free.
    scoring = envs["native"].scoring_seconds - scoring_start
    out["native"]["scoring_share"] = scoring / out["native"]["total_seconds"]
    out["native"]["scorer_share"] = (envs["native"].scorer_seconds - scorer_start) / out["native"]["total_seconds"]
    out["ratio_bound_scoring_only"] = out["sync"]["total_seconds"] / max(scoring, 1e-12)
    return out


# ---- e: memory ------------------------------------------------------------------------------------------------
def run_memory(s: Setup, ro: Any) -> dict[str, Any]:
    """Section e: tensor bytes (and CUDA peak) of policy + value + reference, full copy vs LoRA-disabled."""
    cfg, cuda = s.cfg, s.device.type == "cuda"
    out: dict[str, Any] = {}
    for variant in ("full_copy", "lora"):
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated(s.device)
            torch.cuda.reset_peak_memory_stats(s.device)
        policy = build_policy("default", s.envs.env.tokenizer, cfg.prompt_tokens + cfg.new_tokens,
                              n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, seed=cfg.seed)
        policy.to(s.device).eval()
        out["one_model_bytes"] = tensor_bytes(policy.model)
        if variant == "lora":
            with warnings.catch_warnings():  # peft notes that GPT-2's Conv1D needs fan_in_fan_out (and sets it)
                warnings.simplefilter("ignore", UserWarning)
                policy.add_lora(r=cfg.lora_r)
            policy.to(s.device)
        reference = ReferenceModel(policy)
        total = tensor_bytes(policy, *([reference.model] if reference.model is not None else []))
        row = {"bytes": total, "ratio_to_one_model": total / out["one_model_bytes"],
               "shares_weights": reference.shares_weights}
        if cuda:  # weights plus the activations of the rollout batch through reference and policy
            with torch.no_grad(), s.accelerator.autocast():
                reference.logprobs(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask)
                policy(ro.prompt_ids, ro.prompt_mask, ro.response_ids, ro.response_mask)
            row["cuda_max_allocated"] = torch.cuda.max_memory_allocated(s.device) - base
        out[variant] = row
        del policy, reference
    return out


# ---- f: one PPO update ----------------------------------------------------------------------------------------
def run_update(s: Setup, ro: Any, ref_logprobs: torch.Tensor) -> dict[str, Any]:
    """Section f: one PPO update (``epochs x minibatches`` forward/backward steps) on the rollout of b."""
    cfg = s.train_config
    trainer = PPOTrainer(cfg, s.policy, s.reference, s.envs, s.accelerator)
    mask = ro.response_mask.float()
    rewards, _ = token_rewards(ro.scores, ro.logprobs, ref_logprobs, mask, trainer.kl_controller.value)
    advantages, returns = trainer.advantages(ro.values, rewards, mask)
    generator = torch.Generator(device=s.device).manual_seed(s.cfg.seed)
    out: dict[str, Any] = {}
    with timed(s.device, out):
        stats = trainer.update(ro, advantages, returns, generator)
    out.update(epochs=cfg.epochs, epochs_run=int(stats["policy/epochs"]), minibatches=cfg.minibatches,
               approx_kl=float(stats["policy/approx_kl"]))
    out["optimizer_steps"] = out["epochs_run"] * cfg.minibatches
    return out


# ---- the run ----------------------------------------------------------------------------------------------------
def run(cfg: SpeedConfig, command: str = "", log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the selected sections with ``cfg.threads`` torch threads; returns what goes into the JSON."""
    if set(cfg.sections) - set(SECTIONS):
        raise ConfigError(f"Unknown sections {sorted(set(cfg.sections) - set(SECTIONS))}; choose from {SECTIONS}.")
    threads, t_start = torch.get_num_threads(), time.perf_counter()
    torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, command, log, t_start)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: SpeedConfig, command: str, log: Callable[[str], None], t_start: float) -> dict[str, Any]:
    s = build_setup(cfg)
    lm, want, sec = s.policy.model.config, set(cfg.sections), {}
    obs, _ = s.envs.reset(seed=cfg.seed)
    N, P, R = cfg.num_envs, cfg.prompt_tokens, cfg.new_tokens
    Pu = P - used_prompt_columns(obs["prompt_mask"]).start  # the prompt columns a, b and c feed
    model = {"type": lm.model_type, "n_layer": lm.n_layer, "n_embd": lm.n_embd, "n_head": lm.n_head,
             "vocab_size": lm.vocab_size, "parameters": sum(p.numel() for p in s.policy.model.parameters())}
    commit, dirty = git_commit()
    res: dict[str, Any] = {
        "command": command, "config": dataclasses.asdict(cfg), "git": {"commit": commit, "dirty": dirty},
        "machine": {**machine_info(s.device), "load_avg_start": os.getloadavg()[0]},
        "sizes": {"env": cfg.env, "num_envs": N, "prompt_tokens": P, "new_tokens": R, "context": Pu + R,
                  "prompt_real_tokens_mean": float(obs["prompt_mask"].sum(1).mean()), "prompt_tokens_used": Pu,
                  "model": model,
                  # token positions each path pushes through the model: the work, where compute-bound
                  "forward_tokens": {"a": N * (Pu + R - 1), "b": N * (Pu + R - 1) + N * (Pu + R),
                                     "c": N * sum(Pu + t for t in range(R))}},
        "seeds": {"seed": cfg.seed, "env_slots": f"{cfg.seed} + slot", "torch": cfg.seed}, "sections": sec,
    }
    log(f"lmgym speed: {cfg.env} N={N} P={P} R={R}, model {lm.n_layer}x{lm.n_embd} on {s.device} "
        f"({cfg.dtype}, torch threads: {cfg.threads}); sections {' '.join(cfg.sections)}")
    if "d" in want:  # each env as shipped, then with a cheap scorer: the env machinery alone
        for key, env_id, kw in (("summarize", cfg.env, {**cfg.env_kwargs, "max_prompt_tokens": P, "max_new_tokens": R}),
                                ("copy", "lmgym/Copy-v0", {}),  # Copy: short episodes, scoring-heavy
                                # the other text tasks with their default scorers and sizes
                                *((k, f"lmgym/{name}-v0", {}) for k, name in D_TEXT_TASKS)):
            sec.setdefault("d", {})[key] = run_env(env_id, N, cfg.env_steps, cfg.seed, **kw)
            sec["d"][f"{key}_machinery"] = run_env(env_id, N, cfg.env_steps, cfg.seed, **{**kw, "scorer": "length"})
    if want & {"a", "b", "e", "f"}:
        if "a" in want:  # warm-up (lazy inits, allocator), then a and b alternate: load changes hit both alike
            run_generate(s, obs)
        _, ro, ref_logprobs = run_rollout(s)
        for _ in range(cfg.repeats if want & {"a", "b"} else 0):
            if "a" in want:
                a = run_generate(s, obs)
                sec["a"] = min(sec.get("a", a), a, key=lambda x: x["seconds"])
            if "b" in want:
                b, ro, ref_logprobs = run_rollout(s)
                sec["b"] = min(sec.get("b", b), b, key=lambda x: x["seconds"])
    if "c" in want:
        sec["c"] = run_recompute(s)
    if "e" in want:
        sec["e"] = run_memory(s, ro)
    if "f" in want:
        sec["f"] = run_update(s, ro, ref_logprobs)
    res["ratios"] = ratios(sec)
    res["targets"] = {}
    for name, (op, bound) in TARGETS.items():
        value = res["ratios"].get(name)
        met = None if value is None else bool(value >= bound if op == ">=" else value <= bound)
        res["targets"][name] = {"op": op, "bound": bound, "value": value, "met": met}
    res["wall_s"], res["machine"]["load_avg_end"] = time.perf_counter() - t_start, os.getloadavg()[0]
    return res


def ratios(sec: dict[str, Any]) -> dict[str, float]:
    """The ratios the targets are stated in, and some that explain them, from the sections that ran."""
    r: dict[str, float] = {}
    tps = {k: sec[k]["tokens_per_s"] for k in "abc" if k in sec}
    if "a" in sec and "b" in sec:
        r["b_over_a"] = tps["b"] / tps["a"]
        r["b_rollout_only_over_a"] = sec["b"]["rollout_only_tokens_per_s"] / tps["a"]
        # What b/a would be with a rollout exactly as fast as generate: the reference pass alone costs this much.
        r["b_bound_with_reference_over_a"] = sec["a"]["seconds"] / (sec["a"]["seconds"] + sec["b"]["reference_s"])
        r["b_over_a_cpu_time"] = sec["a"]["seconds_cpu"] / (sec["b"]["rollout_s_cpu"] + sec["b"]["reference_s_cpu"])
    if "b" in sec and "c" in sec:
        r["b_over_c"] = tps["b"] / tps["c"]
        r["b_over_c_cpu_time"] = sec["c"]["seconds_cpu"] / (sec["b"]["rollout_s_cpu"] + sec["b"]["reference_s_cpu"])
    for key, d in sec.get("d", {}).items():
        r["d_native_over_sync" if key == "summarize" else f"d_{key}_native_over_sync"] = d["ratio"]
    if "e" in sec:
        r["e_full_copy_over_one_model"] = sec["e"]["full_copy"]["ratio_to_one_model"]
        r["e_lora_over_one_model"] = sec["e"]["lora"]["ratio_to_one_model"]
    if "f" in sec and "b" in sec:
        r["f_update_over_rollout"] = sec["f"]["seconds"] / sec["b"]["seconds"]
    return r


def config_from_args(argv: Sequence[str]) -> SpeedConfig:
    """Parse ``lmgym speed`` flags (one per :class:`SpeedConfig` field) over the chosen preset's values."""
    parser = argparse.ArgumentParser(prog="lmgym speed", description=__doc__.split("\n\n")[0])
    choices = {"preset": sorted(SPEED_PRESETS), "device": ["cpu", "cuda", "auto"], "dtype": sorted(DTYPES),
               "sections": SECTIONS}
    add_dataclass_flags(parser, SpeedConfig, choices=choices)
    given = given_flags(parser, SpeedConfig, argv)
    return SpeedConfig(**{**SPEED_PRESETS[given.get("preset", "default")], **given})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym speed``: run, print the Markdown table, write JSON and Markdown."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--peer" or a.startswith("--peer=") for a in argv):  # the peer benchmark: its own flags
        from lmgym.agents.bench.peer_trl import main as peer_main

        return peer_main(argv)
    try:
        cfg = config_from_args(argv)
        res = run(cfg, command=shlex.join(["lmgym", "speed", *argv]))
    except LmgymError as exc:
        print(f"lmgym speed: error: {exc}", file=sys.stderr)
        return 2
    print(format_markdown(res))
    if cfg.out:
        print("Wrote {} and {}".format(*write_results(res, cfg.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
