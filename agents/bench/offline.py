"""``lmgym offline-bench``: SFT on all logs vs filtered BC vs ILQL, from the same logged data, per env and seed.

For each env the logs are made once (``lmgym logs make ENV``: the demonstrators, a sampled SFT policy and
random tokens, each on the first ``--prompts`` train prompts, labelled with the env's reward) and written to
``<output>/logs/``. Then, for each seed, three learners train on exactly those rows for the same number of
optimizer steps at the same learning rate, from the same freshly initialised model:

- ``sft-all``: behaviour cloning of every row (``lmgym train --algo sft --data LOGS``);
- ``bc-top``: filtered BC, the rows with the top ``--top-fraction`` rewards (``--data-top-fraction``);
- ``ilql``: ILQL (``--algo ilql``) with an advantage-weighted policy term (``--awac-temperature``), evaluated at
  every ``--betas`` value (``beta = 0`` is its own policy, advantage-weighted regression on the logs, unsteered).

Every score is the env's task metric, greedy, on the held-out protocol (first 200 validation examples).
One JSON per (env, learner, seed) goes to ``<output>/results/`` (a rerun skips those present) and
``<output>/README.md`` is regenerated from them::

    lmgym offline-bench                                   # the four -v1 tasks x seeds 0 1 2
    lmgym offline-bench --envs lmgym/PositiveReview-v1 --seeds 0 --iterations 10
    lmgym offline-bench --table-only                      # rebuild README.md from the JSON
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmgym.agents.bench.sweep import (
    DEFAULT_ENVS,
    add_report_flags,
    commits_of,
    metric_name,
    read_results,
    update_readme,
    write_result,
)
from lmgym.atomic import write_atomic
from lmgym.errors import ConfigError, LmgymError

LEARNERS = ("sft-all", "bc-top", "ilql")
NO_RESULTS = ("offline", "run lmgym offline-bench first")
"""What :func:`~lmgym.agents.bench.sweep.read_results` says of a folder without results."""
DEFAULT_AWAC_TEMPERATURE = 0.5
"""ILQL's policy term: ``exp((G_t - V(s_t)) / 0.5)``-weighted log-likelihood (chosen on a Translate-v1 pilot, seed 0:
0.5 with the return against the expectile V lifted beta = 0 from 0.47 to 0.70 chrF, while 0.3 and 0.05 with Q - V did
not help or collapsed; rewards are normalised to std 1 over the logs)."""
DEFAULT_ILQL_ITERATIONS = 60
"""ILQL trains 3,000 steps (60 x 50), three times the SFT learners: its values must carry a completion's one reward back
to its first tokens. Translate-v1 pilot (seed 0, AWR temperature 0.5, target rate 0.1): the best beta added +0.015 chrF
to beta = 0 after 1,000 steps and +0.063 (0.685 -> 0.749 at beta = 8) after 3,000, while a behaviour-cloning language
model trained alongside the values gained nothing from the extra steps (0.446 -> 0.427 at beta = 0)."""
DEFAULT_TARGET_ALPHA = 0.1
"""Polyak rate of the target Q heads (see ``TrainConfig.ilql_target_alpha``)."""
DEFAULT_BETAS = (8.0, 0.0, 0.5, 1.0, 2.0, 4.0, 16.0, 32.0, 64.0)
"""ILQL evaluation betas; the first is the headline, the same for every env and fixed before the benchmark ran, from
seed-0 pilots with the settings above: chrF on Translate-v1 peaked at beta = 8 (0.749; 0.685 at 0, 0.674 at 32) and
PositiveReview-v1's reward rose to 1.609 at 8 from 1.510 at 0 (1.615 at 32)."""


def logs_path(output: Path, env: str) -> Path:
    """``<output>/logs/<env>.jsonl``."""
    return output / "logs" / f"{env.split('/')[-1]}.jsonl"


def ensure_logs(output: Path, env: str, prompts: int, sft_steps: int = 300) -> Path:
    """The env's logged dataset, made (seed 0; the ``sft`` writer trained for ``sft_steps``) the first time."""
    from lmgym.agents.offline.make_logs import make_logs
    from lmgym.logs import write_logs

    path = logs_path(output, env)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_logs(path, make_logs(env, prompts=prompts, seed=0, sft_steps=sft_steps))
    return path


def learner_settings(learner: str, args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig fields of one learner (equal optimizer steps and learning rate for all three)."""
    from lmgym.agents.train import TrainConfig

    steps = args.iterations * args.steps_per_iteration
    if learner == "ilql":  # the SFT learners' learning rate, so only the loss and the number of steps differ
        return {"algo": "ilql", "iterations": args.ilql_iterations,
                "ilql_steps_per_iteration": args.steps_per_iteration, "ilql_beta": args.betas[0],
                "ilql_eval_betas": tuple(args.betas), "eval_every": 0,
                "ilql_learning_rate": TrainConfig.sft_learning_rate, "ilql_awac_temperature": args.awac_temperature,
                "ilql_target_alpha": args.target_alpha}
    return {"algo": "sft", "sft_steps": steps, "data_top_fraction": args.top_fraction if learner == "bc-top" else 1.0}


def run_one(env: str, learner: str, seed: int, data: Path, args: argparse.Namespace, command: str) -> dict:
    """Train one learner on the logs and return its record."""
    from lmgym.agents.bench.provenance import git_commit, machine_info
    from lmgym.agents.train import TrainConfig, train

    commit, dirty = git_commit()
    settings = learner_settings(learner, args)
    with tempfile.TemporaryDirectory(prefix="lmgym-offline-") as work_dir:
        config = TrainConfig(env=env, seed=seed, data=str(data), output_dir=work_dir, name=learner, progress=False,
                             tensorboard=False, checkpoint_every=0, keep_checkpoints=1, num_samples=2,
                             threads=args.threads, **settings)
        t0 = time.perf_counter()
        results = train(config)
    after = results["after"]
    betas = after.get("betas", {})  # ILQL: {"0.0": score, "4.0": score, ...}
    return {"env": env, "learner": learner, "seed": seed, "settings": settings, "logs": str(data.name),
            "score": betas["0.0"] if betas else after["score"], "betas": betas,
            "eval_examples": config.eval_examples, "minutes": (time.perf_counter() - t0) / 60,
            "samples": after["samples"][:2], "command": command, "commit": commit, "dirty": dirty,
            "machine": machine_info("cpu")}


def result_file(output: Path, env: str, learner: str, seed: int) -> Path:
    """``<output>/results/<env>__<learner>__s<seed>.json``."""
    return output / "results" / f"{env.split('/')[-1]}__{learner}__s{seed}.json"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (0 for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


#: The README block that :func:`readme_block` fills (between these markers).
README_BEGIN, README_END = "<!-- offline-table:begin -->", "<!-- offline-table:end -->"


def tables(records: list[dict], output: Path, beta: float) -> list[str]:
    """The headline table (SFT-all vs filtered BC vs ILQL at ``beta``) and the beta sweep, as Markdown lines."""
    from lmgym.logs import load_logs

    by_env: dict[str, dict[str, list[dict]]] = {}
    for r in records:
        by_env.setdefault(r["env"], {}).setdefault(r["learner"], []).append(r)
    betas = sorted({float(b) for r in records for b in r["betas"]})
    lines = [
        f"| env | metric | seeds | logs: mean reward by writer | SFT-all | filtered BC | ILQL beta={beta:g} | "
        "ILQL - SFT-all |",
        "|---|---|---:|---|---:|---:|---:|---:|"]
    sweep = ["", "ILQL at every beta (mean ± std over seeds):", "",
             "| env | " + " | ".join(f"beta={b:g}" for b in betas) + " |", "|---|" + "---:|" * len(betas)]
    for env, groups in sorted(by_env.items()):
        logs_file = output / "logs" / groups[next(iter(groups))][0]["logs"]
        writers = ", ".join(f"{name} {s['mean']:.3f}" for name, s in load_logs(logs_file).by_agent().items()) \
            if logs_file.exists() else "?"
        cells, seeds = {}, set()
        for learner in LEARNERS:
            rows = sorted(groups.get(learner, []), key=lambda r: r["seed"])
            seeds |= {r["seed"] for r in rows}
            values = [r["betas"][str(float(beta))] if learner == "ilql" else r["score"] for r in rows]
            cells[learner] = values
        paired = [i - s for i, s in zip(cells["ilql"], cells["sft-all"])]
        fmt = {k: ("{:.4f} ± {:.4f}".format(*mean_std(v)) if v else "n/a") for k, v in cells.items()}
        gap = "**{:+.4f} ± {:.4f}**".format(*mean_std(paired)) if paired else "n/a"
        lines.append(f"| {env} | `{metric_name(env)}` | {len(seeds)} | {writers} | {fmt['sft-all']} | "
                     f"{fmt['bc-top']} | {fmt['ilql']} | {gap} |")
        ilql = groups.get("ilql", [])
        sweep.append(f"| {env} | " + " | ".join(
            "{:.4f} ± {:.4f}".format(*mean_std([r["betas"][str(b)] for r in ilql if str(b) in r["betas"]]))
            if ilql else "n/a" for b in betas) + " |")
    return [*lines, *sweep]


def summarize(output: Path, beta: float, records: list[dict] | None = None) -> str:
    """``<output>/README.md``: how the numbers were made, :func:`tables`, the commands (records read if not given)."""
    records = read_results(output, *NO_RESULTS) if records is None else records
    return "\n".join([
        "# Offline RL: SFT on all logs vs filtered BC vs ILQL", "",
        "<!-- GENERATED by `lmgym offline-bench --table-only` from results/*.json. Do not edit by hand. -->", "",
        "Every learner trains on the same logged rows (`logs/<env>.jsonl`, made by `lmgym logs make ENV`: the "
        "env's imperfect demonstrators, a sampled SFT policy and random tokens, labelled with the env's reward) "
        "for the same optimizer steps from the same initial model. Scores: task metric, greedy, first 200 "
        "validation examples, mean ± sample std over seeds. Filtered BC: SFT on the top-rewarded fraction of rows. "
        "ILQL trains at the SFT learners' learning rate, its language model by advantage-weighted regression "
        "(`--awac-temperature`, see the commands; 0 would be plain behaviour cloning), so its beta = 0 column is that "
        f"AWR policy without steering. ILQL's headline is beta = {beta:g} (fixed in advance, the same for every env).",
        f"Commits: {commits_of(records)}. Machine: {records[0]['machine'].get('cpu')}, "
        f"{records[0]['machine'].get('cores')} cores.", "",
        *tables(records, output, beta), "", "Commands (each with the commit and learners of the records it wrote):",
        "", "```bash", *command_lines(records), "```", ""])


def command_lines(records: list[dict]) -> list[str]:
    """One line per distinct command: ``COMMAND  # COMMIT: learner, ...`` (the records it wrote)."""
    by_command: dict[str, dict[str, set[str]]] = {}
    for r in records:
        by_command.setdefault(r["command"], {}).setdefault((r.get("commit") or "?")[:7], set()).add(r["learner"])
    return [f"{command}  # " + "; ".join(f"{commit}: {', '.join(sorted(learners, key=LEARNERS.index))}"
                                         for commit, learners in sorted(commits.items()))
            for command, commits in sorted(by_command.items())]


def readme_block(output: Path, beta: float, records: list[dict] | None = None) -> str:
    """The README's block: :func:`tables` between the markers, with where they come from."""
    records = read_results(output, *NO_RESULTS) if records is None else records
    return "\n".join([README_BEGIN, f"Generated by `lmgym offline-bench --table-only --readme README.md` from "
                       f"`leaderboards/offline/results/` (commit {commits_of(records)}); ILQL headline beta = "
                       f"{beta:g}, fixed in advance for every env.", "", *tables(records, output, beta), README_END])


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym offline-bench`` argument parser."""
    parser = argparse.ArgumentParser(prog="lmgym offline-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), help="env ids (default: the four -v1 tasks)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--prompts", type=int, default=1000, help="train prompts per writer in the logs (1000)")
    parser.add_argument("--logs-sft-steps", type=int, default=300,
                        help="SFT steps of the logs' sampled-policy writer (default 300)")
    parser.add_argument("--iterations", type=int, default=20,
                        help="SFT-all and filtered BC train for iterations x steps-per-iteration steps (default 20)")
    parser.add_argument("--ilql-iterations", type=int, default=DEFAULT_ILQL_ITERATIONS,
                        help=f"ILQL iterations (default {DEFAULT_ILQL_ITERATIONS})")
    parser.add_argument("--steps-per-iteration", type=int, default=50, help="optimizer steps per iteration (50)")
    parser.add_argument("--target-alpha", type=float, default=DEFAULT_TARGET_ALPHA,
                        help=f"Polyak rate of ILQL's target Q heads (default {DEFAULT_TARGET_ALPHA:g})")
    parser.add_argument("--top-fraction", type=float, default=0.25, help="filtered BC keeps this fraction (0.25)")
    parser.add_argument("--awac-temperature", type=float, default=DEFAULT_AWAC_TEMPERATURE,
                        help="temperature of ILQL's advantage-weighted policy term (0: plain behaviour cloning; "
                             f"default {DEFAULT_AWAC_TEMPERATURE:g})")
    parser.add_argument("--learners", nargs="+", choices=LEARNERS, default=list(LEARNERS),
                        help="which learners to run (default: all three)")
    parser.add_argument("--betas", nargs="+", type=float, default=list(DEFAULT_BETAS),
                        help="ILQL evaluation betas; the first is the headline (default: 8 0 0.5 1 2 4 16 32 64)")
    add_report_flags(parser, "leaderboards/offline", "offline-table", threads=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym offline-bench``."""
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    try:
        if not args.table_only:
            if any(s < 0 for s in args.seeds) or min(args.iterations, args.ilql_iterations,
                                                       args.steps_per_iteration) < 1:
                raise ConfigError("--seeds must be >= 0 and --iterations, --ilql-iterations, --steps-per-iteration "
                                  ">= 1.")
            for env in args.envs:
                data = ensure_logs(output, env, args.prompts, args.logs_sft_steps)
                for seed in args.seeds:
                    for learner in args.learners:
                        path = result_file(output, env, learner, seed)
                        if path.exists():
                            continue
                        command = (f"lmgym offline-bench --envs {env} --seeds {seed} --prompts {args.prompts} "
                                   f"--iterations {args.iterations} --ilql-iterations {args.ilql_iterations} "
                                   f"--steps-per-iteration {args.steps_per_iteration} "
                                   f"--top-fraction {args.top_fraction} "
                                   f"--awac-temperature {args.awac_temperature} --target-alpha {args.target_alpha} "
                                   f"--betas {' '.join(map(str, args.betas))}")
                        record = run_one(env, learner, seed, data, args, command)
                        write_result(path, record)
                        print(f"{env:<26} {learner:<8} s{seed}: {record['score']:.4f} "
                              f"{json.dumps(record['betas']) if record['betas'] else ''} "
                              f"({record['minutes']:.1f} min)", flush=True)
        records = read_results(output, *NO_RESULTS)
        table = summarize(output, args.betas[0], records)
        if args.readme:
            update_readme(Path(args.readme), readme_block(output, args.betas[0], records), README_BEGIN, README_END)
    except LmgymError as exc:
        print(f"lmgym offline-bench: error: {exc}", file=sys.stderr)
        return 2
    write_atomic(output / "README.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
