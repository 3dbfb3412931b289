"""Name resolution and type checking.

Parsing only knows the shape of an expression; whether `event.prise` exists or whether
`merchant.name > 3` makes sense depends on the rulebook's schema, so this step runs with
the schema in hand. It is also where parameters become values, which keeps compiled rules
free of any later lookup.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

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
from .types import Type

RawParamValue = int | float | str | bool | Sequence[int | float | str]
_ORDERING = ("<", "<=", ">", ">=")


def resolve(
    node: Node,
    symbols: Mapping[str, Type],
    parameters: Mapping[str, RawParamValue],
) -> tuple[Node, Type]:
    """Replace parameters by their values and type-check; returns the new tree and its type.

    `symbols` maps dotted field names ("event.price") to types. A rule condition must come
    out as Type.BOOL; checking that is the caller's job because effect arguments are
    resolved with the same function and must be numbers or text instead.
    """
    return _Resolver(symbols, parameters).visit(node)


def value_type(value: object) -> Type | None:
    """The type of a parameter value, or None when the language cannot hold it."""
    if isinstance(value, bool):
        return Type.BOOL
    if isinstance(value, int | float):
        return Type.NUMBER
    if isinstance(value, str):
        return Type.STRING
    if isinstance(value, list | tuple) and _element_type(value) is not None:
        return Type.LIST
    return None


def _element_type(items: Sequence[object]) -> Type | None:
    """NUMBER or STRING for a homogeneous list; LIST stands for "empty, matches either"."""
    kinds = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | float | str):
            return None
        kinds.add(Type.STRING if isinstance(item, str) else Type.NUMBER)
    if len(kinds) > 1:
        return None
    return kinds.pop() if kinds else Type.LIST


class _Resolver:
    def __init__(
        self, symbols: Mapping[str, Type], parameters: Mapping[str, RawParamValue]
    ) -> None:
        self._symbols = symbols
        self._parameters = parameters

    def visit(self, node: Node) -> tuple[Node, Type]:
        match node:
            case Const(value=value):
                kind = value_type(value)
                if kind is None or kind is Type.LIST:
                    raise ExpressionError("this value is not supported", node.start)
                return node, kind
            case Name(path=path) if len(path) == 1:
                return self._parameter(node, path[0])
            case Name():
                return self._field(node)
            case Param(name=name, value=value):
                return self._param_node(name, value, node)
            case Unary():
                return self._unary(node)
            case Binary():
                return self._binary(node)
            case Compare():
                return self._compare(node)
            case BoolOp():
                operands = tuple(self._expect(o, Type.BOOL, f"'{node.op}'") for o in node.operands)
                return BoolOp(node.op, operands, start=node.start, end=node.end), Type.BOOL
            case IfExp():
                return self._ifexp(node)
            case Call():
                return self._call(node)
            case ListLit():
                raise ExpressionError("a list can only follow 'in' or 'not in'", node.start)
        raise ExpressionError("this kind of expression is not supported", node.start)

    def _expect(self, node: Node, expected: Type, context: str) -> Node:
        resolved, kind = self.visit(node)
        if kind is not expected:
            raise ExpressionError(
                f"{context} needs {expected.described}, but this is {kind.described}",
                node.start,
            )
        return resolved

    def _field(self, node: Name) -> tuple[Node, Type]:
        dotted = node.dotted
        kind = self._symbols.get(dotted)
        if kind is None:
            raise ExpressionError(
                f"unknown name '{dotted}'{_suggest(dotted, self._symbols)}", node.start
            )
        if kind is Type.LIST:
            raise ExpressionError(
                f"'{dotted}' is a list field, which expressions cannot use", node.start
            )
        return node, kind

    def _parameter(self, node: Name, name: str) -> tuple[Node, Type]:
        if name not in self._parameters:
            candidates = list(self._parameters)
            # An author who writes `price` usually means the field `event.price`.
            fields = [s for s in self._symbols if s.split(".")[-1] == name]
            hint = f"; did you mean '{fields[0]}'?" if fields else _suggest(name, candidates)
            raise ExpressionError(f"unknown name '{name}'{hint}", node.start)
        return self._param_node(name, self._parameters[name], node)

    def _param_node(self, name: str, raw: object, node: Node) -> tuple[Node, Type]:
        kind = value_type(raw)
        if kind is None:
            raise ExpressionError(
                f"parameter '{name}' has a value the expression language cannot use "
                "(it must be a number, text, true/false, or a list of numbers or of text)",
                node.start,
            )
        value = tuple(raw) if isinstance(raw, list | tuple) else raw
        return Param(name, value, start=node.start, end=node.end), kind

    def _unary(self, node: Unary) -> tuple[Node, Type]:
        if node.op == "not":
            operand = self._expect(node.operand, Type.BOOL, "'not'")
            return Unary("not", operand, start=node.start, end=node.end), Type.BOOL
        operand = self._expect(node.operand, Type.NUMBER, "the minus sign")
        return Unary("neg", operand, start=node.start, end=node.end), Type.NUMBER

    def _binary(self, node: Binary) -> tuple[Node, Type]:
        context = f"'{node.op}'"
        left = self._expect(node.left, Type.NUMBER, context)
        right = self._expect(node.right, Type.NUMBER, context)
        return Binary(node.op, left, right, start=node.start, end=node.end), Type.NUMBER

    def _compare(self, node: Compare) -> tuple[Node, Type]:
        if node.op in ("in", "not in"):
            return self._membership(node)
        left, left_type = self.visit(node.left)
        right, right_type = self.visit(node.right)
        for side, kind in ((node.left, left_type), (node.right, right_type)):
            if kind is Type.LIST:
                raise ExpressionError("a list can only follow 'in' or 'not in'", side.start)
        if node.op in _ORDERING:
            for side, kind in ((node.left, left_type), (node.right, right_type)):
                if kind is not Type.NUMBER:
                    raise ExpressionError(
                        f"'{node.op}' compares numbers, but this is {kind.described}",
                        side.start,
                    )
        elif left_type is not right_type:
            raise ExpressionError(
                f"'{node.op}' compares {left_type.described} with "
                f"{right_type.described}; both sides must be of the same kind",
                node.right.start,
            )
        return Compare(node.op, left, right, start=node.start, end=node.end), Type.BOOL

    def _membership(self, node: Compare) -> tuple[Node, Type]:
        left, left_type = self.visit(node.left)
        if left_type not in (Type.NUMBER, Type.STRING):
            raise ExpressionError(
                f"'{node.op}' checks a number or text against a list, "
                f"but this is {left_type.described}",
                node.left.start,
            )
        right_ast = node.right
        if isinstance(right_ast, ListLit):
            values: list[object] = []
            for item in right_ast.items:
                if not isinstance(item, Const):
                    raise ExpressionError("list items must be numbers or text", item.start)
                values.append(item.value)
            right: Node = right_ast
            offenders: Sequence[Node] = right_ast.items
        else:
            right, right_type = self.visit(right_ast)
            if right_type is not Type.LIST or not isinstance(right, Param):
                raise ExpressionError(
                    f"'{node.op}' needs a list like [1, 2] or a list parameter, "
                    f"but this is {right_type.described}",
                    right_ast.start,
                )
            values = list(right.value) if isinstance(right.value, tuple) else []
            offenders = [right_ast] * len(values)
        element = _element_type(values)
        if element is None:
            raise ExpressionError(
                "a list must hold only numbers or only text", _first_mixed(values, offenders)
            )
        if element is not Type.LIST and element is not left_type:
            raise ExpressionError(
                f"'{node.op}' checks {left_type.described} against a list of "
                f"{'numbers' if element is Type.NUMBER else 'text'}",
                right_ast.start,
            )
        return Compare(node.op, left, right, start=node.start, end=node.end), Type.BOOL

    def _ifexp(self, node: IfExp) -> tuple[Node, Type]:
        test = self._expect(node.test, Type.BOOL, "the condition after 'if'")
        body, body_type = self.visit(node.body)
        orelse, orelse_type = self.visit(node.orelse)
        if body_type is Type.LIST:
            raise ExpressionError("a list can only follow 'in' or 'not in'", node.body.start)
        if orelse_type is not body_type:
            raise ExpressionError(
                f"both results of 'if ... else' must be of the same kind, but this is "
                f"{orelse_type.described} and the first is {body_type.described}",
                node.orelse.start,
            )
        return IfExp(test, body, orelse, start=node.start, end=node.end), body_type

    def _call(self, node: Call) -> tuple[Node, Type]:
        args = [self._expect(arg, Type.NUMBER, f"{node.func}()") for arg in node.args]
        if node.func == "round" and len(args) == 2:
            digits = args[1]
            value = digits.value if isinstance(digits, Const | Param) else None
            if not isinstance(value, int) or isinstance(value, bool):
                raise ExpressionError(
                    "the second argument of round() must be a whole number, like 2",
                    node.args[1].start,
                )
        return Call(node.func, tuple(args), start=node.start, end=node.end), Type.NUMBER


def _suggest(name: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=1)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def _first_mixed(values: Sequence[object], nodes: Sequence[Node]) -> int:
    """Offset of the first list item whose kind differs from the first item's."""
    def kind(value: object) -> object:
        return str if isinstance(value, str) else (bool if isinstance(value, bool) else float)

    for value, node in zip(values, nodes, strict=True):
        if kind(value) is not kind(values[0]) or kind(value) is bool:
            return node.start
    return nodes[0].start if nodes else 0
