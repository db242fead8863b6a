"""The peer benchmark against TRL (``lmgym speed --peer trl``): time-to-quality maths, the report, the fairness
pieces (same prompts, positions of left-padded prompts) and, where trl is installed, a tiny end-to-end run."""

from __future__ import annotations

import json
import math
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lmgym.agents.bench import peer_trl
from lmgym.agents.bench.peer_report import format_markdown, score_at, time_to_quality, time_to_score, write_results
from lmgym.agents.bench.peer_trl import PeerConfig, add_position_ids, config_from_args, trl_dataset
from lmgym.agents.ppo.policy import PolicyWithValue, build_policy, default_lm
from lmgym.agents.ppo.reference import ReferenceModel
from lmgym.errors import MissingDependencyError


def curve(*points: tuple[float, float]) -> list[dict]:
    return [{"step": i * 10, "completions": i * 2560, "wall_s": t, "score": s, "kl": i / 10}
            for i, (t, s) in enumerate(points)]


LMGYM = curve((0, 0.80), (20, 0.81), (40, 0.83), (60, 0.84))
TRL = curve((0, 0.80), (30, 0.805), (60, 0.815), (90, 0.825))


def test_time_to_score_is_the_first_evaluation_that_shows_it():
    assert time_to_score(LMGYM, 0.825) == 40.0  # no interpolation between 20 s (0.81) and 40 s (0.83)
    assert time_to_score(LMGYM, 0.80) == 0.0
    assert time_to_score(LMGYM, 0.9) is None
    assert score_at(TRL, 59.9) == 0.805 and score_at(TRL, 60) == 0.815
    assert math.isnan(score_at(TRL, -1))


def test_time_to_quality_ratio_and_equal_wall_time():
    q = time_to_quality(LMGYM, TRL)
    assert q["target_score"] == 0.825 and q["peer_wall_s"] == 90.0
    assert q["lmgym_time_to_target_s"] == 40.0
    assert q["time_to_quality_ratio"] == pytest.approx(40 / 90)
    # the shorter run ends at 60 s: lmgym 0.84 vs TRL 0.815
    assert q["equal_wall_s"] == 60.0 and q["lmgym_ahead_at_equal_wall"]
    assert q["lmgym_score_at_equal_wall"] == 0.84 and q["peer_score_at_equal_wall"] == 0.815
    assert [p["lmgym"] for p in q["at_peer_evaluations"]] == [0.80, 0.81, 0.84, 0.84]
    never = time_to_quality(curve((0, 0.8), (50, 0.8)), TRL)
    assert never["time_to_quality_ratio"] is None and not never["lmgym_ahead_at_equal_wall"]


def fake_result() -> dict:
    cfg = PeerConfig()
    run = {"shape": "x", "completions": 25600, "completion_tokens": 400000, "completions_per_s": 100.0,
           "tokens_per_s": 1562.5, "time": {"total_s": 90.0, "rollout_s": 30.0, "reference_s": 10.0, "update_s": 50.0}}
    q = time_to_quality(LMGYM, TRL)
    return {"command": "lmgym speed --peer trl", "config": vars(cfg), "git": {"commit": "abc", "dirty": False},
            "machine": {"cpu": "cpu", "cores": 2, "load_avg_start": 1.0, "load_avg_end": 1.5, "torch": "2",
                        "transformers": "5"}, "versions": {"trl": "1.16.0"}, "reward": "rouge", "warm_start": "w",
            "lmgym": {**run, "curve": LMGYM}, "trl": {**run, "curve": TRL}, "time_to_quality": q,
            "time_to_quality_ratio": q["time_to_quality_ratio"], "differences": peer_trl.differences(cfg)}


def test_report_and_files(tmp_path):
    res = fake_result()
    text = format_markdown(res)
    assert "time-to-quality ratio 0.44" in text and "lmgym 0.8400, TRL 0.8150 (lmgym ahead)" in text
    assert "KL placement" in text and "Adam epsilon" in text and "Update shape" in text
    assert "| 30 | 60.0 | 0.8400 | 0.30 | 90.0 | 0.8250 | 0.30 |" in text  # step, lmgym s/score/KL, TRL s/score/KL
    paths = write_results(res, tmp_path, "peer-trl")
    assert [p.name for p in paths] == ["peer-trl.json", "peer-trl.md", "peer-trl.png"]
    saved = json.loads(paths[0].read_text())
    assert saved["time_to_quality_ratio"] == pytest.approx(40 / 90) and saved["git"]["commit"] == "abc"
    assert paths[2].read_bytes()[:4] == b"\x89PNG"


def test_missing_trl_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'lmgym\[trl\]'"):
        peer_trl.import_trl()


def test_flags_and_presets():
    cfg = config_from_args(["--peer", "trl", "--preset", "tiny", "--steps", "3", "--trl-shape", "lmgym"])
    assert (cfg.steps, cfg.trl_shape, cfg.prompts_per_step, cfg.out) == (3, "lmgym", 2, "")
    assert config_from_args(["--peer", "trl"]).steps == 30


# ---- positions of left-padded prompts (the bug stock TRL has with GPT-2) -------------------------------------------
def gpt2(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return default_lm("default", 40, 32, 0, 1, 2, n_layer=2, n_embd=16, n_head=2).eval()


def padded_and_plain() -> tuple[torch.Tensor, ...]:
    prompt, response = torch.tensor([[5, 6, 7]]), torch.tensor([[8, 9, 10]])
    pad = torch.zeros(1, 4, dtype=torch.long)
    return prompt, torch.cat([pad, prompt], 1), torch.cat([pad, torch.ones_like(prompt)], 1), response


def test_lmgym_logprobs_of_a_left_padded_prompt_equal_the_unpadded_ones():
    """lmgym's reference pass and update pass count positions over real tokens, so padding changes nothing."""
    policy = PolicyWithValue(gpt2(), num_actions=40)
    prompt, padded, mask, response = padded_and_plain()
    reference = ReferenceModel(policy)
    ones = torch.ones_like
    plain_ref = reference.logprobs(prompt, ones(prompt), response, ones(response), temperature=0.7)
    padded_ref = reference.logprobs(padded, mask, response, ones(response), temperature=0.7)
    torch.testing.assert_close(padded_ref, plain_ref, atol=1e-5, rtol=1e-5)
    # a batch of both, as the update reads it (each distinct prompt once)
    from lmgym.agents.ppo.shared_prompts import shared_prompt_forward

    batch = (torch.cat([padded, padded]), torch.cat([mask, mask]), response.repeat(2, 1), ones(response).repeat(2, 1))
    logits, _ = shared_prompt_forward(policy.model, *batch)
    plain_logits, _ = shared_prompt_forward(policy.model, prompt, ones(prompt), response, ones(response))
    torch.testing.assert_close(logits, plain_logits.repeat(2, 1, 1), atol=1e-5, rtol=1e-5)


def test_add_position_ids_fixes_a_plain_forward_of_a_left_padded_prompt():
    """What TRL's GRPO does: ``model(input_ids, attention_mask)`` without positions. Unfixed, GPT-2 reads the padded
    prompt at shifted positions; with :func:`add_position_ids` it reads it as the unpadded one."""
    model = gpt2()
    prompt, padded, mask, response = padded_and_plain()
    plain_ids, padded_ids = torch.cat([prompt, response], 1), torch.cat([padded, response], 1)
    padded_mask = torch.cat([mask, torch.ones_like(response)], 1)
    with torch.no_grad():
        plain = model(plain_ids).logits[:, -3:]
        shifted = model(padded_ids, attention_mask=padded_mask).logits[:, -3:]
        add_position_ids(model)
        fixed = model(padded_ids, attention_mask=padded_mask).logits[:, -3:]
    assert (shifted - plain).abs().max() > 1e-3
    torch.testing.assert_close(fixed, plain, atol=1e-5, rtol=1e-5)


# ---- the same prompts in the same order ----------------------------------------------------------------------------
def test_trl_rows_are_the_prompts_lmgym_trains_on():
    from lmgym.agents.ppo.trainer import PPOTrainer
    from lmgym.agents.train.run import make_accelerator, make_envs

    cfg = config_from_args(["--peer", "trl", "--preset", "tiny"])
    tc = peer_trl.train_config(cfg, "default")
    envs = make_envs(tc, tc.num_envs)
    proto = envs.env
    policy = build_policy("default", proto.tokenizer, proto.max_prompt_tokens + proto.max_new_tokens, n_layer=1,
                          n_embd=16, n_head=2)
    trainer = PPOTrainer(tc, policy, ReferenceModel(policy), envs, make_accelerator(tc))
    rows = trl_dataset(cfg, envs.env)
    assert len(rows) == cfg.steps * cfg.prompts_per_step
    for step in range(cfg.steps):
        trainer.iterate()
        expected = rows["example_index"][step * cfg.prompts_per_step : (step + 1) * cfg.prompts_per_step]
        assert trainer.last_rollout.example_index == [i for i in expected for _ in range(cfg.samples_per_prompt)]


# ---- end to end (needs trl) ----------------------------------------------------------------------------------------
def test_tiny_peer_benchmark_runs_both_trainers(tmp_path):
    pytest.importorskip("trl")
    cfg = config_from_args(["--peer", "trl", "--preset", "tiny", "--out", str(tmp_path)])
    res = peer_trl.run(cfg, command="test")
    for key in ("lmgym", "trl"):
        run = res[key]
        assert [p["step"] for p in run["curve"]] == [0, 1, 2]
        assert run["curve"][0]["score"] == res["lmgym"]["curve"][0]["score"]  # one shared warm start
        assert run["curve"][0]["kl"] == 0.0 and all(p["kl"] >= -1e-6 for p in run["curve"])
        assert run["completions"] == 2 * 2 * 2 and run["completion_tokens"] > 0
        t = run["time"]
        assert t["total_s"] > 0 and t["rollout_s"] > 0 and t["reference_s"] > 0
        assert t["rollout_s"] + t["reference_s"] <= t["total_s"] + 1e-6
        assert run["completions_per_s"] == pytest.approx(run["completions"] / t["total_s"])
    assert res["time_to_quality_ratio"] == res["time_to_quality"]["time_to_quality_ratio"]
    assert res["versions"]["trl"] and res["git"]["commit"]
    paths = write_results(res, tmp_path)
    assert json.loads(paths[0].read_text())["config"]["trl_position_ids"] is True
