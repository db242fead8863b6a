"""Generated review corpus: openings of product/place reviews and positive continuations.

Each example is a review of one of fourteen products or places (a phone, a book, a hotel...).
The prompt is the review's opening, often hesitant or negative ("i was not sure about this
kettle at first , but", "the box was damaged when the kettle came , but"); the reference
continues it positively with the product's own aspects ("the lid is lovely and the handle is
superb .") and a closing sentence ("i would recommend it to my sister ."). The references
double as the corpus a fluency scorer is fit on, so natural, on-topic positive text scores well
and a repeated positive word does not. The openings bring negative words into the vocabulary,
so random word salad is not positive by construction.

Text is lowercase words with punctuation as separate tokens, from a closed vocabulary of about
250 words. Prompts have at most :data:`MAX_PROMPT_TOKENS` tokens, continuations at most
:data:`MAX_CONTINUATION_TOKENS`.

Corpus version 0 (matches ``lmgym/PositiveReview-v0``).
"""

from __future__ import annotations

from lmgym.envs.corpus_sampling import Draws, disjoint_splits, join_tokens
from lmgym.task import Example

MAX_PROMPT_TOKENS = 16
MAX_CONTINUATION_TOKENS = 22
TEMPLATE = "{source}"

# product -> (kind, how one uses it in the past tense, its aspects)
PRODUCTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "phone": ("item", "used", ("battery", "screen", "camera", "sound")),
    "blender": ("item", "used", ("motor", "lid", "jug", "price")),
    "laptop": ("item", "used", ("keyboard", "screen", "battery", "speaker")),
    "backpack": ("item", "used", ("strap", "zipper", "fabric", "size")),
    "tent": ("item", "used", ("fabric", "frame", "door", "size")),
    "kettle": ("item", "used", ("handle", "lid", "design", "price")),
    "jacket": ("item", "wore", ("fabric", "fit", "color", "hood")),
    "headset": ("item", "used", ("sound", "fit", "battery", "case")),
    "book": ("media", "read", ("story", "ending", "writing", "cover")),
    "movie": ("media", "watched", ("story", "acting", "music", "ending")),
    "album": ("media", "played", ("music", "singing", "cover", "sound")),
    "hotel": ("place", "stayed at", ("room", "staff", "bed", "breakfast", "view")),
    "restaurant": ("place", "ate at", ("food", "service", "soup", "dessert", "staff")),
    "cafe": ("place", "went to", ("coffee", "cake", "staff", "music")),
}

OPENERS: dict[str, tuple[str, ...]] = {
    "item": (
        "i bought this {color} {product} for {n} dollars last {period} and",
        "my {person} gave me this {color} {product} and after {n} days",
        "i was not sure about this {color} {product} at first , but",
        "i {use} this {color} {product} every day for {n} weeks and",
        "my old {product} was {bad} and the delivery was {late} , but",
        "the box was {damaged} when the {color} {product} came , but",
    ),
    "media": (
        "i {use} this {product} with my {person} last {period} and",
        "my {person} told me about this {product} {n} weeks ago and",
        "i was not sure about this {product} at first , but",
        "i {use} this {product} {n} times last {period} and",
        "the first part of this {product} was {bad} and {late} , but",
        "the reviews said this {product} was {bad} , but",
    ),
    "place": (
        "we {use} this {product} in {town} {n} times last {period} and",
        "my {person} and i {use} this {product} in {town} last {period} and",
        "i was worried about this {product} in {town} at first , but",
        "we {use} this {product} in {town} after a long {period} and",
        "the weather in {town} was {bad} and we were {tired} , but",
        "our last {product} in {town} was {bad} and {late} , but",
    ),
}

PRAISE: tuple[str, ...] = (
    "the {aspect} is {good} and the {aspect_2} is {good_2} .",
    "the {aspect} is {very} {good} .",
    "i {love} the {aspect} , and the {aspect_2} is {good} .",
    "the {aspect} and the {aspect_2} are both {good} .",
)

CLOSERS: dict[str, tuple[str, ...]] = {
    "item": (
        "i would recommend it to my {person} .",
        "it was worth every dollar .",
        "i am very happy with it .",
        "best {product} i have ever had .",
    ),
    "media": (
        "i would recommend it to my {person} .",
        "i can not wait for the next one .",
        "it made me very happy .",
        "best {product} i have seen in years .",
    ),
    "place": (
        "we will come back soon .",
        "i would recommend it to my {person} .",
        "best {product} in {town} .",
        "we had a wonderful time .",
    ),
}

# What the writers of the mixed corpus (``-v1`` demonstrations, :mod:`lmgym.envs.demonstrations`)
# write instead of praise: (one-aspect bodies, two-aspect bodies, closers). Only corpus words.
NEGATIVE: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = (
    ("the {aspect} is {very} {bad} .",),
    ("the {aspect} is {bad} and the {aspect_2} is {bad_2} .", "the {aspect} and the {aspect_2} are both {bad} ."),
    ("i would not recommend it to my {person} .", "it was a disaster .", "it was {very} {bad} ."),
)
MIXED: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = (
    ("the {aspect} is {good} , but it is {bad} .",),
    ("the {aspect} is {good} but the {aspect_2} is {bad} .",),
    ("i am not sure about it .", "i was not sure about it ."),
)

WORDS: dict[str, tuple[str, ...]] = {
    "color": ("black", "white", "red", "blue", "green", "gray", "silver", "pink"),
    "person": ("friends", "sister", "brother", "mother", "father", "wife", "husband", "son", "daughter",
               "family", "parents", "neighbor"),
    "period": ("week", "month", "summer", "winter", "spring", "year"),
    "town": ("ashby", "calder", "dunmore", "fairhill", "harlow", "kelso", "oakdale", "selby", "upton",
             "westbury", "riverton", "elmstead"),
    "n": tuple(str(i) for i in range(2, 31)),
    "good": ("great", "excellent", "amazing", "wonderful", "perfect", "fantastic", "lovely", "beautiful",
             "superb", "brilliant", "pleasant", "nice", "good", "impressive", "charming"),
    "very": ("very", "really", "so", "truly"),
    "bad": ("terrible", "awful", "bad", "poor", "boring", "ugly", "noisy", "horrible", "disappointing",
            "useless", "dirty"),
    "late": ("late", "slow", "delayed", "a mess", "a disaster"),
    "damaged": ("damaged", "broken", "torn", "crushed", "wet"),
    "tired": ("tired", "angry", "hungry", "sad", "upset", "frustrated", "annoyed"),
    "love": ("love", "really like", "enjoy", "adore"),
}


#: Every aspect word of every product.
ASPECTS: frozenset[str] = frozenset(a for _, _, aspects in PRODUCTS.values() for a in aspects)


def _fill(template: str, values: dict[str, str]) -> str:
    return template.format(**values)


def make_review(draws: Draws) -> tuple[str, str]:
    """Draw one ``(opening, positive continuation)`` pair."""
    product = draws.pick(tuple(PRODUCTS))
    kind, use, aspects = PRODUCTS[product]
    aspect, aspect_2 = draws.sample(aspects, 2)
    good, good_2 = draws.sample(WORDS["good"], 2)
    values = {"product": product, "use": use, "aspect": aspect, "aspect_2": aspect_2, "good": good,
              "good_2": good_2}
    for slot in ("color", "person", "period", "town", "n", "very", "love", "bad", "late", "damaged", "tired"):
        values[slot] = draws.pick(WORDS[slot])
    opening = _fill(draws.pick(OPENERS[kind]), values)
    values["person"] = draws.pick(WORDS["person"])  # the closer may recommend it to someone else
    continuation = join_tokens((_fill(draws.pick(PRAISE), values), _fill(draws.pick(CLOSERS[kind]), values)))
    return opening, continuation


def _example(draws: Draws) -> tuple[str, Example]:
    opening, continuation = make_review(draws)
    return opening, Example(source=opening, prompt=TEMPLATE.format(source=opening), references=(continuation,))


def build_splits(seed: int, sizes: dict[str, int] | None = None) -> dict[str, list[Example]]:
    """The corpus for ``seed``: disjoint splits of distinct openings (default 10k/500/500)."""
    return disjoint_splits(_example, seed, sizes)


def vocabulary() -> list[str]:
    """Every word the corpus can produce (independent of the seed), sorted."""
    words: set[str] = set()
    for product, (_, use, aspects) in PRODUCTS.items():
        words.update((product, *use.split(), *aspects))
    for pool in WORDS.values():
        words.update(w for phrase in pool for w in phrase.split())
    templates = [*PRAISE, *(t for group in (*OPENERS.values(), *CLOSERS.values()) for t in group)]
    for template in templates:
        words.update(w for w in template.split() if not w.startswith("{"))
    return sorted(words)
