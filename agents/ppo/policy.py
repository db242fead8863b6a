"""The PPO policy: any HF causal or seq2seq LM plus a scalar value head on its last hidden state.

One module, two ways to run it, both giving next-token ``logits`` and a ``value`` for the state
*before* each response token:

- **teacher-forced** (:meth:`PolicyWithValue.forward`): the whole ``prompt + response`` in one pass,
  used by the PPO/SFT update (one forward/backward per sequence per epoch);
- **incremental** (:meth:`PolicyWithValue.start` then :meth:`PolicyWithValue.step`): the prompt
  once, then one new token per call with a KV cache, used by rollouts.

Batches follow the env's observation layout: ``prompt_ids (B, P)`` left-padded with
``prompt_mask``, ``response_ids (B, R)`` right-padded with ``response_mask``. Causal models see
``prompt + response`` with position ids counted over real tokens only, so a left-padded prompt
gets the same positions as an unpadded one and the cached and teacher-forced passes agree.
Seq2seq models encode the prompt and decode the response after ``decoder_start_token_id``.

Saving uses ``save_pretrained``: the folder loads back in plain transformers
(``AutoModelForCausalLM.from_pretrained(path)``); the value head sits beside it in
``value_head.safetensors``.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithCrossAttentions
from transformers.utils import ModelOutput

from lmgym.errors import CheckpointError, ConfigError, MissingDependencyError
from lmgym.hub import is_local_path, load_pretrained
from lmgym.model_presets import MODEL_PRESETS, resolve_model

VALUE_HEAD_FILE = "value_head.safetensors"
POLICY_META_FILE = "lmgym_policy.json"
DEFAULT_MODELS = ("default", "default-causal", "default-seq2seq")


def position_ids_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only real tokens: ``[0,0,1,1,...]`` -> ``[0,0,0,1,...]``. ``(B, L)``."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def unwrap_lm(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def has_adapter(model: nn.Module) -> bool:
    """Whether ``model`` is a peft model with (LoRA) adapters."""
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def lm_forward(
    model: nn.Module,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    response_ids: torch.Tensor,
    response_mask: torch.Tensor,
    want_hidden: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Teacher-forced pass of an HF LM over ``prompt + response``.

    Returns:
        ``(logits (B, R, V), hidden (B, R, H) or None)`` where position ``t`` is the state that
        predicts ``response_ids[:, t]``.
    """
    R = response_ids.shape[1]
    if unwrap_lm(model).config.is_encoder_decoder:
        start = unwrap_lm(model).config.decoder_start_token_id
        first = torch.full_like(response_ids[:, :1], start)
        dec_ids = torch.cat([first, response_ids[:, :-1]], 1)  # (B, R)
        dec_mask = torch.cat([torch.ones_like(response_mask[:, :1]), response_mask[:, :-1]], 1)
        out = model(
            input_ids=prompt_ids,
            attention_mask=prompt_mask,
            decoder_input_ids=dec_ids,
            decoder_attention_mask=dec_mask,
            output_hidden_states=want_hidden,
            use_cache=False,
        )
        return out.logits, (out.decoder_hidden_states[-1] if want_hidden else None)
    ids = torch.cat([prompt_ids, response_ids], 1)  # (B, P+R)
    mask = torch.cat([prompt_mask, response_mask], 1)
    # The state before response token t is at sequence position P-1+t: keep the last R+1, drop one.
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=position_ids_from_mask(mask),
        output_hidden_states=want_hidden,
        use_cache=False,
        logits_to_keep=R + 1,
    )
    logits = out.logits[:, :-1]  # (B, R, V)
    hidden = out.hidden_states[-1][:, -R - 1 : -1] if want_hidden else None  # (B, R, H)
    return logits, hidden


@dataclass
class PolicyOutput(ModelOutput):
    """Teacher-forced outputs: ``logits (B, R, V)`` and ``values (B, R)``.

    A transformers ``ModelOutput`` (a mapping), so accelerate/DDP output handling applies to it.
    """

    logits: torch.Tensor | None = None
    values: torch.Tensor | None = None


#: The keyword (and output field) of a model's KV cache: ``cache`` in current transformers, where
#: ``past_key_values`` is deprecated; ``past_key_values`` in the releases before the rename.
CACHE_FIELD = "cache" if "cache" in CausalLMOutputWithCrossAttentions.__dataclass_fields__ else "past_key_values"


@dataclass
class DecodeState:
    """What an incremental decode carries between steps (one per batch of slots).

    Attributes:
        cache: the model's KV cache (``DynamicCache`` / ``EncoderDecoderCache``).
        attention_mask: causal: mask over prompt + tokens so far ``(B, L)``; seq2seq: the encoder mask.
        position: causal: position id of the last token fed ``(B,)``; unused for seq2seq.
        encoder_outputs: seq2seq only: the encoded prompt, computed once.
    """

    cache: Any
    attention_mask: torch.Tensor
    position: torch.Tensor
    encoder_outputs: Any = None


class PolicyWithValue(nn.Module):
    """An HF language model with a scalar value head sharing its trunk.

    Args:
        model: a transformers ``PreTrainedModel`` with an LM head (causal or seq2seq), possibly
            wrapped by peft.
        value_head: an existing ``nn.Linear(hidden, 1)``; by default a new one, initialised
            near zero so early value estimates do not swamp the advantages.
        num_actions: the env's vocabulary size ``V``. A model whose embedding table is larger
            (padded vocabularies) has its logits cut to the first ``V`` ids, so it never picks
            a token the env does not have. ``None``: all logits.
    """

    def __init__(self, model: nn.Module, value_head: nn.Linear | None = None, num_actions: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.num_actions = num_actions
        hidden = self.lm_config.hidden_size
        if value_head is None:
            value_head = nn.Linear(hidden, 1)
            nn.init.normal_(value_head.weight, std=1.0 / (hidden + 1))
            nn.init.zeros_(value_head.bias)
        self.value_head = value_head

    @property
    def lm_config(self) -> Any:
        """The underlying transformers config."""
        return unwrap_lm(self.model).config

    @property
    def is_seq2seq(self) -> bool:
        """Whether the LM is an encoder-decoder (prompt encoded, response decoded)."""
        return bool(self.lm_config.is_encoder_decoder)

    def values_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Value estimates ``(..., H) -> (...)``."""
        return self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)

    # ---- teacher-forced ---------------------------------------------------------------------------
    def forward(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        response_ids: torch.Tensor,
        response_mask: torch.Tensor,
    ) -> PolicyOutput:
        """Logits and values for every response position in one pass (see :func:`lm_forward`)."""
        logits, hidden = lm_forward(self.model, prompt_ids, prompt_mask, response_ids, response_mask)
        return PolicyOutput(logits=self.cut_logits(logits), values=self.values_from_hidden(hidden))

    def cut_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits of the env's actions only: ``(..., V_model) -> (..., num_actions)``."""
        return logits if self.num_actions is None else logits[..., : self.num_actions]

    # ---- incremental (KV-cached) ------------------------------------------------------------------
    @torch.no_grad()
    def start(
        self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor
    ) -> tuple[DecodeState, torch.Tensor, torch.Tensor]:
        """Read the prompts; return the decode state and the first token's ``logits (B, V)``, ``values (B,)``."""
        if self.is_seq2seq:
            encoder_outputs = self.model.get_encoder()(input_ids=prompt_ids, attention_mask=prompt_mask)
            start = torch.full_like(prompt_ids[:, :1], self.lm_config.decoder_start_token_id)
            state = DecodeState(
                cache=None,
                attention_mask=prompt_mask,
                position=prompt_ids.new_zeros(len(prompt_ids)),
                encoder_outputs=encoder_outputs,
            )
            return (state, *self._decode(state, start))
        position = position_ids_from_mask(prompt_mask)  # (B, P)
        out = self.model(
            input_ids=prompt_ids,
            attention_mask=prompt_mask,
            position_ids=position,
            use_cache=True,
            output_hidden_states=True,
            logits_to_keep=1,
        )
        state = DecodeState(cache=getattr(out, CACHE_FIELD), attention_mask=prompt_mask, position=position[:, -1])
        return (state, *self.decode_outputs(out.logits[:, -1], out.hidden_states[-1][:, -1]))

    @torch.no_grad()
    def step(self, state: DecodeState, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feed one token per row ``(B,)``; return the next ``logits (B, V)`` and ``values (B,)``."""
        return self._decode(state, tokens.view(-1, 1))

    @torch.no_grad()
    def feed(self, state: DecodeState, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feed several tokens per row at once ``(B, k)``, real where ``mask`` is 1 (a prefix of each row);
        return ``logits (B, V)`` and ``values (B,)`` after each row's last real token.

        What a rollout needs when the env writes tokens too (tool results, :mod:`lmgym.tool_env`): the
        agent's token and the env's reply enter the KV cache in one forward. Padding is masked out of
        attention and positions, so the result equals feeding the real tokens one by one. Causal LMs only.

        Raises:
            ConfigError: for a seq2seq policy (its decoder positions cannot skip padding).
        """
        if tokens.shape[1] == 1 and bool(mask.all()):
            return self.step(state, tokens[:, 0])
        if self.is_seq2seq:
            raise ConfigError("Envs that write tokens into the response (tool results) need a causal policy; "
                              "use a causal model (e.g. --model default-causal).")
        mask = mask.long()
        position = state.position[:, None] + mask.cumsum(1)  # (B, k): padding repeats the last position
        state.attention_mask = torch.cat([state.attention_mask, mask], 1)
        state.position = position[:, -1]
        out = self.model(
            input_ids=tokens,
            attention_mask=state.attention_mask,
            position_ids=position,
            use_cache=True,
            output_hidden_states=True,
            **{CACHE_FIELD: state.cache},
        )
        state.cache = getattr(out, CACHE_FIELD)
        rows = torch.arange(len(tokens), device=tokens.device)
        last = (mask.sum(1) - 1).clamp(min=0)
        return self.decode_outputs(out.logits[rows, last], out.hidden_states[-1][rows, last])

    def _decode(self, state: DecodeState, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.is_seq2seq:
            out = self.model(
                encoder_outputs=state.encoder_outputs,
                attention_mask=state.attention_mask,
                decoder_input_ids=tokens,
                use_cache=True,
                output_hidden_states=True,
                **{CACHE_FIELD: state.cache},
            )
            state.cache = getattr(out, CACHE_FIELD)
            return self.decode_outputs(out.logits[:, -1], out.decoder_hidden_states[-1][:, -1])
        state.attention_mask = torch.cat([state.attention_mask, torch.ones_like(tokens)], 1)  # (B, L+1)
        state.position = state.position + 1
        out = self.model(
            input_ids=tokens,
            attention_mask=state.attention_mask,
            position_ids=state.position[:, None],
            use_cache=True,
            output_hidden_states=True,
            **{CACHE_FIELD: state.cache},
        )
        state.cache = getattr(out, CACHE_FIELD)
        return self.decode_outputs(out.logits[:, -1], out.hidden_states[-1][:, -1])

    def decode_outputs(self, logits: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What decoding picks tokens from: ``(logits (B, V), values (B,))`` of the last position.

        The hook of policies that steer decoding (ILQL adds ``beta * advantage`` to the log-probs).
        """
        return self.cut_logits(logits), self.values_from_hidden(hidden)

    # ---- LoRA -------------------------------------------------------------------------------------
    def add_lora(
        self, r: int = 8, alpha: int = 16, dropout: float = 0.0, target_modules: list[str] | None = None
    ) -> None:
        """Wrap the LM with peft LoRA adapters: only adapters and the value head then train, and the
        reference model is the same weights with the adapters disabled (no second copy)."""
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as exc:
            raise MissingDependencyError("peft", "agents", "LoRA fine-tuning") from exc
        task_type = "SEQ_2_SEQ_LM" if self.is_seq2seq else "CAUSAL_LM"
        config = LoraConfig(
            r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type=task_type
        )
        try:
            self.model = get_peft_model(self.model, config)
        except ValueError as exc:
            name = type(self.model).__name__
            raise ConfigError(f"LoRA could not wrap {name}: {exc} Pass lora_target_modules.") from exc

    # ---- save / load ------------------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike, tokenizer: Any = None) -> None:
        """Save the LM with ``save_pretrained`` (LoRA merged in), the value head, and the tokenizer."""
        from safetensors.torch import save_file

        os.makedirs(path, exist_ok=True)
        model = self.model
        if has_adapter(model):
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(path)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.value_head.state_dict().items()},
            os.path.join(path, VALUE_HEAD_FILE),
        )
        with open(os.path.join(path, POLICY_META_FILE), "w") as f:
            json.dump({"value_head": VALUE_HEAD_FILE, "seq2seq": self.is_seq2seq}, f)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> PolicyWithValue:
        """Load a policy saved by :meth:`save_pretrained` (or any HF LM folder/id; then the value head is new).

        A folder saved by another policy kind (its ``lmgym_policy.json`` names it, e.g. ``"ilql"``) loads as
        that class when called on this base class. A model preset (``"smollm2-135m"``) or a ``.gguf`` file
        loads from its converted folder (:func:`~lmgym.model_presets.resolve_model`).
        """
        path = resolve_model(os.fspath(path))
        kind = saved_policy_kind(path)
        if cls is PolicyWithValue and kind in POLICY_KINDS:
            module, _, name = POLICY_KINDS[kind].partition(":")
            import importlib

            return getattr(importlib.import_module(module), name).from_pretrained(path, **kwargs)
        return PolicyWithValue(*load_policy_parts(path, **kwargs))


def load_policy_parts(path: str | os.PathLike, **kwargs: Any) -> tuple[nn.Module, nn.Linear]:
    """``(LM, value head)`` of a saved policy folder (a new value head when the folder has none)."""
    model = load_lm(os.fspath(path), **kwargs)
    value_head = PolicyWithValue(model).value_head
    head = os.path.join(os.fspath(path), VALUE_HEAD_FILE)
    if os.path.isfile(head):
        from safetensors.torch import load_file

        try:
            value_head.load_state_dict(load_file(head))
        except Exception as exc:
            raise CheckpointError(f"Value head {head!r} is corrupt or does not fit the model: {exc}") from exc
    return model, value_head


POLICY_KINDS = {"ilql": "lmgym.agents.offline.ilql:ILQLPolicy"}
"""Saved policy kinds other than PPO's (``lmgym_policy.json``'s ``kind``) -> ``module:class`` that loads them."""


def saved_policy_kind(path: str | os.PathLike) -> str | None:
    """The ``kind`` recorded in a saved policy folder's ``lmgym_policy.json`` (``None``: PPO's or not lmgym's)."""
    meta = os.path.join(os.fspath(path), POLICY_META_FILE)
    if not os.path.isfile(meta):
        return None
    try:
        with open(meta) as f:
            return json.load(f).get("kind")
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{meta!r} is damaged ({exc}); save the policy again.") from exc


# ---- building models --------------------------------------------------------------------------------


def load_lm(spec: str, **kwargs: Any) -> nn.Module:
    """Load an HF LM from a local folder or hub id, causal or seq2seq as its config says.

    A hub id (``"someorg/model"``) loads from the Hugging Face cache without the network when it
    is there, else from the hub (see :mod:`lmgym.hub`). A model preset (``"smollm2-135m"``) or a
    ``.gguf`` file loads from its converted folder (see :mod:`lmgym.model_presets`).

    Raises:
        ConfigError: a missing folder, or a model that cannot be loaded (naming the fix).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    spec = resolve_model(spec)
    if is_local_path(spec) and not os.path.isdir(spec):
        raise ConfigError(f"Model folder {spec!r} does not exist. Pass an existing folder, a hub id, or 'default'.")
    try:
        config = load_pretrained(AutoConfig.from_pretrained, spec)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        return load_pretrained(auto.from_pretrained, spec, **kwargs)
    except (OSError, ValueError) as exc:  # missing files, not in the cache, offline, unknown architecture
        reason = str(exc).rstrip(".")
        where = "the folder" if is_local_path(spec) else "the Hugging Face cache ($HF_HUB_CACHE) or the hub"
        raise ConfigError(
            f"Could not load model {spec!r} from {where}: {type(exc).__name__}: {reason}. Offline, pass a local "
            f"folder saved with save_pretrained, a hub id already in the HF cache, a model preset "
            f"({', '.join(MODEL_PRESETS)}), or one of {DEFAULT_MODELS} to build a small model from a config."
        ) from exc


def default_lm(
    kind: str,
    vocab_size: int,
    max_positions: int,
    pad_id: int,
    bos_id: int | None,
    eos_id: int,
    n_layer: int = 2,
    n_embd: int = 128,
    n_head: int = 4,
) -> nn.Module:
    """A small randomly initialised GPT-2 (``kind="default"``) or T5 (``"default-seq2seq"``) for a tokenizer.

    Dropout is off: PPO's importance ratios must be exactly 1 before the first update.
    """
    if kind == "default-seq2seq":
        from transformers import T5Config, T5ForConditionalGeneration

        config = T5Config(
            vocab_size=vocab_size,
            d_model=n_embd,
            d_ff=4 * n_embd,
            d_kv=n_embd // n_head,
            num_layers=n_layer,
            num_decoder_layers=n_layer,
            num_heads=n_head,
            dropout_rate=0.0,
            pad_token_id=pad_id,
            eos_token_id=eos_id,
            decoder_start_token_id=pad_id,
            tie_word_embeddings=True,
        )
        return T5ForConditionalGeneration(config)
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=max_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        activation_function="gelu_pytorch_tanh",  # GPT-2's tanh GELU as one fused kernel (gelu_new is several)
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=bos_id if bos_id is not None else eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    return GPT2LMHeadModel(config)


def disable_dropout(model: nn.Module) -> None:
    """Set every dropout probability to 0 (RL ratios and value targets assume a deterministic policy)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def build_policy(
    model: str | None,
    tokenizer: Any,
    max_positions: int,
    *,
    n_layer: int = 2,
    n_embd: int = 128,
    n_head: int = 4,
    seed: int = 0,
) -> PolicyWithValue:
    """Build the policy for an env's tokenizer.

    Args:
        model: ``None``/``"default"`` (small GPT-2), ``"default-seq2seq"`` (small T5), a model preset
            (``"smollm2-135m"``, see :mod:`lmgym.model_presets`), or a local
            folder / hub id of any HF causal or seq2seq LM (a folder saved by
            :meth:`PolicyWithValue.save_pretrained` restores its value head too).
        tokenizer: the env's tokenizer (sets the vocabulary size and special ids of default models).
        max_positions: longest ``prompt + response`` the env produces (default GPT-2's context).
        n_layer, n_embd, n_head: size of a default model.
        seed: seeds the random initialisation of default models and of a new value head.

    Raises:
        ConfigError: an unknown folder, or a model whose vocabulary is smaller than the tokenizer's.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model is None or model in DEFAULT_MODELS:
            lm = default_lm(
                model or "default",
                len(tokenizer),
                max_positions,
                int(tokenizer.pad_token_id),
                tokenizer.bos_token_id,
                int(tokenizer.eos_token_id),
                n_layer,
                n_embd,
                n_head,
            )
            policy = PolicyWithValue(lm)
        else:
            policy = PolicyWithValue.from_pretrained(model)
    vocab = policy.model.get_input_embeddings().num_embeddings
    if vocab < len(tokenizer):
        raise ConfigError(
            f"Model {model!r} has {vocab} embeddings but the env's tokenizer has {len(tokenizer)} tokens. "
            f"Give the env the model's tokenizer (env kwarg tokenizer=PATH) or use a matching model."
        )
    policy.num_actions = len(tokenizer)
    disable_dropout(policy)
    return policy
