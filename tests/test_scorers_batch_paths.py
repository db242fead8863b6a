"""The batched paths of the built-in scorers (the native vector env's one call per finished batch) give exactly
the numbers of their definitions and of the one-text paths (which ``SyncVectorEnv``'s single envs take).

- ``sentiment``: :meth:`VaderCompound.compound_batch` equals vaderSentiment's ``polarity_scores`` on texts over
  the rule words and lexicon (emoji, "but", ALL CAPS, idioms) and on random texts over a built-in task's words,
  in batches of random sizes with small memos (so they empty);
- ``ngram_fluency``: the batched bigram path, with and without its table of log-probabilities, equals the model's
  definition, on texts whose pieces hold one token and on texts with punctuation glued to words;
- ``token_accuracy``, ``repetition``, ``checked_score`` and ``WeightedSum.combine`` give what their plain definitions
  give, errors included.
Equality is exact (``==``).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from test_scorers_fast_paths import corpus_texts, fluency_definition, vader_texts

from lmgym.errors import ScorerError
from lmgym.scorers import checked_score, make_scorer
from lmgym.scorers.fluency import NgramFluency


def task_word_texts(env_id: str, n: int, length: int, seed: int = 0) -> list[str]:
    """Random texts over an env's vocabulary, decoded as the native env decodes them."""
    import gymnasium as gym

    env = gym.make(env_id).unwrapped
    words = np.setdiff1d(np.arange(env.vocab_size), env.tokenizer.all_special_ids)
    rng = np.random.default_rng(seed)
    return env.decode_batch([rng.choice(words, size=int(rng.integers(0, length + 1))) for _ in range(n)])


def batches(texts: list[str], seed: int) -> list[list[str]]:
    rng, out, k = random.Random(seed), [], 0
    while k < len(texts):
        size = rng.choice([4, 5, 17, 32, 64])
        out.append(texts[k : k + size])
        k += size
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_vader_compound_batch_equals_polarity_scores(seed):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from lmgym.scorers.vader import VaderCompound

    library = SentimentIntensityAnalyzer()
    texts = vader_texts(4000, seed=seed) + task_word_texts("lmgym/PositiveReview-v0", 3000, 30, seed)
    texts += [*corpus_texts(100), "", " ", "!!!", "but", "BUT it is GOOD", "good but bad", "the bomb", "kind of nice"]
    random.Random(seed).shuffle(texts)
    fast = VaderCompound(maxsize=2_000)  # small: every memo empties during the run
    got = [v for batch in batches(texts + texts[:300], seed) for v in fast.compound_batch(batch)]
    want = [library.polarity_scores(t)["compound"] for t in texts + texts[:300]]
    assert got == want
    scorer = make_scorer("sentiment")  # batches from 4 texts take compound_batch; fewer, compound
    assert [v for b in batches(texts[:500], seed) for v in scorer(None, b)] == want[:500]
    assert [scorer(None, [t])[0] for t in texts[:200]] == want[:200]


@pytest.mark.parametrize("dense", [True, False])
def test_ngram_fluency_batch_paths_equal_the_definition(dense):
    from lmgym.envs.generate import keywords_task

    refs = [r for ex in keywords_task().examples("train")[:3000] for r in ex.references]
    lm = NgramFluency(refs)
    if not dense:
        lm.dense_logs_up_to = 0  # the log of each bigram's probability, one by one
    texts = task_word_texts("lmgym/Keywords-v0", 1500, 30) + corpus_texts(100)
    rng = random.Random(3)
    glued = ["dog.", "(cat", "it's", "a,b", "Éa!", "x--y", "...", "İstanbul", "ΑΣ", "_"]
    texts += [" ".join(rng.choice(glued + t.split()[:5]) for _ in range(rng.randint(0, 12))) for t in texts[:800]]
    texts += ["", "   ", "!", "the the the"]
    rng.shuffle(texts)
    want = [fluency_definition(lm, t) for t in texts]
    assert [v for b in batches(texts, 5) for v in lm(None, b)] == want
    assert [lm(None, [t])[0] for t in texts[:300]] == want[:300]


def test_token_accuracy_equals_its_definition():
    rng = random.Random(0)
    vocab = ["a", "b", "c", "d", "A"]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 8))) for _ in range(2000)]
    refs = [[rng.choice(texts) for _ in range(rng.randint(1, 3))] for _ in texts]

    def definition(c: str, rs: list[str]) -> float:
        best = 0.0
        for r in rs:
            w, ref = c.split(), r.split()
            denom = max(len(w), len(ref))
            best = max(best, 1.0 if denom == 0 else sum(x == y for x, y in zip(w, ref)) / denom)
        return best

    scorer = make_scorer("token_accuracy")
    assert scorer(None, texts, refs) == [definition(c, rs) for c, rs in zip(texts, refs)]
    assert scorer(None, texts, refs) == [definition(c, rs) for c, rs in zip(texts, refs)]  # remembered references


def test_checked_score_converts_and_names_bad_values():
    def returning(values):
        return make_scorer(lambda prompts, completions, references=None: values)

    assert checked_score(returning([1, 2.5, np.float32(0.5), True]), [""] * 4, ["a"] * 4) == [1.0, 2.5, 0.5, 1.0]
    with pytest.raises(ScorerError, match="returned inf for input 0"):
        checked_score(returning([float("inf"), "x"]), [""] * 2, ["a", "b"])
    with pytest.raises(ScorerError, match="non-number 'x' for input 1"):
        checked_score(returning([0.5, "x"]), [""] * 2, ["a", "b"])
    with pytest.raises(ScorerError, match="returned nan for input 1"):
        checked_score(returning([0.5, float("nan")]), [""] * 2, ["a", "b"])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_repetition_batch_path_equals_its_definition(n):
    import re

    rng = random.Random(n)
    vocab = ["a", "b", "A", "b_c", "x1", "it's", "!", "dog.", "Éa", "ΑΣ", "猫", ",", ""]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 14))) for _ in range(3000)]
    texts += task_word_texts("lmgym/PositiveReview-v0", 1000, 30) + corpus_texts(100)
    rng.shuffle(texts)

    def definition(t: str) -> float:
        w = re.findall(r"\w+", t.lower())
        grams = [tuple(w[j : j + n]) for j in range(len(w) - n + 1)]
        return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)

    rep = make_scorer("repetition", n=n)
    assert [v for b in batches(texts, n) for v in rep(None, b)] == [definition(t) for t in texts]
    assert [rep(None, [t])[0] for t in texts[:300]] == [definition(t) for t in texts[:300]]


def test_weighted_sum_combine_batch_equals_the_plain_sum():
    from lmgym.scorers.base import WeightedSum, score_with_detail_columns, score_with_details

    rng = np.random.default_rng(0)
    scorer = WeightedSum({"length": 0.3, "repetition": -1.7, "token_f1": 1e-3})
    for n in (1, 7, 8, 50):
        parts = {name: rng.choice([0.0, -0.0, 1.0, 0.1, 1 / 3, -2.5e-8], n).tolist() for name, _, _ in scorer.parts}
        plain = [sum(w * v for w, v in zip([0.3, -1.7, 1e-3], values)) for values in zip(*parts.values())]
        assert scorer.combine(parts) == plain
    texts = ["a b a b", "a", "", "b c d"] * 5
    refs = [["a b"], ["a"], ["x"], ["b c"]] * 5
    scores, columns = score_with_detail_columns(scorer, [""] * 20, texts, refs)
    assert (scores, [dict(zip(columns, v)) for v in zip(*columns.values())]) == \
        score_with_details(scorer, [""] * 20, texts, refs)
    assert scores == [scorer(None, [t], [r])[0] for t, r in zip(texts, refs)]
