"""``lmgym rlhf-bench``: the RLHF pipeline (``lmgym rlhf``) per env and seed, as a leaderboard section.

Each (env, seed) runs the whole pipeline in a scratch folder: preference pairs from a sampled SFT policy and the
env's demonstrators labelled by a simulated annotator with error rate ``--noise``, a reward model trained on them,
then PPO against the reward model, with the proxy (RM) and the true task metric measured on held-out prompts
every few iterations. One JSON per (env, seed) goes to ``<output>/results/`` (a rerun skips those present); then
``<output>/README.md`` (table) and ``<output>/<env>.png`` (proxy and true metric against KL, every seed: the
over-optimisation picture of Gao et al. 2022) are regenerated from them::

    lmgym rlhf-bench                                      # PositiveReview-v1 and Keywords-v1 x seeds 0 1 2
    lmgym rlhf-bench --envs lmgym/Keywords-v1 --seeds 0 --iterations 10
    lmgym rlhf-bench --table-only --readme README.md      # rebuild the tables and plots from the JSON
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lmgym.agents.bench.offline import mean_std
from lmgym.agents.bench.sweep import (
    add_report_flags,
    commits_of,
    metric_name,
    read_results,
    update_readme,
    write_result,
)
from lmgym.atomic import write_atomic
from lmgym.errors import ConfigError, LmgymError

DEFAULT_ENVS = ("lmgym/PositiveReview-v1", "lmgym/Keywords-v1")
README_BEGIN, README_END = "<!-- rlhf-table:begin -->", "<!-- rlhf-table:end -->"


def result_file(output: Path, env: str, seed: int) -> Path:
    """``<output>/results/<env>__s<seed>.json``."""
    return output / "results" / f"{env.split('/')[-1]}__s{seed}.json"


def run_one(env: str, seed: int, args: argparse.Namespace, command: str) -> dict:
    """Run the pipeline for (env, seed) in a scratch folder; return its summary with provenance."""
    from lmgym.agents.bench.provenance import git_commit, machine_info
    from lmgym.agents.rm.pipeline import run_pipeline

    commit, dirty = git_commit()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lmgym-rlhf-") as work_dir:
        summary = run_pipeline(env, work_dir, prompts=args.prompts, noise=args.noise, rm_steps=args.rm_steps,
                               iterations=args.iterations, eval_every=args.eval_every, seed=seed,
                               threads=args.threads, overwrite=True)
    return {**summary, "minutes": (time.perf_counter() - t0) / 60, "command": command, "commit": commit,
            "dirty": dirty, "machine": machine_info("cpu")}


def by_env(records: list[dict]) -> dict[str, list[dict]]:
    """Records grouped by env, each group sorted by seed."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["env"], []).append(r)
    return {env: sorted(rows, key=lambda r: r["seed"]) for env, rows in sorted(groups.items())}


def table(records: list[dict]) -> list[str]:
    """Markdown lines: per env, the annotator, the RM's held-out accuracy and the true metric SFT -> PPO-vs-RM."""
    fmt = "{:.4f} ± {:.4f}".format
    lines = ["| env | metric | seeds | pairs | annotator agreement | RM held-out accuracy | true: SFT | "
             "true: PPO vs RM (final) | gain | KL (final) | proxy: SFT -> final |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for env, rows in by_env(records).items():
        def stat(get, rows=rows) -> str:
            return fmt(*mean_std([get(r) for r in rows]))

        gain = "{:+.4f} ± {:.4f}".format(*mean_std([r["final"]["true"] - r["sft"]["true"] for r in rows]))
        pairs = round(mean_std([r["annotator"]["pairs"] for r in rows])[0])
        kl = mean_std([r["final"]["kl"] for r in rows])[0]
        proxy = [mean_std([r[k]["proxy"] for r in rows])[0] for k in ("sft", "final")]
        lines.append(
            f"| {env} | `{metric_name(env)}` | {len(rows)} | {pairs} | {stat(lambda r: r['annotator']['agreement'])} "
            f"| {stat(lambda r: r['rm_accuracy'])} | {stat(lambda r: r['sft']['true'])} | "
            f"{stat(lambda r: r['final']['true'])} | **{gain}** | {kl:.2f} | {proxy[0]:+.3f} -> {proxy[1]:+.3f} |")
    return lines


def plot_env(rows: list[dict], path: Path) -> bool:
    """Proxy (dashed) and true metric (solid) against KL for every seed of one env; ``False`` without matplotlib."""
    from lmgym.agents.train.metrics import new_figure, save_png

    fig = new_figure((10, 4))
    if fig is None:
        return False
    true_ax, proxy_ax = fig.subplots(1, 2)
    for r in rows:
        kl = [p["kl"] for p in r["curve"]]
        true_ax.plot(kl, [p["true"] for p in r["curve"]], "o-", label=f"seed {r['seed']}")
        proxy_ax.plot(kl, [p["proxy"] for p in r["curve"]], "s--", label=f"seed {r['seed']}")
    env = rows[0]["env"]
    true_ax.set_title(f"{env.split('/')[-1]}: true task metric")
    true_ax.set_ylabel(metric_name(env), fontsize=8)
    proxy_ax.set_title(f"{env.split('/')[-1]}: proxy (reward model, normalised)")
    for ax in (true_ax, proxy_ax):
        ax.set_xlabel("KL to the SFT policy (nats / completion)")
        ax.grid(alpha=0.3)
        ax.legend()
    return save_png(fig, path, dpi=90)


def summarize(output: Path, records: list[dict]) -> str:
    """``<output>/README.md``: how the numbers were made, :func:`table`, the plots and the commands."""
    first = records[0]
    return "\n".join([
        "# RLHF from preferences: SFT -> preference pairs -> reward model -> PPO against the reward model", "",
        "<!-- GENERATED by `lmgym rlhf-bench --table-only` from results/*.json. Do not edit by hand. -->", "",
        f"Per env and seed (`lmgym rlhf ENV`): {first['prompts']} train prompts, each completed by two samples of an "
        "SFT policy and by the env's demonstrators; every two completions with different true rewards form a pair, "
        f"labelled by a simulated annotator who errs with probability {first['noise']:g}. A reward model (2-layer "
        f"GPT-2 with a scalar head, Bradley-Terry, {first['rm_steps']} steps) is trained on the pairs; its accuracy is "
        "on held-out prompts' pairs against the annotator's (noisy) labels, so `1 - noise` is about the ceiling and "
        f"0.5 is chance. Then SFT + PPO ({first['iterations']} iterations) with the reward model as the only reward. "
        "True = the env's task metric, greedy, on held-out validation prompts; proxy = the reward model on the same "
        "completions. Mean ± sample std over seeds.",
        f"Commits: {commits_of(records)}. Machine: {first['machine'].get('cpu')}, {first['machine'].get('cores')} "
        f"cores; {sum(r['minutes'] for r in records):.0f} minutes in all.", "",
        *table(records), "",
        *[f"![{env}]({env.split('/')[-1]}.png)" for env in by_env(records)], "",
        "Commands:", "", "```bash", *sorted({r["command"] for r in records}), "```", ""])


def readme_block(records: list[dict]) -> str:
    """The top README's block: :func:`table` and the plots, with where they come from."""
    return "\n".join([README_BEGIN, "Generated by `lmgym rlhf-bench --table-only --readme README.md` from "
                      f"`leaderboards/rlhf/results/` (commit {commits_of(records)}).", "", *table(records), "",
                      *[f"![{env}](leaderboards/rlhf/{env.split('/')[-1]}.png)" for env in by_env(records)],
                      README_END])


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym rlhf-bench`` argument parser."""
    parser = argparse.ArgumentParser(prog="lmgym rlhf-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), help="env ids")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--prompts", type=int, default=3000, help="train prompts for the pairs (3000)")
    parser.add_argument("--noise", type=float, default=0.1, help="the simulated annotator's error rate (0.1)")
    parser.add_argument("--rm-steps", type=int, default=1000, help="reward-model optimizer steps (1000)")
    parser.add_argument("--iterations", type=int, default=30, help="PPO iterations (30)")
    parser.add_argument("--eval-every", type=int, default=3, help="evaluate proxy and true every N iterations (3)")
    add_report_flags(parser, "leaderboards/rlhf", "rlhf-table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym rlhf-bench``."""
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    try:
        if not args.table_only:
            if any(s < 0 for s in args.seeds):
                raise ConfigError("--seeds must be >= 0.")
            for env in args.envs:
                for seed in args.seeds:
                    path = result_file(output, env, seed)
                    if path.exists():
                        continue
                    command = (f"lmgym rlhf-bench --envs {env} --seeds {seed} --prompts {args.prompts} --noise "
                               f"{args.noise:g} --rm-steps {args.rm_steps} --iterations {args.iterations} "
                               f"--eval-every {args.eval_every}")
                    record = run_one(env, seed, args, command)
                    write_result(path, record)
                    print(f"{env:<26} s{seed}: RM accuracy {record['rm_accuracy']:.3f}, true "
                          f"{record['sft']['true']:.4f} -> {record['final']['true']:.4f} (KL "
                          f"{record['final']['kl']:.2f}, {record['minutes']:.1f} min)", flush=True)
        records = read_results(output, "RLHF", "run lmgym rlhf-bench first")
        for env, rows in by_env(records).items():
            plot_env(rows, output / f"{env.split('/')[-1]}.png")
        text = summarize(output, records)
        if args.readme:
            update_readme(Path(args.readme), readme_block(records), README_BEGIN, README_END)
    except LmgymError as exc:
        print(f"lmgym rlhf-bench: error: {exc}", file=sys.stderr)
        return 2
    write_atomic(output / "README.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
