"""Translation as a token-level env: translate a sentence into (or out of) a synthetic language."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from lmgym.envs import translate_corpus as corpus
from lmgym.envs.demonstrations import TRANSLATE_DROPS, Habit, translate_habit
from lmgym.envs.text_task_env import TextTaskEnv
from lmgym.errors import TaskError, did_you_mean
from lmgym.task import Task
from lmgym.vector_env import batched


@functools.lru_cache(maxsize=8)
def translate_task(corpus_seed: int = 0, direction: str = "en-xx") -> Task:
    """The built-in translation task for ``corpus_seed`` and ``direction`` (built once per process)."""
    return Task(
        name=f"translate-{direction}",
        splits=corpus.build_splits(corpus_seed, direction),
        vocabulary=corpus.vocabulary(),
        template=corpus.TEMPLATE,
        description=f"Translate {direction}: English-like <-> a verb-final synthetic language with agreement.",
    )


class TranslateEnv(TextTaskEnv):
    """Translate a sentence between English and a synthetic verb-final language ("xx").

    ## Description
    The prompt is a source sentence followed by ``=``; the reference is its translation. The
    target language has its own lexicon and grammar: verb-final order, adjectives after the
    noun, a postposed definite article, an object particle, noun classes with adjective
    agreement and verb endings for tense and subject number (see
    :mod:`lmgym.envs.translate_corpus`). Word-by-word dictionary lookup therefore scores well
    below a correct translation. ``direction="xx-en"`` translates back to English. With
    ``dataset=`` the env runs on real parallel data (e.g. ``"wmt16"`` with ``direction="de-en"``,
    or a local jsonl file with ``source``/``target``).

    ## Action Space
    ``Discrete(V)``: the next token. Built-in corpus: ``V = 511`` (both languages' 507 words and
    the four special tokens; the same vocabulary for both directions). With a dataset, ``V`` is
    the size of its tokenizer.

    ## Observation Space
    As :class:`~lmgym.token_env.TokenEnv`. Built-in: ``P = 16`` (sentences have at most 15
    tokens, plus ``=``), ``R = max_new_tokens = 20``.

    ## Rewards
    Sparse, at the end: ``chrf`` (sacrebleu chrF / 100) against the reference, in [0, 1].
    ``scorer="bleu"`` or ``"ter"`` work too.

    ## Starting State
    A sentence pair drawn uniformly with ``np_random`` from the split: 10,000 train, 500
    validation, 500 test, disjoint by source sentence; both directions use the same pairs.

    ## Episode End
    EOS (terminated) or ``max_new_tokens`` tokens (truncated); both are scored.

    ## Arguments
    - ``demo_error_rate`` (0.0 for v0, 0.6 for v1): built-in corpus only; the fraction of warm-start
      demonstrations written with the imperfect writers' habit (see Version History).
    - ``direction`` (``"en-xx"``): ``"en-xx"`` or ``"xx-en"`` for the built-in corpus; for a
      dataset with a ``translation`` column, the language pair to read (``"de-en"``).
    - ``corpus_seed`` (0), ``dataset``, ``dataset_config``, ``columns``, ``max_examples``,
      ``normalize``, ``tokenizer_kind``, ``max_vocab``, ``lossless``, ``chat``: as in
      :class:`~lmgym.envs.summarize.SummarizeEnv`.
    - Every :class:`~lmgym.token_env.TokenEnv` argument: ``tokenizer``, ``scorer``, ``split``,
      ``max_prompt_tokens``, ``max_new_tokens``, ``render_mode``.

    >>> import gymnasium as gym, lmgym
    >>> env = gym.make("lmgym/Translate-v0")
    >>> obs, info = env.reset(seed=1)
    >>> info["prompt"]
    'every day the poor woman carries the angry baker behind the forest . ='
    >>> info["references"][0]
    'zolul lero beko ti nero ti dar raga tuba ti ka dkore .'
    >>> tokenizer = env.unwrapped.tokenizer
    >>> for word in info["references"][0].split() + ["<eos>"]:
    ...     obs, reward, terminated, truncated, info = env.step(tokenizer.convert_tokens_to_ids(word))
    >>> round(float(reward), 4), terminated
    (1.0, True)

    ## Version History
    - v0: initial version (corpus version 0).
    - v1: the same episodes, references and rewards as v0; the train examples carry warm-start
      ``demonstrations`` from imperfect writers (``demo_error_rate=0.6``, see
      :mod:`lmgym.envs.demonstrations`): literal translators: 60% of the demonstrations leave out the
      particles the source language lacks (``ka``/``ti`` into xx, articles into English). SFT imitates
      them, so the SFT policy makes the habit's mistake and RL on the reward has a clear gap to close.
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

    default_scorer: ClassVar[Any] = "chrf"
    default_max_new_tokens: ClassVar[int] = 20
    task_kind: ClassVar[str] = "translate"
    template: ClassVar[str] = corpus.TEMPLATE
    chat_instruction: ClassVar[str] = "Translate the following text.\n\n{source}"
    builtin_prompt_tokens: ClassVar[int] = corpus.MAX_SENTENCE_TOKENS - 4

    def __init__(self, corpus_seed: int = 0, direction: str | None = None, **kwargs: Any) -> None:
        builtin = kwargs.get("dataset") is None
        if builtin and direction is not None and direction not in corpus.DIRECTIONS:
            raise TaskError(
                f"Unknown direction {direction!r} for the built-in corpus.{did_you_mean(direction, corpus.DIRECTIONS)} "
                f"Use one of {', '.join(corpus.DIRECTIONS)}; language pairs such as 'de-en' need dataset=."
            )
        self.direction = direction or ("en-xx" if builtin else None)
        super().__init__(corpus_seed=corpus_seed, **kwargs)

    def builtin_task(self, corpus_seed: int) -> Task:
        return translate_task(corpus_seed, self.direction)

    def demonstration_habit(self) -> Habit:
        return translate_habit(TRANSLATE_DROPS[self.direction])

    def dataset_options(self) -> dict[str, Any]:
        return {"direction": self.direction}

    def word_dictionary(self) -> dict[str, str] | None:
        """The built-in language pair's word-for-word dictionary (``None`` for a dataset).

        Used by the ``dictionary`` baseline; see :func:`lmgym.envs.translate_corpus.word_dictionary`.
        """
        if self.from_dataset:
            return None
        return corpus.word_dictionary(self.direction)


TranslateVectorEnv = batched(TranslateEnv)
