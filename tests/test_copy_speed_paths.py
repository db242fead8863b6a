"""The native vector env's token-level paths (issue #16, Copy's short episodes) give exactly what the text paths give.

- :meth:`WordIds.read` decodes as ``TokenEnv.decode_batch`` and gives the words that splitting the text gives;
- :meth:`TokenAccuracy.score_word_ids` equals ``token_accuracy`` on the texts, with several references, empty
  texts, references cut at the width and words no token spells;
- the native env, which scores ``token_accuracy`` from token ids, matches ``SyncVectorEnv`` step for step on a task
  with several references per example and words outside the vocabulary, and when slots play different splits.
Equality is exact (``==``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv
from test_vector_env import compare, same_infos

import lmgym  # noqa: F401  (registers the envs)
from lmgym.scorers import make_scorer
from lmgym.task import Example, Task
from lmgym.token_env import TokenEnv
from lmgym.vector_env import BatchedTokenEnv
from lmgym.word_ids import WordBatch, WordIds


def random_responses(env: TokenEnv, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` responses of random ids (special tokens included) and random ends, as the native env holds them."""
    R = env.max_new_tokens
    ids = rng.integers(0, env.vocab_size, (n, R))
    ends = rng.integers(0, R + 1, n)
    if rng.random() < 0.5:  # every response full: the fast path of read
        ends[:] = R
    if rng.random() < 0.5:  # no special tokens
        words = np.setdiff1d(np.arange(env.vocab_size), env.tokenizer.all_special_ids)
        ids = rng.choice(words, (n, R))
    return ids, ends


@pytest.mark.parametrize("env_id", ["lmgym/Copy-v0", "lmgym/Reverse-v0", "lmgym/Translate-v0", "lmgym/Keywords-v0"])
def test_read_decodes_as_decode_batch_and_splits_into_words(env_id):
    env = gym.make(env_id).unwrapped
    ids_of = WordIds.from_table(env.word_table(), env.vocab_size)
    assert ids_of is not None and ids_of.one_word
    rng = np.random.default_rng(0)
    for _ in range(200):
        ids, ends = random_responses(env, rng, int(rng.integers(1, 9)))
        texts, words, lengths = ids_of.read(ids, ends)
        assert texts == env.decode_batch([row[:end] for row, end in zip(ids.tolist(), ends.tolist())])
        for text, row, n in zip(texts, words.tolist(), lengths.tolist()):
            assert row[:n] == [ids_of.word_of_text[w] for w in text.split()]
            assert all(w < 0 for w in row[n:])


def test_word_ids_share_an_id_for_tokens_with_one_text_and_mark_texts_of_several_words():
    ids_of = WordIds({0: "", 1: "a", 2: "b", 3: "a"}, 4)
    assert ids_of.token_word.tolist() == [-1, 1, 2, 1] and ids_of.one_word
    assert not WordIds({0: "", 1: "a b"}, 2).one_word
    assert WordIds.from_table({0: ""}, 2) is None and WordIds.from_table(None, 2) is None


def test_token_accuracy_word_ids_equal_the_texts_scores():
    rng = np.random.default_rng(1)
    vocab = ["a", "b", "c", "d", "e"]
    ids_of = WordIds({0: "", **{i + 1: w for i, w in enumerate(vocab)}}, len(vocab) + 1)
    scorer = make_scorer("token_accuracy")
    width = 6
    for trial in range(300):
        B = int(rng.integers(1, 12))
        completions = [" ".join(rng.choice(vocab, int(rng.integers(0, width + 1)))) for _ in range(B)]
        # 0-3 references each, up to 9 words (cut at the width), some words no token spells ("zz")
        refs = [tuple(" ".join(rng.choice([*vocab, "zz"], int(rng.integers(0, 10)))) for _ in range(rng.integers(0, 4)))
                for _ in range(B)]
        examples = [Example(source="", prompt="", references=r) for r in refs]
        tables, ref_lengths = ids_of.references(f"batch{trial}", examples, width)
        words = np.full((B, width), -2, np.int64)
        for i, c in enumerate(completions):
            words[i, : len(c.split())] = [ids_of.word_of_text[w] for w in c.split()]
        lengths = np.array([len(c.split()) for c in completions])
        batch = WordBatch(words, lengths, ids_of.texts, completions, [""] * B, [list(r) for r in refs],
                          reference_ids=lambda found=(tables, ref_lengths): found)
        got = scorer.score_word_ids(batch)
        assert got.dtype == np.float64
        assert got.tolist() == scorer(None, completions, [list(r) for r in refs])


def multi_reference_task() -> Task:
    """Copy-like examples with 1-3 references, some with words outside the vocabulary."""
    rng = np.random.default_rng(5)
    vocab = ["a", "b", "c", "d"]
    splits = {}
    for split, n in (("train", 40), ("validation", 7)):
        examples = []
        for _ in range(n):
            source = " ".join(rng.choice(vocab, int(rng.integers(1, 5))))
            refs = tuple(" ".join(rng.choice([*vocab, "out"], int(rng.integers(0, 6))))
                         for _ in range(rng.integers(1, 4)))
            examples.append(Example(source=source, prompt=source + " =", references=refs))
        splits[split] = examples
    return Task(name="multi", splits=splits, vocabulary=[*vocab, "="])


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_native_token_accuracy_matches_sync_with_several_references(mode):
    task = multi_reference_task()
    make = lambda: TokenEnv(task, scorer="token_accuracy", max_new_tokens=4)
    native = BatchedTokenEnv(5, env=make(), autoreset_mode=mode)
    assert native.scores_from_word_ids
    sync = SyncVectorEnv([make] * 5, autoreset_mode=native.autoreset_mode)
    a, _ = native.reset(seed=3)
    b, _ = sync.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(120):
        actions = rng.integers(0, native.single_action_space.n, 5)
        a, ra, ta, ua, ia = native.step(actions)
        b, rb, tb, ub, ib = sync.step(actions)
        assert ra.tolist() == rb.tolist() and (ta == tb).all() and (ua == ub).all()
        same_infos(ia, ib)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_native_copy_matches_sync_when_slots_play_different_splits():
    # Reset into validation; episodes restarted by autoreset play the env's split (train): the slots mix splits.
    compare("lmgym/Copy-v0", "next_step", steps=60, eos_rate=0.3)
    native = gym.make_vec("lmgym/Copy-v0", num_envs=4, vectorization_mode="vector_entry_point")
    sync = gym.make_vec("lmgym/Copy-v0", num_envs=4, vectorization_mode="sync")
    native.reset(seed=1, options={"split": "validation"})
    sync.reset(seed=1, options={"split": "validation"})
    rng, eos = np.random.default_rng(2), native.env.eos_token_id
    splits = set()
    for _ in range(60):
        actions = np.where(rng.random(4) < 0.3, eos, rng.integers(4, native.single_action_space.n, 4))
        _, ra, ta, ua, ia = native.step(actions)
        _, rb, tb, ub, ib = sync.step(actions)
        assert ra.tolist() == rb.tolist() and (ta == tb).all() and (ua == ub).all()
        same_infos(ia, ib)
        if "split" in ia:
            splits.add(tuple(ia["split"][ia["_split"]]))
    assert any(len(set(s)) > 1 for s in splits)  # some step ended episodes of both splits


def test_copy_scores_from_word_ids_and_other_scorers_from_text():
    def envs(**kwargs):
        return gym.make_vec("lmgym/Copy-v0", num_envs=2, vectorization_mode="vector_entry_point", **kwargs)

    assert envs().scores_from_word_ids
    assert not envs(scorer="exact_match").scores_from_word_ids
    assert envs(scorer={"token_accuracy": 1.0}).scores_from_word_ids  # a weighted sum of parts with the path
    assert not envs(scorer={"exact_match": 1.0}).scores_from_word_ids  # ... and of parts without it

    class Stricter(type(make_scorer("token_accuracy"))):  # a subclass with its own __call__: the text path
        def __call__(self, prompts, completions, references=None, **meta):
            return [0.0] * len(completions)

    plain = envs(scorer=Stricter())
    assert not plain.scores_from_word_ids
    plain.reset(seed=0)
    _, r, term, _, _ = plain.step(np.full(2, plain.env.eos_token_id))
    assert term.all() and r.tolist() == [0.0, 0.0]
