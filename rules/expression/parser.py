"""Text to expression tree, using Python's own parser and a strict whitelist.

The language is a small subset of Python expressions, so `ast.parse(mode="eval")` does
the parsing and this module only decides what is allowed. Nothing is ever evaluated or
compiled to bytecode: an unknown construct is an error naming the construct, never a
fallback to Python semantics.
"""

from __future__ import annotations

import ast
import math
import re
import warnings

from .errors import ExpressionError
from .nodes import Binary as BinaryNode
from .nodes import (
    BoolOp,
    Call,
    Compare,
    CompareOp,
    Const,
    IfExp,
    ListLit,
    Name,
    Node,
    Unary,
)
from .units import apply_unit, mask_units

MAX_LENGTH = 2000
MAX_NODES = 200
MAX_DEPTH = 32

NAMESPACES = ("event", "listing", "merchant", "order")
#: Allowed functions and their (minimum, maximum) argument counts; None means no maximum.
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "ceil": (1, 1),
    "floor": (1, 1),
    "max": (2, None),
    "min": (2, None),
    "round": (1, 2),
}
_FUNCTION_LIST = "abs, ceil, floor, max, min and round"
_NAMESPACE_LIST = "event., listing., merchant. or order."

_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_UNSUPPORTED_BINARY = {
    ast.Mod: ("%", ""),
    ast.FloorDiv: ("//", "; use floor(a / b)"),
    ast.Pow: ("**", ""),
    ast.MatMult: ("@", ""),
    ast.LShift: ("<<", ""),
    ast.RShift: (">>", ""),
    ast.BitOr: ("|", "; use or"),
    ast.BitAnd: ("&", "; use and"),
    ast.BitXor: ("^", ""),
}
_COMPARE: dict[type[ast.cmpop], CompareOp] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_UNSUPPORTED_NODES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda functions are not supported",
    ast.ListComp: "comprehensions are not supported",
    ast.SetComp: "comprehensions are not supported",
    ast.DictComp: "comprehensions are not supported",
    ast.GeneratorExp: "comprehensions are not supported",
    ast.NamedExpr: "assignment with := is not supported",
    ast.Subscript: "indexing with [...] is not supported",
    ast.Slice: "indexing with [...] is not supported",
    ast.Tuple: "tuples are not supported; write a list like [1, 2] after 'in'",
    ast.Set: "{...} is not supported",
    ast.Dict: "{...} is not supported",
    ast.JoinedStr: "f-strings are not supported",
    ast.FormattedValue: "f-strings are not supported",
    ast.Starred: "starred expressions are not supported",
    ast.Await: "'await' is not supported",
    ast.Yield: "'yield' is not supported",
    ast.YieldFrom: "'yield' is not supported",
}
_LINE_BREAK = re.compile(r"\r\n?")


def parse(text: str) -> Node:
    """Parse an expression, raising ExpressionError with a plain message on any problem."""
    if not isinstance(text, str):
        raise ExpressionError("an expression must be text")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is too long ({len(text)} characters; the limit is {MAX_LENGTH})",
            MAX_LENGTH,
        )
    nul = text.find("\0")
    if nul != -1:
        raise ExpressionError("the expression contains a NUL character", nul)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate, which no source text can hold
        raise ExpressionError("the expression contains an invalid character", error.start) from None
    body = _LINE_BREAK.sub(lambda m: "\n" * len(m.group()), text)  # same length, one rule
    lead = len(body) - len(body.lstrip())
    if lead == len(body):
        raise ExpressionError("the expression is empty", 0)
    return _parse_body(body, lead)


def _parse_body(body: str, lead: int) -> Node:
    """Parse `body[lead:]` (Python refuses leading blanks) with offsets into all of `body`."""
    try:
        masked = mask_units(body[lead:])
    except ExpressionError as error:
        raise error.shifted(lead) from None
    positions = _Positions(masked.text, base=lead)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for `1if x else 2`
            tree = ast.parse(masked.text, mode="eval")
    except SyntaxError as error:
        raise _syntax_error(error, positions) from None
    except (RecursionError, MemoryError, OverflowError):
        raise ExpressionError("the expression is too complex to read", lead) from None
    except ValueError:
        raise ExpressionError("the expression could not be read", lead) from None
    _check_size(tree.body, positions)
    units = {offset + lead: unit for offset, unit in masked.units.items()}
    return _Converter(body[:lead] + masked.text, units, positions).convert(tree.body)


def _syntax_error(error: SyntaxError, positions: _Positions) -> ExpressionError:
    message = (error.msg or "invalid syntax").removesuffix(". Perhaps you forgot a comma?")
    if message == "invalid syntax":
        message = "this is not a valid expression"
    elif "nested parentheses" in message:
        message = f"the expression is nested too deeply (the limit is {MAX_DEPTH} levels)"
    if not error.offset:  # Python reports a text that stops too early at column 0
        return ExpressionError("syntax error: the expression is incomplete", positions.end)
    line = error.lineno or 1
    column = error.offset - 1  # SyntaxError columns are 1-based characters
    return ExpressionError(f"syntax error: {message}", positions.from_chars(line, column))


def _check_size(root: ast.expr, positions: _Positions) -> None:
    """Refuse oversized trees before converting them, so conversion can safely recurse."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            count += 1
            if depth > MAX_DEPTH:
                raise ExpressionError(
                    f"the expression is nested too deeply (the limit is {MAX_DEPTH} levels)",
                    positions.of(node)[0],
                )
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                continue  # `event.price` is one name, not two parts
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1 if isinstance(node, ast.expr) else depth))
    if count > MAX_NODES:
        raise ExpressionError(
            f"the expression is too complex ({count} parts; the limit is {MAX_NODES})", 0
        )


def finite_number(value: int | float) -> bool:
    """Whether a number is one float64 holds: finite, and for a whole number not past its
    range (1 and 400 zeros is an int Python holds, but no float)."""
    if isinstance(value, float):
        return math.isfinite(value)
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


class _Positions:
    """Maps `ast` positions (1-based lines, UTF-8 byte columns) to character offsets."""

    def __init__(self, text: str, base: int = 0) -> None:
        self._lines = text.split("\n")
        self._starts: list[int] = []
        offset = base
        for line in self._lines:
            self._starts.append(offset)
            offset += len(line) + 1
        self._encoded: dict[int, bytes] = {}
        self.end = offset - 1 if text else base  # just past the last character

    def from_chars(self, line: int, column: int) -> int:
        index = min(max(line, 1), len(self._lines)) - 1
        return self._starts[index] + column

    def from_bytes(self, line: int, column: int) -> int:
        index = min(max(line, 1), len(self._lines)) - 1
        encoded = self._encoded.get(index)
        if encoded is None:
            encoded = self._encoded[index] = self._lines[index].encode("utf-8")
        return self._starts[index] + len(encoded[:column].decode("utf-8", errors="ignore"))

    def of(self, node: ast.AST) -> tuple[int, int]:
        start = self.from_bytes(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        end_line = getattr(node, "end_lineno", None) or getattr(node, "lineno", 1)
        end_column = getattr(node, "end_col_offset", None)
        end = start if end_column is None else self.from_bytes(end_line, end_column)
        return start, end


class _Converter:
    """Turns a size-checked `ast` tree into nodes, rejecting everything not whitelisted."""

    def __init__(self, text: str, units: dict[int, str], positions: _Positions) -> None:
        self._text = text
        self._units = units
        self._positions = positions

    def _span(self, node: ast.AST) -> dict[str, int]:
        start, end = self._positions.of(node)
        return {"start": start, "end": end}

    def _fail(self, message: str, node: ast.AST) -> ExpressionError:
        return ExpressionError(message, self._positions.of(node)[0])

    def convert(self, node: ast.expr) -> Node:
        match node:
            case ast.Constant():
                return self._constant(node)
            case ast.Name():
                return self._name(node)
            case ast.Attribute():
                return self._attribute(node)
            case ast.UnaryOp():
                return self._unary(node)
            case ast.BinOp():
                return self._binary(node)
            case ast.BoolOp():
                op = "and" if isinstance(node.op, ast.And) else "or"
                operands = tuple(self.convert(value) for value in node.values)
                return BoolOp(op, operands, **self._span(node))
            case ast.Compare():
                return self._compare(node)
            case ast.Call():
                return self._call(node)
            case ast.IfExp():
                return IfExp(
                    self.convert(node.test),
                    self.convert(node.body),
                    self.convert(node.orelse),
                    **self._span(node),
                )
            case ast.List():
                raise self._fail("a list can only follow 'in' or 'not in'", node)
        message = _UNSUPPORTED_NODES.get(type(node), "this kind of expression is not supported")
        raise self._fail(message, node)

    def _constant(self, node: ast.Constant) -> Const:
        value = node.value
        span = self._span(node)
        unit = self._units.get(span["start"])
        if isinstance(value, bool | str):
            return Const(value, None, **span)
        if value is None:
            raise self._fail(
                "there is no None value; a missing field is already treated as unknown", node
            )
        if isinstance(value, bytes):
            raise self._fail("byte strings are not supported; use 'text'", node)
        if isinstance(value, complex):
            raise self._fail("complex numbers are not supported", node)
        if not isinstance(value, int | float):
            raise self._fail("this kind of value is not supported", node)
        if not finite_number(value):  # (rules compute in float64)
            raise self._fail("this number is too large", node)
        if unit is not None:
            value = apply_unit(value, unit)
            if not finite_number(value):  # (36000...0h past float64 in seconds)
                raise self._fail("this number is too large", node)
        return Const(value, unit, **span)

    def _name(self, node: ast.Name) -> Node:
        name = node.id
        if name in ("true", "false"):
            return Const(name == "true", None, **self._span(node))
        if name.startswith("__"):
            raise self._fail("names starting with '__' are not allowed", node)
        if name in NAMESPACES:
            raise self._fail(f"'{name}' needs a field name after it, like {name}.price", node)
        if name in FUNCTIONS:
            raise self._fail(f"'{name}' is a function; call it like {name}(...)", node)
        return Name((name,), **self._span(node))

    def _attribute(self, node: ast.Attribute) -> Name:
        span = self._span(node)
        attr_offset = span["end"] - len(node.attr)
        if node.attr.startswith("__"):
            raise ExpressionError("names starting with '__' are not allowed", attr_offset)
        base = node.value
        if isinstance(base, ast.Name):
            if base.id in NAMESPACES:
                return Name((base.id, node.attr), **span)
            if base.id.startswith("__"):
                raise self._fail("names starting with '__' are not allowed", base)
            raise self._fail(
                f"unknown namespace '{base.id}'; names start with {_NAMESPACE_LIST}", base
            )
        if isinstance(base, ast.Attribute):
            raise ExpressionError(
                "a name has at most two parts, like event.price", attr_offset - 1
            )
        if isinstance(base, ast.Call):
            raise ExpressionError("attributes cannot follow a function call", attr_offset - 1)
        raise ExpressionError(
            f"attributes can only follow {_NAMESPACE_LIST.replace('.', '')}", attr_offset - 1
        )

    def _unary(self, node: ast.UnaryOp) -> Node:
        span = self._span(node)
        if isinstance(node.op, ast.Not):
            return Unary("not", self.convert(node.operand), **span)
        if isinstance(node.op, ast.USub):
            operand = self.convert(node.operand)
            if isinstance(operand, Const) and _is_number(operand.value):
                return Const(-operand.value, operand.unit, **span)  # type: ignore[operator]
            return Unary("neg", operand, **span)
        symbol = "+" if isinstance(node.op, ast.UAdd) else "~"
        raise self._fail(f"the unary {symbol} operator is not supported", node)

    def _binary(self, node: ast.BinOp) -> BinaryNode:
        left_end = self._positions.of(node.left)[1]
        right_start = self._positions.of(node.right)[0]
        op = _ARITH.get(type(node.op))
        if op is None:
            symbol, hint = _UNSUPPORTED_BINARY.get(type(node.op), ("?", ""))
            found = self._text.find(symbol, left_end, right_start)
            offset = found if found != -1 else left_end
            raise ExpressionError(f"the {symbol} operator is not supported{hint}", offset)
        return BinaryNode(
            op,  # type: ignore[arg-type]
            self.convert(node.left),
            self.convert(node.right),
            **self._span(node),
        )

    def _compare(self, node: ast.Compare) -> Node:
        if isinstance(node.left, ast.List):
            raise self._fail("a list can only follow 'in' or 'not in'", node.left)
        left = self.convert(node.left)
        comparisons: list[Node] = []
        for op_node, right_ast in zip(node.ops, node.comparators, strict=True):
            op = _COMPARE.get(type(op_node))
            if op is None:
                negated = isinstance(op_node, ast.IsNot)
                word, replacement = ("is not", "!=") if negated else ("is", "==")
                found = self._text.find("is", left.end, self._positions.of(right_ast)[0])
                raise ExpressionError(
                    f"'{word}' is not supported; use {replacement}",
                    found if found != -1 else left.end,
                )
            if op in ("in", "not in"):
                right = self._container(right_ast)
            elif isinstance(right_ast, ast.List):
                raise self._fail("a list can only follow 'in' or 'not in'", right_ast)
            else:
                right = self.convert(right_ast)
            comparisons.append(Compare(op, left, right, start=left.start, end=right.end))
            left = right
        if len(comparisons) == 1:
            return comparisons[0]
        return BoolOp("and", tuple(comparisons), **self._span(node))

    def _container(self, node: ast.expr) -> Node:
        """The right side of `in`: a list of literals, or anything that may be a parameter."""
        if isinstance(node, ast.Tuple | ast.Set):
            raise self._fail("after 'in', write a list in square brackets, like [1, 2]", node)
        if not isinstance(node, ast.List):
            return self.convert(node)
        items = []
        for item_ast in node.elts:
            item = self.convert(item_ast)
            if not isinstance(item, Const) or isinstance(item.value, bool):
                raise self._fail(
                    "list items must be numbers or text, like [1, 2] or ['a', 'b']", item_ast
                )
            items.append(item)
        return ListLit(tuple(items), **self._span(node))

    def _call(self, node: ast.Call) -> Call:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self._fail(f"only these functions can be called: {_FUNCTION_LIST}", func)
        if func.id not in FUNCTIONS:
            raise self._fail(
                f"unknown function '{func.id}'; the functions are {_FUNCTION_LIST}", func
            )
        for keyword_ast in node.keywords:
            if keyword_ast.arg is None:
                raise self._fail("starred arguments are not supported", keyword_ast)
            raise self._fail("keyword arguments are not supported", keyword_ast)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self._fail("starred arguments are not supported", arg)
        low, high = FUNCTIONS[func.id]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            raise self._fail(f"{func.id}() {_arity(low, high)}, not {count}", node)
        args = tuple(self.convert(arg) for arg in node.args)
        return Call(func.id, args, **self._span(node))


def _arity(low: int, high: int | None) -> str:
    if high is None:
        return f"needs at least {low} arguments"
    if low == high:
        return f"takes exactly {low} argument{'s' if low > 1 else ''}"
    return f"takes {low} or {high} arguments"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
