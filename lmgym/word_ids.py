"""Words as integer ids: the token-level path of scorers that compare words position by position.

Where decoding joins token texts with spaces (a word-level tokenizer, :meth:`lmgym.token_env.TokenEnv.word_table`),
a batch of responses decodes with one table lookup per batch (:meth:`WordIds.read`). Where, moreover, every
token's text is one whole word (no whitespace; special tokens decode to nothing), a completion's words are its
non-special tokens in order, so a scorer such as ``token_accuracy``, which splits the completion and each
reference into words and compares them, can run on ids, for a whole batch in a few array operations, without
splitting text. :class:`WordIds` makes those ids: one id per distinct word (tokens that decode to the same text
share the id of the first of them); reference words are looked up by text, and a word no token spells gets a
negative id, which never matches.

A scorer offers the path with a ``score_word_ids(batch)`` method that takes a :class:`WordBatch` and returns
exactly what its ``__call__`` returns on the texts, or ``None`` where it cannot (then the texts are scored):
``token_accuracy`` compares the words with the references' word ids, ``sentiment``, ``ngram_fluency``,
``keyword_coverage`` and ``repetition`` read per-word tables built once from the vocabulary.
:func:`word_id_scorer` finds the method, and :class:`WordScoring` scores a batch with it, a weighted sum part by
part (parts without a path on the texts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmgym.scorers.base import WeightedSum, checked_score
from lmgym.task import Example

#: The word id of tokens that decode to nothing, the padding of completion rows and of reference rows, and the
#: id of a reference word no token spells: all negative (never a match).
DROPPED, COMPLETION_PAD, REFERENCE_PAD, UNKNOWN_WORD = -1, -2, -1, -3
_min = np.minimum.reduce
#: Reference tables larger than this many bytes are not built (the scorer's text path is used instead).
MAX_TABLE_BYTES = 64 << 20


@dataclass(slots=True)
class WordBatch:
    """Finished episodes as word ids, with their texts, for scorers' ``score_word_ids`` paths.

    Attributes:
        words: ``(B, W)`` each completion's words as ids ``>= 0`` (:class:`WordIds`: a word's id is the first token
            id that spells it), then negative padding.
        lengths: ``(B,)`` words per completion.
        vocab: ``(V,)`` the text of every id (``vocab[words[i, j]]`` is the ``j``-th word of completion ``i``; the
            same array object for every batch of one env, so scorers may key their tables on it).
        completions: the decoded texts (each one's words joined by single spaces).
        prompts, references, meta: the scorer's other inputs, as the text path gets them.
        reference_ids: ``()`` -> the references as word ids (:meth:`WordIds.references` at the completions'
            width, rows in batch order), or ``None`` where those tables are too large.
    """

    words: np.ndarray
    lengths: np.ndarray
    vocab: np.ndarray
    completions: list[str]
    prompts: list[str]
    references: list[list[str]]
    meta: dict[str, list[Any]] = field(default_factory=dict)
    reference_ids: Callable[[], tuple[list[np.ndarray], list[np.ndarray]] | None] = lambda: None


def word_id_scorer(scorer: Any) -> Callable[[WordBatch], Any] | None:
    """``scorer.score_word_ids`` when the class that defines it also defines the ``__call__`` in use, else ``None``.

    (A subclass that changes ``__call__`` without redefining ``score_word_ids`` does not get the word-id path.)
    """
    cls = type(scorer)
    owner = next((c for c in cls.__mro__ if "score_word_ids" in c.__dict__), None)
    if owner is None or owner.__dict__.get("__call__") is not cls.__call__:
        return None
    return scorer.score_word_ids


def vocab_table(owner: Any, vocab: np.ndarray, build: Callable[[np.ndarray], Any]) -> Any:
    """``build(vocab)``, remembered on ``owner`` (``owner._vocab_table``) while batches bring the same ``vocab`` array.

    A scorer's per-word tables for :meth:`score_word_ids` (its ``__getstate__`` should drop ``_vocab_table``).
    """
    cached = owner.__dict__.get("_vocab_table")
    if cached is None or cached[0] is not vocab:
        cached = owner._vocab_table = (vocab, build(vocab))
    return cached[1]


def compact(ids: np.ndarray, kept: np.ndarray, pad: int) -> np.ndarray:
    """``ids`` ``(B, W)`` with each row's ``kept`` entries moved to its front, in order, and ``pad`` after them."""
    out = np.full_like(ids, pad)
    rows, cols = np.nonzero(kept)
    out[rows, (np.cumsum(kept, axis=1) - 1)[rows, cols]] = ids[rows, cols]
    return out


def _sum_parts(scorer: Any) -> list[tuple[str, Any, float]] | None:
    """A :class:`WeightedSum`'s parts, where its class keeps WeightedSum's way of scoring (else ``None``)."""
    cls = type(scorer)
    if not isinstance(scorer, WeightedSum) or any(getattr(cls, m) is not getattr(WeightedSum, m)
                                                   for m in ("__call__", "details", "combine")):
        return None
    return scorer.parts


class WordScoring:
    """Scores :class:`WordBatch` es with ``scorer``'s word-id paths, resolved once (an env keeps one).

    Calling it gives ``(scores, {part: values})`` as ``score_with_detail_columns`` gives them on the batch's texts,
    or ``None`` where the scorer's path declines (score the texts then). A weighted sum scores each part by its
    word-id path where it has one and it accepts the batch, else on the texts (checked as
    :func:`lmgym.scorers.base.checked_score` checks them), and combines them as on texts.

    Attributes:
        usable: the scorer, or some part of a weighted sum, has a word-id path.
    """

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer
        parts = _sum_parts(scorer)
        self.path = word_id_scorer(scorer) if parts is None else None
        self.parts = None if parts is None else [(name, part, word_id_scorer(part)) for name, part, _ in parts]
        self.usable = self.path is not None if parts is None else any(p is not None for _, _, p in self.parts)

    def __call__(self, batch: WordBatch) -> tuple[Any, dict[str, Any]] | None:
        if self.parts is None:
            values = None if self.path is None else self.path(batch)
            return None if values is None else (values, {self.scorer.name: np.array(values, np.float64)})
        details = {}
        for name, part, path in self.parts:
            values = None if path is None else path(batch)
            if values is None:
                values = checked_score(part, batch.prompts, batch.completions, batch.references, **batch.meta)
            else:  # Python floats, as checked_score gives (sum() may add them otherwise than NumPy floats)
                values = np.asarray(values, np.float64).tolist()
            details[name] = values
        return self.scorer.combine(details), details


class WordIds:
    """Token texts as a table, and word ids of a tokenizer's tokens and of a task's references.

    Args:
        word_table: ``{token id: text}`` for every id in ``[0, vocab_size)``, ``""`` for tokens that decode to
            nothing (:meth:`lmgym.token_env.TokenEnv.word_table`): decoding joins the texts with spaces.
        vocab_size: the number of token ids.

    Attributes:
        one_word: every token's text is one word (or nothing), so :meth:`completions` and :meth:`references`
            give the words of the decoded texts.

    Raises:
        KeyError: an id in ``[0, vocab_size)`` is missing from ``word_table`` (:meth:`from_table` gives ``None``).

    Example:
        >>> ids = WordIds({0: "", 1: "a", 2: "b", 3: "a"}, 4)
        >>> responses, ends = np.array([[1, 0, 3, 2], [2, 2, 0, 0]]), np.array([4, 1])
        >>> texts, words, lengths = ids.read(responses, ends)
        >>> texts, words.tolist(), lengths.tolist()
        (['a a b', 'b'], [[1, 1, 2, -2], [2, -2, -2, -2]], [3, 1])
    """

    def __init__(self, word_table: Mapping[int, str], vocab_size: int) -> None:
        texts = [word_table[i] for i in range(vocab_size)]
        self.texts = np.fromiter(texts, object, vocab_size)  # (V,) each token's text
        self.one_word = all(t == "" or t.split() == [t] for t in texts)
        first: dict[str, int] = {}
        self.token_word = np.full(vocab_size, DROPPED, np.int64)  # (V,) each token's word id; -1: decodes to nothing
        for i, text in enumerate(texts):
            if text:
                self.token_word[i] = first.setdefault(text, i)
        self.word_of_text = first
        self._columns = np.arange(0)
        self._references: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

    @classmethod
    def from_table(cls, word_table: Mapping[int, str] | None, vocab_size: int) -> WordIds | None:
        """:class:`WordIds` of ``word_table``, or ``None`` where there is none or it misses an id."""
        if word_table is None:
            return None
        try:
            return cls(word_table, vocab_size)
        except KeyError:
            return None

    def read(self, ids: np.ndarray, ends: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Responses ``ids`` ``(B, R)`` cut at ``ends`` ``(B,)``: ``(texts, words (B, R), lengths (B,))``.

        The texts are what the env's ``decode_batch`` gives (token texts joined by spaces, tokens that decode to
        nothing dropped), from one table lookup for the batch. Where :attr:`one_word`, ``words`` holds each
        text's words as ids, padded with ``-2``, and ``lengths`` their number.
        """
        words = self.token_word[ids]  # (B, R)
        R = ids.shape[1]
        full = len(ends) > 0 and _min(ends) == R  # every response is R tokens long (e.g. all truncated)
        if not full:
            if len(self._columns) != R:
                self._columns = np.arange(R)
            words[self._columns >= ends[:, None]] = COMPLETION_PAD
        rows, join = self.texts[ids].tolist(), " ".join
        # The usual case: every token is a word (where every response is full, no id is negative: one reduction).
        if (_min(words, axis=None) >= 0) if full else not np.count_nonzero(words == DROPPED):
            texts = list(map(join, rows)) if full else [join(row[:end]) for row, end in zip(rows, ends.tolist())]
            return texts, words, ends
        texts = [join(filter(None, row[:end])) for row, end in zip(rows, ends.tolist())]
        kept = words >= 0
        return texts, compact(words, kept, COMPLETION_PAD), np.count_nonzero(kept, axis=1)

    def references(self, split: str, examples: Sequence[Example], width: int
                   ) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
        """Every example's references as word ids, made once per ``split``: ``K`` tables ``(n, width)`` (the
        ``k``-th reference of each example, cut or padded with ``-1`` to ``width`` words; words no token spells are
        ``-3``) and ``K`` arrays ``(n,)`` of their lengths before the cut (``-1``: the example has fewer than ``k + 1``
        references). ``None`` when the tables would be over :data:`MAX_TABLE_BYTES`.
        """
        if split in self._references:
            return self._references[split]
        texts = [[r.split() for r in e.references] for e in examples]
        K = max(map(len, texts), default=0)
        found = None
        if len(texts) * K * max(width, 1) * 8 <= MAX_TABLE_BYTES:
            tables = [np.full((len(texts), width), REFERENCE_PAD, np.int64) for _ in range(K)]
            lengths = [np.full(len(texts), -1, np.int64) for _ in range(K)]
            get = self.word_of_text.get
            for i, refs in enumerate(texts):
                for k, words in enumerate(refs):
                    cut = words[:width]
                    tables[k][i, : len(cut)] = [get(w, UNKNOWN_WORD) for w in cut]
                    lengths[k][i] = len(words)
            found = tables, lengths
        self._references[split] = found
        return found
