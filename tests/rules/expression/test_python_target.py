"""The Python evaluator: the reference semantics, including unknown (None) values."""

from __future__ import annotations

from typing import Any

import pytest

from rules.expression import ExpressionError, Type, compile_python, parse, resolve

SYMBOLS = {
    "event.a": Type.NUMBER,
    "event.b": Type.NUMBER,
    "event.kind": Type.STRING,
    "event.p": Type.BOOL,
    "event.q": Type.BOOL,
}
PARAMETERS = {"kinds": ["x", "y"], "rate": 0.5}


def evaluate(text: str, **event: Any) -> Any:
    tree, _ = resolve(parse(text), SYMBOLS, PARAMETERS)
    return compile_python(tree)({"event": event})


TRUTH = [True, False, None]


@pytest.mark.parametrize("p", TRUTH)
@pytest.mark.parametrize("q", TRUTH)
def test_kleene_and_or(p: bool | None, q: bool | None) -> None:
    if p is False or q is False:
        expected_and = False
    elif p is None or q is None:
        expected_and = None
    else:
        expected_and = True
    if p is True or q is True:
        expected_or = True
    elif p is None or q is None:
        expected_or = None
    else:
        expected_or = False
    assert evaluate("event.p and event.q", p=p, q=q) is expected_and
    assert evaluate("event.p or event.q", p=p, q=q) is expected_or


@pytest.mark.parametrize(("p", "expected"), [(True, False), (False, True), (None, None)])
def test_kleene_not(p: bool | None, expected: bool | None) -> None:
    assert evaluate("not event.p", p=p) is expected


def test_unknown_operand_of_and_does_not_hide_a_false_one() -> None:
    assert evaluate("event.a > 1 and event.b > 1", b=0) is False
    assert evaluate("event.a > 1 or event.b > 1", b=2) is True
    assert evaluate("event.a > 1 or event.b > 1", b=0) is None


@pytest.mark.parametrize(
    "text",
    [
        "event.a + 1",
        "event.a - 1",
        "2 * event.a",
        "event.a / 2",
        "-event.a",
        "min(event.a, 1)",
        "max(1, event.a)",
        "abs(event.a)",
        "round(event.a)",
        "round(event.a, 1)",
        "floor(event.a)",
        "ceil(event.a)",
        "event.a < 1",
        "event.a == 1",
        "event.a != 1",
        "1 >= event.a",
        "event.kind == 'x'",
        "event.kind != 'x'",
        "event.kind in kinds",
        "event.kind not in kinds",
        "event.a in [1, 2]",
        "1 if event.p else 2",
        "1 if event.a > 0 else 2",
    ],
)
def test_unknown_propagates(text: str) -> None:
    assert evaluate(text) is None


def test_missing_namespace_or_field_reads_as_unknown() -> None:
    tree, _ = resolve(parse("event.a"), SYMBOLS, PARAMETERS)
    evaluate_a = compile_python(tree)
    assert evaluate_a({}) is None
    assert evaluate_a({"event": {}}) is None
    assert evaluate_a({"event": None}) is None  # type: ignore[dict-item]
    assert evaluate_a({"event": {"a": None}}) is None
    assert evaluate_a({"event": {"a": 3}}) == 3


@pytest.mark.parametrize("divisor", [0, 0.0, -0.0])
def test_division_by_zero_is_unknown(divisor: float) -> None:
    assert evaluate("event.a / event.b", a=1, b=divisor) is None
    assert evaluate("event.a / event.b > 0", a=1, b=divisor) is None
    assert evaluate("not (event.a / event.b > 0)", a=1, b=divisor) is None
    assert evaluate("event.a / 0") is None


def test_values() -> None:
    assert evaluate("event.a * (1 - rate) + 36h", a=10) == 129605.0
    assert evaluate("event.a / 4", a=2) == 0.5
    assert evaluate("min(event.a, 3, 2)", a=5) == 2
    assert evaluate("max(event.a, 3)", a=5) == 5
    assert evaluate("abs(event.a)", a=-2.5) == 2.5
    assert evaluate("round(event.a)", a=2.5) == 2  # Python rounds half to even
    assert evaluate("round(event.a, 1)", a=0.25) == 0.2
    assert evaluate("floor(event.a)", a=-1.5) == -2
    assert evaluate("ceil(event.a)", a=-1.5) == -1
    assert evaluate("'big' if event.a > 10 else 'small'", a=11) == "big"
    assert evaluate("'big' if event.a > 10 else 'small'", a=1) == "small"
    assert evaluate("event.kind in kinds", kind="y") is True
    assert evaluate("event.kind not in kinds", kind="y") is False
    assert evaluate("event.a in [1, 2]", a=2.0) is True
    assert evaluate("0 < event.a < 10", a=5) is True
    assert evaluate("0 < event.a < 10", a=50) is False


def test_an_unselected_branch_is_not_evaluated() -> None:
    assert evaluate("event.a if event.p else 1 / 0", p=True, a=4) == 4


def test_numeric_overflow_is_unknown() -> None:
    assert evaluate("floor(event.a * 1e308 * 10)", a=1) is None
    assert evaluate("round(event.a)", a=float("nan")) is None
    assert evaluate("event.a / 3", a=10**400) is None


def test_unresolved_parameter_is_refused() -> None:
    with pytest.raises(ExpressionError, match="was not resolved"):
        compile_python(parse("rate * 2"))
