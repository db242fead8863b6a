"""Tokenizers built from a dataset's own text, cached on disk by a hash of that text.

When a dataset comes without a tokenizer, the env builds one from the training split:

- ``"byte_bpe"`` (the ``-v1`` default): byte-level BPE trained with HF ``tokenizers``. Its
  alphabet is the 256 bytes, so it encodes *any* text, seen or not, and decoding gives back the
  exact text: case, spaces, accents, quotes, emoji, symbols, CJK. Nothing is normalized. (The one
  exception: the literal strings ``<pad>``/``<bos>``/``<eos>``/``<unk>`` are special tokens.)
- ``"word"`` (the ``-v0`` default): an exact word-level vocabulary of the most frequent words
  (rarer ones become ``<unk>``), the same kind the built-in tasks use;
- ``"bpe"``: a character-level byte-pair-encoding model (no unknown words within the training
  alphabet; characters never seen in training become ``<unk>``).

``"word"`` and ``"bpe"`` lowercase and split text into words and single punctuation marks
(:func:`normalize_text`), so raw text and normalized text tokenize the same way, and decoding
gives normalized text (``"the cat sat ."``). :func:`response_token_limit` derives a dataset's
``max_new_tokens`` from its reference lengths. Each tokenizer is a ``transformers.PreTrainedTokenizerFast`` with
``<pad>``/``<bos>``/``<eos>``/``<unk>`` at ids 0-3, saved with ``save_pretrained`` under
``<cache>/tokenizers/<kind>-<hash>/`` (``<cache>`` is ``$LMGYM_CACHE`` or ``~/.cache/lmgym``)
and loaded from there next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lmgym.errors import TokenizerError, did_you_mean
from lmgym.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, build_word_tokenizer, load_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TOKENIZER_KINDS = ("word", "bpe", "byte_bpe")
DEFAULT_MAX_VOCAB = {"word": 20_000, "bpe": 8_000, "byte_bpe": 8_000}
#: Quantile of the reference lengths (in tokens) that sets a dataset's default ``max_new_tokens``.
RESPONSE_QUANTILE = 0.99
#: Upper bound on a ``max_new_tokens`` derived from the data (a few very long references should
#: not make every episode's observation that long).
MAX_DERIVED_NEW_TOKENS = 256
_PIECE = r"\w+|[^\w\s]"
_PIECE_RE = re.compile(_PIECE)
_FORMAT_VERSION = "1"  # bump when the way tokenizers are built changes (invalidates the cache)


def normalize_text(text: str) -> str:
    """Lowercase ``text`` and split it into words and single punctuation marks joined by spaces.

    >>> normalize_text("Hello, World! It's 5pm.")
    "hello , world ! it ' s 5pm ."
    """
    return " ".join(_PIECE_RE.findall(text.lower()))


def cache_root() -> Path:
    """``$LMGYM_CACHE`` if set, else ``~/.cache/lmgym``."""
    return Path(os.environ.get("LMGYM_CACHE") or Path.home() / ".cache" / "lmgym")


def texts_digest(texts: Iterable[str], *parts: object) -> str:
    """A short SHA-256 over ``texts`` and any extra ``parts`` (the cache key)."""
    digest = hashlib.sha256(("\x1f".join(map(str, (_FORMAT_VERSION, *parts))) + "\x1e").encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:20]


def _with_text_rules(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """Make a word-level tokenizer lowercase and split punctuation itself (raw text works too)."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    backend = tokenizer.backend_tokenizer
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_PIECE), behavior="isolated")]
    )
    return tokenizer


def build_word_tokenizer_from_texts(texts: Iterable[str], max_vocab: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the ``max_vocab`` most frequent words of ``texts``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_PIECE_RE.findall(text.lower()))
    if not counts:
        raise TokenizerError("Cannot build a tokenizer: the dataset's texts contain no words.")
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]]
    return _with_text_rules(build_word_tokenizer(words))


def build_bpe_tokenizer_from_texts(texts: Iterable[str], max_vocab: int) -> PreTrainedTokenizerFast:
    """A BPE tokenizer with at most ``max_vocab`` tokens trained on ``texts``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=UNK, end_of_word_suffix="</w>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_PIECE), behavior="isolated")]
    )
    core.decoder = decoders.BPEDecoder(suffix="</w>")
    trainer = trainers.BpeTrainer(vocab_size=max_vocab, special_tokens=list(SPECIAL_TOKENS),
                                  end_of_word_suffix="</w>", show_progress=False)
    core.train_from_iterator(texts, trainer=trainer)
    if core.get_vocab_size() <= len(SPECIAL_TOKENS):
        raise TokenizerError("Cannot build a BPE tokenizer: the dataset's texts contain no words.")
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK, clean_up_tokenization_spaces=False)


def build_byte_bpe_tokenizer_from_texts(texts: Iterable[str], max_vocab: int) -> PreTrainedTokenizerFast:
    """A lossless byte-level BPE tokenizer with at most ``max_vocab`` tokens trained on ``texts``.

    The 256 byte symbols are always in the vocabulary (even when ``max_vocab`` is smaller), so
    every string encodes, and ``decode(encode(text)) == text``.

    >>> tok = build_byte_bpe_tokenizer_from_texts(["Grüße, „Köln“!"] * 3, 300)
    >>> text = "Unseen: café 😀 北京 ¥5  two spaces"
    >>> tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    True
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(texts)
    if not any(texts):
        raise TokenizerError("Cannot build a byte-level BPE tokenizer: the dataset's texts are all empty.")
    core = Tokenizer(models.BPE())
    # add_prefix_space=False: a text that starts without a space decodes without one.
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=max_vocab, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK, clean_up_tokenization_spaces=False)


_BUILDERS = {"word": build_word_tokenizer_from_texts, "bpe": build_bpe_tokenizer_from_texts,
             "byte_bpe": build_byte_bpe_tokenizer_from_texts}


def response_token_limit(
    tokenizer: PreTrainedTokenizerFast,
    references: Sequence[str],
    quantile: float = RESPONSE_QUANTILE,
    cap: int = MAX_DERIVED_NEW_TOKENS,
) -> tuple[int, int, int]:
    """A ``max_new_tokens`` that fits the references, and how many it cuts.

    The limit is the ``quantile`` of the references' lengths in tokens plus one (room for EOS),
    at most ``cap``. A reference is *cut* when it has more tokens than the limit (an agent writing
    it would be truncated before its end).

    Returns:
        ``(limit, cut, longest)``: the limit, the number of references it cuts, and the longest
        reference's length in tokens.
    """
    import numpy as np

    if not references:
        raise TokenizerError("Cannot derive max_new_tokens: the dataset has no references.")
    lengths = np.array([len(ids) for ids in tokenizer(list(references), add_special_tokens=False)["input_ids"]])
    limit = int(min(cap, max(1, int(np.quantile(lengths, quantile, method="higher")) + 1)))
    return limit, int((lengths > limit).sum()), int(lengths.max())


def tokenizer_from_data(
    texts: Sequence[str],
    kind: str = "word",
    max_vocab: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> PreTrainedTokenizerFast:
    """Build (or load from the cache) a tokenizer for ``texts``.

    Args:
        texts: the training texts (prompts and references).
        kind: ``"word"``, ``"bpe"`` or ``"byte_bpe"``.
        max_vocab: vocabulary size limit (default 20,000 words or 8,000 (byte-level) BPE tokens).
        cache_dir: root of the cache (default :func:`cache_root`).

    Returns:
        The tokenizer; its ``name_or_path`` is the cache folder it was saved to.

    Raises:
        TokenizerError: for an unknown ``kind``, a bad ``max_vocab`` or texts without words.
    """
    if kind not in TOKENIZER_KINDS:
        raise TokenizerError(f"tokenizer_kind must be one of {TOKENIZER_KINDS}; got {kind!r}."
                             f"{did_you_mean(str(kind), TOKENIZER_KINDS)}")
    max_vocab = DEFAULT_MAX_VOCAB[kind] if max_vocab is None else int(max_vocab)
    if max_vocab < 1:
        raise TokenizerError(f"max_vocab must be >= 1; got {max_vocab}.")
    folder = Path(cache_dir or cache_root()) / "tokenizers" / f"{kind}-{texts_digest(texts, kind, max_vocab)}"
    if (folder / "tokenizer.json").is_file():
        return load_tokenizer(str(folder))
    tokenizer = _BUILDERS[kind](texts, max_vocab)
    # Write to a temporary sibling, then rename: a crash never leaves a half-written cache entry.
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        tokenizer.save_pretrained(str(tmp))
        with contextlib.suppress(OSError):  # another process won the race; its copy is identical
            tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_tokenizer(str(folder))
