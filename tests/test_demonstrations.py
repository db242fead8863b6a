"""The -v1 text envs: v0's episodes and rewards, plus warm-start demonstrations from imperfect writers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

import lmgym
from lmgym.envs import demonstrations
from lmgym.errors import TaskError
from lmgym.scorers import make_scorer

TEXT_TASKS = ["Summarize", "Translate", "PositiveReview", "Keywords"]


def _train(env_id: str, **kwargs):
    return gym.make(env_id, **kwargs).unwrapped.task.examples("train")


@pytest.mark.parametrize("task", TEXT_TASKS)
def test_v1_has_v0_episodes_and_rewards(task):
    v0, v1 = gym.make(f"lmgym/{task}-v0"), gym.make(f"lmgym/{task}-v1")
    assert v1.unwrapped.demo_error_rate == demonstrations.V1_ERROR_RATE
    assert v0.unwrapped.demo_error_rate == 0.0
    for seed in range(3):
        _, i0 = v0.reset(seed=seed)
        _, i1 = v1.reset(seed=seed)
        assert (i0["prompt"], i0["references"]) == (i1["prompt"], i1["references"])
        rng = np.random.default_rng(seed)
        for _ in range(5):
            action = int(rng.integers(4, v0.action_space.n))  # no special tokens: the episode goes on
            r0 = v0.step(action)
            r1 = v1.step(action)
            assert r0[1:4] == r1[1:4]
    ex0, ex1 = _train(f"lmgym/{task}-v0"), _train(f"lmgym/{task}-v1")
    assert [e.references for e in ex0] == [e.references for e in ex1]
    assert all(e.demonstrations == () and e.targets == e.references for e in ex0)


@pytest.mark.parametrize("task", TEXT_TASKS)
def test_v1_demonstrations_rate_vocabulary_and_determinism(task):
    env = gym.make(f"lmgym/{task}-v1").unwrapped
    examples = env.task.examples("train")
    vocab = env.tokenizer.get_vocab()
    pairs = [(d, r) for e in examples for d, r in zip(e.demonstrations, e.references, strict=True)]
    assert len(pairs) == sum(len(e.references) for e in examples)
    changed = np.mean([d != r for d, r in pairs])
    # The habit fires on 60% of demonstrations; a few habits leave some references unchanged.
    assert 0.3 < changed <= 0.62
    assert all(w in vocab for d, _ in pairs for w in d.split())
    assert all(e.targets == e.demonstrations for e in examples)
    again = demonstrations.with_demonstrations({"train": list(env.task.examples("train")[:50])},
                                               env.demonstration_habit(), env.corpus_seed, 0.6)
    assert [e.demonstrations for e in again["train"]] == [e.demonstrations for e in examples[:50]]


def test_review_demonstrations_are_mixed_sentiment():
    vader = SentimentIntensityAnalyzer()
    examples = _train("lmgym/PositiveReview-v1")[:600]
    refs = [vader.polarity_scores(e.references[0])["compound"] for e in examples]
    demos = [vader.polarity_scores(e.demonstrations[0])["compound"] for e in examples]
    assert np.mean(refs) > 0.8
    assert np.mean(np.array(demos) < 0) > 0.25  # about 30% negative continuations
    assert np.mean(demos) < 0.4


def test_keywords_demonstrations_drop_the_place():
    env = gym.make("lmgym/Keywords-v1").unwrapped
    coverage = make_scorer("keyword_coverage")
    examples = env.task.examples("train")[:600]
    with_place = [e for e in examples if set(e.source.split()) & set(demonstrations.keywords_corpus.PLACES)]
    assert len(with_place) > 200
    kws = [e.meta["keywords"] for e in with_place]
    refs = coverage([e.prompt for e in with_place], [e.references[0] for e in with_place], keywords=kws)
    demos = coverage([e.prompt for e in with_place], [e.demonstrations[0] for e in with_place], keywords=kws)
    assert np.mean(refs) == 1.0
    assert 0.8 < np.mean(demos) < 0.95  # 60% of them miss one of four concepts


def test_summary_demonstrations_copy_the_lead():
    examples = _train("lmgym/Summarize-v1")
    rouge = make_scorer("rouge")
    moved = [e for e in examples[:600] if e.demonstrations[0] != e.references[0]]
    assert 0.55 < len(moved) / 600 < 0.65
    for e in moved:
        assert e.source.startswith(e.demonstrations[0][:-2])
    refs = [e.references for e in moved]
    demo_scores = rouge([e.prompt for e in moved], [e.demonstrations[0] for e in moved], refs)
    assert np.mean(demo_scores) < 0.3  # lead-1 is a poor summary


def test_translate_demonstrations_drop_particles():
    en_xx = _train("lmgym/Translate-v1")
    assert any("ka" in e.references[0].split() for e in en_xx)
    dropped = [e for e in en_xx if e.demonstrations[0] != e.references[0]]
    assert all(not {"ka", "ti"} & set(e.demonstrations[0].split()) for e in dropped)
    xx_en = _train("lmgym/Translate-v1", direction="xx-en")
    assert all(not {"the", "a", "an"} & set(e.demonstrations[0].split())
               for e in xx_en if e.demonstrations[0] != e.references[0])


@pytest.mark.parametrize("rate", [-0.1, 1.5, "x", None])
def test_bad_error_rate_is_a_task_error(rate):
    with pytest.raises(TaskError, match="demo_error_rate"):
        gym.make("lmgym/Keywords-v0", demo_error_rate=rate)


def test_error_rate_one_and_v0_kwarg():
    env = gym.make("lmgym/Translate-v0", demo_error_rate=1.0).unwrapped
    assert all(e.demonstrations[0] != e.references[0] for e in env.task.examples("train")[:200]
               if {"ka", "ti"} & set(e.references[0].split()))
    assert lmgym.env_ids().count("lmgym/Translate-v1") == 1


def test_sft_data_reads_the_demonstrations():
    torch = pytest.importorskip("torch")
    from lmgym.agents.ppo.sft import build_sft_data

    env = gym.make("lmgym/Translate-v1").unwrapped
    data = build_sft_data(env, "train", max_examples=20)
    tok = env.tokenizer
    for row, example in enumerate(env.task.examples("train")[:20]):
        ids = data.response_ids[row][data.response_mask[row].bool()].tolist()
        assert tok.decode(ids[:-1]) == example.demonstrations[0]
        assert ids[-1] == env.eos_token_id
    assert isinstance(data.response_ids, torch.Tensor)


def test_demonstrator_baseline_writes_the_demonstrations():
    from lmgym.evaluate import evaluate

    v0 = evaluate("lmgym/Translate-v0", "demonstrator", episodes=50)
    assert v0["mean"] == 1.0  # no demonstrations: the references
    v1 = evaluate("lmgym/Translate-v1", "demonstrator", episodes=50)
    assert 0.6 < v1["mean"] < 0.95  # 60% of them drop particles
