"""Preference pairs (lmgym.prefs), ``lmgym prefs make`` and reward-model training (``lmgym rm train``)."""

from __future__ import annotations

import json
import math
import os

import pytest

from lmgym.errors import ConfigError, PreferenceError
from lmgym.prefs import PreferencePair, load_pairs, write_pairs


def test_pairs_round_trip_and_identical_completions_are_dropped(tmp_path):
    pairs = [PreferencePair("p é", "", "b 🙂", 0.5, "ann"), PreferencePair("q", "x", "y")]
    write_pairs(tmp_path / "p.jsonl", pairs)
    assert load_pairs(tmp_path / "p.jsonl").pairs == pairs  # an empty completion survives the file
    prefs = load_pairs([{"prompt": "a", "chosen": "same", "rejected": "same"}, {"prompt": "a", "chosen": "u",
                                                                               "rejected": "v"}])
    assert len(prefs) == 1 and prefs.warnings == {"identical completions (dropped)": 1}


@pytest.mark.parametrize(("rows", "match"), [
    ([{"prompt": "a", "chosen": "b"}], "lacks the column"),
    ([{"prompt": "", "chosen": "b", "rejected": "c"}], "empty or non-text 'prompt'"),
    ([{"prompt": "a", "chosen": 3, "rejected": "c"}], "non-text 'chosen'"),
    ([{"prompt": "a", "chosen": "b", "rejected": "c", "margin": "big"}], "not a number"),
    ([{"prompt": "a", "chosen": "b", "rejected": "b"}], "no usable pairs"),
])
def test_bad_pairs_raise_a_typed_error(rows, match):
    with pytest.raises(PreferenceError, match=match):
        load_pairs(rows)


torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")


def word_pairs(path, n=160):
    """Copy-v0 prompts and random 3-word completions; the one with more "a" words is preferred."""
    import random

    import gymnasium as gym

    import lmgym  # noqa: F401

    env = gym.make("lmgym/Copy-v0", length=3, vocab_size=3).unwrapped
    rng, rows, prompts = random.Random(0), [], [ex.prompt for ex in env.task.examples("train")]
    while len(rows) < n:
        x, y = (" ".join(rng.choice("abc") for _ in range(3)) for _ in range(2))
        if x.count("a") != y.count("a"):
            better, worse = (x, y) if x.count("a") > y.count("a") else (y, x)
            rows.append(PreferencePair(rng.choice(prompts), better, worse))
    write_pairs(path, rows)
    return str(path)


def tiny_rm(tmp_path, data, **overrides):
    from lmgym.agents.rm.train import RMConfig

    settings = dict(data=data, env="lmgym/Copy-v0", n_layer=1, n_embd=32, n_head=2, steps=60, batch_size=16,
                    learning_rate=3e-3, eval_every=20, checkpoint_every=20, eval_fraction=0.25, threads=1,
                    output=str(tmp_path / "rm"))
    return RMConfig(**{**settings, **overrides})


def test_default_model_needs_an_env(tmp_path):
    from lmgym.agents.rm.train import train_reward_model

    with pytest.raises(ConfigError, match="--env"):
        train_reward_model(tiny_rm(tmp_path, "pairs.jsonl", env=None))


def test_training_fits_held_out_pairs_and_the_folder_is_a_reward(tmp_path):
    from lmgym.agents.rm.train import train_reward_model
    from lmgym.scorers import make_scorer
    from lmgym.scorers.models import REWARD_MODEL_STATS

    results = train_reward_model(tiny_rm(tmp_path, word_pairs(tmp_path / "pairs.jsonl")))
    assert results["accuracy"] >= 0.9 and results["held_out_pairs"] > 0
    assert sum(row["n"] for row in results["calibration"]) == results["held_out_pairs"]
    folder = results["model_dir"]
    assert os.path.isfile(os.path.join(folder, REWARD_MODEL_STATS))
    with open(os.path.join(results["run_dir"], "results.json")) as f:
        saved = json.load(f)
    assert saved["accuracy"] == results["accuracy"]
    scorer = make_scorer("reward_model", model=folder)
    good, bad = scorer(["a b c ="] * 2, ["a a b", "c b c"], [["a b c"]] * 2)
    assert good > bad
    raw = make_scorer("reward_model", model=folder, normalize=False)(["a b c ="], ["a a b"], [["a b c"]])[0]
    stats = results["normalisation"]
    assert good == pytest.approx((raw - stats["mean"]) / stats["std"], rel=1e-5)
    assert "train references of" in stats["source"]


def test_resume_continues_exactly(tmp_path):
    from safetensors.torch import load_file

    from lmgym.agents.rm.train import train_reward_model

    data = word_pairs(tmp_path / "pairs.jsonl")
    whole = train_reward_model(tiny_rm(tmp_path, data, output=str(tmp_path / "whole"), steps=40))
    train_reward_model(tiny_rm(tmp_path, data, output=str(tmp_path / "part"), steps=20))
    resumed = train_reward_model(tiny_rm(tmp_path, data, output=str(tmp_path / "part"), steps=40, resume=True))
    a = load_file(os.path.join(whole["model_dir"], "model.safetensors"))
    b = load_file(os.path.join(resumed["model_dir"], "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["step"] for h in resumed["history"]] == list(range(1, 41))
    with pytest.raises(ConfigError, match="exists"):
        train_reward_model(tiny_rm(tmp_path, data, output=str(tmp_path / "part")))


def test_prefs_make_labels_pairs_with_the_true_reward_and_known_noise(tmp_path, capsys):
    from lmgym.agents.rm.prefs_make import main, make_pairs

    pairs, record = make_pairs("lmgym/Copy-v0", ["oracle", "random"], prompts=7, noise=0.0, length=2, vocab_size=3)
    assert record["flipped"] == 0 and record["agreement"] == 1.0
    assert all(p.chosen == p.prompt[:-2] for p in pairs)  # the oracle's copy always wins
    noisy, record = make_pairs("lmgym/Copy-v0", ["oracle", "random"], prompts=7, noise=0.4, seed=3, length=2,
                               vocab_size=3)
    assert record["flipped"] == sum(p.chosen != p.prompt[:-2] for p in noisy)
    out = tmp_path / "pairs.jsonl"
    assert main(["make", "lmgym/Copy-v0", "--writers", "oracle", "random", "--prompts", "5", "--output", str(out),
                 "--env-kwargs", "length=2", "vocab_size=3"]) == 0
    assert "pairs to" in capsys.readouterr().out and len(load_pairs(out)) >= 1
    assert main(["make", "lmgym/Copy-v0", "--writers", "oracle", "--output", str(out)]) == 2
    assert main(["make", "lmgym/Copy-v0", "--noise", "0.5", "--output", str(out)]) == 2


def test_rlhf_pipeline_tracks_proxy_and_true_scores_against_kl(tmp_path):
    from lmgym.agents.rm.pipeline import main, run_pipeline

    out = tmp_path / "rlhf"
    summary = run_pipeline("lmgym/Copy-v0", str(out), prompts=20, rm_steps=10, iterations=2, eval_every=1, threads=1,
                           writers=["oracle", "random"], sft_steps=20, num_envs=16, n_layer=1, n_embd=32,
                           eval_examples=8, eval_batch_size=8)
    assert [p["iteration"] for p in summary["curve"]] == [0, 1, 2]
    assert all({"kl", "true", "proxy"} <= set(p) for p in summary["curve"]) and summary["curve"][0]["kl"] == 0.0
    for name in ("pairs.jsonl", "rm/model/config.json", "ppo/policy/config.json", "results.json", "results.md"):
        assert (out / name).exists(), name
    assert main(["lmgym/Copy-v0", "--output", str(out)]) == 2  # never writes into an existing folder


def test_seq2seq_reward_model_trains_and_loads_in_the_scorer(tmp_path, capsys):
    from lmgym.agents.rm.cli import main
    from lmgym.scorers import make_scorer

    data = word_pairs(tmp_path / "pairs.jsonl")
    assert main(["train", "--data", data, "--env", "lmgym/Copy-v0", "--env-kwargs", "length=3", "vocab_size=3",
                 "--model", "default-seq2seq", "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--steps", "60",
                 "--batch-size", "16", "--learning-rate", "3e-3", "--eval-every", "30", "--eval-fraction", "0.25",
                 "--threads", "1", "--output", str(tmp_path / "rm")]) == 0
    assert "Held-out pairs:" in capsys.readouterr().out  # the accuracy table is printed
    results = json.loads((tmp_path / "rm" / "results.json").read_text())
    assert results["accuracy"] >= 0.85 and results["held_out_pairs"] > 0
    folder = results["model_dir"]
    saved = json.loads((tmp_path / "rm" / "model" / "config.json").read_text())
    assert saved["architectures"] == ["T5ForSequenceClassification"] and saved["is_encoder_decoder"]
    scorer = make_scorer("reward_model", model=folder)
    rows = scorer.encode_pairs(["a b c ="] * 2, ["a a b", ""])
    eos = scorer.tokenizer.eos_token_id
    assert all(row[-1] == eos and row.count(eos) == 1 for row in rows)  # what the seq2seq head reads
    completions = ["a a b", "c b c", ""]
    batch = scorer(["a b c ="] * 3, completions, [["a b c"]] * 3)
    alone = [scorer(["a b c ="], [c], [["a b c"]])[0] for c in completions]
    assert all(math.isfinite(v) for v in batch) and batch == pytest.approx(alone, abs=1e-5)  # padding is ignored
    assert batch[0] > batch[1]
    raw = make_scorer("reward_model", model=folder, normalize=False)(["a b c ="], ["a a b"], [["a b c"]])[0]
    stats = results["normalisation"]
    assert batch[0] == pytest.approx((raw - stats["mean"]) / stats["std"], rel=1e-4)


def test_a_local_t5_folder_is_a_reward_model_base(tmp_path):
    import gymnasium as gym
    from safetensors.torch import load_file
    from transformers import T5Config, T5ForConditionalGeneration

    import lmgym  # noqa: F401
    from lmgym.agents.rm.train import build_model, train_reward_model
    from lmgym.scorers import make_scorer

    tokenizer = gym.make("lmgym/Copy-v0", length=3, vocab_size=3).unwrapped.tokenizer
    torch.manual_seed(0)
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=len(tokenizer), d_model=32, d_ff=64, d_kv=16, num_layers=1,
                                             num_heads=2, pad_token_id=tokenizer.pad_token_id,
                                             eos_token_id=tokenizer.eos_token_id,
                                             decoder_start_token_id=tokenizer.pad_token_id))
    base = tmp_path / "my-t5"
    t5.save_pretrained(base)
    tokenizer.save_pretrained(base)
    config = tiny_rm(tmp_path, word_pairs(tmp_path / "pairs.jsonl"), model=str(base), steps=20, eval_every=20,
                     env_kwargs={"length": 3, "vocab_size": 3})
    model = build_model(config, tokenizer)  # the LM's encoder-decoder, with a new scalar head
    assert type(model).__name__ == "T5ForSequenceClassification"
    assert torch.equal(model.transformer.encoder.block[0].layer[0].SelfAttention.q.weight,
                       t5.encoder.block[0].layer[0].SelfAttention.q.weight)
    results = train_reward_model(config)
    assert 0.0 <= results["accuracy"] <= 1.0 and results["held_out_pairs"] > 0
    assert results["steps"] == 20 and "train references of lmgym/Copy-v0" in results["normalisation"]["source"]
    trained = load_file(os.path.join(results["model_dir"], "model.safetensors"))
    assert not torch.equal(trained["transformer.encoder.block.0.layer.0.SelfAttention.q.weight"],
                           t5.encoder.block[0].layer[0].SelfAttention.q.weight)  # it was fine-tuned
    values = make_scorer("reward_model", model=results["model_dir"])(["a b c ="] * 2, ["a a b", "c"], None)
    assert len(values) == 2 and all(math.isfinite(v) for v in values)
