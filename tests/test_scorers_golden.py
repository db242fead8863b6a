"""Golden tests: every metric scorer equals its reference library's own number, and the lmgym-native
scorers (keyword coverage, repetition, length, n-gram fluency) give the documented values."""

from __future__ import annotations

import math

import pytest
import sacrebleu
from rouge_score import rouge_scorer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from lmgym.scorers import make_scorer
from lmgym.scorers.fluency import NgramFluency

# (completion, references): varied lengths, punctuation, casing, inflections, several references,
# empty completions and references, non-ASCII (which rouge-score's tokenizer drops).
PAIRS: list[tuple[str, list[str]]] = [
    ("the cat sat on the mat", ["the cat sat on the mat"]),
    ("the cat sat on the mat", ["a cat was sitting on a mat"]),
    ("", ["the cat sat on the mat"]),
    ("", [""]),
    ("the cat", [""]),
    ("The Cat SAT on the mat.", ["the cat sat on the mat ."]),
    ("running dogs runs quickly", ["the dog ran quick", "a dog runs quickly"]),
    ("police killed the gunman", ["police kill the gunman", "the gunman was shot down by police"]),
    ("the gunman police killed", ["police kill the gunman"]),
    ("a b c d e f g h i j", ["j i h g f e d c b a"]),
    ("a a a a a a", ["a b a b a b"]),
    ("the the the the", ["the cat is on the mat"]),
    ("Le chat est sur le tapis.", ["Le chat est assis sur le tapis."]),
    ("Der Hund läuft schnell über die Straße", ["Der Hund rennt über die Straße"]),
    ("猫はマットの上に座った", ["猫がマットの上に座っている"]),
    ("кошка сидит на ковре", ["кошка сидела на ковре", "кот на ковре"]),
    ("naïve café résumé", ["naive cafe resume"]),
    ("emoji 😀 test", ["emoji test 😀"]),
    (
        "It is a guide to action which ensures that the military always obeys the commands of the party.",
        [
            "It is a guide to action that ensures that the military will forever heed Party commands.",
            "It is the guiding principle which guarantees the military forces always being under the command "
            "of the Party.",
            "It is the practical guide for the army always to heed the directions of the party.",
        ],
    ),
    (
        "It is to insure the troops forever hearing the activity guidebook that party direct.",
        ["It is a guide to action that ensures that the military will forever heed Party commands."],
    ),
    ("summary one.\nsummary two.", ["summary two.\nsummary one."]),
    ("first line\nsecond line\nthird", ["first line\nthird line"]),
    ("numbers 1 2 3 4 5", ["numbers 1 2 3 4 5 6"]),
    ("x", ["x"]),
    ("x", ["y"]),
    ("    spaced     out    words   ", ["spaced out words"]),
]


def _batch():
    prompts = ["prompt"] * len(PAIRS)
    completions = [c for c, _ in PAIRS]
    references = [refs for _, refs in PAIRS]
    return prompts, completions, references


def test_enough_varied_pairs():
    assert len(PAIRS) >= 20
    assert any(c == "" for c, _ in PAIRS)
    assert any(not c.isascii() for c, _ in PAIRS)
    assert any(len(r) > 1 for _, r in PAIRS)


@pytest.mark.parametrize("rouge_type", ["rouge1", "rouge2", "rougeL", "rougeLsum"])
def test_rouge_matches_rouge_score(rouge_type):
    prompts, completions, references = _batch()
    lib = rouge_scorer.RougeScorer([rouge_type], use_stemmer=True)
    expected = [lib.score_multi(refs, c)[rouge_type].fmeasure for c, refs in PAIRS]
    got = make_scorer(rouge_type)(prompts, completions, references)
    assert got == pytest.approx(expected, abs=1e-9)
    assert all(0.0 <= v <= 1.0 for v in got)
    assert max(got) == pytest.approx(1.0) and min(got) == 0.0


def test_rouge_mean_is_best_reference_average_of_1_2_L():
    prompts, completions, references = _batch()
    lib = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = []
    for c, refs in PAIRS:
        per_ref = [lib.score(r, c) for r in refs]
        expected.append(max(sum(s[t].fmeasure for t in ("rouge1", "rouge2", "rougeL")) / 3 for s in per_ref))
    assert make_scorer("rouge")(prompts, completions, references) == pytest.approx(expected, abs=1e-9)


def test_rouge_stemming_and_non_ascii_follow_the_library():
    # use_stemmer=True: "runs" ~ "run"; rouge-score drops non-ASCII characters, so Japanese scores 0.
    assert make_scorer("rouge1")(["p"], ["runs"], [["run"]]) == [1.0]
    assert make_scorer("rouge1")(["p"], ["猫はマット"], [["猫はマット"]]) == [0.0]
    assert make_scorer("rouge1", use_stemmer=False)(["p"], ["runs"], [["run"]]) == [0.0]


@pytest.mark.parametrize(
    ("name", "library_fn"),
    [("bleu", sacrebleu.sentence_bleu), ("chrf", sacrebleu.sentence_chrf), ("ter", sacrebleu.sentence_ter)],
)
def test_sacrebleu_scores_are_library_values_over_100(name, library_fn):
    prompts, completions, references = _batch()
    expected = [library_fn(c, refs).score / 100.0 for c, refs in PAIRS]
    got = make_scorer(name)(prompts, completions, references)
    assert got == pytest.approx(expected, abs=1e-9)
    assert len(set(got)) > 5  # the pairs really are varied


def test_sacrebleu_options_pass_through():
    c, refs = "The Cat sat", ["the cat sat"]
    assert make_scorer("bleu", lowercase=True)(["p"], [c], [refs]) == [pytest.approx(1.0)]
    chrf_pp = sacrebleu.sentence_chrf(c, refs, word_order=2).score / 100
    assert make_scorer("chrf", word_order=2)(["p"], [c], [refs]) == [pytest.approx(chrf_pp, abs=1e-9)]
    assert make_scorer("ter")(["p"], ["a b c"], [["a b c"]]) == [0.0]


def test_sacrebleu_ranges_and_direction():
    bleu, chrf, ter = make_scorer("bleu"), make_scorer("chrf"), make_scorer("ter")
    assert bleu.range == chrf.range == (0.0, 1.0)
    assert ter.range == (0.0, math.inf) and not ter.higher_is_better
    prompts, completions, references = _batch()
    assert all(0.0 <= v <= 1.0 for v in bleu(prompts, completions, references) + chrf(prompts, completions, references))


def test_sentiment_is_vader_compound():
    analyzer = SentimentIntensityAnalyzer()
    texts = [c for c, _ in PAIRS] + [
        "I love this movie, it is wonderful!",
        "terrible, awful, I hate it :(",
        "The movie is not bad at all",
        "GREAT!!!",
        "meh",
    ]
    got = make_scorer("sentiment")(["p"] * len(texts), texts)
    assert got == pytest.approx([analyzer.polarity_scores(t)["compound"] for t in texts], abs=1e-9)
    assert got[texts.index("")] == 0.0
    assert got[-5] > 0.5 and got[-4] < -0.5
    assert all(-1.0 <= v <= 1.0 for v in got)


def test_metric_scorers_need_references():
    for name in ("rouge1", "bleu", "chrf", "ter", "exact_match"):
        with pytest.raises(ValueError, match="reference"):
            make_scorer(name)(["p"], ["text"], None)
    with pytest.raises(ValueError, match="at least one reference"):
        make_scorer("bleu")(["p"], ["text"], [[]])


# ---- lmgym-native scorers ------------------------------------------------------------------------
def test_keyword_coverage_values():
    kc = make_scorer("keyword_coverage")
    completions = ["The dogs were running in the park.", "a cat", "", "ICE CREAM for the Dog", "ice and cream"]
    keywords = [["dog", "run", "park"], ["dog", "cat"], ["dog"], ["ice cream", "dog"], ["ice cream"]]
    assert kc(["p"] * 5, completions, keywords=keywords) == pytest.approx([1.0, 0.5, 0.0, 1.0, 0.0])
    exact = make_scorer("keyword_coverage", stem=False)
    assert exact(["p"], ["The dogs were running in the park."], keywords=[["dog", "run", "park"]]) == [
        pytest.approx(1 / 3)
    ]
    # irregular forms are not stems of each other (documented)
    assert kc(["p"], ["the dog ran"], keywords=[["run"]]) == [0.0]
    # a comma-separated string, and an empty keyword list (nothing missing)
    assert kc(["p", "p"], ["dog park", "x"], keywords=["dog, park, sky", []]) == pytest.approx([2 / 3, 1.0])
    # fixed keywords for every example
    assert make_scorer("keyword_coverage", keywords=["sun"])(["p", "p"], ["Sunny", "the sun"]) == [0.0, 1.0]


def test_keyword_coverage_without_keywords_is_a_clear_error():
    with pytest.raises(ValueError, match="keywords"):
        make_scorer("keyword_coverage")(["p"], ["text"])
    with pytest.raises(ValueError, match="input 1"):
        make_scorer("keyword_coverage")(["p", "p"], ["a", "b"], keywords=[["a"], None])


def test_repetition_values():
    rep = make_scorer("repetition")
    texts = ["a b a b", "a b c d", "", "word", "the the the the the", "A b. a B"]
    assert rep(["p"] * 6, texts) == pytest.approx([1 / 3, 0.0, 0.0, 0.0, 0.75, 1 / 3])
    assert make_scorer("repetition", n=1)(["p"], ["a a b"]) == [pytest.approx(1 / 3)]
    assert not rep.higher_is_better and rep.range == (0.0, 1.0)


def test_length_values():
    assert make_scorer("length", target=4)(["p"] * 4, ["a b c d", "a b", "", "a b c d e f g h i"]) == pytest.approx(
        [1.0, 0.5, 0.0, 0.0]
    )
    refs = [["a b c d", "a b"], ["a b c d"]]
    assert make_scorer("length")(["p", "p"], ["x y", "x y"], refs) == pytest.approx([1.0, 0.5])
    assert make_scorer("length", ratio=0.5)(["p"], ["x y"], [["a b c d"]]) == [1.0]
    assert make_scorer("length", target=0)(["p", "p"], ["", "a"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="target"):
        make_scorer("length")(["p"], ["a"], None)


CORPUS = [
    "the movie was great and the acting was wonderful .",
    "i loved the story and the music .",
    "the actors were great and the plot was fun .",
    "a wonderful film with a great cast .",
    "the music was lovely and the story was moving .",
    "i enjoyed the film and the acting .",
] * 3


def test_ngram_fluency_orders_text_sensibly():
    lm = NgramFluency(CORPUS)
    texts = [
        "the movie was great and the music was lovely .",  # new sentence from the corpus distribution
        "great great great great great great",  # degenerate repetition
        "lovely . the and was music the great was movie",  # shuffled words
        "",
        "xyzzy plugh frobnicate",  # unknown words
        CORPUS[0],
    ]
    good, repeated, shuffled, empty, unknown, seen = lm(["p"] * len(texts), texts)
    assert 0.5 < good <= 1.0 and 0.5 < seen <= 1.0
    assert repeated < 0.1 and shuffled < 0.25 and unknown < 0.1
    assert good > shuffled + 0.3
    assert empty == 0.0


def test_ngram_fluency_formula():
    lm = NgramFluency(["a b", "a c"], n=2, discount=0.5)
    # V = {a, b, c} + </s> + unknown = 5. Unigram counts a2 b1 c1 </s>2 (N=6, 4 types):
    v, d = 5, 0.5
    p1 = {"a": (2 - d) / 6 + d * 4 / 6 / v, "b": (1 - d) / 6 + d * 4 / 6 / v, "</s>": (2 - d) / 6 + d * 4 / 6 / v}
    p_a_bos = (2 - d) / 2 + d * 1 / 2 * p1["a"]  # <s> followed by a twice
    p_b_a = (1 - d) / 2 + d * 2 / 2 * p1["b"]  # a followed by b, c
    p_end_b = (1 - d) / 1 + d * 1 / 1 * p1["</s>"]
    h = -(math.log(p_a_bos) + math.log(p_b_a) + math.log(p_end_b)) / 3
    assert lm.log_perplexity("a b") == pytest.approx(h, abs=1e-12)
    assert lm(["p"], ["a b"]) == [pytest.approx(1 - h / math.log(v), abs=1e-12)]
    # probabilities over the vocabulary sum to 1 for any context
    for ctx in ([], ["a"], ["b"], ["zzz"]):
        assert sum(lm.prob(w, ctx) for w in ["a", "b", "c", "</s>", "<unknown>"]) == pytest.approx(1.0)


def test_ngram_fluency_trigram_and_errors():
    lm3 = NgramFluency(CORPUS, n=3)
    assert lm3(["p"], [CORPUS[1]])[0] > lm3(["p"], ["the the the the"])[0]
    with pytest.raises(TypeError, match="corpus"):
        make_scorer("ngram_fluency")
    with pytest.raises(ValueError, match="no words"):
        NgramFluency(["", "  ."[:1]])
    with pytest.raises(TypeError, match="sequence of texts"):
        NgramFluency("one string")


def test_ngram_fluency_is_fast():
    import time

    lm = NgramFluency(CORPUS * 20, n=3)
    texts = [" ".join(CORPUS[i % len(CORPUS)].split()[::-1]) for i in range(2000)]
    t0 = time.perf_counter()
    lm(["p"] * len(texts), texts)
    assert time.perf_counter() - t0 < 2.0  # ~20k tokens


def test_match_scorers_values():
    assert make_scorer("exact_match")(["p", "p"], [" a  b ", "a"], [["a b"], ["b"]]) == [1.0, 0.0]
    assert make_scorer("token_accuracy")(["p"], ["a x c"], [["a b c d"]]) == [0.5]
    assert make_scorer("token_f1")(["p"], ["a b"], [["a c"]]) == [0.5]
