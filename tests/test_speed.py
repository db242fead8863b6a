"""``lmgym speed``: the tiny benchmark runs end to end and its numbers add up."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from lmgym.agents.bench import speed


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny run through the CLI entry point: ``(results, markdown)``."""
    out = tmp_path_factory.mktemp("speed")
    assert speed.main(["--preset", "tiny", "--out", str(out)]) == 0
    return json.loads((out / "tiny.json").read_text()), (out / "tiny.md").read_text()


def numbers(tree):
    """Every int/float leaf of a JSON tree (bools excluded)."""
    if isinstance(tree, dict):
        for value in tree.values():
            yield from numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


def test_all_sections_and_metadata(tiny):
    res, _ = tiny
    assert set(res["sections"]) == set(speed.SECTIONS)
    assert res["command"] == "lmgym speed --preset tiny --out " + res["config"]["out"]
    assert res["machine"]["cores"] >= 1 and res["machine"]["torch"] == torch.__version__
    assert res["machine"]["device"] == "cpu"
    sizes, preset = res["sizes"], speed.SPEED_PRESETS["tiny"]
    assert (sizes["num_envs"], sizes["prompt_tokens"], sizes["new_tokens"]) == (
        preset["num_envs"], preset["prompt_tokens"], preset["new_tokens"])
    assert sizes["model"]["n_layer"] == preset["n_layer"] and sizes["model"]["parameters"] > 0
    assert set(res["targets"]) == set(speed.TARGETS)
    assert all(isinstance(t["met"], bool) for t in res["targets"].values())


def test_numbers_positive_and_finite(tiny):
    res, _ = tiny
    values = list(numbers(res["sections"])) + list(res["ratios"].values())
    assert values and all(math.isfinite(v) for v in values)
    rates = [v for k, v in _items(res["sections"]) if k in ("seconds", "tokens_per_s", "steps_per_s", "bytes")]
    assert rates and all(v > 0 for v in rates)


def _items(tree):
    if isinstance(tree, dict):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from _items(value)
            else:
                yield key, value


def test_token_counts_and_ratios_consistent(tiny):
    res, _ = tiny
    sec, r = res["sections"], res["ratios"]
    N, R, P = res["sizes"]["num_envs"], res["sizes"]["new_tokens"], res["sizes"]["prompt_tokens"]
    for key in "abc":  # EOS is masked, so every path writes exactly N x R tokens
        assert sec[key]["tokens"] == N * R
        assert sec[key]["tokens_per_s"] == pytest.approx(N * R / sec[key]["seconds"])
    assert sec["b"]["valid_tokens"] == N * R
    assert sec["b"]["seconds"] == pytest.approx(sec["b"]["rollout_s"] + sec["b"]["reference_s"])
    assert sec["c"]["context"] == P + R
    assert r["b_over_a"] == pytest.approx(sec["b"]["tokens_per_s"] / sec["a"]["tokens_per_s"])
    assert r["b_over_c"] == pytest.approx(sec["c"]["seconds"] / sec["b"]["seconds"])  # same tokens
    assert r["f_update_over_rollout"] == pytest.approx(sec["f"]["seconds"] / sec["b"]["seconds"])
    assert res["targets"]["b_over_a"]["value"] == r["b_over_a"]
    work = res["sizes"]["forward_tokens"]
    assert work["a"] < work["b"] < work["c"]


def test_env_section_runs_the_same_episodes(tiny):
    res, _ = tiny
    d = res["sections"]["d"]
    keys = {"summarize", "copy", "translate", "review", "keywords"}
    assert set(d) == keys | {f"{k}_machinery" for k in keys}
    for run in d.values():
        # Same seeds and actions: both vector envs play exactly the same episodes.
        assert run["native"]["episodes"] == run["sync"]["episodes"] > 0
        assert run["native"]["total_reward"] == pytest.approx(run["sync"]["total_reward"])
        assert run["ratio"] == pytest.approx(run["native"]["steps_per_s"] / run["sync"]["steps_per_s"])
    assert d["summarize"]["scorer"] == "rouge" and d["summarize_machinery"]["scorer"] == "length"
    assert res["ratios"]["d_native_over_sync"] == d["summarize"]["ratio"]
    assert d["translate"]["scorer"] == "chrf" and "sentiment" in d["review"]["scorer"]
    assert res["ratios"]["d_keywords_native_over_sync"] == d["keywords"]["ratio"]


def test_memory_lora_shares_weights(tiny):
    res, _ = tiny
    e = res["sections"]["e"]
    assert not e["full_copy"]["shares_weights"] and e["lora"]["shares_weights"]
    # A full copy doubles the LM (plus a tiny value head); LoRA adds only adapters and the head.
    assert 2.0 <= e["full_copy"]["ratio_to_one_model"] < 2.1
    assert 1.0 < e["lora"]["ratio_to_one_model"] < 1.3
    assert e["full_copy"]["bytes"] == pytest.approx(e["full_copy"]["ratio_to_one_model"] * e["one_model_bytes"])


def test_update_section(tiny):
    f = tiny[0]["sections"]["f"]
    assert 1 <= f["epochs_run"] <= f["epochs"]
    assert f["optimizer_steps"] == f["epochs_run"] * f["minibatches"]


def test_markdown_table(tiny):
    res, md = tiny
    assert "| target | value | met |" in md
    for key in speed.SECTIONS:
        assert f"\n| {key} | " in md
    for name in speed.TARGETS:
        assert f"`{name}`" in md
    assert res["git"]["commit"] is None or res["git"]["commit"] in md


def test_tensor_bytes_counts_shared_storage_once():
    layer = torch.nn.Linear(4, 3)  # 12 weights + 3 biases, float32
    assert speed.tensor_bytes(layer) == 15 * 4
    assert speed.tensor_bytes(layer, layer) == 15 * 4
    tied = torch.nn.Linear(4, 3)
    tied.weight = layer.weight
    assert speed.tensor_bytes(layer, tied) == 18 * 4


def test_mask_eos_removes_the_token():
    model = torch.nn.Module()
    head = torch.nn.Linear(4, 5)
    model.get_output_embeddings = lambda: head
    speed.mask_eos(model, eos_id=2)
    logits = head(torch.randn(7, 4))
    assert (logits[:, 2] == -1e4).all() and (logits.argmax(-1) != 2).all()


def test_config_from_args_layers_flags_over_presets():
    cfg = speed.config_from_args(["--preset", "tiny", "--num-envs", "6", "--sections", "a", "d"])
    assert cfg.num_envs == 6 and cfg.new_tokens == speed.SPEED_PRESETS["tiny"]["new_tokens"]
    assert cfg.sections == ("a", "d")
    default = speed.config_from_args([])
    assert (default.num_envs, default.prompt_tokens, default.new_tokens, default.threads) == (32, 96, 64, 2)
    assert default.prompt_tokens + default.new_tokens >= 128  # section c's context
    gpu = speed.config_from_args(["--preset", "gpu"])
    assert (gpu.device, gpu.dtype, gpu.n_layer, gpu.n_embd) == ("cuda", "bf16", 12, 768)
    with pytest.raises(SystemExit):
        speed.config_from_args(["--sections", "z"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_or_mixed_precision_without_cuda_is_a_clear_error(capsys):
    assert speed.main(["--preset", "tiny", "--device", "cuda", "--out", ""]) == 2
    assert "CUDA" in capsys.readouterr().err
    assert speed.main(["--preset", "tiny", "--dtype", "bf16", "--out", ""]) == 2
    assert "--dtype fp32" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_preset_path(tmp_path):
    small = ["--num-envs", "4", "--prompt-tokens", "16", "--new-tokens", "8", "--n-layer", "2", "--n-embd", "64",
             "--n-head", "2", "--env-steps", "20", "--repeats", "1"]
    assert speed.main(["--preset", "gpu", *small, "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "gpu.json").read_text())
    assert res["machine"]["device"].startswith("cuda") and res["config"]["dtype"] == "bf16"
    e = res["sections"]["e"]
    assert e["lora"]["cuda_max_allocated"] > 0 and e["full_copy"]["cuda_max_allocated"] > 0
    assert e["lora"]["bytes"] < e["full_copy"]["bytes"]
    assert res["sections"]["b"]["valid_tokens"] == 4 * 8
