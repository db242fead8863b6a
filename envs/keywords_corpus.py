"""Generated keyword-to-sentence corpus (CommonGen-like): write one sentence using every concept.

Each example is a small everyday scene: someone (``dog``, ``chef``...) does something (``throw``,
``cook``...) with a fitting object (``ball``, ``soup``...), often at a place (``park``,
``kitchen``...). The prompt lists three or four of those concept words in a random order; the
references are two different sentences that use all of them, e.g. ``ball dog park throw :`` ->
``the dog likes to throw the ball in the park .``. Concept words appear in the sentences exactly
as given (base-form verbs, singular nouns), so coverage can be checked word by word.

Splits are disjoint by *concept set*: no set of concepts appears in two splits.

Text is lowercase words with punctuation as separate tokens, from a closed vocabulary of about
150 words. Sentences have at most :data:`MAX_SENTENCE_TOKENS` tokens.

Corpus version 0 (matches ``lmgym/Keywords-v0``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lmgym.envs.corpus_sampling import Draws, disjoint_splits, join_tokens
from lmgym.task import Example

MAX_SENTENCE_TOKENS = 20
TEMPLATE = "{source} :"

AGENTS: tuple[str, ...] = (
    "dog", "cat", "boy", "girl", "man", "woman", "child", "farmer", "teacher", "chef", "student",
    "friend", "grandmother", "player", "doctor", "sailor", "artist", "neighbor", "baker", "clown",
    "pilot", "nurse", "driver", "singer", "painter", "fisherman", "mother", "father", "uncle", "kid",
)
# verb -> objects it goes with (concept sets stay plausible, so the task has structure to learn)
ACTIONS: dict[str, tuple[str, ...]] = {
    "eat": ("apple", "bread", "cake", "soup", "sandwich", "pear"),
    "cook": ("soup", "rice", "egg", "fish", "pasta"),
    "cut": ("bread", "cake", "apple", "paper", "rope"),
    "throw": ("ball", "frisbee", "stick", "stone"),
    "catch": ("ball", "frisbee", "fish", "bus"),
    "kick": ("ball", "can", "stone"),
    "read": ("book", "letter", "map", "newspaper"),
    "write": ("letter", "poem", "song", "story"),
    "draw": ("picture", "map", "horse", "tree"),
    "ride": ("bike", "horse", "bus", "boat"),
    "wash": ("car", "dish", "shirt", "dog", "window"),
    "paint": ("fence", "wall", "boat", "picture", "door"),
    "plant": ("tree", "flower", "seed"),
    "water": ("tree", "flower", "garden"),
    "play": ("guitar", "drum", "piano", "game", "song"),
    "carry": ("box", "bag", "basket", "chair", "baby"),
    "fix": ("bike", "car", "roof", "chair", "clock"),
    "sell": ("fruit", "fish", "flower", "bread", "ticket"),
}
PLACES: tuple[str, ...] = (
    "park", "kitchen", "garden", "beach", "river", "school", "street", "field", "market", "forest",
    "yard", "lake", "farm", "station", "shop", "room", "hall", "house", "office", "bridge",
)
ADJECTIVES: tuple[str, ...] = ("small", "big", "old", "new", "red", "blue", "heavy", "little", "yellow")

# Templates: {agent}, {agent_2} (another agent), {verb}, {object}, {adj}; ``{at}`` is replaced by
# a place phrase (" in the park") or nothing. Verbs are always in the base form.
SENTENCES: tuple[str, ...] = (
    "the {agent} likes to {verb} the {object}{at} .",
    "a {agent} wants to {verb} a {adj} {object}{at} .",
    "the {agent} and a {agent_2} {verb} the {object} together{at} .",
    "the {agent} will {verb} the {adj} {object}{at} today .",
    "every morning the {agent} and the {agent_2} {verb} a {object}{at} .",
    "{at_start}the {agent} tried to {verb} the {object} .",
    "the {agent} asked a {agent_2} to {verb} the {object}{at} .",
)
PREPOSITIONS: tuple[str, ...] = ("in", "at", "near", "by")
_VERBS = tuple(ACTIONS)


def _articles(sentence: str) -> str:
    """Use ``an`` instead of ``a`` before a vowel."""
    words = sentence.split()
    for i, word in enumerate(words[:-1]):
        if word == "a" and words[i + 1][0] in "aeiou":
            words[i] = "an"
    return join_tokens(words)


def draw_concepts(draws: Draws) -> tuple[str, str, str, str | None]:
    """Draw one scene's concepts: ``(agent, verb, object, place or None)``."""
    verb = draws.pick(_VERBS)
    obj = draws.pick(ACTIONS[verb])
    agent = draws.pick(AGENTS)
    if agent == obj:  # "the dog washes the dog"
        agent = AGENTS[(AGENTS.index(agent) + 1) % len(AGENTS)]
    place = draws.pick(PLACES) if draws.chance(0.6) else None
    return agent, verb, obj, place


def make_scene(draws: Draws, scene: tuple[str, str, str, str | None]) -> tuple[list[str], tuple[str, str]]:
    """Two different sentences that use all concepts of ``scene``, and the concepts in random order."""
    agent, verb, obj, place = scene
    agent_2 = draws.pick([a for a in AGENTS if a not in (agent, obj)])
    concepts = [agent, verb, obj] + ([place] if place else [])
    sentences = []
    for template in draws.sample(SENTENCES, 2):
        prep = draws.pick(PREPOSITIONS)
        values = {"agent": agent, "agent_2": agent_2, "verb": verb, "object": obj,
                  "adj": draws.pick(ADJECTIVES),
                  "at": f" {prep} the {place}" if place else "",
                  "at_start": f"{prep} the {place} , " if place else ""}
        sentences.append(_articles(template.format(**values)))
    return draws.shuffle(concepts), (sentences[0], sentences[1])


def _example(draws: Draws) -> tuple[frozenset[str], Callable[[], Example]]:
    scene = draw_concepts(draws)

    def finish() -> Example:
        concepts, references = make_scene(draws, scene)
        source = join_tokens(concepts)
        return Example(source=source, prompt=TEMPLATE.format(source=source), references=references,
                       meta={"keywords": list(concepts)})

    return frozenset(c for c in scene if c), finish


def build_splits(seed: int, sizes: dict[str, int] | None = None) -> dict[str, list[Example]]:
    """The corpus for ``seed``: splits disjoint by concept set (default 10k/500/500)."""
    return disjoint_splits(_example, seed, sizes)


def vocabulary() -> list[str]:
    """Every word the corpus can produce (independent of the seed), sorted."""
    words: set[str] = {*AGENTS, *ACTIONS, *PLACES, *ADJECTIVES, *PREPOSITIONS, "the", "a", "an", ","}
    words.update(w for objects in ACTIONS.values() for w in objects)
    words.update(TEMPLATE.replace("{source}", "").split())
    for template in SENTENCES:
        words.update(re.sub(r"\{\w+\}", " ", template).split())
    return sorted(words)
