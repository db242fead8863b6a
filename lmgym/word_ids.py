"""Words as integer ids: the token-level path of scorers that compare words position by position.

Where decoding joins token texts with spaces (a word-level tokenizer, :meth:`lmgym.token_env.TokenEnv.word_table`),
a batch of responses decodes with one table lookup per batch (:meth:`WordIds.read`). Where, moreover, every
token's text is one whole word (no whitespace; special tokens decode to nothing), a completion's words are its
non-special tokens in order, so a scorer such as ``token_accuracy``, which splits the completion and each
reference into words and compares them, can run on ids, for a whole batch in a few array operations, without
splitting text. :class:`WordIds` makes those ids: one id per distinct word (tokens that decode to the same text
share the id of the first of them); reference words are looked up by text, and a word no token spells gets a
negative id, which never matches.

A scorer offers the path with a ``score_word_ids(words, lengths, references, reference_lengths)`` method that
returns exactly what its ``__call__`` returns on the texts (see
:meth:`lmgym.scorers.match.TokenAccuracy.score_word_ids`); :func:`word_id_scorer` finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lmgym.task import Example

#: The word id of tokens that decode to nothing, the padding of completion rows and of reference rows, and the
#: id of a reference word no token spells: all negative (never a match).
DROPPED, COMPLETION_PAD, REFERENCE_PAD, UNKNOWN_WORD = -1, -2, -1, -3
_min = np.minimum.reduce
#: Reference tables larger than this many bytes are not built (the scorer's text path is used instead).
MAX_TABLE_BYTES = 64 << 20


def word_id_scorer(scorer: Any) -> Callable[..., np.ndarray] | None:
    """``scorer.score_word_ids`` when the class that defines it also defines the ``__call__`` in use, else ``None``.

    (A subclass that changes ``__call__`` without redefining ``score_word_ids`` does not get the word-id path.)
    """
    cls = type(scorer)
    owner = next((c for c in cls.__mro__ if "score_word_ids" in c.__dict__), None)
    if owner is None or owner.__dict__.get("__call__") is not cls.__call__:
        return None
    return scorer.score_word_ids


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
        out = np.full_like(words, COMPLETION_PAD)
        rows_, cols = np.nonzero(kept)
        out[rows_, (np.cumsum(kept, axis=1) - 1)[rows_, cols]] = words[rows_, cols]
        return texts, out, np.count_nonzero(kept, axis=1)

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
