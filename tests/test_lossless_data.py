"""The lossless data path of the -v1 text envs: byte-level BPE, text as written, max_new_tokens from the data.

Real-looking multilingual text (accents, typographic quotes, emoji, currency and maths symbols,
CJK, double spaces) in every format ``dataset=`` accepts; the oracle (which writes the reference)
must score >= 0.99 with default kwargs, and every reference must round-trip exactly.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import lmgym  # noqa: F401
from lmgym.data_tokenizer import response_token_limit, tokenizer_from_data
from lmgym.envs.text_task_env import ReferenceCutWarning
from lmgym.evaluate import evaluate

NOUNS = [("the file", "die Datei", "ファイル"), ("the café", "das Café", "咖啡馆"),
         ("the naïve user", "der naive Nutzer", "用户"), ("the résumé", "der Lebenslauf", "履歴書"),
         ("the façade", "die Fassade", "外观"), ("the window", "das Fenster", "窓"),
         ("the über-menu", "das Über-Menü", "菜单"), ("the smörgåsbord", "das Büfett", "自助餐")]
VERBS = [("opens", "öffnet"), ("saves", "speichert"), ("closes", "schließt"), ("deletes", "löscht"),
         ("shows", "zeigt"), ("prints", "druckt")]
EXTRAS = ["😀", "🚀", "✓", "→", "€", "£", "¥", "±", "≥", "°C", "™", "…", "🇩🇪", "👩‍💻", "½"]


def parallel_rows(n: int, seed: int) -> list[dict]:
    """English -> German UI strings with quotes, symbols, emoji and a unique CJK word per row."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        (en, de, cjk), (ven, vde) = NOUNS[rng.integers(len(NOUNS))], VERBS[rng.integers(len(VERBS))]
        sym, amount = EXTRAS[rng.integers(len(EXTRAS))], f"{rng.integers(1, 999)},{rng.integers(10, 99)}"
        # A code point per row (outside the common ranges), so held-out rows hold characters training never saw.
        rare = chr(0x4E00 + 37 * i + seed) + chr(0x1F300 + (i + 3 * seed) % 700)
        rows.append({"source": f"“{en.capitalize()}” {ven} {amount} {sym} — {cjk}{rare} #{i}",
                     "target": f"„{de}“ {vde} {amount} {sym} – {cjk}{rare}  Nr. {i} (’s, «ok»)"})
    return rows


def summary_rows(n: int, seed: int) -> list[dict]:
    """Multi-sentence documents and one-line summaries with the same kinds of characters."""
    rows = []
    for i, r in enumerate(parallel_rows(n, seed)):
        rows.append({"document": f"Report {i}: {r['source']}. Also {r['target']}. Weather: 21 °C, “sunny”.",
                     "summary": f"Summary {i}: {r['target']} — “{r['source'][:12]}”"})
    return rows


def write(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` in the format the suffix names (.jsonl, .json, .csv, .parquet)."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    elif path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMGYM_CACHE", str(tmp_path / "cache"))


def make_dataset(fmt: str, rows: list[dict], tmp_path: Path):
    """``rows`` as the ``dataset=`` value of format ``fmt``."""
    if fmt in ("jsonl", "json", "csv", "parquet"):
        return str(write(tmp_path / f"data.{fmt}", rows))
    cut = {"train": rows[: len(rows) * 8 // 10], "validation": rows[len(rows) * 8 // 10 : len(rows) * 9 // 10],
           "test": rows[len(rows) * 9 // 10 :]}
    if fmt == "folder":  # one file per split, in three formats
        folder = tmp_path / "splits"
        folder.mkdir()
        for (split, part), suffix in zip(cut.items(), (".jsonl", ".csv", ".parquet"), strict=True):
            write(folder / f"{split}{suffix}", part)
        return str(folder)
    import datasets

    if fmt == "Dataset":
        return datasets.Dataset.from_list(rows)
    if fmt == "DatasetDict":
        return datasets.DatasetDict({s: datasets.Dataset.from_list(p) for s, p in cut.items()})
    assert fmt == "rows"
    return rows


FORMATS = ["jsonl", "json", "csv", "parquet", "folder", "Dataset", "DatasetDict", "rows"]


def oracle_score(env_id: str, dataset, split: str = "validation", **kwargs) -> float:
    """The oracle's mean reward over every example of ``split``."""
    n = len(gym.make(env_id, dataset=dataset, **kwargs).unwrapped.task.examples(split))
    return evaluate(env_id, "oracle", n, split=split, dataset=dataset, **kwargs)["mean"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_translate_v1_oracle_is_perfect_in_every_format(fmt, tmp_path):
    dataset = make_dataset(fmt, parallel_rows(200, seed=1), tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReferenceCutWarning)  # short references: nothing is cut
        base = gym.make("lmgym/Translate-v1", dataset=dataset).unwrapped
    validation = base.task.examples("validation")
    train_chars = {c for ex in base.task.examples("train") for t in (ex.prompt, *ex.references) for c in t}
    assert any(set(ex.references[0]) - train_chars for ex in validation)  # held-out text has unseen characters
    assert validation[0].references[0].startswith("„")  # text as written: case and quotes kept
    assert oracle_score("lmgym/Translate-v1", dataset) >= 0.99
    assert oracle_score("lmgym/Translate-v1", dataset, split="test") >= 0.99


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "folder", "DatasetDict"])
def test_summarize_v1_oracle_is_perfect(fmt, tmp_path):
    dataset = make_dataset(fmt, summary_rows(150, seed=2), tmp_path)
    assert oracle_score("lmgym/Summarize-v1", dataset) >= 0.99


def test_v0_keeps_the_word_level_defaults(tmp_path):
    dataset = make_dataset("jsonl", parallel_rows(200, seed=1), tmp_path)
    v0 = gym.make("lmgym/Translate-v0", dataset=dataset).unwrapped
    assert "/word-" in v0.tokenizer.name_or_path and v0.max_new_tokens == type(v0).default_max_new_tokens
    assert v0.task.examples("validation")[0].references[0] == v0.task.examples("validation")[0].references[0].lower()
    assert oracle_score("lmgym/Translate-v0", dataset) < 0.95  # unseen words become <unk>
    v1 = gym.make("lmgym/Translate-v1", dataset=dataset).unwrapped
    assert "/byte_bpe-" in v1.tokenizer.name_or_path
    # Explicit options win over the v1 defaults.
    chosen = gym.make("lmgym/Translate-v1", dataset=dataset, tokenizer_kind="word", max_new_tokens=7).unwrapped
    assert "/word-" in chosen.tokenizer.name_or_path and chosen.max_new_tokens == 7
    assert chosen.task.examples("train")[0].prompt == chosen.task.examples("train")[0].prompt.lower()


@pytest.mark.parametrize("fmt", ["parquet", "rows"])
def test_every_reference_round_trips_exactly_through_single_and_vector_envs(fmt, tmp_path):
    dataset = make_dataset(fmt, parallel_rows(120, seed=3), tmp_path)
    env = gym.make("lmgym/Translate-v1", dataset=dataset)
    tok = env.unwrapped.tokenizer
    for split in ("train", "validation", "test"):
        refs = [r for ex in env.unwrapped.task.examples(split) for r in ex.references]
        ids = tok(refs, add_special_tokens=False)["input_ids"]
        assert env.unwrapped.decode_batch(ids) == refs
    tricky = "  Ünïcödé “quotes” ‘single’ 😀👩‍💻 ¥€£ ≥±½ 北京 한국어 tab\there, end. "
    assert env.unwrapped.decode(tok(tricky, add_special_tokens=False)["input_ids"]) == tricky
    # The env scores the exact text the agent wrote.
    obs, info = env.reset(seed=0, options={"split": "validation", "example_index": 0})
    for token in tok(info["references"][0], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]:
        obs, reward, terminated, truncated, info = env.step(token)
    assert terminated and info["completion"] == info["references"][0] and reward == pytest.approx(1.0)
    venv = gym.make_vec("lmgym/Translate-v1", num_envs=2, dataset=dataset)
    obs, infos = venv.reset(seed=0, options={"split": "validation", "example_index": 1})
    plans = [tok(r[0], add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for r in infos["references"]]
    completions = [None, None]
    for t in range(max(map(len, plans))):
        actions = np.array([p[min(t, len(p) - 1)] for p in plans])
        obs, rewards, terminated, truncated, step_infos = venv.step(actions)
        for i in np.flatnonzero(terminated):
            if completions[i] is None:
                completions[i] = step_infos["completion"][i]
    assert completions == [r[0] for r in infos["references"]]


def test_max_new_tokens_comes_from_the_data_and_warns_about_cut_references(tmp_path):
    rows = parallel_rows(100, seed=4)
    rows[5]["target"] = " ".join(f"Wort{i}, „ß{i}“" for i in range(200))  # far past the 256-token cap
    dataset = make_dataset("jsonl", rows, tmp_path)
    with pytest.warns(ReferenceCutWarning, match=r"max_new_tokens=256 .* cuts 1 of 100 references") as record:
        base = gym.make("lmgym/Translate-v1", dataset=dataset).unwrapped
    assert base.max_new_tokens == 256
    longest = len(base.tokenizer(rows[5]["target"], add_special_tokens=False)["input_ids"])
    assert f"pass max_new_tokens={longest + 1}" in str(record[0].message)
    short = gym.make("lmgym/Translate-v1", dataset=make_dataset("rows", parallel_rows(100, 4), tmp_path)).unwrapped
    refs = [r for s in ("train", "validation", "test") for ex in short.task.examples(s) for r in ex.references]
    lengths = sorted(len(i) for i in short.tokenizer(refs, add_special_tokens=False)["input_ids"])
    assert short.max_new_tokens == lengths[int(np.ceil(0.99 * (len(lengths) - 1)))] + 1 < 256


def test_response_token_limit_quantile_and_cap():
    tok = tokenizer_from_data(["a b c d e f g h"] * 5, "word")
    refs = ["a"] * 197 + ["a b c", "a b c d e", "a b c d e f g h"]  # lengths 1 x 197, 3, 5, 8
    assert response_token_limit(tok, refs) == (6, 1, 8)  # 99th percentile (5) + EOS cuts the 8-token one
    assert response_token_limit(tok, refs, quantile=1.0) == (9, 0, 8)
    assert response_token_limit(tok, refs, quantile=1.0, cap=4) == (4, 2, 8)


def test_review_and_keywords_v1_write_their_references_exactly():
    rows = [{"text": f"Ich war unsicher über „Kaffee {i}“, aber 😀 es ist großartig, café №{i} ≥ 5 ★ 北京 "
                     f"und die Crème brûlée war köstlich — wirklich!", "concepts": ["café", f"naïve{i}", "北京"],
             "target": f"Das naïve Café {i} in 北京 ist „toll“ 🚀."} for i in range(60)]
    for env_id in ("lmgym/PositiveReview-v1", "lmgym/Keywords-v1"):
        env = gym.make(env_id, dataset=rows)
        tok = env.unwrapped.tokenizer
        obs, info = env.reset(seed=0, options={"split": "validation"})
        for token in tok(info["references"][0], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]:
            obs, reward, terminated, truncated, info = env.step(token)
        assert terminated and info["completion"] == info["references"][0]
        assert any(c in info["completion"] for c in "★🚀"), info["completion"]


def test_summarize_v1_oracle_is_perfect_on_the_committed_real_text():
    """examples/data/docstring_summaries.jsonl: people's English (Python's docstrings), default kwargs."""
    from pathlib import Path

    dataset = str(Path(__file__).parents[1] / "examples" / "data" / "docstring_summaries.jsonl")
    env = gym.make("lmgym/Summarize-v1", dataset=dataset).unwrapped
    assert sum(len(env.task.examples(s)) for s in env.task.splits) >= 400
    assert oracle_score("lmgym/Summarize-v1", dataset) >= 0.99
    assert oracle_score("lmgym/Summarize-v1", dataset, split="test") >= 0.99
