"""BatchedTokenEnv: N episodes of one TokenEnv task stepped together with numpy arrays.

This is the ``vector_entry_point`` of every lmgym env::

    envs = gym.make_vec("lmgym/Copy-v0", num_envs=64, vectorization_mode="vector_entry_point")

All per-token work is array arithmetic over the batch; Python-level work happens only when an
episode starts (drawing an example) or ends (decoding and scoring — all episodes that end on the
same step are scored in **one** batched scorer call).

Autoreset modes (``autoreset_mode=``, Gymnasium's :class:`~gymnasium.vector.AutoresetMode`):

- ``"next_step"`` (default, as ``SyncVectorEnv``): the step after an episode ends resets that slot
  and ignores its action; the returned obs has ``step == 0``.
- ``"same_step"``: a finished slot is reset within the same step; the last obs of the ended
  episode is in ``info["final_obs"]`` and its info in ``info["final_info"]``.
- ``"disabled"`` (lockstep): slots start together at ``reset()``; a finished slot ignores further
  actions and returns reward 0 and ``False``/``False`` until ``reset()`` (optionally with
  ``options={"reset_mask": mask}``). Fixed-size batches for agents that want them.

With the same seeds (``reset(seed=s)`` seeds slot ``i`` with ``s + i``), every slot reproduces
the single env step for step: observations, rewards, terminations and infos.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from lmgym.errors import InvalidActionError, ResetNeededError
from lmgym.scorers.base import score_with_detail_columns
from lmgym.task import ExampleStreams, Task
from lmgym.token_env import TokenEnv, batch_meta
from lmgym.validation import check_int
from lmgym.vector_infos import SplitColumns, merge_info
from lmgym.word_ids import WordBatch, WordIds, WordScoring

_UNSIGNED = {size: np.dtype(f"u{size}") for size in (1, 2, 4, 8)}  # the unsigned view of a signed action dtype
_max = np.maximum.reduce  # (the ufunc itself: no Python-level wrapper on every step)
_INT64 = np.dtype(np.int64)
_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP,
          "disabled": AutoresetMode.DISABLED, "lockstep": AutoresetMode.DISABLED}


def parse_autoreset_mode(value: str | AutoresetMode) -> AutoresetMode:
    """Accept an ``AutoresetMode``, its value (``"NextStep"``) or a snake-case name (``"next_step"``)."""
    if isinstance(value, AutoresetMode):
        return value
    if isinstance(value, str) and value.lower() in _MODES:
        return _MODES[value.lower()]
    try:
        return AutoresetMode(value)
    except ValueError:
        raise ValueError(
            f"Unknown autoreset_mode {value!r}; use one of {sorted(_MODES)} or a gymnasium AutoresetMode."
        ) from None


class BatchedTokenEnv(VectorEnv):
    """A native vector env over ``num_envs`` slots of one :class:`~lmgym.token_env.TokenEnv` task.

    Args:
        num_envs: number of slots.
        autoreset_mode: ``"next_step"``, ``"same_step"`` or ``"disabled"`` (lockstep).
        env: an existing single env to vectorize (its task, tokenizer and scorer are shared);
            by default one is built from ``env_kwargs`` with :attr:`env_class`.
        max_episode_steps: optional shorter token limit; prefer the env's ``max_new_tokens``.
        **env_kwargs: keyword arguments of the single env.

    Attributes:
        env: the prototype single env (read-only use: tokenizer, task, scorer, decode).
        tokenizer, task, scorer: shared with :attr:`env`.
        scoring_seconds: wall time spent decoding and scoring finished episodes since construction
            (for benchmarks: what share of a step goes to finished episodes).
        scorer_seconds: the part of ``scoring_seconds`` spent in the scorer itself.
        scores_from_word_ids: whether episodes are scored from token ids rather than text (same values).
    """

    env_class: ClassVar[type[TokenEnv]] = TokenEnv
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        *,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        env: TokenEnv | None = None,
        max_episode_steps: int | None = None,
        **env_kwargs: Any,
    ) -> None:
        check_int("num_envs", num_envs, minimum=1)
        check_int("max_episode_steps", max_episode_steps, minimum=1, optional=True,
                  hint="Prefer the env's max_new_tokens.")
        self.env = env if env is not None else self.env_class(**env_kwargs)
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = "ansi" if self.env.render_mode is not None else None
        self.num_envs = N = int(num_envs)
        self.tokenizer, self.task, self.scorer = self.env.tokenizer, self.env.task, self.env.scorer
        self.single_observation_space = self.env.observation_space
        self.single_action_space = self.env.action_space
        self.observation_space = batch_space(self.single_observation_space, N)
        self.action_space = spaces.MultiDiscrete(np.full(N, self.env.vocab_size, np.int64))
        P, R = self.env.max_prompt_tokens, self.env.max_new_tokens
        self.limit = R if max_episode_steps is None else min(R, int(max_episode_steps))
        self._pad, self._eos, self._V = self.env.pad_token_id, np.int64(self.env.eos_token_id), self.env.vocab_size
        self._rngs: list[np.random.Generator | None] = [None] * N
        self._streams = ExampleStreams(self._rngs)  # Task.sample's draws of every slot at once
        # The observation arrays (and the lengths, which are ``step``) are views of one int64 buffer, so
        # an observation is one copy of it; ``_slices`` says where each key lives.
        self._slices: list[tuple[str, slice, tuple[int, int]]] = []
        start = 0
        for key, shape in (("prompt_ids", (N, P)), ("prompt_mask", (N, P)), ("response_ids", (N, R)),
                           ("response_mask", (N, R)), ("step", (N, 1))):
            self._slices.append((key, slice(start, start + shape[0] * shape[1]), shape))
            start += shape[0] * shape[1]
        self._buf = np.zeros(start, np.int64)
        self._bind_views()
        self._tail = slice(self._slices[2][1].start, start)  # responses, their masks and the lengths
        self._fresh_tail = np.zeros(start - self._tail.start, np.int64)
        self._fresh_tail[: N * R] = self._pad  # (the responses: padding; masks and lengths: 0)
        self._longest = 0  # at least the longest response of a running slot: truncation is looked for from limit on
        self._prompt.fill(self._pad)
        self._response.fill(self._pad)
        self._ended = np.zeros(N, bool)  # the slot's episode has ended
        self._num_ended = 0  # self._ended.sum(), kept so that a step with every slot running skips row selection
        self._started = False
        self._index = np.full(N, -1, np.int64)  # each slot's example (in its split); -1: none yet
        self._split = [self.env.split] * N
        self._one_split: str | None = None  # the split of every slot's episode, where they share one
        self._triggers = np.array(sorted(self.env.trigger_ids), np.int64)  # tokens the env may answer (tools)
        self._env_written = np.zeros((N, R), np.int64)
        self._rows = np.arange(N)
        self._shape = (N,)
        self._every = np.ones(N, np.bool_)  # the mask of an info that every slot has (copied: faster than np.ones)
        self._row_starts = self._rows * R  # flat position of each slot's first response token
        self._plain_sampling = type(self.task).sample is Task.sample  # draw with rng.integers, as Task.sample does
        self._split_columns: dict[str, SplitColumns] = {}
        # Where decoding is joining token texts (word-level tokenizers), a batch decodes with one table lookup,
        # and a scorer with a word-id path (token_accuracy, sentiment, ...) scores from the token ids where tokens
        # are whole words.
        self._word_ids = None
        if type(self.env).decode_batch is TokenEnv.decode_batch:
            self._word_ids = WordIds.from_table(self.env.word_table(), self._V)
        self._word_scoring = WordScoring(self.scorer) if self._word_ids and self._word_ids.one_word else None
        self._word_path = bool(self._word_scoring and self._word_scoring.usable)
        self.scoring_seconds = self.scorer_seconds = 0.0

    def _bind_views(self) -> None:
        """Point the state arrays at their parts of ``self._buf``."""
        views = [self._buf[s].reshape(shape) for _, s, shape in self._slices]
        self._prompt, self._prompt_mask, self._response, self._response_mask, step = views
        self._length = step[:, 0]  # (N,) tokens written per slot: the ``step`` observation
        self._response_flat = self._response.reshape(-1)
        self._response_mask_flat = self._response_mask.reshape(-1)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()  # views are rebuilt from the buffer (pickle would copy them apart)
        for key in ("_prompt", "_prompt_mask", "_response", "_response_mask", "_length", "_response_flat",
                    "_response_mask_flat"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind_views()

    def _columns(self, split: str) -> SplitColumns:
        """The :class:`SplitColumns` of ``split``, made once."""
        cached = self._split_columns.get(split)
        if cached is None:
            cached = self._split_columns[split] = SplitColumns.build(
                split, self.task.examples(split), self.env.prompt_table(split)[1], self._prompt.shape[1], self.num_envs)
        return cached

    def _example(self, slot: int) -> Any:
        """The example of ``slot``'s episode (``None`` before its first)."""
        index = int(self._index[slot])
        return None if index < 0 else self.task.examples(self._split[slot])[index]

    # ---- episode starts --------------------------------------------------------------------------
    def _start(self, rows: np.ndarray, seeds: list[int | None] | None, options: dict[str, Any]) -> dict[str, Any]:
        """Start new episodes in ``rows``; returns their reset infos as ``{key: values, one per row}``."""
        split = options.get("split", self.env.split)
        examples = self.task.examples(split)
        table = self.env.prompt_table(split)[0]
        chosen = None
        if "example_index" in options:
            chosen = self._example_indices(options["example_index"], rows, len(examples), split)
        every = len(rows) == self.num_envs
        rngs, slots = self._rngs, rows.tolist()
        if seeds is not None or None in (rngs if every else [rngs[i] for i in slots]):
            for j, i in enumerate(slots):
                if rngs[i] is None or (seeds is not None and seeds[j] is not None):
                    rngs[i] = seeding.np_random(None if seeds is None else seeds[j])[0]
                    self._streams.reseeded(i)
        if chosen is not None:
            index = chosen[rows]
        elif self._plain_sampling:  # each slot draws with its own stream, as a single env does (Task.sample)
            index = self._streams.draw(rows, len(examples))
        else:
            index = np.array([self.task.sample(self._streams.generator(i), split)[0] for i in slots], np.int64)
        at = slice(None) if every else rows  # every slot (the usual restart): plain slices, not row lists
        columns = self._columns(split)
        self._prompt[at] = table[index]
        self._prompt_mask[at] = columns.prompt_masks[index]
        if every:  # the responses, their masks and the lengths: one copy of a fresh buffer tail
            self._buf[self._tail] = self._fresh_tail
        else:
            self._response[at] = self._pad
            self._response_mask[at] = 0
            self._length[at] = 0
        if self._triggers.size:
            self._env_written[at] = 0
        self._longest = 0 if every else int(_max(self._length))  # (an upper bound is enough: it decides when to look)
        self._ended[at] = False
        self._num_ended = 0 if every else int(np.count_nonzero(self._ended))
        self._index[at] = index
        if every:
            self._split, self._one_split = [split] * self.num_envs, split
        else:
            for i in slots:
                self._split[i] = split
            if split != self._one_split:
                self._one_split = None
        return {"prompt": columns.prompts[index], "source": columns.sources[index],
                "references": np.fromiter(map(list, columns.references[index]), object, len(rows)),
                "example_index": index, "split": columns.names[: len(rows)].copy()}  # (index: a new int64 array)

    def _example_indices(self, value: Any, rows: np.ndarray, num_examples: int, split: str) -> np.ndarray:
        """``options["example_index"]`` as one index per slot: an int (every slot) or ``num_envs`` ints.

        Raises:
            ValueError: neither an int nor one int per slot. IndexError: an index of a reset slot out of range.
        """
        index = np.asarray(value)
        if index.ndim == 0:
            index = np.full(self.num_envs, index)
        if index.shape != (self.num_envs,) or index.dtype.kind not in "iu":
            raise ValueError(f"example_index must be an int or {self.num_envs} ints, one per slot; "
                             f"got {value!r}.")
        bad = (index[rows] < 0) | (index[rows] >= num_examples)
        if bad.any():
            raise IndexError(f"example_index {int(index[rows][bad][0])} is out of range for split {split!r} "
                             f"({num_examples} examples).")
        return index.astype(np.int64)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset all slots (or those in ``options["reset_mask"]``); slot ``i`` is seeded ``seed + i``.

        Options: ``split`` (the split of the new episodes), ``example_index`` (an int for every slot, or one
        index per slot, e.g. ``np.arange(num_envs)``; entries of slots outside ``reset_mask`` are ignored;
        without it each slot draws an example with its own random stream) and ``reset_mask``.
        """
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        mask = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask must have shape ({self.num_envs},); got {mask.shape}.")
        if seed is None or isinstance(seed, list):
            seeds = seed if seed is not None else [None] * self.num_envs
            if len(seeds) != self.num_envs:
                raise ValueError(f"Need {self.num_envs} seeds; got {len(seeds)}.")
        else:
            seeds = [check_int("seed", seed, minimum=0) + i for i in range(self.num_envs)]
        rows = np.flatnonzero(mask)
        for i in rows:  # checked up front: a bad seed must not leave some slots reseeded
            check_int(f"seed of slot {i}", seeds[i], minimum=0, optional=True)
        infos = merge_info({}, rows, self._start(rows, [seeds[i] for i in rows], options), self._every)
        self._started = True
        return self._obs(), infos

    # ---- stepping --------------------------------------------------------------------------------
    def _check_actions(self, actions: Any) -> np.ndarray:
        if (type(actions) is np.ndarray and actions.dtype is _INT64 and actions.shape == self._shape
                and _max(actions.view(np.uint64)) < self._V):  # the usual actions (native int64), in range
            return actions
        a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if not a.dtype.isnative:  # e.g. big-endian ids read from a file: compare them as numbers
            a = a.astype(a.dtype.newbyteorder("="))
        if a.shape != (self.num_envs,):
            raise InvalidActionError(
                f"Actions must have shape ({self.num_envs},), one token id per slot; got {a.shape}."
            )
        if a.dtype.kind not in "iu":
            raise InvalidActionError(
                f"Actions must be integer token ids; got dtype {a.dtype}. Cast with .astype(np.int64)."
            )
        # One reduction: a negative id viewed as unsigned is huge, so ``max >= V`` catches both ends.
        unsigned = a.view(_UNSIGNED[a.itemsize]) if a.dtype.kind == "i" else a
        if _max(unsigned) >= self._V:
            bad = int(np.flatnonzero((a < 0) | (a >= self._V))[0])
            raise InvalidActionError(
                f"Action {int(a[bad])} of slot {bad} is outside the vocabulary: token ids are in [0, {self._V})."
            )
        return a

    def step(self, actions: Any):
        """Append one token per slot; score every episode that ends in one batched scorer call."""
        if not self._started:
            raise ResetNeededError("Cannot call step() before reset(); call envs.reset() first.")
        actions = self._check_actions(actions)
        if not self._num_ended and not self._triggers.size:
            # The common step (every slot running, no env replies): whole-batch array operations only.
            at = self._row_starts + self._length  # (N,) flat positions of the new tokens
            self._response_flat[at] = actions
            self._response_mask_flat[at] = 1
            self._length += 1
            self._longest += 1
            terminated = actions == self._eos
            if self._longest < self.limit:  # no slot is at the token limit yet
                truncated = np.zeros(self.num_envs, bool)
                if not np.count_nonzero(terminated):
                    return self._obs(), np.zeros(self.num_envs), terminated, truncated, {}
            else:
                truncated = self._length >= self.limit
                truncated &= ~terminated
            return self._end_episodes(self._rows, None, None, terminated, truncated)
        # Where the env may write replies, a step can add several tokens: keep the lengths to take it back.
        before = self._length.copy() if self._triggers.size else None
        restart = None
        if self._num_ended and self.autoreset_mode == AutoresetMode.NEXT_STEP:
            restart = self._ended.nonzero()[0]
            if len(restart) == self.num_envs:  # every slot restarts and ignores its action: nothing else happens
                infos = merge_info({}, restart, self._start(restart, None, {}), self._every)
                return self._obs(), np.zeros(self.num_envs), np.zeros(self.num_envs, bool), \
                    np.zeros(self.num_envs, bool), infos
            active = np.ones(self.num_envs, bool)
            active[restart] = False  # restarted slots ignore this step's action
        else:
            active = ~self._ended
        rows = np.flatnonzero(active)
        self._response_mask[rows, self._length[rows]] = 1
        self._response[rows, self._length[rows]] = actions[rows]
        self._length[rows] += 1
        terminated = active & (actions == self._eos)
        running = active & ~terminated
        if self._triggers.size:
            self._write_replies(np.flatnonzero(running & np.isin(actions, self._triggers)))
        truncated = running & (self._length >= self.limit)
        self._longest = int(self._length.max())
        return self._end_episodes(rows, before, restart, terminated, truncated)

    def _end_episodes(self, rows: np.ndarray, before: np.ndarray | None, restart: np.ndarray | None,
                      terminated: np.ndarray, truncated: np.ndarray):
        """The rest of :meth:`step` after the tokens are written (in ``rows``): score the episodes that end,
        restart the ``restart`` slots (next-step autoreset), build rewards, observations and infos."""
        N = self.num_envs
        infos: dict[str, Any] = {}
        ended = terminated | truncated
        finished = ended.nonzero()[0]
        final = None
        if finished.size:
            t0 = time.perf_counter()
            try:
                final = self._score(finished, terminated)
            except BaseException:
                self._undo_write(rows, before)  # the step did not happen: retry it or reset, in every autoreset mode
                raise
            finally:
                self.scoring_seconds += time.perf_counter() - t0
        if restart is not None:  # after scoring, so a scorer error leaves these slots as they were too
            infos = merge_info(infos, restart, self._start(restart, None, {}), self._every)
        rewards = np.zeros(N, np.float64)
        if final is None:
            return self._obs(), rewards, terminated, truncated, infos
        if len(finished) == N:  # every slot ended (e.g. all at the token limit)
            self._ended.fill(True)
            self._num_ended = N
        else:
            self._ended[finished] = True
            self._num_ended = int(np.count_nonzero(self._ended))
        rewards[finished] = final["score"]
        obs = self._obs()
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            final_obs = np.full(N, None, dtype=object)
            for i in finished:
                final_obs[i] = {k: v[i] for k, v in obs.items()}
            infos["final_obs"], infos["_final_obs"] = final_obs, ended.copy()
            infos["final_info"] = merge_info({}, finished, final, self._every)
            infos["_final_info"] = ended.copy()
            infos = merge_info(infos, finished, self._start(finished, None, {}), self._every)
            obs = self._obs()
        else:
            infos = merge_info(infos, finished, final, self._every)
        return obs, rewards, terminated, truncated, infos

    def _write_replies(self, rows: np.ndarray) -> None:
        """Append the env's reply (:meth:`TokenEnv.env_reply`, e.g. a tool result) in ``rows``, cut at the limit."""
        for i in rows:
            n = int(self._length[i])
            reply = self.env.env_reply(self._response[i, :n], self._env_written[i, :n])[: self.limit - n]
            self._response[i, n : n + len(reply)] = reply
            self._response_mask[i, n : n + len(reply)] = 1
            self._env_written[i, n : n + len(reply)] = 1
            self._length[i] = n + len(reply)

    def _undo_write(self, rows: np.ndarray, before: np.ndarray | None) -> None:
        """Take back what this step wrote in ``rows`` (one token each, or back to ``before`` where the env may
        have replied); the positions after a response are padding."""
        start = self._length[rows] - 1 if before is None else before[rows]
        cleared = np.arange(self._response.shape[1])[None, :] >= start[:, None]  # (len(rows), R)
        self._response[rows] = np.where(cleared, self._pad, self._response[rows])
        self._response_mask[rows] = np.where(cleared, 0, self._response_mask[rows])
        self._env_written[rows] = np.where(cleared, 0, self._env_written[rows])
        self._length[rows] = start

    def _score(self, rows: np.ndarray, terminated: np.ndarray) -> dict[str, Any]:
        """Decode and score the episodes of ``rows`` (one batched scorer call); their final infos."""
        every = len(rows) == self.num_envs  # (then whole arrays, no row selection)
        ends = self._length - terminated if every else self._length[rows] - terminated[rows]  # (B,) without EOS
        ids = self._response if every else self._response[rows]  # (B, R) read, not kept
        if self._word_ids is not None:
            completions, words, word_lengths = self._word_ids.read(ids, ends)
        else:
            completions = self.env.decode_batch([row[:end] for row, end in zip(ids.tolist(), ends.tolist())])
        index, split = self._index.copy() if every else self._index[rows], self._one_split
        if split is not None:  # every episode is from one split (the usual case): columns of that split
            columns = self._columns(split)
            prompts, splits = columns.prompts[index], columns.names[: len(rows)].copy()
            references = list(map(list, columns.references[index]))
            examples = self.task.examples(split)
            meta = batch_meta([examples[k] for k in index.tolist()]) if columns.has_meta else {}
        else:
            examples = [self._example(i) for i in rows.tolist()]
            prompts, references = [e.prompt for e in examples], [list(e.references) for e in examples]
            splits, meta = [self._split[i] for i in rows.tolist()], batch_meta(examples)
        found, t0 = None, time.perf_counter()
        try:
            if self._word_path:
                ids_of, width = self._word_ids, words.shape[1]
                reference_ids = (lambda: None) if split is None else lambda: self._reference_ids(split, width, index)
                found = self._word_scoring(WordBatch(words, word_lengths, ids_of.texts, completions, list(prompts),
                                                     references, meta, reference_ids))
            scores, details = found or score_with_detail_columns(self.scorer, list(prompts), completions,
                                                                 references, **meta)
        finally:
            self.scorer_seconds += time.perf_counter() - t0
        return {"prompt": prompts, "completion": np.fromiter(completions, object, len(completions)),
                "references": np.fromiter(references, object, len(references)), "score": scores,
                "score_details": details, "example_index": index, "split": splits}

    def _reference_ids(self, split: str, width: int, index: np.ndarray
                       ) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
        """The references of examples ``index`` of ``split`` as word ids (:meth:`WordIds.references`), or ``None``
        where the split's tables are too large."""
        found = self._word_ids.references(split, self.task.examples(split), width)
        if found is None:
            return None
        return [t[index] for t in found[0]], [n[index] for n in found[1]]

    def _obs(self) -> dict[str, np.ndarray]:
        buf = self._buf.copy()  # one copy; each key is a view of it
        obs = {key: buf[s].reshape(shape) for key, s, shape in self._slices}
        if self._triggers.size:
            obs["agent_mask"] = obs["response_mask"] - self._env_written
        return obs

    @property
    def scores_from_word_ids(self) -> bool:
        """Whether finished episodes are scored from token ids (:mod:`lmgym.word_ids`: a scorer with a word-id path,
        such as ``token_accuracy``, and a tokenizer whose tokens are whole words) rather than from decoded text."""
        return self._word_path

    @property
    def active(self) -> np.ndarray:
        """Boolean mask of slots whose episode is still running."""
        return ~self._ended

    def render(self) -> tuple[str, ...] | None:
        """One text block per slot (prompt and completion so far)."""
        if self.render_mode is None:
            return None
        out = []
        for i in range(self.num_envs):
            words = self.tokenizer.convert_ids_to_tokens(self._response[i, : self._length[i]].tolist())
            example = self._example(i)
            prompt = example.prompt if example is not None else ""
            out.append(f"[{i}] prompt     : {prompt}\n[{i}] completion : {' '.join(words)}")
        return tuple(out)


def batched(env_class: type[TokenEnv]) -> type[BatchedTokenEnv]:
    """Make the ``BatchedTokenEnv`` subclass for ``env_class`` (used as its ``vector_entry_point``).

    Assign the result to a module-level name so it pickles, e.g.
    ``CopyVectorEnv = batched(CopyEnv)``.
    """
    name = env_class.__name__.removesuffix("Env") + "VectorEnv"
    cls = type(name, (BatchedTokenEnv,), {"env_class": env_class, "__module__": env_class.__module__,
                                          "__doc__": f"Native vector env of :class:`{env_class.__name__}`."})
    return cls
