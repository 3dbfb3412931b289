"""The parser: every construct of the language, unit literals, and its error messages."""

from __future__ import annotations

import pytest

from rules.expression import (
    Binary,
    BoolOp,
    Call,
    Compare,
    Const,
    ExpressionError,
    IfExp,
    ListLit,
    Name,
    Unary,
    names,
    params,
    parse,
)


def test_dotted_names_and_parameters() -> None:
    tree = parse("event.price < listing.unit_cost * commission_rate")
    assert tree == Compare(
        "<",
        Name(("event", "price"), start=0, end=11),
        Binary(
            "*",
            Name(("listing", "unit_cost"), start=14, end=31),
            Name(("commission_rate",), start=34, end=49),
            start=14,
            end=49,
        ),
        start=0,
        end=49,
    )
    assert names(tree) == {"event.price", "listing.unit_cost"}
    assert params(tree) == {"commission_rate"}


@pytest.mark.parametrize("namespace", ["event", "merchant", "listing", "order"])
def test_every_namespace(namespace: str) -> None:
    assert parse(f"{namespace}.x") == Name((namespace, "x"), start=0, end=len(namespace) + 2)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("1.5", 1.5),
        ("'refund'", "refund"),
        ('"refund"', "refund"),
        ("true", True),
        ("false", False),
        ("True", True),
        ("False", False),
        ("-4", -4),
    ],
)
def test_literals(text: str, value: object) -> None:
    tree = parse(text)
    assert isinstance(tree, Const)
    assert tree.value == value
    assert type(tree.value) is type(value)
    assert tree.unit is None


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("36h", 129600, "h"),
        ("72h", 259200, "h"),
        ("12h", 43200, "h"),
        ("30m", 1800, "m"),
        ("45s", 45, "s"),
        ("7d", 604800, "d"),
        ("2w", 1209600, "w"),
        ("1.5h", 5400.0, "h"),
        ("5%", 0.05, "%"),
        ("7%", 0.07, "%"),
        ("100%", 1.0, "%"),
        ("-2h", -7200, "h"),
    ],
)
def test_unit_literals(text: str, value: float, unit: str) -> None:
    tree = parse(text)
    assert tree == Const(value, unit, start=0, end=len(text.rstrip("%hmsdw")))
    assert type(tree.value) is type(value)


def test_units_keep_offsets_of_what_follows() -> None:
    tree = parse("event.age > 36h and 5% < x")
    assert isinstance(tree, BoolOp)
    left, right = tree.operands
    assert isinstance(left, Compare) and left.right == Const(129600, "h", start=12, end=14)
    assert isinstance(right, Compare) and right.right == Name(("x",), start=25, end=26)


def test_percent_followed_by_an_operator_is_a_percentage() -> None:
    assert parse("5% - 1") == Binary(
        "-", Const(0.05, "%", start=0, end=1), Const(1, None, start=5, end=6), start=0, end=6
    )


def test_operators_and_precedence() -> None:
    tree = parse("-a + b * c / d - e")
    assert isinstance(tree, Binary) and tree.op == "-"
    assert isinstance(tree.left, Binary) and tree.left.op == "+"
    assert tree.left.left == Unary("neg", Name(("a",), start=1, end=2), start=0, end=2)
    product = tree.left.right
    assert isinstance(product, Binary) and product.op == "/"
    assert isinstance(product.left, Binary) and product.left.op == "*"


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_comparisons(op: str) -> None:
    tree = parse(f"a {op} 1")
    assert isinstance(tree, Compare) and tree.op == op


def test_chained_comparison_becomes_and() -> None:
    tree = parse("1 < x <= 3")
    x = Name(("x",), start=4, end=5)
    assert tree == BoolOp(
        "and",
        (
            Compare("<", Const(1, start=0, end=1), x, start=0, end=5),
            Compare("<=", x, Const(3, start=9, end=10), start=4, end=10),
        ),
        start=0,
        end=10,
    )


def test_membership_against_list_literal_and_parameter() -> None:
    tree = parse("event.kind in ['a', \"b\"]")
    assert isinstance(tree, Compare) and tree.op == "in"
    assert tree.right == ListLit(
        (Const("a", start=15, end=18), Const("b", start=20, end=23)), start=14, end=24
    )
    tree = parse("event.code not in [1, -2, 3h]")
    assert isinstance(tree, Compare) and tree.op == "not in"
    assert isinstance(tree.right, ListLit)
    assert [item.value for item in tree.right.items] == [1, -2, 10800]  # type: ignore[attr-defined]
    tree = parse("event.kind in allowed_kinds")
    assert isinstance(tree, Compare) and tree.right == Name(("allowed_kinds",), start=14, end=27)


def test_boolean_operators() -> None:
    tree = parse("not a or b and c")
    assert isinstance(tree, BoolOp) and tree.op == "or"
    assert tree.operands[0] == Unary("not", Name(("a",), start=4, end=5), start=0, end=5)
    assert isinstance(tree.operands[1], BoolOp) and tree.operands[1].op == "and"


def test_conditional() -> None:
    tree = parse("1 if flag else 2")
    assert tree == IfExp(
        Name(("flag",), start=5, end=9),
        Const(1, start=0, end=1),
        Const(2, start=15, end=16),
        start=0,
        end=16,
    )


@pytest.mark.parametrize(
    ("text", "func", "count"),
    [
        ("min(a, b)", "min", 2),
        ("max(a, b, c)", "max", 3),
        ("abs(a)", "abs", 1),
        ("round(a)", "round", 1),
        ("round(a, 2)", "round", 2),
        ("floor(a)", "floor", 1),
        ("ceil(a)", "ceil", 1),
    ],
)
def test_functions(text: str, func: str, count: int) -> None:
    tree = parse(text)
    assert isinstance(tree, Call) and tree.func == func and len(tree.args) == count


def test_offsets_count_characters_not_bytes() -> None:
    tree = parse("'prix réduit' == event.label")
    assert isinstance(tree, Compare)
    assert tree.right == Name(("event", "label"), start=17, end=28)


def test_leading_blanks_and_multiline_parentheses() -> None:
    tree = parse("  (event.a <\n   3)")
    assert tree == Compare(
        "<", Name(("event", "a"), start=3, end=10), Const(3, start=16, end=17), start=3, end=17
    )


def error_of(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    return caught.value


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("foo(1)", "unknown function 'foo'; the functions are abs, ceil, floor, max, min "
         "and round", 0),
        ("x < __import__('os')", "unknown function '__import__'", 4),
        ("__import__('os').system('ls')", "only these functions can be called", 0),
        ("min(a, b).real", "attributes cannot follow a function call", 9),
        ("event.tags[0]", "indexing with [...] is not supported", 0),
        ("x < (lambda: 1)", "lambda functions are not supported", 5),
        ("[x for x in y]", "comprehensions are not supported", 0),
        ("(y := 3) > 1", "assignment with := is not supported", 1),
        ("event.price % 2", "the % operator is not supported", 12),
        ("5%3", "the % operator is not supported", 1),
        ("2 ** 8", "the ** operator is not supported", 2),
        ("a // 2", "the // operator is not supported; use floor(a / b)", 2),
        ("a & b", "the & operator is not supported; use and", 2),
        ("event.merchant.id", "a name has at most two parts, like event.price", 14),
        ("shop.price", "unknown namespace 'shop'", 0),
        ("event.__class__", "names starting with '__' are not allowed", 6),
        ("__builtins__", "names starting with '__' are not allowed", 0),
        ("event", "'event' needs a field name after it, like event.price", 0),
        ("x is None", "'is' is not supported; use ==", 2),
        ("None", "there is no None value", 0),
        ("round(x, ndigits=2)", "keyword arguments are not supported", 9),
        ("max(*xs)", "starred arguments are not supported", 4),
        ("min(x)", "min() needs at least 2 arguments, not 1", 0),
        ("abs(x, y)", "abs() takes exactly 1 argument, not 2", 0),
        ("round(x, 1, 2)", "round() takes 1 or 2 arguments, not 3", 0),
        ("x in (1, 2)", "after 'in', write a list in square brackets", 5),
        ("[1, 2] == x", "a list can only follow 'in' or 'not in'", 0),
        ("x in [1, y]", "list items must be numbers or text", 9),
        ("x in [true]", "list items must be numbers or text", 6),
        ("36 h", "write the unit right after the number, without a space (like 36h)", 3),
        ("36hours", "unknown unit 'hours' after 36", 2),
        ("+x", "the unary + operator is not supported", 0),
        ("1j", "complex numbers are not supported", 0),
        ("f'{x}'", "f-strings are not supported", 0),
        ("{'a': 1}", "{...} is not supported", 0),
        ("1e999", "this number is too large", 0),
        ("x * 1" + "0" * 400, "this number is too large", 4),
        ("", "the expression is empty", 0),
        ("a < ", "syntax error: the expression is incomplete", 4),
        ("(a < 1", "syntax error: '(' was never closed", 0),
        ("a <\n b", "syntax error: this is not a valid expression", 3),
        ("  x ! 1", "syntax error", 4),
    ],
)
def test_error_messages_and_offsets(text: str, message: str, offset: int) -> None:
    error = error_of(text)
    assert str(error) == error.message
    assert error.message.startswith(message)
    assert error.offset == offset


def test_too_long() -> None:
    error = error_of("x + " * 500 + "x")
    assert error.message == "the expression is too long (2001 characters; the limit is 2000)"


def test_too_deep() -> None:
    deep = "(" * 40 + "x" + ")" * 40  # parentheses alone do not nest the tree
    assert parse(deep) == Name(("x",), start=40, end=41)
    error = error_of("-" * 33 + "x")
    assert error.message == "the expression is nested too deeply (the limit is 32 levels)"
    error = error_of("not " * 40 + "x")
    assert error.message == "the expression is nested too deeply (the limit is 32 levels)"
    assert error.offset == 4 * 32
    error = error_of("(" * 300 + "x" + ")" * 300)
    assert "nested too deeply" in error.message


def test_too_many_nodes() -> None:
    error = error_of("x in [" + ", ".join(["1"] * 250) + "]")
    assert error.message == "the expression is too complex (253 parts; the limit is 200)"


def test_nul_byte() -> None:
    error = error_of("event.price <\0 3")
    assert error.message == "the expression contains a NUL character"
    assert error.offset == 13


def test_lone_surrogate() -> None:
    error = error_of("event.kind == '\udcff'")
    assert error.message == "the expression contains an invalid character"
    assert error.offset == 15


def test_not_text() -> None:
    with pytest.raises(ExpressionError, match="an expression must be text"):
        parse(b"x")  # type: ignore[arg-type]


def test_pointer_underlines_the_problem() -> None:
    text = "event.price < prise"
    error = ExpressionError("unknown name 'prise'", 14)
    assert error.pointer(text) == f"{text}\n              ^ unknown name 'prise'"
