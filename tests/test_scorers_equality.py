"""The fast ROUGE, BLEU, chrF and TER scorers equal rouge-score's and sacrebleu's own numbers to 1e-9.

lmgym computes ROUGE from memoised token ids with a bit-parallel LCS, and keeps sacrebleu's
reference statistics per distinct reference set (``lmgym.scorers.rouge``, ``lmgym.scorers.overlap``).
The libraries stay the definitions: every value here is compared with a fresh library object's.
Inputs: thousands of random texts (repeats, empty strings, punctuation, digits, non-ASCII,
newlines, inflections), the built-in corpora's texts, and hand-written English sentences; the
same scorer objects score them all, in batches, so memoised texts are reused as in RL.
"""

from __future__ import annotations

import pickle
import random
import time

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from lmgym.scorers import make_scorer
from lmgym.scorers.rouge import RougeCalculator, lcs_indices, lcs_length, lcs_table

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
WORDS = [
    "the", "a", "cat", "cats", "dog", "dogs", "running", "runs", "ran", "run", "quickly", "quick", "summary",
    "summaries", "police", "killed", "kill", "gunman", "is", "was", "were", "on", "of", "and", "to", "in", "it",
    "be", "happy", "happily", "happiness", "generous", "generously", "organization", "organizations", "connect",
    "connected", "connecting", "connection", "relational", "conditional",
]
ODD = ["", ".", ",", "!", "?", "'s", "n't", "--", "(", ")", "\"", "1", "42", "3.14", "2024", "x2",
       "Ünïcödé", "café", "naïve", "猫", "кошка", "😀", "Straße", "ÉCOLE", "dog's", "e-mail", "U.S.",
       "  ", "\t", "CAT", "Running", "THE"]


def random_text(rng: random.Random, pool: list[str], max_words: int = 40) -> str:
    """Words from a small vocabulary (so n-grams repeat), with odd tokens, newlines and odd spacing."""
    n = rng.choice([0, 0, 1, 2, 3, *range(4, max_words)])
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.15:
            out.append(rng.choice(ODD))
        elif r < 0.2 and pool:
            out.append(" ".join(rng.choice(pool).split(" ")[:8]))  # a piece of an earlier text
        else:
            out.append(rng.choice(WORDS[: rng.choice([4, 10, len(WORDS)])]))
    seps = [" "] * 20 + ["\n", "  ", "", " \n "]
    text = "".join(w + rng.choice(seps) for w in out)
    return text if rng.random() < 0.8 else text.strip()


def random_batch(seed: int, n: int) -> tuple[list[str], list[list[str]]]:
    """``n`` completions with 1-3 references each; references come from a small pool, as in RL."""
    rng = random.Random(seed)
    pool: list[str] = []
    for _ in range(60):
        pool.append(random_text(rng, pool))
    completions, references = [], []
    for _ in range(n):
        refs = [rng.choice(pool) if rng.random() < 0.7 else random_text(rng, pool) for _ in range(rng.randint(1, 3))]
        r = rng.random()
        if r < 0.1:
            completion = refs[0]  # a perfect match
        elif r < 0.2:
            ws = refs[0].split()
            rng.shuffle(ws)
            completion = " ".join(ws)
        else:
            completion = random_text(rng, pool)
        completions.append(completion)
        references.append(refs)
    return completions, references


def corpus_batch() -> tuple[list[str], list[list[str]]]:
    """Built-in corpora texts: each reference against a neighbour's reference, its source and itself."""
    from lmgym.envs.generate import keywords_task, review_task
    from lmgym.envs.summarize import summarize_task
    from lmgym.envs.translate import translate_task

    completions, references = [], []
    for task in (summarize_task(), translate_task(), translate_task(direction="xx-en"), review_task(),
                 keywords_task()):
        examples = task.splits["validation"][:60]
        for k, ex in enumerate(examples):
            other = examples[(k + 1) % len(examples)]
            for completion in (other.references[0], ex.source, ex.references[-1], ex.prompt):
                completions.append(completion)
                references.append(list(ex.references))
    return completions, references


ENGLISH = [
    ("The quick brown fox jumps over the lazy dog.", ["A quick brown dog jumps over the lazy fox."]),
    ("Police arrested the suspects after a long chase through the city centre.",
     ["The suspects were arrested by police following a chase downtown.", "Police chased and arrested suspects."]),
    ("Heavy rain caused flooding in several towns on Tuesday; 40 homes were evacuated.",
     ["Floods forced the evacuation of 40 homes after Tuesday's heavy rain."]),
    ("The committee's decision, announced late on Friday, surprised everyone.\nIt will be reviewed in May.",
     ["Everyone was surprised by the committee's Friday decision.\nA review is due in May."]),
    ("I can't believe it's not butter!", ["I cannot believe it is not butter."]),
    ("Scientists discovered a new species of frog in the rainforests of Ecuador in 2019.",
     ["A new frog species was found in Ecuador's rainforest in 2019.", "New frog species in Ecuador."]),
    ("running runner runs ran", ["run runs running"]),
    ("The the THE tHe", ["the"]),
]


def english_batch() -> tuple[list[str], list[list[str]]]:
    """Hand-written English sentence pairs, both ways round."""
    completions = [c for c, _ in ENGLISH] + [refs[0] for _, refs in ENGLISH]
    references = [refs for _, refs in ENGLISH] + [[c] for c, _ in ENGLISH]
    return completions, references


BATCHES = {"random": lambda: random_batch(0, 2000), "corpora": corpus_batch, "english": english_batch}


def score_in_batches(scorer, completions, references, size=32):
    """Score in env-sized batches with one scorer object, so memoised references are reused."""
    out = []
    for s in range(0, len(completions), size):
        c, r = completions[s : s + size], references[s : s + size]
        out += scorer(["p"] * len(c), c, r)
    return out


def test_random_batch_is_varied():
    completions, references = random_batch(0, 2000)
    texts = completions + [r for refs in references for r in refs]
    assert "" in texts and any("\n" in t for t in texts) and any(not t.isascii() for t in texts)
    assert any(any(ch.isdigit() for ch in t) for t in texts) and any("." in t for t in texts)
    assert len(set(texts)) < len(texts) / 2  # references repeat, as in RL
    assert sum(len(refs) > 1 for refs in references) > 600


@pytest.mark.parametrize("batch", sorted(BATCHES))
@pytest.mark.parametrize("rouge_type", ROUGE_TYPES)
@pytest.mark.parametrize("use_stemmer", [True, False])
def test_rouge_equals_rouge_score(batch, rouge_type, use_stemmer):
    completions, references = BATCHES[batch]()
    if not use_stemmer:
        completions, references = completions[:400], references[:400]
    lib = rouge_scorer.RougeScorer([rouge_type], use_stemmer=use_stemmer)
    expected = [max(lib.score(r, c)[rouge_type].fmeasure for r in refs) for c, refs in zip(completions, references)]
    got = score_in_batches(make_scorer(rouge_type, use_stemmer=use_stemmer), completions, references)
    assert got == pytest.approx(expected, abs=1e-9, rel=0)
    assert len(set(expected)) > (5 if batch == "english" else 50)


@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_rouge_mean_equals_rouge_score(batch):
    completions, references = BATCHES[batch]()
    lib = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = []
    for c, refs in zip(completions, references):
        per_ref = [lib.score(r, c) for r in refs]
        expected.append(max(sum(s[t].fmeasure for t in ("rouge1", "rouge2", "rougeL")) / 3 for s in per_ref))
    got = score_in_batches(make_scorer("rouge"), completions, references)
    assert got == pytest.approx(expected, abs=1e-9, rel=0)


def test_rouge_calculator_other_orders_and_errors():
    completions, references = random_batch(1, 300)
    lib = rouge_scorer.RougeScorer(["rouge3", "rouge4"], use_stemmer=True)
    calc = RougeCalculator()
    for c, refs in zip(completions, references):
        want = lib.score(refs[0], c)
        assert calc.fmeasures(refs[0], c, ["rouge3", "rouge4"]) == pytest.approx(
            [want["rouge3"].fmeasure, want["rouge4"].fmeasure], abs=1e-9, rel=0)
    with pytest.raises(ValueError, match="rouge type"):
        calc.fmeasures("a", "b", ["rouge0"])
    with pytest.raises(ValueError, match="rouge type"):
        calc.fmeasures("a", "b", ["bleu"])


def test_lcs_helpers_equal_rouge_scores_table_and_backtrack():
    rng = random.Random(3)
    for _ in range(1000):
        a = [rng.randrange(rng.choice([2, 5, 50])) for _ in range(rng.randrange(0, 70))]
        b = [rng.randrange(5) for _ in range(rng.randrange(0, 70))]
        table = rouge_scorer._lcs_table(a, b)
        masks: dict[int, int] = {}
        for i, c in enumerate(a):
            masks[c] = masks.get(c, 0) | (1 << i)
        assert lcs_length(masks, len(a), b) == table[-1][-1]
        assert lcs_table(a, b).tolist() == table
        assert lcs_indices(a, b) == rouge_scorer.lcs_ind(a, b)


def test_rouge_memo_is_bounded_and_scores_do_not_depend_on_it():
    completions, references = random_batch(2, 400)
    small = RougeCalculator(maxsize=7)
    big = RougeCalculator()
    for c, refs in zip(completions, references):
        assert small.fmeasures(refs[0], c, ROUGE_TYPES) == big.fmeasures(refs[0], c, ROUGE_TYPES)
        assert len(small._texts) <= 7 + 1  # emptied between pairs, so a pair may pass the limit by one
    scorer = make_scorer("rouge")
    first = scorer(["p"] * 400, completions, references)
    assert scorer(["p"] * 400, completions[::-1], references[::-1]) == first[::-1]
    copy = pickle.loads(pickle.dumps(scorer))  # the memo is not pickled; the copy rebuilds it
    assert copy._impl is None and copy(["p"] * 400, completions, references) == first


BLEU_INTL = sacrebleu.metrics.BLEU(lowercase=True, tokenize="intl", effective_order=True)
SACREBLEU = [
    ("bleu", {}, lambda c, r: sacrebleu.sentence_bleu(c, r).score),
    ("chrf", {}, lambda c, r: sacrebleu.sentence_chrf(c, r).score),
    ("chrf", {"word_order": 2}, lambda c, r: sacrebleu.sentence_chrf(c, r, word_order=2).score),
    ("bleu", {"lowercase": True, "tokenize": "intl"},
     lambda c, r: BLEU_INTL.sentence_score(c, r).score),
    ("ter", {}, lambda c, r: sacrebleu.sentence_ter(c, r).score),
]


@pytest.mark.parametrize("batch", sorted(BATCHES))
@pytest.mark.parametrize(("name", "options", "library"), SACREBLEU, ids=lambda v: str(v) if not callable(v) else "")
def test_sacrebleu_scorers_equal_sacrebleu(batch, name, options, library):
    completions, references = BATCHES[batch]()
    if name == "ter" and batch == "random":  # sacrebleu's TER takes seconds on long repetitive texts
        completions, references = completions[:25], references[:25]
    elif name == "ter" or options:  # slower or secondary: a part is enough
        completions, references = completions[:600], references[:600]
    expected = [library(c, refs) / 100.0 for c, refs in zip(completions, references)]
    expected = [min(max(v, 0.0), 1.0) if name != "ter" else v for v in expected]
    got = score_in_batches(make_scorer(name, **options), completions, references)
    assert got == pytest.approx(expected, abs=1e-9, rel=0)
    assert len(set(expected)) > (5 if len(expected) < 100 else 30)


def test_batched_chrf_edge_batches_equal_sacrebleu():
    from lmgym.scorers.chrf import batch_chrf_scores

    rng = random.Random(6)
    many_chars = ["".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(60)) for _ in range(40)]
    batches = [
        (["", " ", ""], [[""], ["", " "], ["a"]]),  # nothing to count
        (["a", "ab", "abcdefgh"], [["abcdefgh"], ["b"], ["ab", "abcdefgh", "hgfedcba"]]),  # short texts
        (many_chars[:20], [[t] for t in many_chars[20:]]),  # too many distinct characters: sacrebleu's path
        (["The Cat", "the cat"], [["the cat", "The Cat"], ["THE CAT"]]),
    ]
    for lowercase in (False, True):
        for whitespace in (False, True):
            metric = sacrebleu.metrics.CHRF(lowercase=lowercase, whitespace=whitespace)
            scorer = make_scorer("chrf", lowercase=lowercase, whitespace=whitespace)
            for completions, references in batches:
                expected = [metric.sentence_score(c, r).score for c, r in zip(completions, references)]
                got = scorer(["p"] * len(completions), completions, references)
                assert got == pytest.approx([min(e / 100, 1.0) for e in expected], abs=1e-9, rel=0)
    assert batch_chrf_scores(sacrebleu.metrics.CHRF(), many_chars[:20], [[t] for t in many_chars[20:]]) is None


def test_sacrebleu_memo_is_bounded_and_checks_types():
    from lmgym.scorers.overlap import SentenceMetric

    completions, references = random_batch(4, 200)
    metric = SentenceMetric(sacrebleu.metrics.CHRF(), maxsize=5)
    for c, refs in zip(completions, references):
        assert metric.score(c, refs) == sacrebleu.sentence_chrf(c, refs).score
        assert len(metric._references) <= 5
    with pytest.raises(TypeError):
        metric.score(None, ["a"])
    with pytest.raises(TypeError):
        metric.score("a", "a")


def test_fast_scorers_beat_the_libraries_on_an_env_batch():
    # One Summarize-sized batch: 32 completions of ~60 words against repeated ~15-word references.
    completions, references = random_batch(5, 2000)
    rng = random.Random(5)
    completions = [" ".join(rng.choice(WORDS) for _ in range(60)) for _ in range(32)]
    references = references[:32]
    lib = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    fast = make_scorer("rouge")
    fast(["p"] * 32, completions, references)  # references memoised, as after the first episode
    t0 = time.perf_counter()
    for _ in range(3):
        fast(["p"] * 32, completions, references)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(3):
        for c, refs in zip(completions, references):
            for r in refs:
                lib.score(r, c)
    t_lib = time.perf_counter() - t0
    assert t_fast < t_lib / 3
