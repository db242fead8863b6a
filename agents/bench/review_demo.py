"""``lmgym review-demo``: TRL's positive-review example on this suite, with a real pretrained LM.

SmolLM2-135M-Instruct (the ``smollm2-135m`` preset, no network) continues review openings of
``lmgym/PositiveReview-v1``; PPO with LoRA adapters (the reference is the same weights with the
adapters off, not a second copy) raises the reward ``sentiment + fluency_lm - repetition``: VADER
sentiment, the frozen SmolLM2's likelihood of the completion given the opening (``fluency=smollm2-135m``,
the ``ngram_fluency`` scale, which real English earns), and repeated bigrams, with a KL penalty to the
reference. Before and after PPO the greedy completions of the same validation openings are scored part
by part; the run also records the reward and KL per iteration, rollout tokens/s and peak memory::

    lmgym review-demo --threads 1           # 2 CPU cores: ~20 minutes (1 thread: decoding is many small kernels)
    lmgym review-demo --preset gpu          # CUDA, bf16, bigger batches and more iterations
    lmgym review-demo --table-only --readme README.md

Results: ``<output>/<preset>.json``, ``<output>/<preset>.md`` (table, samples) and ``<output>/<preset>.png``
(reward and KL per iteration).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmgym.agents.bench.sweep import add_report_flags, update_readme, write_result
from lmgym.atomic import write_atomic
from lmgym.errors import ConfigError, LmgymError

ENV = "lmgym/PositiveReview-v1"
MODEL = "smollm2-135m"
README_BEGIN, README_END = "<!-- review-demo:begin -->", "<!-- review-demo:end -->"
PARTS = ("sentiment", "fluency_lm", "repetition")

#: ``lmgym train`` settings per preset (the rest are its defaults: RLOO needs no value head to warm up).
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(iterations=20, num_envs=16, samples_per_prompt=4, advantage="rloo", learning_rate=2e-4, lora_r=8,
                eval_every=5, eval_examples=32, device="cpu"),
    "gpu": dict(iterations=100, num_envs=64, samples_per_prompt=4, advantage="rloo", learning_rate=2e-4, lora_r=16,
                eval_every=10, eval_examples=200, device="cuda", mixed_precision="bf16"),
    "tiny": dict(iterations=1, num_envs=4, samples_per_prompt=2, advantage="rloo", learning_rate=2e-4, lora_r=2,
                 eval_every=1, eval_examples=4, device="cpu"),  # seconds, for the tests
}


def part_scores(samples: list[dict[str, Any]], model: str) -> dict[str, float]:
    """Mean reward parts (``sentiment``, ``fluency_lm``, ``repetition``) of evaluation samples (the env's scorer)."""
    import gymnasium as gym
    import numpy as np

    import lmgym  # noqa: F401  (registers the envs)
    from lmgym.scorers.base import score_with_details

    scorer = gym.make(ENV, tokenizer=model, fluency=model).unwrapped.scorer
    _, details = score_with_details(scorer, [s["prompt"] for s in samples], [s["completion"] for s in samples],
                                    [[s["reference"]] for s in samples])
    return {part: float(np.mean([d[part] for d in details])) for part in PARTS}


def peak_memory_mib(device: str) -> dict[str, float]:
    """Peak resident memory of this process (and peak CUDA memory on a GPU run), in MiB."""
    peak = {"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB
    if device == "cuda":
        import torch

        peak["cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def run_demo(preset: str, seed: int, threads: int, command: str, iterations: int | None = None,
             model: str = MODEL) -> dict[str, Any]:
    """Train ``model`` once with the preset's settings; return the record written to ``<preset>.json``."""
    from lmgym.agents.bench.provenance import git_commit, machine_info
    from lmgym.agents.train import TrainConfig, train

    settings = dict(PRESETS[preset])
    if iterations is not None:
        settings["iterations"] = iterations
    commit, dirty = git_commit()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lmgym-review-") as work_dir:
        results = train(TrainConfig(env=ENV, env_kwargs={"fluency": model}, model=model, algo="ppo", seed=seed,
                                    num_samples=settings["eval_examples"], output_dir=work_dir, name="review",
                                    threads=threads, progress=True, tensorboard=False, checkpoint_every=0,
                                    keep_checkpoints=1, **settings))
    minutes = (time.perf_counter() - t0) / 60
    ppo = [h for h in results["history"] if h.get("phase") == "ppo"]
    keys = ("score", "sampled_score", "kl", "length")
    before, after = results["before"], results["after"]
    record = {
        "env": ENV, "env_kwargs": {"fluency": model}, "model": model, "preset": preset, "seed": seed,
        "settings": settings,
        "before": {k: before[k] for k in keys} | part_scores(before["samples"], model),
        "after": {k: after[k] for k in keys} | part_scores(after["samples"], model),
        "curve": [{"iteration": h["step"], "reward": h["reward/mean"], "kl": h["objective/kl"],
                   **({"eval_score": h["eval/score"]} if "eval/score" in h else {})} for h in ppo],
        "tokens_per_s": sum(h["charts/tokens_per_s"] for h in ppo) / max(len(ppo), 1),
        "iteration_s": sum(h["charts/iteration_s"] for h in ppo) / max(len(ppo), 1),
        "time_split_s": {part: sum(h.get(f"time/{part}_s", 0.0) for h in ppo) for part in ("rollout", "reference",
                                                                                             "update")},
        "peak_memory": peak_memory_mib(settings["device"]),
        "samples": [{"prompt": b["prompt"], "before": b["completion"], "after": a["completion"]}
                    for b, a in zip(before["samples"][:4], after["samples"][:4])],
        "minutes": minutes, "command": command, "commit": commit, "dirty": dirty,
        "machine": machine_info(settings["device"]), "threads": threads,
    }
    return record


def table(record: dict[str, Any]) -> list[str]:
    """Markdown lines: the reward, its parts, sampled reward and KL, before and after PPO."""
    cols = ("score", "sentiment", "fluency_lm", "repetition", "sampled_score", "kl", "length")
    names = ("reward (greedy)", "sentiment", "fluency (SmolLM2)", "repetition", "reward (sampled)",
             "KL to reference (nats)", "tokens")
    lines = ["| policy | " + " | ".join(names) + " |", "|---|" + "---:|" * len(cols)]
    for label, key in ((record["model"], "before"), ("+ PPO (LoRA)", "after")):
        lines.append(f"| {label} | " + " | ".join(f"{record[key][c]:.3f}" for c in cols) + " |")
    return lines


def samples(record: dict[str, Any]) -> list[str]:
    """Markdown lines: before/after greedy completions of the first validation openings."""
    lines: list[str] = []
    for i, s in enumerate(record["samples"], 1):
        lines += [f"**{i}.** `{s['prompt']}`  ", f"before: {s['before'].strip()!r}  ", f"after: {s['after'].strip()!r}",
                  ""]
    return lines


def speed_line(record: dict[str, Any]) -> str:
    """One line: time, tokens/s, time split and peak memory of the run."""
    split = record["time_split_s"]
    total = sum(split.values()) or 1.0
    names = {"rollout": "rollout" if split.get("reference") else "rollout (reference log-probs included)",
             "reference": "reference", "update": "update"}
    shares = ", ".join(f"{names[k]} {v / total:.0%}" for k, v in split.items() if v > 0)
    memory = ", ".join(f"{v:,.0f} MiB {k.split('_')[0].upper()}" for k, v in record["peak_memory"].items())
    return (f"{record['minutes']:.1f} min in all ({record['settings']['iterations']} iterations x "
            f"{record['settings']['num_envs']} episodes, {record['iteration_s']:.1f} s per iteration); rollout "
            f"{record['tokens_per_s']:.0f} tokens/s; PPO time: {shares}; peak memory {memory}.")


def plot(record: dict[str, Any], path: Path) -> bool:
    """Reward (sampled, per iteration) and KL to the reference per PPO iteration; ``False`` without matplotlib."""
    from lmgym.agents.train.metrics import new_figure, save_png

    fig = new_figure((10, 3.5))
    if fig is None:
        return False
    reward_ax, kl_ax = fig.subplots(1, 2)
    its = [p["iteration"] for p in record["curve"]]
    reward_ax.plot(its, [p["reward"] for p in record["curve"]], ".-", label="rollout reward (sampled)")
    evals = [p for p in record["curve"] if "eval_score" in p]
    reward_ax.plot([0] + [p["iteration"] for p in evals],
                   [record["before"]["score"]] + [p["eval_score"] for p in evals], "o-",
                   label="validation reward (greedy)")
    kl_ax.plot(its, [p["kl"] for p in record["curve"]], ".-", color="tab:red")
    reward_ax.set_title("PositiveReview-v1 with SmolLM2-135M: reward")
    kl_ax.set_title("KL(policy || reference), nats per completion")
    for ax in (reward_ax, kl_ax):
        ax.set_xlabel("PPO iteration")
        ax.grid(alpha=0.3)
    reward_ax.legend(fontsize=7)
    return save_png(fig, path, dpi=90)


def summarize(record: dict[str, Any], preset: str) -> str:
    """``<output>/<preset>.md``: what ran, the table, speed and memory, samples, the plot and the command."""
    s = record["settings"]
    return "\n".join([
        f"# Positive reviews with a real LM: SmolLM2-135M-Instruct + PPO (preset `{preset}`)", "",
        "<!-- GENERATED by `lmgym review-demo --table-only` from the JSON. Do not edit by hand. -->", "",
        f"`lmgym train --env {ENV} --env-kwargs fluency={record['model']} --model {record['model']} --algo ppo` "
        f"with LoRA r={s['lora_r']} "
        f"(the reference is the base weights with the adapters off), {s['advantage']} advantages "
        f"({s['samples_per_prompt']} samples per opening), lr {s['learning_rate']}, {s['iterations']} iterations x "
        f"{s['num_envs']} episodes. Reward = VADER sentiment + SmolLM2 fluency (1 - log perplexity / log V of the "
        "completion given the opening, under the frozen model) - repeated-bigram fraction, with the KL penalty to "
        f"the reference. Table: greedy completions of the first {s['eval_examples']} validation openings (the same "
        "openings before and after), and the same openings sampled at temperature 1.",
        f"Commit {record['commit']}{' (dirty)' if record['dirty'] else ''}; machine: {record['machine'].get('cpu')}, "
        f"{record['machine'].get('cores')} cores, torch threads {record['threads'] or 'all'}.", "",
        *table(record), "", speed_line(record), "", f"![reward and KL]({preset}.png)", "", "Samples (greedy):", "",
        *samples(record), "Command:", "", "```bash", record["command"], "```", ""])


def readme_block(record: dict[str, Any], preset: str) -> str:
    """The top README's block: the table, speed line and samples."""
    return "\n".join([README_BEGIN, f"Generated by `lmgym review-demo --table-only --readme README.md` from "
                      f"`leaderboards/smollm2/{preset}.json` (commit {record['commit']}).", "", *table(record), "",
                      speed_line(record), "", f"![reward and KL](leaderboards/smollm2/{preset}.png)", "",
                      *samples(record)[:-1], README_END])


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym review-demo`` argument parser."""
    parser = argparse.ArgumentParser(prog="lmgym review-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu", choices=list(PRESETS), help="cpu (default), gpu or tiny (tests)")
    parser.add_argument("--model", default=MODEL, help=f"causal LM: preset, .gguf, folder or hub id ({MODEL})")
    parser.add_argument("--seed", type=int, default=0, help="seed (0)")
    parser.add_argument("--iterations", type=int, default=None, help="PPO iterations (default: the preset's)")
    add_report_flags(parser, "leaderboards/smollm2", "review-demo")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym review-demo``."""
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    path = output / f"{args.preset}.json"
    try:
        if not args.table_only:
            if args.seed < 0 or (args.iterations is not None and args.iterations < 1):
                raise ConfigError("--seed must be >= 0 and --iterations >= 1.")
            command = f"lmgym review-demo --preset {args.preset} --seed {args.seed}" + (
                f" --iterations {args.iterations}" if args.iterations else "") + (
                f" --model {args.model}" if args.model != MODEL else "") + (
                f" --threads {args.threads}" if args.threads else "")
            record = run_demo(args.preset, args.seed, args.threads, command, args.iterations, args.model)
            write_result(path, record)
        if not path.is_file():
            raise ConfigError(f"{str(path)!r} does not exist: run `lmgym review-demo --preset {args.preset}` first.")
        record = json.loads(path.read_text())
        plot(record, output / f"{args.preset}.png")
        text = summarize(record, args.preset)
        if args.readme:
            update_readme(Path(args.readme), readme_block(record, args.preset), README_BEGIN, README_END)
    except LmgymError as exc:
        print(f"lmgym review-demo: error: {exc}", file=sys.stderr)
        return 2
    write_atomic(output / f"{args.preset}.md", text)
    print(text)
    return 0
