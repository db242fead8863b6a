"""``chat=``: the text envs write prompts through an instruct tokenizer's chat template."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest

import lmgym  # noqa: F401
from lmgym.data_tokenizer import tokenizer_from_data
from lmgym.envs.text_task_env import PromptCutWarning
from lmgym.errors import ConfigError
from lmgym.evaluate import evaluate

#: A ChatML-style template (the kind SmolLM2-Instruct ships), written for the test tokenizer.
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

ROWS = [{"document": f"Report {i}: the café on street {i} opened at {8 + i % 3} o’clock, “busy” 😀.",
         "summary": f"Café {i} opened at {8 + i % 3}."} for i in range(40)]


@pytest.fixture(scope="module")
def chat_tokenizer():
    texts = [r["document"] for r in ROWS] + [r["summary"] for r in ROWS] + ["<|im_start|>user assistant <|im_end|>"]
    tokenizer = tokenizer_from_data(texts, "byte_bpe", None)
    tokenizer.chat_template = TEMPLATE
    return tokenizer


def make(tokenizer, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ReferenceCutWarning: not what these tests are about
        return gym.make("lmgym/Summarize-v1", dataset=ROWS, tokenizer=tokenizer, **kwargs)


def test_chat_prompt_is_the_template_with_the_instruction_and_the_source(chat_tokenizer) -> None:
    env = make(chat_tokenizer, chat=True)
    obs, info = env.reset(seed=3)
    ex = env.unwrapped._example
    expected = chat_tokenizer.apply_chat_template(
        [{"role": "user", "content": f"Summarize the following text in one sentence.\n\n{ex.source}"}],
        add_generation_prompt=True, tokenize=False)
    assert info["prompt"] == expected and info["prompt"].endswith("<|im_start|>assistant\n")
    ids = obs["prompt_ids"][obs["prompt_mask"].astype(bool)]
    assert chat_tokenizer.decode(ids) == expected  # the whole prompt, assistant header included, reaches the agent
    plain = make(chat_tokenizer)
    _, plain_info = plain.reset(seed=3)
    assert plain_info["references"] == info["references"]  # same episode, only the prompt differs
    assert env.unwrapped.max_prompt_tokens > plain.unwrapped.max_prompt_tokens


def test_custom_instruction_and_oracle_still_writes_the_reference(chat_tokenizer) -> None:
    env = make(chat_tokenizer, chat="In five words: {source}")
    _, info = env.reset(seed=0)
    assert "In five words: Report" in info["prompt"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate("lmgym/Summarize-v1", "oracle", episodes=2, split="validation", seed=0,
                          dataset=ROWS, tokenizer=chat_tokenizer, chat=True)
    assert result["n"] == 2 and result["mean"] >= 0.99


def test_chat_on_a_builtin_corpus_sizes_prompts_from_the_chat_text(chat_tokenizer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ReferenceCutWarning of the corpus's references in this tokenizer
        env = gym.make("lmgym/PositiveReview-v1", tokenizer=chat_tokenizer, chat=True)
    _, info = env.reset(seed=0)
    assert info["prompt"].startswith("<|im_start|>user\nContinue this review")
    longest = max(len(ids) for ids in env.unwrapped._encode_prompts("validation"))
    assert env.unwrapped.max_prompt_tokens >= longest


def test_bad_chat_settings_are_config_errors(chat_tokenizer) -> None:
    with pytest.raises(ConfigError, match="tokenizer='smollm2-135m'"):
        gym.make("lmgym/Summarize-v1", chat=True)  # the built-in word-level tokenizer has no template
    no_template = tokenizer_from_data([r["document"] for r in ROWS], "byte_bpe", None)
    assert not no_template.chat_template
    with pytest.raises(ConfigError, match="has none"):
        make(no_template, chat=True)
    with pytest.raises(ConfigError, match="source"):
        make(chat_tokenizer, chat="Summarize this.")


def test_chat_prompts_cut_by_max_prompt_tokens_warn(chat_tokenizer) -> None:
    with pytest.warns(PromptCutWarning, match="max_prompt_tokens=12"):
        gym.make("lmgym/Summarize-v1", dataset=ROWS, tokenizer=chat_tokenizer, chat=True, max_prompt_tokens=12)
