"""Tokenizers built from a dataset's own text, cached on disk by a hash of that text.

When a dataset comes without a tokenizer, the env builds one from the training split:

- ``"word"``: an exact word-level vocabulary of the most frequent words (rarer ones become
  ``<unk>``), the same kind the built-in tasks use;
- ``"bpe"``: a byte-pair-encoding model trained with HF ``tokenizers`` (no unknown words within
  the training alphabet, smaller vocabularies for open text).

Both lowercase and split text into words and single punctuation marks (:func:`normalize_text`),
so raw text and normalized text tokenize the same way, and decoding gives normalized text
(``"the cat sat ."``). The result is a ``transformers.PreTrainedTokenizerFast`` with
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

from lmgym.errors import TokenizerError
from lmgym.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, build_word_tokenizer, load_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TOKENIZER_KINDS = ("word", "bpe")
DEFAULT_MAX_VOCAB = {"word": 20_000, "bpe": 8_000}
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


def tokenizer_from_data(
    texts: Sequence[str],
    kind: str = "word",
    max_vocab: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> PreTrainedTokenizerFast:
    """Build (or load from the cache) a tokenizer for ``texts``.

    Args:
        texts: the training texts (prompts and references).
        kind: ``"word"`` or ``"bpe"``.
        max_vocab: vocabulary size limit (default 20,000 words or 8,000 BPE tokens).
        cache_dir: root of the cache (default :func:`cache_root`).

    Returns:
        The tokenizer; its ``name_or_path`` is the cache folder it was saved to.

    Raises:
        TokenizerError: for an unknown ``kind``, a bad ``max_vocab`` or texts without words.
    """
    if kind not in TOKENIZER_KINDS:
        raise TokenizerError(f"tokenizer_kind must be one of {TOKENIZER_KINDS}; got {kind!r}.")
    max_vocab = DEFAULT_MAX_VOCAB[kind] if max_vocab is None else int(max_vocab)
    if max_vocab < 1:
        raise TokenizerError(f"max_vocab must be >= 1; got {max_vocab}.")
    folder = Path(cache_dir or cache_root()) / "tokenizers" / f"{kind}-{texts_digest(texts, kind, max_vocab)}"
    if (folder / "tokenizer.json").is_file():
        return load_tokenizer(str(folder))
    build = build_word_tokenizer_from_texts if kind == "word" else build_bpe_tokenizer_from_texts
    tokenizer = build(texts, max_vocab)
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
