"""Baseline agents (no torch): they show what a task's scores mean.

The agent interface is two methods::

    agent.reset(obs, info)        # a new episode started (obs/info from env.reset)
    token = agent.act(obs, info)  # the next token id, an int in [0, env.action_space.n)

Agents see only what the env hands every agent: the spaces, the observation, the ``info`` dict
(``prompt``, ``source``, ``references``) and the env's tokenizer to turn text into token ids.
A run looks like::

    agent = make_agent("oracle", env, seed=0)
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
        done = terminated or truncated

Baselines (:data:`BASELINES`; :func:`make_agent` builds them by name):

- ``random``: uniform random token ids (EOS included), seeded;
- ``oracle``: the first reference, then EOS (the upper end of the reference-based scores);
- ``demonstrator``: the example's first warm-start demonstration, then EOS (on the ``-v1`` envs the
  imperfect writers SFT imitates; elsewhere the same as ``oracle``);
- ``lead-N`` (summarization): the document's first ``N`` sentences;
- ``dictionary`` (translation): each source word looked up in a word-for-word dictionary, in
  source order (the built-in language's phrase book, or one learned from the training pairs);
- ``template`` (generation): a fixed pattern — ``"i love it ."`` for reviews, ``"the k1 , the
  k2 and the k3 ."`` for keywords;
- ``simple``: the env's simple baseline (``lead-2``, ``dictionary`` or ``template``).
"""

from __future__ import annotations

import importlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from lmgym.errors import ConfigError, did_you_mean
from lmgym.heldout import BatchedAgent, SlotAgents


class Agent(Protocol):
    """A one-episode agent (:class:`~lmgym.heldout.SlotAgents` batches them for :func:`lmgym.evaluate.evaluate`)."""

    def reset(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> None:
        """A new episode started."""

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> int:
        """The next token id."""


class RandomAgent:
    """Uniformly random token ids from ``Discrete(vocab_size)``, from its own seeded generator."""

    def __init__(self, vocab_size: int, seed: int | None = None) -> None:
        self.vocab_size = int(vocab_size)
        self.rng = np.random.default_rng(seed)

    def reset(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> None:
        pass

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> int:
        return int(self.rng.integers(self.vocab_size))


class TextPlanAgent:
    """Writes a text planned at ``reset`` (from ``info``), token by token, then EOS.

    Args:
        tokenizer: the env's tokenizer (``env.unwrapped.tokenizer``).
        plan: ``info -> text`` for the episode.
        env_written: the env's ``env_written_in`` (tool-use envs): the planned tokens the env writes itself
            (tool results) are left to it, so the agent writes only its own.
    """

    def __init__(self, tokenizer: Any, plan: Callable[[Mapping[str, Any]], str],
                 env_written: Callable[[Sequence[int]], np.ndarray] | None = None) -> None:
        self.tokenizer = tokenizer
        self.plan = plan
        self.env_written = env_written
        self.eos = int(tokenizer.eos_token_id)
        self._ids: list[int] = []
        self._pos = 0

    def reset(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> None:
        text = self.plan(info)
        self._ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
        if self.env_written is not None:
            self._ids = [i for i, w in zip(self._ids, self.env_written(self._ids)) if not w]
        self._pos = 0

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> int:
        if self._pos < len(self._ids):
            self._pos += 1
            return int(self._ids[self._pos - 1])
        return self.eos


# ---- plans ---------------------------------------------------------------------------------------
def reference_plan(info: Mapping[str, Any]) -> str:
    """The oracle's text: the first reference."""
    return str(info["references"][0])


def sentences(text: str) -> list[str]:
    """Split ``text`` after ``.``/``!``/``?`` (also when the mark is a separate token)."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def lead_plan(n: int) -> Callable[[Mapping[str, Any]], str]:
    """The lead-``n`` text: the source's first ``n`` sentences."""

    def plan(info: Mapping[str, Any]) -> str:
        return " ".join(sentences(str(info["source"]))[:n])

    return plan


def dictionary_plan(dictionary: Mapping[str, str]) -> Callable[[Mapping[str, Any]], str]:
    """Word-by-word lookup in source order; unknown words are copied, empty entries dropped."""

    def plan(info: Mapping[str, Any]) -> str:
        return " ".join(t for t in (dictionary.get(w, w) for w in str(info["source"]).split()) if t)

    return plan


def review_template(info: Mapping[str, Any]) -> str:
    """The review template: a short generic positive line."""
    return "i love it ."


def keywords_template(info: Mapping[str, Any]) -> str:
    """The keywords template: ``the k1 , the k2 and the k3 .`` with the prompt's keywords in order."""
    words = str(info["source"]).split()
    if len(words) == 1:
        return f"the {words[0]} ."
    listed = " , ".join(f"the {w}" for w in words[:-1])
    return f"{listed} and the {words[-1]} ."


def learn_dictionary(pairs: Iterable[tuple[str, str]], max_pairs: int = 3000) -> dict[str, str]:
    """A word-for-word dictionary learned from parallel sentences with the Dice coefficient.

    Each source word maps to the target word that co-occurs with it most consistently
    (``2 c(s, t) / (c(s) + c(t))``, counting each word once per sentence). Crude, like every
    word-by-word model: it ignores order, morphology and words without a counterpart.
    """
    src_count: Counter[str] = Counter()
    tgt_count: Counter[str] = Counter()
    joint: dict[str, Counter[str]] = {}
    for i, (source, target) in enumerate(pairs):
        if i >= max_pairs:
            break
        src, tgt = set(source.split()), set(target.split())
        src_count.update(src)
        tgt_count.update(tgt)
        for s in src:
            joint.setdefault(s, Counter()).update(tgt)
    out = {}
    for s, counts in joint.items():
        best = max(counts.items(), key=lambda kv: (2 * kv[1] / (src_count[s] + tgt_count[kv[0]]), kv[0]))
        out[s] = best[0]
    return out


# ---- registry ------------------------------------------------------------------------------------
def _kind(env: Any) -> str:
    return str(getattr(env.unwrapped, "task_kind", ""))


def _random(env: Any, seed: int | None) -> Agent:
    return RandomAgent(env.action_space.n, seed)


def _oracle(env: Any, seed: int | None) -> Agent:
    return TextPlanAgent(env.unwrapped.tokenizer, reference_plan, env.unwrapped.env_written_in)


def _demonstrator(env: Any, seed: int | None) -> Agent:
    task = env.unwrapped.task

    def plan(info: Mapping[str, Any]) -> str:
        return task.examples(info["split"])[int(info["example_index"])].targets[0]

    return TextPlanAgent(env.unwrapped.tokenizer, plan, env.unwrapped.env_written_in)


def _lead(n: int) -> Callable[[Any, int | None], Agent]:
    def make(env: Any, seed: int | None) -> Agent:
        return TextPlanAgent(env.unwrapped.tokenizer, lead_plan(n))

    return make


def _dictionary(env: Any, seed: int | None) -> Agent:
    base = env.unwrapped
    dictionary = base.word_dictionary() if hasattr(base, "word_dictionary") else None
    if dictionary is None:
        pairs = ((ex.source, ex.references[0]) for ex in base.task.examples("train"))
        dictionary = learn_dictionary(pairs)
    return TextPlanAgent(base.tokenizer, dictionary_plan(dictionary))


def _template(env: Any, seed: int | None) -> Agent:
    plan = review_template if _kind(env) == "review" else keywords_template
    return TextPlanAgent(env.unwrapped.tokenizer, plan)


#: name -> (factory(env, seed), task kinds it applies to; empty = every env, description)
BASELINES: dict[str, tuple[Callable[[Any, int | None], Agent], tuple[str, ...], str]] = {
    "random": (_random, (), "uniform random token ids"),
    "oracle": (_oracle, (), "the first reference, then EOS"),
    "demonstrator": (_demonstrator, (), "the first warm-start demonstration (-v1: imperfect writers; else the "
                     "reference), then EOS"),
    "lead-N": (_lead(1), ("summarize",), "the first N sentences of the document (lead-1, lead-2, ...)"),
    "dictionary": (_dictionary, ("translate",), "word-by-word dictionary lookup in source order"),
    "template": (_template, ("review", "keywords"), "a fixed pattern filled with the prompt's words"),
}
SIMPLE: dict[str, str] = {
    "summarize": "lead-2",
    "translate": "dictionary",
    "review": "template",
    "keywords": "template",
}


def agent_names(env: Any | None = None) -> list[str]:
    """Baseline names (for ``env``: those that apply to it, plus ``simple`` where defined)."""
    names = [n for n, (_, kinds, _) in BASELINES.items() if env is None or not kinds or _kind(env) in kinds]
    if env is None or _kind(env) in SIMPLE:
        names.append("simple")
    return names


def make_agent(name: str, env: Any, seed: int | None = None) -> Agent:
    """Build the baseline ``name`` for ``env`` (a gymnasium env made with ``gym.make``, or a vector env's
    prototype ``envs.env``).

    Raises:
        ConfigError: for an unknown name or one that does not apply to the env's task.
    """
    kind = _kind(env)
    if name == "simple":
        if kind not in SIMPLE:
            raise ConfigError(
                f"Env {env.spec.id if env.spec else env} has no 'simple' baseline; "
                f"use one of {', '.join(agent_names(env))}."
            )
        name = SIMPLE[kind]
    match = re.fullmatch(r"lead-(\d+)", name)
    key = "lead-N" if match else name
    if key not in BASELINES:
        known = [*BASELINES, "simple", "lead-1", "lead-2", "lead-3"]
        raise ConfigError(f"Unknown agent {name!r}.{did_you_mean(name, known)} Agents: {', '.join(agent_names())}.")
    factory, kinds, _ = BASELINES[key]
    if kinds and kind not in kinds:
        raise ConfigError(
            f"Agent {name!r} works on {'/'.join(kinds)} envs, not this one; use one of {', '.join(agent_names(env))}."
        )
    if match:
        n = int(match.group(1))
        if n < 1:
            raise ConfigError(f"lead-N needs N >= 1; got {name!r}.")
        factory = _lead(n)
    return factory(env, seed)


# A trained policy folder is an agent too; its code (torch) lives in lmgym.agents, loaded by name
# like the CLI's subcommands, so the core never imports it.
POLICY_AGENT = "lmgym.agents.ppo.agent:PolicyAgent.from_folder"


def make_batched_agent(name: str, envs: Any, seed: int | None = None, beta: float | None = None) -> BatchedAgent:
    """A :class:`~lmgym.heldout.BatchedAgent` for every slot of the lockstep vector env ``envs``.

    ``name`` is a baseline (one per slot, slot ``i`` seeded ``seed + i``) or a trained policy folder
    (``runs/<name>/policy``: KV-cached greedy decoding; needs ``pip install lmgym[agents]``). ``beta`` sets
    the advantage steering of an ILQL policy folder (``None``: the one it was saved with).

    Raises:
        ConfigError: for an unknown name, one that does not apply to the env's task, or a folder that
            is not a model.
    """
    if os.path.isdir(name):
        module, _, attr = POLICY_AGENT.partition(":")
        factory: Any = importlib.import_module(module)
        for part in attr.split("."):
            factory = getattr(factory, part)
        return factory(name, envs, seed=seed, **({} if beta is None else {"beta": beta}))
    if beta is not None:
        raise ConfigError(f"beta steers ILQL policy folders only; {name!r} is a baseline.")
    agents = [make_agent(name, envs.env, seed=None if seed is None else seed + i) for i in range(envs.num_envs)]
    return SlotAgents(agents)


def run_episode(
    env: Any, agent: Agent, seed: int | None = None, options: Mapping[str, Any] | None = None
) -> tuple[float, dict[str, Any]]:
    """Play one episode of ``agent`` on ``env``; returns ``(reward, final info)``."""
    obs, info = env.reset(seed=seed, options=dict(options) if options else None)
    agent.reset(obs, info)
    while True:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
        if terminated or truncated:
            return float(reward), info


def parse_names(spec: str | Sequence[str]) -> list[str]:
    """``"random,oracle"`` or ``["random", "oracle"]`` -> ``["random", "oracle"]``."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return [s.strip() for s in items if s.strip()]
