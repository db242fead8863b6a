"""``lmgym sweep``: PPO configurations x envs x seeds, each an SFT vs SFT+PPO run, as one table.

The question a sweep answers is "which PPO settings make RL pay": every run is an ordinary
``lmgym train`` run (same SFT warm start for every configuration of a given env and seed, since
SFT depends only on the env, the model and the seed), and its *gain* is the greedy validation
score of SFT+PPO minus that of SFT. One JSON per run goes to ``<output>/results/`` (a rerun skips
runs already there, so a sweep can be extended or resumed), and ``<output>/README.md`` is
regenerated from those files alone: per configuration and env, mean ± std gain over seeds, the
per-seed gains, KL and minutes.

    lmgym sweep --envs lmgym/PositiveReview-v1 lmgym/Keywords-v1 --seeds 0 1 2 \\
        --config gae: --config "rloo:advantage=rloo learning_rate=1e-4"

A configuration is ``NAME:KEY=VALUE ...`` with :class:`~lmgym.agents.train.TrainConfig` fields
(values parsed as everywhere else, by :func:`lmgym.flags.parse_value`, e.g. ``iterations=40``); an
empty list means the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmgym.atomic import write_atomic
from lmgym.errors import ConfigError, LmgymError
from lmgym.flags import parse_kwargs

#: Settings that change the SFT warm start: a configuration that sets one gets its own SFT run.
SFT_FIELDS = frozenset({"model", "n_layer", "n_embd", "n_head", "algo", "sft_steps", "sft_batch_size",
                        "sft_learning_rate", "sft_max_examples", "lora_r", "lora_alpha", "lora_target_modules"})
DEFAULT_ENVS = ("lmgym/PositiveReview-v1", "lmgym/Keywords-v1", "lmgym/Summarize-v1", "lmgym/Translate-v1")


def parse_config(text: str) -> tuple[str, dict[str, Any]]:
    """``"rloo:advantage=rloo learning_rate=1e-4"`` -> ``("rloo", {"advantage": "rloo", "learning_rate": 1e-4})``."""
    from lmgym.agents.train import TrainConfig

    name, sep, rest = text.partition(":")
    if not sep or not name.strip():
        raise ConfigError(f"--config must look like NAME:KEY=VALUE ...; got {text!r}.")
    overrides = parse_kwargs(shlex.split(rest), flag=f"--config {name!r}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ConfigError(f"--config {name!r}: {unknown} are not TrainConfig fields (see `lmgym train --help`).")
    return name.strip(), overrides


def result_file(output: Path, env: str, config: str, seed: int) -> Path:
    """``<output>/results/<env>__<config>__s<seed>.json``."""
    return output / "results" / f"{env.split('/')[-1]}__{config}__s{seed}.json"


def run_one(env: str, config: str, overrides: dict[str, Any], seed: int, output: Path, command: str,
            work_dir: str, sft_dir: str | None = None) -> dict:
    """One ``lmgym train`` run in ``work_dir``; its summary is written to :func:`result_file`.

    With ``sft_dir`` (the ``reference/`` folder of an earlier run of the same env and seed) the SFT
    stage is not run again: PPO starts from that model (``algo=ppo``), which is exactly the policy
    a fresh ``sft+ppo`` run would warm-start to.
    """
    from lmgym.agents.bench.provenance import git_commit, machine_info
    from lmgym.agents.train import TrainConfig, train

    commit, dirty = git_commit()
    reuse = {"model": sft_dir, "algo": "ppo"} if sft_dir else {}
    cfg = TrainConfig(env=env, seed=seed, output_dir=work_dir, name=config, progress=False, tensorboard=False,
                      **{**overrides, **reuse})
    t0 = time.perf_counter()
    results = train(cfg)
    minutes = (time.perf_counter() - t0) / 60
    before, after = results["before"], results["after"]
    record = {
        "env": env, "config": config, "overrides": overrides, "seed": seed,
        "sft": before["score"], "ppo": after["score"], "gain": after["score"] - before["score"],
        "sft_sampled": before.get("sampled_score"), "ppo_sampled": after.get("sampled_score"),
        "kl": after["kl"], "minutes": minutes, "sft_reused": bool(sft_dir),
        "ppo_minutes": sum(h.get("charts/iteration_s", 0.0) for h in results["history"]) / 60,
        "eval_examples": cfg.eval_examples, "samples": after["samples"][:2], "command": command,
        "commit": commit, "dirty": dirty, "machine": machine_info("cpu"),
    }
    write_result(result_file(output, env, config, seed), record)
    return record


def write_result(path: Path, record: dict[str, Any]) -> None:
    """Write one run's result record as JSON to ``path`` (its folder made as needed), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(record, indent=1, default=str))


def read_results(output: Path, what: str = "sweep", how: str = "run a sweep first") -> list[dict]:
    """Every run record under ``output/results``, in file-name order: the reader of every benchmark folder.

    Raises:
        ConfigError: there is none (the message names the ``what`` results and ``how`` to make them).
    """
    records = [json.loads(p.read_text()) for p in sorted((output / "results").glob("*.json"))]
    if not records:
        raise ConfigError(f"No {what} results under {output / 'results'}; {how}.")
    return records


def commits_of(records: list[dict]) -> str:
    """The short commits the records come from, each marked ``(dirty)`` when its tree had local changes."""
    return ", ".join(sorted({(r["commit"] or "unknown")[:7] + (" (dirty)" if r["dirty"] else "") for r in records}))


def gain_stats(rows: list[dict]) -> tuple[float, float]:
    """Mean and sample std (0 for one seed) of the rows' gains."""
    gains = [r["gain"] for r in rows]
    return statistics.mean(gains), statistics.stdev(gains) if len(gains) > 1 else 0.0


#: The README block that :func:`readme_block` fills (between these markers).
README_BEGIN, README_END = "<!-- sweep-table:begin -->", "<!-- sweep-table:end -->"


def readme_block(output: Path, config: str = "gae") -> str:
    """The README's table: ``config`` (the defaults) on every env, per-seed SFT -> SFT+PPO, from the JSON."""
    rows = [r for r in read_results(output) if r["config"] == config]
    if not rows:
        raise ConfigError(f"No results for config {config!r} under {output}.")
    by_env: dict[str, list[dict]] = {}
    for r in rows:
        by_env.setdefault(r["env"], []).append(r)
    lines = [README_BEGIN,
             f"`lmgym train --env ENV --seed S` (the defaults), generated by `lmgym sweep --readme README.md` from "
             f"`leaderboards/sweep/results/` (config `{config}`, commit {commits_of(rows)}).", "",
             "| env | metric | seeds | SFT | SFT+PPO | gain (mean ± std) | per seed: SFT → SFT+PPO | KL | minutes |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|"]
    for env, group in by_env.items():
        group.sort(key=lambda r: r["seed"])
        gain, std = gain_stats(group)
        per_seed = "; ".join(f"s{r['seed']}: {r['sft']:.3f} → {r['ppo']:.3f}" for r in group)
        mean = {key: statistics.mean(r[key] for r in group) for key in ("sft", "ppo", "kl", "minutes")}
        lines.append(f"| {env} | `{metric_name(env)}` | {len(group)} | {mean['sft']:.4f} | {mean['ppo']:.4f} | "
                     f"**{gain:+.4f} ± {std:.4f}** | {per_seed} | {mean['kl']:.2f} | "
                     f"{mean['minutes']:.1f} |")
    lines.append(README_END)
    return "\n".join(lines)


def metric_name(env: str) -> str:
    """The name of ``env``'s default scorer (its task metric), e.g. ``rouge``."""
    import gymnasium as gym

    scorer = gym.make(env).unwrapped.scorer
    return str(getattr(scorer, "name", type(scorer).__name__))


def add_report_flags(parser: argparse.ArgumentParser, output: str, block: str, threads: int = 0) -> None:
    """The flags every benchmark command shares: ``--threads``, ``--output``, ``--table-only`` and ``--readme``.

    Args:
        parser: the command's parser.
        output: default results folder.
        block: name of the command's generated block in a README (``--readme`` fills it).
        threads: default torch thread count (0: all cores).
    """
    parser.add_argument("--threads", type=int, default=threads,
                        help=f"torch threads (0: all cores; default {threads})")
    parser.add_argument("--output", default=output, help=f"results, tables and plots folder ({output})")
    parser.add_argument("--table-only", action="store_true",
                        help="only regenerate the tables and plots from the results")
    parser.add_argument("--readme", default=None, metavar="PATH", help=f"also fill PATH's {block} block")


def update_readme(path: Path, block: str, begin: str = README_BEGIN, end: str = README_END) -> None:
    """Replace the text from ``begin`` to ``end`` (markers included) in ``path`` with ``block``."""
    text = path.read_text()
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < 0:
        raise ConfigError(f"{path} has no {begin} ... {end} block to fill.")
    write_atomic(path, text[:start] + block + text[stop + len(end):])


def summarize(output: Path) -> str:
    """The Markdown table of every result under ``output/results`` (config x env)."""
    records = read_results(output)
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["config"], r["env"]), []).append(r)
    lines = [
        "# PPO sweep: SFT vs SFT+PPO per configuration",
        "",
        "<!-- GENERATED by `lmgym sweep --table-only` from results/*.json. Do not edit by hand. -->",
        "",
        "Each row is one PPO configuration on one env, run with `lmgym train` for each seed (the SFT warm",
        "start is the same for every configuration of an env and seed). **Gain** = greedy validation score",
        "of SFT+PPO minus SFT (task metric), mean ± sample std over seeds; KL in nats per completion at the",
        "end; PPO minutes = wall time of the PPO iterations (the shared SFT is excluded).",
        f"Commits: {commits_of(records)}. Machine: "
        f"{records[0]['machine'].get('cpu')}, {records[0]['machine'].get('cores')} cores.",
        "",
        "| config | overrides | env | seeds | SFT | SFT+PPO | gain | per-seed gains | KL | PPO minutes |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for (config, env), rows in sorted(groups.items()):
        rows = sorted(rows, key=lambda r: r["seed"])
        gain, std = gain_stats(rows)
        over = " ".join(f"{k}={v}" for k, v in rows[0]["overrides"].items()) or "defaults"
        lines.append(
            f"| {config} | `{over}` | {env} | {len(rows)} | {statistics.mean(r['sft'] for r in rows):.4f} | "
            f"{statistics.mean(r['ppo'] for r in rows):.4f} | **{gain:+.4f} ± {std:.4f}** | "
            f"{', '.join(format(r['gain'], '+.4f') for r in rows)} | {statistics.mean(r['kl'] for r in rows):.2f} | "
            f"{statistics.mean(r['ppo_minutes'] for r in rows):.1f} |")
    lines += ["", "Commands (one per run):", "", "```bash", *sorted({r["command"] for r in records}), "```", ""]
    return "\n".join(lines)


def run_env_seed(env: str, seed: int, configs: list[tuple[str, dict[str, Any]]], output: Path) -> None:
    """Every configuration missing from ``output`` for one env and seed; SFT runs once and is shared."""
    todo = [(name, over) for name, over in configs if not result_file(output, env, name, seed).exists()]
    with tempfile.TemporaryDirectory(prefix="lmgym-sweep-") as work_dir:
        sft_dir = None
        for name, overrides in todo:
            item = name + ":" + " ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items())
            command = f"lmgym sweep --envs {env} --seeds {seed} --config {shlex.quote(item)}"
            shares_sft = not SFT_FIELDS & set(overrides)
            record = run_one(env, name, overrides, seed, output, command, work_dir, sft_dir if shares_sft else None)
            if sft_dir is None and shares_sft:
                sft_dir = str(Path(work_dir) / name / "reference")
            print(f"{name:>12} {env:<28} s{seed}: SFT {record['sft']:.4f} -> {record['ppo']:.4f} "
                  f"(gain {record['gain']:+.4f}, KL {record['kl']:.2f}, {record['minutes']:.1f} min)", flush=True)


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym sweep`` argument parser."""
    parser = argparse.ArgumentParser(prog="lmgym sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), help="env ids (default: the four -v1 tasks)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--config", action="append", default=[], metavar="NAME:KEY=VALUE...",
                        help="a PPO configuration (repeatable); default: one named 'defaults'")
    parser.add_argument("--output", default="leaderboards/sweep", help="results and table folder")
    parser.add_argument("--table-only", action="store_true", help="only regenerate README.md from the results")
    parser.add_argument("--readme", default=None, metavar="PATH",
                        help="also fill PATH's sweep-table block with the 'gae' (default) configuration's rows")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym sweep``."""
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    try:
        if not args.table_only:
            configs = [parse_config(c) for c in (args.config or ["defaults:"])]
            if any(s < 0 for s in args.seeds):
                raise ConfigError(f"--seeds must be >= 0; got {args.seeds}.")
            for seed in args.seeds:  # seed-major: each finished seed covers every env
                for env in args.envs:
                    run_env_seed(env, seed, configs, output)
        table = summarize(output)
        if args.readme:
            update_readme(Path(args.readme), readme_block(output))
    except LmgymError as exc:
        print(f"lmgym sweep: error: {exc}", file=sys.stderr)
        return 2
    write_atomic(output / "README.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
