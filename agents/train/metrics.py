"""Training output: namespaced metrics to JSONL and TensorBoard, a learning-curve PNG, and the
before/after results table.

Every record in ``metrics.jsonl`` is one JSON object per line::

    {"phase": "ppo", "step": 3, "reward/mean": 0.41, "objective/kl": 0.8, ...}

``phase`` is ``"sft"`` (step = optimizer step) or ``"ppo"`` (step = iteration, 1-based); the same
names go to TensorBoard as scalars. With several processes every value is the mean over processes.

SFT (every ``log_every`` steps): ``sft/loss`` (token cross-entropy), ``sft/token_accuracy`` (greedy
next-token accuracy on the references), ``sft/learning_rate``.

PPO (every iteration):

- ``reward/mean``, ``reward/std``, ``reward/min``, ``reward/max``: the env's score of the sampled
  episodes; ``reward/total``: score minus the KL penalty, summed over tokens;
- ``objective/kl``: sum over tokens of ``logp - ref_logp`` (KL to the reference per sequence),
  ``objective/kl_per_token``, ``objective/kl_coef`` (the coefficient used this iteration),
  ``objective/kl_penalty`` (``kl_coef * kl``);
- ``losses/policy``, ``losses/value``, ``losses/entropy``, ``losses/total``: means over minibatch steps;
- ``policy/approx_kl`` (``mean((r - 1) - log r)``), ``policy/clipfrac``, ``policy/ratio``,
  ``policy/grad_norm`` (before clipping), ``policy/epochs`` (epochs run; fewer after an early stop);
- ``value/mean``, ``value/returns``, ``value/explained_variance``, ``value/clipfrac``;
- ``episode/length`` (tokens, EOS included), ``episode/eos_rate`` (ended by EOS, not the limit);
- ``charts/tokens_per_s`` (rollout tokens per second, all processes), ``charts/episodes``
  (cumulative), ``charts/learning_rate``, ``charts/iteration_s``; ``time/rollout_s``, ``time/reference_s``,
  ``time/update_s``;
- ``eval/score`` (task metric, greedy), ``eval/sampled_score`` (task metric, sampled), ``eval/reward``,
  ``eval/kl`` (exact KL to the reference along the greedy completion), ``eval/length``: on
  evaluation iterations only (validation split).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

from lmgym.atomic import atomic_path, write_atomic

METRICS_FILE = "metrics.jsonl"
RESULTS_MD = "results.md"
RESULTS_JSON = "results.json"
CURVE_PNG = "learning_curve.png"


def read_metrics(path: str | os.PathLike, phase: str | None = None) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` file (optionally only one ``phase``); a torn last line is skipped."""
    records = []
    if not os.path.exists(path):
        return records
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill mid-write
            if phase is None or record.get("phase") == phase:
                records.append(record)
    return records


class MetricsLogger:
    """Append metrics to ``run_dir/metrics.jsonl`` and (optionally) TensorBoard.

    Args:
        run_dir: the run folder.
        tensorboard: also write TensorBoard event files under ``run_dir/tensorboard``.
        enabled: ``False`` on non-main processes: every call is a no-op.
    """

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool = True, enabled: bool = True) -> None:
        self.run_dir = os.fspath(run_dir)
        self.enabled = enabled
        self.path = os.path.join(self.run_dir, METRICS_FILE)
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is in the agents extra; JSONL still works
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(os.path.join(self.run_dir, "tensorboard"))

    def truncate(self, phase: str, after_step: int) -> None:
        """Drop ``phase`` records with ``step > after_step`` (a resumed run redoes those)."""
        if not self.enabled or not os.path.exists(self.path):
            return
        keep = [r for r in read_metrics(self.path) if r.get("phase") != phase or r.get("step", 0) <= after_step]
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in keep))

    def log(self, phase: str, step: int, metrics: dict[str, Any]) -> None:
        """Write one record (non-finite floats become ``null`` in JSON)."""
        if not self.enabled:
            return
        record: dict[str, Any] = {"phase": phase, "step": int(step)}
        for key, value in metrics.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            record[key] = value
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        if self.writer is not None:
            global_step = int(step)
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and value is not None and math.isfinite(value):
                    self.writer.add_scalar(key, value, global_step)
            self.writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def new_figure(figsize: tuple[float, float]) -> Any:
    """A matplotlib ``Figure`` drawn off-screen (the object-oriented API: no pyplot, so the caller's backend is
    never switched), or ``None`` when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Any, path: str | os.PathLike, dpi: int = 100) -> bool:
    """Lay out ``fig`` and write it to ``path`` as a PNG, atomically; returns ``True``."""
    fig.tight_layout()
    with atomic_path(os.fspath(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return True


def plot_learning_curve(
    records: Sequence[dict[str, Any]], path: str | os.PathLike, title: str = "", start_score: float | None = None,
    start_name: str = "start", start_sampled: float | None = None,
) -> bool:
    """Plot PPO training reward, validation score and KL per iteration to a PNG.

    ``start_score`` (the validation score of the policy PPO starts from) is drawn at iteration 0
    and as a dashed line, so the gain over it is visible (``start_sampled``: its sampled score).

    Returns:
        ``False`` (and writes nothing) when matplotlib is missing or there are no PPO records.
    """
    ppo = [r for r in records if r.get("phase") == "ppo"]
    if not ppo:
        return False
    fig = new_figure((10, 3.8))
    if fig is None:
        return False

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(r["step"], r[key]) for r in ppo if r.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    ax_r, ax_kl = fig.subplots(1, 2)
    ax_r.plot(*series("reward/mean"), label="train reward (sampled)", alpha=0.8)
    steps, score = series("eval/score")
    if start_score is not None:
        steps, score = [0, *steps], [start_score, *score]
        ax_r.axhline(start_score, color="gray", ls="--", lw=1, label=f"{start_name} (validation)")
    if steps:
        ax_r.plot(steps, score, "o-", label="validation score (greedy)")
    steps, score = series("eval/sampled_score")
    if start_sampled is not None:
        steps, score = [0, *steps], [start_sampled, *score]
    if steps:
        ax_r.plot(steps, score, "s-", label="validation score (sampled)", alpha=0.8)
    ax_r.set_xlabel("PPO iteration")
    ax_r.set_ylabel("score")
    ax_r.legend()
    ax_r.grid(alpha=0.3)
    ax_kl.plot(*series("objective/kl"), label="KL to reference (train)", color="tab:red")
    ax_kl.set_xlabel("PPO iteration")
    ax_kl.set_ylabel("KL (nats / sequence)")
    ax_kl.grid(alpha=0.3)
    ax_kl.legend()
    if title:
        fig.suptitle(title)
    return save_png(fig, path)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def results_table(rows: Sequence[dict[str, Any]], title: str = "", samples: Iterable[dict[str, Any]] = ()) -> str:
    """Markdown before/after table.

    Args:
        rows: one dict per policy with ``name`` and the :func:`~lmgym.agents.train.evaluation.evaluate_policy`
            fields (``score``, ``reward``, ``kl``, ``length``, ``eos_rate``, ``metric``, ``num_examples``).
        title: a heading line.
        samples: dicts with ``prompt``, ``reference`` and one completion per row name.
    """
    metric = rows[0].get("metric", "score") if rows else "score"
    n = rows[0].get("num_examples", "") if rows else ""
    lines = [f"## {title}", ""] if title else []
    lines += [
        f"Validation split, {n} examples. `{metric}` is the task metric of greedy completions, `sampled` the "
        "same metric of sampled ones (the stochastic policy PPO optimises, same random numbers for every row); "
        "`reward` is the training scorer (greedy); `KL` is KL(policy || reference) in nats per greedy "
        "completion; length and EOS rate are of greedy completions.",
        "",
        f"| policy | {metric} | sampled | reward | KL to reference | length | EOS rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {_cell(row['score'])} | {_cell(row.get('sampled_score', float('nan')))} | "
            f"{_cell(row['reward'])} | {_cell(row['kl'])} | {_cell(row['length'])} | {_cell(row['eos_rate'])} |"
        )
    samples = list(samples)
    if samples:
        lines += ["", "### Sample completions", ""]
        for i, sample in enumerate(samples, 1):
            lines.append(f"**{i}.** prompt: `{_cell(sample['prompt'])}`  ")
            lines.append(f"reference: `{_cell(sample['reference'])}`  ")
            for row in rows:
                if row["name"] in sample:
                    lines.append(f"{row['name']}: `{_cell(sample[row['name']])}`  ")
            lines.append("")
    return "\n".join(lines) + "\n"
