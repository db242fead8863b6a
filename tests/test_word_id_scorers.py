"""Scorers' word-id paths (:mod:`lmgym.word_ids`) give exactly what the scorers give on the decoded texts.

- ``sentiment``, ``ngram_fluency``, ``keyword_coverage`` and ``repetition`` (n = 1, 2, 3) on random batches over
  vocabularies built to hit every VADER rule (negations, boosters, idioms, "but", ALL CAPS, glued punctuation,
  emoji, non-ASCII) and over the built-in tasks' own vocabularies; the VADER memos are kept small so they empty
  during the run;
- a path declines (``None``) where a vocabulary word holds several of the scorer's tokens;
- a weighted sum scores part by part: word ids where a part has the path and accepts the batch, texts where not;
  a subclass that changes how the sum is made gets no word-id path;
- the native PositiveReview and Keywords envs score from word ids and give SyncVectorEnv's rewards and details.
Equality is exact (``==``).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from test_scorers_fast_paths import vader_texts
from test_vector_env import same_infos

import lmgym  # noqa: F401  (registers the envs)
from lmgym.errors import ScorerError
from lmgym.scorers import WeightedSum, make_scorer
from lmgym.scorers.base import checked_score, score_with_detail_columns
from lmgym.scorers.fluency import NgramFluency, fluency_tokens
from lmgym.scorers.lexical import words
from lmgym.scorers.vader import VaderCompound
from lmgym.word_ids import WordBatch, WordIds, WordScoring


def word_ids(vocab: list[str]) -> WordIds:
    """A word-level table: id 0 decodes to nothing (a special token), ids 1.. are ``vocab``."""
    return WordIds({0: "", **{i + 1: w for i, w in enumerate(vocab)}}, len(vocab) + 1)


def batches(ids_of: WordIds, rng: np.random.Generator, count: int, width: int = 24):
    """``count`` random batches (1-40 texts, random ends, some special tokens): ``(texts, WordBatch)``."""
    V = len(ids_of.texts)
    for _ in range(count):
        B = int(rng.integers(1, 41))
        ids = rng.integers(0, V, (B, width))
        ends = rng.integers(0, width + 1, B) if rng.random() < 0.5 else np.full(B, width)
        texts, words, lengths = ids_of.read(ids, ends)
        yield texts, WordBatch(words, lengths, ids_of.texts, texts, [""] * B, [[] for _ in range(B)])


def vader_vocabulary() -> list[str]:
    return sorted({w for t in vader_texts(3000, seed=1) for w in t.split()})


def review_env(**kwargs):
    return gym.make_vec("lmgym/PositiveReview-v1", num_envs=2, vectorization_mode="vector_entry_point", **kwargs)


def test_sentiment_word_ids_equal_polarity_scores():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    library = SentimentIntensityAnalyzer()
    ids_of, rng = word_ids(vader_vocabulary()), np.random.default_rng(0)
    scorer = make_scorer("sentiment")
    scorer._vader = VaderCompound(maxsize=3_000)  # small: the memos (and the vocabulary's rows) empty too
    checked = 0
    for k, (texts, batch) in enumerate(batches(ids_of, rng, 240)):
        got = scorer.score_word_ids(batch)
        assert got == make_scorer("sentiment")(None, texts)
        if k % 6 == 0:
            assert got == [library.polarity_scores(t)["compound"] for t in texts]
            checked += len(texts)
    assert checked > 500


@pytest.mark.parametrize("n", [1, 2, 3])
def test_repetition_word_ids_equal_the_texts_scores(n):
    vocab = [w for w in vader_vocabulary() if len(words(w)) < 2]  # ("can't" holds two word tokens: no path)
    ids_of, rng = word_ids(vocab), np.random.default_rng(n)
    scorer = make_scorer("repetition", n=n)
    for texts, batch in batches(ids_of, rng, 300, width=int(rng.integers(1, 12))):
        got = scorer.score_word_ids(batch)
        assert got.dtype == np.float64 and got.tolist() == scorer(None, texts)


def test_fluency_word_ids_equal_the_texts_scores():
    from lmgym.envs.generate import review_task

    refs = [r for ex in review_task().examples("train")[:2000] for r in ex.references]
    lm = NgramFluency(refs)
    vocab = [*sorted({w for r in refs[:300] for w in r.split()}), "zzz", "UNSEEN", "!", "Éa", "❤", "<s>", "</s>"]
    vocab = [w for w in vocab if len(fluency_tokens(w)) == 1]  # ("<s>" is three tokens, "<", "s", ">": no path)
    ids_of, rng = word_ids(vocab), np.random.default_rng(3)
    for texts, batch in batches(ids_of, rng, 300):
        assert lm.score_word_ids(batch) == lm(None, texts)
    assert NgramFluency(refs, n=3).score_word_ids(batch) is None  # the batched path is for bigrams


@pytest.mark.parametrize("stem", [True, False])
def test_keyword_coverage_word_ids_equal_the_texts_scores(stem):
    from lmgym.envs.generate import keywords_task

    examples = keywords_task().examples("train")[:400]
    vocab = [*sorted({w for e in examples for r in e.references for w in r.split()}), "Dogs", "running", "!", "x_1"]
    ids_of, rng = word_ids(vocab), np.random.default_rng(6)
    scorer = make_scorer("keyword_coverage", stem=stem)
    extra = [[], ["zebra"], ["runs", "dog"], "room, write", ("Doctor",)]  # none, not in the vocabulary, a string...
    for texts, batch in batches(ids_of, rng, 300, width=12):
        keywords = [examples[int(k)].meta["keywords"] if rng.random() < 0.8 else extra[int(rng.integers(5))]
                    for k in rng.integers(0, len(examples), len(texts))]
        batch.meta = {"keywords": keywords}
        assert scorer.score_word_ids(batch) == scorer(None, texts, keywords=keywords)
    batch.meta = {"keywords": [["ice cream"]] * len(texts)}  # a keyword of two words: the texts' path
    assert scorer.score_word_ids(batch) is None
    batch.meta = {}  # no keywords: the texts' path, which names the fix
    assert scorer.score_word_ids(batch) is None


def test_paths_decline_words_of_several_tokens_and_weighted_sums_score_those_parts_on_text():
    from lmgym.envs.generate import review_task

    refs = [r for ex in review_task().examples("train")[:500] for r in ex.references]
    vocab = ["good", "bad", "not", "but", "very", "can't", "x,", "!", "GREAT", "the", "food"]
    ids_of, rng = word_ids(vocab), np.random.default_rng(4)
    repetition, fluency = make_scorer("repetition"), NgramFluency(refs)
    total = WeightedSum({"sentiment": 1.0, fluency: 1.0, repetition: -1.0, "exact_match": 0.5, "length": 0.25})
    assert WordScoring(total).usable
    declined = 0
    for texts, batch in batches(ids_of, rng, 200, width=6):
        several = any(w in ("can't", "x,") for t in texts for w in t.split())
        declined += several
        assert (repetition.score_word_ids(batch) is None) == any("can't" in t.split() for t in texts)
        assert (fluency.score_word_ids(batch) is None) == several  # ("can't": "can", "'", "t")
        refs_ = [[rng.choice(vocab)] for _ in texts]
        batch.references = refs_
        scores, details = WordScoring(total)(batch)
        want, want_details = score_with_detail_columns(total, batch.prompts, texts, refs_)
        assert scores == want and set(details) == set(want_details)
        assert all(details[k] == want_details[k] and all(type(v) is float for v in details[k]) for k in details)
    assert 20 < declined < 200

    class Doubled(WeightedSum):  # the sum made another way: no word-id path
        def combine(self, parts):
            return [2 * v for v in super().combine(parts)]

    assert not WordScoring(Doubled({"sentiment": 1.0})).usable
    assert not WordScoring(WeightedSum({"exact_match": 1.0})).usable

    class Uniform(NgramFluency):  # a model of its own: neither the word ids nor the batched tables apply
        def prob(self, word, context):
            return 0.5

    uniform = Uniform(refs)
    assert uniform.score_word_ids(batch) is None
    assert uniform(None, texts) == [uniform.score_text(t) for t in texts]
    assert uniform(None, ["good food", "bad"] * 3)[0] == 1.0 - math.log(2) / math.log(uniform.vocab_size)


def test_parts_without_a_path_get_the_texts_inputs_and_their_errors():
    def first_prompt_index(prompts, completions, references=None, **meta):  # needs a list of prompts
        return [float(prompts.index(p)) for p in prompts]

    native = gym.make_vec("lmgym/Keywords-v1", num_envs=3, vectorization_mode="vector_entry_point",
                          scorer={"repetition": 1.0, first_prompt_index: 1.0})
    assert native.scores_from_word_ids
    native.reset(seed=0)
    for _ in range(native.env.max_new_tokens + 1):
        _, reward, *_ = native.step(np.full(3, 5))
    assert reward.shape == (3,)
    scorer = make_scorer("keyword_coverage")
    ids_of = word_ids(["a", "b"])
    texts, words_, lengths = ids_of.read(np.array([[1, 2]]), np.array([2]))
    batch = WordBatch(words_, lengths, ids_of.texts, texts, [""], [[]], {"keywords": [[1, 2]]})
    assert scorer.score_word_ids(batch) is None  # keywords that are not text: the texts' path names the input
    with pytest.raises(ScorerError, match="keyword_coverage.*a keyword must be a string; got 1 .int.*input 0"):
        checked_score(scorer, [""], texts, None, keywords=[[1, 2]])


@pytest.mark.parametrize("env_id", ["lmgym/PositiveReview-v1", "lmgym/Keywords-v1"])
def test_native_text_tasks_score_from_word_ids_as_sync_does(env_id):
    n = 16
    native = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync")
    assert native.scores_from_word_ids
    native.reset(seed=5)
    sync.reset(seed=5)
    rng, eos = np.random.default_rng(5), native.env.eos_token_id
    ended = 0
    for _ in range(150):
        actions = np.where(rng.random(n) < 0.05, eos, rng.integers(0, native.single_action_space.n, n))
        _, ra, ta, ua, ia = native.step(actions)
        _, rb, tb, ub, ib = sync.step(actions)
        assert ra.tolist() == rb.tolist() and (ta == tb).all() and (ua == ub).all()
        same_infos(ia, ib)
        ended += int((ta | ua).sum())
    assert ended > 50


def test_review_env_without_word_level_tokens_scores_text():
    assert review_env().scores_from_word_ids
    assert not review_env(scorer="length").scores_from_word_ids


def test_native_env_scoring_from_word_ids_pickles_and_goes_on_alike():
    import pickle

    env = gym.make_vec("lmgym/PositiveReview-v1", num_envs=4, vectorization_mode="vector_entry_point")
    env.reset(seed=2)
    rng = np.random.default_rng(2)
    actions = rng.integers(0, env.single_action_space.n, (60, 4))
    for a in actions[:30]:
        env.step(a)
    copy = pickle.loads(pickle.dumps(env))
    assert copy.scores_from_word_ids
    for a in actions[30:]:
        assert env.step(a)[1].tolist() == copy.step(a)[1].tolist()
