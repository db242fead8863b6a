"""Open-ended generation envs: continue a review positively; write a sentence from keywords."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

from lmgym.envs import keywords_corpus, review_corpus
from lmgym.envs.demonstrations import Habit, keywords_habit, review_habit
from lmgym.envs.text_task_env import TextTaskEnv
from lmgym.errors import TaskError
from lmgym.scorers import Scorer, WeightedSum
from lmgym.task import Task
from lmgym.vector_env import batched

#: Default reward weights. Fluency and repetition weigh as much as sentiment, so repeating
#: one positive word (or listing positive words) scores far below a fluent positive review.
REVIEW_WEIGHTS = {"sentiment": 1.0, "ngram_fluency": 1.0, "repetition": -1.0}
KEYWORDS_WEIGHTS = {"keyword_coverage": 1.0, "ngram_fluency": 1.0}


def fluency_scorer(corpus: Sequence[str]) -> Scorer:
    """A bigram :class:`~lmgym.scorers.fluency.NgramFluency` fit on ``corpus``."""
    from lmgym.scorers.fluency import NgramFluency

    return NgramFluency(list(corpus), n=2)


def weighted(weights: dict[str, float], fluency: Scorer) -> WeightedSum:
    """``weights`` as a :class:`~lmgym.scorers.WeightedSum`, with ``fluency`` as the n-gram scorer."""
    return WeightedSum({fluency if name == "ngram_fluency" else name: w for name, w in weights.items()})


@functools.lru_cache(maxsize=8)
def review_task(corpus_seed: int = 0) -> Task:
    """The built-in review-continuation task for ``corpus_seed`` (built once per process)."""
    return Task(name="positive-review", splits=review_corpus.build_splits(corpus_seed),
                vocabulary=review_corpus.vocabulary(), template=review_corpus.TEMPLATE,
                description="Continue the opening of a product/place review positively and fluently.")


@functools.lru_cache(maxsize=8)
def keywords_task(corpus_seed: int = 0) -> Task:
    """The built-in keyword-to-sentence task for ``corpus_seed`` (built once per process)."""
    return Task(name="keywords", splits=keywords_corpus.build_splits(corpus_seed),
                vocabulary=keywords_corpus.vocabulary(), template=keywords_corpus.TEMPLATE,
                description="Write one sentence that uses every given concept word.")


@functools.lru_cache(maxsize=8)
def _builtin_fluency(name: str, corpus_seed: int) -> Scorer:
    task = review_task(corpus_seed) if name == "review" else keywords_task(corpus_seed)
    return fluency_scorer(TextTaskEnv.train_references(task))


@functools.lru_cache(maxsize=4)
def lm_fluency_scorer(model: str) -> Scorer:
    """``fluency_lm`` of the completion given the prompt under the causal LM ``model``, on the
    ``ngram_fluency`` scale (``1 - log(perplexity) / log(V)``), on CUDA when present; loaded once per process
    and model."""
    from lmgym.scorers.models import FluencyLM

    return FluencyLM(model=model, condition_on_prompt=True, scale="log_vocab", device="auto")


class FluencyRewardEnv(TextTaskEnv):
    """A text-task env whose default reward is :attr:`reward_weights` with a fluency term.

    ``fluency="ngram"`` (default): an n-gram model fit to the task's training references (the
    built-in corpus's once per process, keyed by :attr:`task_kind` and ``corpus_seed``). Text
    unlike those references (a pretrained LM's English) earns little of it. ``fluency=MODEL`` (a
    model preset such as ``"smollm2-135m"``, a folder or a hub id of a causal LM): the LM's
    likelihood of the completion given the prompt, on the same [0, 1] scale (see
    :func:`lm_fluency_scorer`), which real English can earn.
    """

    reward_weights: ClassVar[dict[str, float]] = {}

    def __init__(self, fluency: str = "ngram", **kwargs: Any) -> None:
        if not isinstance(fluency, str) or not fluency:
            raise TaskError(f"fluency must be 'ngram' or a causal LM (preset, folder or hub id); got {fluency!r}.")
        self.fluency = fluency
        super().__init__(**kwargs)

    def make_default_scorer(self, task: Task) -> Scorer:
        if self.fluency != "ngram":
            fluency = lm_fluency_scorer(self.fluency)
        elif self.from_dataset:
            fluency = fluency_scorer(self.train_references(task))
        else:
            fluency = _builtin_fluency(self.task_kind, self.corpus_seed)
        return weighted(self.reward_weights, fluency)


class PositiveReviewEnv(FluencyRewardEnv):
    """Continue the opening of a review with positive, natural text.

    ## Description
    The prompt is the opening of a review of a product or place (``"i was not sure about this
    blue kettle at first , but"``); the agent writes the rest. The reward favours positive
    sentiment, but only together with fluency under an n-gram model of real continuations and
    without repetition, so reward hacking by repeating (or listing) positive words does not pay.
    The references (used by the oracle baseline and to fit the fluency model) are positive
    continuations that talk about the product's aspects (see :mod:`lmgym.envs.review_corpus`).
    With ``dataset=`` (e.g. ``"imdb"`` or a jsonl file with a ``text`` column) the first
    ``prompt_words`` words of each text are the prompt and the next 40 the reference.

    ## Action Space
    ``Discrete(V)``: the next token. Built-in corpus: ``V = 257`` (253 words and the four
    special tokens).

    ## Observation Space
    As :class:`~lmgym.token_env.TokenEnv`. Built-in: ``P = 16``, ``R = max_new_tokens = 24``
    (references have at most 22 tokens).

    ## Rewards
    Sparse, at the end: ``sentiment + ngram_fluency - repetition`` (weights 1, 1, -1), in
    [-2, 2]: VADER compound sentiment of the completion in [-1, 1], bigram fluency fit on the
    training references in [0, 1], and the repeated-bigram fraction in [0, 1]. A fluent positive
    continuation scores about 1.6; ``great great great ...`` about 0.1. ``info["score_details"]``
    has each part.

    ## Starting State
    An opening drawn uniformly with ``np_random`` from the split: 10,000 train, 500 validation,
    500 test, disjoint by opening.

    ## Episode End
    EOS (terminated) or ``max_new_tokens`` tokens (truncated); both are scored.

    ## Arguments
    - ``demo_error_rate`` (0.0 for v0, 0.6 for v1): built-in corpus only; the fraction of warm-start
      demonstrations written with the imperfect writers' habit (see Version History).
    - ``prompt_words`` (8): with a dataset, how many opening words form the prompt.
    - ``corpus_seed`` (0), ``dataset``, ``dataset_config``, ``columns`` (``{"text": ...}``),
      ``max_examples``, ``normalize``, ``tokenizer_kind``, ``max_vocab``, ``lossless``, ``chat``: as in
      :class:`~lmgym.envs.summarize.SummarizeEnv`.
    - ``fluency`` (``"ngram"``): the fluency term; a causal LM (``"smollm2-135m"``, a folder or hub
      id) scores fluency as that LM's likelihood of the completion instead, which a pretrained LM's
      English can earn (see :class:`FluencyRewardEnv`).
    - Every :class:`~lmgym.token_env.TokenEnv` argument: ``tokenizer``, ``scorer``, ``split``,
      ``max_prompt_tokens``, ``max_new_tokens``, ``render_mode``.

    >>> import gymnasium as gym, lmgym
    >>> env = gym.make("lmgym/PositiveReview-v0")
    >>> obs, info = env.reset(seed=0)
    >>> info["prompt"]
    'my friends gave me this white laptop and after 20 days'
    >>> tokenizer = env.unwrapped.tokenizer
    >>> def write(text):
    ...     obs, info = env.reset(seed=0)
    ...     for word in text.split() + ["<eos>"]:
    ...         obs, reward, terminated, truncated, info = env.step(tokenizer.convert_tokens_to_ids(word))
    ...     return round(float(reward), 1), {k: round(v, 1) for k, v in info["score_details"].items()}
    >>> write("the screen is great and the keyboard is lovely . i am very happy with it .")
    (1.7, {'sentiment': 0.9, 'ngram_fluency': 0.8, 'repetition': 0.0})
    >>> write("great great great great great great great great")
    (0.1, {'sentiment': 1.0, 'ngram_fluency': 0.0, 'repetition': 0.9})

    ## Version History
    - v0: initial version (corpus version 0).
    - v1: the same episodes, references and rewards as v0; the train examples carry warm-start
      ``demonstrations`` from imperfect writers (``demo_error_rate=0.6``, see
      :mod:`lmgym.envs.demonstrations`): an IMDB-style mixed corpus: 60% of the demonstrations continue
      negatively or with mixed feelings. SFT imitates them, so the SFT policy makes the habit's mistake
      and RL on the reward has a clear gap to close.
    - v1 (lossless data path): with ``dataset=``, the tokenizer built from the data is byte-level BPE
      (v0: word-level, which maps unseen words to ``<unk>``, so the reference often cannot be
      written), the text is kept as written (v0: lowercased, punctuation split) and
      ``max_new_tokens`` comes from the reference lengths (v0: the fixed default). The oracle
      scores >= 0.99 on real local data with default kwargs. Built-in corpus episodes are unchanged,
      except with a ``tokenizer=`` of another vocabulary (a pretrained LM's): then ``max_prompt_tokens``
      fits the longest prompt and ``max_new_tokens`` comes from the reference lengths in its tokens
      (before: the corpus's word counts, which cut subword prompts).
    - v0/v1: the opt-in ``chat`` argument (prompts through an instruct tokenizer's chat template);
      episodes without it are unchanged.
    """

    default_max_new_tokens: ClassVar[int] = 24
    task_kind: ClassVar[str] = "review"
    reward_weights: ClassVar[dict[str, float]] = REVIEW_WEIGHTS
    template: ClassVar[str] = review_corpus.TEMPLATE
    chat_instruction: ClassVar[str] = "Continue this review in a sentence or two.\n\n{source}"
    builtin_prompt_tokens: ClassVar[int] = review_corpus.MAX_PROMPT_TOKENS

    def __init__(self, corpus_seed: int = 0, prompt_words: int = 8, **kwargs: Any) -> None:
        self.prompt_words = int(prompt_words)
        super().__init__(corpus_seed=corpus_seed, **kwargs)

    def builtin_task(self, corpus_seed: int) -> Task:
        return review_task(corpus_seed)

    def demonstration_habit(self) -> Habit:
        return review_habit

    def dataset_options(self) -> dict[str, Any]:
        return {"prompt_words": self.prompt_words}


class KeywordsEnv(FluencyRewardEnv):
    """Write one natural sentence that uses every given concept word (CommonGen-like).

    ## Description
    The prompt lists three or four concept words in random order followed by ``:`` (``"ball
    dog park throw :"``); a good answer is a plausible sentence containing all of them (``"the
    dog likes to throw the ball in the park ."``). Each example has two references. Splits are
    disjoint by concept set, so validation and test need generalization to new combinations
    (see :mod:`lmgym.envs.keywords_corpus`). With ``dataset=`` (e.g. ``"common_gen"`` or a
    jsonl file with ``concepts`` and ``target``) the env runs on real data.

    ## Action Space
    ``Discrete(V)``: the next token. Built-in corpus: ``V = 154`` (150 words and the four
    special tokens).

    ## Observation Space
    As :class:`~lmgym.token_env.TokenEnv`. Built-in: ``P = 5``, ``R = max_new_tokens = 20``
    (sentences have at most 14 tokens).

    ## Rewards
    Sparse, at the end: ``keyword_coverage + ngram_fluency``, in [0, 2]: the fraction
    of concepts present (Porter-stem match, so ``throws`` counts for ``throw``), plus bigram
    fluency fit on the training references. Listing the keywords gets the coverage but little
    fluency; a fluent sentence that misses concepts loses coverage.

    ## Starting State
    A concept set drawn uniformly with ``np_random`` from the split: 10,000 train, 500
    validation, 500 test.

    ## Episode End
    EOS (terminated) or ``max_new_tokens`` tokens (truncated); both are scored.

    ## Arguments
    - ``demo_error_rate`` (0.0 for v0, 0.6 for v1): built-in corpus only; the fraction of warm-start
      demonstrations written with the imperfect writers' habit (see Version History).
    - ``corpus_seed`` (0), ``dataset``, ``dataset_config``, ``columns`` (``{"keywords": ...,
      "target": ...}``), ``max_examples``, ``normalize``, ``tokenizer_kind``, ``max_vocab``, ``lossless``, ``chat``: as
      in :class:`~lmgym.envs.summarize.SummarizeEnv`.
    - ``fluency`` (``"ngram"``): as in :class:`PositiveReviewEnv`.
    - Every :class:`~lmgym.token_env.TokenEnv` argument: ``tokenizer``, ``scorer``, ``split``,
      ``max_prompt_tokens``, ``max_new_tokens``, ``render_mode``.

    >>> import gymnasium as gym, lmgym
    >>> env = gym.make("lmgym/Keywords-v0")
    >>> obs, info = env.reset(seed=0)
    >>> info["prompt"], info["references"][0]
    ('catch street singer bus :', 'every morning the singer and the artist catch a bus in the street .')
    >>> tokenizer = env.unwrapped.tokenizer
    >>> for word in "the singer likes to catch the bus in the street . <eos>".split():
    ...     obs, reward, terminated, truncated, info = env.step(tokenizer.convert_tokens_to_ids(word))
    >>> info["score_details"]["keyword_coverage"], round(float(reward), 1)
    (1.0, 1.6)

    ## Version History
    - v0: initial version (corpus version 0).
    - v1: the same episodes, references and rewards as v0; the train examples carry warm-start
      ``demonstrations`` from imperfect writers (``demo_error_rate=0.6``, see
      :mod:`lmgym.envs.demonstrations`): careless writers: 60% of the demonstrations leave out the place
      phrase, so the place concept is missing. SFT imitates them, so the SFT policy makes the habit's
      mistake and RL on the reward has a clear gap to close.
    - v1 (lossless data path): with ``dataset=``, the tokenizer built from the data is byte-level BPE
      (v0: word-level, which maps unseen words to ``<unk>``, so the reference often cannot be
      written), the text is kept as written (v0: lowercased, punctuation split) and
      ``max_new_tokens`` comes from the reference lengths (v0: the fixed default). The oracle
      scores >= 0.99 on real local data with default kwargs. Built-in corpus episodes are unchanged,
      except with a ``tokenizer=`` of another vocabulary (a pretrained LM's): then ``max_prompt_tokens``
      fits the longest prompt and ``max_new_tokens`` comes from the reference lengths in its tokens
      (before: the corpus's word counts, which cut subword prompts).
    - v0/v1: the opt-in ``chat`` argument (prompts through an instruct tokenizer's chat template);
      episodes without it are unchanged.
    """

    default_max_new_tokens: ClassVar[int] = 20
    task_kind: ClassVar[str] = "keywords"
    reward_weights: ClassVar[dict[str, float]] = KEYWORDS_WEIGHTS
    template: ClassVar[str] = keywords_corpus.TEMPLATE
    chat_instruction: ClassVar[str] = "Write one sentence that uses all of these words: {source}"
    builtin_prompt_tokens: ClassVar[int] = 5

    def __init__(self, corpus_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(corpus_seed=corpus_seed, **kwargs)

    def builtin_task(self, corpus_seed: int) -> Task:
        return keywords_task(corpus_seed)

    def demonstration_habit(self) -> Habit:
        return keywords_habit


PositiveReviewVectorEnv = batched(PositiveReviewEnv)
KeywordsVectorEnv = batched(KeywordsEnv)
