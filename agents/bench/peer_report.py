"""What ``lmgym speed --peer trl`` concludes from its two runs: time-to-quality, scores at equal wall time, the
Markdown table and the plot. Pure functions of the result dict, so they are tested without running a trainer.

A *curve* is a list of evaluation points ``{"step", "completions", "wall_s", "score", "kl"}`` in increasing
``wall_s``: the greedy validation score after ``step`` training steps, at ``wall_s`` seconds of training
(evaluation time excluded), and the KL to the warm start along those greedy completions. Both curves start at the
shared warm start (``step`` 0, ``wall_s`` 0).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmgym.agents.train.metrics import new_figure, save_png
from lmgym.atomic import write_atomic

Curve = Sequence[dict[str, Any]]


def time_to_score(curve: Curve, target: float) -> float | None:
    """Training seconds of the first evaluation whose score reaches ``target`` (``None``: never reached).

    No interpolation between evaluations: the time is that of the evaluation that first shows the score, so the
    figure can only overstate how long a run needed, never understate it.
    """
    for point in curve:
        if point["score"] >= target:
            return float(point["wall_s"])
    return None


def score_at(curve: Curve, wall_s: float) -> float:
    """The score a run had shown by ``wall_s`` training seconds: its last evaluation at or before that time."""
    shown = [p["score"] for p in curve if p["wall_s"] <= wall_s]
    return float(shown[-1]) if shown else math.nan


def time_to_quality(lmgym: Curve, peer: Curve) -> dict[str, Any]:
    """Compare two curves the way the benchmark's headline does.

    Args:
        lmgym: lmgym's curve.
        peer: the peer trainer's curve (TRL's); its last point is its final score and wall time.

    Returns:
        ``target_score`` (the peer's final score), ``peer_wall_s`` (its wall time at that evaluation),
        ``lmgym_time_to_target_s`` (``None`` if never reached), ``time_to_quality_ratio`` (lmgym's time to the
        target / the peer's wall time; ``None`` if never reached), and at equal wall time ``equal_wall_s`` (the
        shorter of the two runs), ``lmgym_score_at_equal_wall``, ``peer_score_at_equal_wall`` and
        ``lmgym_ahead_at_equal_wall``; ``at_peer_evaluations`` lists both scores at every peer evaluation time.
    """
    target, peer_wall = float(peer[-1]["score"]), float(peer[-1]["wall_s"])
    reached = time_to_score(lmgym, target)
    equal = min(float(lmgym[-1]["wall_s"]), peer_wall)
    ours, theirs = score_at(lmgym, equal), score_at(peer, equal)
    return {
        "target_score": target,
        "peer_wall_s": peer_wall,
        "lmgym_time_to_target_s": reached,
        "time_to_quality_ratio": None if reached is None or peer_wall <= 0 else reached / peer_wall,
        "equal_wall_s": equal,
        "lmgym_score_at_equal_wall": ours,
        "peer_score_at_equal_wall": theirs,
        "lmgym_ahead_at_equal_wall": bool(ours > theirs),
        "at_peer_evaluations": [{"wall_s": p["wall_s"], "peer": p["score"], "lmgym": score_at(lmgym, p["wall_s"])}
                                for p in peer],
    }


def _run_row(name: str, run: dict[str, Any]) -> str:
    t = run["time"]
    curve = run["curve"]
    return (f"| {name} | {run['completions']:,} | {run['completions_per_s']:.1f} | {run['tokens_per_s']:,.0f} | "
            f"{t['total_s']:.1f} | {t['rollout_s']:.1f} | {t['reference_s']:.1f} | {t['update_s']:.1f} | "
            f"{curve[0]['score']:.4f} → {curve[-1]['score']:.4f} |")


def format_markdown(res: dict[str, Any]) -> str:
    """The result as Markdown: settings and provenance, one row per trainer, the time-to-quality verdict, the
    curves, and what still differs between the trainers."""
    cfg, m, q = res["config"], res["machine"], res["time_to_quality"]
    ratio = q["time_to_quality_ratio"]
    reached = ("never reached it" if ratio is None else
               f"reached it after {q['lmgym_time_to_target_s']:.1f} s: **time-to-quality ratio {ratio:.2f}**")
    lines = [
        f"# lmgym vs TRL `GRPOTrainer`: `{cfg['env']}`", "", f"`{res['command']}`", "",
        f"- task: `{cfg['env']}`, reward `{res['reward']}`, warm start: {res['warm_start']}",
        f"- budget: {cfg['steps']} steps × {cfg['prompts_per_step']} prompts × {cfg['samples_per_prompt']} samples "
        f"= {cfg['steps'] * cfg['prompts_per_step'] * cfg['samples_per_prompt']:,} completions each, the same "
        f"prompts in the same order; temperature {cfg['temperature']}, lr {cfg['learning_rate']:g}, KL coefficient "
        f"{cfg['kl_coef']}; greedy validation score on {cfg['eval_examples']} examples every {cfg['eval_every']} "
        "steps (evaluation time excluded from the wall time)",
        f"- machine: {m['cpu']}, {m['cores']} cores, load average {m['load_avg_start']:.1f} at start, "
        f"{m['load_avg_end']:.1f} at end; torch threads {cfg['threads']}; torch {m['torch']}, transformers "
        f"{m['transformers']}, trl {res['versions']['trl']}, lmgym commit "
        f"{res['git']['commit']}{' + uncommitted changes' if res['git']['dirty'] else ''}",
        "", "| trainer | completions | completions/s | tokens/s | wall s | rollout s | reference s | update s | "
        "greedy score |", "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        _run_row(f"lmgym ({res['lmgym']['shape']})", res["lmgym"]),
        _run_row(f"TRL GRPO ({res['trl']['shape']})", res["trl"]), "",
        f"TRL's final greedy score is {q['target_score']:.4f} after {q['peer_wall_s']:.1f} s; lmgym {reached}. "
        f"At equal wall time ({q['equal_wall_s']:.1f} s): lmgym {q['lmgym_score_at_equal_wall']:.4f}, TRL "
        f"{q['peer_score_at_equal_wall']:.4f} (lmgym {'ahead' if q['lmgym_ahead_at_equal_wall'] else 'not ahead'}).",
        "", "| step | lmgym s | lmgym score | lmgym KL | TRL s | TRL score | TRL KL |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.insert(-2, "KL: the exact KL(policy ‖ warm start) in nats, summed over each greedy completion, averaged.")
    lines.insert(-2, "")
    ours = {p["step"]: p for p in res["lmgym"]["curve"]}
    for p in res["trl"]["curve"]:
        o = ours.get(p["step"], {})
        lines.append(f"| {p['step']} | {o.get('wall_s', math.nan):.1f} | {o.get('score', math.nan):.4f} | "
                     f"{o.get('kl', math.nan):.2f} | {p['wall_s']:.1f} | {p['score']:.4f} | "
                     f"{p.get('kl', math.nan):.2f} |")
    lines += ["", "What still differs between the two trainers:", ""]
    lines += [f"- {d}" for d in res["differences"]]
    return "\n".join(lines) + "\n"


def plot_curves(res: dict[str, Any], path: str | os.PathLike) -> bool:
    """Greedy validation score against training wall time for both trainers, TRL's final score as a line and
    lmgym's time to reach it marked; ``False`` (nothing written) without matplotlib."""
    fig = new_figure((8, 4.5))
    if fig is None:
        return False
    ax = fig.add_subplot(1, 1, 1)
    for key, label, colour in (("lmgym", "lmgym", "tab:blue"), ("trl", "TRL GRPOTrainer", "tab:orange")):
        curve = res[key]["curve"]
        ax.plot([p["wall_s"] for p in curve], [p["score"] for p in curve], "o-", color=colour, ms=3,
                label=f"{label} ({res[key]['shape']})")
    q = res["time_to_quality"]
    ax.axhline(q["target_score"], color="tab:orange", ls="--", lw=0.8, label="TRL's final score")
    if q["lmgym_time_to_target_s"] is not None:
        ax.axvline(q["lmgym_time_to_target_s"], color="tab:blue", ls=":", lw=0.8,
                   label=f"time-to-quality ratio {q['time_to_quality_ratio']:.2f}")
    ax.set_xlabel("training wall time (s, evaluations excluded)")
    ax.set_ylabel("greedy validation score")
    ax.set_title(f"{res['config']['env']}, reward {res['reward']}\nlmgym vs TRL: same warm start, prompts and budget",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def write_results(res: dict[str, Any], out_dir: str | os.PathLike, name: str = "peer-trl") -> list[Path]:
    """Write ``<name>.json``, ``<name>.md`` and ``<name>.png`` (when matplotlib is there) to ``out_dir``."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.json", folder / f"{name}.md"]
    write_atomic(paths[0], json.dumps(res, indent=2) + "\n")
    write_atomic(paths[1], format_markdown(res))
    if plot_curves(res, folder / f"{name}.png"):
        paths.append(folder / f"{name}.png")
    return paths
