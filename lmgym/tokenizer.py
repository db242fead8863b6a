"""Tokenizers: an exact word-level tokenizer for closed vocabularies, and loading of any HF tokenizer.

Built-in tasks have closed vocabularies, so a word-level tokenizer encodes every text exactly and
keeps the action space small (``Discrete(V)`` with V in the hundreds). It is built with HF
``tokenizers`` and exposed as a ``transformers.PreTrainedTokenizerFast``, so it saves and loads
like any HF tokenizer and any HF model or agent can use it.

Special tokens always sit at the same ids: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lmgym.errors import TokenizerError
from lmgym.hub import is_local_path, load_pretrained

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)


def build_word_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """Build an exact word-level tokenizer over ``words`` (whitespace-split, case-sensitive).

    Args:
        words: the closed vocabulary; duplicates are ignored and the order is made canonical
            (sorted), so the same set of words always gives the same ids.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``<pad>``/``<bos>``/``<eos>``/``<unk>`` at ids 0-3.

    Raises:
        TokenizerError: if ``words`` is empty or a word contains whitespace.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers

    unique = sorted(set(words) - set(SPECIAL_TOKENS))
    if not unique:
        raise TokenizerError("Cannot build a word-level tokenizer from an empty vocabulary.")
    _check_words(unique)
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *unique])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return _wrap(core)


def _check_words(words: list[str]) -> None:
    """Raise :class:`TokenizerError` for an empty word or one with whitespace."""
    bad = [w for w in words if not w or any(ch.isspace() for ch in w)]
    if bad:
        raise TokenizerError(f"Vocabulary words must be non-empty and contain no whitespace; got {bad[:5]!r}.")


def _wrap(core: Any) -> PreTrainedTokenizerFast:
    """A ``tokenizers.Tokenizer`` as a transformers fast tokenizer with lmgym's special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK, clean_up_tokenization_spaces=False)


def build_wordpiece_tokenizer(words: Iterable[str], characters: str) -> PreTrainedTokenizerFast:
    """A word-level tokenizer with a character fallback: exact for any text spelled in ``characters``.

    Each whitespace-separated word that is in ``words`` is one token; any other word is spelled
    with pieces of one character (the first as ``c``, the rest as ``##c``, a WordPiece model), so
    ``"1234"`` is ``1 ##2 ##3 ##4`` and decodes back to ``"1234"``. Numbers, which a closed word
    list cannot hold, are thus written digit by digit (tool-use envs: the agent copies a result).
    A word with a character outside ``characters`` becomes ``<unk>``. Special tokens sit at
    ids 0-3 as in :func:`build_word_tokenizer`.

    Raises:
        TokenizerError: empty ``characters``, or a word that contains whitespace.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    chars = sorted(set(characters) - {" ", "\t", "\n"})
    if not chars:
        raise TokenizerError("A WordPiece tokenizer needs fallback characters, e.g. string.digits.")
    unique = sorted(set(words) - set(SPECIAL_TOKENS) - set(chars))
    _check_words(unique)
    tokens = [*SPECIAL_TOKENS, *unique, *chars, *(f"##{c}" for c in chars)]
    core = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(tokens)}, unk_token=UNK,
                                      max_input_chars_per_word=1000))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return _wrap(core)


def load_tokenizer(spec: Any) -> PreTrainedTokenizerBase:
    """Return a ready tokenizer from a tokenizer object, a local folder or a hub id.

    A hub id (``"someorg/model"``) loads from the Hugging Face cache without the network when it
    is there, else from the hub (see :mod:`lmgym.hub`). A model preset (``"smollm2-135m"``) or a
    ``.gguf`` file gives the tokenizer of its converted folder (see :mod:`lmgym.model_presets`).

    A tokenizer without a pad token gets its EOS token as pad (the usual fix for GPT-2-style
    tokenizers); one without an EOS token is rejected, since episodes end on EOS.

    Raises:
        TokenizerError: if the path/id cannot be loaded or the tokenizer has no EOS token.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerBase

    if isinstance(spec, PreTrainedTokenizerBase):
        tokenizer = spec
    elif isinstance(spec, (str, os.PathLike)):
        from lmgym.model_presets import resolve_model  # (imports this module's users; resolve lazily)

        path = resolve_model(os.fspath(spec))
        if is_local_path(path) and not os.path.isdir(path):
            raise TokenizerError(f"Tokenizer folder {path!r} does not exist. Pass an existing folder or a hub id.")
        try:
            tokenizer = load_pretrained(AutoTokenizer.from_pretrained, path)
        except Exception as exc:  # network, missing files, bad config: all the same to the user
            reason = str(exc).rstrip(".")
            where = "the folder" if is_local_path(path) else "the Hugging Face cache ($HF_HUB_CACHE) or the hub"
            raise TokenizerError(
                f"Could not load tokenizer {path!r} from {where}: {type(exc).__name__}: {reason}. Offline, pass a "
                "local folder saved with save_pretrained, a tokenizer object, or a hub id already in the HF cache."
            ) from exc
    else:
        raise TokenizerError(
            f"tokenizer must be a PreTrainedTokenizer, a local folder or a hub id; got {type(spec).__name__}."
        )
    if tokenizer.eos_token_id is None:
        raise TokenizerError(f"Tokenizer {tokenizer.name_or_path!r} has no EOS token; set tokenizer.eos_token first.")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
