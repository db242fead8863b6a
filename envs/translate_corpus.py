"""Generated translation corpus: English-like sentences and a synthetic verb-final language, "xx".

The English side is a small grammar: ``[time] subject [not] verb object [place phrase] .`` with
articles (``the``/``a``/``an``/``some``), plurals (some irregular), tense (present, past, future)
and negation (``does not``/``did not``/``will not``).

The target language has its own lexicon (invented words, generated once from a fixed seed, so
it is identical for every corpus seed) and its own grammar:

- word order ``[time] subject [place phrase] object ka [nu] verb .`` (verb-final, SOV);
- noun phrases are ``noun adjective [ti]``: adjectives follow the noun, the definite article is
  a particle ``ti`` after the phrase, indefinites have no article;
- nouns belong to class *a* or *o* (their last vowel) and take ``-n`` in the plural; adjectives
  agree with their noun in class and number (``vela``, ``velo``, ``velan``, ``velon``);
- the object is marked by the particle ``ka``, places by postpositions (``po`` in, ``sel`` near,
  ``dar`` behind) after their noun phrase;
- verbs end in a tense vowel (``-e`` present, ``-i`` past, ``-u`` future) plus ``-r`` for a plural
  subject; negation is ``nu`` before the verb.

So translation is learnable but not word by word: a dictionary that maps each English word to one
target word keeps the English order, misses ``ka``/postpositions and gets agreement wrong.

Corpus version 0 (matches ``lmgym/Translate-v0``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from lmgym.envs.corpus_sampling import Draws, disjoint_splits, join_tokens
from lmgym.task import Example

LEXICON_SEED = 20_240_601
TEMPLATE = "{source} ="
DIRECTIONS = ("en-xx", "xx-en")
MAX_SENTENCE_TOKENS = 20

# English lexicon: (singular, plural) nouns, adjectives, (base, 3sg present, past) verbs.
AGENTS: tuple[tuple[str, str], ...] = (
    ("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("horse", "horses"), ("farmer", "farmers"),
    ("child", "children"), ("teacher", "teachers"), ("girl", "girls"), ("boy", "boys"), ("woman", "women"),
    ("man", "men"), ("king", "kings"), ("queen", "queens"), ("baker", "bakers"), ("doctor", "doctors"),
    ("student", "students"), ("fox", "foxes"), ("mouse", "mice"), ("sailor", "sailors"), ("owl", "owls"),
)
THINGS: tuple[tuple[str, str], ...] = (
    ("book", "books"), ("apple", "apples"), ("letter", "letters"), ("house", "houses"), ("song", "songs"),
    ("cake", "cakes"), ("ball", "balls"), ("boat", "boats"), ("box", "boxes"), ("key", "keys"),
    ("cup", "cups"), ("hat", "hats"), ("map", "maps"), ("picture", "pictures"), ("egg", "eggs"),
    ("basket", "baskets"), ("lamp", "lamps"), ("coat", "coats"), ("wheel", "wheels"), ("orange", "oranges"),
)
PLACES: tuple[tuple[str, str], ...] = (
    ("garden", "gardens"), ("river", "rivers"), ("forest", "forests"), ("market", "markets"),
    ("city", "cities"), ("school", "schools"), ("village", "villages"), ("field", "fields"),
    ("kitchen", "kitchens"), ("harbor", "harbors"),
)
ADJECTIVES: tuple[str, ...] = (
    "big", "small", "old", "young", "red", "green", "happy", "tired", "quick", "quiet",
    "brave", "kind", "tall", "clever", "angry", "hungry", "blue", "new", "poor", "rich",
)
VERBS: tuple[tuple[str, str, str], ...] = (
    ("see", "sees", "saw"), ("find", "finds", "found"), ("eat", "eats", "ate"), ("carry", "carries", "carried"),
    ("watch", "watches", "watched"), ("help", "helps", "helped"), ("follow", "follows", "followed"),
    ("call", "calls", "called"), ("like", "likes", "liked"), ("want", "wants", "wanted"),
    ("draw", "draws", "drew"), ("build", "builds", "built"), ("buy", "buys", "bought"),
    ("sell", "sells", "sold"), ("open", "opens", "opened"), ("take", "takes", "took"),
    ("bring", "brings", "brought"), ("hold", "holds", "held"), ("wash", "washes", "washed"),
    ("paint", "paints", "painted"),
)
PREPOSITIONS: dict[str, str] = {"in": "po", "near": "sel", "behind": "dar"}
TIMES: dict[str, str] = {"present": "every day", "past": "yesterday", "future": "tomorrow"}
TENSE_VOWEL = {"present": "e", "past": "i", "future": "u"}
DEFINITE, OBJECT, NEGATION = "ti", "ka", "nu"

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


@dataclass(frozen=True)
class Lexicon:
    """The target language's word stems, keyed by English lemma."""

    nouns: dict[str, str]  # English singular -> singular form (ends in the class vowel a/o)
    adjectives: dict[str, str]  # English adjective -> stem (add class vowel, then -n for plural)
    verbs: dict[str, str]  # English base -> stem (add tense vowel, then -r for plural subject)
    times: dict[str, str]  # tense -> time adverb


@functools.cache
def lexicon() -> Lexicon:
    """The fixed target lexicon (same for every corpus seed); every inflected form is unique."""
    draws = Draws(LEXICON_SEED)
    taken: set[str] = {DEFINITE, OBJECT, NEGATION, *PREPOSITIONS.values()}

    def fresh(make: Callable[[], str], forms: Callable[[str], list[str]]) -> str:
        while True:
            stem = make()
            words = forms(stem)
            if not taken.intersection(words) and len(set(words)) == len(words):
                taken.update(words)
                return stem

    def syllable() -> str:
        return draws.pick(_CONSONANTS) + draws.pick(_VOWELS)

    nouns = {}
    for singular, _ in (*AGENTS, *THINGS, *PLACES):
        nouns[singular] = fresh(lambda: syllable() + draws.pick(_CONSONANTS) + draws.pick("ao"),
                                lambda s: [s, s + "n"])
    adjectives = {
        adj: fresh(lambda: syllable() + draws.pick(_CONSONANTS),
                   lambda s: [s + v + n for v in "ao" for n in ("", "n")])
        for adj in ADJECTIVES
    }
    verbs = {
        base: fresh(lambda: draws.pick(_CONSONANTS) + syllable() + draws.pick("lmnrs"),
                    lambda s: [s + v + r for v in "eiu" for r in ("", "r")])
        for base, _, _ in VERBS
    }
    times = {tense: fresh(lambda: syllable() + syllable() + draws.pick(_CONSONANTS), lambda s: [s])
             for tense in TIMES}
    return Lexicon(nouns, adjectives, verbs, times)


def _xx_noun_phrase(lex: Lexicon, noun: str, plural: bool, adjective: str | None, definite: bool) -> list[str]:
    stem = lex.nouns[noun]
    words = [stem + ("n" if plural else "")]
    if adjective is not None:
        words.append(lex.adjectives[adjective] + stem[-1] + ("n" if plural else ""))
    if definite:
        words.append(DEFINITE)
    return words


def _en_noun_phrase(forms: tuple[str, str], plural: bool, adjective: str | None, definite: bool) -> list[str]:
    head = [adjective] if adjective else []
    head.append(forms[1] if plural else forms[0])
    if definite:
        article = "the"
    elif plural:
        article = "some"
    else:
        article = "an" if head[0][0] in "aeiou" else "a"
    return [article, *head]


def make_pair(draws: Draws) -> tuple[str, str]:
    """Draw one ``(english, xx)`` sentence pair."""
    lex = lexicon()
    tense = draws.pick(("present", "past", "future"))
    negated = draws.chance(0.2)
    subj = (draws.pick(AGENTS), draws.chance(0.35), draws.pick(ADJECTIVES) if draws.chance(0.4) else None,
            draws.chance(0.6))
    obj = (draws.pick(THINGS + AGENTS), draws.chance(0.35), draws.pick(ADJECTIVES) if draws.chance(0.4) else None,
           draws.chance(0.6))
    place = (draws.pick(tuple(PREPOSITIONS)), draws.pick(PLACES), draws.chance(0.7)) if draws.chance(0.4) else None
    with_time = draws.chance(0.5)
    base, third, past = draws.pick(VERBS)

    # English: [time] S [aux] [not] V O [prep NP] .
    subj_plural = subj[1]
    if tense == "future":
        verb = ["will", *(["not"] if negated else []), base]
    elif negated:
        verb = ["did" if tense == "past" else ("do" if subj_plural else "does"), "not", base]
    else:
        verb = [past if tense == "past" else (base if subj_plural else third)]
    english = [*_en_noun_phrase(*subj), *verb, *_en_noun_phrase(*obj)]
    if place is not None:
        english += [place[0], *_en_noun_phrase(place[1], False, None, place[2])]
    if with_time:
        english = [*TIMES[tense].split(), *english]
    english.append(".")

    # xx: [time] S [place-NP postposition] O ka [nu] V .
    xx = [lex.times[tense]] if with_time else []
    xx += _xx_noun_phrase(lex, subj[0][0], subj[1], subj[2], subj[3])
    if place is not None:
        xx += [*_xx_noun_phrase(lex, place[1][0], False, None, place[2]), PREPOSITIONS[place[0]]]
    xx += [*_xx_noun_phrase(lex, obj[0][0], obj[1], obj[2], obj[3]), OBJECT]
    if negated:
        xx.append(NEGATION)
    xx += [lex.verbs[base] + TENSE_VOWEL[tense] + ("r" if subj_plural else ""), "."]
    return join_tokens(english), join_tokens(xx)


def _maker(direction: str):
    reverse = direction == "xx-en"

    def make(draws: Draws) -> tuple[str, Example]:
        english, xx = make_pair(draws)
        source, target = (xx, english) if reverse else (english, xx)
        return source, Example(source=source, prompt=TEMPLATE.format(source=source), references=(target,))

    return make


def check_direction(direction: str) -> None:
    """Raise ``ValueError`` unless ``direction`` is ``"en-xx"`` or ``"xx-en"``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS} for the built-in corpus; got {direction!r}.")


def build_splits(seed: int, direction: str = "en-xx", sizes: dict[str, int] | None = None) -> dict[str, list[Example]]:
    """The corpus for ``seed``: disjoint splits of distinct source sentences (default 10k/500/500).

    Both directions draw the same sentence pairs for the same seed (only source and target swap).
    """
    check_direction(direction)
    return disjoint_splits(_maker(direction), seed, sizes)


def english_words() -> list[str]:
    """Every English word the corpus can produce."""
    words = {"the", "a", "an", "some", "will", "not", "do", "does", "did", "."}
    words.update(w for pair in (*AGENTS, *THINGS, *PLACES) for w in pair)
    words.update(ADJECTIVES)
    words.update(w for triple in VERBS for w in triple)
    words.update(PREPOSITIONS)
    words.update(w for t in TIMES.values() for w in t.split())
    return sorted(words)


def xx_words() -> list[str]:
    """Every target-language word the corpus can produce."""
    lex = lexicon()
    words = {DEFINITE, OBJECT, NEGATION, ".", *PREPOSITIONS.values(), *lex.times.values()}
    for stem in lex.nouns.values():
        words.update((stem, stem + "n"))
    for stem in lex.adjectives.values():
        words.update(stem + v + n for v in "ao" for n in ("", "n"))
    for stem in lex.verbs.values():
        words.update(stem + v + r for v in "eiu" for r in ("", "r"))
    return sorted(words)


def vocabulary() -> list[str]:
    """Every word of both languages plus the prompt separator (same for both directions), sorted."""
    return sorted({*english_words(), *xx_words(), *TEMPLATE.replace("{source}", "").split()})


def word_dictionary(direction: str = "en-xx") -> dict[str, str]:
    """A word-for-word bilingual dictionary, as a learner's phrase book would give it.

    Each source word maps to its most literal target word or words (space-separated), or to ``""``
    when it has no counterpart (``a``, ``some``, auxiliaries). Nouns keep their number, adjectives
    use the class-*a* singular form and verbs the form that matches the English word.
    """
    check_direction(direction)
    lex = lexicon()
    en_xx: dict[str, str] = {"the": DEFINITE, "a": "", "an": "", "some": "", "will": "", "do": "", "does": "",
                             "did": "", "not": NEGATION, ".": "."}
    for singular, plural in (*AGENTS, *THINGS, *PLACES):
        en_xx[singular], en_xx[plural] = lex.nouns[singular], lex.nouns[singular] + "n"
    for adj in ADJECTIVES:
        en_xx[adj] = lex.adjectives[adj] + "a"
    for base, third, past in VERBS:
        stem = lex.verbs[base]
        en_xx[base], en_xx[third], en_xx[past] = stem + "er", stem + "e", stem + "i"
    en_xx.update(PREPOSITIONS)
    en_xx.update({"every": "", "day": lex.times["present"], "yesterday": lex.times["past"],
                  "tomorrow": lex.times["future"]})
    if direction == "en-xx":
        return en_xx
    xx_en: dict[str, str] = {DEFINITE: "the", OBJECT: "", NEGATION: "not", ".": "."}
    xx_en.update({v: k for k, v in PREPOSITIONS.items()})
    xx_en.update({lex.times[t]: words for t, words in TIMES.items()})
    for singular, plural in (*AGENTS, *THINGS, *PLACES):
        xx_en[lex.nouns[singular]], xx_en[lex.nouns[singular] + "n"] = singular, plural
    for adj in ADJECTIVES:
        for form in (lex.adjectives[adj] + v + n for v in "ao" for n in ("", "n")):
            xx_en[form] = adj
    for base, third, past in VERBS:
        stem = lex.verbs[base]
        for vowel, english in (("e", third), ("i", past), ("u", "will " + base)):
            xx_en[stem + vowel] = english
            xx_en[stem + vowel + "r"] = base if vowel == "e" else english
    return xx_en
