"""Tool-use envs: Calculator-v0, ToolEnv.from_env, env-written tokens and the agent mask."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest

import lmgym
from lmgym.errors import ConfigError, TokenizerError
from lmgym.scorers.match import NumericMatch
from lmgym.tool_env import ToolEnv, ToolUseScorer, count_calls, strip_tool_segments
from lmgym.tools.call import Tool, as_tools
from lmgym.vector_env import BatchedTokenEnv


def calculator(**kwargs):
    return gym.make("lmgym/Calculator-v0", **kwargs).unwrapped


def write(env, text: str, eos: bool = False):
    """Step the words/pieces of ``text`` (and EOS); return the last step's outputs."""
    tokens = env.tokenizer.tokenize(text) if text else []
    ids = env.tokenizer.convert_tokens_to_ids(tokens) + ([env.eos_token_id] if eos else [])
    out = None
    for i in ids:
        out = env.step(i)
        if out[2] or out[3]:
            break
    return out


def response_text(env, obs) -> str:
    return env.decode(obs["response_ids"][: obs["step"][0]])


# ---- Calculator-v0 -----------------------------------------------------------------------------------------------
def test_calculator_call_result_and_reward():
    env = calculator()
    obs, info = env.reset(seed=3, options={"example_index": 0})
    a_op_b = info["prompt"]
    assert info["references"][0].isdigit() and "answer :" in a_op_b
    obs, reward, term, trunc, _ = write(env, "<call> 1234 * 5678 </call>")
    assert response_text(env, obs) == "<call> 1234 * 5678 </call> <result> 7006652 </result>"
    n = obs["step"][0]
    # The agent wrote <call>, 4 + 1 + 4 digit pieces and </call>; the env wrote <result>, 7 digits, </result>.
    assert obs["agent_mask"][:n].tolist() == [1] * 11 + [0] * 9
    assert obs["response_mask"][:n].sum() == n and obs["agent_mask"][n:].sum() == 0
    obs, reward, term, trunc, info = write(env, info["references"][0], eos=True)
    assert term and not trunc
    assert info["score_details"] == {"numeric_match": 1.0, "tool_calls": 1.0}
    assert reward == pytest.approx(1.0 - 0.05)
    assert info["completion"].endswith(info["references"][0])


def test_direct_answer_needs_no_call_and_wrong_answers_score_zero():
    env = calculator()
    _, info = env.reset(seed=0)
    *_, reward, _, _, info2 = (None, *write(env, info["references"][0], eos=True))
    assert reward == 1.0 and info2["score_details"]["tool_calls"] == 0.0
    env.reset(seed=0)
    *_, reward, _, _, _ = (None, *write(env, "12345678999", eos=True))
    assert reward == 0.0


@pytest.mark.parametrize("call, result", [
    ("1 / 0", "error: division by zero"),
    ("", "error: empty expression"),
    ("2 x 3", "error: bad expression"),
    ("9 ^ 9 ^ 9 ^ 9", "error: bad expression"),                 # huge power refused before it is computed
    ("(" * 200 + "1" + ")" * 200, "error: bad expression"),      # deep nesting
    ("1 +" * 300 + " 1", "error: bad expression"),              # too long
    ("99999999999999999999 * 9", "error: bad expression"),      # out of bounds
    ("2 ^ 10", "1024"),
])
def test_malformed_calls_give_error_results_not_crashes(call, result):
    env = calculator(max_new_tokens=2000)
    env.reset(seed=0)
    t0 = time.perf_counter()
    obs, *_ = write(env, f"<call> {call} </call>")
    assert time.perf_counter() - t0 < 5
    assert response_text(env, obs).endswith(f"<result> {result} </result>")


def test_unbalanced_nested_and_too_many_calls():
    env = calculator(max_calls=1, max_new_tokens=200)
    env.reset(seed=0)
    obs, *_ = write(env, "</call>")
    assert response_text(env, obs) == "</call> <result> error: call not opened </result>"
    obs, *_ = write(env, "<call> 1 <call> 2 </call>")
    assert response_text(env, obs).endswith("<result> error: nested call </result>")
    env.reset(seed=0)
    write(env, "<call> 2 + 2 </call>")
    obs, *_ = write(env, "<call> 3 + 3 </call>")
    assert response_text(env, obs).endswith("<call> 3 + 3 </call> <result> error: call limit reached </result>")
    obs, reward, term, _, info = write(env, "4", eos=True)
    assert term and info["score_details"]["tool_calls"] == 2.0  # every call is charged, the refused one too


def test_no_tool_variant_refuses_calls_and_demonstrations_never_call():
    env = calculator(max_calls=0)
    assert all("<call>" not in d for e in env.task.examples("train")[:200] for d in e.demonstrations)
    env.reset(seed=0)
    obs, *_ = write(env, "<call> 2 + 2 </call>")
    assert response_text(env, obs).endswith("<result> error: no tools </result>")
    with_tool = calculator()
    train = with_tool.task.examples("train")
    assert sum("<call>" in e.demonstrations[0] for e in train) / len(train) == pytest.approx(0.5, abs=0.03)


def test_a_result_that_does_not_fit_truncates_and_is_scored():
    env = calculator(max_new_tokens=13)
    env.reset(seed=0)
    obs, reward, term, trunc, info = write(env, "<call> 9999 * 9999 </call>")  # 11 tokens, then 2 of the result
    assert trunc and not term and obs["step"][0] == 13
    assert info["completion"] == "<call> 9999 * 9999 </call> <result> 9"
    assert info["score_details"]["tool_calls"] == 1.0 and reward == pytest.approx(-0.05)


def test_demonstrations_mark_the_env_written_tokens():
    env = calculator()
    demo = next(e.demonstrations[0] for e in env.task.examples("train") if "<call>" in e.demonstrations[0])
    ids = env.tokenizer(demo, add_special_tokens=False)["input_ids"]
    written = env.env_written_in(ids)
    tokens = env.tokenizer.convert_ids_to_tokens(ids)
    env_part = [t for t, w in zip(tokens, written) if w]
    assert env_part[0] == "<result>" and env_part[-1] == "</result>" and "</call>" not in env_part
    # Replaying the agent's part through the env gives exactly the demonstration.
    env.reset(seed=0)
    obs = None
    for token, w in zip(ids, written):
        if not w:
            obs, *_ = env.step(token)
    assert response_text(env, obs) == demo


def test_calculator_levels_and_bad_kwargs():
    easy = calculator(levels=1)
    assert {e.meta["difficulty"] for e in easy.task.examples("train")} == {1}
    for bad in ({"levels": 5}, {"levels": ()}, {"demo_call_rate": 2.0}, {"partial_credit": -1}, {"max_calls": -1}):
        with pytest.raises((ConfigError, ValueError)):
            calculator(**bad)


def test_numeric_match():
    score = NumericMatch()
    assert score([""] * 4, ["1,234", "the answer is 7", "", "-3"], [["1234"], ["8"], ["1"], ["-3"]]) == \
        [1.0, 0.0, 0.0, 1.0]
    assert NumericMatch(partial_credit=1.0)([""], ["90"], [["100"]]) == [pytest.approx(0.9)]
    assert "numeric_match" in lmgym.scorer_names()


# ---- the vector env equals the single env, tool calls included ------------------------------------------------------
def scripted_actions(env, rng, steps):
    """Random tokens with tool calls mixed in: well-formed calls, stray and nested tags."""
    tok = env.tokenizer
    pieces = ["<call> 12 * 34 </call>", "<call> 7 / 0 </call>", "</call>", "<call> 1 <call> 2 </call>", "408",
              "<call> 3 + 4 </call> 7"]
    out = []
    while len(out) < steps:
        if rng.random() < 0.5:
            out += tok.convert_tokens_to_ids(tok.tokenize(pieces[int(rng.integers(len(pieces)))]))
        else:
            out.append(int(rng.integers(4, env.vocab_size)))
        if rng.random() < 0.05:
            out.append(env.eos_token_id)
    return out[:steps]


@pytest.mark.parametrize("mode", ["next_step", "same_step", "disabled"])
def test_vector_env_matches_single_envs_with_tool_calls(mode):
    N, steps = 4, 300
    envs = gym.make_vec("lmgym/Calculator-v0", num_envs=N, vectorization_mode="vector_entry_point",
                        autoreset_mode=mode, max_new_tokens=24)
    singles = [calculator(max_new_tokens=24) for _ in range(N)]
    rng = np.random.default_rng(0)
    actions = np.array([scripted_actions(singles[0], rng, steps) for _ in range(N)])  # (N, steps)
    obs, _ = envs.reset(seed=7)
    single_obs = [s.reset(seed=7 + i)[0] for i, s in enumerate(singles)]
    restart = np.zeros(N, bool)
    ended = np.zeros(N, bool)
    calls = 0
    for t in range(steps):
        obs, rewards, term, trunc, infos = envs.step(actions[:, t])
        for i, s in enumerate(singles):
            if mode == "next_step" and restart[i]:
                single_obs[i], _ = s.reset()
                restart[i] = False
                continue
            if mode == "disabled" and ended[i]:
                continue
            o, r, te, tr, info = s.step(actions[i, t])
            assert (r, te, tr) == (rewards[i], term[i], trunc[i])
            if te or tr:
                calls += info["score_details"]["tool_calls"]
                got = infos["final_info"] if mode == "same_step" else infos
                assert got["completion"][i] == info["completion"]
                if mode == "same_step":
                    o, _ = s.reset()
                restart[i], ended[i] = mode == "next_step", True
            for key in o:
                assert np.array_equal(o[key], obs[key][i]), (t, i, key)
    assert calls >= 3


# ---- ToolEnv for any task -----------------------------------------------------------------------------------------
def lookup(word: str) -> str:
    return {"dog": "a small dog", "cat": "a cat"}.get(word.strip(), "unknown")


def test_tool_env_from_any_text_env_and_its_vector_env():
    env = ToolEnv.from_env("lmgym/Keywords-v1", tools={"lookup": lookup, "upper": str.upper}, call_penalty=0.1,
                           max_new_tokens=80)
    base = gym.make("lmgym/Keywords-v1").unwrapped
    assert env.vocab_size > base.vocab_size + 4 and "agent_mask" in env.observation_space.spaces
    from gymnasium.utils.env_checker import check_env

    check_env(env, skip_render_check=True)
    _, info = env.reset(seed=0)
    obs, *_ = write(env, "<call> lookup dog </call>")
    assert response_text(env, obs) == "<call> lookup dog </call> <result> a small dog </result>"
    obs, *_ = write(env, "<call> dog </call>")
    assert response_text(env, obs).endswith("<call> dog </call> <result> error: unknown tool dog </result>")
    reference = info["references"][0]
    obs, reward, term, _, info = write(env, reference, eos=True)
    assert term and info["score_details"]["tool_calls"] == 2.0
    plain = base.scorer([info["prompt"]], [reference], [info["references"]], **{
        k: [v] for k, v in env.task.examples("train")[info["example_index"]].meta.items()})[0]
    assert reward == pytest.approx(plain - 0.2)  # the answer is scored without the tool segments
    envs = BatchedTokenEnv(8, env=env, autoreset_mode="disabled")
    obs, _ = envs.reset(seed=0)
    assert obs["agent_mask"].shape == (8, env.max_new_tokens)


def test_tools_that_raise_hang_or_flood_give_error_results():
    def boom(text):
        raise RuntimeError("broken tool")

    def hang(text):
        time.sleep(30)

    env = ToolEnv.from_env("lmgym/Keywords-v1", tools=[
        Tool("boom", boom), Tool("hang", hang, timeout=0.2), Tool("flood", lambda s: "dog " * 10**6, max_chars=40)],
        max_calls=5, max_new_tokens=300, extra_words=["broken", "dog"])
    env.reset(seed=0)
    t0 = time.perf_counter()
    for name in ("boom", "hang", "flood"):
        write(env, f"<call> {name} dog </call>")
    assert time.perf_counter() - t0 < 3
    text = response_text(env, env._obs())
    assert "<call> boom dog </call> <result> error: broken tool </result>" in text  # "RuntimeError:" is <unk>
    assert "<call> hang dog </call> <result> error: timed out </result>" in text
    assert "<result> dog dog dog dog dog dog dog dog dog dog </result>" in text  # 40 characters of "dog "


def test_tool_env_bad_input():
    with pytest.raises(ConfigError):
        as_tools({})
    with pytest.raises(ConfigError):
        as_tools({"two words": str.upper})
    with pytest.raises(ConfigError):
        Tool("t", str.upper, timeout=-1)
    with pytest.raises(ConfigError):
        as_tools([Tool("a", str.upper), Tool("a", str.lower)])
    base = gym.make("lmgym/Keywords-v1").unwrapped
    with pytest.raises(TokenizerError, match="from_env"):
        ToolEnv(base.task, tools={"u": str.upper})  # a tokenizer without the tags
    with pytest.raises(ConfigError):
        ToolEnv.from_env(base, tools={"u": str.upper}, scorer="rouge")  # kwargs only with an env id


def test_tool_use_scorer_and_segments():
    text = "<call> 2 + 3 </call> <result> 5 </result> the answer is 5 <call> 1"
    assert strip_tool_segments(text) == "the answer is 5" and count_calls(text) == 1
    scorer = ToolUseScorer("numeric_match", call_penalty=0.25)
    assert scorer([""], [text], [["5"]]) == [0.75]
    assert scorer.details([""], [text], [["5"]]) == {"numeric_match": [1.0], "tool_calls": [1.0]}


def test_a_person_plays_the_calculator_tool_calls_included(capsys):
    import argparse
    import io

    from lmgym.cli import cmd_play

    keys = io.StringIO("<call> 1501 / 79 </call>\n19\n\nquit\n")
    assert cmd_play(argparse.Namespace(env="lmgym/Calculator-v0", seed=3), stdin=keys) == 0
    screen = capsys.readouterr().out
    assert "Tools (calculator)" in screen
    assert "completion : <call> 1501 / 79 </call> <result> 19 </result> 19" in screen
    assert "episode 1 over: reward 0.9500" in screen and "'tool_calls': 1.0" in screen


def test_baselines_leave_tool_results_to_the_env():
    from lmgym.baselines import make_agent

    env = gym.make("lmgym/Calculator-v0")
    for name, calls in (("oracle", 0), ("demonstrator", None)):
        agent = make_agent(name, env, seed=0)
        total_calls = 0
        for seed in range(20):
            obs, info = env.reset(seed=seed)
            agent.reset(obs, info)
            done = False
            while not done:
                obs, reward, term, trunc, info = env.step(agent.act(obs, info))
                done = term or trunc
            assert term and info["score_details"]["numeric_match"] == 1.0
            total_calls += info["score_details"]["tool_calls"]
        assert total_calls == calls if calls is not None else total_calls > 0
