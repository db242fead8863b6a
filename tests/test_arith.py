"""lmgym.tools.arith: exact values, formatting, every error reason, and adversarial inputs that must stay fast."""

from __future__ import annotations

import ast
import inspect
import random
import re
import subprocess
import sys
import time
from fractions import Fraction

import pytest

import lmgym.tools.arith as arith
from lmgym.errors import ArithmeticExpressionError, ConfigError, LmgymError
from lmgym.tools.arith import MAX_DEPTH_LIMIT, calculate, evaluate_expression, format_number

NUMBER = re.compile(r"-?[0-9]+(\.[0-9]{0,5}[1-9])?")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),  # left-associative
        ("12 / 4 / 3", 1),
        ("2 * 3 / 4", Fraction(3, 2)),
        ("2 ** 3 ** 2", 512),  # right-associative
        ("2 ^ 3 ^ 2", 512),
        ("(2 ** 3) ** 2", 64),
        ("-2 ** 2", -4),  # power binds tighter than unary minus, as in Python
        ("(-2) ** 2", 4),
        ("2 ** -2", Fraction(1, 4)),
        ("2 ^ -2 ^ 2", Fraction(1, 16)),
        ("-3 ** -1", Fraction(-1, 3)),
        ("2 ** 2.0", 4),  # an integer-valued exponent is an integer exponent
        ("0 ** 0", 1),
        ("--1", 1),
        ("+-+1", -1),
        ("2 * -3", -6),
        ("1 - -1", 2),
        ("-(-(1))", 1),
        ("3.25 + .75", 4),
        ("3. * 2", 6),
        ("0.1 + 0.2", Fraction(3, 10)),  # exact, not 0.30000000000000004
        ("007.500", Fraction(15, 2)),
        ("1/3 * 3", 1),
        ("6 × 7", 42),
        ("7 ÷ 2", Fraction(7, 2)),
        ("3 ÷ 4 × 2", Fraction(3, 2)),
        (" \t( 1+2 )\n*\u20033 ", 9),  # any whitespace between tokens
        ("10 ** 15", 10**15),  # exactly max_abs is allowed
        ("-10 ** 15", -(10**15)),
        ("2 ** 49", 2**49),
    ],
)
def test_values(text, expected):
    value = evaluate_expression(text)
    assert isinstance(value, Fraction)
    assert value == expected


@pytest.mark.parametrize(
    "value, text",
    [
        (12, "12"),
        (Fraction(12), "12"),
        (0, "0"),
        (-7, "-7"),
        (Fraction(5, 2), "2.5"),
        (Fraction(-5, 2), "-2.5"),
        (Fraction(1, 3), "0.333333"),
        (Fraction(2, 3), "0.666667"),
        (Fraction(-2, 3), "-0.666667"),
        (Fraction(1, 8), "0.125"),
        (Fraction(1, 2_000_000), "0.000001"),  # halves round away from zero
        (Fraction(-1, 2_000_000), "-0.000001"),
        (Fraction(-1, 3_000_000), "0"),  # rounds to zero: never "-0"
        (Fraction(2_999_999_999, 1_000_000_000), "3"),
        (10**15, "1000000000000000"),
        (2.5, "2.5"),
        (1e-9, "0"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_format_number_refuses_non_finite(value):
    with pytest.raises(ArithmeticExpressionError, match="^result not finite$"):
        format_number(value)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty expression"),
        (" \n\t", "empty expression"),
        ("2 x 3", "unexpected character 'x' at position 2 (use * to multiply)"),
        ("1,000", "unexpected character ',' at position 1 (write numbers without commas)"),
        ("1e5", "unexpected character 'e' at position 1"),
        ("1 = 1", "unexpected character '=' at position 2"),
        ("2 * ab", "unexpected character 'a' at position 4"),
        ("\x00", "unexpected character '\\x00' at position 0"),
        ("٣ + 1", "unexpected character '٣' at position 0"),  # only ASCII digits
        (".", "unexpected character '.' at position 0"),
        ("(1 + 2", "unbalanced parentheses ('(' at position 0 is not closed)"),
        ("((1)", "unbalanced parentheses ('(' at position 0 is not closed)"),
        ("1 + 2)", "unbalanced parentheses (unexpected ')' at position 5)"),
        ("1 +", "missing operand at end of expression"),
        ("* 3", "missing operand at position 0"),
        ("()", "missing operand at position 1"),
        ("2 ** ** 3", "missing operand at position 5"),
        ("1 2", "missing operator at position 2"),
        ("2(3)", "missing operator at position 1"),
        ("(1)(2)", "missing operator at position 3"),
        ("1.2.3", "missing operator at position 3"),
        ("1 / 0", "division by zero"),
        ("1 / (2 - 2)", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("10 ** 15 + 1", "number too large (limit 1e+15)"),
        ("1000000000000001", "number too large (limit 1e+15)"),
        ("99999999999999999", "number too large (17-character literal)"),  # refused by its digit count
        ("10 ** 15 * 10 / 10", "number too large (limit 1e+15)"),  # intermediate values count too
        ("10 ** 64", "number too large (limit 1e+15)"),
        ("2 ** 65", "exponent too large (limit 64)"),
        ("2 ** -65", "exponent too large (limit 64)"),
        ("2 ** 0.5", "non-integer exponent"),
        ("4 ** (1 / 2)", "non-integer exponent"),
        ("1 +" * 100 + "1", "expression too long (301 > 200 characters)"),
        ("(" * 33 + "1" + ")" * 33, "nesting too deep (more than 32 levels)"),
        ("-" * 33 + "1", "nesting too deep (more than 32 levels)"),
        ("1" + "**1" * 33, "nesting too deep (more than 32 levels)"),
    ],
)
def test_error_reasons(text, reason):
    with pytest.raises(ArithmeticExpressionError) as caught:
        evaluate_expression(text)
    assert str(caught.value) == reason
    assert calculate(text) == f"error: {reason}"


def test_syntax_errors_come_before_value_errors():
    assert calculate("1 / 0 + (") == "error: missing operand at end of expression"
    assert calculate("10 ** 99 x") == "error: unexpected character 'x' at position 9 (use * to multiply)"


def test_limits_are_inclusive_and_configurable():
    assert evaluate_expression("1+" * 99 + "11") == 110  # exactly 200 characters
    assert evaluate_expression("(" * 32 + "1" + ")" * 32) == 1
    assert evaluate_expression("-" * 32 + "1") == 1
    assert evaluate_expression("1" + "**1" * 32) == 1
    assert evaluate_expression("2 ** 64", max_abs=2.0**64) == 2**64
    assert evaluate_expression("2 ** 100", max_abs=1e300, max_exponent=100) == 2**100
    nested = "(" * MAX_DEPTH_LIMIT + "1" + ")" * MAX_DEPTH_LIMIT
    assert evaluate_expression(nested, max_depth=MAX_DEPTH_LIMIT, max_length=1000) == 1
    with pytest.raises(ArithmeticExpressionError, match="too long"):
        evaluate_expression("1 + 1", max_length=4)
    with pytest.raises(ArithmeticExpressionError, match="too large"):
        evaluate_expression("3", max_abs=2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_length": 0},
        {"max_depth": 0},
        {"max_depth": MAX_DEPTH_LIMIT + 1},
        {"max_abs": 0},
        {"max_abs": float("inf")},
        {"max_abs": float("nan")},
        {"max_exponent": -1},
    ],
)
def test_invalid_limits_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        evaluate_expression("1", **kwargs)


def test_literals_are_bounded_before_conversion():
    # Python's int() refuses more than 4300 digits with a plain ValueError; ours must refuse first.
    for text in ("1" * 5000, "0." + "0" * 5000 + "1"):
        with pytest.raises(ArithmeticExpressionError, match=r"^number too large \(\d+-character literal\)$"):
            evaluate_expression(text, max_length=10**4)
    assert evaluate_expression("0" * 5000 + "1." + "0" * 5000, max_length=10**5) == 1


def test_fraction_size_is_bounded():
    text = "1/3" + "/3" * 3000  # tiny value, but its denominator 3**3001 has more than 4096 bits
    with pytest.raises(ArithmeticExpressionError, match=r"^number too large \(more than 4096 bits\)$"):
        evaluate_expression(text, max_length=10**4)


ADVERSARIAL = [
    "9**9**9**9",
    "2**64**64",
    "(" * 100_000,
    "1" * 100_000,
    "1/" * 5000 + "1",
    "-" * 100_000 + "1",
    "1+" * 10_000 + "1",
    "(" * 10_000 + "1" + ")" * 10_000,
    ")" * 100_000,
    "1 " * 100_000,
    "2**" * 10_000 + "2",
    "1" + " " * 1_000_000 + "x",
]


@pytest.mark.parametrize("max_length", [200, 10**7])
@pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda text: repr(text[:12]) + f"..{len(text)}")
def test_adversarial_inputs_finish_fast(text, max_length):
    start = time.perf_counter()
    try:
        value = evaluate_expression(text, max_length=max_length)
    except ArithmeticExpressionError as error:
        value = error
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"{elapsed:.3f}s"
    if isinstance(value, Fraction):  # only the long but harmless chains may evaluate
        assert (text[:2], value) in {("1+", 10_001), ("1/", 1)}
    elif max_length == 200:
        assert "too long" in str(value) or len(text) <= 200


def test_calculate_never_raises():
    assert calculate(12) == "error: expression must be a string"  # type: ignore[arg-type]
    assert calculate(b"1+1") == "error: expression must be a string"  # type: ignore[arg-type]
    assert calculate("9" * 10**7) == "error: expression too long (10000000 > 200 characters)"
    assert calculate("\x00\xff\ud800").startswith("error: unexpected character '\\x00' at position 0")
    rng = random.Random(0)
    alphabet = "0123456789....++--**//^^(())××÷÷ \t\nx,eé\x00"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        answer = calculate(text)
        assert answer.startswith("error: ") or NUMBER.fullmatch(answer), (text, answer)


def _random_expression(rng: random.Random, depth: int) -> tuple[str, str]:
    """The same random expression twice: for the evaluator, and for Python with Fraction literals."""
    space = rng.choice(["", " "])
    roll = rng.random()
    if depth == 0 or roll < 0.25:
        if rng.random() < 0.1:
            base, exponent = rng.randint(0, 9), rng.randint(0, 3)
            return f"{base}{space}**{space}{exponent}", f"F({base}) ** {exponent}"
        n = rng.randint(0, 99)
        return str(n), f"F({n})"
    if roll < 0.35:
        ours, python = _random_expression(rng, depth - 1)
        return f"-{space}{ours}", f"-{python}"
    if roll < 0.5:
        ours, python = _random_expression(rng, depth - 1)
        return f"({space}{ours}{space})", f"({python})"
    op = rng.choice("+-*+-*/")
    (left, left_py), (right, right_py) = _random_expression(rng, depth - 1), _random_expression(rng, depth - 1)
    return f"{left}{space}{op}{space}{right}", f"{left_py} {op} {right_py}"


def test_agrees_with_python_on_random_expressions():
    rng = random.Random(0)
    compared = divisions_by_zero = 0
    for _ in range(500):
        ours, python = _random_expression(rng, depth=5)
        try:
            # Test-only oracle on text this test generated: Python's own grammar and exact Fractions.
            expected = eval(python, {"__builtins__": {}, "F": Fraction})
        except ZeroDivisionError:
            divisions_by_zero += 1
            assert calculate(ours) == "error: division by zero", ours
            continue
        assert evaluate_expression(ours, max_length=10**4, max_depth=MAX_DEPTH_LIMIT, max_abs=1e300) == expected, ours
        compared += 1
    assert compared > 400 and divisions_by_zero > 0


def test_module_never_evaluates_code():
    tree = ast.parse(inspect.getsource(arith))
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not called & {"eval", "exec", "compile", "__import__"}
    assert "literal_eval" not in attributes


def test_error_types():
    assert issubclass(ArithmeticExpressionError, LmgymError) and issubclass(ArithmeticExpressionError, ValueError)
    with pytest.raises(TypeError, match="must be a string"):
        evaluate_expression(None)  # type: ignore[arg-type]


def test_import_is_torch_free():
    code = "import sys, lmgym.tools.arith; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
