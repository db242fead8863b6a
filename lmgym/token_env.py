"""TokenEnv: the Gymnasium env every lmgym task builds on. Actions are tokens.

Each episode draws one example from a :class:`~lmgym.task.Task`, shows its tokenized prompt,
and lets the agent write a response one token per ``step``. The episode ends on EOS
(``terminated``) or at the token limit (``truncated``); then the scorer judges the decoded
completion against the references and that score is the reward (sparse: 0 before the end).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lmgym.errors import InvalidActionError, ResetNeededError, TokenizerError, UnknownEnvKwargError
from lmgym.scorers import make_scorer, score_with_details
from lmgym.task import Example, Task
from lmgym.tokenizer import build_word_tokenizer, load_tokenizer
from lmgym.validation import MAX_TOKENS, check_int

ObsType = dict[str, np.ndarray]


def valid_kwargs(cls: type) -> set[str]:
    """Keyword arguments accepted by ``cls.__init__`` across its class hierarchy."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                names.add(p.name)
    return names


def batch_meta(examples: Sequence[Example]) -> dict[str, list[Any]]:
    """Turn per-example ``meta`` dicts into the scorer's per-key lists."""
    keys = sorted({k for ex in examples for k in ex.meta})
    return {k: [ex.meta.get(k) for ex in examples] for k in keys}


def as_token_id(action: Any, vocab_size: int) -> int:
    """Validate an action and return it as a Python int.

    Accepts Python ints, NumPy integer scalars and 0-d / one-element integer arrays.

    Raises:
        InvalidActionError: for non-integers (floats, bools, strings), wrong shapes, or ids
            outside ``[0, vocab_size)``.
    """
    value = action
    if isinstance(value, np.ndarray):
        if value.size != 1 or value.ndim > 1:
            raise InvalidActionError(
                f"Action must be one token id (a scalar); got an array of shape {value.shape}. "
                "For several envs at once use gym.make_vec(...)."
            )
        if not np.issubdtype(value.dtype, np.integer):
            raise InvalidActionError(
                f"Action must be an integer token id; got dtype {value.dtype}. Cast it with int(action)."
            )
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidActionError(
            f"Action must be an integer token id in [0, {vocab_size}); got {action!r} ({type(action).__name__})."
        )
    value = int(value)
    if not 0 <= value < vocab_size:
        raise InvalidActionError(
            f"Action {value} is outside the vocabulary: token ids are in [0, {vocab_size}). "
            "Use env.action_space.n for the vocabulary size."
        )
    return value


def check_example_index(value: Any, num_examples: int, split: str) -> int:
    """``options["example_index"]`` as an int in ``[0, num_examples)``.

    Raises:
        IndexError: an integer out of range (negative indices are not counted from the end).
        ValueError: not an integer.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"example_index must be an int in [0, {num_examples}); got {value!r}.")
    if not 0 <= value < num_examples:
        raise IndexError(f"example_index {int(value)} is out of range for split {split!r}: use 0 to "
                         f"{num_examples - 1} ({num_examples} examples).")
    return int(value)


class TokenEnv(gym.Env[ObsType, np.int64]):
    """A language task as a token-level Gymnasium env.

    ## Description
    The env shows a prompt (token ids) and the agent writes the response one token per step.
    When the response ends (EOS or the token limit) the scorer compares the decoded completion
    with the example's references and the score is the reward.

    ## Action Space
    ``Discrete(V)``: the id of the next token, ``V = len(tokenizer)``. Any id is allowed;
    ``eos_token_id`` ends the episode. Non-integer, non-scalar or out-of-range actions raise
    :class:`~lmgym.errors.InvalidActionError` and leave the episode unchanged.

    ## Observation Space
    ``Dict`` of fixed-shape ``int64`` arrays (``P`` = ``max_prompt_tokens``, ``R`` = ``max_new_tokens``):

    - ``prompt_ids (P,)``: prompt tokens, **left**-padded with ``pad_token_id`` so the prompt ends
      at the last position and a causal agent can append the response directly;
    - ``prompt_mask (P,)``: 1 for prompt tokens, 0 for padding;
    - ``response_ids (R,)``: tokens written so far, right-padded;
    - ``response_mask (R,)``: 1 for written tokens;
    - ``step (1,)``: number of response tokens so far (the agent's and, in tool envs, the env's). ``0``
      means the episode just (re)started,
      which tells a cache-keeping agent to reset its KV cache for this env.

    ## Rewards
    Sparse: 0 on every step except the last, where the reward is the scorer's value for the
    completion (``info["score"]``). Use :class:`lmgym.wrappers.DenseScoreReward` for per-token
    shaping that sums to the same value.

    ## Starting State
    ``reset`` draws an example of ``split`` uniformly with ``self.np_random``;
    ``options={"example_index": i}`` picks one, ``options={"split": "validation"}`` switches split.

    ## Episode End
    ``terminated`` when the agent emits EOS; ``truncated`` when ``max_new_tokens`` tokens are
    written. Both give the final reward. The token limit is the env's own ``max_new_tokens``
    (lmgym specs set no ``max_episode_steps``): a ``gym.make(..., max_episode_steps=N)`` TimeLimit
    would cut the episode *without* scoring it, so set ``max_new_tokens=N`` instead.

    ## Arguments
    - ``task``: the :class:`~lmgym.task.Task` to draw examples from.
    - ``tokenizer``: ``None`` (exact word-level tokenizer built from the task vocabulary), a
      ``PreTrainedTokenizer`` object, a local folder or a hub id.
    - ``scorer``: a name, a scorer object, a callable or ``{name: weight}``; ``None`` uses the
      env's default.
    - ``split``: ``"train"``, ``"validation"`` or ``"test"``.
    - ``max_prompt_tokens``: prompt length ``P`` (longer prompts are cut at the end); ``None``
      uses the longest prompt of the task, at most ``max_inferred_prompt_tokens`` (512 for
      dataset-backed text envs).
    - ``max_new_tokens``: response token limit ``R``.
    - ``render_mode``: ``"ansi"`` (``render()`` returns text) or ``"human"`` (prints it).

    ## Version History
    - v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}
    default_scorer: ClassVar[Any] = "token_accuracy"
    default_max_new_tokens: ClassVar[int] = 32
    max_inferred_prompt_tokens: ClassVar[int | None] = None  # cap on P when it is inferred from the prompts
    #: Agent tokens after which the env may append tokens of its own (:meth:`env_reply`); empty for plain
    #: text envs. Envs that write tokens (:class:`lmgym.tool_env.ToolEnv`) also show ``agent_mask``.
    trigger_ids: frozenset[int] = frozenset()

    def __init__(
        self,
        task: Task,
        *,
        tokenizer: Any = None,
        scorer: Any = None,
        split: str = "train",
        max_prompt_tokens: int | None = None,
        max_new_tokens: int | None = None,
        render_mode: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise UnknownEnvKwargError.for_env(type(self).__name__, unknown, valid_kwargs(type(self)) - {"task"})
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = self.metadata["render_modes"]
            raise ValueError(f"render_mode must be one of {modes} or None; got {render_mode!r}.")
        self.task = task
        self.split = split
        task.examples(split)  # fail early on an unknown split
        if tokenizer is None:
            if task.vocabulary is None:
                raise TokenizerError(
                    f"Task {task.name!r} has an open vocabulary; pass tokenizer= (an object, folder or hub id)."
                )
            self.tokenizer = build_word_tokenizer(task.vocabulary)
        else:
            self.tokenizer = load_tokenizer(tokenizer)
        self.word_level = tokenizer is None  # the exact word-level tokenizer of the task's closed vocabulary
        self.scorer = make_scorer(self.make_default_scorer(task) if scorer is None else scorer)
        self.render_mode = render_mode
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.eos_token_id = int(self.tokenizer.eos_token_id)
        self.vocab_size = len(self.tokenizer)
        self.max_new_tokens = check_int("max_new_tokens", self.default_max_new_tokens if max_new_tokens is None
                                        else max_new_tokens, minimum=1, maximum=MAX_TOKENS)
        check_int("max_prompt_tokens", max_prompt_tokens, minimum=1, maximum=MAX_TOKENS, optional=True)
        self._prompt_tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        encoded: dict[str, list[list[int]]] = {}
        if max_prompt_tokens is None:
            # Tokenize every split once: the longest prompt sets P, and the same ids fill the tables.
            encoded = {split: self._encode_prompts(split) for split in task.splits}
            max_prompt_tokens = max(1, max(len(ids) for rows in encoded.values() for ids in rows))
            if self.max_inferred_prompt_tokens is not None:
                max_prompt_tokens = min(max_prompt_tokens, self.max_inferred_prompt_tokens)
        self.max_prompt_tokens = int(max_prompt_tokens)
        self._encoded_prompts = encoded  # reused by prompt_table, so no split is tokenized twice
        if self.max_prompt_tokens < 1:
            raise ValueError(f"max_prompt_tokens must be >= 1; got {self.max_prompt_tokens}.")

        P, R, V = self.max_prompt_tokens, self.max_new_tokens, self.vocab_size
        self.action_space = spaces.Discrete(V)
        self.observation_space = spaces.Dict(
            {
                "prompt_ids": spaces.Box(0, V - 1, (P,), np.int64),
                "prompt_mask": spaces.Box(0, 1, (P,), np.int64),
                "response_ids": spaces.Box(0, V - 1, (R,), np.int64),
                "response_mask": spaces.Box(0, 1, (R,), np.int64),
                "step": spaces.Box(0, R, (1,), np.int64),
            }
        )
        self._example: Example | None = None
        self._index = -1
        self._prompt = np.full(P, self.pad_token_id, np.int64)
        self._prompt_mask = np.zeros(P, np.int64)
        self._response = np.full(R, self.pad_token_id, np.int64)
        self._env_written = np.zeros(R, np.int64)  # 1 where the env, not the agent, wrote the token
        self._length = 0
        self._done = True
        self._last_reward: float | None = None

    def make_default_scorer(self, task: Task) -> Any:
        """The scorer used when ``scorer=None`` (and the task metric evaluations report).

        The base returns the class's :attr:`default_scorer` name; envs whose default depends on
        the task (e.g. a fluency model fit to its references) override this hook.
        """
        return self.default_scorer

    def env_reply(self, response: np.ndarray, env_written: np.ndarray) -> np.ndarray:
        """Token ids the env appends after the agent wrote a token of :attr:`trigger_ids` (the last of
        ``response``); ``env_written`` marks the earlier env-written tokens. Plain text envs write none."""
        return np.zeros(0, np.int64)

    def env_written_in(self, ids: Sequence[int]) -> np.ndarray:
        """``(len(ids),)``: 1 at the tokens of a written-out response that this env would write itself (tool
        results), 0 at the agent's; a warm start imitates only the agent's. Plain text envs write none."""
        return np.zeros(len(ids), np.int64)

    # ---- text <-> tokens -------------------------------------------------------------------
    def prompt_table(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Left-padded prompt ids ``(n, P)`` and prompt lengths ``(n,)`` of every example of ``split``.

        Built with one batched tokenizer call the first time a split is used, then cached, so
        starting an episode is a row copy.

        Raises:
            TokenizerError: if a prompt tokenizes to nothing.
        """
        table = self._prompt_tables.get(split)
        if table is None:
            encoded = self._encoded_prompts.pop(split, None)
            if encoded is None:
                encoded = self._encode_prompts(split)
            table = self._prompt_tables[split] = self._fill_table(split, encoded)
        return table

    def _encode_prompts(self, split: str) -> list[list[int]]:
        """Token ids of every prompt of ``split`` (one batched tokenizer call)."""
        return self.tokenizer([ex.prompt for ex in self.task.examples(split)], add_special_tokens=False)["input_ids"]

    def _fill_table(self, split: str, encoded: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Left-pad (and cut to ``P``) the encoded prompts of ``split`` into ``(ids, lengths)``."""
        examples = self.task.examples(split)
        P = self.max_prompt_tokens
        ids = np.full((len(encoded), P), self.pad_token_id, np.int64)
        lengths = np.zeros(len(encoded), np.int64)
        for i, row in enumerate(encoded):
            row = row[:P]
            if not row:
                raise TokenizerError(
                    f"Prompt {examples[i].prompt!r} (example {i} of split {split!r}, task {self.task.name!r}) "
                    "tokenizes to nothing; fix the data or use a tokenizer that covers it."
                )
            ids[i, P - len(row) :] = row
            lengths[i] = len(row)
        return ids, lengths

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_prompt_tables"] = {}  # cheap to rebuild; keeps pickles (e.g. to subprocesses) small
        state["_encoded_prompts"] = {}
        return state

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Decode response token ids to text (special tokens dropped)."""
        return self.decode_batch([ids])[0]

    def decode_batch(self, batch: Sequence[Sequence[int] | np.ndarray]) -> list[str]:
        """Decode several responses at once (special tokens dropped).

        A word-level tokenizer's text is its tokens joined by spaces: that is a table lookup per token
        (:meth:`word_table`). Other fast tokenizers with no Python-side clean-up use the Rust tokenizer
        directly; both give the text of ``tokenizer.batch_decode``, without its per-token conversions.
        """
        lists = [ids if type(ids) is list else np.asarray(ids, dtype=np.int64).tolist() for ids in batch]
        table = self.word_table()
        if table is not None:
            try:
                return [" ".join(filter(None, map(table.__getitem__, ids))) for ids in lists]
            except KeyError:  # an id outside the vocabulary: the tokenizer's own error
                pass
        lists = [[int(i) for i in ids] for ids in lists]
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None and not getattr(self.tokenizer, "clean_up_tokenization_spaces", True):
            return backend.decode_batch(lists, skip_special_tokens=True)
        return self.tokenizer.batch_decode(lists, skip_special_tokens=True)

    def word_table(self) -> dict[int, str] | None:
        """``{id: text}`` (``""`` for special tokens) when decoding is joining token texts with spaces, else ``None``.

        That is a fast tokenizer with a ``WordLevel`` model, no decoder and no clean-up. The table is made
        from the tokenizer's own single-token decodes and checked once against its decoding of the whole
        vocabulary (in order and reversed); on any difference it is not used.
        """
        table = self.__dict__.get("_word_table", False)
        if table is not False:
            return table
        table = None
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if (backend is not None and backend.decoder is None and type(backend.model).__name__ == "WordLevel"
                and not getattr(self.tokenizer, "clean_up_tokenization_spaces", True)):
            ids = list(range(backend.get_vocab_size(with_added_tokens=True)))
            texts = backend.decode_batch([[i] for i in ids], skip_special_tokens=True)
            candidate = dict(zip(ids, texts))
            join = lambda seq: " ".join(filter(None, map(candidate.__getitem__, seq)))
            if backend.decode_batch([ids, ids[::-1]], skip_special_tokens=True) == [join(ids), join(ids[::-1])]:
                table = candidate
        self._word_table = table
        return table

    # ---- Gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        # Every option is checked before the seed or the episode changes: a raised error changes nothing.
        options = options or {}
        split = options.get("split", self.split)
        examples = self.task.examples(split)
        index = options.get("example_index")
        if index is not None:
            index = check_example_index(index, len(examples), split)
        super().reset(seed=seed)
        if index is None:
            index, example = self.task.sample(self.np_random, split)
        else:
            example = examples[index]
        table, lengths = self.prompt_table(split)
        self._example, self._index, self._episode_split = example, index, split
        self._prompt[:] = table[index]
        self._prompt_mask[:] = 0
        self._prompt_mask[len(self._prompt) - lengths[index] :] = 1
        self._response.fill(self.pad_token_id)
        self._env_written.fill(0)
        self._length = 0
        self._done = False
        self._last_reward = None
        info = {"prompt": example.prompt, "source": example.source, "references": list(example.references),
                "example_index": index, "split": split}
        return self._obs(), info

    def step(self, action: Any) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._example is None:
            raise ResetNeededError("Cannot call step() before reset(); call env.reset() first.")
        if self._done:
            raise ResetNeededError("The episode has ended (terminated or truncated); call env.reset() before step().")
        token = as_token_id(action, self.vocab_size)
        start = self._length
        self._response[start] = token
        self._length = start + 1
        terminated = token == self.eos_token_id
        if not terminated and token in self.trigger_ids:
            reply = self.env_reply(self._response[: self._length], self._env_written[: self._length])
            reply = reply[: self.max_new_tokens - self._length]  # a reply that does not fit is cut: truncated
            self._response[self._length : self._length + len(reply)] = reply
            self._env_written[self._length : self._length + len(reply)] = 1
            self._length += len(reply)
        truncated = not terminated and self._length >= self.max_new_tokens
        if not (terminated or truncated):
            return self._obs(), 0.0, False, False, {}
        completion = self.decode(self._response[: self._length - 1] if terminated else self._response[: self._length])
        example = self._example
        try:
            scores, details = score_with_details(
                self.scorer, [example.prompt], [completion], [list(example.references)], **batch_meta([example])
            )
        except BaseException:
            # The step did not happen: it can be retried (or the env reset), in every autoreset mode of a
            # wrapping vector env.
            self._response[start:] = self.pad_token_id
            self._env_written[start:] = 0
            self._length = start
            raise
        self._done = True
        self._last_reward = scores[0]
        info = {"prompt": example.prompt, "completion": completion, "references": list(example.references),
                "score": scores[0], "score_details": details[0], "example_index": self._index,
                "split": self._episode_split}
        return self._obs(), scores[0], bool(terminated), bool(truncated), info

    def _obs(self) -> ObsType:
        R = self.max_new_tokens
        response_mask = np.zeros(R, np.int64)
        response_mask[: self._length] = 1
        obs = {
            "prompt_ids": self._prompt.copy(),
            "prompt_mask": self._prompt_mask.copy(),
            "response_ids": self._response.copy(),
            "response_mask": response_mask,
            "step": np.array([self._length], np.int64),
        }
        if self.trigger_ids:
            obs["agent_mask"] = response_mask - self._env_written
        return obs

    def render_completion(self) -> str:
        """The response so far as ``render`` shows it: its tokens, space-separated."""
        return " ".join(self.tokenizer.convert_ids_to_tokens([int(i) for i in self._response[: self._length]]))

    def render(self) -> str | None:
        """Text view of the episode: prompt, completion so far and, at the end, the reward."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human' to gym.make.")
            return None
        if self._example is None:
            text = "(no episode yet: call reset())"
        else:
            lines = [f"prompt     : {self._example.prompt}", f"completion : {self.render_completion()}"]
            if self._last_reward is not None:
                refs = " | ".join(self._example.references)
                lines.append(f"reward     : {self._last_reward:.4f}   references: {refs}")
            text = "\n".join(lines)
        if self.render_mode == "human":
            print(text)
            return None
        return text
