"""Negation normal form: `not` pushed down to the leaves.

durable_rules has no `not` for a condition, and pushing it down is what makes Kleene
logic come out right in the engine: once every `not` sits on a leaf and has been folded
into it (`not a < b` is `a >= b`), `and`/`or` are monotone, so treating "unknown" leaves
as "no match" (which is what the engine does with missing fields) fires exactly when the
three-valued result is True.
"""

from __future__ import annotations

from .nodes import BoolOp, Compare, CompareOp, Const, Node, Unary

NEGATED: dict[CompareOp, CompareOp] = {
    "<": ">=",
    "<=": ">",
    ">": "<=",
    ">=": "<",
    "==": "!=",
    "!=": "==",
    "in": "not in",
    "not in": "in",
}


def to_nnf(node: Node, negate: bool = False) -> Node:
    """An equivalent (under Kleene logic) tree whose only `not`s wrap non-comparison leaves.

    Leaves that cannot absorb a negation (a boolean field, an if-else) keep a
    `Unary("not", leaf)` wrapper; the compiler knows how to emit or hoist those.
    """
    span = {"start": node.start, "end": node.end}
    if isinstance(node, BoolOp):
        op = node.op if not negate else ("or" if node.op == "and" else "and")
        return BoolOp(op, tuple(to_nnf(o, negate) for o in node.operands), **span)
    if isinstance(node, Unary) and node.op == "not":
        return to_nnf(node.operand, not negate)
    if not negate:
        return node
    if isinstance(node, Compare):
        return Compare(NEGATED[node.op], node.left, node.right, **span)
    if isinstance(node, Const) and isinstance(node.value, bool):
        return Const(not node.value, node.unit, **span)
    return Unary("not", node, **span)
