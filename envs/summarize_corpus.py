"""Generated summarization corpus: short news reports with distractors, and fact-fusing summaries.

Each document reports one event from one of six domains (a match, a business opening, a council
vote, a storm, a scientific find, an arrest). The event is described by three *fact* sentences
(what happened, and two details with numbers/places/names) placed among two to four *distractor*
sentences (weather, other towns, unrelated numbers, quotes). The first sentence is usually a
distractor and the facts are spread over the document.

The reference summary fuses the three facts into one compressed sentence, dropping filler
("the final score was", "on monday") and reordering details. A good summary therefore needs
selection (skip distractors, which also carry places and numbers) and compression (keep the
details, not the sentences): copying the first sentences (lead-N) scores clearly below it.

Text is lowercase words with punctuation as separate tokens, from a closed vocabulary
(:func:`vocabulary`) of about 350 words. Documents have at most :data:`MAX_DOCUMENT_TOKENS`
tokens, summaries at most :data:`MAX_SUMMARY_TOKENS`.

Corpus version 0 (matches ``lmgym/Summarize-v0``): any change to the output of
:func:`build_splits` for a given seed must bump the env version.
"""

from __future__ import annotations

import functools
import re

from lmgym.envs.corpus_sampling import Draws, disjoint_splits, join_tokens
from lmgym.task import Example

MAX_DOCUMENT_TOKENS = 80
MAX_SUMMARY_TOKENS = 25
TEMPLATE = "{source} summary :"

POOLS: dict[str, tuple[str, ...]] = {
    "place": (
        "ashby", "bramford", "calder", "dunmore", "eastwick", "fairhill", "glenrock", "harlow", "kelso",
        "lanford", "millbrook", "northam", "oakdale", "pembury", "redcliff", "selby", "thornton", "upton",
        "valemont", "westbury", "yarrow", "riverton", "stonebridge", "coldwell", "elmstead", "brightwater",
        "hollins", "kingsley", "larkhill", "moorfield",
    ),
    "mascot": (
        "lions", "eagles", "rovers", "wolves", "bears", "sharks", "tigers", "hawks", "rangers", "falcons",
    ),
    "name": (
        "anna", "ben", "carla", "david", "elena", "frank", "grace", "hugo", "iris", "jonas", "kate", "leo",
        "maria", "nina", "oscar", "paula", "rosa", "sam", "tom", "vera",
    ),
    "surname": (
        "miller", "carter", "baker", "turner", "walsh", "porter", "hayes", "fisher", "mason", "grant",
    ),
    "industry": ("foods", "steel", "motors", "textiles", "energy", "paper", "glass", "software"),
    "facility": ("factory", "warehouse", "office", "store", "plant", "workshop"),
    "building": ("library", "school", "bridge", "hospital", "stadium", "museum", "park", "station", "pool"),
    "storm": ("storm", "flood", "snowstorm", "heatwave"),
    "shelter": ("school", "church", "hall", "stadium", "hotel"),
    "creature": ("frog", "beetle", "spider", "lizard", "moth", "snail", "fish", "bird"),
    "habitat": ("forest", "cave", "river", "swamp", "meadow", "lake"),
    "crime": ("robbery", "break-in", "fight", "theft"),
    "items": ("phones", "bikes", "watches", "laptops", "paintings", "cars"),
    "day": ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    "weather": ("cold", "warm", "rainy", "windy", "quiet", "busy", "sunny"),
    "feeling": ("happy", "surprised", "worried", "proud", "tired"),
    "score": tuple(str(i) for i in range(10)),
    "small": tuple(str(i) for i in range(2, 21)),
    "count": tuple(str(i) for i in range(10, 100)),
}

# A domain: three fact templates (event first, then two details, each detail placed after the
# event) and the summary that fuses them. ``{x_2}`` style slots share a pool with ``{x}``;
# ``order`` lists slot pairs whose values must be in decreasing order (winner first).
DOMAINS: tuple[dict, ...] = (
    {
        "facts": (
            "the {place} {mascot} beat the {place_2} {mascot_2} on {day} .",
            "the final score was {score} to {score_2} .",
            "{name} scored the last goal for the {mascot} in minute {count} .",
        ),
        "summary": "{place} {mascot} beat {place_2} {mascot_2} {score} to {score_2} , "
        "{name} scored in minute {count} .",
        "order": (("score", "score_2"),),
    },
    {
        "facts": (
            "{surname} {industry} opened a new {facility} in {place} on {day} .",
            "the {facility} will create {count} jobs over the next year .",
            "the company spent {small} million on the project .",
        ),
        "summary": "{surname} {industry} opened a {small} million {facility} in {place} with {count} jobs .",
    },
    {
        "facts": (
            "on {day} the {place} council voted on a plan for a new {building} .",
            "the plan passed by {count} votes to {count_2} .",
            "the new {building} will cost {small} million .",
        ),
        "summary": "{place} council approved a {small} million {building} by {count} votes to {count_2} .",
        "order": (("count", "count_2"),),
    },
    {
        "facts": (
            "a {storm} hit {place} late on {day} .",
            "about {count} homes lost power during the {storm} .",
            "{small} families were moved to a {shelter} for the night .",
        ),
        "summary": "{storm} in {place} cut power to {count} homes , {small} families moved to a {shelter} .",
    },
    {
        "facts": (
            "scientists from {place} found a new kind of {creature} .",
            "the {creature} lives in a {habitat} near {place_2} .",
            "it is only {small} millimeters long .",
        ),
        "summary": "new {small} millimeter {creature} found by {place} scientists "
        "in a {habitat} near {place_2} .",
    },
    {
        "facts": (
            "police in {place} arrested {small} people after a {crime} on {day} .",
            "the {crime} happened at a {building} in the town center .",
            "{count} {items} were taken and later found .",
        ),
        "summary": "{place} police arrested {small} after a {crime} at a {building} , "
        "{count} {items} taken .",
    },
)

DISTRACTORS: tuple[str, ...] = (
    "it was a {weather} week in {place} .",
    "last year {count} people visited the {building} in {place} .",
    "a spokesperson said more details would follow .",
    "the {place} {mascot} will play again next {day} .",
    "in other news , the {building} in {place} will close for {small} days .",
    "residents of {place} said they were {feeling} .",
    "{surname} {industry} shares rose by {small} percent on {day} .",
    "the weather service expects {weather} days ahead .",
    "{name} {surname} , a local teacher , said the town felt {feeling} .",
    "traffic near the {building} was slow for {small} hours .",
    "the {place} market sold {count} boxes of apples on {day} .",
)

_SLOT = re.compile(r"\{(\w+?)(?:_\d)?\}")


def _fill(template: str, values: dict[str, str]) -> str:
    return template.format(**values)


@functools.cache
def _slot_groups(templates: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(pool, slot names)`` for every pool used by the ``{slot}`` fields of ``templates``."""
    by_pool: dict[str, set[str]] = {}
    for template in templates:
        for m in re.finditer(r"\{(\w+)\}", template):
            by_pool.setdefault(_SLOT.fullmatch(m.group(0)).group(1), set()).add(m.group(1))
    return tuple((pool, tuple(sorted(names))) for pool, names in sorted(by_pool.items()))


def _draw_values(draws: Draws, templates: tuple[str, ...]) -> dict[str, str]:
    """Values for every slot of ``templates``; slots sharing a pool get distinct values."""
    values = {}
    for pool, names in _slot_groups(templates):
        for name, value in zip(names, draws.sample(POOLS[pool], len(names)), strict=True):
            values[name] = value
    return values


def make_report(draws: Draws) -> tuple[str, str]:
    """Draw one ``(document, summary)`` pair."""
    domain = draws.pick(DOMAINS)
    values = _draw_values(draws, (*domain["facts"], domain["summary"]))
    for hi, lo in domain.get("order", ()):
        a, b = int(values[hi]), int(values[lo])
        values[hi], values[lo] = str(max(a, b)), str(min(a, b))
    facts = [_fill(t, values) for t in domain["facts"]]
    summary = _fill(domain["summary"], values)

    n_distractors = draws.integer(2, 4)
    distractors = []
    for template in draws.sample(DISTRACTORS, n_distractors):
        distractors.append(_fill(template, _draw_values(draws, (template,))))
    # Sentence order: the event fact first among facts, details later; a distractor leads the
    # document 70% of the time, so lead-1 rarely contains the event.
    sentences = list(distractors)
    lead = sentences.pop(0) if draws.chance(0.7) else None
    slots = sorted(draws.sample(range(len(sentences) + 3), 3))
    body: list[str] = []
    fact_iter = iter(facts)
    for i in range(len(sentences) + 3):
        body.append(next(fact_iter) if i in slots else sentences.pop(0))
    if lead is not None:
        body.insert(0, lead)
    # Drop trailing distractors (never facts) while the document is too long.
    while sum(len(s.split()) for s in body) > MAX_DOCUMENT_TOKENS:
        for i in range(len(body) - 1, -1, -1):
            if body[i] not in facts:
                del body[i]
                break
    return join_tokens(body), summary


def _example(draws: Draws) -> tuple[str, Example]:
    document, summary = make_report(draws)
    return document, Example(source=document, prompt=TEMPLATE.format(source=document), references=(summary,))


def build_splits(seed: int, sizes: dict[str, int] | None = None) -> dict[str, list[Example]]:
    """The corpus for ``seed``: disjoint splits of distinct documents (default 10k/500/500)."""
    return disjoint_splits(_example, seed, sizes)


def vocabulary() -> list[str]:
    """Every word the corpus can produce (independent of the seed), sorted."""
    words: set[str] = set(TEMPLATE.replace("{source}", "").split())
    for pool in POOLS.values():
        words.update(pool)
    templates = [*DISTRACTORS, *(t for d in DOMAINS for t in (*d["facts"], d["summary"]))]
    for template in templates:
        words.update(w for w in template.split() if not w.startswith("{"))
    return sorted(words)
