"""Summarization as a token-level env: read a short report, write its one-sentence summary."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from lmgym.envs import summarize_corpus as corpus
from lmgym.envs.demonstrations import Habit, summary_habit
from lmgym.envs.text_task_env import TextTaskEnv
from lmgym.task import Task
from lmgym.vector_env import batched


@functools.lru_cache(maxsize=8)
def summarize_task(corpus_seed: int = 0) -> Task:
    """The built-in summarization task for ``corpus_seed`` (built once per process)."""
    return Task(
        name="summarize",
        splits=corpus.build_splits(corpus_seed),
        vocabulary=corpus.vocabulary(),
        template=corpus.TEMPLATE,
        description="Summarize a short news report (facts among distractors) in one sentence.",
    )


class SummarizeEnv(TextTaskEnv):
    """Summarize a short news report in one sentence that states its key facts.

    ## Description
    The prompt is a report of five to seven sentences followed by ``summary :``. Three sentences
    carry the facts of one event (a match, a business opening, a council vote, a storm, a
    scientific find or an arrest: who, what, where, numbers); the others are distractors that
    also mention places and numbers. The reference summary fuses the three facts into one
    compressed sentence, so copying the first sentence(s) scores well below it (see
    :mod:`lmgym.envs.summarize_corpus`). With ``dataset=`` the env runs on real data instead
    (e.g. ``"cnn_dailymail"``, ``"xsum"`` or a local jsonl file with ``document``/``summary``).

    ## Action Space
    ``Discrete(V)``: the next token. Built-in corpus: ``V = 355`` (351 words + ``<pad>`` 0,
    ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3). With a dataset, ``V`` is the size of its tokenizer.

    ## Observation Space
    As :class:`~lmgym.token_env.TokenEnv`: ``prompt_ids (P,)`` left-padded, ``prompt_mask (P,)``,
    ``response_ids (R,)``, ``response_mask (R,)``, ``step (1,)``. Built-in: ``P = 82`` (documents
    have at most 80 tokens, plus ``summary :``), ``R = max_new_tokens = 32`` (summaries have at
    most 25 tokens). With a dataset, ``P`` is the longest prompt, at most 512.

    ## Rewards
    Sparse, at the end: ``rouge`` (mean F1 of ROUGE-1/2/L with stemming) against the
    reference, in [0, 1]. Any scorer can be passed with ``scorer=`` (e.g. ``"rougeL"``,
    ``{"rouge": 1.0, "length": 0.2}``).

    ## Starting State
    A report drawn uniformly with ``np_random`` from the split: 10,000 train, 500 validation,
    500 test, disjoint (no document in two splits).

    ## Episode End
    EOS (terminated) or ``max_new_tokens`` tokens (truncated); both are scored.

    ## Arguments
    - ``demo_error_rate`` (0.0 for v0, 0.6 for v1): built-in corpus only; the fraction of warm-start
      demonstrations written with the imperfect writers' habit (see Version History).
    - ``corpus_seed`` (0): seed of the built-in corpus.
    - ``dataset`` (``None``): a preset (``"cnn_dailymail"``, ``"xsum"``), hub id, local
      ``.jsonl``/``.csv``/``.parquet`` file or folder, ``datasets.Dataset`` or list of dicts; see
      :func:`lmgym.datasets.load_task`. Sources are cut to 400 words.
    - ``dataset_config``, ``columns`` (e.g. ``{"source": "body", "target": "tldr"}``),
      ``max_examples`` (per split), ``normalize`` (lowercase and split punctuation; default: when
      the tokenizer is a ``"word"`` or ``"bpe"`` one built from the data).
    - ``tokenizer_kind`` (``"byte_bpe"`` for v1, ``"word"`` for v0; or ``"bpe"``) and ``max_vocab``:
      the tokenizer built from a dataset when ``tokenizer`` is not given (cached on disk by a hash
      of the data); see :mod:`lmgym.data_tokenizer`.
    - ``lossless`` (``False`` for v0, ``True`` for v1): the defaults of the data path. ``True``:
      byte-level BPE (every text can be written and decodes back exactly), text kept as written,
      and ``max_new_tokens`` from the data (99th percentile of the reference lengths in tokens,
      plus EOS, at most 256; a ``ReferenceCutWarning`` names how many references it cuts). The
      built-in corpus ignores it. See :mod:`lmgym.envs.text_task_env`.
    - ``chat`` (``False``): ``True`` writes each prompt through the tokenizer's chat template (an
      instruct LM's, e.g. ``tokenizer="smollm2-135m"``): a user message "Summarize the following text
      in one sentence." with the source, then the assistant header; a string gives your own
      instruction with a ``{source}`` field. Off: the prompt is the source and ``summary :``.
    - Every :class:`~lmgym.token_env.TokenEnv` argument: ``tokenizer``, ``scorer``, ``split``,
      ``max_prompt_tokens``, ``max_new_tokens``, ``render_mode``.

    >>> import gymnasium as gym, lmgym
    >>> env = gym.make("lmgym/Summarize-v0")
    >>> obs, info = env.reset(seed=0)
    >>> env.action_space, obs["prompt_ids"].shape, obs["response_ids"].shape
    (Discrete(355), (82,), (32,))
    >>> info["references"][0]
    'stonebridge police arrested 19 after a theft at a library , 13 bikes taken .'
    >>> tokenizer = env.unwrapped.tokenizer
    >>> for word in info["references"][0].split() + ["<eos>"]:
    ...     obs, reward, terminated, truncated, info = env.step(tokenizer.convert_tokens_to_ids(word))
    >>> round(float(reward), 4), terminated
    (1.0, True)

    ## Version History
    - v0: initial version (corpus version 0).
    - v1: the same episodes, references and rewards as v0; the train examples carry warm-start
      ``demonstrations`` from imperfect writers (``demo_error_rate=0.6``, see
      :mod:`lmgym.envs.demonstrations`): lead-biased annotators: 60% of the demonstrations copy the
      document's first sentence. SFT imitates them, so the SFT policy makes the habit's mistake and RL
      on the reward has a clear gap to close.
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

    default_scorer: ClassVar[Any] = "rouge"
    default_max_new_tokens: ClassVar[int] = 32
    task_kind: ClassVar[str] = "summarize"
    template: ClassVar[str] = corpus.TEMPLATE
    chat_instruction: ClassVar[str] = "Summarize the following text in one sentence.\n\n{source}"
    builtin_prompt_tokens: ClassVar[int] = corpus.MAX_DOCUMENT_TOKENS + 2
    dataset_source_words: ClassVar[int | None] = 400

    def __init__(self, corpus_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(corpus_seed=corpus_seed, **kwargs)

    def builtin_task(self, corpus_seed: int) -> Task:
        return summarize_task(corpus_seed)

    def demonstration_habit(self) -> Habit:
        return summary_habit


SummarizeVectorEnv = batched(SummarizeEnv)
