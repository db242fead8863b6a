"""A safe arithmetic evaluator: the calculator that a tool-use env calls.

A language model writes an expression between ``<call>`` and ``</call>``; the env passes the text to
:func:`calculate` and appends the string it returns, a number or an ``error: <short reason>`` line.
Model output is adversarial by accident, so nothing here uses ``eval``/``exec``/``compile``: a
tokenizer and a recursive-descent parser accept only this grammar (whitespace allowed between tokens)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*            "×" and "÷" are aliases of "*" and "/"
    unary  := ("+" | "-") unary | power
    power  := atom (("**" | "^") unary)?            right-associative; -2**2 == -4, 2**-1 == 0.5
    atom   := number | "(" expr ")"                 numbers: 12, 3.25, .5, 3. (no commas, no 1e5)

``x`` is not multiplication and there is no implicit multiplication (``2(3)`` is an error).

Numbers are exact :class:`fractions.Fraction` values from the literal to the result (``0.1 + 0.2``
is ``3/10``), so results never depend on float rounding and are never ``inf``/``nan``;
:func:`format_number` writes them for the model (``"12"``, ``"0.333333"``, ``"-2.5"``).

Every cost is bounded *before* it is paid, so any input string returns within milliseconds:

- the text is at most ``max_length`` characters (checked first, in O(1));
- the parser reads tokens lazily and stops at the first syntax error; parentheses, unary signs and
  exponents nest at most ``max_depth`` levels, checked as each opens (``"(" * 10000`` fails on the
  33rd token, far from Python's recursion limit);
- a literal's digits are counted before it is converted; every literal and intermediate value has
  ``|value| <= max_abs`` and a numerator and denominator of at most 4096 bits (``1/3/3/3...``);
- only integer exponents with ``|e| <= max_exponent`` are allowed, and a power whose result would
  exceed 4096 bits is refused before it is computed (``9**9**9**9`` fails on its first exponent).

Errors raise :class:`~lmgym.errors.ArithmeticExpressionError` whose message is the short reason;
the first syntax error in reading order wins, and values are computed only once the whole text parses.

>>> calculate("2 + 3 × 4")
'14'
>>> calculate("-2**2 + 7 / 2")
'-0.5'
>>> calculate("1/3")
'0.333333'
>>> calculate("2 x 3")
"error: unexpected character 'x' at position 2 (use * to multiply)"
>>> evaluate_expression("0.1 + 0.2")
Fraction(3, 10)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from lmgym.errors import ArithmeticExpressionError, ConfigError

__all__ = ["MAX_BITS", "MAX_DEPTH_LIMIT", "calculate", "evaluate_expression", "format_number"]

MAX_BITS = 4096
"""Largest bit length of any numerator or denominator: bounds the cost of every operation."""
MAX_DEPTH_LIMIT = 100
"""Largest allowed ``max_depth``: a nesting level costs up to 5 Python frames while parsing."""
_MAX_FRACTION_DIGITS = 1000  # 10**1000 < 2**MAX_BITS, so a literal's denominator stays in bounds
_OPERATORS = {"+": "+", "-": "-", "*": "*", "/": "/", "^": "^", "**": "^", "×": "*", "÷": "/"}
_TOKEN = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)|(?P<operator>\*\*|[-+*/^×÷])|(?P<bracket>[()])|\s+|(?P<other>.)",
    re.DOTALL,
)
_HINTS = {"x": " (use * to multiply)", "X": " (use * to multiply)", ",": " (write numbers without commas)"}
_DECIMALS = 6
_LEVELS = ("+-", "*/")  # binary operators by precedence, loosest first

# A token is (kind, text, position); kind is "num", "op", "(" or ")". Operators are normalized
# ("×" -> "*", "**" -> "^"). A node is ("num", text) | ("neg", node) | ("pow", base, exponent)
# | ("chain", first, ((op, node), ...)) for a run of same-precedence operators, so a long
# "1+1+...+1" is one flat node and evaluating it does not recurse.
Token = tuple[str, str, int]


def _tokens(text: str) -> Iterator[Token]:
    """The tokens of ``text``, lazily: the parser stops at the first error without reading the rest."""
    for match in _TOKEN.finditer(text):
        number, operator, bracket, other = match.group("number", "operator", "bracket", "other")
        if number is not None:
            yield ("num", number, match.start())
        elif operator is not None:
            yield ("op", _OPERATORS[operator], match.start())
        elif bracket is not None:
            yield (bracket, bracket, match.start())
        elif other is not None:
            hint = _HINTS.get(other, "")
            raise ArithmeticExpressionError(f"unexpected character {other!r} at position {match.start()}{hint}")


class _Parser:
    """Recursive descent with one token of lookahead; ``depth`` counts open parentheses, signs and exponents."""

    def __init__(self, text: str, max_depth: int) -> None:
        self.tokens, self.max_depth = _tokens(text), max_depth
        self.token: Token | None = next(self.tokens, None)
        self.depth = 0

    def advance(self) -> None:
        self.token = next(self.tokens, None)

    def at_operator(self, operators: str) -> bool:
        return self.token is not None and self.token[0] == "op" and self.token[1] in operators

    def nest(self, levels: int) -> None:
        self.depth += levels
        if self.depth > self.max_depth:
            raise ArithmeticExpressionError(f"nesting too deep (more than {self.max_depth} levels)")

    def parse(self) -> tuple:
        if self.token is None:
            raise ArithmeticExpressionError("empty expression")
        node = self.binary()
        if self.token is not None:
            kind, _, position = self.token
            if kind == ")":
                raise ArithmeticExpressionError(f"unbalanced parentheses (unexpected ')' at position {position})")
            raise ArithmeticExpressionError(f"missing operator at position {position}")  # a number or "("
        return node

    def binary(self, level: int = 0) -> tuple:
        """``expr`` (level 0: ``+ -``) or ``term`` (level 1: ``* /``), one flat chain per run."""
        first = self.unary() if level else self.binary(1)
        rest = []
        while self.at_operator(_LEVELS[level]):
            op = self.token[1]
            self.advance()
            rest.append((op, self.unary() if level else self.binary(1)))
        return ("chain", first, tuple(rest)) if rest else first

    def unary(self) -> tuple:
        negate, signs = False, 0
        while self.at_operator("+-"):
            negate ^= self.token[1] == "-"
            self.advance()
            signs += 1
            self.nest(1)
        node = self.power()
        self.depth -= signs
        return ("neg", node) if negate else node

    def power(self) -> tuple:
        base = self.atom()
        if not self.at_operator("^"):
            return base
        self.advance()
        self.nest(1)
        exponent = self.unary()
        self.depth -= 1
        return ("pow", base, exponent)

    def atom(self) -> tuple:
        if self.token is None:
            raise ArithmeticExpressionError("missing operand at end of expression")
        kind, text, position = self.token
        if kind == "num":
            self.advance()
            return ("num", text)
        if kind != "(":
            raise ArithmeticExpressionError(f"missing operand at position {position}")
        self.advance()
        self.nest(1)
        node = self.binary()
        if self.token is None:
            raise ArithmeticExpressionError(f"unbalanced parentheses ('(' at position {position} is not closed)")
        if self.token[0] != ")":
            raise ArithmeticExpressionError(f"missing operator at position {self.token[2]}")
        self.advance()
        self.depth -= 1
        return node


@dataclass(frozen=True)
class _Bounds:
    max_abs: Fraction
    max_int_digits: int  # a literal with more integer digits than this is > max_abs
    max_exponent: int

    def check(self, value: Fraction) -> Fraction:
        numerator, denominator = value.numerator, value.denominator
        # |n/d| > p/q  <=>  |n|*q > p*d, in integers (faster than a Fraction comparison).
        if abs(numerator) * self.max_abs.denominator > self.max_abs.numerator * denominator:
            raise ArithmeticExpressionError(f"number too large (limit {float(self.max_abs):g})")
        if numerator.bit_length() > MAX_BITS or denominator.bit_length() > MAX_BITS:
            raise ArithmeticExpressionError(f"number too large (more than {MAX_BITS} bits)")
        return value

    def number(self, text: str) -> Fraction:
        whole, _, fraction = text.partition(".")
        whole, fraction = whole.lstrip("0"), fraction.rstrip("0")
        if len(whole) > self.max_int_digits or len(fraction) > _MAX_FRACTION_DIGITS:
            raise ArithmeticExpressionError(f"number too large ({len(text)}-character literal)")
        return self.check(Fraction(int(whole + fraction or "0"), 10 ** len(fraction)))

    def power(self, base: Fraction, exponent: Fraction) -> Fraction:
        if exponent.denominator != 1:
            raise ArithmeticExpressionError("non-integer exponent")
        e = exponent.numerator
        if abs(e) > self.max_exponent:
            raise ArithmeticExpressionError(f"exponent too large (limit {self.max_exponent})")
        if base == 0 and e < 0:
            raise ArithmeticExpressionError("division by zero")
        for part in (base.numerator, base.denominator):
            # |part| >= 2**(bits-1), so |part|**|e| has more than (bits-1)*|e| bits: refuse before computing.
            if (abs(part).bit_length() - 1) * abs(e) >= MAX_BITS:
                raise ArithmeticExpressionError(f"number too large (more than {MAX_BITS} bits)")
        return self.check(base**e)

    def value(self, node: tuple) -> Fraction:
        kind = node[0]
        if kind == "num":
            return self.number(node[1])
        if kind == "neg":
            return -self.value(node[1])
        if kind == "pow":
            return self.power(self.value(node[1]), self.value(node[2]))
        result = self.value(node[1])
        for op, operand in node[2]:
            right = self.value(operand)
            if op == "+":
                result = result + right
            elif op == "-":
                result = result - right
            elif op == "*":
                result = result * right
            elif right == 0:
                raise ArithmeticExpressionError("division by zero")
            else:
                result = result / right
            self.check(result)
        return result


def _validate_limits(max_length: int, max_depth: int, max_abs: float, max_exponent: int) -> None:
    if max_length < 1:
        raise ConfigError(f"max_length must be >= 1, got {max_length}")
    if not 1 <= max_depth <= MAX_DEPTH_LIMIT:
        raise ConfigError(f"max_depth must be in [1, {MAX_DEPTH_LIMIT}], got {max_depth}")
    if not (math.isfinite(max_abs) and max_abs > 0):
        raise ConfigError(f"max_abs must be a positive finite number, got {max_abs}")
    if max_exponent < 0:
        raise ConfigError(f"max_exponent must be >= 0, got {max_exponent}")


def evaluate_expression(
    text: str, *, max_length: int = 200, max_depth: int = 32, max_abs: float = 1e15, max_exponent: int = 64
) -> Fraction:
    """Evaluate an arithmetic expression exactly, within the given bounds.

    Args:
        text: The expression (grammar in the module docstring).
        max_length: Longest accepted text, in characters.
        max_depth: Deepest nesting of parentheses, unary signs and exponents (at most ``MAX_DEPTH_LIMIT``).
        max_abs: Largest ``|value|`` of any literal, intermediate value or result.
        max_exponent: Largest ``|e|`` of an (integer) exponent.

    Returns:
        The exact value, always a :class:`~fractions.Fraction` (``Fraction(14, 1)`` for ``"2+3*4"``).

    Raises:
        ArithmeticExpressionError: The expression is empty, too long, malformed or out of bounds; the
            message is the short reason (``"division by zero"``, ``"missing operand at position 2"``).
        ConfigError: A bound itself is invalid.
        TypeError: ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"expression must be a string, got {type(text).__name__}")
    _validate_limits(max_length, max_depth, max_abs, max_exponent)
    if len(text) > max_length:
        raise ArithmeticExpressionError(f"expression too long ({len(text)} > {max_length} characters)")
    tree = _Parser(text, max_depth).parse()
    limit = Fraction(max_abs)
    bounds = _Bounds(limit, len(str(math.floor(limit))), max_exponent)
    return bounds.value(tree)


def format_number(value: int | float | Fraction) -> str:
    """Write a number for the model: integers without decimals, others rounded to 6 decimals.

    Rounding is half away from zero and trailing zeros are dropped; a value that rounds to zero is
    ``"0"`` (never ``"-0"``).

    >>> [format_number(v) for v in (12, Fraction(5, 2), Fraction(-1, 3), Fraction(2, 3), 1e-9)]
    ['12', '2.5', '-0.333333', '0.666667', '0']

    Raises:
        ArithmeticExpressionError: ``value`` is an infinite or NaN float ("result not finite").
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ArithmeticExpressionError("result not finite")
    value = Fraction(value)
    scale = 10**_DECIMALS
    # round(|value| * scale) with halves going up, in integers.
    scaled = (2 * abs(value.numerator) * scale + value.denominator) // (2 * value.denominator)
    whole, decimals = divmod(scaled, scale)
    digits = str(whole) + (f".{decimals:0{_DECIMALS}d}".rstrip("0") if decimals else "")
    return "-" + digits if value < 0 and scaled else digits


def calculate(text: str) -> str:
    """The calculator tool: the formatted value of ``text``, or ``"error: <short reason>"``.

    Never raises for any string (however long, or full of control characters), so an env can append
    its answer to whatever the model wrote. Uses :func:`evaluate_expression`'s default bounds.

    >>> calculate("(1 + 2) * 3 ÷ 4"), calculate("1 / 0"), calculate("")
    ('2.25', 'error: division by zero', 'error: empty expression')
    """
    if not isinstance(text, str):
        return "error: expression must be a string"
    try:
        return format_number(evaluate_expression(text))
    except ArithmeticExpressionError as error:
        return f"error: {error}"
