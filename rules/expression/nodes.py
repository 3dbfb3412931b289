"""The expression tree.

Nodes are frozen so one parsed rule can be shared by the Python evaluator, the
durable_rules compiler and the auditor without any of them changing it under the others.
Every node keeps the character span of the text it came from (`start`, `end`) so that
later stages (name resolution, type checking, compilation) can still point at the text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

Scalar = int | float | str | bool
ParamValue = int | float | str | bool | tuple[int | float | str, ...]

UnaryOp = Literal["neg", "not"]
ArithOp = Literal["+", "-", "*", "/"]
CompareOp = Literal["<", "<=", ">", ">=", "==", "!=", "in", "not in"]
LogicOp = Literal["and", "or"]


@dataclass(frozen=True)
class Node:
    """Base of all nodes; `start`/`end` are character offsets into the expression text."""

    start: int = field(default=0, kw_only=True)
    end: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Const(Node):
    """A literal. `unit` remembers a suffix such as "h" or "%" so tools can show it again.

    `value` is None only for constants the compiler folds internally from an unknown result
    (for example `1 / 0`); the parser never produces it.
    """

    value: Scalar | None
    unit: str | None = None


@dataclass(frozen=True)
class Name(Node):
    """A field such as ("event", "price"), or an unresolved parameter such as ("rate",)."""

    path: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Param(Node):
    """A rulebook parameter after resolution: its name is kept for reports, its value used."""

    name: str
    value: ParamValue


@dataclass(frozen=True)
class Unary(Node):
    op: UnaryOp
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: ArithOp
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    op: CompareOp
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp(Node):
    op: LogicOp
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class IfExp(Node):
    test: Node
    body: Node
    orelse: Node


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of `node`, left to right."""
    match node:
        case Unary(operand=operand):
            return (operand,)
        case Binary(left=left, right=right) | Compare(left=left, right=right):
            return (left, right)
        case BoolOp(operands=operands):
            return operands
        case Call(args=args):
            return args
        case ListLit(items=items):
            return items
        case IfExp(test=test, body=body, orelse=orelse):
            return (test, body, orelse)
        case _:
            return ()


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children (iterative, so depth is no issue)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def names(node: Node) -> set[str]:
    """The dotted field names the expression reads, e.g. {"event.price"}."""
    return {n.dotted for n in walk(node) if isinstance(n, Name) and len(n.path) > 1}


def params(node: Node) -> set[str]:
    """The rulebook parameters the expression uses, resolved or not."""
    found: set[str] = set()
    for n in walk(node):
        if isinstance(n, Name) and len(n.path) == 1:
            found.add(n.path[0])
        elif isinstance(n, Param):
            found.add(n.name)
    return found


def is_constant(node: Node) -> bool:
    """True when the value does not depend on any event data (parameters count as fixed)."""
    return not any(isinstance(n, Name) for n in walk(node))
