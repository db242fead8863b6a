"""ILQL: the losses, steered decoding, save/load, exact resume, beta's effect, logs make and bad input."""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

import gymnasium as gym

import lmgym  # noqa: F401
from lmgym.agents.offline.data import build_log_data
from lmgym.agents.offline.ilql import ILQLPolicy
from lmgym.agents.offline.ilql_loss import (
    ILQLSettings,
    awac_weights,
    ilql_loss,
    returns_to_go,
    terminal_rewards,
)
from lmgym.agents.offline.make_logs import main as logs_main
from lmgym.agents.offline.make_logs import make_logs
from lmgym.agents.ppo.policy import build_policy
from lmgym.agents.train import TrainConfig, train
from lmgym.errors import ConfigError, LogsError
from lmgym.evaluate import evaluate
from lmgym.logs import LoggedSample, RewardLogs, load_logs, write_logs

COPY = {"length": 2, "vocab_size": 3}
SHIFT = {"a": "b", "b": "c", "c": "a"}


def copy_env():
    return gym.make("lmgym/Copy-v0", **COPY).unwrapped


def shifted_logs(path):
    """Per train prompt: the shifted (wrong) copy twice with reward 0, the right copy once with reward 1.

    Behaviour cloning's mode is the wrong copy; only the rewards say the right one is better.
    """
    rows = []
    for ex in copy_env().task.examples("train"):
        ref = ex.references[0]
        bad = " ".join(SHIFT[t] for t in ref.split())
        rows += [LoggedSample(ex.prompt, bad, 0.0, "bad"), LoggedSample(ex.prompt, bad, 0.0, "bad"),
                 LoggedSample(ex.prompt, ref, 1.0, "good")]
    write_logs(path, rows * 5)
    return str(path)


def tiny_config(tmp_path, data=None, **overrides):
    settings = dict(env="lmgym/Copy-v0", env_kwargs=COPY, algo="ilql", data=data, iterations=10,
                    ilql_steps_per_iteration=50, n_layer=1, n_embd=32, n_head=2, sft_batch_size=16, eval_examples=1,
                    eval_batch_size=4, eval_every=0, output_dir=str(tmp_path), name="ilql", progress=False,
                    tensorboard=False, threads=1, ilql_beta=4.0, num_samples=0, ilql_eval_betas=(0.0, 4.0))
    return TrainConfig(**{**settings, **overrides})


def tiny_policy(beta=1.0):
    env = copy_env()
    base = build_policy("default", env.tokenizer, 16, n_layer=1, n_embd=32, n_head=2, seed=0)
    return env, ILQLPolicy.from_policy(base, beta=beta, seed=0)


def test_terminal_rewards_pay_at_the_last_completion_token():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    out = terminal_rewards(torch.tensor([2.0, -1.0]), mask)
    assert out.tolist() == [[0, 0, 2.0, 0], [-1.0, 0, 0, 0]]


def test_returns_to_go_discount_the_terminal_reward_back_over_the_completion():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    token_rewards = terminal_rewards(torch.tensor([2.0, -1.0]), mask)
    assert returns_to_go(token_rewards, mask, 1.0).tolist() == [[2.0, 2.0, 2.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]
    assert returns_to_go(token_rewards, mask, 0.5).tolist() == [[0.5, 1.0, 2.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]


def test_awac_weights_are_exp_advantage_over_temperature_capped_and_normalised():
    adv = torch.tensor([[0.0, 1.0, -1.0, 9.0], [2.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert torch.equal(awac_weights(adv, mask, ILQLSettings(awac_temperature=0.0)), torch.ones_like(adv))
    raw = awac_weights(adv, mask, ILQLSettings(awac_temperature=0.5, awac_normalize=False, max_awac_weight=20.0))
    torch.testing.assert_close(raw, torch.tensor([[1.0, 7.389056, 0.135335, 20.0], [20.0, 1.0, 1.0, 1.0]]))
    normalised = awac_weights(adv, mask, ILQLSettings(awac_temperature=0.5, max_awac_weight=20.0))
    mean = (1.0 + 7.389056 + 0.135335 + 20.0) / 4  # over the 4 completion tokens; the padding's 20 is ignored
    torch.testing.assert_close(normalised, raw / mean)
    assert (normalised * mask).sum() / mask.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("advantage", ["return", "q"])
def test_the_policy_term_is_the_advantage_weighted_nll(advantage):
    """Temperature 0: the mean NLL of the logged tokens (BC); else each token's NLL times its AWAC weight."""
    from lmgym.agents.ppo.math import masked_mean
    from lmgym.agents.ppo.policy import lm_forward

    env, policy = tiny_policy()
    data = build_log_data(env, load_logs([{"prompt": "a b =", "completion": "a b", "reward": 1},
                                          {"prompt": "b c =", "completion": "c a", "reward": -2}]))
    batch = data.data.batch(torch.arange(2), "cpu")
    settings = ILQLSettings(awac_temperature=0.3, awac_advantage=advantage)
    _, parts = ilql_loss(policy, batch, data.rewards, settings)
    _, bc = ilql_loss(policy, batch, data.rewards, ILQLSettings())
    prompt_ids, prompt_mask, response_ids, response_mask = batch
    with torch.no_grad():
        logits, hidden = lm_forward(policy.model, prompt_ids, prompt_mask, response_ids, response_mask)
        logp = torch.log_softmax(policy.cut_logits(logits), -1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
        mask = response_mask.float()
        v = policy.values_from_hidden(hidden)
        if advantage == "q":
            adv = policy.advantages(hidden).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
        else:  # gamma = 1: every token's return is its row's reward
            adv = data.rewards[:, None] - v
    torch.testing.assert_close(bc["ilql/policy_loss"], masked_mean(-logp, mask))
    torch.testing.assert_close(parts["ilql/policy_loss"], masked_mean(-logp * awac_weights(adv, mask, settings), mask))


def test_loss_trains_q_v_and_lm_but_not_the_target_heads():
    env, policy = tiny_policy()
    data = build_log_data(env, load_logs([{"prompt": "a b =", "completion": "a b", "reward": 1},
                                          {"prompt": "b c =", "completion": "c a", "reward": 0}]))
    loss, parts = ilql_loss(policy, data.data.batch(torch.arange(2), "cpu"), data.rewards, ILQLSettings())
    assert torch.isfinite(loss) and set(parts) >= {"ilql/q_loss", "ilql/v_loss", "ilql/cql_loss", "ilql/policy_loss"}
    loss.backward()
    assert all(p.grad is not None for p in policy.heads.q.parameters())
    assert policy.value_head.weight.grad is not None
    assert policy.model.get_input_embeddings().weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in policy.heads.target_q.parameters())


def test_beta_zero_decodes_the_behaviour_cloning_policy_and_beta_adds_the_advantage():
    _, policy = tiny_policy(beta=0.0)
    ids, mask = torch.tensor([[5, 6, 4]]), torch.ones(1, 3, dtype=torch.long)
    _, logits, _ = policy.start(ids, mask)
    lm_logits = policy.model(input_ids=ids, attention_mask=mask).logits[:, -1, : policy.num_actions]
    torch.testing.assert_close(logits, torch.log_softmax(lm_logits, -1))
    policy.beta = 2.0
    _, steered, _ = policy.start(ids, mask)
    hidden = policy.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1][:, -1]
    torch.testing.assert_close(steered, torch.log_softmax(lm_logits, -1) + 2.0 * policy.advantages(hidden))
    policy.heads.sync_targets(1.0)  # alpha = 1 copies the online heads
    for online, target in zip(policy.heads.q.parameters(), policy.heads.target_q.parameters()):
        assert torch.equal(online, target)


def test_save_and_load_restore_heads_beta_and_reward_stats(tmp_path):
    env, policy = tiny_policy(beta=3.0)
    policy.reward_stats = {"mean": 0.5, "std": 2.0}
    policy.save_pretrained(tmp_path / "p", tokenizer=env.tokenizer)
    loaded = build_policy(str(tmp_path / "p"), env.tokenizer, 16)  # the generic loader dispatches on the kind
    assert isinstance(loaded, ILQLPolicy) and loaded.beta == 3.0 and loaded.reward_stats == {"mean": 0.5, "std": 2.0}
    ids, mask = torch.tensor([[5, 6, 4]]), torch.ones(1, 3, dtype=torch.long)
    torch.testing.assert_close(loaded.start(ids, mask)[1], policy.start(ids, mask)[1])


def test_beta_steers_greedy_decoding_to_the_rewarded_tokens(tmp_path):
    """The logs' mode is the wrong copy: beta = 0 (behaviour cloning) writes it, beta = 4 the rewarded one."""
    results = train(tiny_config(tmp_path, shifted_logs(tmp_path / "logs.jsonl"), ilql_awac_temperature=0.0))
    assert set(results["after"]["betas"]) == {"0.0", "4.0"}
    folder = os.path.join(results["run_dir"], "policy")
    scores = {b: evaluate("lmgym/Copy-v0", folder, episodes=7, split="train", beta=b, **COPY)["mean"] for b in (0, 4)}
    assert scores[0] <= 0.3 and scores[4] >= 0.8, scores  # mostly the wrong copy, then mostly the right one
    with open(os.path.join(results["run_dir"], "results.json")) as f:
        saved = json.load(f)
    assert saved["names"] == ["ILQL beta=0 (BC)", "ILQL beta=4"]


def test_resume_continues_exactly(tmp_path):
    data = shifted_logs(tmp_path / "logs.jsonl")
    whole = train(tiny_config(tmp_path, data, iterations=4, ilql_steps_per_iteration=5, name="whole"))
    train(tiny_config(tmp_path, data, iterations=2, ilql_steps_per_iteration=5, name="part", checkpoint_every=1))
    resumed = train(tiny_config(tmp_path, data, iterations=4, ilql_steps_per_iteration=5, name="part",
                                resume=str(tmp_path / "part")))
    a = ILQLPolicy.from_pretrained(os.path.join(whole["run_dir"], "policy")).state_dict()
    b = ILQLPolicy.from_pretrained(os.path.join(resumed["run_dir"], "policy")).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sft_on_logs_keeps_the_top_fraction(tmp_path):
    data = shifted_logs(tmp_path / "logs.jsonl")
    config = tiny_config(tmp_path, data, algo="sft", sft_steps=150, data_top_fraction=1 / 3, name="bc")
    folder = os.path.join(train(config)["run_dir"], "policy")
    assert evaluate("lmgym/Copy-v0", folder, episodes=7, split="train", **COPY)["mean"] >= 0.8  # only the good rows


@pytest.mark.parametrize(
    ("overrides", "match"),
    [({"data": None}, "pass --data"), ({"algo": "sft+ppo"}, "trains offline"),
     ({"ilql_eval_betas": (-1.0,)}, "numbers >= 0"), ({"data_top_fraction": 0.0}, "data-top-fraction")],
)
def test_bad_settings_are_config_errors(tmp_path, overrides, match):
    settings = {"data": "logs.jsonl", **overrides}
    with pytest.raises(ConfigError, match=match):
        tiny_config(tmp_path, **settings).validate()


def test_beta_on_a_policy_that_is_not_ilql_is_refused(tmp_path):
    env = copy_env()
    build_policy("default", env.tokenizer, 16, n_layer=1, n_embd=32, n_head=2).save_pretrained(tmp_path / "ppo")
    with pytest.raises(ConfigError, match="ILQL"):
        evaluate("lmgym/Copy-v0", str(tmp_path / "ppo"), episodes=2, beta=1.0, **COPY)
    with pytest.raises(ConfigError, match="baseline"):
        evaluate("lmgym/Copy-v0", "random", episodes=2, beta=1.0, **COPY)


def test_log_data_counts_unknown_and_cut_rows():
    env = copy_env()
    logs = RewardLogs([LoggedSample("a b =", "a b", 1.0), LoggedSample("zzz =", "a a a a a a", 0.0)])
    data = build_log_data(env, logs)
    assert data.warnings == {"prompt with unknown tokens": 1, "completion cut to max_new_tokens": 1}
    assert data.data.response_mask[1].sum() == env.max_new_tokens
    assert data.data.response_ids[0, :3].tolist() == [*env.tokenizer.convert_tokens_to_ids(["a", "b"]),
                                                       env.eos_token_id]


def test_a_prompt_that_tokenizes_to_nothing_is_a_logs_error():
    env = copy_env()
    with pytest.raises(LogsError, match="tokenizes to nothing"):
        build_log_data(env, RewardLogs([LoggedSample("   ", "a", 1.0), LoggedSample("a =", "a", 0.0)]))


def test_logs_make_labels_each_completion_with_the_env_reward(tmp_path, capsys):
    samples = make_logs("lmgym/Copy-v0", ["oracle", "random"], prompts=5, seed=1, **COPY)
    assert [s.agent for s in samples] == ["oracle"] * 5 + ["random"] * 5
    assert [s.example_index for s in samples[:5]] == list(range(5))
    assert all(s.reward == 1.0 and s.completion == s.prompt[:-2] for s in samples[:5])
    random_rows = samples[5:]
    baseline = evaluate("lmgym/Copy-v0", "random", episodes=5, split="train", seed=1100, **COPY)  # agent k=1, seed 1
    assert [s.reward for s in random_rows] == baseline["scores"]
    out = tmp_path / "logs.jsonl"
    assert logs_main(["make", "lmgym/Copy-v0", "--agents", "oracle", "random", "--prompts", "4", "--output", str(out),
                      "--env-kwargs", "length=2", "vocab_size=3"]) == 0
    assert len(load_logs(out)) == 8 and "Wrote 8 rows" in capsys.readouterr().out
    assert logs_main(["make", "lmgym/Copy-v0", "--agents", "nope", "--output", str(out)]) == 2
