"""Hub ids with an organisation prefix (``someorg/model``) load from the Hugging Face cache, offline.

The tests write a tiny tokenizer and model into a temporary cache laid out as the hub client
lays it out (``models--org--name/refs/main`` + ``snapshots/<commit>/``), point the client at it
and switch downloads off, so nothing here can touch the network.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

import lmgym  # noqa: F401
from lmgym.errors import ConfigError, TokenizerError
from lmgym.hub import is_local_path
from lmgym.tokenizer import build_word_tokenizer, load_tokenizer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
WORDS = [*"abcdefghij", "="]


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    """An offline HF cache holding ``someorg/tiny-lm`` (a word tokenizer and a 1-layer GPT-2)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    repo = cache / "models--someorg--tiny-lm"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    tokenizer = build_word_tokenizer(WORDS)
    tokenizer.save_pretrained(snapshot)
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    transformers.GPT2LMHeadModel(config).save_pretrained(snapshot)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_local_paths_and_hub_ids_are_told_apart(tmp_path):
    assert not is_local_path("someorg/model") and not is_local_path("gpt2")
    assert is_local_path(str(tmp_path / "missing")) and is_local_path("./model") and is_local_path("~/model")
    assert is_local_path("runs/ppo/final")  # two slashes: no hub id looks like that
    (tmp_path / "org").mkdir()
    assert is_local_path(tmp_path / "org")


def test_tokenizer_with_an_org_prefix_loads_from_the_cache(hf_cache):
    tokenizer = load_tokenizer("someorg/tiny-lm")
    assert tokenizer.get_vocab() == build_word_tokenizer(WORDS).get_vocab()
    env = gym.make("lmgym/Copy-v0", tokenizer="someorg/tiny-lm").unwrapped
    assert env.vocab_size == len(WORDS) + 4
    missing = r"(?s)'someorg/not-cached' from the Hugging Face cache .*hub id already in"
    with pytest.raises(TokenizerError, match=missing):
        load_tokenizer("someorg/not-cached")
    with pytest.raises(TokenizerError, match="does not exist"):
        load_tokenizer("./someorg/tiny-lm")  # a path, not an id


def test_model_with_an_org_prefix_loads_from_the_cache(hf_cache):
    pytest.importorskip("torch")
    from lmgym.agents.ppo.policy import build_policy

    tokenizer = load_tokenizer("someorg/tiny-lm")
    policy = build_policy("someorg/tiny-lm", tokenizer, 32)
    assert policy.model.get_input_embeddings().num_embeddings == len(tokenizer)
    with pytest.raises(ConfigError, match=r"(?s)'someorg/missing' from the Hugging Face cache .*hub id already in"):
        build_policy("someorg/missing", tokenizer, 32)
