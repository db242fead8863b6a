"""Where ``lmgym speed`` results go: the Markdown table and the JSON + Markdown files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def format_markdown(res: dict[str, Any]) -> str:
    """The results as Markdown: sizes and machine, one row per measurement, then the targets."""
    sec, r, sz, m, cfg = res["sections"], res["ratios"], res["sizes"], res["machine"], res["config"]
    lm = sz["model"]
    lines = [
        f"# Rollout speed: preset `{cfg['preset']}`", "", f"`{res['command']}`", "",
        f"- sizes: `{sz['env']}`, N = {sz['num_envs']}, prompt P = {sz['prompt_tokens']} (left-padded; mean "
        f"{sz['prompt_real_tokens_mean']:.0f} real tokens; a, b and c drop the columns that are padding in every row, "
        f"leaving {sz.get('prompt_tokens_used', sz['prompt_tokens'])}), R = {sz['new_tokens']} new tokens; "
        f"{lm['type']} {lm['n_layer']} layers x {lm['n_embd']}, {lm['n_head']} heads, vocab "
        f"{lm['vocab_size']}, {lm['parameters']:,} parameters",
        f"- machine: {m['cpu']}, {m['cores']} cores (load average {m['load_avg_start']:.1f} at start, "
        f"{m['load_avg_end']:.1f} at end); device {m['device']} {m.get('gpu', '')}; {cfg['dtype']}, "
        f"torch threads: {cfg['threads']}; torch {m['torch']}, transformers {m['transformers']}",
        f"- git {res['git']['commit']}{' + uncommitted changes' if res['git']['dirty'] else ''}; seed "
        f"{res['seeds']['seed']}; wall time {res['wall_s']:.0f} s. Absolute numbers are noisy (shared machine); "
        "the ratios, measured side by side in one run, are what count.",
    ]
    if max(m["load_avg_start"], m["load_avg_end"]) > m["cores"] - 0.5:
        lines.append("- **busy machine** (load average near or above the cores): other processes shared the CPUs; "
                     "with more than one torch thread, oversubscription slows the many small kernels of decoding far "
                     "more than big ones. Rerun on an idle machine or with `--threads 1`.")
    lines += ["", "| | measurement | seconds | tokens/s or steps/s | ratio |", "|---|---|---:|---:|---|"]

    def row(key: str, what: str, seconds: float | None = None, rate: float | None = None, ratio: str = "") -> None:
        cells = ["" if seconds is None else f"{seconds:.3f}", "" if rate is None else f"{rate:,.0f}"]
        lines.append(f"| {key} | {what} | {cells[0]} | {cells[1]} | {ratio} |")

    get = lambda name: r.get(name, math.nan)
    if "a" in sec:
        row("a", "`model.generate`, KV cache, sampling (the limit)", sec["a"]["seconds"], sec["a"]["tokens_per_s"])
    if "b" in sec:
        b = sec["b"]
        row("b", f"env + PPO rollout (KV cache, values) {b['rollout_s']:.3f} s + reference log-probs "
            f"{b['reference_s']:.3f} s", b["seconds"], b["tokens_per_s"],
            f"b/a = {get('b_over_a'):.2f} (rollout alone {get('b_rollout_only_over_a'):.2f}; CPU time "
            f"{get('b_over_a_cpu_time'):.2f})")
    if "c" in sec:
        row("c", f"per-token full recompute through the env (context {sec['c']['context']})", sec["c"]["seconds"],
            sec["c"]["tokens_per_s"], f"b/c = {get('b_over_c'):.1f}")
    for d in sec.get("d", {}).values():
        what = (f"`{d['env']}` scorer `{d['scorer']}`, {d['num_envs']} envs, {d['episode_tokens']}-token episodes "
                f"(fastest of {d['blocks']} episode cycles)")
        row("d", f"{what}, native", d["native"]["seconds"], d["native"]["steps_per_s"],
            f"native/sync = {d['ratio']:.1f} (all blocks {d['mean_ratio']:.1f}"
            + (f", CPU time {d['cpu_ratio']:.1f}" if "cpu_ratio" in d else "") + "); decoding + scoring "
            f"{d['native']['scoring_share']:.0%} of native time"
            + (f" (the scorer {d['native']['scorer_share']:.0%})" if "scorer_share" in d["native"] else "")
            + f", bound {d['ratio_bound_scoring_only']:.0f}")
        row("d", f"{what}, sync", d["sync"]["seconds"], d["sync"]["steps_per_s"])
    for name in ("full_copy", "lora") if "e" in sec else ():
        e, peak = sec["e"], sec["e"][name].get("cuda_max_allocated")
        cuda = "" if peak is None else f", CUDA peak {peak / 2**20:.1f} MiB"
        row("e", f"policy + value + reference, {name.replace('_', ' ')}: {e[name]['bytes'] / 2**20:.2f} MiB{cuda}",
            ratio=f"{e[name]['ratio_to_one_model']:.2f} x one model ({e['one_model_bytes'] / 2**20:.2f} MiB)")
    if "f" in sec:
        row("f", f"one PPO update: {sec['f']['epochs_run']} epochs x {sec['f']['minibatches']} minibatches",
            sec["f"]["seconds"], ratio=f"update/rollout = {get('f_update_over_rollout'):.2f}")
    lines += ["", "Targets (stated for the default sizes):", "", "| target | value | met |", "|---|---:|---|"]
    for name, t in res["targets"].items():
        value, met = "not run" if t["value"] is None else f"{t['value']:.2f}", {None: "", True: "yes"}.get(t["met"])
        lines.append(f"| `{name}` {t['op']} {t['bound']} | {value} | {met or '**no**'} |")
    return "\n".join(lines) + "\n"


def write_results(res: dict[str, Any], out_dir: str) -> tuple[Path, Path]:
    """Write ``<preset>.json`` and ``<preset>.md`` to ``out_dir``; returns their paths."""
    folder, name = Path(out_dir), res["config"]["preset"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(res, indent=2) + "\n")
    (folder / f"{name}.md").write_text(format_markdown(res))
    return folder / f"{name}.json", folder / f"{name}.md"
