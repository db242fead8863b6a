"""ToolEnv: token envs in which the agent may call Python tools mid-response.

The agent writes ``<call>``, the tool's input, then ``</call>``. On that token the env runs the tool and
appends ``<result>`` + the tool's answer + ``</result>`` to the response itself, then hands the turn back::

    agent: <call> 1234 * 5678 </call>    env: <result> 7006652 </result>    agent: 7006652 <eos>

Env-written tokens are marked: observations carry ``agent_mask (R,)``, 1 where the agent wrote the token
and 0 where the env did, so a learner trains only on its own tokens (PPO's loss, KL and value targets in
:mod:`lmgym.agents.ppo` use it, as TRL's text environments do). One ``step`` is still one agent token; a
step that ends a call appends several tokens.

Any text task becomes a tool-use task with :meth:`ToolEnv.from_env`::

    import gymnasium as gym, lmgym
    from lmgym.tool_env import ToolEnv
    from lmgym.vector_env import BatchedTokenEnv

    def lookup(word: str) -> str:               # any callable text -> printable result
        return {"lion": "a large cat"}.get(word.strip(), "unknown")

    env = ToolEnv.from_env("lmgym/Summarize-v1", tools={"lookup": lookup}, max_calls=2, call_penalty=0.05,
                           extra_words=["a", "large", "cat", "unknown"])
    envs = BatchedTokenEnv(64, env=env, autoreset_mode="disabled")   # the native vector env works as usual

Rules, the same in the single and the vector env:

- with one tool the whole call text is its input; with several, the first word names the tool;
- each call's answer is ``str(result)`` cut to ``max_tool_chars`` characters, within ``tool_timeout`` seconds
  (:class:`lmgym.tools.call.Tool`); exceptions, time-outs, ``</call>`` without ``<call>`` (``error: call
  not opened``), a nested ``<call>``, an unknown tool and calls past ``max_calls`` all give an
  ``error: ...`` result, never a crash;
- env-written text never contains a special or tag token (such ids become ``<unk>``), and a result that does
  not fit in the response is cut there: the episode is then truncated and scored;
- the scorer sees the **answer**, the completion without its ``<call>``/``<result>`` segments, and the reward
  is its score minus ``call_penalty`` per call (:class:`ToolUseScorer`); ``info["completion"]`` keeps the
  whole text.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from lmgym.errors import ConfigError, TokenizerError
from lmgym.scorers import Scorer, checked_score, make_scorer
from lmgym.task import Task
from lmgym.token_env import TokenEnv
from lmgym.tokenizer import build_word_tokenizer
from lmgym.tools.call import Tool, as_tools
from lmgym.validation import check_float, check_int

CALL, END_CALL, RESULT, END_RESULT = "<call>", "</call>", "<result>", "</result>"
TOOL_TAGS: tuple[str, ...] = (CALL, END_CALL, RESULT, END_RESULT)

#: The words of the env's own error results, whole tokens in the word-level tokenizers :meth:`ToolEnv.from_env`
#: builds (so a closed-vocabulary task can read them).
ERROR_WORDS: tuple[str, ...] = ("error:", "call", "not", "opened", "nested", "limit", "reached", "no", "tools",
                                "unknown", "tool", "timed", "out")

_SEGMENT = re.compile(r"<call>.*?(?:</call>|$)|<result>.*?(?:</result>|$)", re.DOTALL)


def strip_tool_segments(text: str) -> str:
    """The answer part of a completion: ``<call>...</call>`` and ``<result>...</result>`` removed (an
    unclosed segment runs to the end), whitespace collapsed.

    >>> strip_tool_segments("<call> 2 + 3 </call> <result> 5 </result> 5")
    '5'
    """
    return " ".join(_SEGMENT.sub(" ", text).split())


def count_calls(text: str) -> int:
    """Tool calls in a completion: its ``</call>`` tags (the env never writes one)."""
    return text.count(END_CALL)


class ToolUseScorer(Scorer):
    """Score the answer of a tool-use completion with ``inner``, minus ``call_penalty`` per call.

    ``details`` reports the inner score (under the inner scorer's name) and ``tool_calls``. With a penalty the
    name says so (``numeric_match-0.05*calls``), so the task metric (no penalty) keeps the inner name.
    """

    def __init__(self, inner: Any, call_penalty: float = 0.0) -> None:
        self.inner = make_scorer(inner)
        self.call_penalty = check_float("call_penalty", call_penalty, minimum=0)
        self.name = self.inner.name if not self.call_penalty else f"{self.inner.name}-{self.call_penalty:g}*calls"
        self.higher_is_better = self.inner.higher_is_better
        self.range = self.inner.range
        self.library = self.inner.library

    def details(self, prompts, completions, references=None, **meta) -> dict[str, list[float]]:
        """``{inner name: answer scores, "tool_calls": calls}`` per completion."""
        answers = [strip_tool_segments(c) for c in completions]
        scores = checked_score(self.inner, prompts, answers, references, **meta)
        return {self.inner.name: scores, "tool_calls": [float(count_calls(c)) for c in completions]}

    def combine(self, parts: dict[str, list[float]]) -> list[float]:
        """The rewards from :meth:`details`: the answer's score minus the call penalty."""
        return [s - self.call_penalty * n for s, n in zip(parts[self.inner.name], parts["tool_calls"])]

    def __call__(self, prompts, completions, references=None, **meta):
        return self.combine(self.details(prompts, completions, references, **meta))


class ToolEnv(TokenEnv):
    """A :class:`~lmgym.token_env.TokenEnv` whose agent may call tools (see the module docstring).

    ## Observation Space
    The token env's keys plus ``agent_mask (R,)``: 1 for response tokens the agent wrote, 0 for tokens
    the env wrote (tool results) and for padding. ``response_mask`` covers both writers.

    ## Rewards
    The scorer's value for the answer (the completion without tool segments), minus ``call_penalty``
    for each ``</call>`` the agent wrote. ``info["score_details"]`` has the answer's score and
    ``tool_calls``.

    ## Arguments
    Those of :class:`~lmgym.token_env.TokenEnv` (the tokenizer must have the four tags
    ``<call> </call> <result> </result>`` as single tokens; :meth:`from_env` adds them), and:

    - ``tools``: ``{name: callable}`` or a list of :class:`~lmgym.tools.call.Tool`;
    - ``max_calls``: calls allowed per episode (later ones get an error result; 0 disables the tools);
    - ``call_penalty``: subtracted from the reward per call;
    - ``tool_timeout``, ``max_tool_chars``: limits of callables given without a :class:`Tool` wrapper;
    - ``metric``: the task metric that judges answers (default: :meth:`answer_metric`); the reward is the
      ``scorer``'s value of the answer (default: the metric) minus the penalty.

    ## Version History
    - v0: initial version.
    """

    def __init__(self, task: Task, *, tools: Any, max_calls: int = 3, call_penalty: float = 0.0,
                 tool_timeout: float | None = 1.0, max_tool_chars: int = 200, metric: Any = None,
                 **kwargs: Any) -> None:
        self._metric = metric  # read by make_default_scorer, which the base class calls
        super().__init__(task, **kwargs)
        self.tools: dict[str, Tool] = as_tools(tools, tool_timeout, max_tool_chars)
        self.max_calls = check_int("max_calls", max_calls, minimum=0)
        base = self.scorer.inner if isinstance(self.scorer, ToolUseScorer) else self.scorer
        self.scorer = ToolUseScorer(base, call_penalty)
        ids = self.tokenizer.convert_tokens_to_ids(list(TOOL_TAGS))
        unk = self.tokenizer.unk_token_id
        missing = [t for t, i in zip(TOOL_TAGS, ids) if i is None or i == unk]
        if missing:
            raise TokenizerError(f"The tokenizer lacks the tool tags {missing} as single tokens; build the env with "
                                 "ToolEnv.from_env(...), which adds them, or add them with tokenizer.add_tokens.")
        self.call_id, self.end_call_id, self.result_id, self.end_result_id = (int(i) for i in ids)
        self.trigger_ids = frozenset({self.end_call_id})
        # Ids the env never writes into a result: specials and tags become <unk> (or are dropped without one).
        self._banned = np.array(sorted({*self.tokenizer.all_special_ids, *(int(i) for i in ids)} - {unk}), np.int64)
        R = self.max_new_tokens
        self.observation_space = spaces.Dict({**self.observation_space.spaces,
                                              "agent_mask": spaces.Box(0, 1, (R,), np.int64)})

    def make_default_scorer(self, task: Task) -> Any:
        """The task metric: the answer (tool segments removed) judged by ``metric`` (default:
        :meth:`answer_metric`), with no call penalty. The reward is it minus the penalty."""
        return ToolUseScorer(self._metric if self._metric is not None else self.answer_metric(task), 0.0)

    def answer_metric(self, task: Task) -> Any:
        """The scorer of answers when no ``metric`` is given (the class's :attr:`default_scorer`)."""
        return self.default_scorer

    @classmethod
    def from_env(cls, env: Any, *, tools: Any, max_calls: int = 3, call_penalty: float = 0.0,
                 tool_timeout: float | None = 1.0, max_tool_chars: int = 200, extra_words: Sequence[str] = (),
                 **env_kwargs: Any) -> ToolEnv:
        """Turn a text env (an lmgym env id, or a made env) into a tool-use env with ``tools``.

        The new env has the same task, split, scorer and token limits. Its tokenizer: for a closed-vocabulary
        task (word-level, built from the task's words) a new word-level one over those words, the tags, the
        tool names, :data:`ERROR_WORDS` and ``extra_words`` (words the tools answer with; others become
        ``<unk>``); for any other tokenizer, a copy with the four tags added. Either way ``V`` grows.

        Raises:
            ConfigError: ``env`` is not an lmgym token env, or ``env_kwargs`` come with an env object.
        """
        if isinstance(env, str):
            import gymnasium as gym

            env = gym.make(env, **env_kwargs).unwrapped
        elif env_kwargs:
            raise ConfigError("env_kwargs configure an env made from an id; pass them to gym.make instead.")
        env = getattr(env, "unwrapped", env)
        if not isinstance(env, TokenEnv):
            raise ConfigError(f"ToolEnv.from_env needs an lmgym token env or env id; got {type(env).__name__}.")
        tools = as_tools(tools, tool_timeout, max_tool_chars)
        if env.word_level:
            tokenizer = build_word_tokenizer([*env.task.vocabulary, *TOOL_TAGS, *tools, *ERROR_WORDS, *extra_words])
        else:
            tokenizer = copy.deepcopy(env.tokenizer)
            # Not special tokens: decoding keeps them, so the scorer can tell the answer from the tool segments.
            tokenizer.add_tokens([t for t in TOOL_TAGS if t not in tokenizer.get_vocab()])
        return cls(env.task, tokenizer=tokenizer, scorer=env.scorer, metric=env.make_default_scorer(env.task),
                   split=env.split,
                   max_prompt_tokens=env.max_prompt_tokens, max_new_tokens=env.max_new_tokens,
                   render_mode=env.render_mode, tools=list(tools.values()), max_calls=max_calls,
                   call_penalty=call_penalty)

    def render_completion(self) -> str:
        """The response so far as text, tool segments included (numbers whole, not digit pieces)."""
        return self.decode(self._response[: self._length])

    # ---- what the env writes ----------------------------------------------------------------------
    def call_text(self, response: np.ndarray) -> tuple[str | None, str]:
        """``(tool name or None, input)`` of the call that ``response``'s last token (``</call>``) closes, or
        ``(None, "error: ...")`` for a call that cannot run."""
        ids = np.asarray(response[:-1])
        opens, closes = np.flatnonzero(ids == self.call_id), np.flatnonzero(ids == self.end_call_id)
        last_close = int(closes[-1]) if closes.size else -1
        open_now = opens[opens > last_close]
        if open_now.size == 0:
            return None, "error: call not opened"
        if open_now.size > 1:
            return None, "error: nested call"
        if closes.size >= self.max_calls:
            return None, "error: no tools" if self.max_calls == 0 else "error: call limit reached"
        text = self.decode(ids[int(open_now[0]) + 1:]).strip()
        if len(self.tools) == 1:
            return next(iter(self.tools)), text
        name, _, rest = text.partition(" ")
        if name not in self.tools:
            return None, f"error: unknown tool {name}"
        return name, rest.strip()

    def env_reply(self, response: np.ndarray, env_written: np.ndarray) -> np.ndarray:
        """Token ids the env appends after the agent's ``</call>``: ``<result>`` answer ``</result>``.

        Args:
            response: the response so far, ending with the ``</call>`` just written.
            env_written: 1 where the env wrote the token (unused here; part of the hook's contract).
        """
        name, text = self.call_text(response)
        answer = self.tools[name].run(text) if name is not None else text
        ids = np.asarray(self.tokenizer(answer, add_special_tokens=False)["input_ids"], np.int64).reshape(-1)
        banned = np.isin(ids, self._banned)
        if banned.any():
            unk = self.tokenizer.unk_token_id
            ids = ids[~banned] if unk is None else np.where(banned, unk, ids)
        return np.concatenate([[self.result_id], ids, [self.end_result_id]]).astype(np.int64)

    def env_written_in(self, ids: Sequence[int]) -> np.ndarray:
        """1 at each ``<result> ... </result>`` that directly follows a ``</call>`` (what the env writes)."""
        out = np.zeros(len(ids), np.int64)
        inside = False
        for j, token in enumerate(ids):
            if inside or (token == self.result_id and j > 0 and ids[j - 1] == self.end_call_id):
                out[j] = 1
                inside = token != self.end_result_id
        return out
