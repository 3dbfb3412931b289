"""The rule expression language: parse, resolve, evaluate in Python, compile for durable_rules.

Typical use for a rule condition::

    tree = parse("event.price < listing.unit_cost * (1 - commission_rate)")
    tree, kind = resolve(tree, symbols, parameters)   # kind must be Type.BOOL
    condition, hoisted = compile_condition(tree, prefix="r1_")
    derive = compile_derived(hoisted)                  # per event: scope["derived"] = derive(scope)
    evaluate = compile_python(tree)                    # the reference semantics
"""

from .durable_target import compile_condition, compile_derived
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
    names,
    params,
    walk,
)
from .parser import FUNCTIONS, MAX_DEPTH, MAX_LENGTH, MAX_NODES, NAMESPACES, parse
from .python_target import Evaluator, Scope, compile_python
from .resolve import resolve
from .types import Type

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "NAMESPACES",
    "Binary",
    "BoolOp",
    "Call",
    "Compare",
    "Const",
    "Evaluator",
    "ExpressionError",
    "IfExp",
    "ListLit",
    "Name",
    "Node",
    "Param",
    "Scope",
    "Type",
    "Unary",
    "compile_condition",
    "compile_derived",
    "compile_python",
    "names",
    "params",
    "parse",
    "resolve",
    "walk",
]
