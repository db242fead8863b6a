"""Real datasets as tasks: a hub id, a local file or in-memory rows -> a :class:`~lmgym.task.Task`.

``load_task(dataset, kind=...)`` accepts:

- a **preset** name (:data:`PRESETS`: ``"cnn_dailymail"``, ``"xsum"``, ``"wmt16"``, ``"imdb"``,
  ``"common_gen"``), which fixes the hub id, config and columns;
- any other **hub id** (loaded with ``datasets.load_dataset``; needs the network or the HF cache);
- a **local file** (``.jsonl``/``.json``, ``.csv``, ``.parquet``), a folder holding one file per
  split (``train.jsonl``, ``validation.jsonl``, ``test.jsonl``), or a ``{split: file}`` dict;
- an in-memory ``datasets.Dataset``/``DatasetDict``, a list of dicts, or a ``{split: rows}`` dict.

Columns are found by their usual names (:data:`ALIASES`, e.g. ``document``/``article``/``text``
-> ``summary``/``highlights``; ``source`` -> ``target``; a ``translation`` dict keyed by language,
read with ``direction="de-en"``); ``columns={"source": "my_col", "target": "other"}`` maps the
rest. Rows with the same source are merged into one example with several references.

Splits: the dataset's own ``train``/``validation``/``test`` (``valid``/``val``/``dev`` count as
validation) when present; missing held-out splits are carved from train, and a dataset without
splits is divided 90/5/5, both deterministically by a hash of each source text.

Every problem (no such file, missing columns, empty data, unknown split or preset) raises
:class:`~lmgym.errors.TaskError` naming the fix, before anything is built.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmgym.data_tokenizer import normalize_text
from lmgym.errors import TaskError, did_you_mean
from lmgym.task import SPLITS, Example, Task
from lmgym.validation import check_int

KINDS = ("summarize", "translate", "review", "keywords")

#: The fields each kind of task reads, and the column names tried for each, in order.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "summarize": {"source": ("document", "article", "text", "source", "dialogue", "input"),
                  "target": ("summary", "highlights", "target", "abstract", "output")},
    "translate": {"source": ("source", "src", "input"), "target": ("target", "tgt", "output")},
    "review": {"text": ("text", "review", "content", "sentence")},
    "keywords": {"keywords": ("keywords", "concepts", "concept_set", "concept_set_idx"),
                 "target": ("target", "sentence", "text", "scene")},
}
SPLIT_ALIASES: dict[str, str] = {"train": "train", "training": "train", "validation": "validation",
                                 "valid": "validation", "val": "validation", "dev": "validation",
                                 "test": "test", "testing": "test"}
FILE_FORMATS: dict[str, str] = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class DatasetPreset:
    """How to load a well-known hub dataset: its id, config, task kind and columns."""

    path: str
    kind: str
    config: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    direction: str | None = None
    description: str = ""


PRESETS: dict[str, DatasetPreset] = {
    "cnn_dailymail": DatasetPreset("abisee/cnn_dailymail", "summarize", "3.0.0",
                                   {"source": "article", "target": "highlights"},
                                   description="CNN/DailyMail news articles and highlight summaries"),
    "xsum": DatasetPreset("EdinburghNLP/xsum", "summarize", None, {"source": "document", "target": "summary"},
                          description="BBC articles and one-sentence summaries"),
    "wmt16": DatasetPreset("wmt/wmt16", "translate", "de-en", direction="de-en",
                           description="WMT16 German-English news translation"),
    "imdb": DatasetPreset("stanfordnlp/imdb", "review", None, {"text": "text"},
                          description="IMDB movie reviews (openings and continuations)"),
    "common_gen": DatasetPreset("allenai/common_gen", "keywords", None,
                                {"keywords": "concepts", "target": "target"},
                                description="CommonGen concept sets and sentences"),
}
_PRESET_BY_PATH = {p.path: name for name, p in PRESETS.items()}


# ---- reading rows ----------------------------------------------------------------------------
def _read_file(path: Path) -> list[dict[str, Any]]:
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise TaskError(f"Unsupported file type {path.suffix!r} for {str(path)!r}; use one of "
                        f"{', '.join(FILE_FORMATS)} or pass rows/a datasets.Dataset.")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        # utf-8-sig: a byte-order mark (as some editors write) is not part of the first row.
        with open(path, encoding="utf-8-sig", newline="") as fh:
            if fmt == "csv":
                return list(csv.DictReader(fh))
            text = fh.read()
        stripped = text.lstrip()
        if path.suffix.lower() == ".json" and stripped.startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise TaskError(f"Could not read {str(path)!r}: {exc}. Check that it is valid {fmt}.") from exc


def _read_folder(folder: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for file in sorted(folder.iterdir()):
        split = SPLIT_ALIASES.get(file.stem.lower())
        if split and file.suffix.lower() in FILE_FORMATS:
            found[split] = _read_file(file)
    if not found:
        raise TaskError(f"Folder {str(folder)!r} has no split files; put train.jsonl (and optionally "
                        "validation.jsonl, test.jsonl; .csv/.parquet work too) in it, or pass a file.")
    return found


def _load_hub(path: str, config: str | None) -> dict[str, Any]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise TaskError("Loading hub datasets needs the 'datasets' package: pip install datasets") from exc
    try:
        loaded = datasets.load_dataset(path, config) if config else datasets.load_dataset(path)
    except Exception as exc:  # offline, unknown id, missing config: all the same to the user
        raise TaskError(
            f"Could not load dataset {path!r}{f' (config {config!r})' if config else ''}: "
            f"{type(exc).__name__}: {exc}.{did_you_mean(path, PRESETS)} Presets: {', '.join(PRESETS)}. "
            "Offline, pass a local file (.jsonl/.csv/.parquet), a folder of split files, or rows."
        ) from exc
    return dict(loaded)


def read_splits(dataset: Any, config: str | None = None) -> dict[str, Any]:
    """Read ``dataset`` into ``{split name: rows}`` (split names as the dataset gives them).

    A source without splits comes back as ``{"all": rows}``. Rows are lists of dicts or
    ``datasets.Dataset`` objects (both iterate as dicts).
    """
    if isinstance(dataset, (str, os.PathLike)):
        name = os.fspath(dataset)
        path = Path(name).expanduser()
        if path.is_dir():
            return _read_folder(path)
        if path.is_file():
            return {"all": _read_file(path)}
        if path.suffix.lower() in FILE_FORMATS or name.startswith((".", "/", "~")) or name.count("/") > 1:
            raise TaskError(f"Dataset file {name!r} does not exist. Pass an existing .jsonl/.csv/.parquet "
                            "file, a folder of split files, a preset or a hub id.")
        preset = PRESETS.get(name) or PRESETS.get(_PRESET_BY_PATH.get(name, ""))
        if preset is not None:
            return _load_hub(preset.path, config or preset.config)
        return _load_hub(name, config)
    if isinstance(dataset, Mapping):
        out = {}
        for split, rows in dataset.items():
            if isinstance(rows, (str, os.PathLike)):
                rows = _read_file(Path(rows))
            out[str(split)] = rows
        if not out:
            raise TaskError("The dataset dict is empty; give it at least a 'train' split.")
        return out
    if isinstance(dataset, Sequence) or _is_hf_dataset(dataset):
        return {"all": dataset}
    raise TaskError(
        f"dataset must be a preset, hub id, file path, datasets.Dataset, list of dicts or {{split: rows}}; "
        f"got {type(dataset).__name__}."
    )


def read_records(source: Any, error: type[TaskError] = TaskError) -> list[Any]:
    """Every row of every split of ``source`` (anything :func:`read_splits` reads), in order, as one list.

    Record files (reward-labelled logs, preference pairs, labels) use this: their splits carry no meaning.
    A read problem is raised as ``error`` (a :class:`TaskError` subclass naming the kind of data).
    """
    try:
        return [row for rows in read_splits(source).values() for row in rows]
    except TaskError as exc:
        if isinstance(exc, error):
            raise
        raise error(str(exc)) from exc


def _is_hf_dataset(obj: Any) -> bool:
    return type(obj).__name__ == "Dataset" and hasattr(obj, "column_names")


def _column_names(rows: Any) -> list[str]:
    if _is_hf_dataset(rows):
        return list(rows.column_names)
    names: dict[str, None] = {}
    for row in rows[:100]:
        if not isinstance(row, Mapping):
            raise TaskError(f"Rows must be dicts (column -> value); got {type(row).__name__}.")
        names.update(dict.fromkeys(row))
    return list(names)


# ---- rows -> (source, reference, meta) --------------------------------------------------------
def resolve_columns(kind: str, available: Sequence[str], columns: Mapping[str, str] | None,
                    direction: str | None) -> dict[str, str]:
    """Map each field the task kind needs to a column of the data (explicit, then aliases).

    Raises:
        TaskError: naming the missing field, the columns that exist and the ``columns=`` fix.
    """
    columns = dict(columns or {})
    needed = ALIASES[kind]
    unknown = set(columns) - set(needed)
    if unknown:
        raise TaskError(f"columns= has unknown field(s) {sorted(unknown)} for a {kind} task; "
                        f"the fields are {sorted(needed)}.")
    if kind == "translate" and not columns and "translation" in available:
        if not direction or "-" not in direction:
            raise TaskError("This dataset has a 'translation' column; say which way to translate with "
                            "direction='de-en' (source language, then target language).")
        return {"translation": "translation"}
    resolved = {}
    for name, aliases in needed.items():
        col = columns.get(name) or next((a for a in aliases if a in available), None)
        if col is None or col not in available:
            what = f"column {col!r}" if col else f"a {name} column (tried {', '.join(aliases)})"
            raise TaskError(
                f"The dataset has no {what}.{did_you_mean(col or name, available)} Its columns are "
                f"{', '.join(available) or '(none)'}; map them with columns={{'{name}': '<column>', ...}}."
            )
        resolved[name] = col
    return resolved


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    return str(value).strip()


def _targets(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [t for t in (_text(v) for v in value) if t]
    text = _text(value)
    return [text] if text else []


def _keywords(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [k for k in (_text(v) for v in value) if k]
    text = _text(value)
    return [k.strip() for k in (text.split(",") if "," in text else text.split()) if k.strip()]


@dataclass
class _Row:
    source: str
    targets: list[str]
    meta: dict[str, Any]


def _rows(kind: str, rows: Iterable[Mapping[str, Any]], cols: dict[str, str], direction: str | None,
          normalize: bool, max_source_words: int | None, prompt_words: int) -> Iterable[_Row]:
    norm = normalize_text if normalize else (lambda s: " ".join(s.split()))
    for number, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TaskError(f"Row {number} is a {type(row).__name__}; every row must be a dict (column -> value).")
        lacking = [c for c in cols.values() if c not in row]
        if lacking:
            raise TaskError(f"Row {number} has no {', '.join(map(repr, lacking))} column (its columns are "
                            f"{', '.join(map(str, row)) or 'none'}); give every row the same columns.")
        meta: dict[str, Any] = {}
        if kind == "translate" and "translation" in cols:
            src_lang, _, tgt_lang = direction.partition("-")  # type: ignore[union-attr]
            pair = row["translation"] or {}
            source, targets = _text(pair.get(src_lang)), _targets(pair.get(tgt_lang))
        elif kind == "review":
            words = norm(_text(row[cols["text"]])).split()
            source, targets = " ".join(words[:prompt_words]), [" ".join(words[prompt_words:prompt_words + 40])]
        elif kind == "keywords":
            keywords = [norm(k) for k in _keywords(row[cols["keywords"]])]
            meta["keywords"] = [k for k in keywords if k]
            source, targets = " ".join(meta["keywords"]), _targets(row[cols["target"]])
        else:
            source, targets = _text(row[cols["source"]]), _targets(row[cols["target"]])
        source = norm(source)
        if max_source_words is not None:
            source = " ".join(source.split()[:max_source_words])
        targets = [t for t in (norm(t) for t in targets) if t]
        if source and targets:
            yield _Row(source, targets, meta)


def _merge(rows: Iterable[_Row], limit: int | None = None) -> dict[str, _Row]:
    """Merge rows with the same source (several references for one example), in first-seen order.

    Stops at the first row with a new source once ``limit`` examples exist.
    """
    merged: dict[str, _Row] = {}
    for row in rows:
        seen = merged.get(row.source)
        if seen is None:
            if limit is not None and len(merged) >= limit:
                break
            merged[row.source] = _Row(row.source, list(row.targets), row.meta)
        else:
            seen.targets.extend(t for t in row.targets if t not in seen.targets)
    return merged


def _hash_order(sources: Iterable[str]) -> list[str]:
    return sorted(sources, key=lambda s: hashlib.sha256(s.encode("utf-8", "surrogatepass")).digest())


def split_by_hash(sources: Sequence[str], fractions: Mapping[str, float]) -> dict[str, list[str]]:
    """Divide ``sources`` deterministically (by a hash of each text) into splits of the given fractions.

    Every split with a positive fraction gets at least one source. The assignment of a text does
    not depend on the order of the rows.
    """
    order = _hash_order(sources)
    names = list(fractions)
    held = {n: max(1, round(fractions[n] * len(order))) for n in names[1:]}
    out, start = {}, 0
    for name in names[1:]:
        out[name] = order[start : start + held[name]]
        start += held[name]
    out[names[0]] = order[start:]
    return {n: out[n] for n in names}


def load_task(
    dataset: Any,
    kind: str,
    *,
    columns: Mapping[str, str] | None = None,
    config: str | None = None,
    direction: str | None = None,
    max_examples: int | None = None,
    normalize: bool = True,
    template: str = "{source}",
    max_source_words: int | None = None,
    prompt_words: int = 8,
    name: str | None = None,
) -> Task:
    """Load ``dataset`` as a :class:`~lmgym.task.Task` of the given ``kind``.

    Args:
        dataset: preset name, hub id, local file/folder, ``{split: file}``, ``datasets.Dataset``
            or ``DatasetDict``, list of dicts, or ``{split: rows}``.
        kind: ``"summarize"``, ``"translate"``, ``"review"`` or ``"keywords"``.
        columns: field -> column name, for columns the aliases do not find.
        config: hub config name (presets bring their own).
        direction: ``"src-tgt"`` languages for a ``translation`` dict column (e.g. ``"de-en"``).
        max_examples: keep at most this many examples per split (after splitting).
        normalize: lowercase and split punctuation (needed by word-level tokenizers built from
            the data); ``False`` keeps the raw text (for a pretrained tokenizer).
        template: prompt template with a ``{source}`` field.
        max_source_words: cut sources to this many words (long news articles).
        prompt_words: for ``review``, how many opening words make the prompt (the rest, up to
            40 words, is the reference continuation).
        name: task name (default: the dataset name or ``kind``).

    Raises:
        TaskError: for an unknown kind, unreadable/missing data, missing columns, or no usable rows.
    """
    max_examples = check_int("max_examples", max_examples, minimum=1, optional=True, error=TaskError,
                             hint="Leave it out (None) to keep every example.")
    if kind not in KINDS:
        raise TaskError(f"Unknown task kind {kind!r}.{did_you_mean(kind, KINDS)} Kinds: {', '.join(KINDS)}.")
    preset = None
    if isinstance(dataset, str):
        preset = PRESETS.get(dataset) or PRESETS.get(_PRESET_BY_PATH.get(dataset, ""))
        if preset is not None and not Path(dataset).exists():
            if preset.kind != kind:
                raise TaskError(f"Preset {dataset!r} is a {preset.kind} dataset, not {kind}; use it with the "
                                f"{preset.kind} env.")
            columns = columns or preset.columns
            direction = direction or preset.direction
    raw = read_splits(dataset, config)
    examples: dict[str, list[Example]] = {}
    grouped: dict[str, dict[str, _Row]] = {}
    for split, rows in raw.items():
        target_split = "all" if split == "all" else SPLIT_ALIASES.get(split.lower())
        if target_split is None:
            continue  # e.g. "unsupervised" in imdb
        if len(rows) == 0:
            raise TaskError(f"Split {split!r} of the dataset is empty; give it at least one row.")
        cols = resolve_columns(kind, _column_names(rows), columns, direction)
        if "translation" in cols:
            _check_languages(rows, direction)  # type: ignore[arg-type]
        limit = None if target_split == "all" else max_examples
        merged = _merge(_rows(kind, rows, cols, direction, normalize, max_source_words, prompt_words), limit)
        if not merged:
            raise TaskError(f"Split {split!r} has {len(rows)} row(s) but none with a non-empty source and "
                            f"target ({', '.join(f'{k}={v!r}' for k, v in cols.items())}); fix the data or columns=.")
        grouped[target_split] = merged
    if not grouped:
        raise TaskError(f"The dataset has no usable split (found {', '.join(raw) or 'none'}); "
                        f"name them {', '.join(SPLITS)}.")
    if "all" in grouped:
        grouped = _carve(grouped.pop("all"), {"train": 0.9, "validation": 0.05, "test": 0.05})
    if "train" not in grouped:
        raise TaskError(f"The dataset has no train split (found {', '.join(grouped)}); add one or pass rows "
                        "without splits to have them divided 90/5/5.")
    missing = [s for s in ("validation", "test") if s not in grouped]
    if missing:
        fractions = {"train": 1.0, **dict.fromkeys(missing, 0.05)}
        grouped.update(_carve(grouped["train"], fractions))
    for split in SPLITS:
        rows = list(grouped[split].values())[:max_examples]
        examples[split] = [Example(source=r.source, prompt=template.format(source=r.source),
                                   references=tuple(r.targets), meta=r.meta) for r in rows]
    label = name or (dataset if isinstance(dataset, str) else kind)
    return Task(name=str(label), splits=examples, vocabulary=None, template=template,
                description=f"{kind} examples from {label}" + (f" ({preset.description})" if preset else ""))


def _carve(rows: dict[str, _Row], fractions: Mapping[str, float]) -> dict[str, dict[str, _Row]]:
    if len(rows) < len(fractions):
        raise TaskError(f"Only {len(rows)} distinct example(s): need at least {len(fractions)} to make the "
                        f"{', '.join(fractions)} splits. Add rows or give the splits explicitly.")
    position = {src: i for i, src in enumerate(rows)}
    parts = split_by_hash(list(rows), fractions)
    return {split: {src: rows[src] for src in sorted(srcs, key=position.__getitem__)}
            for split, srcs in parts.items()}


def _check_languages(rows: Any, direction: str) -> None:
    first = next(iter(rows))["translation"] or {}
    langs = direction.split("-")
    if len(langs) != 2 or any(lang not in first for lang in langs):
        raise TaskError(f"direction={direction!r} does not match the dataset's languages "
                        f"{sorted(first)}; use e.g. direction='{'-'.join(sorted(first))}'.")
