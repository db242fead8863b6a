"""Datasets as tasks: local files, in-memory rows, presets (offline), tokenizers built from data, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium as gym
import pytest

import lmgym  # noqa: F401
from lmgym import datasets as lds
from lmgym.data_tokenizer import normalize_text, tokenizer_from_data
from lmgym.envs import summarize_corpus, translate_corpus
from lmgym.errors import TaskError, TokenizerError
from lmgym.evaluate import evaluate

SIZES = {"train": 240, "validation": 30, "test": 30}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMGYM_CACHE", str(tmp_path / "cache"))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def news_file(tmp_path) -> Path:
    """A summarization jsonl (``article``/``highlights``, capitalized like real data), no splits."""
    rows = []
    for examples in summarize_corpus.build_splits(5, sizes=SIZES).values():
        rows += [{"article": ex.source.capitalize(), "highlights": ex.references[0]} for ex in examples]
    return write_jsonl(tmp_path / "news.jsonl", rows)


@pytest.fixture
def parallel_file(tmp_path) -> Path:
    """A translation jsonl with a ``translation`` dict column (``en``/``xx``)."""
    rows = []
    for examples in translate_corpus.build_splits(5, sizes={"train": 1500, "validation": 40, "test": 40}).values():
        rows += [{"translation": {"en": ex.source, "xx": ex.references[0]}} for ex in examples]
    return write_jsonl(tmp_path / "parallel.jsonl", rows)


def test_summarization_file_end_to_end(news_file):
    env = gym.make("lmgym/Summarize-v0", dataset=str(news_file))
    base = env.unwrapped
    sizes = {s: len(base.task.examples(s)) for s in ("train", "validation", "test")}
    assert sum(sizes.values()) == 300 and sizes["validation"] == sizes["test"] == 15
    assert base.tokenizer.name_or_path.startswith(str(Path(lds.os.environ["LMGYM_CACHE"])))
    obs, info = env.reset(seed=0)
    assert info["prompt"].endswith(" summary :") and info["prompt"] == info["prompt"].lower()
    scores = {a: evaluate("lmgym/Summarize-v0", a, 15, dataset=str(news_file))["mean"]
              for a in ("random", "lead-1", "oracle")}
    assert scores["oracle"] > 0.9
    assert scores["random"] < 0.1 < scores["lead-1"] < scores["oracle"] - 0.4, scores


def test_dataset_prompt_length_is_the_longest_prompt_capped(news_file, monkeypatch):
    base = gym.make("lmgym/Summarize-v0", dataset=str(news_file)).unwrapped
    prompts = [ex.prompt for split in base.task.splits for ex in base.task.examples(split)]
    longest = max(len(ids) for ids in base.tokenizer(prompts, add_special_tokens=False)["input_ids"])
    assert base.max_prompt_tokens == longest
    monkeypatch.setattr(type(base), "max_inferred_prompt_tokens", longest - 3)
    capped = gym.make("lmgym/Summarize-v0", dataset=str(news_file)).unwrapped
    assert capped.max_prompt_tokens == longest - 3
    ids, lengths = capped.prompt_table("train")
    assert ids.shape[1] == longest - 3 and lengths.max() == longest - 3


def test_translation_file_end_to_end_with_bpe(parallel_file):
    kwargs = {"dataset": str(parallel_file), "direction": "en-xx"}
    env = gym.make("lmgym/Translate-v0", tokenizer_kind="bpe", max_vocab=600, **kwargs)
    assert env.action_space.n <= 600
    obs, info = env.reset(seed=0)
    tok = env.unwrapped.tokenizer
    for token in tok(info["references"][0], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]:
        obs, reward, terminated, truncated, info = env.step(token)
    assert reward == pytest.approx(1.0)
    # Word-level tokenizer built from the data; the dictionary baseline learns its dictionary.
    scores = {a: evaluate("lmgym/Translate-v0", a, 20, **kwargs)["mean"] for a in ("random", "dictionary", "oracle")}
    assert scores["random"] < 0.25 < scores["dictionary"] < 0.75 < scores["oracle"], scores


def test_tokenizer_is_cached_by_data_hash(tmp_path):
    texts = ["the cat sat .", "a dog ran !"]
    first = tokenizer_from_data(texts, "word")
    again = tokenizer_from_data(texts, "word")
    other = tokenizer_from_data([*texts, "new words here"], "word")
    assert first.name_or_path == again.name_or_path != other.name_or_path
    assert (Path(first.name_or_path) / "tokenizer.json").is_file()
    ids = first("The CAT, sat.", add_special_tokens=False)["input_ids"]
    assert first.decode(ids) == "the cat <unk> sat ."  # raw text is normalized by the tokenizer itself
    with pytest.raises(TokenizerError, match="tokenizer_kind"):
        tokenizer_from_data(texts, "sentencepiece")


def test_in_memory_rows_dataset_and_folder_agree(tmp_path):
    import datasets

    rows = [{"source": f"word{i} is here .", "target": f"target {i} ."} for i in range(40)]
    from_rows = lds.load_task(rows, "translate")
    from_ds = lds.load_task(datasets.Dataset.from_list(rows), "translate")
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", rows[:30])
    with open(folder / "dev.csv", "w", newline="") as fh:  # "dev" counts as validation
        writer = csv.DictWriter(fh, fieldnames=["source", "target"])
        writer.writeheader()
        writer.writerows(rows[30:])
    from_folder = lds.load_task(folder, "translate")
    assert [e.source for e in from_rows.examples("test")] == [e.source for e in from_ds.examples("test")]
    assert len(from_folder.examples("validation")) == 10
    assert len(from_folder.examples("test")) == 2  # carved from train by hash
    for task in (from_rows, from_ds, from_folder):
        seen = [{e.source for e in task.examples(s)} for s in ("train", "validation", "test")]
        assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


def test_hash_split_does_not_depend_on_row_order():
    rows = [{"document": f"story number {i} .", "summary": f"summary {i} ."} for i in range(100)]
    a = lds.load_task(rows, "summarize")
    b = lds.load_task(rows[::-1], "summarize")
    for split in ("train", "validation", "test"):
        assert {e.source for e in a.examples(split)} == {e.source for e in b.examples(split)}
    assert len(a.examples("validation")) == 5


def test_parquet_and_columns_mapping_and_merged_references(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"body": ["Alpha beta.", "Alpha beta.", "Gamma delta.", "Eps zeta.", "Eta theta."],
                      "tldr": ["alpha", "beta", "gamma", "eps", "eta"]})
    pq.write_table(table, tmp_path / "d.parquet")
    task = lds.load_task(tmp_path / "d.parquet", "summarize", columns={"source": "body", "target": "tldr"})
    merged = [e for s in ("train", "validation", "test") for e in task.examples(s) if e.source == "alpha beta ."]
    assert len(merged) == 1 and merged[0].references == ("alpha", "beta")


def test_keywords_and_review_kinds():
    rows = [{"concepts": ["dog", "Ball", "throw"], "target": "The dog throws the ball."},
            {"concepts": ["dog", "Ball", "throw"], "target": "A dog will throw a ball."}] + [
        {"concepts": f"cat{i}, sofa", "target": f"cat{i} sleeps on the sofa ."} for i in range(30)]
    task = lds.load_task(rows, "keywords", template="{source} :")
    example = next(e for s in task.splits for e in task.examples(s) if e.source == "dog ball throw")
    assert example.meta["keywords"] == ["dog", "ball", "throw"] and len(example.references) == 2
    env = gym.make("lmgym/Keywords-v0", dataset=rows)
    assert env.unwrapped.scorer.name == "1*keyword_coverage+1*ngram_fluency"

    reviews = [{"text": f"I bought item {i} last week and it is great, I love it and recommend it."} for i in range(30)]
    env = gym.make("lmgym/PositiveReview-v0", dataset=reviews, prompt_words=5)
    obs, info = env.reset(seed=0)
    assert len(info["prompt"].split()) == 5 and info["references"][0].startswith("week and")


def test_presets_load_through_datasets_with_their_config(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, config=None):
        calls.append((path, config))
        rows = [{"translation": {"de": f"Hallo {i} .", "en": f"Hello {i} ."}} for i in range(12)]
        return datasets.DatasetDict({"train": datasets.Dataset.from_list(rows),
                                     "validation": datasets.Dataset.from_list(rows[:3]),
                                     "test": datasets.Dataset.from_list(rows[3:6])})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = lds.load_task("wmt16", "translate")
    assert calls == [("wmt/wmt16", "de-en")]
    assert task.examples("validation")[0].source == "hallo 0 ."
    assert task.examples("validation")[0].references == ("hello 0 .",)
    with pytest.raises(TaskError, match="summarize env"):
        lds.load_task("xsum", "translate")


def test_unreachable_hub_id_names_the_presets(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(TaskError, match=r"Did you mean 'xsum'\?.*Presets: cnn_dailymail"):
        lds.load_task("xsumm", "summarize")


def test_bad_inputs_raise_typed_errors_naming_the_fix(tmp_path, news_file):
    with pytest.raises(TaskError, match="does not exist"):
        gym.make("lmgym/Summarize-v0", dataset=str(tmp_path / "missing.jsonl"))
    with pytest.raises(TaskError, match=r"columns=\{'target'"):
        lds.load_task([{"document": "a b c", "label": 1}] * 5, "summarize")
    with pytest.raises(TaskError, match="Did you mean 'highlights'"):
        lds.load_task(news_file, "summarize", columns={"target": "highlight"})
    with pytest.raises(TaskError, match="empty"):
        lds.load_task([], "summarize")
    with pytest.raises(TaskError, match="none with a non-empty source"):
        lds.load_task([{"document": "   ", "summary": "x"}] * 5, "summarize")
    with pytest.raises(TaskError, match="direction="):
        lds.load_task([{"translation": {"de": "a", "en": "b"}}] * 5, "translate")
    with pytest.raises(TaskError, match="direction='de-en'"):
        lds.load_task([{"translation": {"de": "a", "en": "b"}}] * 5, "translate", direction="fr-en")
    with pytest.raises(TaskError, match="Unknown task kind"):
        lds.load_task(news_file, "sumarize")
    with pytest.raises(TaskError, match="Unsupported file type"):
        (tmp_path / "x.txt").write_text("hi")
        lds.load_task(tmp_path / "x.txt", "summarize")
    with pytest.raises(TaskError, match="Unknown split 'dev'"):
        gym.make("lmgym/Summarize-v0", dataset=str(news_file), split="dev")
    with pytest.raises(TokenizerError, match="does not exist"):
        gym.make("lmgym/Summarize-v0", dataset=str(news_file), tokenizer=str(tmp_path / "no_tokenizer"))


def test_prompt_that_tokenizes_to_nothing_fails_at_construction():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())  # no unknown token: characters it never saw vanish
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(["hello"], trainers.BpeTrainer(special_tokens=["<pad>", "<eos>"], show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    ok = [{"source": "hello", "target": "hello"}]
    rows = {"train": [{"source": "…", "target": "hello"}], "validation": ok, "test": ok}
    with pytest.raises(TokenizerError, match="tokenizes to nothing"):
        gym.make("lmgym/Translate-v0", dataset=rows, tokenizer=tokenizer)
    with pytest.raises(TaskError, match="at least 3"):
        lds.load_task([{"source": "a", "target": "b"}, {"source": "c", "target": "d"}], "translate")


def test_normalize_text():
    assert normalize_text("Hello,  World! It's 5pm.") == "hello , world ! it ' s 5pm ."
