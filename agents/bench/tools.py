"""``lmgym tool-bench``: does a calculator pay? PPO on Calculator-v0 with the tool and without it, per seed.

Both variants run the same recipe (``lmgym train``: SFT on the env's demonstrations, then PPO) on the same problems;
``no-tool`` is ``max_calls=0`` (demonstrations never call, and a call gets ``error: no tools``). Each final policy
is then scored greedily on the first ``--episodes`` validation problems: accuracy (``numeric_match`` of the answer)
and calls, overall and per difficulty level (operand digits). One JSON per (variant, seed) goes to
``<output>/results/``; ``<output>/README.md`` and ``<output>/curves.png`` (accuracy and call rate over PPO
iterations) are regenerated from them::

    lmgym tool-bench                              # tool and no-tool x seeds 0 1 2
    lmgym tool-bench --seeds 0 --iterations 10
    lmgym tool-bench --table-only --readme README.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmgym.agents.bench.offline import mean_std
from lmgym.agents.bench.sweep import add_report_flags, commits_of, read_results, update_readme, write_result
from lmgym.atomic import write_atomic
from lmgym.errors import ConfigError, LmgymError

ENV = "lmgym/Calculator-v0"
VARIANTS: dict[str, dict[str, Any]] = {"tool": {}, "no-tool": {"max_calls": 0}}
README_BEGIN, README_END = "<!-- tool-table:begin -->", "<!-- tool-table:end -->"


def result_file(output: Path, variant: str, seed: int) -> Path:
    """``<output>/results/<variant>__s<seed>.json``."""
    return output / "results" / f"{variant}__s{seed}.json"


def final_breakdown(policy_dir: str, env_kwargs: dict[str, Any], episodes: int) -> dict[str, Any]:
    """Greedy accuracy and calls of a saved policy on the first ``episodes`` validation problems, per level."""
    import numpy as np

    from lmgym.agents.ppo.agent import PolicyAgent
    from lmgym.agents.train.evaluation import task_metric_scorer
    from lmgym.heldout import evaluate_agent, make_heldout_envs

    envs = make_heldout_envs(ENV, 100, **env_kwargs)
    result = evaluate_agent(envs, PolicyAgent.from_folder(policy_dir, envs), episodes=episodes,
                            metric_scorer=task_metric_scorer(envs))
    levels = [envs.task.examples("validation")[i].meta["difficulty"] for i in result.example_index]
    scores, calls = np.asarray(result.scores), np.asarray(result.details["tool_calls"])
    by_level = {str(d): {"accuracy": float(scores[np.equal(levels, d)].mean()),
                         "call_rate": float((calls[np.equal(levels, d)] > 0).mean()),
                         "problems": int(np.equal(levels, d).sum())} for d in sorted(set(levels))}
    return {"accuracy": float(scores.mean()), "reward": float(np.mean(result.rewards)),
            "call_rate": float((calls > 0).mean()), "tool_calls": float(calls.mean()), "by_level": by_level,
            "episodes": len(scores), "samples": [{"prompt": p, "completion": c} for p, c in
                                                 zip(result.prompts[:3], result.completions[:3])]}


def run_one(variant: str, seed: int, args: argparse.Namespace, command: str) -> dict:
    """Train one variant with one seed, then score its final policy."""
    from lmgym.agents.bench.provenance import git_commit, machine_info
    from lmgym.agents.train import TrainConfig, train

    commit, dirty = git_commit()
    env_kwargs = dict(VARIANTS[variant])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lmgym-tools-") as work_dir:
        results = train(TrainConfig(env=ENV, env_kwargs=env_kwargs, seed=seed, output_dir=work_dir, name=variant,
                                    sft_steps=args.sft_steps, iterations=args.iterations, eval_every=args.eval_every,
                                    progress=False, tensorboard=False, checkpoint_every=0, keep_checkpoints=1,
                                    threads=args.threads))
        final = final_breakdown(str(Path(results["run_dir"]) / "policy"), env_kwargs, args.episodes)
    curve = [{"iteration": 0, "accuracy": results["before"]["score"],
              "call_rate": results["before"].get("call_rate", 0.0)}]
    curve += [{"iteration": h["step"], "accuracy": h["eval/score"], "call_rate": h.get("eval/call_rate", 0.0)}
              for h in results["history"] if h.get("phase") == "ppo" and "eval/score" in h]
    return {"env": ENV, "variant": variant, "env_kwargs": env_kwargs, "seed": seed, "sft_steps": args.sft_steps,
            "iterations": args.iterations, "sft": curve[0], "final": final, "curve": curve,
            "minutes": (time.perf_counter() - t0) / 60, "command": command, "commit": commit, "dirty": dirty,
            "machine": machine_info("cpu")}


def table(records: list[dict]) -> list[str]:
    """Markdown lines: accuracy (overall and per level) and call rate, SFT and after PPO, per variant."""
    fmt = "{:.3f} ± {:.3f}".format
    levels = sorted({lvl for r in records for lvl in r["final"]["by_level"]}, key=int)
    lines = ["| variant | seeds | accuracy: SFT | accuracy: SFT + PPO | "
             + " | ".join(f"{lvl}-digit: accuracy / call rate" for lvl in levels) + " | call rate | calls / problem |",
             "|---|---:|---:|---:|" + "---:|" * len(levels) + "---:|---:|"]
    for variant in VARIANTS:
        rows = sorted((r for r in records if r["variant"] == variant), key=lambda r: r["seed"])
        if not rows:
            continue
        per_level = [f"{mean_std([r['final']['by_level'][lvl]['accuracy'] for r in rows])[0]:.3f} / "
                     f"{mean_std([r['final']['by_level'][lvl]['call_rate'] for r in rows])[0]:.2f}" for lvl in levels]
        lines.append(f"| {variant} | {len(rows)} | {fmt(*mean_std([r['sft']['accuracy'] for r in rows]))} | "
                     f"**{fmt(*mean_std([r['final']['accuracy'] for r in rows]))}** | " + " | ".join(per_level)
                     + f" | {mean_std([r['final']['call_rate'] for r in rows])[0]:.2f} | "
                     f"{mean_std([r['final']['tool_calls'] for r in rows])[0]:.2f} |")
    return lines


def plot_curves(records: list[dict], path: Path) -> bool:
    """Greedy validation accuracy and call rate over PPO iterations, every run; ``False`` without matplotlib."""
    from lmgym.agents.train.metrics import new_figure, save_png

    fig = new_figure((10, 4))
    if fig is None:
        return False
    acc_ax, call_ax = fig.subplots(1, 2)
    for r in sorted(records, key=lambda r: (r["variant"], r["seed"])):
        style = "o-" if r["variant"] == "tool" else "s--"
        its = [p["iteration"] for p in r["curve"]]
        acc_ax.plot(its, [p["accuracy"] for p in r["curve"]], style, label=f"{r['variant']} s{r['seed']}")
        call_ax.plot(its, [p["call_rate"] for p in r["curve"]], style, label=f"{r['variant']} s{r['seed']}")
    acc_ax.set_title("Calculator-v0: greedy accuracy (validation)")
    call_ax.set_title("share of problems with a calculator call")
    for ax in (acc_ax, call_ax):
        ax.set_xlabel("PPO iteration (0 = after SFT)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_png(fig, path, dpi=90)


def summarize(records: list[dict]) -> str:
    """``<output>/README.md``: how the numbers were made, :func:`table`, the curves and the commands."""
    first = records[0]
    return "\n".join([
        "# Tool use: PPO on Calculator-v0 with a calculator and without", "",
        "<!-- GENERATED by `lmgym tool-bench --table-only` from results/*.json. Do not edit by hand. -->", "",
        f"Each run: `lmgym train --env {ENV}` ({first['sft_steps']} SFT steps on the env's demonstrations, half of "
        f"which call the calculator, then {first['iterations']} PPO iterations; reward = exact answer minus 0.05 per "
        "call). `no-tool`: the same with `max_calls=0` (no demonstration calls; a call gets `error: no tools`). "
        f"Scores: the final policy, greedy, first {first['final']['episodes']} validation problems, accuracy of the "
        "answer (`numeric_match`, no penalty), mean ± sample std over seeds; per level: mean accuracy / call rate.",
        f"Commits: {commits_of(records)}. Machine: {first['machine'].get('cpu')}, {first['machine'].get('cores')} "
        f"cores; {sum(r['minutes'] for r in records):.0f} minutes in all.", "",
        *table(records), "", "![curves](curves.png)", "", "Commands:", "", "```bash",
        *sorted({r["command"] for r in records}), "```", ""])


def readme_block(records: list[dict]) -> str:
    """The top README's block: :func:`table` and the curves."""
    return "\n".join([README_BEGIN, "Generated by `lmgym tool-bench --table-only --readme README.md` from "
                      f"`leaderboards/tools/results/` (commit {commits_of(records)}).", "", *table(records), "",
                      "![tool-use curves](leaderboards/tools/curves.png)", README_END])


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym tool-bench`` argument parser."""
    parser = argparse.ArgumentParser(prog="lmgym tool-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--sft-steps", type=int, default=1500, help="SFT steps (1500)")
    parser.add_argument("--iterations", type=int, default=30, help="PPO iterations (30)")
    parser.add_argument("--eval-every", type=int, default=5, help="greedy evaluation every N iterations (5)")
    parser.add_argument("--episodes", type=int, default=500, help="validation problems of the final score (500)")
    add_report_flags(parser, "leaderboards/tools", "tool-table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym tool-bench``."""
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    try:
        if not args.table_only:
            if any(s < 0 for s in args.seeds) or args.iterations < 1:
                raise ConfigError("--seeds must be >= 0 and --iterations >= 1.")
            for seed in args.seeds:
                for variant in args.variants:
                    path = result_file(output, variant, seed)
                    if path.exists():
                        continue
                    command = (f"lmgym tool-bench --variants {variant} --seeds {seed} --sft-steps {args.sft_steps} "
                               f"--iterations {args.iterations} --eval-every {args.eval_every} "
                               f"--episodes {args.episodes}")
                    record = run_one(variant, seed, args, command)
                    write_result(path, record)
                    print(f"{variant:<8} s{seed}: accuracy {record['sft']['accuracy']:.3f} -> "
                          f"{record['final']['accuracy']:.3f}, call rate {record['final']['call_rate']:.2f} "
                          f"({record['minutes']:.1f} min)", flush=True)
        records = read_results(output, "tool-bench", "run lmgym tool-bench first")
        plot_curves(records, output / "curves.png")
        text = summarize(records)
        if args.readme:
            update_readme(Path(args.readme), readme_block(records), README_BEGIN, README_END)
    except LmgymError as exc:
        print(f"lmgym tool-bench: error: {exc}", file=sys.stderr)
        return 2
    write_atomic(output / "README.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
