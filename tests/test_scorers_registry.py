"""Scorer registry, spec forms in gym.make, entry points, the catalog CLI, pickling, memoisation
and failure modes (each raises its typed error and the env keeps working)."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import textwrap

import gymnasium as gym
import pytest

import lmgym  # noqa: F401  (registers envs)
from lmgym.errors import ScorerError, UnknownScorerError
from lmgym.scorers import Scorer, WeightedSum, base, checked_score, make_scorer, register_scorer, scorer_names
from lmgym.scorers.catalog import main as catalog_main
from lmgym.scorers.catalog import scorer_table
from lmgym.scorers.fluency import NgramFluency
from lmgym.scorers.memo import Memoized

BUILTIN = [
    "exact_match",
    "token_accuracy",
    "token_f1",
    "rouge1",
    "rouge2",
    "rougeL",
    "rougeLsum",
    "rouge",
    "bleu",
    "chrf",
    "ter",
    "sentiment",
    "keyword_coverage",
    "repetition",
    "length",
    "ngram_fluency",
    "hf_sentiment",
    "embedding_similarity",
    "fluency_lm",
    "perplexity",
    "reward_model",
]
MODEL_BASED = {"hf_sentiment", "embedding_similarity", "fluency_lm", "perplexity", "reward_model"}
NEEDS_ARGS = {"ngram_fluency": {"corpus": ["the cat sat on the mat", "a dog ran"]}}


@pytest.fixture()
def registry_snapshot():
    """Restore the registry and the entry-point flag after a test that changes them."""
    saved, loaded = dict(base._REGISTRY), base._ENTRY_POINTS_LOADED
    yield
    base._REGISTRY.clear()
    base._REGISTRY.update(saved)
    base._ENTRY_POINTS_LOADED = loaded


def run_episode(env, words, seed=0):
    """Reset, write ``words`` (then EOS) and return the final (reward, info)."""
    env.reset(seed=seed)
    tok = env.unwrapped.tokenizer
    for w in [*words, "<eos>"]:
        obs, reward, terminated, truncated, info = env.step(tok.convert_tokens_to_ids(w))
        if terminated or truncated:
            return reward, info
    raise AssertionError("episode did not end")


def reference_words(env, seed=0):
    return env.reset(seed=seed)[1]["references"][0].split()


# ---- registry ------------------------------------------------------------------------------------
def test_builtins_registered_with_attributes():
    names = scorer_names()
    assert set(BUILTIN) <= set(names)
    for name in BUILTIN:
        if name in MODEL_BASED:
            continue
        s = make_scorer(name, **NEEDS_ARGS.get(name, {}))
        assert isinstance(s, Scorer) and s.name == name
        assert isinstance(s.higher_is_better, bool)
        lo, hi = s.range
        assert lo < hi


def test_import_lmgym_stays_light():
    code = (
        "import sys, lmgym; lmgym.scorer_names(); "
        "print([m for m in ('torch', 'rouge_score', 'sacrebleu', 'vaderSentiment', 'nltk') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_spec_form_works_in_gym_make():
    env = gym.make("lmgym/Copy-v0", length=3, vocab_size=4)
    words = reference_words(env)
    wrong = [words[0], "d" if words[1] != "d" else "a", words[2]]

    def half(prompts, completions, references=None, **meta):
        return [0.5] * len(completions)

    specs = {
        "name": ("token_accuracy", 2 / 3),
        "object": (make_scorer("exact_match"), 0.0),
        "callable": (half, 0.5),
        "weights": ({"token_accuracy": 1.0, "exact_match": 2.0}, 2 / 3),
        "scorer-keyed weights": ({make_scorer("token_f1"): 0.5, half: 1.0}, 0.5 * 2 / 3 + 0.5),
    }
    for label, (spec, expected) in specs.items():
        env = gym.make("lmgym/Copy-v0", length=3, vocab_size=4, scorer=spec)
        reward, info = run_episode(env, wrong)
        assert reward == pytest.approx(expected), label
        assert info["score"] == reward
    reward, info = run_episode(gym.make("lmgym/Copy-v0", length=3, vocab_size=4, scorer=specs["weights"][0]), words)
    assert reward == pytest.approx(3.0)
    assert info["score_details"] == {"token_accuracy": 1.0, "exact_match": 1.0}


def test_unknown_scorer_suggests_names():
    with pytest.raises(UnknownScorerError) as err:
        gym.make("lmgym/Copy-v0", scorer="rouge_l")
    msg = str(err.value)
    assert "Did you mean" in msg and "'rougeL'" in msg
    assert "Known scorers:" in msg and "token_accuracy" in msg and "chrf" in msg
    assert isinstance(err.value, ValueError)
    with pytest.raises(UnknownScorerError, match="'bleu'"):
        make_scorer("bleuu")


def test_register_scorer(registry_snapshot):
    def shouting(prompts, completions, references=None, **meta):
        """Fraction of upper-case letters."""
        return [sum(ch.isupper() for ch in c) / max(1, len(c)) for c in completions]

    register_scorer("shouting", shouting)
    assert "shouting" in scorer_names()
    s = make_scorer("shouting")
    assert s.name == "shouting" and s(["p"], ["AB"]) == [1.0]
    with pytest.raises(ValueError, match="already registered"):
        register_scorer("shouting", shouting)
    register_scorer("shouting", "lmgym.scorers.match:ExactMatch", override=True)
    assert make_scorer("shouting").name == "exact_match"
    row = next(r for r in scorer_table() if r["name"] == "shouting")
    assert row["library"] == "lmgym"


def test_make_scorer_rejects_bad_specs():
    with pytest.raises(TypeError, match="name, a Scorer"):
        make_scorer(42)
    with pytest.raises(TypeError, match="keyword arguments"):
        make_scorer(make_scorer("bleu"), lowercase=True)
    with pytest.raises(ScorerError, match="at least one"):
        WeightedSum({})


def test_entry_point_discovery(tmp_path, monkeypatch, registry_snapshot):
    dist = tmp_path / "fakepkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakepkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lmgym.scorers]\nvowel_rate = fake_lmgym_scorer:VowelRate\n")
    (tmp_path / "fake_lmgym_scorer.py").write_text(
        textwrap.dedent(
            '''
            from lmgym.scorers import Scorer

            class VowelRate(Scorer):
                """Fraction of vowels among letters."""

                name = "vowel_rate"
                library = "fakepkg"

                def __call__(self, prompts, completions, references=None, **meta):
                    out = []
                    for c in completions:
                        letters = [ch for ch in c.lower() if ch.isalpha()]
                        out.append(sum(ch in "aeiou" for ch in letters) / max(1, len(letters)))
                    return out
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    base._ENTRY_POINTS_LOADED = False
    assert "vowel_rate" in scorer_names()
    env = gym.make("lmgym/Copy-v0", length=3, vocab_size=4, scorer="vowel_rate")
    reward, info = run_episode(env, ["a", "b"])
    assert reward == pytest.approx(0.5)
    row = next(r for r in scorer_table() if r["name"] == "vowel_rate")
    assert row["library"] == "fakepkg" and row["description"] == "Fraction of vowels among letters."
    # a broken entry point shows up in the table instead of breaking it
    register_scorer("broken", "no_such_module_xyz:Thing")
    assert "cannot import" in next(r for r in scorer_table() if r["name"] == "broken")["description"]


# ---- catalog CLI ---------------------------------------------------------------------------------
def test_catalog_cli(capsys):
    from lmgym.cli import main as cli_main

    assert cli_main(["scorers"]) == 0
    text = capsys.readouterr().out
    for name in BUILTIN:
        assert name in text
    assert catalog_main(["--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["ter"]["range"] == "[0, inf)" and rows["ter"]["higher_is_better"] == "no"
    assert rows["sentiment"]["range"] == "[-1, 1]" and rows["sentiment"]["library"] == "vaderSentiment"
    assert rows["reward_model"]["range"] == "(-inf, inf)" and rows["reward_model"]["extra"] == "agents"
    assert rows["bleu"]["library"] == "sacrebleu" and rows["bleu"]["extra"] == ""
    # rows are read from the classes, not written by hand
    from lmgym.scorers.overlap import Chrf

    assert rows["chrf"]["description"] == Chrf.__doc__.strip().splitlines()[0]
    assert catalog_main(["--format", "markdown", "rouge", "bleu"]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| name | range |") and len(md) == 4
    with pytest.raises(UnknownScorerError):
        catalog_main(["rogue"])


# ---- pickling ------------------------------------------------------------------------------------
def test_every_builtin_pickles():
    prompts = ["p", "p", "p"]
    completions = ["the cat sat on the mat", "", "a dog ran in the park park"]
    references = [["the cat is on the mat"], ["x"], ["a dog runs in a park"]]
    meta = {"keywords": [["cat"], ["x"], ["dog", "run"]]}
    for name in BUILTIN:
        if name in MODEL_BASED:  # pickled in test_scorers_models.py with tiny models
            continue
        s = make_scorer(name, **NEEDS_ARGS.get(name, {}))
        before = s(prompts, completions, references, **meta)
        for scorer in (s, make_scorer(name, cache=True, **NEEDS_ARGS.get(name, {}))):
            clone = pickle.loads(pickle.dumps(scorer))
            assert clone(prompts, completions, references, **meta) == before, name
            assert clone.name == name and clone.range == s.range
    weighted = make_scorer({"sentiment": 1.0, NgramFluency(["a b c"]): 0.5, "repetition": -1.0})
    clone = pickle.loads(pickle.dumps(weighted))
    assert clone(prompts, completions) == weighted(prompts, completions)


# ---- memoisation ---------------------------------------------------------------------------------
def test_memoized_caches_per_input():
    calls = []

    def counting(prompts, completions, references=None, **meta):
        calls.append(list(completions))
        return [float(len(c)) for c in completions]

    memo = Memoized(counting, maxsize=3)
    assert memo(["p"] * 3, ["a", "bb", "a"]) == [1.0, 2.0, 1.0]
    assert calls == [["a", "bb"]] and (memo.hits, memo.misses) == (1, 2)
    assert memo(["p", "p"], ["bb", "ccc"]) == [2.0, 3.0]
    assert calls[-1] == ["ccc"]
    # the key includes the prompt, the references and the meta
    memo(["q"], ["bb"])
    memo(["p"], ["bb"], [["r"]], keywords=[["k"]])
    assert calls[-2:] == [["bb"], ["bb"]]
    assert len(memo._cache) == 3  # maxsize: least recently used entries dropped
    memo.clear()
    assert (memo.hits, memo.misses) == (0, 0)


def test_cache_flag_on_make_scorer():
    s = make_scorer("rouge1", cache=True)
    assert isinstance(s, Memoized) and s.name == "rouge1" and s.range == (0.0, 1.0)
    refs = [["a b c"]] * 2
    assert s(["p", "p"], ["a b", "a b"], refs) == make_scorer("rouge1")(["p", "p"], ["a b", "a b"], refs)
    assert s.hits == 1
    weighted = make_scorer({"token_accuracy": 1.0, "exact_match": 1.0}, cache=10)
    assert isinstance(weighted, WeightedSum) and all(isinstance(p, Memoized) for _, p, _ in weighted.parts)
    env = gym.make("lmgym/Copy-v0", length=3, vocab_size=4, scorer=weighted)
    _, info = run_episode(env, reference_words(env))
    assert info["score_details"] == {"token_accuracy": 1.0, "exact_match": 1.0}


# ---- failure modes -------------------------------------------------------------------------------
def test_weighted_sum_range_and_duplicate_names():
    w = make_scorer({"sentiment": 2.0, "repetition": -1.0})
    assert w.range == (-3.0, 2.0)
    dup = make_scorer({"rouge1": 1.0, make_scorer("rouge1", use_stemmer=False): 1.0})
    assert [n for n, _, _ in dup.parts] == ["rouge1", "rouge1#2"]


@pytest.mark.parametrize(
    ("bad_value", "message"),
    [(math.nan, "nan"), (math.inf, "inf"), ("high", "non-number"), (None, "non-number")],
)
def test_bad_values_name_scorer_and_index(bad_value, message):
    def bad(prompts, completions, references=None, **meta):
        return [1.0 if i != 1 else bad_value for i in range(len(completions))]

    with pytest.raises(ScorerError, match=rf"'bad'.*{message}.*input 1|'bad'.*input 1.*{message}"):
        checked_score(make_scorer(bad), ["p"] * 3, ["a", "b", "c"])


def test_raising_scorer_names_failing_input():
    def picky(prompts, completions, references=None, **meta):
        if any("boom" in c for c in completions):
            raise KeyError("boom")
        return [1.0] * len(completions)

    with pytest.raises(ScorerError, match=r"'picky' raised KeyError.*input 2 \('a boom'\)") as err:
        checked_score(make_scorer(picky), ["p"] * 3, ["a", "b", "a boom"])
    assert isinstance(err.value.__cause__, KeyError)
    with pytest.raises(ScorerError, match="returned 1 values for 2 inputs"):
        checked_score(make_scorer(lambda p, c, r=None, **m: [1.0]), ["p", "p"], ["a", "b"])
    # a failing part of a weighted sum is named
    with pytest.raises(ScorerError, match="'picky'"):
        make_scorer({"token_f1": 1.0, picky: 1.0})(["p"], ["boom"], [["x"]])


@pytest.mark.parametrize("failure", ["raise", "nan", "inf", "count"])
def test_env_survives_failing_scorer(failure):
    """A scorer that fails on completions containing 'a' raises without changing the episode."""

    def flaky(prompts, completions, references=None, **meta):
        out = [1.0] * len(completions)
        if not any("a" in c.split() for c in completions):
            return out
        if failure == "raise":
            raise RuntimeError("scorer crashed")
        if failure == "count":
            return [*out, 1.0]
        return [math.nan if failure == "nan" else math.inf] * len(completions)

    env = gym.make("lmgym/Copy-v0", length=3, vocab_size=4, scorer=flaky)
    with pytest.raises(ScorerError, match="'flaky'"):
        run_episode(env, ["a", "b"])
    step = env.unwrapped._obs()["step"][0]
    with pytest.raises(ScorerError, match="'flaky'"):  # the failed step did not happen: it can be retried
        env.step(env.unwrapped.eos_token_id)
    assert env.unwrapped._obs()["step"][0] == step
    reward, info = run_episode(env, ["b", "c"], seed=1)  # reset + step still work
    assert reward == 1.0 and info["completion"] == "b c"


def test_missing_meta_is_a_scorer_error_and_env_recovers():
    env = gym.make("lmgym/Copy-v0", length=3, vocab_size=4, scorer="keyword_coverage")
    with pytest.raises(ScorerError, match=r"'keyword_coverage' raised ValueError.*keywords.*input 0"):
        run_episode(env, ["a"])
    env.reset(seed=1)
    assert env.step(env.unwrapped.tokenizer.convert_tokens_to_ids("a"))[1] == 0.0
