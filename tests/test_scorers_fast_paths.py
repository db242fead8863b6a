"""The fast paths of the built-in scorers and of decoding give exactly the numbers and texts of their definitions.

- ``sentiment``: :class:`lmgym.scorers.vader.VaderCompound` equals vaderSentiment's ``polarity_scores``;
- ``ngram_fluency``: the memoised and the batched bigram paths equal the model's definition, written
  here with :meth:`NgramFluency.prob` as the module docstring states it;
- ``words`` (the byte-table path for ASCII) equals ``re.findall(r"\\w+", text.lower())``, the fluency
  tokens (split text) ``re.findall(r"\\w+|[^\\w\\s]", text.lower())``, and
  ``repetition``, ``length`` and ``keyword_coverage`` equal their definitions;
- a word-level env's table decode equals the tokenizer's own ``batch_decode``.

Inputs are random texts built to hit every rule (negations, boosters, idioms, "but", ALL CAPS,
punctuation, emoji, non-ASCII) and the built-in corpora's real texts; equality is exact (``==``).
"""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest

from lmgym.scorers import make_scorer
from lmgym.scorers.fluency import BOS, EOS, NgramFluency, fluency_tokens
from lmgym.scorers.lexical import words


def corpus_texts(limit: int = 400) -> list[str]:
    """Prompts, sources and references of the built-in text tasks."""
    from lmgym.envs.generate import keywords_task, review_task
    from lmgym.envs.summarize import summarize_task
    from lmgym.envs.translate import translate_task

    out = []
    for task in (summarize_task(), translate_task(), review_task(), keywords_task()):
        for ex in task.examples("validation")[: limit // 4]:
            out += [ex.prompt, ex.source, *ex.references]
    return out


def vader_texts(n: int, seed: int = 0) -> list[str]:
    """Random texts over VADER's rule words, lexicon words, caps, punctuation and emoji."""
    from vaderSentiment import vaderSentiment as vs

    rng = random.Random(seed)
    lexicon = sorted(vs.SentimentIntensityAnalyzer().lexicon)
    rule = ["but", "BUT", "kind", "of", "no", "not", "never", "so", "this", "least", "at", "very", "without",
            "doubt", "nor", "or", "isn't", "can't", "GOOD", "Great", "the", "a", ".", ",", "!", "??", ":)", ":-(",
            "😀", "❤", "sort", "bad", "ass", "shit", "bomb", "café", "İstanbul"]
    rule += sorted(vs.BOOSTER_DICT)[::3] + list(vs.NEGATE)[::2] + [w for k in vs.SPECIAL_CASES for w in k.split()]
    real = [w for t in corpus_texts(200) for w in t.split()]
    out = []
    for _ in range(n):
        ws = []
        for _ in range(rng.randint(0, 30)):
            r = rng.random()
            w = rng.choice(rule) if r < 0.4 else rng.choice(lexicon) if r < 0.8 else rng.choice(real)
            w = w.upper() if rng.random() < 0.1 else w
            ws.append(w + rng.choice(["", "", "", "!", ".", "?", ",", "!!"]))
        out.append(rng.choice([" ", "  ", "\n"]).join(ws) + rng.choice(["", "!", " ?", "!!!", " "]))
    return out


def test_vader_compound_equals_polarity_scores():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from lmgym.scorers.vader import VaderCompound

    library, fast = SentimentIntensityAnalyzer(), VaderCompound(maxsize=5_000)  # small: the memos empty too
    texts = corpus_texts() + vader_texts(12_000) + ["", " ", "!!!", "VADER is smart, handsome, and funny!"]
    for text in texts + texts[:500]:  # again: remembered texts and contexts give the same value
        assert fast.compound(text) == library.polarity_scores(text)["compound"], text
    scorer = make_scorer("sentiment")
    assert scorer(None, texts[:64]) == [library.polarity_scores(t)["compound"] for t in texts[:64]]


def fluency_definition(lm: NgramFluency, text: str) -> float:
    """The module docstring's score, token by token with ``prob``."""
    tokens = fluency_tokens(text)
    if not tokens:
        return 0.0
    seq, start, total = [BOS] * (lm.n - 1) + tokens + [EOS], lm.n - 1, 0.0
    for i in range(start, len(seq)):
        total -= math.log(lm.prob(seq[i], seq[i - start : i]))
    return min(1.0, max(0.0, 1.0 - total / (len(seq) - start) / math.log(lm.vocab_size)))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ngram_fluency_paths_equal_the_definition(n):
    from lmgym.envs.generate import review_task

    refs = [r for ex in review_task().examples("train")[:3000] for r in ex.references]
    lm = NgramFluency(refs, n=n)
    rng = random.Random(n)
    vocab = [*sorted({t for r in refs[:300] for t in fluency_tokens(r)}), "zzz", "UNSEEN", "!", "Éa", "<s>", "</s>"]
    texts = [*corpus_texts(), "", " ", "...", "the the the"]
    texts += [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30))) for _ in range(1500)]
    want = [fluency_definition(lm, t) for t in texts]
    batched = [v for s in range(0, len(texts), 32) for v in lm(None, texts[s : s + 32])]
    single = [lm(None, [t])[0] for t in texts]
    assert batched == want and single == want


def test_words_and_lexical_scorers_equal_their_definitions():
    rng = random.Random(0)
    chars = [chr(c) for c in range(128)] + ["é", "İ", "K", "ß", "猫", "ǅ"]
    texts = ["".join(rng.choice(chars) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts += [" ".join(rng.choice(["a", "b", "A", "b_c", "x1", "it's", "!"]) for _ in range(rng.randint(0, 12)))
              for _ in range(2000)]
    texts += corpus_texts()
    for t in texts:
        assert words(t) == re.findall(r"\w+", t.lower()), t
        assert fluency_tokens(t) == re.findall(r"\w+|[^\w\s]", t.lower()), t
    for n in (1, 2, 3):
        rep = make_scorer("repetition", n=n)
        want = []
        for t in texts:
            w = re.findall(r"\w+", t.lower())
            grams = [tuple(w[j : j + n]) for j in range(len(w) - n + 1)]
            want.append(0.0 if not grams else 1.0 - len(set(grams)) / len(grams))
        assert rep(None, texts) == want
    refs = [[rng.choice(texts), rng.choice(texts)] for _ in texts]
    length = make_scorer("length")
    assert length(None, texts, refs) == [
        max(length.closeness(len(re.findall(r"\w+", t.lower())), len(re.findall(r"\w+", r.lower()))) for r in rs)
        for t, rs in zip(texts, refs)]
    coverage = make_scorer("keyword_coverage")
    keywords = [rng.sample(["dog", "dogs", "run", "ice cream", "b c", "x1", "Park", "a, b"], 3) for _ in texts]
    first = coverage(None, texts, keywords=keywords)
    assert coverage(None, texts, keywords=keywords) == first  # remembered phrases: the same values
    fresh = make_scorer("keyword_coverage")
    assert [fresh(None, [t], keywords=[k])[0] for t, k in zip(texts, keywords)] == first


def test_word_table_decode_equals_the_tokenizer():
    import gymnasium as gym

    import lmgym

    rng = np.random.default_rng(0)
    for env_id in [i for i in lmgym.env_ids() if not i.endswith("-v1")]:  # -v1: the same tokenizers
        env = gym.make(env_id).unwrapped
        batch = [rng.integers(0, env.vocab_size, rng.integers(0, 40)) for _ in range(200)]
        assert env.decode_batch(batch) == env.tokenizer.batch_decode([b.tolist() for b in batch],
                                                                     skip_special_tokens=True), env_id
        assert (env.word_table() is not None) == (env_id != "lmgym/Calculator-v0")  # WordPiece: the tokenizer's


@pytest.mark.parametrize("options", [{}, {"beta": 1}, {"beta": 3, "char_order": 4}, {"eps_smoothing": True}])
def test_chrf_f_scores_equal_sacrebleus_arithmetic(options):
    import sacrebleu

    from lmgym.scorers.chrf import f_scores

    metric = sacrebleu.metrics.CHRF(**options)
    rng = np.random.default_rng(len(options))
    hyp, ref = rng.integers(0, 30, (3000, metric.char_order)), rng.integers(0, 30, (3000, metric.char_order))
    match = np.minimum(rng.integers(0, 30, hyp.shape), np.minimum(hyp, ref))
    stats = np.stack([hyp, ref, match], -1)  # (n, order, 3), zeros included
    want = [metric._compute_f_score(row) for row in stats.reshape(len(stats), -1).tolist()]
    assert f_scores(metric, stats).tolist() == want
