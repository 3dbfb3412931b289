"""Evaluate a resolved expression in Python, as a tree of closures.

This is the reference semantics: the simulator, effect arguments and hoisted
sub-expressions of engine conditions all run through it, and the durable_rules target is
tested against it. Missing data is None, meaning "unknown", and unknown spreads the way
SQL's NULL does (Kleene logic), because that is what the C engine can be made to do: a
comparison against a missing field simply does not match there.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ExpressionError
from .nodes import (
    Binary,
    BoolOp,
    Call,
    Compare,
    Const,
    IfExp,
    ListLit,
    Name,
    Node,
    Param,
    Unary,
)

Scope = Mapping[str, Mapping[str, Any]]
Evaluator = Callable[[Scope], Any]

_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda item, items: item in items,
    "not in": lambda item, items: item not in items,
}
# Failures of these kinds mean "no sensible number" (huge ints, inf, nan), i.e. unknown.
_NUMERIC_FAILURES = (OverflowError, ValueError, ZeroDivisionError)


def compile_python(node: Node) -> Evaluator:
    """Compile a resolved tree into a function of the scope, e.g. scope["event"]["price"].

    A missing namespace or field reads as None. The result is None whenever it is unknown;
    a rule fires only when its condition returns exactly True.
    """
    match node:
        case Const(value=value) | Param(value=value):
            return lambda scope: value
        case Name(path=(namespace, field)):
            return _reader(namespace, field)
        case Name(path=path):
            raise ExpressionError(
                f"'{'.'.join(path)}' was not resolved; resolve() the expression first",
                node.start,
            )
        case Unary(op="neg", operand=operand):
            return _negate(compile_python(operand))
        case Unary(op="not", operand=operand):
            return _invert(compile_python(operand))
        case Binary(op="/", left=left, right=right):
            return _divide(compile_python(left), compile_python(right))
        case Binary(op=op, left=left, right=right):
            return _arithmetic(_ARITH[op], compile_python(left), compile_python(right))
        case Compare(op=op, left=left, right=right):
            return _compare(_COMPARE[op], compile_python(left), compile_python(right))
        case BoolOp(op="and", operands=operands):
            return _kleene(tuple(compile_python(o) for o in operands), decisive=False)
        case BoolOp(op="or", operands=operands):
            return _kleene(tuple(compile_python(o) for o in operands), decisive=True)
        case IfExp(test=test, body=body, orelse=orelse):
            return _choose(compile_python(test), compile_python(body), compile_python(orelse))
        case Call(func=func, args=args):
            return _call(func, tuple(compile_python(a) for a in args))
        case ListLit(items=items):
            values = tuple(compile_python(item)({}) for item in items)
            return lambda scope: values
    raise ExpressionError("this kind of expression cannot be evaluated", node.start)


def _reader(namespace: str, field: str) -> Evaluator:
    def read(scope: Scope) -> Any:
        try:
            return scope[namespace][field]
        except (KeyError, TypeError, IndexError):
            return None

    return read


def _negate(operand: Evaluator) -> Evaluator:
    def negate(scope: Scope) -> Any:
        value = operand(scope)
        return None if value is None else -value

    return negate


def _invert(operand: Evaluator) -> Evaluator:
    def invert(scope: Scope) -> Any:
        value = operand(scope)
        return None if value is None else not value

    return invert


def _arithmetic(op: Callable[[Any, Any], Any], left: Evaluator, right: Evaluator) -> Evaluator:
    def arithmetic(scope: Scope) -> Any:
        a = left(scope)
        if a is None:
            return None
        b = right(scope)
        if b is None:
            return None
        try:
            return op(a, b)
        except _NUMERIC_FAILURES:
            return None

    return arithmetic


def _divide(left: Evaluator, right: Evaluator) -> Evaluator:
    def divide(scope: Scope) -> Any:
        a = left(scope)
        if a is None:
            return None
        b = right(scope)
        if b is None or b == 0:
            return None
        try:
            return a / b
        except _NUMERIC_FAILURES:
            return None

    return divide


def _compare(op: Callable[[Any, Any], bool], left: Evaluator, right: Evaluator) -> Evaluator:
    def compare(scope: Scope) -> bool | None:
        a = left(scope)
        if a is None:
            return None
        b = right(scope)
        if b is None:
            return None
        return op(a, b)

    return compare


def _kleene(operands: tuple[Evaluator, ...], *, decisive: bool) -> Evaluator:
    """`and` (decisive=False: one False decides) or `or` (decisive=True: one True decides)."""

    def combine(scope: Scope) -> bool | None:
        unknown = False
        for operand in operands:
            value = operand(scope)
            if value is None:
                unknown = True
            elif bool(value) is decisive:
                return decisive
        return None if unknown else not decisive

    return combine


def _choose(test: Evaluator, body: Evaluator, orelse: Evaluator) -> Evaluator:
    def choose(scope: Scope) -> Any:
        condition = test(scope)
        if condition is None:
            return None
        return body(scope) if condition else orelse(scope)

    return choose


def _round(value: Any, digits: Any = None) -> Any:
    return round(value) if digits is None else round(value, digits)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
    "max": max,
    "min": min,
    "round": _round,
}


def _call(func: str, args: tuple[Evaluator, ...]) -> Evaluator:
    implementation = _FUNCTIONS[func]

    def call(scope: Scope) -> Any:
        values = []
        for arg in args:
            value = arg(scope)
            if value is None:
                return None
            values.append(value)
        try:
            return implementation(*values)
        except _NUMERIC_FAILURES:
            return None

    return call
