"""Word-level tokenizer: exact round trips, special tokens, save/load, user tokenizers."""

from __future__ import annotations

import gymnasium as gym
import pytest

import lmgym
from lmgym.errors import TokenizerError
from lmgym.tokenizer import SPECIAL_TOKENS, build_word_tokenizer, load_tokenizer


@pytest.mark.parametrize("env_id", lmgym.env_ids())
def test_round_trip_on_env_vocabularies(env_id):
    env = gym.make(env_id).unwrapped
    tok = env.tokenizer
    for split in env.task.splits:
        for ex in list(env.task.examples(split))[:200]:
            for text in (ex.prompt, *ex.references):
                ids = tok(text, add_special_tokens=False)["input_ids"]
                assert tok.unk_token_id not in ids
                assert tok.decode(ids) == text


def test_special_tokens_at_fixed_ids():
    tok = build_word_tokenizer(["b", "a", "a"])
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4, 5]) == [*SPECIAL_TOKENS, "a", "b"]
    assert tok("a b", add_special_tokens=False)["input_ids"] == [4, 5]  # no specials added
    assert tok.decode([4, 2, 5, 0], skip_special_tokens=True) == "a b"
    assert tok.encode("a zebra", add_special_tokens=False) == [4, 3]


def test_env_uses_tokenizer_ids():
    env = gym.make("lmgym/Copy-v0").unwrapped
    assert env.eos_token_id == 2 and env.pad_token_id == 0
    assert env.action_space.n == len(env.tokenizer) == 10 + 1 + 4


def test_save_and_load_by_path(tmp_path):
    tok = build_word_tokenizer(["x", "y", "z"])
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again("z y x", add_special_tokens=False)["input_ids"] == tok("z y x", add_special_tokens=False)["input_ids"]
    env = gym.make("lmgym/Copy-v0", vocab_size=3, tokenizer=str(tmp_path))
    assert env.unwrapped.tokenizer.get_vocab() == tok.get_vocab()


def test_user_tokenizer_object_without_pad_gets_eos_as_pad():
    tok = build_word_tokenizer(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "="])
    tok.pad_token = None
    env = gym.make("lmgym/Copy-v0", tokenizer=tok).unwrapped
    assert env.pad_token_id == env.eos_token_id == 2


def test_bad_tokenizer_inputs():
    with pytest.raises(TokenizerError, match="does not exist"):
        load_tokenizer("./no/such/folder")
    with pytest.raises(TokenizerError, match="must be"):
        load_tokenizer(42)
    with pytest.raises(TokenizerError, match="empty"):
        build_word_tokenizer([])
    with pytest.raises(TokenizerError, match="whitespace"):
        build_word_tokenizer(["a b"])
