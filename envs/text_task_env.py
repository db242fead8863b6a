"""TextTaskEnv: the shared base of the real-task envs (built-in corpus or a user dataset).

Each real-task env (summarize, translate, positive review, keywords) runs either on its
built-in generated corpus (closed vocabulary, exact word-level tokenizer, fixed prompt size) or
on a dataset given with ``dataset=`` (a preset, hub id, local file or rows, see
:mod:`lmgym.datasets`), with a tokenizer given by the user or built from the data. Subclasses
say which corpus and which kind of dataset task they use; this class owns the switch between
the two and the dataset keyword arguments, so all four envs take them the same way.

The data path has two sets of defaults, chosen by ``lossless`` (set by the env id):

- ``lossless=False`` (``-v0``): a word-level tokenizer built from the training split (unseen
  words become ``<unk>``), text lowercased and split into words and punctuation, and the env's
  fixed ``max_new_tokens``;
- ``lossless=True`` (``-v1``): a byte-level BPE tokenizer (every text encodes, and decodes back
  exactly), text kept as written, and ``max_new_tokens`` from the data (the 99th percentile of the
  reference lengths in tokens, plus one for EOS, at most 256), with a :class:`ReferenceCutWarning`
  naming how many references that limit cuts. The best answer can always be written. A
  ``tokenizer`` given for the built-in corpus (a pretrained LM's) also sizes the prompts and
  ``max_new_tokens`` from the data, since its tokens are not the corpus's words.

Options given explicitly (``tokenizer``, ``tokenizer_kind``, ``normalize``, ``max_new_tokens``)
win over either set of defaults.

``chat`` (off by default) writes every prompt through the tokenizer's chat template, for instruct
LMs: the source goes into a user message (the env's :attr:`~TextTaskEnv.chat_instruction`, or the
instruction given), followed by the assistant header, so the agent's completion is the assistant's
reply and the template's end-of-turn token (the tokenizer's EOS) ends the episode.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from lmgym.datasets import load_task
from lmgym.envs.demonstrations import Habit, check_error_rate, demonstrated_task
from lmgym.errors import ConfigError, TaskError, UnknownEnvKwargError
from lmgym.task import Task
from lmgym.token_env import TokenEnv, valid_kwargs
from lmgym.tokenizer import load_tokenizer

# Prompt tables of built-in corpora, shared by every env of the same corpus in this process.
_SHARED_TABLES: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}

#: Longest prompt (in tokens) a dataset env uses by default; longer prompts are cut at the end.
DATASET_MAX_PROMPT_TOKENS = 512


class ReferenceCutWarning(UserWarning):
    """A dataset env's derived ``max_new_tokens`` is shorter than some of its references."""


class PromptCutWarning(UserWarning):
    """Some chat prompts are longer than ``max_prompt_tokens``, so their end (the assistant header) is cut."""


def chat_task(task: Task, tokenizer: Any, instruction: str) -> Task:
    """``task`` with every prompt written by ``tokenizer``'s chat template.

    The user message is ``instruction`` with the example's source in its ``{source}`` field; the
    prompt ends with the assistant header (``add_generation_prompt=True``). Sources, references and
    meta are unchanged.

    Raises:
        ConfigError: if the tokenizer has no chat template or ``instruction`` has no ``{source}`` field.
    """
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ConfigError(f"chat=True needs a tokenizer with a chat template; {name!r} has none. Pass an instruct "
                          "model's tokenizer (e.g. tokenizer='smollm2-135m', or lmgym train --model smollm2-135m) "
                          "or leave chat off.")
    if not isinstance(instruction, str) or "{source}" not in instruction:
        raise ConfigError(f"chat= takes True or an instruction with a '{{source}}' field; got {instruction!r}.")

    def prompt(source: str) -> str:
        message = [{"role": "user", "content": instruction.replace("{source}", source)}]
        return tokenizer.apply_chat_template(message, add_generation_prompt=True, tokenize=False)

    splits = {name: [replace(ex, prompt=prompt(ex.source)) for ex in task.examples(name)] for name in task.splits}
    return Task(name=task.name, splits=splits, vocabulary=task.vocabulary, template=task.template,
                description=task.description)


class TextTaskEnv(TokenEnv):
    """A :class:`~lmgym.token_env.TokenEnv` over a built-in corpus or a dataset (see subclasses).

    Subclasses set :attr:`task_kind`, :attr:`template`, :attr:`chat_instruction` and
    :attr:`builtin_prompt_tokens` and implement :meth:`builtin_task`; they may override
    :meth:`make_default_scorer` and :meth:`dataset_options`. Options those hooks read (e.g.
    ``direction``) are set as attributes before calling ``super().__init__``.
    """

    task_kind: ClassVar[str] = ""
    template: ClassVar[str] = "{source}"
    #: The user message of ``chat=True`` prompts; ``{source}`` is the example's source text.
    chat_instruction: ClassVar[str] = "{source}"
    builtin_prompt_tokens: ClassVar[int] = 0
    max_inferred_prompt_tokens: ClassVar[int | None] = DATASET_MAX_PROMPT_TOKENS  # datasets: P = longest, capped
    dataset_source_words: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        corpus_seed: int = 0,
        dataset: Any = None,
        dataset_config: str | None = None,
        columns: Mapping[str, str] | None = None,
        max_examples: int | None = None,
        tokenizer_kind: str | None = None,
        max_vocab: int | None = None,
        normalize: bool | None = None,
        lossless: bool = False,
        demo_error_rate: float = 0.0,
        chat: bool | str = False,
        **kwargs: Any,
    ) -> None:
        unknown = set(kwargs) - valid_kwargs(type(self))
        if unknown:  # before any corpus or dataset work
            raise UnknownEnvKwargError.for_env(type(self).__name__, unknown, valid_kwargs(type(self)) - {"task"})
        self.from_dataset = dataset is not None
        self.corpus_seed = int(corpus_seed)
        if dataset is None:
            given = {k: v for k, v in (("dataset_config", dataset_config), ("columns", columns),
                                       ("max_examples", max_examples), ("max_vocab", max_vocab),
                                       ("normalize", normalize)) if v is not None}
            if given:
                raise TaskError(f"{sorted(given)} only apply with dataset=...; the built-in corpus takes "
                                "corpus_seed (and the env's own options).")
            task = self.builtin_task(int(corpus_seed))
            self.demo_error_rate = check_error_rate(demo_error_rate)
            if self.demo_error_rate:
                task = demonstrated_task(task, self.demonstration_habit(), int(corpus_seed), self.demo_error_rate)
            if lossless and kwargs.get("tokenizer") is not None:  # e.g. a pretrained LM's subword tokenizer
                # P: TokenEnv infers it from the longest prompt (max_prompt_tokens left unset).
                kwargs["tokenizer"] = load_tokenizer(kwargs["tokenizer"])
                if kwargs.get("max_new_tokens") is None:
                    kwargs["max_new_tokens"] = self.data_max_new_tokens(task, kwargs["tokenizer"])
            elif not chat:  # chat prompts are longer than the corpus's: P is inferred from them
                kwargs.setdefault("max_prompt_tokens", self.builtin_prompt_tokens)
        else:
            self.demo_error_rate = 0.0  # a dataset's demonstrations are its references
            tokenizer = kwargs.get("tokenizer")
            if tokenizer is not None:  # fail on a bad tokenizer before reading any data
                kwargs["tokenizer"] = load_tokenizer(tokenizer)
            kind = tokenizer_kind or ("byte_bpe" if lossless else "word")
            if normalize is None:  # only the lossy kinds need (and produce) normalized text
                normalize = tokenizer is None and kind != "byte_bpe"
            task = load_task(
                dataset, self.task_kind, columns=columns, config=dataset_config,
                max_examples=max_examples, normalize=bool(normalize),
                template=self.template, max_source_words=self.dataset_source_words, **self.dataset_options(),
            )
            if tokenizer is None:
                kwargs["tokenizer"] = self.data_tokenizer(task, kind, max_vocab)
            if lossless and kwargs.get("max_new_tokens") is None:
                kwargs["max_new_tokens"] = self.data_max_new_tokens(task, kwargs["tokenizer"])
        self.chat = chat
        if chat:
            if kwargs.get("tokenizer") is None:
                raise ConfigError("chat=True needs an instruct LM's tokenizer (tokenizer='smollm2-135m', a folder or "
                                  "a hub id); the built-in word-level tokenizer has no chat template.")
            kwargs["tokenizer"] = load_tokenizer(kwargs["tokenizer"])
            task = chat_task(task, kwargs["tokenizer"], self.chat_instruction if chat is True else chat)
        self._builtin_tokenizer = dataset is None and kwargs.get("tokenizer") is None
        given_p = kwargs.get("max_prompt_tokens") is not None
        super().__init__(task, **kwargs)
        if chat and (given_p or self.max_prompt_tokens == self.max_inferred_prompt_tokens):  # else none is cut
            self.warn_cut_prompts()
        if self.from_dataset:
            self.prompt_table(self.split)  # a prompt that tokenizes to nothing fails here, not mid-run

    def warn_cut_prompts(self) -> None:
        """Warn (:class:`PromptCutWarning`) when chat prompts are longer than ``max_prompt_tokens``."""
        P = self.max_prompt_tokens
        longest = cut = total = 0
        for split in self.task.splits:
            if split not in self._encoded_prompts:  # kept for prompt_table, which would encode them again
                self._encoded_prompts[split] = self._encode_prompts(split)
            lengths = [len(ids) for ids in self._encoded_prompts[split]]
            cut += sum(n > P for n in lengths)
            total += len(lengths)
            longest = max(longest, *lengths)
        if cut:
            warnings.warn(f"{cut} of {total} chat prompts are longer than max_prompt_tokens={P}, so they lose their "
                          f"end (the assistant header); pass max_prompt_tokens={longest} or max_examples/shorter "
                          "sources.", PromptCutWarning, stacklevel=3)

    # ---- hooks ---------------------------------------------------------------------------------
    def builtin_task(self, corpus_seed: int) -> Task:
        """The built-in generated task for ``corpus_seed`` (cache it: ``gym.make`` should be fast)."""
        raise NotImplementedError

    def demonstration_habit(self) -> Habit:
        """The built-in corpus's imperfect demonstrator (see :mod:`lmgym.envs.demonstrations`)."""
        raise NotImplementedError

    def dataset_options(self) -> dict[str, Any]:
        """Extra keyword arguments for :func:`lmgym.datasets.load_task` (e.g. ``direction``)."""
        return {}

    def prompt_table(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`TokenEnv.prompt_table`, shared per process for built-in corpora.

        With the built-in word-level tokenizer a prompt's ids are a dictionary lookup per word,
        so the table is built without the HF tokenizer and shared (read-only) by every env of the
        same corpus: the first ``reset`` of a new env is then instant.
        """
        if not self._builtin_tokenizer:
            return super().prompt_table(split)
        key = (type(self).__name__, self.task.name, self.corpus_seed, split, self.max_prompt_tokens)
        table = _SHARED_TABLES.get(key)
        if table is None:
            vocab = self.tokenizer.get_vocab()
            unk = self.tokenizer.unk_token_id
            examples = self.task.examples(split)
            P = self.max_prompt_tokens
            ids = np.full((len(examples), P), self.pad_token_id, np.int64)
            lengths = np.zeros(len(examples), np.int64)
            for i, ex in enumerate(examples):
                row = [vocab.get(w, unk) for w in ex.prompt.split()][:P]
                ids[i, P - len(row) :] = row
                lengths[i] = len(row)
            ids.flags.writeable = False
            lengths.flags.writeable = False
            table = _SHARED_TABLES[key] = (ids, lengths)
        return table

    # ---- dataset helpers -------------------------------------------------------------------------
    @staticmethod
    def data_tokenizer(task: Task, kind: str, max_vocab: int | None) -> Any:
        """A tokenizer built from (or cached for) the task's training prompts and references."""
        from lmgym.data_tokenizer import tokenizer_from_data

        train = task.examples("train")
        texts = [ex.prompt for ex in train] + [ref for ex in train for ref in ex.references]
        return tokenizer_from_data(texts, kind, max_vocab)

    @staticmethod
    def data_max_new_tokens(task: Task, tokenizer: Any) -> int:
        """``max_new_tokens`` from the data: see :func:`lmgym.data_tokenizer.response_token_limit`.

        Counts every reference of every split; warns (:class:`ReferenceCutWarning`) when the limit
        cuts some of them, naming how many and the value that fits them all.
        """
        from lmgym.data_tokenizer import MAX_DERIVED_NEW_TOKENS, RESPONSE_QUANTILE, response_token_limit

        refs = [ref for split in task.splits for ex in task.examples(split) for ref in ex.references]
        limit, cut, longest = response_token_limit(tokenizer, refs)
        if cut:
            warnings.warn(
                f"max_new_tokens={limit} (the {RESPONSE_QUANTILE:.0%} quantile of the reference lengths in "
                f"tokens, plus EOS, at most {MAX_DERIVED_NEW_TOKENS}) cuts {cut} of {len(refs)} references of "
                f"{task.name!r} (the longest has {longest} tokens); pass max_new_tokens={longest + 1} to fit "
                "them all.", ReferenceCutWarning, stacklevel=2)
        return limit

    @staticmethod
    def train_references(task: Task) -> list[str]:
        """Every reference of the train split (e.g. the corpus a fluency scorer is fit on)."""
        return [ref for ex in task.examples("train") for ref in ex.references]
