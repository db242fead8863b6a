"""The offline stages of ``lmgym train``: reading ``--data`` logs and the ILQL loop.

``lmgym train --algo ilql --data logs.jsonl`` trains an :class:`~lmgym.agents.offline.ilql.ILQLPolicy`
from scratch (or from ``--model``) on the logs, evaluating and checkpointing every ``eval_every`` /
``checkpoint_every`` iterations like PPO. The results table compares the final model's behaviour-cloning
policy (``beta = 0``) with its steered one (``beta = --ilql-beta``), and ``results.json`` adds the score
at every ``--ilql-eval-betas``. ``lmgym train --algo sft --data logs.jsonl [--data-top-fraction 0.2]``
is SFT-all (filtered behaviour cloning) on the same logs.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict
from typing import Any

from lmgym.agents.offline.data import LogData, build_log_data, format_warnings
from lmgym.agents.offline.ilql import ILQLPolicy
from lmgym.agents.offline.trainer import ILQLTrainer
from lmgym.agents.train.metrics import read_metrics
from lmgym.logs import load_logs

EVAL_KEYS = ("score", "sampled_score", "reward", "length")


def read_log_data(run: Any, top_fraction: float = 1.0) -> LogData:
    """The run's ``--data`` logs tokenized for its env (the top fraction by reward), warning about odd rows."""
    logs = load_logs(run.config.data)
    if top_fraction < 1.0:
        logs = logs.top_fraction(top_fraction)
    data = build_log_data(run.proto, logs)
    if data.warnings and run.main:
        warnings.warn(f"Logs {run.config.data!r}: {format_warnings(data.warnings, len(data))}.", stacklevel=2)
    return data


def evaluate_at(run: Any, policy: ILQLPolicy, beta: float) -> dict[str, Any]:
    """The held-out evaluation of ``policy`` decoding at steering strength ``beta`` (restored afterwards)."""
    saved, policy.beta = policy.beta, float(beta)
    try:
        return run.evaluate(policy)
    finally:
        policy.beta = saved


def ilql_loop(run: Any, policy: ILQLPolicy) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict]]:
    """ILQL from ``policy`` to ``config.iterations``: evaluations, metrics and checkpoints on the way.

    Returns:
        ``(before, after, history)``: the final model at ``beta = 0`` (behaviour cloning) and at
        ``ilql_beta`` (``after["betas"]`` maps every ``ilql_eval_betas`` value to its score), and the metrics.
    """
    from lmgym.agents.train.run import POLICY_DIR, save_policy

    cfg, accelerator = run.config, run.accelerator
    trainer = ILQLTrainer(cfg, policy, read_log_data(run), accelerator, resume_from=run.checkpoint)
    run.logger.truncate("ilql", trainer.iteration)
    history = read_metrics(run.logger.path, "ilql") if run.main else []
    last = None  # the newest evaluation at ilql_beta
    with run.progress(total=cfg.iterations, initial=trainer.iteration, desc="ILQL") as bar:
        while trainer.iteration < cfg.iterations:
            metrics = trainer.iterate()
            it = trainer.iteration
            if run.main and ((cfg.eval_every and it % cfg.eval_every == 0) or it == cfg.iterations):
                last = evaluate_at(run, trainer.policy, cfg.ilql_beta)
                metrics.update({f"eval/{key}": last[key] for key in EVAL_KEYS})
            run.logger.log("ilql", it, metrics)
            history.append({"phase": "ilql", "step": it, **metrics})
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['ilql/loss']:.3f}", v=f"{metrics['ilql/v_mean']:.2f}")
            if (cfg.checkpoint_every and it % cfg.checkpoint_every == 0) or it == cfg.iterations:
                trainer.save(run.run_dir, asdict(cfg))
            accelerator.wait_for_everyone()
    if not run.main:
        return {}, None, history
    final = trainer.policy
    final.beta = cfg.ilql_beta
    betas = {float(b): (last if last is not None and float(b) == float(cfg.ilql_beta) else evaluate_at(run, final, b))
             for b in sorted({0.0, cfg.ilql_beta, *cfg.ilql_eval_betas})}
    before, after = betas[0.0], dict(betas[float(cfg.ilql_beta)])
    after["betas"] = {str(b): result["score"] for b, result in betas.items()}
    save_policy(final, run.proto.tokenizer, os.path.join(run.run_dir, POLICY_DIR))
    return before, after, history


__all__ = ["evaluate_at", "ilql_loop", "read_log_data"]
