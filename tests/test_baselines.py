"""Baseline agents: they run on every env and their scores are ordered random < simple < oracle."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import pytest

import lmgym  # noqa: F401
from lmgym.baselines import (
    TextPlanAgent,
    agent_names,
    keywords_template,
    learn_dictionary,
    make_agent,
    run_episode,
    sentences,
)
from lmgym.errors import ConfigError
from lmgym.evaluate import evaluate

# env id -> agent -> (low, high): the measured validation means (README.md, Baselines) lie in these bands.
BANDS = {
    "lmgym/Summarize-v0": {"random": (0.0, 0.06), "lead-1": (0.05, 0.2), "lead-2": (0.12, 0.3),
                           "oracle": (0.99, 1.0)},
    "lmgym/Translate-v0": {"random": (0.1, 0.2), "dictionary": (0.35, 0.55), "oracle": (0.99, 1.0)},
    "lmgym/PositiveReview-v0": {"random": (-0.3, 0.4), "template": (0.9, 1.1), "oracle": (1.45, 1.7)},
    "lmgym/Keywords-v0": {"random": (0.0, 0.2), "template": (1.05, 1.3), "oracle": (1.5, 1.7)},
}


@pytest.mark.parametrize("env_id", BANDS)
def test_scores_are_ordered_random_simple_oracle(env_id):
    means = {agent: evaluate(env_id, agent, episodes=60, seed=0)["mean"] for agent in BANDS[env_id]}
    for agent, (low, high) in BANDS[env_id].items():
        assert low <= means[agent] <= high, (agent, means)
    ordered = list(means.values())
    assert ordered == sorted(ordered), means
    # Clear gaps: the simple baseline is well above random and well below the oracle.
    simple = ordered[-2]
    assert simple - ordered[0] > 0.1 and ordered[-1] - simple > 0.3, means


def test_xx_en_dictionary_is_between_random_and_oracle():
    means = {a: evaluate("lmgym/Translate-v0", a, episodes=40, direction="xx-en")["mean"]
             for a in ("random", "dictionary", "oracle")}
    assert means["random"] + 0.2 < means["dictionary"] < means["oracle"] - 0.3, means


def test_evaluate_is_reproducible_and_reports_details():
    a = evaluate("lmgym/Keywords-v0", "random", episodes=10, seed=3)
    b = evaluate("Keywords-v0", "random", episodes=10, seed=3)
    assert a["scores"] == b["scores"] and a["n"] == 10
    assert set(a["details"]) == {"keyword_coverage", "ngram_fluency"}
    assert evaluate("lmgym/Keywords-v0", "random", episodes=10, seed=4)["scores"] != a["scores"]


def test_oracle_writes_the_reference_then_eos():
    env = gym.make("lmgym/Summarize-v0")
    reward, info = run_episode(env, make_agent("oracle", env), seed=2)
    assert info["completion"] == info["references"][0] and reward == pytest.approx(1.0)


def test_lead_and_template_plans():
    assert sentences("a b . c d ! e ?") == ["a b .", "c d !", "e ?"]
    assert sentences("First one. Second one.") == ["First one.", "Second one."]
    assert keywords_template({"source": "dog ball park"}) == "the dog , the ball and the park ."
    env = gym.make("lmgym/Summarize-v0")
    agent = make_agent("lead-2", env)
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    assert isinstance(agent, TextPlanAgent)
    written = env.unwrapped.tokenizer.decode(agent._ids)
    assert written == " ".join(sentences(info["source"])[:2])


def test_learned_dictionary_finds_consistent_translations():
    pairs = [("the dog runs", "le chien court"), ("the cat runs", "le chat court"),
             ("a dog sleeps", "un chien dort"), ("a cat sleeps", "un chat dort"), ("the bird", "le oiseau"),
             ("a fish", "un poisson")]
    d = learn_dictionary(pairs)
    assert d["dog"] == "chien" and d["cat"] == "chat" and d["runs"] == "court" and d["sleeps"] == "dort"


def test_agent_names_and_errors():
    translate = gym.make("lmgym/Translate-v0")
    assert agent_names(translate) == ["random", "oracle", "demonstrator", "dictionary", "simple"]
    assert "lead-N" not in agent_names(gym.make("lmgym/Copy-v0"))
    with pytest.raises(ConfigError, match="Did you mean 'oracle'"):
        make_agent("oracel", translate)
    with pytest.raises(ConfigError, match="summarize"):
        make_agent("lead-3", translate)
    with pytest.raises(ConfigError, match="no 'simple' baseline"):
        make_agent("simple", gym.make("lmgym/Copy-v0"))
    with pytest.raises(ConfigError, match="N >= 1"):
        make_agent("lead-0", gym.make("lmgym/Summarize-v0"))
    with pytest.raises(ConfigError, match="episodes"):
        evaluate("lmgym/Copy-v0", "random", episodes=0)


def test_random_and_oracle_work_on_the_toy_envs():
    assert evaluate("lmgym/Copy-v0", "oracle", episodes=5)["mean"] == 1.0
    assert evaluate("lmgym/Copy-v0", "random", episodes=20)["mean"] < 0.3


def test_baselines_and_eval_do_not_import_torch():
    code = ("import sys, lmgym.baselines, lmgym.evaluate; "
            "lmgym.evaluate.evaluate('lmgym/Keywords-v0', 'template', 2); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
