"""Generated leaderboards: ``leaderboards/README.md`` and per-env PNG curves from result JSON only.

``lmgym bench`` writes one JSON file per run (agent x env x seed) to ``leaderboards/results/``;
:func:`build_leaderboard` reads **only** those files and writes

- ``README.md``: one section per env, one table per benchmark configuration (env kwargs and
  budget), one row per agent with the final score as mean ± std over seeds, in the spirit of the
  RL Zoo benchmark tables;
- ``curves/<env>.png``: held-out score against env steps, mean over seeds with a ±std band.

Nothing here imports torch, and nothing in the README is hand-edited: rerun
``lmgym bench --leaderboard-only`` (or :func:`build_leaderboard`) after adding results.

Result files follow :data:`RESULT_FIELDS`; ``std`` is the sample standard deviation (ddof=1)
across seeds, and rows with fewer than :data:`MIN_SEEDS` seeds are marked.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmgym.atomic import atomic_path

MIN_SEEDS = 3
SCHEMA_VERSION = 1

# field -> meaning; every result JSON has these keys (values may be null where noted).
RESULT_FIELDS: dict[str, str] = {
    "schema": "result schema version (1)",
    "env_id": "registered env id, e.g. lmgym/Copy-v0",
    "env_version": "the -vN suffix of env_id as an int",
    "env_kwargs": "keyword arguments given to gym.make / make_vec",
    "agent": "bench agent name, e.g. sb3-ppo",
    "agent_kind": "sb3 | lm | baseline",
    "agent_config": "hyperparameters that differ from the agent's defaults",
    "seed": "run seed (torch, numpy, env)",
    "budget": "env steps (tokens written) the agent may use for training",
    "steps": "env steps actually used (SB3 rounds up to whole rollouts; 0 for baselines)",
    "final_score": "mean scorer value on eval_episodes held-out episodes after training",
    "best_score": "best held-out evaluation on the learning curve",
    "kl": "KL(policy || reference) per completion for LM agents, else null",
    "eval_episodes": "episodes per evaluation",
    "eval_split": "split evaluated (validation)",
    "curve": "[[env steps, held-out score], ...] learning curve",
    "wall_time_s": "wall time of the run, training and evaluations",
    "cpu_time_s": "CPU time of the run's process (load-independent cost; threads included)",
    "tokens_per_s": "training env steps per second of training time (excludes evaluations)",
    "preset": "bench preset name",
    "command": "command line that produced the run",
    "commit": "git rev-parse HEAD at run time (null outside a git checkout)",
    "commit_dirty": "whether tracked files had uncommitted changes at run time",
    "machine": "cpu model, cores, python/torch/transformers versions, torch threads, device (and gpu name on CUDA)",
}


@dataclass(frozen=True)
class AgentRow:
    """One leaderboard row: an agent's runs on one benchmark configuration."""

    agent: str
    kind: str
    seeds: tuple[int, ...]
    finals: tuple[float, ...]
    bests: tuple[float, ...]
    kls: tuple[float, ...]
    wall_times: tuple[float, ...]
    tokens_per_s: tuple[float, ...]
    steps: tuple[int, ...]
    variant: str = ""
    """What a generic agent resolved to on this env (e.g. ``simple`` -> ``lead-2``)."""

    @property
    def label(self) -> str:
        """The agent name, with its variant when it has one."""
        return f"{self.agent} ({self.variant})" if self.variant and self.variant != self.agent else self.agent

    @property
    def mean(self) -> float:
        """Mean final score over seeds."""
        return statistics.fmean(self.finals)

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1) of the final score; NaN for a single seed."""
        return statistics.stdev(self.finals) if len(self.finals) > 1 else math.nan


def load_results(results_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All result records in ``results_dir/*.json``, sorted by file name (missing keys raise)."""
    records = []
    for path in sorted(Path(results_dir).glob("*.json")):
        record = json.loads(path.read_text())
        missing = [k for k in ("env_id", "agent", "seed", "budget", "final_score") if k not in record]
        if missing:
            raise ValueError(f"{path} is not an lmgym bench result: missing {missing}.")
        record["_file"] = path.name
        records.append(record)
    return records


def config_key(record: dict[str, Any]) -> str:
    """Canonical text of what makes two runs comparable: env id, env kwargs and budget."""
    return json.dumps(
        {"env_id": record["env_id"], "env_kwargs": record.get("env_kwargs") or {}, "budget": record["budget"]},
        sort_keys=True,
    )


def env_slug(env_id: str) -> str:
    """File-name form of an env id: ``lmgym/Copy-v0`` -> ``Copy-v0``."""
    return env_id.split("/")[-1].replace("/", "_")


def _rows(records: Sequence[dict[str, Any]]) -> list[AgentRow]:
    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_agent[r["agent"]].append(r)
    rows = []
    for agent, runs in by_agent.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        rows.append(
            AgentRow(
                agent=agent,
                kind=str(runs[0].get("agent_kind", "")),
                seeds=tuple(int(r["seed"]) for r in runs),
                finals=tuple(float(r["final_score"]) for r in runs),
                bests=tuple(float(r.get("best_score", r["final_score"])) for r in runs),
                kls=tuple(float(r["kl"]) for r in runs if r.get("kl") is not None),
                wall_times=tuple(float(r["wall_time_s"]) for r in runs if r.get("wall_time_s") is not None),
                tokens_per_s=tuple(float(r["tokens_per_s"]) for r in runs if r.get("tokens_per_s")),
                steps=tuple(int(r.get("steps", 0)) for r in runs),
                variant=str((runs[0].get("extra") or {}).get("baseline", "")),
            )
        )
    return sorted(rows, key=lambda row: (-row.mean, row.agent))


def group_results(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[AgentRow]]]:
    """``{env_id: {config_key: [AgentRow, ...]}}``: envs by id, configs by budget, rows by mean score (best first)."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        grouped[r["env_id"]][config_key(r)].append(r)

    def order(key: str) -> tuple[int, str]:
        return json.loads(key)["budget"], key

    return {env: {key: _rows(cfgs[key]) for key in sorted(cfgs, key=order)} for env, cfgs in sorted(grouped.items())}


def format_mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``"0.812 ± 0.034"`` (sample std); a single value has no std: ``"0.812"``."""
    if not values:
        return "—"
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _mean_cell(values: Sequence[float], fmt: str) -> str:
    return format(statistics.fmean(values), fmt) if values else "—"


def curve_file(env_id: str, key: str, n_configs: int) -> str:
    """PNG name of a configuration's curves: ``<env>.png``, or ``<env>-<hash>.png`` if several."""
    if n_configs == 1:
        return f"{env_slug(env_id)}.png"
    return f"{env_slug(env_id)}-{hashlib.sha1(key.encode()).hexdigest()[:8]}.png"


def mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> tuple[list[float], list[float], list[float]]:
    """Mean and population std across seeds of piecewise-linear curves.

    Seeds of an LM agent evaluate at slightly different env steps (episode lengths vary), so each
    curve is linearly interpolated at the union of all curves' steps within the range every curve
    covers; curves with identical steps (SB3, baselines) are averaged point by point, exactly.
    """
    curves = [sorted((float(x), float(y)) for x, y in c) for c in curves if len(c)]
    if not curves:
        return [], [], []
    lo = max(c[0][0] for c in curves)
    hi = min(c[-1][0] for c in curves)
    xs = sorted({x for c in curves for x, _ in c if lo <= x <= hi})
    ys = [[_interp(x, c) for c in curves] for x in xs]
    return xs, [statistics.fmean(v) for v in ys], [statistics.pstdev(v) for v in ys]


def _interp(x: float, curve: Sequence[tuple[float, float]]) -> float:
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return curve[-1][1] if x >= curve[-1][0] else curve[0][1]


def plot_curves(env_id: str, records: Sequence[dict[str, Any]], path: str | os.PathLike) -> bool:
    """Plot held-out score vs env steps per agent (mean ± std band over seeds) to ``path``.

    Returns ``False`` (writing nothing) when matplotlib is missing.
    """
    try:
        from matplotlib.figure import Figure  # no pyplot: never switches the caller's backend
    except ImportError:
        return False
    by_agent: dict[str, list[Any]] = defaultdict(list)
    baselines = {r["agent"] for r in records if r.get("agent_kind") == "baseline"}  # flat: dashed
    for r in records:
        if r.get("curve"):
            by_agent[r["agent"]].append(r["curve"])
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for agent in sorted(by_agent):
        xs, means, stds = mean_curve(by_agent[agent])
        if not xs:
            continue
        n = len(by_agent[agent])
        style = {"linestyle": "--"} if agent in baselines else {"marker": "o", "markersize": 3}
        (line,) = ax.plot(xs, means, label=f"{agent} (n={n})", **style)
        ax.fill_between(
            xs,
            [m - s for m, s in zip(means, stds, strict=True)],
            [m + s for m, s in zip(means, stds, strict=True)],
            color=line.get_color(),
            alpha=0.2,
        )
    budget = records[0]["budget"] if records else 0
    ax.set_title(f"{env_id} — budget {budget:,} env steps")
    ax.set_xlabel("env steps (tokens)")
    ax.set_ylabel("held-out score (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        # No "Software" entry: the PNG bytes are the same whatever matplotlib version drew them.
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    return True


def _machines(records: Sequence[dict[str, Any]]) -> list[str]:
    seen = []
    for r in records:
        m = r.get("machine") or {}
        text = (
            f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores), torch {m.get('torch', '?')}, "
            f"{m.get('gpu') or m.get('device', 'cpu')}"
        )
        if text not in seen:
            seen.append(text)
    return seen


def _agent_settings(records: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """``(agent, kind, settings text)`` per agent; different settings across runs are listed with ``;``."""
    seen: dict[str, list[str]] = defaultdict(list)
    kinds: dict[str, str] = {}
    for r in records:
        text = json.dumps(r.get("agent_config") or {}, sort_keys=True)
        kinds[r["agent"]] = str(r.get("agent_kind", ""))
        if text not in seen[r["agent"]]:
            seen[r["agent"]].append(text)
    return [(a, kinds[a], "; ".join(f"`{t}`" for t in texts)) for a, texts in sorted(seen.items())]


def render_markdown(
    records: Sequence[dict[str, Any]],
    curves: dict[tuple[str, str], str] | None = None,
    results_link: str = "results/",
) -> str:
    """The leaderboard README text for ``records``.

    Args:
        records: result records (:func:`load_results`).
        curves: ``{(env_id, config_key): relative PNG path}`` of drawn curves.
        results_link: relative link to the results folder.
    """
    curves = curves or {}
    grouped = group_results(records)
    lines = [
        "# lmgym leaderboards",
        "",
        "<!-- GENERATED by `lmgym bench --leaderboard-only` from results/*.json. Do not edit by hand. -->",
        "",
        f"Every number below is computed from the JSON files in [`results/`]({results_link}), one per run "
        "(agent × env × seed). Regenerate this page with `lmgym bench --leaderboard-only`; rerun the "
        "benchmark with the command recorded in each file (e.g. `lmgym bench --preset full`).",
        "",
        "**Score** is the env's scorer (its default unless the config says otherwise) averaged over the "
        "held-out episodes of the final evaluation, shown as mean ± std over seeds (sample std, ddof=1). "
        "**Best** is the mean over seeds of each run's best held-out evaluation during training. "
        "**Budget** is in env steps, i.e. tokens written by the agent during training.",
        "",
    ]
    if not grouped:
        lines += ["_No results yet._", ""]
    for env_id, configs in grouped.items():
        lines += [f"## {env_id}", ""]
        for key, rows in configs.items():
            cfg = json.loads(key)
            kwargs = ", ".join(f"{k}={v!r}" for k, v in sorted(cfg["env_kwargs"].items())) or "defaults"
            sample = next(r for r in records if config_key(r) == key)
            lines.append(
                f"Budget **{cfg['budget']:,}** env steps · env kwargs: {kwargs} · "
                f"{sample.get('eval_episodes', '?')} {sample.get('eval_split', 'validation')} episodes per evaluation"
                + (f" · [learning curves]({png})" if (png := curves.get((env_id, key))) else "")
            )
            lines += [
                "",
                "| agent | kind | score | best | seeds | env steps | KL | tokens/s | wall time (s) |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for row in rows:
                seeds = str(len(row.seeds)) + ("" if len(row.seeds) >= MIN_SEEDS else " †")
                lines.append(
                    f"| {row.label} | {row.kind} | {format_mean_std(row.finals)} | {_mean_cell(row.bests, '.3f')} | "
                    f"{seeds} | {_mean_cell(row.steps, ',.0f')} | {_mean_cell(row.kls, '.3f')} | "
                    f"{_mean_cell(row.tokens_per_s, ',.0f')} | {_mean_cell(row.wall_times, ',.1f')} |"
                )
            lines.append("")
            if png:
                lines += [f"![{env_id} learning curves]({png})", ""]
    settings = _agent_settings(records)
    if settings:
        lines += ["## Agent settings", "", "Hyperparameters that differ from each agent's defaults, as recorded:", ""]
        lines += [f"- `{agent}` ({kind}): {text}" for agent, kind, text in settings]
        lines.append("")
    lines += [
        "## Caveats",
        "",
        f"- † marks rows with fewer than {MIN_SEEDS} seeds: their mean ± std is not a reliable estimate.",
        "- Budgets are small (CPU, minutes per run) and hyperparameters are defaults, not tuned per env; "
        "ranks can change with larger budgets.",
        "- Learned agents are evaluated greedily (deterministic actions); baselines as defined by their agent.",
        "- **env steps** is the mean number of env steps each run actually used: SB3 agents round the budget "
        "up to whole rollouts; the lmgym PPO agent turns it into PPO iterations (expecting episodes as long as "
        "a reference completion after SFT, as long as the token limit from scratch), so it may use somewhat "
        "more or fewer; baselines do not train (0). An SFT warm start trains on reference completions "
        "outside the env-step budget.",
        "- KL is reported for LM agents only (KL to their reference model); `—` means not applicable.",
        "- tokens/s and wall times depend on the machine and on other load; compare them only within one "
        "machine. Machines in these results:",
    ]
    lines += [f"  - {m}" for m in _machines(records)] or ["  - (none)"]
    cpu = [float(r["cpu_time_s"]) for r in records if r.get("cpu_time_s") is not None]
    if cpu:
        lines.append(
            f"- Cost: {len(records)} runs, {sum(cpu) / 60:,.1f} CPU-minutes in total (sum of `cpu_time_s`; "
            f"about {sum(cpu) / 120:,.0f} min of wall time on 2 otherwise idle cores)."
        )
    commits = sorted(
        {
            str(r.get("commit"))[:12] + (" (+ local changes)" if r.get("commit_dirty") else "")
            for r in records
            if r.get("commit")
        }
    )
    if commits:
        lines.append(f"- Code: commit {', '.join(commits)}.")
    lines.append("")
    return "\n".join(lines)


def build_leaderboard(
    results_dir: str | os.PathLike = "leaderboards/results",
    out_dir: str | os.PathLike | None = None,
    *,
    plots: bool = True,
) -> Path:
    """Write ``README.md`` (and ``curves/*.png`` when ``plots``) into ``out_dir`` from ``results_dir``.

    Args:
        results_dir: folder of result JSON files.
        out_dir: where to write; the parent of ``results_dir`` by default.
        plots: draw learning-curve PNGs (needs matplotlib: ``pip install lmgym[agents]``).

    Returns:
        The path of the written README.
    """
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir is not None else results_dir.parent
    out.mkdir(parents=True, exist_ok=True)
    records = load_results(results_dir)
    curves: dict[tuple[str, str], str] = {}
    if plots:
        for env_id, configs in group_results(records).items():
            for key in configs:
                name = curve_file(env_id, key, len(configs))
                runs = [r for r in records if r["env_id"] == env_id and config_key(r) == key]
                (out / "curves").mkdir(exist_ok=True)
                if plot_curves(env_id, runs, out / "curves" / name):
                    curves[(env_id, key)] = f"curves/{name}"
    readme = out / "README.md"
    link = Path(os.path.relpath(results_dir, out)).as_posix() + "/"
    readme.write_text(render_markdown(records, curves, results_link=link))
    return readme
