"""The built-in generated corpora: deterministic, disjoint, closed-vocabulary, short, fast."""

from __future__ import annotations

import time

import pytest

from lmgym.envs import keywords_corpus, review_corpus, summarize_corpus, translate_corpus
from lmgym.envs.corpus_sampling import Draws, corpus_hash, disjoint_splits
from lmgym.task import Example

CORPORA = {
    "summarize": summarize_corpus,
    "translate": translate_corpus,
    "review": review_corpus,
    "keywords": keywords_corpus,
}
SMALL = {"train": 300, "validation": 50, "test": 50}
# Longest prompt / reference (in tokens) each corpus promises.
LIMITS = {
    "summarize": (summarize_corpus.MAX_DOCUMENT_TOKENS + 2, summarize_corpus.MAX_SUMMARY_TOKENS),
    "translate": (translate_corpus.MAX_SENTENCE_TOKENS, translate_corpus.MAX_SENTENCE_TOKENS),
    "review": (review_corpus.MAX_PROMPT_TOKENS, review_corpus.MAX_CONTINUATION_TOKENS),
    "keywords": (5, keywords_corpus.MAX_SENTENCE_TOKENS),
}


@pytest.fixture(scope="module")
def full() -> dict[str, dict[str, list[Example]]]:
    """Every corpus at its default size and seed 0 (built once for the module)."""
    return {name: module.build_splits(0) for name, module in CORPORA.items()}


@pytest.mark.parametrize("name", CORPORA)
def test_same_seed_same_corpus_and_other_seed_differs(name):
    module = CORPORA[name]
    a, b, c = (corpus_hash(module.build_splits(seed, sizes=SMALL)) for seed in (3, 3, 4))
    assert a == b
    assert a != c


@pytest.mark.parametrize("name", CORPORA)
def test_default_sizes_and_disjoint_splits(full, name):
    splits = full[name]
    assert {k: len(v) for k, v in splits.items()} == {"train": 10_000, "validation": 500, "test": 500}
    key = (lambda ex: frozenset(ex.meta["keywords"])) if name == "keywords" else (lambda ex: ex.source)
    keys = {split: {key(ex) for ex in examples} for split, examples in splits.items()}
    assert all(len(keys[s]) == len(splits[s]) for s in splits)  # no duplicates inside a split
    assert not keys["train"] & keys["validation"]
    assert not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]


@pytest.mark.parametrize("name", CORPORA)
def test_closed_vocabulary_and_length_limits(full, name):
    module = CORPORA[name]
    vocab = set(module.vocabulary())
    assert 100 <= len(vocab) <= 2000
    assert all(w == w.lower() and " " not in w for w in vocab)
    max_prompt, max_ref = LIMITS[name]
    used: set[str] = set()
    for examples in full[name].values():
        for ex in examples:
            assert len(ex.prompt.split()) <= max_prompt
            for ref in ex.references:
                assert 0 < len(ref.split()) <= max_ref
                used.update(ref.split())
            used.update(ex.prompt.split())
    assert used <= vocab, sorted(used - vocab)[:10]
    assert len(used) >= 0.95 * len(vocab)  # the vocabulary is not padded with unused words


@pytest.mark.parametrize("name", CORPORA)
def test_ten_thousand_examples_in_under_two_seconds(name):
    start = time.perf_counter()
    CORPORA[name].build_splits(11, sizes={"train": 10_000})
    assert time.perf_counter() - start < 2.0


def test_held_out_splits_do_not_depend_on_train_size():
    small = summarize_corpus.build_splits(0, sizes=SMALL)
    assert [ex.source for ex in small["validation"]] == [
        ex.source for ex in summarize_corpus.build_splits(0, sizes={**SMALL, "train": 10})["validation"]
    ]


def test_summaries_fuse_facts_rather_than_copy_a_sentence(full):
    """The summary is never one of the document's sentences, and the lead sentence is usually a distractor."""
    examples = full["summarize"]["validation"]
    for ex in examples:
        assert ex.references[0] not in ex.source
    first_has_no_summary_number = 0
    for ex in examples:
        first = ex.source.split(" . ")[0].split()
        numbers = [w for w in ex.references[0].split() if w.isdigit()]
        first_has_no_summary_number += not any(n in first for n in numbers)
    assert first_has_no_summary_number > 0.6 * len(examples)


def test_translation_is_verb_final_with_agreement():
    lex = translate_corpus.lexicon()
    draws = Draws(5)
    for _ in range(50):
        english, xx = translate_corpus.make_pair(draws)
        verb = xx.split()[-2]  # the last word before "."
        assert verb.removesuffix("r")[:-1] in lex.verbs.values()
        assert translate_corpus.OBJECT in xx.split()
        assert english.split()[-2] not in {base for base, _, _ in translate_corpus.VERBS}
    # Every inflected form is a distinct word and the two languages share only ".".
    assert set(translate_corpus.english_words()) & set(translate_corpus.xx_words()) == {"."}
    # Both directions hold the same pairs.
    en_xx = translate_corpus.build_splits(0, "en-xx", sizes=SMALL)["validation"][:20]
    xx_en = translate_corpus.build_splits(0, "xx-en", sizes=SMALL)["validation"][:20]
    assert [(a.source, a.references) for a in en_xx] == [(b.references[0], (b.source,)) for b in xx_en]


def test_keywords_appear_in_every_reference(full):
    for ex in full["keywords"]["validation"]:
        assert 3 <= len(ex.meta["keywords"]) <= 4
        assert len(ex.references) == 2 and ex.references[0] != ex.references[1]
        for ref in ex.references:
            assert set(ex.meta["keywords"]) <= set(ref.split())


def test_disjoint_splits_rejects_a_too_small_key_space():
    def tiny(draws: Draws) -> tuple[str, Example]:
        word = draws.pick(["a", "b", "c"])
        return word, Example(source=word, prompt=word, references=(word,))

    with pytest.raises(ValueError, match="distinct"):
        disjoint_splits(tiny, 0, {"train": 5, "validation": 1})


def test_draws_sample_is_distinct_and_deterministic():
    a, b = Draws(1), Draws(1)
    for k, n in ((2, 100), (5, 8), (8, 8)):
        first = a.sample(range(n), k)
        assert first == b.sample(range(n), k)
        assert len(set(first)) == k
    with pytest.raises(ValueError):
        a.sample([1, 2], 3)
