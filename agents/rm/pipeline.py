"""``lmgym rlhf ENV``: the whole RLHF pipeline, SFT -> preference pairs -> reward model -> PPO against the RM.

::

    lmgym rlhf lmgym/PositiveReview-v1 --output runs/rlhf-review
    lmgym rlhf lmgym/Summarize-v1 --prompts 500 --noise 0.2 --rm-steps 400 --iterations 40 --output runs/rlhf-sum

1. ``pairs.jsonl``: ``lmgym prefs make`` (two samples of an SFT policy and the env's demonstrators per prompt,
   labelled by a simulated annotator who errs with probability ``--noise``);
2. ``rm/``: ``lmgym rm train`` on them (held-out accuracy and calibration in ``rm/results.md``);
3. ``ppo/``: ``lmgym train`` (SFT warm start, then PPO) with the RM as the reward (``--reward-model``);
   every ``--eval-every`` iterations the policy is scored on held-out prompts by both the **proxy** (the RM)
   and the **true** task metric (the env's own scorer), with the KL to the SFT policy;
4. ``overoptimisation.png`` and ``results.md``: proxy and true score against KL (Gao et al. 2022). The proxy keeps
   rising with KL; the true metric rises while the RM agrees with it and flattens or falls where it does not.

Everything runs offline with no people; ``lmgym label`` is where people would replace the annotator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from lmgym.atomic import write_atomic
from lmgym.errors import ConfigError, LmgymError


def run_pipeline(env: str, output: str, prompts: int = 1000, noise: float = 0.1, rm_steps: int = 600,
                 iterations: int = 30, eval_every: int = 3, seed: int = 0, threads: int = 0,
                 overwrite: bool = False, writers: Sequence[str] | None = None,
                 **train_settings: Any) -> dict[str, Any]:
    """Run the four stages into ``output``; returns the summary (also ``output/results.json``).

    ``writers``: the pairs' writers (default :data:`~lmgym.agents.rm.prefs_make.DEFAULT_WRITERS`);
    ``train_settings`` are more :class:`~lmgym.agents.train.TrainConfig` fields of the PPO stage (e.g. ``sft_steps``).
    """
    from lmgym.agents.rm.prefs_make import DEFAULT_WRITERS, make_pairs
    from lmgym.agents.rm.train import RMConfig, train_reward_model
    from lmgym.agents.train import TrainConfig, train
    from lmgym.prefs import write_pairs

    if os.path.exists(output) and os.listdir(output) and not overwrite:
        raise ConfigError(f"{output} exists; pass --overwrite or another --output.")
    os.makedirs(output, exist_ok=True)
    pairs_path = os.path.join(output, "pairs.jsonl")
    pairs, annotator = make_pairs(env, writers or DEFAULT_WRITERS, prompts=prompts, noise=noise, seed=seed)
    write_pairs(pairs_path, pairs)
    rm = train_reward_model(RMConfig(data=pairs_path, env=env, output=os.path.join(output, "rm"), steps=rm_steps,
                                     seed=seed, threads=threads, overwrite=True))
    ppo = train(TrainConfig(env=env, reward_model=rm["model_dir"], output_dir=output, name="ppo", seed=seed,
                            iterations=iterations, eval_every=eval_every, threads=threads, overwrite=True,
                            progress=False, tensorboard=False, **train_settings))
    points = [{"iteration": 0, "kl": 0.0, "true": ppo["before"]["score"], "proxy": ppo["before"]["reward"]}]
    points += [{"iteration": h["step"], "kl": h["eval/kl"], "true": h["eval/score"], "proxy": h["eval/reward"]}
               for h in ppo["history"] if "eval/score" in h]
    summary = {"env": env, "annotator": annotator, "rm_accuracy": rm["accuracy"], "rm_calibration": rm["calibration"],
               "sft": points[0], "final": points[-1], "best_true": max(points, key=lambda p: p["true"]),
               "curve": points, "seed": seed, "prompts": prompts, "noise": noise, "rm_steps": rm_steps,
               "iterations": iterations}
    write_atomic(os.path.join(output, "results.json"), json.dumps(summary, indent=1))
    write_atomic(os.path.join(output, "results.md"), summary_markdown(summary))
    plot_overoptimisation(points, os.path.join(output, "overoptimisation.png"), env)
    return summary


def summary_markdown(summary: dict[str, Any]) -> str:
    """The pipeline's table: each evaluation's KL, proxy (RM) and true score."""
    a = summary["annotator"]
    lines = [f"## RLHF on {summary['env']} (seed {summary['seed']})", "",
             f"{a['pairs']} pairs, annotator agreement with the true reward {a['agreement']:.3f}; reward model "
             f"held-out accuracy {summary['rm_accuracy']:.3f}. Proxy = the RM (normalised), true = the env's task "
             "metric, both greedy on held-out prompts; KL to the SFT policy in nats per completion.", "",
             "| iteration | KL | proxy (RM) | true |", "|---:|---:|---:|---:|"]
    lines += [f"| {p['iteration']} | {p['kl']:.2f} | {p['proxy']:.4f} | {p['true']:.4f} |" for p in summary["curve"]]
    best, sft = summary["best_true"], summary["sft"]
    lines += ["", f"True metric: SFT {sft['true']:.4f} -> best {best['true']:.4f} (iteration {best['iteration']}, "
                  f"KL {best['kl']:.2f}) -> final {summary['final']['true']:.4f} (KL {summary['final']['kl']:.2f})."]
    return "\n".join(lines) + "\n"


def plot_overoptimisation(points: list[dict], path: str, title: str) -> bool:
    """Proxy and true score against KL (two y axes) to a PNG; ``False`` without matplotlib."""
    from lmgym.agents.train.metrics import new_figure, save_png

    fig = new_figure((6.5, 4))
    if fig is None:
        return False
    ax = fig.subplots()
    kl = [p["kl"] for p in points]
    ax.plot(kl, [p["true"] for p in points], "o-", color="tab:green", label="true metric")
    ax.set_xlabel("KL to the SFT policy (nats / completion)")
    ax.set_ylabel("true metric", color="tab:green")
    proxy_ax = ax.twinx()
    proxy_ax.plot(kl, [p["proxy"] for p in points], "s--", color="tab:purple", label="proxy (reward model)")
    proxy_ax.set_ylabel("proxy reward (RM, normalised)", color="tab:purple")
    ax.set_title(f"{title}: PPO against a learned reward model")
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def build_parser() -> argparse.ArgumentParser:
    """The ``lmgym rlhf`` argument parser."""
    parser = argparse.ArgumentParser(prog="lmgym rlhf", description=__doc__.split("\n\n")[0])
    parser.add_argument("env", help="env id, e.g. lmgym/PositiveReview-v1")
    parser.add_argument("--output", required=True, help="the pipeline's folder")
    parser.add_argument("--prompts", type=int, default=1000, help="train prompts for the pairs (default 1000)")
    parser.add_argument("--noise", type=float, default=0.1, help="the simulated annotator's error rate (0.1)")
    parser.add_argument("--rm-steps", type=int, default=600, help="reward-model optimizer steps (600)")
    parser.add_argument("--iterations", type=int, default=30, help="PPO iterations (30)")
    parser.add_argument("--eval-every", type=int, default=3, help="evaluate proxy and true every N iterations (3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every stage (0)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lmgym rlhf``; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        summary = run_pipeline(args.env, args.output, args.prompts, args.noise, args.rm_steps, args.iterations,
                               args.eval_every, args.seed, args.threads, args.overwrite)
    except LmgymError as exc:
        print(f"lmgym rlhf: error: {exc}", file=sys.stderr)
        return 2
    print(summary_markdown(summary))
    print(f"Pipeline folder: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
