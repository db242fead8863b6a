"""A smoothed word n-gram language model as a fluency scorer (no torch, no download).

:class:`NgramFluency` is fit on a corpus (typically the task's training references) and scores
how natural a completion looks *to that corpus*:

1. Tokens: the lowercased text split into words and single punctuation marks
   (``re.findall(r"\\w+|[^\\w\\s]", text.lower())``), with ``n - 1`` start markers before and
   one end marker ``</s>`` after, so ending mid-sentence costs too.
2. Probabilities: interpolated absolute discounting (discount ``d``, default 0.75), recursively
   down to a uniform distribution over the ``V`` = corpus word types + ``</s>`` + one unknown
   word::

       P_k(w | h) = max(c(h, w) - d, 0) / c(h) + d * T(h) / c(h) * P_{k-1}(w | h[1:])
       P_0(w)     = 1 / V

   where ``c(h)`` counts the context ``h`` of length ``k - 1``, ``c(h, w)`` the n-gram and
   ``T(h)`` the distinct words seen after ``h``; an unseen context falls back to ``P_{k-1}``.
   The probabilities over the vocabulary sum to 1.
3. Score: with ``H`` the mean negative natural log-probability per token (the log-perplexity),
   ``score = clip(1 - H / log V, 0, 1)``. Uniform guessing (perplexity ``V``) or worse scores 0;
   a fully predictable text scores 1; the empty completion scores 0.

Repeating one word over and over scores near 0 (each repeat is an unseen bigram), while
sentences like the corpus's score well above text in random word order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import numpy as np

from lmgym.scorers.base import Scorer

_TOKEN = re.compile(r"\w+|[^\w\s]")
_min = np.minimum.reduce
_GLUED = re.compile(r"[^\w\s]\S|\S[^\w\s]")  # a mark next to a non-space character: not a lone token
BOS, EOS = "<s>", "</s>"


def fluency_tokens(text: str) -> list[str]:
    """The tokens :class:`NgramFluency` models: lowercased words and single punctuation marks."""
    lower = text.lower()
    # Already split apart (no mark touching another non-space character): the tokens are the words.
    if lower.isascii() and not _GLUED.search(lower):
        return lower.split()
    return _TOKEN.findall(lower)


class NgramFluency(Scorer):
    """Naturalness of a completion under a smoothed n-gram LM fit on ``corpus``, in [0, 1].

    See the module docstring for the exact model and normalisation.

    Args:
        corpus: texts to fit on (e.g. the task's training references). At least one must
            contain a word.
        n: n-gram order (2 = bigrams, the default).
        discount: absolute discount ``d`` in (0, 1).

    Example:
        >>> lm = NgramFluency(["the cat sat on the mat .", "the dog sat on the rug ."])
        >>> good, bad = lm(["", ""], ["the cat sat on the rug .", "the the the the the"])
        >>> good > 0.5 > bad
        True
    """

    name = "ngram_fluency"
    #: The most n-gram log-probabilities remembered (the memo is emptied when it is fuller).
    memo_size: int = 1 << 20
    #: Batches at least this large (with ``n == 2``) are scored together with NumPy look-ups.
    batch_from: int = 4
    #: Vocabularies with at most this many (context, word) pairs keep every bigram's log-probability in a table.
    dense_logs_up_to: int = 1 << 20

    def __init__(self, corpus: Sequence[str] | None = None, n: int = 2, discount: float = 0.75) -> None:
        if corpus is None:
            raise TypeError(
                "ngram_fluency needs a corpus to fit on: make_scorer('ngram_fluency', corpus=texts) "
                "or NgramFluency(texts), e.g. the task's training references."
            )
        if isinstance(corpus, str):
            raise TypeError("corpus must be a sequence of texts, not one string; wrap it in a list.")
        if n < 1:
            raise ValueError(f"n must be >= 1; got {n}.")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1); got {discount}.")
        self.n = int(n)
        self.discount = float(discount)
        # counts[context] = {word: count}, for contexts of length 0 .. n-1.
        counts: dict[tuple[str, ...], dict[str, int]] = {}
        types: set[str] = set()
        for text in corpus:
            toks = fluency_tokens(text)
            if not toks:
                continue
            types.update(toks)
            seq = [BOS] * (self.n - 1) + toks + [EOS]
            for i in range(self.n - 1, len(seq)):
                for k in range(self.n):
                    ctx = tuple(seq[i - k : i])
                    follow = counts.setdefault(ctx, {})
                    follow[seq[i]] = follow.get(seq[i], 0) + 1
        if not types:
            raise ValueError("ngram_fluency's corpus has no words; give it some texts to fit on.")
        self.vocab_size = len(types) + 2  # + </s> + one unknown word
        # context -> (total count, distinct followers, {word: count})
        self._table = {ctx: (sum(f.values()), len(f), f) for ctx, f in counts.items()}

    def prob(self, word: str, context: Iterable[str]) -> float:
        """``P(word | context)`` under the model; ``context`` is cut to the last ``n - 1`` tokens."""
        ctx = tuple(context)[-(self.n - 1) :] if self.n > 1 else ()
        ctx = (BOS,) * (self.n - 1 - len(ctx)) + ctx
        p = 1.0 / self.vocab_size
        d = self.discount
        for k in range(len(ctx) + 1):  # lowest order first: (), then last 1 word, ...
            entry = self._table.get(ctx[len(ctx) - k :])
            if entry is None:
                continue
            total, distinct, follow = entry
            p = max(follow.get(word, 0) - d, 0.0) / total + d * distinct / total * p
        return p

    def log_perplexity(self, text: str) -> float:
        """Mean negative natural log-probability per token of ``text`` (its words and ``</s>``)."""
        return self._log_perplexity(fluency_tokens(text))

    def _log_perplexity(self, tokens: list[str]) -> float:
        # Each n-gram's log-probability is computed once (``_log_probs``); the sum runs in the text's order.
        n = self.n
        seq = [BOS] * (n - 1) + tokens + [EOS]
        grams = zip(*(seq[k:] for k in range(n)))  # (context..., word) at every position after the markers
        memo = self.__dict__.get("_log_probs")
        if memo is None or len(memo) > self.memo_size:
            memo = self._log_probs = {}
        total = 0.0
        for gram in grams:
            log_p = memo.get(gram)
            if log_p is None:
                log_p = memo[gram] = math.log(self.prob(gram[-1], gram[:-1]))
            total -= log_p
        return total / (len(seq) - n + 1)

    def score_text(self, text: str) -> float:
        """``clip(1 - log_perplexity / log V, 0, 1)``; 0 for text without tokens."""
        tokens = fluency_tokens(text)
        if not tokens:
            return 0.0
        return min(1.0, max(0.0, 1.0 - self._log_perplexity(tokens) / math.log(self.vocab_size)))

    def __call__(self, prompts, completions, references=None, **meta):
        if self._bigram_tables_apply() and len(completions) >= self.batch_from:
            return self._score_bigram_batch(completions)
        return [self.score_text(c) for c in completions]

    def _bigram_tables_apply(self) -> bool:
        """Whether the batched paths (bigram look-up tables) give this model's scores: ``n == 2`` and the class
        computes probabilities and scores as :class:`NgramFluency` does."""
        cls = type(self)
        return self.n == 2 and all(getattr(cls, m) is getattr(NgramFluency, m)
                                   for m in ("prob", "score_text", "log_perplexity", "_log_perplexity"))

    def _bigram_tables(self) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For ``n == 2``: token ids (unknown words: the last id), ``P_1`` per id, the back-off weight per
        context id, and the sorted ``(context, word)`` keys of seen bigrams with their discounted terms.

        ``P_2(w | h) = seen(h, w) + weight(h) * P_1(w)`` with each term computed as :meth:`prob` computes it,
        so the sum is bit for bit :meth:`prob`'s (an unseen bigram's term is ``0.0``; a context never seen
        has weight ``1.0``, leaving ``P_1``).
        """
        tables = self.__dict__.get("_bigram")
        if tables is None:
            d, uniform = self.discount, 1.0 / self.vocab_size
            total, distinct, follow = self._table[()]
            ids = {w: i for i, w in enumerate([BOS, *sorted(follow)])}
            unknown = len(ids)
            p1 = np.array([max(follow.get(w, 0) - d, 0.0) / total + d * distinct / total * uniform
                           for w in [*ids, None]])
            weight = np.ones(unknown + 1)
            keys, seen = [], []
            for ctx, (c_total, c_distinct, c_follow) in self._table.items():
                if len(ctx) == 1 and ctx[0] in ids:
                    h = ids[ctx[0]]
                    weight[h] = d * c_distinct / c_total
                    for w, c in c_follow.items():
                        keys.append(h * (unknown + 1) + ids[w])
                        seen.append(max(c - d, 0.0) / c_total)
            order = np.argsort(keys)
            tables = self._bigram = (ids, p1, weight, np.asarray(keys, np.int64)[order], np.asarray(seen)[order])
        return tables

    def _bigram_logs(self) -> np.ndarray | None:
        """``log P_2(w | h)`` of every (context id, word id) pair at ``h * (ids + 1) + w``, each with ``math.log``
        of :meth:`_bigram_tables`' sum (so equal to :meth:`prob`'s log); ``None`` for a vocabulary too large."""
        logs = self.__dict__.get("_logs", False)
        if logs is False:
            ids, p1, weight, keys, seen = self._bigram_tables()
            logs = None
            if (len(ids) + 1) ** 2 <= self.dense_logs_up_to:
                p = (weight[:, None] * p1[None, :]).ravel()  # an unseen bigram: 0.0 + weight * P_1 is this
                p[keys] = seen + p[keys]
                logs = np.array(list(map(math.log, p.tolist())))
            self._logs = logs
        return logs

    def _piece_ids(self, pieces: list[str]) -> list[int]:
        """The token ids (:meth:`_bigram_tables`) of whitespace-free pieces of text, in order, each piece's remembered.

        A text's tokens are its pieces' tokens in order: tokens never span whitespace, and lowercasing
        (final sigma included) reads no further than the whitespace around a piece. Most pieces are one token
        (a word, a mark): those are remembered as one id (``_pieces``), the others as a tuple (``_multi``).
        """
        memo = self.__dict__.get("_pieces")
        if memo is None or len(memo) > self.memo_size:
            memo = self._pieces = {}
            self._multi: dict[str, tuple[int, ...]] = {}
        found = list(map(memo.get, pieces))
        if None not in found:
            return found
        ids, multi = self._bigram_tables()[0], self._multi
        unknown, out = len(ids), []
        for piece, got in zip(pieces, found):
            if got is None:
                got = multi.get(piece)
                if got is None:
                    got = tuple(ids.get(t, unknown) for t in fluency_tokens(piece))
                    if len(got) == 1:
                        memo[piece] = got[0]
                    else:
                        multi[piece] = got
                out.extend(got)
            else:
                out.append(got)
        return out

    def _score_bigram_batch(self, completions: Sequence[str]) -> list[float]:
        """:meth:`score_text` of every completion (``n == 2``), the probabilities of all texts in one pass."""
        split = [c.split() for c in completions]
        tokens = self._piece_ids(list(chain.from_iterable(split)))
        counts = np.fromiter(map(len, split), np.int64, len(split))  # pieces per text
        if len(tokens) != int(counts.sum()):  # some piece has several tokens: count each text's
            counts = np.fromiter((len(self._piece_ids(p)) for p in split), np.int64, len(split))
        if not tokens:
            return [0.0] * len(completions)
        # One row per text: <s> tokens </s>, then </s> as padding.
        seq = np.full((len(split), int(counts.max()) + 2), self._bigram_tables()[0][EOS], np.int64)
        seq[:, 0] = 0  # <s>
        seq[:, 1:][np.arange(seq.shape[1] - 1) < counts[:, None]] = tokens
        return self._bigram_scores(seq, counts)

    def score_word_ids(self, batch: Any) -> list[float] | None:
        """:meth:`__call__` on a :class:`lmgym.word_ids.WordBatch`'s texts, from its word ids (``n == 2``).

        A text's tokens are its words' tokens in order (:meth:`_piece_ids`); each vocabulary word's token id is
        looked up once. ``None`` (score the texts) for ``n != 2``, a subclass that computes probabilities its own
        way, or where a word in the batch holds several tokens.
        """
        from lmgym.word_ids import vocab_table

        if not self._bigram_tables_apply():
            return None
        token_of = vocab_table(self, batch.vocab, self._word_token_ids)  # (V + 3,) -1: several tokens
        tokens = token_of[batch.words]  # (B, W): the padding ids -1, -2, -3 read </s>
        if tokens.size and _min(tokens, axis=None) < 0:
            return None
        seq = np.empty((len(tokens), tokens.shape[1] + 2), np.int64)  # <s> tokens </s> (then </s> as padding)
        seq[:, 0], seq[:, 1:-1], seq[:, -1] = 0, tokens, token_of[-1]
        return self._bigram_scores(seq, batch.lengths)

    def _word_token_ids(self, vocab: np.ndarray) -> np.ndarray:
        """Each vocabulary word's token id (:meth:`_piece_ids`), ``-1`` where it has several tokens (or no text);
        then three entries ``</s>``, for the padding ids -1, -2, -3 of :class:`lmgym.word_ids.WordBatch`."""
        out = np.full(len(vocab) + 3, self._bigram_tables()[0][EOS], np.int64)
        for i, text in enumerate(vocab.tolist()):
            ids = self._piece_ids([text]) if text else ()
            out[i] = ids[0] if len(ids) == 1 else -1
        return out

    def _bigram_scores(self, seq: np.ndarray, counts: np.ndarray) -> list[float]:
        """:meth:`score_text` of texts given as token ids (:meth:`_bigram_tables`): row ``i`` of ``seq`` is ``<s>``,
        text ``i``'s ``counts[i]`` tokens, then ``</s>`` (to the row's end)."""
        ids, p1, weight, keys, seen = self._bigram_tables()
        unknown = len(ids)
        places = np.arange(seq.shape[1] - 1)  # row i predicts its places 1 .. counts[i] + 1
        key = seq[:, :-1] * (unknown + 1) + seq[:, 1:]  # (context, word) of every place
        table = self._bigram_logs()
        if table is not None:
            logs = table[key]
        else:
            ctx, tok = seq[:, :-1].ravel(), seq[:, 1:].ravel()
            at = np.minimum(np.searchsorted(keys, key.ravel()), len(keys) - 1)
            term = np.where(keys[at] == key.ravel(), seen[at], 0.0)
            # math.log, as prob() is logged
            logs = np.array(list(map(math.log, (term + weight[ctx] * p1[tok]).tolist()))).reshape(key.shape)
        # Each text's sum in its order (total -= log p): zeros after its end, summed left to right.
        total = -np.cumsum(np.where(places <= counts[:, None], logs, 0.0), axis=1)[:, -1]
        score = np.minimum(1.0, np.maximum(0.0, 1.0 - total / (counts + 1) / math.log(self.vocab_size)))
        return np.where(counts > 0, score, 0.0).tolist()  # a text without tokens scores 0

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state.pop("_log_probs", None)  # a memo and look-up tables: rebuilt on use
        state.pop("_bigram", None)
        state.pop("_pieces", None)
        state.pop("_multi", None)
        state.pop("_logs", None)
        state.pop("_vocab_table", None)
        return state
