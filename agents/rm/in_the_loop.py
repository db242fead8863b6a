"""Human in the loop: between PPO iterations, people label pairs of the current policy's completions and the
reward model is fine-tuned on every label so far, then becomes the reward.

::

    lmgym train --env lmgym/PositiveReview-v1 --reward-model runs/rm/model --label-every 5 --label-pairs 20 \\
        --labels labels.jsonl --no-progress           # a person answers in the terminal every 5 iterations
    lmgym train ... --annotator scorer:0.1            # the env's task metric, wrong 10% of the time, stands in

Every ``label_every`` PPO iterations a :class:`LabelLoop` runs one round:

1. **sample**: two completions of the current policy (the rollouts' temperature/top-k/top-p) for each of
   ``label_pairs`` random train prompts; a pair of two identical completions is not asked;
2. **ask**: the annotator answers through :func:`lmgym.label.collect`, the collector of ``lmgym label``: every
   answer is appended to ``labels`` and fsynced at once. Question ids are fixed per run, round and pair, so a
   resumed run (or a round the person quit with ``q``) asks only what is still unanswered;
3. **fine-tune**: :func:`lmgym.agents.rm.train.train_reward_model` trains the current reward model (its weights,
   a fresh optimizer) for ``label_rm_steps`` steps on every label so far (ties and skips left out; labels already
   in the file before the run count too) into ``<run>/reward_model/round-<iteration>/``, whose ``labels.jsonl``
   is exactly that data and ``results.md`` its held-out accuracy. Until the labels have a held-out prompt and a
   training prompt (:data:`EVAL_FRACTION` of prompts are held out) the reward model stays as it is;
4. **swap**: the new ``model/`` (re-normalised on the env's train references) becomes the reward of the
   training and evaluation envs.

``<run>/reward_model/state.json`` records the rounds, so a resumed run continues with the reward model that was
current at its checkpoint. The round's metrics are logged with its PPO iteration: ``labels/asked``,
``labels/new``, ``labels/total`` (usable pairs so far), ``labels/rm_updated`` (1 or 0),
``labels/rm_accuracy`` (held out), ``time/label_s``.

From Python, pass ``LabelLoop(...)`` (any :func:`lmgym.label.collect` annotator, e.g. a web form's) in
``train(config, callbacks=[...])``; ``--label-every`` builds one from the config (:meth:`LabelLoop.from_config`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lmgym.atomic import write_atomic, write_jsonl
from lmgym.errors import ConfigError, PreferenceError
from lmgym.label import Question, answered_ids, collect, parse_annotator, scripted_annotator, terminal_annotator

if TYPE_CHECKING:
    from lmgym.agents.ppo.trainer import PPOTrainer
    from lmgym.agents.train.config import TrainConfig
    from lmgym.agents.train.run import Run

EVAL_FRACTION = 0.2
"""Share of the labelled prompts held out to measure each round's reward model."""
FOLDER = "reward_model"
"""The labelling rounds' folder inside the run folder."""
RM_SETTINGS = ("batch_size", "learning_rate", "max_length", "use_margin")
"""Reward-model settings a round takes from the starting model's ``lmgym rm train`` run (its ``config.json``)."""

Annotator = Callable[[Question], "str | None"]


class LabelLoop:
    """Labelling rounds between PPO iterations (an iteration callback of :func:`lmgym.agents.train.train`).

    Args:
        every: run a round after every ``every``-th PPO iteration.
        pairs: pairs sampled per round (two completions for each of this many train prompts).
        labels: the labels file (.jsonl) answers are appended to.
        annotator: ``"terminal"``, ``"scorer:NOISE"`` (see :func:`lmgym.label.parse_annotator`), or a callable
            ``Question -> "a" | "b" | "tie" | "skip" | None`` (``None``: stop asking this round).
        rm_steps: reward-model fine-tuning steps per round.
    """

    def __init__(self, every: int, pairs: int, labels: str, annotator: str | Annotator = "terminal",
                 rm_steps: int = 50) -> None:
        if every < 1 or pairs < 1 or rm_steps < 1:
            raise ConfigError(f"LabelLoop needs every, pairs and rm_steps >= 1; got {every}, {pairs}, {rm_steps}.")
        self.every, self.pairs, self.labels, self.rm_steps = int(every), int(pairs), os.fspath(labels), rm_steps
        self.annotator = annotator
        self.kind, self.noise = ("callable", 0.0) if callable(annotator) else parse_annotator(annotator)
        self.folder = ""
        self.state: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: TrainConfig) -> LabelLoop:
        """The loop of ``--label-every/--label-pairs/--labels/--annotator/--label-rm-steps``."""
        return cls(config.label_every, config.label_pairs, str(config.labels), config.annotator,
                   config.label_rm_steps)

    # ---- the callback ---------------------------------------------------------------------------------------
    def start(self, run: Run, trainer: PPOTrainer) -> None:
        """Find (or create) the rounds' state; on resume, make the round current at the checkpoint the reward."""
        if run.config.reward_model is None:
            raise ConfigError("Labelling rounds fine-tune a reward model: pass --reward-model RM_DIR (the model/ "
                              "folder of `lmgym rm train`).")
        self.folder = os.path.join(run.run_dir, FOLDER)
        path = os.path.join(self.folder, "state.json")
        state = {"namespace": secrets.token_hex(8), "rounds": []}
        if os.path.isfile(path):
            with open(path) as f:
                state = json.load(f)
        # Rounds after the checkpoint are redone (their answers stay in the labels file and are not asked again).
        state["rounds"] = [r for r in state["rounds"] if r["iteration"] <= trainer.iteration]
        self.state = state
        run.accelerator.wait_for_everyone()  # every process reads the state before the main one rewrites it
        if run.main:
            os.makedirs(self.folder, exist_ok=True)
            write_atomic(path, json.dumps(state, indent=1))
        if self.current_model(run) != run.config.reward_model:
            use_reward_model(run, self.current_model(run))

    def after_iteration(self, run: Run, trainer: PPOTrainer) -> dict[str, float] | None:
        """Every ``every`` iterations: sample, ask, fine-tune and swap (see the module docstring)."""
        iteration = trainer.iteration
        if iteration % self.every:
            return None
        metrics: dict[str, float] = {}
        if run.main:
            t0 = time.perf_counter()
            metrics = self.round(run, trainer, iteration)
            metrics["time/label_s"] = time.perf_counter() - t0
        run.accelerator.wait_for_everyone()
        if not run.main:  # the main process trained it; the others read where it is
            with open(os.path.join(self.folder, "state.json")) as f:
                self.state = json.load(f)
        use_reward_model(run, self.current_model(run))
        return metrics

    # ---- one round ------------------------------------------------------------------------------------------
    def round(self, run: Run, trainer: PPOTrainer, iteration: int) -> dict[str, float]:
        """Sample, ask and fine-tune (main process); returns the round's metrics."""
        questions, truth = self.sample(run, trainer, iteration)
        already = len(answered_ids(self.labels) & {q.id for q in questions})
        if self.kind == "terminal":
            print(f"\nPPO iteration {iteration}: {len(questions)} questions ({already} answered), answers go to "
                  f"{self.labels} (q stops this round).", flush=True)
            annotator: Annotator = terminal_annotator(sys.stdin, sys.stdout, len(questions), already)
            source = "person"
        elif self.kind == "scorer":
            annotator = scripted_annotator(truth, self.noise, seed=run.config.seed)
            source = f"scorer+noise({self.noise:g})"
        else:
            annotator, source = self.annotator, "callable"  # type: ignore[assignment]
        new = collect(questions, annotator, self.labels, source=source)
        metrics = {"labels/asked": float(len(questions)), "labels/new": float(new)}
        return {**metrics, **self.fine_tune(run, iteration)}

    @torch.no_grad()
    def sample(self, run: Run, trainer: PPOTrainer, iteration: int
               ) -> tuple[list[Question], dict[int, tuple[float, float]]]:
        """Questions of two completions of the current policy per random train prompt, and their true scores."""
        from lmgym.agents.ppo.rollout import SamplingConfig, collect_rollout
        from lmgym.scorers import checked_score
        from lmgym.token_env import batch_meta

        cfg, proto = run.config, run.envs.env
        envs = type(run.envs.unwrapped)(num_envs=2 * self.pairs, autoreset_mode="disabled", env=proto)
        seed = cfg.seed * 1_000_003 + iteration
        examples = proto.task.examples(proto.split)
        chosen = np.random.default_rng(seed).integers(len(examples), size=self.pairs)
        obs = envs.reset(options={"split": proto.split, "example_index": np.repeat(chosen, 2)})[0]
        policy = trainer.policy
        was_training = policy.training
        policy.eval()
        generator = torch.Generator(device=next(policy.parameters()).device).manual_seed(seed)
        with run.accelerator.autocast():
            ro = collect_rollout(policy, envs, SamplingConfig(cfg.temperature, cfg.top_k, cfg.top_p),
                                 generator=generator, obs=obs)
        policy.train(was_training)
        envs.close()
        picked = [examples[i] for i in ro.example_index]
        true = checked_score(run.metric, ro.prompts, ro.completions, ro.references, **batch_meta(picked))
        questions, truth = [], {}
        for j in range(self.pairs):
            a, b = 2 * j, 2 * j + 1
            if ro.completions[a] == ro.completions[b]:
                continue  # nothing to compare
            qid = self.question_id(iteration, j)
            questions.append(Question(qid, ro.prompts[a], ro.completions[a], ro.completions[b]))
            truth[qid] = (float(true[a]), float(true[b]))
        return questions, truth

    def question_id(self, iteration: int, pair: int) -> int:
        """A stable id of a round's pair: the same on resume, different in another run writing the same file."""
        key = f"{self.state['namespace']}:{iteration}:{pair}"
        return int(hashlib.sha1(key.encode()).hexdigest()[:12], 16)

    def fine_tune(self, run: Run, iteration: int) -> dict[str, float]:
        """Train the current reward model on every label so far into this round's folder and record the round."""
        from lmgym.agents.rm.train import RMConfig, held_out, train_reward_model
        from lmgym.datasets import read_records
        from lmgym.prefs import parse_pairs

        cfg = run.config
        later = {self.question_id(it, j) for it in range(iteration + 1, cfg.iterations + 1) if it % self.every == 0
                 for j in range(self.pairs)}  # a resumed run's file may hold answers of rounds it will redo
        rows = [r for r in read_records(self.labels, PreferenceError) if r.get("id") not in later]
        pairs = parse_pairs(rows).pairs
        split = [held_out(p.prompt, EVAL_FRACTION) for p in pairs]
        metrics = {"labels/total": float(len(pairs)), "labels/rm_updated": 0.0}
        if all(split) or not any(split):
            print(f"Labelling round {iteration}: {len(pairs)} usable labels do not yet cover both a held-out and a "
                  "training prompt; the reward model stays as it is.", file=sys.stderr)
            return metrics
        round_dir = os.path.join(self.folder, f"round-{iteration:06d}")
        os.makedirs(round_dir, exist_ok=True)
        data = os.path.join(round_dir, "labels.jsonl")
        write_jsonl(data, rows)
        settings = {k: v for k, v in rm_run_settings(self.current_model(run)).items() if k in RM_SETTINGS}
        steps = self.rm_steps
        results = train_reward_model(RMConfig(
            data=data, env=cfg.env, env_kwargs=dict(cfg.env_kwargs), model=self.current_model(run),
            output=os.path.join(round_dir, "rm"), steps=steps, eval_every=steps, checkpoint_every=0,
            keep_checkpoints=1, eval_fraction=EVAL_FRACTION, seed=cfg.seed + iteration, overwrite=True,
            threads=torch.get_num_threads(), **settings))
        shutil.rmtree(os.path.join(results["run_dir"], "checkpoints"), ignore_errors=True)  # rounds never resume
        self.state["rounds"].append({"iteration": iteration, "model_dir": results["model_dir"], "labels": len(pairs),
                                     "accuracy": results["accuracy"]})
        write_atomic(os.path.join(self.folder, "state.json"), json.dumps(self.state, indent=1))
        return {**metrics, "labels/rm_updated": 1.0, "labels/rm_accuracy": float(results["accuracy"])}

    def current_model(self, run: Run) -> str:
        """The reward model folder in use: the newest round's, else the run's ``--reward-model``."""
        rounds = self.state.get("rounds") or []
        return rounds[-1]["model_dir"] if rounds else str(run.config.reward_model)


def rm_run_settings(model_dir: str) -> dict[str, Any]:
    """The ``lmgym rm train`` settings a model folder was trained with (``../config.json``), or ``{}``."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_dir)), "config.json")
    try:
        with open(path) as f:
            settings = json.load(f)
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) and "data" in settings else {}


def use_reward_model(run: Run, model_dir: str) -> None:
    """Make the reward model in ``model_dir`` the reward of the run's training and evaluation envs."""
    from lmgym.scorers import make_scorer

    scorer = make_scorer("reward_model", model=model_dir, device=str(run.accelerator.device))
    for envs in (run.envs, run.eval_envs):
        vector = envs.unwrapped
        vector.scorer = scorer  # the vector env scores finished episodes with its own reference...
        vector.env.scorer = scorer  # ...and its prototype single env with this one


def label_callbacks(config: TrainConfig) -> list[LabelLoop]:
    """The callbacks ``--label-every`` asks for (none when it is 0)."""
    return [LabelLoop.from_config(config)] if config.label_every else []


__all__ = ["EVAL_FRACTION", "LabelLoop", "label_callbacks", "rm_run_settings", "use_reward_model"]
