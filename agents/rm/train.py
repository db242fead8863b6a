"""Reward-model training: a transformer with a scalar head, fit to preference pairs with the Bradley-Terry loss.

``P(chosen > rejected) = sigmoid(r(prompt, chosen) - r(prompt, rejected) - margin)``; the loss is its negative
log-likelihood (``margin`` from the data with ``use_margin``, else 0). The model is a transformers
``AutoModelForSequenceClassification`` with ``num_labels=1``: a small GPT-2 (``default``) or T5
(``default-seq2seq``, ``T5ForSequenceClassification``) built for an env's tokenizer, or any causal or seq2seq
folder / hub id (a seq2seq LM's encoder-decoder is kept and gets a new scalar head). Its inputs are encoded by the
``reward_model`` scorer itself (:meth:`lmgym.scorers.models.RewardModel.encode_pairs`, which ends each input of
an encoder-decoder with the one EOS whose decoder state the head reads), so what it learns is exactly what the
scorer reads.

The run folder (``output``) holds ``config.json``, ``metrics.jsonl`` (train and held-out loss/accuracy),
``checkpoints/`` (resume continues exactly), ``model/`` (the result: ``scorer={"reward_model": 1.0}`` with
``model=<output>/model`` loads it, normalised by the mean/std of its outputs on reference completions),
``results.json`` and ``results.md`` (held-out accuracy and a calibration table) and ``loss_curve.png``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from lmgym.agents.ppo.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from lmgym.atomic import atomic_path, write_atomic
from lmgym.errors import ConfigError
from lmgym.prefs import PreferencePair, load_pairs
from lmgym.validation import check_float, check_int

WARMUP_STEPS = 20
DEFAULT_MODELS = ("default", "default-causal", "default-seq2seq")
"""Models built from a config for an env's tokenizer: GPT-2 (``default``, ``default-causal``) or T5."""


@dataclass
class RMConfig:
    """Everything a reward-model run needs (each field is an ``lmgym rm train`` flag)."""

    data: str = ""
    """Preference pairs (``{prompt, chosen, rejected[, margin]}`` .jsonl/.csv/.parquet; see ``lmgym prefs make``)."""
    env: str | None = None
    """An env whose tokenizer a default model uses, and whose train references normalise the rewards."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``env``, e.g. ``--env-kwargs length=3 vocab_size=5`` (values parsed as JSON)."""
    model: str = "default"
    """``default`` (a small GPT-2 for the env's tokenizer), ``default-seq2seq`` (a small T5 classifier for it), or
    a local folder / hub id of a causal LM, a seq2seq LM (T5, BART...) or a classifier."""
    n_layer: int = 2
    """Layers of a default model."""
    n_embd: int = 128
    """Width of a default model."""
    n_head: int = 4
    """Attention heads of a default model."""
    output: str = "runs/rm"
    """The run folder."""
    steps: int = 600
    """Optimizer steps."""
    batch_size: int = 32
    """Pairs per step."""
    learning_rate: float = 5e-4
    """AdamW learning rate (linear warm-up over the first 20 steps, then constant, so --resume may add steps)."""
    use_margin: bool = False
    """Subtract each pair's ``margin`` inside the sigmoid (pairs without one use 0)."""
    eval_fraction: float = 0.1
    """Share of prompts held out for accuracy (split by a hash of the prompt, so no prompt is in both)."""
    eval_every: int = 100
    """Held-out evaluation every N steps and at the end."""
    checkpoint_every: int = 200
    """Checkpoint every N steps and at the end (0: only at the end)."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept."""
    max_length: int = 256
    """Inputs (prompt + completion) are cut to this many tokens."""
    seed: int = 0
    """Seeds the model's initialisation and the batches."""
    resume: bool = False
    """Continue the run in ``output`` from its newest checkpoint."""
    overwrite: bool = False
    """Replace an existing ``output`` folder."""
    threads: int = 0
    """torch CPU threads (0: all cores)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        if not self.data:
            raise ConfigError("--data is required: preference pairs, e.g. from `lmgym prefs make ENV`.")
        for name, low in (("steps", 1), ("batch_size", 1), ("eval_every", 1), ("checkpoint_every", 0),
                          ("keep_checkpoints", 1), ("max_length", 2), ("seed", 0), ("threads", 0), ("n_layer", 1),
                          ("n_embd", 1), ("n_head", 1)):
            check_int(name, getattr(self, name), minimum=low)
        check_float("learning_rate", self.learning_rate, minimum=0, exclusive_minimum=True)
        check_float("eval_fraction", self.eval_fraction, minimum=0, maximum=0.9, exclusive_minimum=True)
        if not isinstance(self.env_kwargs, dict):
            raise ConfigError(f"--env-kwargs must be KEY=VALUE items; got {self.env_kwargs!r}.")
        if self.model in DEFAULT_MODELS and not self.env:
            raise ConfigError("A default reward model is built for an env's tokenizer: pass --env ENV (or --model "
                              "a folder that has its tokenizer).")


def held_out(prompt: str, fraction: float) -> bool:
    """Whether ``prompt`` is in the held-out share (a stable hash, the same on every machine)."""
    return int(hashlib.sha1(prompt.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def build_model(config: RMConfig, tokenizer: Any) -> Any:
    """The scalar-head model (``num_labels=1``): a default model for ``tokenizer``, or a folder / hub id.

    A seq2seq LM folder (e.g. ``T5ForConditionalGeneration``) loads as its sequence classifier
    (``T5ForSequenceClassification``): the encoder-decoder weights are kept, the head is new.

    Raises:
        ConfigError: a folder / hub id that does not load as a classifier, or an encoder-decoder without an EOS
            token distinct from padding (its head reads the decoder state at the EOS).
    """
    from transformers import AutoModelForSequenceClassification

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.model in DEFAULT_MODELS:
            model = default_classifier(config, tokenizer)
        else:
            from lmgym.hub import load_pretrained

            try:
                model = load_pretrained(AutoModelForSequenceClassification.from_pretrained, config.model,
                                        num_labels=1)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"Could not load {config.model!r} as a reward model: {exc}") from exc
    if model.config.pad_token_id is None:
        model.config.pad_token_id = int(tokenizer.pad_token_id)
    if model.config.is_encoder_decoder:
        if model.config.eos_token_id is None:
            model.config.eos_token_id = tokenizer.eos_token_id
        if model.config.eos_token_id is None or model.config.eos_token_id == model.config.pad_token_id:
            raise ConfigError(f"The seq2seq reward model {config.model!r} needs an EOS token distinct from padding "
                              f"(eos {model.config.eos_token_id}, pad {model.config.pad_token_id}): its head reads "
                              "the decoder state at the EOS. Set eos_token_id in its config.json.")
    return model


def default_classifier(config: RMConfig, tokenizer: Any) -> Any:
    """A randomly initialised GPT-2 or T5 (``config.model``) sequence classifier for ``tokenizer``, dropout off."""
    pad, eos = int(tokenizer.pad_token_id), tokenizer.eos_token_id
    if config.model == "default-seq2seq":
        from transformers import T5Config, T5ForSequenceClassification

        # The same shape as the default seq2seq policy; the decoder starts from PAD, as T5's does.
        t5 = T5Config(vocab_size=len(tokenizer), d_model=config.n_embd, d_ff=4 * config.n_embd,
                      d_kv=config.n_embd // config.n_head, num_layers=config.n_layer,
                      num_decoder_layers=config.n_layer, num_heads=config.n_head, num_labels=1, dropout_rate=0.0,
                      classifier_dropout=0.0, pad_token_id=pad, eos_token_id=eos, decoder_start_token_id=pad)
        return T5ForSequenceClassification(t5)
    from transformers import GPT2Config, GPT2ForSequenceClassification

    gpt = GPT2Config(vocab_size=len(tokenizer), n_positions=config.max_length, n_embd=config.n_embd,
                     n_layer=config.n_layer, n_head=config.n_head, num_labels=1, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, pad_token_id=pad, bos_token_id=tokenizer.bos_token_id, eos_token_id=eos)
    return GPT2ForSequenceClassification(gpt)


def pad_batch(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``(ids, mask)`` of token lists."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


class PairData:
    """Encoded pairs: ``chosen`` and ``rejected`` token lists and margins, row-aligned."""

    def __init__(self, pairs: list[PreferencePair], scorer: Any, use_margin: bool) -> None:
        self.chosen = scorer.encode_pairs([p.prompt for p in pairs], [p.chosen for p in pairs])
        self.rejected = scorer.encode_pairs([p.prompt for p in pairs], [p.rejected for p in pairs])
        self.margin = torch.tensor([(p.margin or 0.0) if use_margin else 0.0 for p in pairs])

    def __len__(self) -> int:
        return len(self.chosen)

    def rewards(self, model: Any, rows: list[int], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r_chosen, r_rejected)`` of ``rows`` in one forward pass."""
        ids, mask = pad_batch([self.chosen[i] for i in rows] + [self.rejected[i] for i in rows], pad)
        out = model(input_ids=ids, attention_mask=mask).logits.float()[:, 0]
        return out[: len(rows)], out[len(rows):]


def bt_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry negative log-likelihood ``-log sigmoid(r_c - r_r - margin)``, mean over pairs."""
    return -F.logsigmoid(chosen - rejected - margin).mean()


@torch.no_grad()
def evaluate_pairs(model: Any, data: PairData, pad: int, batch: int = 64) -> dict[str, Any]:
    """Held-out loss, accuracy and the reward gaps ``r_c - r_r`` of every pair."""
    model.eval()
    gaps = []
    for start in range(0, len(data), batch):
        rows = list(range(start, min(start + batch, len(data))))
        chosen, rejected = data.rewards(model, rows, pad)
        gaps.append(chosen - rejected)
    gap = torch.cat(gaps)
    return {"loss": float(-F.logsigmoid(gap - data.margin).mean()), "accuracy": float((gap > 0).float().mean()),
            "gaps": gap}


def calibration(gaps: torch.Tensor, edges: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)) -> list[dict]:
    """Rows ``{bin, n, confidence, accuracy}``: the model's confidence in its pick vs how often the pick is right."""
    p = torch.sigmoid(gaps)
    confidence = torch.maximum(p, 1 - p)
    correct = (gaps > 0).float()
    rows = []
    for low, high in itertools.pairwise(edges):
        inside = (confidence >= low) & ((confidence < high) if high < 1.0 else (confidence <= high))
        n = int(inside.sum())
        rows.append({"bin": f"{low:.1f}-{high:.1f}", "n": n,
                     "confidence": float(confidence[inside].mean()) if n else float("nan"),
                     "accuracy": float(correct[inside].mean()) if n else float("nan")})
    return rows


def train_reward_model(config: RMConfig) -> dict[str, Any]:
    """Train, evaluate and save a reward model; returns the results (also in ``output/results.json``)."""
    from lmgym.scorers.models import REWARD_MODEL_STATS, RewardModel

    config.validate()
    start_time, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    try:
        pairs = load_pairs(config.data).pairs
        tokenizer, env = tokenizer_and_env(config)
        model = build_model(config, tokenizer)
        scorer = RewardModel(model, tokenizer=tokenizer, device="cpu", max_length=config.max_length, normalize=False)
        train_pairs = [p for p in pairs if not held_out(p.prompt, config.eval_fraction)]
        test_pairs = [p for p in pairs if held_out(p.prompt, config.eval_fraction)]
        if not train_pairs or not test_pairs:
            raise ConfigError(f"{len(pairs)} pairs give {len(train_pairs)} to train on and {len(test_pairs)} to "
                              "hold out; give more pairs (more distinct prompts) or change --eval-fraction.")
        train_data = PairData(train_pairs, scorer, config.use_margin)
        test_data = PairData(test_pairs, scorer, config.use_margin)
        run_dir = prepare_folder(config)
        return fit(config, model, tokenizer, scorer, train_data, test_data, run_dir, env, start_time,
                   REWARD_MODEL_STATS)
    finally:
        torch.set_num_threads(threads)


def tokenizer_and_env(config: RMConfig) -> tuple[Any, Any]:
    """The tokenizer (the env's for a default model, else the model folder's) and the env (or ``None``)."""
    env = None
    if config.env:
        import lmgym  # noqa: F401  (registers the envs)
        from lmgym.validation import make_checked_env

        env = make_checked_env(config.env, **config.env_kwargs).unwrapped
    if config.model in DEFAULT_MODELS:
        return env.tokenizer, env
    from lmgym.tokenizer import load_tokenizer

    return load_tokenizer(config.model), env


def prepare_folder(config: RMConfig) -> str:
    """Create (or, on resume, find) the run folder; never writes into someone else's folder."""
    import shutil

    run_dir = os.path.abspath(config.output)
    if config.resume:
        if not os.path.isfile(os.path.join(run_dir, "config.json")):
            raise ConfigError(f"Nothing to resume in {run_dir}: it has no config.json.")
        return run_dir
    if os.path.exists(run_dir) and os.listdir(run_dir):
        if not config.overwrite:
            raise ConfigError(f"{run_dir} exists; continue it with --resume, or pass --overwrite or another --output.")
        shutil.rmtree(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    write_atomic(os.path.join(run_dir, "config.json"), json.dumps(asdict(config), indent=1))
    return run_dir


def fit(config: RMConfig, model: Any, tokenizer: Any, scorer: Any, train_data: PairData, test_data: PairData,
        run_dir: str, env: Any, start_time: float, stats_file: str) -> dict[str, Any]:
    """The optimisation loop, evaluations, checkpoints and outputs of :func:`train_reward_model`."""
    pad = int(tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    step, metrics_path = 0, os.path.join(run_dir, "metrics.jsonl")
    checkpoint = latest_checkpoint(run_dir) if config.resume else None
    if checkpoint is not None:
        step = int(load_checkpoint(checkpoint, policy=model, optimizer=optimizer)["iteration"])
    history = []
    if os.path.isfile(metrics_path):
        with open(metrics_path) as f:
            history = [h for h in map(json.loads, f) if h["step"] <= step]
    while step < config.steps:
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * min(1.0, (step + 1) / WARMUP_STEPS)
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        rows = torch.randint(len(train_data), (min(config.batch_size, len(train_data)),), generator=generator).tolist()
        chosen, rejected = train_data.rewards(model, rows, pad)
        loss = bt_loss(chosen, rejected, train_data.margin[rows])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        record = {"step": step, "train/loss": loss.item(), "train/accuracy": (chosen > rejected).float().mean().item()}
        if step % config.eval_every == 0 or step == config.steps:
            result = evaluate_pairs(model, test_data, pad)
            record.update({"eval/loss": result["loss"], "eval/accuracy": result["accuracy"]})
        history.append(record)
        if (config.checkpoint_every and step % config.checkpoint_every == 0) or step == config.steps:
            write_atomic(metrics_path, "".join(json.dumps(h) + "\n" for h in history))
            save_checkpoint(run_dir, iteration=step, policy=model, optimizer=optimizer, config=asdict(config),
                            keep=config.keep_checkpoints)
    final = evaluate_pairs(model, test_data, pad)
    stats = normalisation_stats(model, scorer, train_data, env, pad)
    with atomic_path(os.path.join(run_dir, "model")) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_atomic(os.path.join(tmp, stats_file), json.dumps(stats))
    results = {"accuracy": final["accuracy"], "loss": final["loss"], "train_pairs": len(train_data),
               "held_out_pairs": len(test_data), "steps": step, "calibration": calibration(final["gaps"]),
               "normalisation": stats, "model_dir": os.path.join(run_dir, "model"),
               "wall_time_s": time.perf_counter() - start_time}
    write_atomic(os.path.join(run_dir, "results.json"), json.dumps(results, indent=1))
    write_atomic(os.path.join(run_dir, "results.md"), results_markdown(config, results))
    plot_losses(history, os.path.join(run_dir, "loss_curve.png"))
    return {**results, "history": history, "run_dir": run_dir}


@torch.no_grad()
def normalisation_stats(model: Any, scorer: Any, train_data: PairData, env: Any, pad: int) -> dict[str, Any]:
    """Mean and std of the model's outputs on reference completions: the env's train references when there
    is an env (up to 1000), else every completion of the training pairs."""
    model.eval()
    if env is not None:
        examples = list(env.task.examples("train"))[:1000]
        rows = scorer.encode_pairs([ex.prompt for ex in examples], [ex.references[0] for ex in examples])
        source = f"{len(rows)} train references of {env.spec.id if env.spec else env.task.name}"
    else:
        rows = train_data.chosen + train_data.rejected
        source = f"the {len(rows)} completions of the training pairs"
    values = []
    for i in range(0, len(rows), 64):
        ids, mask = pad_batch(rows[i:i + 64], pad)
        values.append(model(input_ids=ids, attention_mask=mask).logits.float()[:, 0])
    values = torch.cat(values)
    std = float(values.std()) if len(values) > 1 else 1.0
    return {"mean": float(values.mean()), "std": std if std > 1e-6 else 1.0, "source": source}


def results_markdown(config: RMConfig, results: dict[str, Any]) -> str:
    """The run's summary: held-out accuracy, loss and the calibration table."""
    lines = [f"## Reward model `{config.output}` ({config.model}, {results['steps']} steps)", "",
             f"Held-out pairs: {results['held_out_pairs']} (train: {results['train_pairs']}). "
             f"Accuracy **{results['accuracy']:.4f}**, Bradley-Terry loss {results['loss']:.4f}. Rewards are "
             f"normalised by mean {results['normalisation']['mean']:.4f} and std "
             f"{results['normalisation']['std']:.4f} over {results['normalisation']['source']}.", "",
             "| confidence bin | pairs | mean confidence | accuracy |", "|---|---:|---:|---:|"]
    for row in results["calibration"]:
        lines.append(f"| {row['bin']} | {row['n']} | {row['confidence']:.3f} | {row['accuracy']:.3f} |")
    return "\n".join(lines) + "\n"


def plot_losses(history: list[dict], path: str) -> bool:
    """Train and held-out loss per step to a PNG (``False`` without matplotlib)."""
    from lmgym.agents.train.metrics import new_figure, save_png

    fig = new_figure((6, 3.5))
    if fig is None:
        return False
    ax = fig.subplots()
    ax.plot([h["step"] for h in history], [h["train/loss"] for h in history], alpha=0.5, label="train")
    evals = [h for h in history if "eval/loss" in h]
    ax.plot([h["step"] for h in evals], [h["eval/loss"] for h in evals], "o-", label="held out")
    ax.set_xlabel("step")
    ax.set_ylabel("Bradley-Terry loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_png(fig, path)


__all__ = ["DEFAULT_MODELS", "RMConfig", "bt_loss", "calibration", "held_out", "train_reward_model"]
