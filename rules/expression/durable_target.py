"""Compile a resolved boolean expression into a durable_rules condition.

The point of the engine is that it matches events natively, but its C core only compares
a message field with a constant, another field, or `+ - * /` of those. Whatever else a
condition needs (function calls, if-else, division by a field, ...) is "hoisted": the
caller computes it in Python before posting and puts it in the message under `derived`,
so the engine again only sees a field. Findings about durable_rules 2.0.28 that shape
this module, all checked against the engine:

- A comparison whose left field is missing from the message never matches, `$neq`
  included. With `not` pushed to the leaves first, that is exactly Kleene logic; the
  caller must leave None-valued fields out of the message.
- A missing field on the right (`{"$m": ...}`, also inside `$add`...) is not reliable:
  on a fresh host it does not match, but once the host has seen a few events it can
  match anything (`$lt`, `$eq` and `$neq` alike). So every field read on the right is
  guarded with `{"$ex": {field: 1}}` in an `$and` with its comparison.
- `$div` of two integers is C integer division and `x / 0` crashes the process (SIGFPE):
  division is only emitted for a non-zero constant divisor, written as a float.
- An arithmetic object with no field in it (`{"$add": {"$l": 1, "$r": 2}}`) never
  matches, so constants are always folded before they reach the engine.
- The engine's JSON reader rejects numbers written with an exponent but no decimal point
  (`1e-05`, `1e+16`, which is how Python prints those floats) and saturates integers
  outside 64 bits: a comparison with such a constant is hoisted whole, as true/false.
- Too many `$and`/`$or` or too wide an `$or` break the engine (see engine_limits), so
  parts of such conditions are hoisted as true/false until the rest fits.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from . import engine_limits
from .errors import ExpressionError
from .nodes import (
    Binary,
    BoolOp,
    Call,
    Compare,
    CompareOp,
    Const,
    ListLit,
    Name,
    Node,
    Param,
    Unary,
    is_constant,
    walk,
)
from .normal_form import to_nnf
from .python_target import Scope, compile_python

Condition = dict[str, Any]
DERIVED = "derived"

_OPERATORS: dict[str, str] = {
    "<": "$lt",
    "<=": "$lte",
    ">": "$gt",
    ">=": "$gte",
    "!=": "$neq",
}
_FLIPPED: dict[CompareOp, CompareOp] = {
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
    "==": "==",
    "!=": "!=",
}
_ARITH = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}
_INT64 = range(-(2**63), 2**63)
_EXACT_INT_DIVISOR = 2**53  # beyond this float(divisor) is no longer exact


class _Always:
    """A sub-condition known to be true for every event."""


class _Never:
    """A sub-condition known never to fire (false or unknown for every event)."""


ALWAYS = _Always()
NEVER = _Never()
_Compiled = Condition | _Always | _Never


class _Unknown(Exception):
    """A constant operand is unknown (e.g. 1 / 0), so the comparison can never fire."""


class _Unencodable(Exception):
    """A constant the engine's JSON reader would misread; the comparison is hoisted."""


def compile_condition(node: Node, prefix: str) -> tuple[Condition, dict[str, Node]]:
    """Compile a resolved BOOL tree into a condition plus the sub-expressions to hoist.

    The condition goes under {"m": ...} in a rule's `all` list. Each hoisted node must be
    evaluated with the Python target and stored as scope["derived"][name] before posting,
    leaving it out when it is None (see `compile_derived`). Names are prefix + counter,
    so a rulebook can give each rule its own prefix and share one `derived` namespace.
    """
    if not prefix or "." in prefix:
        raise ValueError("prefix must be a non-empty name without dots")
    if _is_plainly_a_value(node):
        raise ExpressionError("a condition must be true or false, not a value", node.start)
    normal = to_nnf(node)
    forced: set[int] = set()
    while True:
        compiler = _Compiler(prefix, forced)
        condition = compiler.top(normal)
        if engine_limits.fits(condition):
            return condition, compiler.hoisted
        forced.add(_largest_group(normal, forced))


def compile_derived(hoisted: Mapping[str, Node]) -> Callable[[Scope], dict[str, Any]]:
    """The function that computes the `derived` part of a message for these hoists.

    Unknown (None) values are left out, as the engine must not see them.
    """
    evaluators = [(name, compile_python(node)) for name, node in hoisted.items()]

    def derive(scope: Scope) -> dict[str, Any]:
        values = {}
        for name, evaluate in evaluators:
            value = evaluate(scope)
            if value is not None:
                values[name] = value
        return values

    return derive


def _largest_group(normal: Node, forced: set[int]) -> int:
    """The biggest `and`/`or`/`in` below the root that is not hoisted yet; else the root."""
    best, best_size = id(normal), -1
    stack = [(normal, True)]
    while stack:
        node, is_root = stack.pop()
        if id(node) in forced:
            continue
        if not is_root and _is_group(node):
            size = sum(1 for _ in walk(node)) + _list_length(node)
            if size > best_size:
                best, best_size = id(node), size
        if isinstance(node, BoolOp):
            stack.extend((o, False) for o in node.operands)
    if best == id(normal) and best in forced:
        raise ExpressionError("this condition is too complex for the rule engine", normal.start)
    return best


def _is_plainly_a_value(node: Node) -> bool:
    """Catches a number or text passed as a condition, as far as the tree alone shows."""
    if isinstance(node, Const):
        return not isinstance(node.value, bool)
    if isinstance(node, Unary):
        return node.op == "neg"
    return isinstance(node, Binary | Call | ListLit)


def _is_group(node: Node) -> bool:
    return isinstance(node, BoolOp) or (isinstance(node, Compare) and node.op in ("in", "not in"))


def _list_length(node: Node) -> int:
    if isinstance(node, Compare) and isinstance(node.right, ListLit):
        return len(node.right.items)
    if isinstance(node, Compare) and isinstance(node.right, Param):
        value = node.right.value
        return len(value) if isinstance(value, tuple) else 0
    return 0


class _Compiler:
    def __init__(self, prefix: str, forced: set[int]) -> None:
        self._prefix = prefix
        self._forced = forced
        self._keys: dict[str, str] = {}
        self.hoisted: dict[str, Node] = {}

    def top(self, node: Node) -> Condition:
        compiled = self._condition(node)
        if isinstance(compiled, dict):
            return compiled
        # A constant condition still needs a field to test: hoist the constant itself.
        constant = Const(compiled is ALWAYS, None, start=node.start, end=node.end)
        return {self._hoist(constant): True}

    def _hoist(self, node: Node) -> str:
        """The message path under which the caller will supply `node`'s value."""
        key = _shape(node)
        name = self._keys.get(key)
        if name is None:
            name = f"{self._prefix}{len(self.hoisted)}"
            self._keys[key] = name
            self.hoisted[name] = node
        return f"{DERIVED}.{name}"

    def _condition(self, node: Node) -> _Compiled:
        if id(node) in self._forced:
            return {self._hoist(node): True}
        if isinstance(node, BoolOp):
            return self._group(node.op, [self._condition(o) for o in node.operands])
        if is_constant(node):
            return ALWAYS if compile_python(node)({}) is True else NEVER
        if isinstance(node, Compare):
            return self._comparison(node)
        if _is_field(node):
            return {_path(node): True}
        if isinstance(node, Unary) and node.op == "not" and _is_field(node.operand):
            return {_path(node.operand): False}
        return {self._hoist(node): True}

    @staticmethod
    def _group(op: str, parts: list[_Compiled]) -> _Compiled:
        absorbing, neutral = (NEVER, ALWAYS) if op == "and" else (ALWAYS, NEVER)
        key = f"${op}"
        flat: list[Condition] = []
        seen: set[str] = set()
        for part in parts:
            if part is absorbing:
                return absorbing
            if part is neutral:
                continue
            assert isinstance(part, dict)
            for item in part.get(key, [part]):
                canonical = json.dumps(item, sort_keys=True)  # `a and a` is just `a`
                if canonical not in seen:
                    seen.add(canonical)
                    flat.append(item)
        if not flat:
            return neutral
        return flat[0] if len(flat) == 1 else {key: flat}

    def _comparison(self, node: Compare) -> _Compiled:
        if node.op in ("in", "not in"):
            return self._membership(node)
        mark = len(self.hoisted)
        try:
            return self._simple(node.op, node.left, node.right)
        except _Unknown:
            self._forget_since(mark)
            return NEVER
        except _Unencodable:
            self._forget_since(mark)
            return {self._hoist(node): True}

    def _forget_since(self, mark: int) -> None:
        """Drop hoists made for a comparison that ended up not using them."""
        for name in list(self.hoisted)[mark:]:
            del self.hoisted[name]
        self._keys = {key: name for key, name in self._keys.items() if name in self.hoisted}

    def _membership(self, node: Compare) -> _Compiled:
        if isinstance(node.right, ListLit):
            values = [item.value for item in node.right.items if isinstance(item, Const)]
        else:
            assert isinstance(node.right, Param) and isinstance(node.right.value, tuple)
            values = list(node.right.value)
        unique = list({(type(v), v): v for v in values}.values())
        if not unique and node.op == "not in":
            return {self._hoist(node): True}  # true exactly when the left side is known
        op: CompareOp = "==" if node.op == "in" else "!="
        span = {"start": node.right.start, "end": node.right.end}
        parts = [
            self._comparison(Compare(op, node.left, Const(v, None, **span), **span))
            for v in unique
        ]
        return self._group("or" if node.op == "in" else "and", parts)

    def _simple(self, op: CompareOp, left: Node, right: Node) -> Condition:
        if _is_field(left):
            path, value = _path(left), self._rvalue(right)
        elif _is_field(right):
            op = _FLIPPED[op]
            path, value = _path(right), self._rvalue(left)
        elif is_constant(left):  # hoist the side that varies, not the constant
            op = _FLIPPED[op]
            value = self._rvalue(left)
            path = self._hoist(right)
        else:
            value = self._rvalue(right)
            path = self._hoist(left)
        test = {path: value} if op == "==" else {_OPERATORS[op]: {path: value}}
        guards = [{"$ex": {field: 1}} for field in _referenced(value) if field != path]
        return {"$and": [*guards, test]} if guards else test

    def _rvalue(self, node: Node) -> Any:
        """A value the engine computes natively, hoisting the parts it cannot."""
        if is_constant(node):
            return _encode(compile_python(node)({}))
        if _is_field(node):
            return {"$m": _path(node)}
        if isinstance(node, Binary) and node.op != "/":
            left, right = self._rvalue(node.left), self._rvalue(node.right)
            return {_ARITH[node.op]: {"$l": left, "$r": right}}
        if isinstance(node, Binary) and is_constant(node.right):
            divisor = compile_python(node.right)({})
            if divisor is None or divisor == 0:
                raise _Unknown
            if isinstance(divisor, int) and abs(divisor) > _EXACT_INT_DIVISOR:
                return {"$m": self._hoist(node)}
            # A float divisor makes the engine divide in floating point, as Python does.
            return {"$div": {"$l": self._rvalue(node.left), "$r": _encode(float(divisor))}}
        return {"$m": self._hoist(node)}


def _shape(node: Node) -> str:
    """A key equal for equal sub-expressions wherever they are in the text.

    Unlike ==, it tells True from 1 and ignores offsets, so `min(a, b)` written twice is
    hoisted once.
    """
    parts = []
    for item in dataclasses.fields(node):
        if item.name in ("start", "end"):
            continue
        value = getattr(node, item.name)
        if isinstance(value, Node):
            parts.append(_shape(value))
        elif isinstance(value, tuple) and value and isinstance(value[0], Node):
            parts.append("(" + ",".join(_shape(v) for v in value) + ")")
        else:
            parts.append(f"{type(value).__name__}:{value!r}")
    return f"{type(node).__name__}[{';'.join(parts)}]"


def _referenced(value: Any) -> list[str]:
    """The message fields an rvalue reads through `$m`, each once, in order."""
    found: list[str] = []
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if "$m" in current:
                if current["$m"] not in found:
                    found.append(current["$m"])
            else:
                stack.extend(reversed(list(current.values())))
    return found


def _is_field(node: Node) -> bool:
    return isinstance(node, Name) and len(node.path) == 2


def _path(node: Node) -> str:
    assert isinstance(node, Name)
    return node.dotted


def _encode(value: Any) -> Any:
    """A constant as the engine will read it back exactly, or an exception saying why not."""
    if value is None:
        raise _Unknown
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if value not in _INT64:
            raise _Unencodable
        return value
    if isinstance(value, float):
        text = repr(value)
        if not math.isfinite(value) or ("e" in text and "." not in text):
            raise _Unencodable
        return value
    raise _Unencodable
