"""Calculator-v0: arithmetic word problems that a language model may solve with a calculator tool.

The corpus is generated offline and deterministically from ``corpus_seed``: four kinds of word problem
(addition, subtraction, multiplication and exact division) and bare expressions, at four difficulty
levels (operands of 1 to 4 digits). A 2-layer model can learn to answer 1-digit problems directly, but
not 4-digit products; with the calculator it only has to copy the operands into ``<call>`` and the result
out of ``<result>``. Learning *when* a call pays (large numbers) against the per-call penalty is the task.
"""

from __future__ import annotations

import functools
import string
from typing import Any, ClassVar

import numpy as np

from lmgym.errors import ConfigError
from lmgym.task import Example, Task
from lmgym.tokenizer import build_wordpiece_tokenizer
from lmgym.tool_env import CALL, END_CALL, END_RESULT, RESULT, TOOL_TAGS, ToolEnv
from lmgym.tool_env import ERROR_WORDS as TOOL_ERROR_WORDS
from lmgym.tools.arith import calculate, format_number
from lmgym.tools.call import Tool
from lmgym.validation import check_float, check_int
from lmgym.vector_env import batched

TEMPLATE = "question : {source} answer :"
LEVELS = (1, 2, 3, 4)
NAMES = ("anna", "ben", "carla", "dev", "emma", "farid")
ITEMS = ("apples", "books", "coins", "stamps", "marbles", "cards")
#: (operation, problem template). ``{a}``/``{b}`` are the operands, the answer is ``a op b``.
PROBLEMS: tuple[tuple[str, str], ...] = (
    ("+", "{name} has {a} {item} and gets {b} more . how many {item} does {name} have now ?"),
    ("-", "{name} had {a} {item} and gave away {b} . how many {item} are left ?"),
    ("*", "there are {a} boxes with {b} {item} in each box . how many {item} are there in all ?"),
    ("/", "{a} {item} are shared equally among {b} friends . how many {item} does each friend get ?"),
    ("+", "what is {a} + {b} ?"),
    ("-", "what is {a} - {b} ?"),
    ("*", "what is {a} * {b} ?"),
    ("/", "what is {a} / {b} ?"),
)
#: Characters that numbers and other words outside the vocabulary are spelled with.
CHARACTERS = string.digits + string.ascii_lowercase + ".,:;!?'\"()+-*/^=<>_%"
#: Words of the error results (the env's, :data:`lmgym.tool_env.ERROR_WORDS`, and the calculator's), one token each.
ERROR_WORDS = (*TOOL_ERROR_WORDS, "division", "by", "zero", "empty", "expression", "bad")
_SPLIT_SIZES = {"train": 8000, "validation": 500, "test": 500}


def vocabulary() -> list[str]:
    """Every whole word of the corpus, the tags and the error words (numbers are spelled in digits)."""
    words = {w for _, t in PROBLEMS for w in TEMPLATE.format(source=t).split() if "{" not in w}
    return sorted(words | set(NAMES) | set(ITEMS) | set(TOOL_TAGS) | set(ERROR_WORDS))


def operands(rng: np.random.Generator, op: str, digits: int) -> tuple[int, int]:
    """Two operands with ``digits`` digits (the divisor at most 2) whose result is a whole number >= 0."""
    low, high = 10 ** (digits - 1) if digits > 1 else 1, 10**digits - 1
    if op == "/":
        b = int(rng.integers(2, min(high, 99) + 1))
        quotient = int(rng.integers(low, high + 1))
        return b * quotient, b
    a, b = (int(v) for v in rng.integers(low, high + 1, size=2))
    return (max(a, b), min(a, b)) if op == "-" else (a, b)


def demonstration(a: int, op: str, b: int, answer: str, call: bool) -> str:
    """A worked answer: the answer alone, or a calculator call, its result and the answer."""
    if not call:
        return answer
    return f"{CALL} {a} {op} {b} {END_CALL} {RESULT} {answer} {END_RESULT} {answer}"


@functools.lru_cache(maxsize=8)
def calculator_task(corpus_seed: int = 0, levels: tuple[int, ...] = LEVELS, demo_call_rate: float = 0.5) -> Task:
    """The word problems for ``corpus_seed`` at ``levels``, split disjointly by (operation, operands): 8,000 / 500 /
    500, or in that proportion when the levels hold fewer distinct problems (1-digit operands: about 300).

    Train examples carry ``demonstrations``: with probability ``demo_call_rate`` (its own random stream)
    a calculator call, else the bare answer; a warm start imitates them.
    """
    rng = np.random.default_rng(corpus_seed)
    demo_rng = np.random.default_rng([corpus_seed, 1])
    wanted = sum(_SPLIT_SIZES.values())
    seen: dict[tuple[str, int, int], Example] = {}
    misses = 0  # draws in a row that found nothing new: small levels run out of distinct problems
    while len(seen) < wanted and misses < 2000:
        digits = int(rng.choice(levels))
        op, text = PROBLEMS[int(rng.integers(len(PROBLEMS)))]
        a, b = operands(rng, op, digits)
        name, item = NAMES[int(rng.integers(len(NAMES)))], ITEMS[int(rng.integers(len(ITEMS)))]
        key = (op, a, b)
        if key in seen:
            misses += 1
            continue
        misses = 0
        answer = format_number({"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op])
        source = text.format(a=a, b=b, name=name, item=item)
        seen[key] = Example(source=source, prompt=TEMPLATE.format(source=source), references=(answer,),
                            meta={"difficulty": digits},
                            demonstrations=(demonstration(a, op, b, answer, bool(demo_rng.random() < demo_call_rate)),))
    rows = list(seen.values())
    # Split proportionally when the levels hold fewer distinct problems than the requested sizes.
    n_val, n_test = (max(1, len(rows) * _SPLIT_SIZES[k] // wanted) for k in ("validation", "test"))
    plain = [Example(e.source, e.prompt, e.references, e.meta) for e in rows[: n_val + n_test]]
    splits = {"validation": plain[:n_val], "test": plain[n_val:], "train": rows[n_val + n_test :]}
    return Task(name="calculator", splits=splits, vocabulary=vocabulary(), template=TEMPLATE,
                description="Arithmetic word problems; the agent may call a calculator: <call> 12 * 34 </call>.")


@functools.lru_cache(maxsize=1)
def calculator_tokenizer() -> Any:
    """The env's tokenizer: the corpus words and tags as tokens, numbers digit by digit (``1 ##2 ##3``)."""
    return build_wordpiece_tokenizer(vocabulary(), CHARACTERS)


def calculator(text: str) -> str:
    """The env's tool: :func:`lmgym.tools.arith.calculate`, its errors shortened to a few known words
    (``error: division by zero``, ``error: empty expression``, else ``error: bad expression``)."""
    answer = calculate(text)
    if not answer.startswith("error"):
        return answer
    reason = answer.removeprefix("error: ")
    return f"error: {reason if reason in ('division by zero', 'empty expression') else 'bad expression'}"


class CalculatorEnv(ToolEnv):
    """Solve an arithmetic word problem; a calculator tool is one ``<call>`` away.

    ## Description
    The prompt is ``question : <problem> answer :``; the reference is the answer, a whole number. The
    agent may write ``<call> 1234 * 5678 </call>``: the env evaluates the expression with a safe parser
    (:func:`calculator`, after :func:`lmgym.tools.arith.calculate`: numbers, ``+ - * /``, parentheses and
    powers, bounded; never ``eval``) and appends ``<result> 7006652 </result>``. A malformed call gets
    ``<result> error: bad expression </result>``. Then the agent writes its answer.

    ## Action Space
    ``Discrete(V)``, ``V = len(calculator_tokenizer())``: the corpus words, the four tags and
    single-character pieces, so numbers are written digit by digit (``7 ##0 ##0 ##6``).

    ## Observation Space
    As :class:`~lmgym.tool_env.ToolEnv`: the token env's keys plus ``agent_mask``.

    ## Rewards
    At the end: ``numeric_match`` of the answer (the completion without tool segments: its last number
    equals the reference), plus ``partial_credit`` for near misses, minus ``call_penalty`` per call.

    ## Starting State
    A problem drawn uniformly from the split: 8,000 train, 500 validation, 500 test, disjoint by
    operation and operands. ``info`` of ``reset`` has the problem and the reference.

    ## Episode End
    EOS (terminated) or ``max_new_tokens`` tokens, env-written ones included (truncated); both are scored.

    ## Arguments
    - ``levels`` (``(1, 2, 3, 4)``): operand digit counts to draw from (one int or several).
    - ``demo_call_rate`` (0.5): share of warm-start demonstrations that call the calculator.
    - ``max_calls`` (2), ``call_penalty`` (0.05): calls allowed and the cost of each; ``max_calls=0``
      is the same task with no tool (every call gets ``error: no tools``; demonstrations never call).
    - ``partial_credit`` (0.0): weight of ``1 - relative error`` for a wrong number.
    - ``corpus_seed`` (0) and every :class:`~lmgym.token_env.TokenEnv` argument.

    >>> import gymnasium as gym, lmgym
    >>> env = gym.make("lmgym/Calculator-v0")
    >>> obs, info = env.reset(seed=3)
    >>> info["prompt"]
    'question : 1501 coins are shared equally among 79 friends . how many coins does each friend get ? answer :'
    >>> tok = env.unwrapped.tokenizer
    >>> for t in tok.tokenize("<call> 1501 / 79 </call>"):
    ...     obs, reward, terminated, truncated, info = env.step(tok.convert_tokens_to_ids(t))
    >>> env.unwrapped.decode(obs["response_ids"][: obs["step"][0]])
    '<call> 1501 / 79 </call> <result> 19 </result>'
    >>> obs["agent_mask"][: obs["step"][0]].tolist()  # the env wrote the last four tokens
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    >>> for t in tok.tokenize("19") + ["<eos>"]:
    ...     obs, reward, terminated, truncated, info = env.step(tok.convert_tokens_to_ids(t))
    >>> round(float(reward), 2), info["score_details"]
    (0.95, {'numeric_match': 1.0, 'tool_calls': 1.0})

    ## Version History
    - v0: initial version.
    """

    default_max_new_tokens: ClassVar[int] = 48

    def __init__(self, levels: int | tuple[int, ...] | list[int] = LEVELS, demo_call_rate: float = 0.5,
                 max_calls: int = 2, call_penalty: float = 0.05, partial_credit: float = 0.0, corpus_seed: int = 0,
                 **kwargs: Any) -> None:
        levels = (levels,) if isinstance(levels, int) else tuple(levels)
        if not levels or any(isinstance(v, bool) or v not in LEVELS for v in levels):
            raise ConfigError(f"levels must be digit counts in {LEVELS} (an int or a tuple); got {levels!r}.")
        check_float("demo_call_rate", demo_call_rate, minimum=0, maximum=1)
        self.partial_credit = check_float("partial_credit", partial_credit, minimum=0, maximum=1)
        check_int("max_calls", max_calls, minimum=0)
        task = calculator_task(check_int("corpus_seed", corpus_seed, minimum=0), tuple(sorted(set(levels))),
                               float(demo_call_rate) if max_calls else 0.0)
        kwargs.setdefault("tokenizer", calculator_tokenizer())
        super().__init__(task, tools=[Tool("calculator", calculator, timeout=None, max_chars=40)],
                         max_calls=max_calls, call_penalty=call_penalty, **kwargs)

    def answer_metric(self, task: Task) -> Any:
        from lmgym.scorers.match import NumericMatch

        return NumericMatch(self.partial_credit)


CalculatorVectorEnv = batched(CalculatorEnv)
