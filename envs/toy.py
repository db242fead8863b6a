"""Toy tasks for teaching and sanity checks: copy or reverse a short sequence of symbols."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmgym.task import Example, Task
from lmgym.token_env import TokenEnv
from lmgym.validation import MAX_TOKENS, check_int
from lmgym.vector_env import batched

SEPARATOR = "="
_SPLIT_SIZES = {"train": 10_000, "validation": 500, "test": 500}


def symbols(vocab_size: int) -> list[str]:
    """The toy alphabet: ``a``..``z`` for up to 26 symbols, else ``t0``, ``t1``, ..."""
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2; got {vocab_size}.")
    if vocab_size <= 26:
        return [chr(ord("a") + i) for i in range(vocab_size)]
    return [f"t{i}" for i in range(vocab_size)]


def sequence_task(
    name: str, length: int, vocab_size: int, min_length: int | None, reverse: bool, corpus_seed: int
) -> Task:
    """Build a copy (or reverse) task with disjoint train/validation/test splits.

    Sequences are drawn with ``numpy.random.default_rng(corpus_seed)``; duplicates are dropped
    before splitting, so no sequence appears in two splits.
    """
    length = check_int("length", length, minimum=1, maximum=MAX_TOKENS - 1)
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    corpus_seed = check_int("corpus_seed", corpus_seed, minimum=0)
    min_length = length if min_length is None else check_int("min_length", min_length, minimum=1)
    if not 1 <= min_length <= length:
        raise ValueError(f"Need 1 <= min_length <= length; got min_length={min_length}, length={length}.")
    alphabet = symbols(vocab_size)
    rng = np.random.default_rng(corpus_seed)
    wanted = sum(_SPLIT_SIZES.values())
    space = sum(vocab_size**n for n in range(min_length, length + 1))
    seen: dict[tuple[int, ...], None] = {}
    tries = 0
    while len(seen) < min(wanted, space) and tries < 20:
        lengths = rng.integers(min_length, length + 1, size=wanted)
        draws = rng.integers(vocab_size, size=(wanted, length))
        for n, row in zip(lengths, draws):
            seen.setdefault(tuple(row[:n].tolist()), None)
        tries += 1
    seqs = list(seen)[:wanted]
    # Split proportionally when the sequence space is smaller than the requested sizes.
    n_val = max(1, len(seqs) * _SPLIT_SIZES["validation"] // wanted)
    n_test = max(1, len(seqs) * _SPLIT_SIZES["test"] // wanted)
    parts = {"validation": seqs[:n_val], "test": seqs[n_val : n_val + n_test], "train": seqs[n_val + n_test :]}
    template = "{source} " + SEPARATOR
    splits = {}
    for split, rows in parts.items():
        examples = []
        for row in rows:
            source = " ".join(alphabet[i] for i in row)
            target = " ".join(alphabet[i] for i in (row[::-1] if reverse else row))
            examples.append(Example(source=source, prompt=template.format(source=source), references=(target,)))
        splits[split] = examples
    verb = "Reverse" if reverse else "Copy"
    return Task(
        name=name,
        splits=splits,
        vocabulary=[*alphabet, SEPARATOR],
        template=template,
        description=f"{verb} a sequence of {min_length}-{length} symbols from a {vocab_size}-symbol alphabet.",
    )


class CopyEnv(TokenEnv):
    """Copy the prompt's symbols, then emit EOS.

    ## Description
    The prompt is a sequence of symbols followed by ``=``, e.g. ``"c a d ="``; the reference is
    the same sequence ``"c a d"``. The smallest task on which an RL agent visibly learns.

    ## Action Space
    ``Discrete(V)``, ``V = vocab_size + 5`` (the symbols, ``=`` and the four special tokens
    ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3).

    ## Observation Space
    As :class:`~lmgym.token_env.TokenEnv`, with ``P = length + 1`` and ``R = max_new_tokens``.

    ## Rewards
    Sparse, at the end: ``token_accuracy`` by default (fraction of positions right, divided by
    the longer of completion and reference), in [0, 1]; ``scorer="exact_match"`` gives 0/1.

    ## Starting State
    A sequence drawn uniformly from the split (10,000 train, 500 validation, 500 test, disjoint).

    ## Episode End
    EOS (terminated) or ``max_new_tokens`` tokens (truncated; default ``length + 1``).

    ## Arguments
    ``length`` (5), ``vocab_size`` (10), ``min_length`` (``None``: all sequences have ``length``
    symbols), ``corpus_seed`` (0), and every :class:`~lmgym.token_env.TokenEnv` argument
    (``tokenizer``, ``scorer``, ``split``, ``max_prompt_tokens``, ``max_new_tokens``, ``render_mode``).

    >>> import gymnasium as gym, lmgym
    >>> env = gym.make("lmgym/Copy-v0", length=3, vocab_size=4)
    >>> obs, info = env.reset(seed=0)
    >>> info["prompt"], info["references"]
    ('c c a =', ['c c a'])
    >>> token_id = env.unwrapped.tokenizer.convert_tokens_to_ids
    >>> for word in ["c", "c", "a", "<eos>"]:
    ...     obs, reward, terminated, truncated, info = env.step(token_id(word))
    >>> reward, terminated, info["completion"]
    (1.0, True, 'c c a')

    ## Version History
    - v0: initial version.
    """

    reverse = False
    task_name = "copy"

    def __init__(
        self,
        length: int = 5,
        vocab_size: int = 10,
        min_length: int | None = None,
        corpus_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        task = sequence_task(self.task_name, length, vocab_size, min_length, self.reverse, corpus_seed)
        kwargs.setdefault("max_new_tokens", length + 1)
        kwargs.setdefault("max_prompt_tokens", length + 1)
        super().__init__(task, **kwargs)


class ReverseEnv(CopyEnv):
    """Write the prompt's symbols in reverse order, then emit EOS.

    ## Description
    The prompt ``"c a d ="`` has the reference ``"d a c"``. Harder than copying for a causal
    model: the first output token depends on the last input token.

    ## Action Space
    ``Discrete(vocab_size + 5)``, as :class:`CopyEnv`.

    ## Observation Space
    As :class:`CopyEnv`.

    ## Rewards
    ``token_accuracy`` against the reversed sequence by default, in [0, 1].

    ## Starting State
    As :class:`CopyEnv` (same sequences for the same ``corpus_seed``).

    ## Episode End
    As :class:`CopyEnv`.

    ## Arguments
    As :class:`CopyEnv`.

    ## Version History
    - v0: initial version.
    """

    reverse = True
    task_name = "reverse"


CopyVectorEnv = batched(CopyEnv)
ReverseVectorEnv = batched(ReverseEnv)
