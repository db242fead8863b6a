"""``lmgym lm-demo``: PPO on a real pretrained LM (SmolLM2-135M-Instruct, no network), one command per task.

``--task review`` (the default; ``lmgym review-demo`` is the same command) is TRL's positive-review
example on this suite: SmolLM2 (the ``smollm2-135m`` preset) continues review openings of
``lmgym/PositiveReview-v1`` and PPO raises the reward ``sentiment + fluency_lm - repetition``: VADER
sentiment, the frozen SmolLM2's likelihood of the completion given the opening (``fluency=smollm2-135m``,
the ``ngram_fluency`` scale, which real English earns), and repeated bigrams, with a KL penalty to the
reference. ``--task summarize``: SmolLM2 summarizes real text zero-shot through its chat template
(``lmgym/Summarize-v1`` on ``examples/data/docstring_summaries.jsonl``, standard-library docstrings and
their one-line summaries, ``chat=True``), then PPO on ROUGE. Both use LoRA adapters (the reference is the
same weights with the adapters off, not a second copy). Before and after PPO the greedy completions of the
same validation examples are scored part by part; the run also records the reward and KL per iteration,
rollout tokens/s and peak memory::

    lmgym lm-demo --threads 1                    # 2 CPU cores: ~20 minutes (1 thread: decoding is many small kernels)
    lmgym lm-demo --task summarize --threads 1   # zero-shot summaries, then PPO on ROUGE
    lmgym lm-demo --preset gpu                   # CUDA, bf16, bigger batches and more iterations
    lmgym lm-demo --task summarize --table-only --readme README.md

Results: ``<output>/<task>-<preset>.json``, ``.md`` (table, samples) and ``.png`` (reward and KL per iteration).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmgym.agents.bench.sweep import add_report_flags, update_readme, write_result
from lmgym.atomic import write_atomic
from lmgym.errors import ConfigError, LmgymError

MODEL = "smollm2-135m"
#: The repository's examples folder (the summarize task's data).
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class DemoTask:
    """What one demo trains on and how its table reads.

    Attributes:
        env: the env id.
        env_kwargs: the env's keyword arguments for a model (paths relative to the repository root).
        parts: scorer spec whose per-part details the table reports (``None``: the env's reward scorer).
        columns: ``(key, label)`` of the table's columns (keys of the before/after records).
        title: the Markdown heading.
        reward: one sentence on the reward, for the Markdown.
        settings: ``lmgym train`` settings of this task that differ from :data:`PRESETS`, per preset.
    """

    env: str
    env_kwargs: Callable[[str], dict[str, Any]]
    parts: Any
    columns: tuple[tuple[str, str], ...]
    title: str
    reward: str
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)


TASKS: dict[str, DemoTask] = {
    "review": DemoTask(
        env="lmgym/PositiveReview-v1", env_kwargs=lambda model: {"fluency": model}, parts=None,
        columns=(("score", "reward (greedy)"), ("sentiment", "sentiment"), ("fluency_lm", "fluency (SmolLM2)"),
                 ("repetition", "repetition"), ("sampled_score", "reward (sampled)"),
                 ("kl", "KL to reference (nats)"), ("length", "tokens")),
        title="Positive reviews with a real LM: SmolLM2-135M-Instruct + PPO",
        reward="Reward = VADER sentiment + SmolLM2 fluency (1 - log perplexity / log V of the completion given the "
               "opening, under the frozen model) - repeated-bigram fraction, with the KL penalty to the reference."),
    "summarize": DemoTask(
        env="lmgym/Summarize-v1",
        env_kwargs=lambda model: {"dataset": "examples/data/docstring_summaries.jsonl", "chat": True},
        parts={"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0},
        columns=(("score", "ROUGE (greedy)"), ("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"),
                 ("sampled_score", "ROUGE (sampled)"), ("kl", "KL to reference (nats)"), ("length", "tokens"),
                 ("eos_rate", "ends (EOS)")),
        title="Summaries of real text with a real LM: SmolLM2-135M-Instruct zero-shot, then PPO on ROUGE",
        reward="Prompts go through SmolLM2's chat template (`chat=True`: a user message \"Summarize the following "
               "text in one sentence.\" with the docstring); reward = ROUGE (mean F1 of ROUGE-1/2/L with stemming, "
               "rouge-score's numbers) against the docstring's own one-line summary, with the KL penalty to the "
               "reference. The table's ROUGE-1/2/L are F1 of the same greedy completions.",
        # 21 validation examples; rollouts at temperature 0.7 (at 1.0 SmolLM2's samples score 0.09 against
        # greedy 0.16, little signal about the mode), 8 documents x 4 samples per iteration. At lr 2e-3 instead
        # of 5e-4, 20 iterations ended at the same greedy ROUGE (0.156 -> 0.156) with KL 1.8 (commit 349df99).
        settings={"cpu": dict(num_envs=32, learning_rate=5e-4, temperature=0.7, eval_examples=21),
                  "gpu": dict(learning_rate=5e-4, temperature=0.7, eval_examples=21)}),
}

#: ``lmgym train`` settings per preset (the rest are its defaults: RLOO needs no value head to warm up).
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(iterations=20, num_envs=16, samples_per_prompt=4, advantage="rloo", learning_rate=2e-4, lora_r=8,
                eval_every=5, eval_examples=32, device="cpu"),
    "gpu": dict(iterations=100, num_envs=64, samples_per_prompt=4, advantage="rloo", learning_rate=2e-4, lora_r=16,
                eval_every=10, eval_examples=200, device="cuda", mixed_precision="bf16"),
    "tiny": dict(iterations=1, num_envs=4, samples_per_prompt=2, advantage="rloo", learning_rate=2e-4, lora_r=2,
                 eval_every=1, eval_examples=4, device="cpu"),  # seconds, for the tests
}


def env_kwargs(task: DemoTask, model: str, resolve: bool = False) -> dict[str, Any]:
    """The task's env keyword arguments for ``model``; ``resolve``: data paths made absolute (to run anywhere)."""
    kwargs = task.env_kwargs(model)
    if resolve and isinstance(kwargs.get("dataset"), str) and kwargs["dataset"].startswith("examples/"):
        kwargs["dataset"] = str(EXAMPLES.parent / kwargs["dataset"])
    return kwargs


def part_scores(scorer: Any, samples: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each part ``scorer`` reports (its score details) over evaluation samples."""
    import numpy as np

    from lmgym.scorers.base import score_with_details

    _, details = score_with_details(scorer, [s["prompt"] for s in samples], [s["completion"] for s in samples],
                                    [[s["reference"]] for s in samples])
    keys = [k for k in details[0] if isinstance(details[0][k], float | int)] if details else []
    return {part: float(np.mean([d[part] for d in details])) for part in keys}


def peak_memory_mib(device: str) -> dict[str, float]:
    """Peak resident memory of this process (and peak CUDA memory on a GPU run), in MiB."""
    peak = {"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB
    if device == "cuda":
        import torch

        peak["cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def run_demo(task_name: str, preset: str, seed: int, threads: int, command: str, iterations: int | None = None,
             model: str = MODEL) -> dict[str, Any]:
    """Train ``model`` once with the preset's settings; return the record written to ``<task>-<preset>.json``."""
    import gymnasium as gym

    import lmgym  # noqa: F401  (registers the envs)
    from lmgym.agents.bench.provenance import git_commit, machine_info
    from lmgym.agents.train import TrainConfig, train
    from lmgym.scorers import make_scorer

    task = TASKS[task_name]
    settings = PRESETS[preset] | task.settings.get(preset, {})
    if iterations is not None:
        settings["iterations"] = iterations
    commit, dirty = git_commit()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lmgym-demo-") as work_dir:
        results = train(TrainConfig(env=task.env, env_kwargs=env_kwargs(task, model, resolve=True), model=model,
                                    algo="ppo", seed=seed, num_samples=settings["eval_examples"],
                                    output_dir=work_dir, name=task_name, threads=threads, progress=True,
                                    tensorboard=False, checkpoint_every=0, keep_checkpoints=1, **settings))
    minutes = (time.perf_counter() - t0) / 60
    ppo = [h for h in results["history"] if h.get("phase") == "ppo"]
    keys = ("score", "sampled_score", "kl", "length", "eos_rate")
    before, after = results["before"], results["after"]
    env = gym.make(task.env, tokenizer=model, **env_kwargs(task, model, resolve=True)).unwrapped
    scorer = env.scorer if task.parts is None else make_scorer(task.parts)
    # Evaluation plays the split's examples in order, so sample i is validation example i.
    sources = [ex.source for ex in env.task.examples("validation")]
    return {
        "task": task_name, "env": task.env, "env_kwargs": env_kwargs(task, model), "model": model, "preset": preset,
        "seed": seed, "settings": settings,
        "before": {k: before[k] for k in keys} | part_scores(scorer, before["samples"]),
        "after": {k: after[k] for k in keys} | part_scores(scorer, after["samples"]),
        "curve": [{"iteration": h["step"], "reward": h["reward/mean"], "kl": h["objective/kl"],
                   **({"eval_score": h["eval/score"]} if "eval/score" in h else {})} for h in ppo],
        "tokens_per_s": sum(h["charts/tokens_per_s"] for h in ppo) / max(len(ppo), 1),
        "iteration_s": sum(h["charts/iteration_s"] for h in ppo) / max(len(ppo), 1),
        "time_split_s": {part: sum(h.get(f"time/{part}_s", 0.0) for h in ppo) for part in ("rollout", "reference",
                                                                                             "update")},
        "peak_memory": peak_memory_mib(settings["device"]),
        "samples": [{"source": src, "reference": b["reference"], "before": b["completion"], "after": a["completion"]}
                    for src, b, a in zip(sources, before["samples"][:4], after["samples"][:4])],
        "minutes": minutes, "command": command, "commit": commit, "dirty": dirty,
        "machine": machine_info(settings["device"]), "threads": threads,
    }


def table(record: dict[str, Any]) -> list[str]:
    """Markdown lines: the task's columns (reward, its parts, sampled reward, KL...), before and after PPO."""
    cols = [(k, label) for k, label in TASKS[record.get("task", "review")].columns if k in record["before"]]
    lines = ["| policy | " + " | ".join(label for _, label in cols) + " |", "|---|" + "---:|" * len(cols)]
    for label, key in ((record["model"], "before"), ("+ PPO (LoRA)", "after")):
        lines.append(f"| {label} | " + " | ".join(f"{record[key][c]:.3f}" for c, _ in cols) + " |")
    return lines


def samples(record: dict[str, Any]) -> list[str]:
    """Markdown lines: before/after greedy completions of the first validation examples."""
    lines: list[str] = []
    for i, s in enumerate(record["samples"], 1):
        source = s.get("source", s.get("prompt", ""))
        source = source if len(source) <= 240 else source[:240] + " …"
        tick = "``" if "`" in source else "`"  # a code span that may hold backticks
        lines += [f"**{i}.** {tick}{source}{tick}  " if tick == "`" else f"**{i}.** {tick} {source} {tick}  "]
        if record.get("task", "review") != "review":
            lines += [f"reference: {s['reference'].strip()!r}  "]
        lines += [f"before: {s['before'].strip()!r}  ", f"after: {s['after'].strip()!r}", ""]
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
    reward_ax.set_title(f"{record['env'].split('/')[-1]} with SmolLM2-135M: reward")
    kl_ax.set_title("KL(policy || reference), nats per completion")
    for ax in (reward_ax, kl_ax):
        ax.set_xlabel("PPO iteration")
        ax.grid(alpha=0.3)
    reward_ax.legend(fontsize=7)
    return save_png(fig, path, dpi=90)


def summarize(record: dict[str, Any], stem: str) -> str:
    """``<output>/<stem>.md``: what ran, the table, speed and memory, samples, the plot and the command."""
    s, task = record["settings"], TASKS[record.get("task", "review")]
    kwargs = " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in record["env_kwargs"].items())
    return "\n".join([
        f"# {task.title} (preset `{record['preset']}`)", "",
        "<!-- GENERATED by `lmgym lm-demo --table-only` from the JSON. Do not edit by hand. -->", "",
        f"`lmgym train --env {record['env']} --env-kwargs {kwargs} --model {record['model']} --algo ppo` "
        f"with LoRA r={s['lora_r']} "
        f"(the reference is the base weights with the adapters off), {s['advantage']} advantages "
        f"({s['samples_per_prompt']} samples per prompt), lr {s['learning_rate']}, {s['iterations']} iterations x "
        f"{s['num_envs']} episodes. {task.reward} Table: greedy completions of the first {s['eval_examples']} "
        "validation examples (the same before and after), and the same examples sampled at temperature "
        f"{s.get('temperature', 1.0)}.",
        f"Commit {record['commit']}{' (dirty)' if record['dirty'] else ''}; machine: {record['machine'].get('cpu')}, "
        f"{record['machine'].get('cores')} cores, torch threads {record['threads'] or 'all'}.", "",
        *table(record), "", speed_line(record), "", f"![reward and KL]({stem}.png)", "", "Samples (greedy):", "",
        *samples(record), "Command:", "", "```bash", record["command"], "```", ""])


def readme_markers(task_name: str) -> tuple[str, str]:
    """The README block markers of a task's generated block."""
    name = "review-demo" if task_name == "review" else f"lm-demo-{task_name}"
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def readme_block(record: dict[str, Any], stem: str, output: str) -> str:
    """The top README's block: the table, speed line and samples."""
    begin, end = readme_markers(record.get("task", "review"))
    task = "" if record.get("task", "review") == "review" else f" --task {record['task']}"
    return "\n".join([begin, f"Generated by `lmgym lm-demo{task} --table-only --readme README.md` from "
                      f"`{output}/{stem}.json` (commit {record['commit']}).", "", *table(record), "",
                      speed_line(record), "", f"![reward and KL]({output}/{stem}.png)", "",
                      *samples(record)[:-1], end])


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym lm-demo`` argument parser."""
    parser = argparse.ArgumentParser(prog="lmgym lm-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="review", choices=list(TASKS),
                        help="review (PositiveReview-v1, default) or summarize (Summarize-v1 on docstrings)")
    parser.add_argument("--preset", default="cpu", choices=list(PRESETS), help="cpu (default), gpu or tiny (tests)")
    parser.add_argument("--model", default=MODEL, help=f"causal LM: preset, .gguf, folder or hub id ({MODEL})")
    parser.add_argument("--seed", type=int, default=0, help="seed (0)")
    parser.add_argument("--iterations", type=int, default=None, help="PPO iterations (default: the preset's)")
    add_report_flags(parser, "leaderboards/smollm2", "lm-demo")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym lm-demo`` (and ``lmgym review-demo``)."""
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    stem = f"{args.task}-{args.preset}"
    path = output / f"{stem}.json"
    try:
        if not args.table_only:
            if args.seed < 0 or (args.iterations is not None and args.iterations < 1):
                raise ConfigError("--seed must be >= 0 and --iterations >= 1.")
            command = f"lmgym lm-demo --task {args.task} --preset {args.preset} --seed {args.seed}" + (
                f" --iterations {args.iterations}" if args.iterations else "") + (
                f" --model {args.model}" if args.model != MODEL else "") + (
                f" --threads {args.threads}" if args.threads else "")
            record = run_demo(args.task, args.preset, args.seed, args.threads, command, args.iterations, args.model)
            write_result(path, record)
        if not path.is_file():
            raise ConfigError(f"{str(path)!r} does not exist: run `lmgym lm-demo --task {args.task} --preset "
                              f"{args.preset}` first.")
        record = json.loads(path.read_text())
        plot(record, output / f"{stem}.png")
        text = summarize(record, stem)
        if args.readme:
            update_readme(Path(args.readme), readme_block(record, stem, args.output), *readme_markers(args.task))
    except LmgymError as exc:
        print(f"lmgym lm-demo: error: {exc}", file=sys.stderr)
        return 2
    write_atomic(output / f"{stem}.md", text)
    print(text)
    return 0
