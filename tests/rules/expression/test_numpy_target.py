"""The numpy target agrees with the Python evaluator, row by row, unknowns included.

Random well-typed expressions (conditions, numbers and text) are parsed, resolved and compiled
both ways; random scopes of a few rows, with fields unknown at random and columns given in every
form the numpy target accepts, are evaluated row by row in Python and all at once in numpy. The
expressions of every rule in both bundled rulebook sets get the same treatment.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.expression import Type, compile_python, parse, resolve
from rules.expression.errors import ExpressionError
from rules.expression.numpy_target import (
    Column,
    Columns,
    compile_numpy,
    shared_subexpressions,
    stack_scopes,
    structural_key,
)
from rules.loader import load_set
from rules.rulebook import CompiledExpr
from rules.vocabulary import EVENT_FIELDS, STATE_FIELDS

BOOKS = Path(__file__).resolve().parents[3] / "rules" / "books"

NUMBER_FIELDS = ["event.price", "event.qty", "listing.unit_cost", "merchant.rating"]
STRING_FIELDS = ["event.kind", "order.status"]
BOOL_FIELDS = ["event.flagged", "merchant.verified"]
SYMBOLS = {
    **dict.fromkeys(NUMBER_FIELDS, Type.NUMBER),
    **dict.fromkeys(STRING_FIELDS, Type.STRING),
    **dict.fromkeys(BOOL_FIELDS, Type.BOOL),
}
PARAMETERS = {
    "rate": 0.25,
    "cap": 10,
    "strict": True,
    "region": "a",
    "kinds": ["a", "b"],
    "codes": [1, 2, 2.5],
    "nothing": [],
}

# Magnitudes stay small enough that no result leaves the range where float64 holds Python's
# integers exactly (2**53): that is the one documented way the two targets may differ.
NUMBER_LITERALS = ["0", "1", "2", "3", "-1", "0.5", "1.25", "-2.5", "10", "0.1", "25%", "2.675",
                   "0.125", "1m"]
STRING_LITERALS = ["'a'", "'b'", "''", "'é'"]
NUMBER_VALUES = st.one_of(
    st.integers(-3, 12),
    st.sampled_from([0.5, -0.5, 1.25, 2.5, 0.1, 0.2, 0.3, 2.675, 0.125, 60.0, -0.0]),
)
STRING_VALUES = st.sampled_from(["a", "b", "", "é"])


def fmt(template: str, *parts: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map(lambda values: template.format(*values))


def listed(parts: st.SearchStrategy[str], low: int = 2) -> st.SearchStrategy[str]:
    return st.lists(parts, min_size=low, max_size=3).map(", ".join)


def number(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from([*NUMBER_LITERALS, *NUMBER_FIELDS, "rate", "cap"])
    if depth <= 0:
        return leaves
    smaller = st.deferred(lambda: number(depth - 1))
    return st.one_of(
        leaves,
        fmt("({} {} {})", smaller, st.sampled_from("+-*/"), smaller),
        fmt("-({})", smaller),
        fmt("{}({})", st.sampled_from(["min", "max"]), listed(smaller)),
        fmt("{}({})", st.sampled_from(["abs", "round", "floor", "ceil"]), smaller),
        fmt("round({}, {})", smaller, st.sampled_from(["0", "1", "2", "-1"])),
        fmt("({} if {} else {})", smaller, boolean(depth - 1), smaller),
    )


def text(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from([*STRING_LITERALS, *STRING_FIELDS, "region"])
    if depth <= 0:
        return leaves
    return st.one_of(leaves, fmt("({} if {} else {})", text(depth - 1), boolean(depth - 1),
                                 text(depth - 1)))


def boolean(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(["true", "false", "strict", *BOOL_FIELDS])
    if depth <= 0:
        return leaves
    smaller = st.deferred(lambda: boolean(depth - 1))
    num = number(depth - 1)
    return st.one_of(
        leaves,
        fmt("({} {} {})", num, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), num),
        fmt("({} {} {})", text(depth - 1), st.sampled_from(["==", "!="]), text(depth - 1)),
        fmt("({} {} {})", smaller, st.sampled_from(["==", "!="]), smaller),
        fmt("({} {} [{}])", text(depth - 1), st.sampled_from(["in", "not in"]),
            listed(st.sampled_from(STRING_LITERALS), low=1)),
        fmt("({} {} {})", num, st.sampled_from(["in", "not in"]),
            st.sampled_from(["codes", "nothing", "[1, 2.5]", "[0]"])),
        fmt("({} {} {})", text(depth - 1), st.sampled_from(["in", "not in"]),
            st.sampled_from(["kinds", "nothing"])),
        fmt("(not {})", smaller),
        fmt("({})", st.lists(smaller, min_size=2, max_size=3).map(" and ".join)),
        fmt("({})", st.lists(smaller, min_size=2, max_size=3).map(" or ".join)),
        fmt("({} if {} else {})", smaller, smaller, smaller),
    )


EXPRESSIONS = st.one_of(boolean(3), number(3), text(2))


def value_for(kind: Type) -> st.SearchStrategy[Any]:
    known = {Type.NUMBER: NUMBER_VALUES, Type.STRING: STRING_VALUES,
             Type.BOOL: st.booleans()}[kind]
    return st.one_of(st.none(), known)


def _known(value: Any) -> bool:
    return value is not None


@st.composite
def rows_and_columns(
    draw: st.DrawFn, symbols: dict[str, Type]
) -> tuple[list[dict[str, dict[str, Any] | None]], dict[str, Any], int]:
    """Per-row Python scopes and the same data as a columnar scope in a random column form."""
    n = draw(st.integers(1, 6))
    rows: list[dict[str, dict[str, Any] | None]] = [{} for _ in range(n)]
    columnar: dict[str, Any] = {}
    absent = draw(st.sampled_from([None, "order", "listing"]))
    for dotted, kind in sorted(symbols.items()):
        namespace, field = dotted.split(".")
        if namespace == absent:
            continue  # the whole namespace is missing (say, an event without an order)
        form = draw(st.sampled_from(["array", "masked", "column", "objects", "scalar", "none",
                                     "missing"]))
        if form == "missing":
            continue
        if form in ("scalar", "none"):
            value = None if form == "none" else draw(value_for(kind).filter(_known))
            values = [value] * n
            columnar.setdefault(namespace, {})[field] = value
        else:
            values = [draw(value_for(kind)) for _ in range(n)]
            columnar.setdefault(namespace, {})[field] = as_form(form, kind, values)
        for row, value in zip(rows, values, strict=True):
            row.setdefault(namespace, {})[field] = value  # type: ignore[union-attr]
    if absent is not None and draw(st.booleans()):
        columnar[absent] = None
        for row in rows:
            row[absent] = None
    return rows, columnar, n


def as_form(form: str, kind: Type, values: list[Any]) -> Any:
    known = np.array([v is not None for v in values])
    if kind is Type.NUMBER:
        filled = np.array([np.nan if v is None else float(v) for v in values])
        if form == "array":
            return filled  # NaN is unknown
    elif kind is Type.BOOL:
        filled = np.array([bool(v) for v in values])
    else:
        filled = np.array(["" if v is None else v for v in values])
    if form == "masked":
        return np.ma.MaskedArray(filled, mask=~known)
    if form == "column":
        return Column(filled, known)
    return np.array(values, dtype=object)


def same(expected: Any, got: Any) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(expected, bool) and isinstance(got, bool) and expected == got
    if isinstance(expected, str) or isinstance(got, str):
        return expected == got
    if math.isnan(expected):
        return math.isnan(got)
    # Python's integer 0 has no sign where float64 has -0.0; no rule can tell them apart
    # (they compare equal and dividing by either is unknown), so 0 == -0.0 here too.
    return expected == got


def check_rows(node: Any, rows: list[dict[str, Any]], columnar: dict[str, Any], n: int,
               label: str) -> None:
    reference = compile_python(node)
    expected = [reference(row) for row in rows]
    got = compile_numpy(node)(columnar, n).to_list()
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        assert same(e, g), f"{label}: row {i} {rows[i]}: python {e!r}, numpy {g!r}"
    # Computing repeated sub-expressions once must not change a thing.
    memoised = compile_numpy(node, shared_subexpressions([node]))(Columns(columnar, n), n)
    assert all(same(a, b) for a, b in zip(got, memoised.to_list(), strict=True)), label


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=EXPRESSIONS, data=rows_and_columns(SYMBOLS))
def test_random_expressions_agree_row_by_row(source: str, data: Any) -> None:
    rows, columnar, n = data
    node, _ = resolve(parse(source), SYMBOLS, PARAMETERS)
    check_rows(node, rows, columnar, n, source)


def _bundled_expressions() -> list[tuple[str, CompiledExpr, dict[str, Type]]]:
    out = []
    for set_dir in ("lowprice-2024", "reformed-2025"):
        for family, rb in load_set(BOOKS / set_dir).rulebooks.items():
            for rule in rb.rules:
                exprs = [rule.when, *(e for c in rule.then for e in c.expressions.values())]
                if rule.deadline is not None:
                    d = rule.deadline
                    exprs += [d.after, *([d.when] if d.when else []),
                              *(e for c in d.then for e in c.expressions.values())]
                for i, expr in enumerate(exprs):
                    out.append((f"{set_dir}/{family}/{rule.id}#{i}", expr, _symbols(expr)))
    return out


def _symbols(expr: CompiledExpr) -> dict[str, Type]:
    kinds: dict[str, Type] = {}
    for dotted in expr.names:
        namespace, field = dotted.split(".")
        if namespace == "event":
            found = {f.get(field) for f in EVENT_FIELDS.values()} - {None}
            kinds[dotted] = Type.NUMBER if field == "time" else found.pop()
        else:
            kinds[dotted] = STATE_FIELDS[namespace][field]
    return kinds


BUNDLED = _bundled_expressions()


def test_the_bundled_sets_have_expressions_to_check() -> None:
    assert len(BUNDLED) > 40


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bundled_rule_expressions_agree_row_by_row(data: st.DataObject) -> None:
    label, expr, symbols = data.draw(st.sampled_from(BUNDLED))
    rows, columnar, n = data.draw(rows_and_columns(symbols))
    check_rows(expr.node, rows, columnar, n, label)


# -- the semantics, case by case ---------------------------------------------------------------
def evaluate(source: str, scope: dict[str, Any], n: int) -> list[Any]:
    node, _ = resolve(parse(source), SYMBOLS, PARAMETERS)
    return compile_numpy(node)(scope, n).to_list()


PRICE_FLAG = {"event": {"price": np.array([1.0, np.nan, 5.0, np.nan]),
                        "flagged": Column(np.array([True, False, False, True]),
                                          np.array([True, True, False, False]))}}


def test_kleene_and_is_false_once_any_side_is_known_false() -> None:
    # price < 3 is: True, unknown, False, unknown; flagged is: True, False, unknown, unknown.
    assert evaluate("event.price < 3 and event.flagged", PRICE_FLAG, 4) == \
        [True, False, False, None]


def test_kleene_or_is_true_once_any_side_is_known_true() -> None:
    assert evaluate("event.price < 3 or event.flagged", PRICE_FLAG, 4) == \
        [True, None, None, None]
    assert evaluate("event.price > 3 or event.flagged", PRICE_FLAG, 4) == \
        [True, None, True, None]


def test_not_and_if_keep_unknown_unknown() -> None:
    assert evaluate("not event.flagged", PRICE_FLAG, 4) == [False, True, None, None]
    assert evaluate("(1 if event.flagged else 2) + 0", PRICE_FLAG, 4) == [1.0, 2.0, None, None]


def test_division_by_zero_is_unknown() -> None:
    scope = {"event": {"price": np.array([6.0, 6.0]), "qty": np.array([2.0, 0.0])}}
    assert evaluate("event.price / event.qty", scope, 2) == [3.0, None]


def test_ceil_floor_round_of_infinity_are_unknown_but_round_with_digits_keeps_it() -> None:
    scope = {"event": {"price": np.array([np.inf, 2.5, 3.5, -2.5])}}
    assert evaluate("ceil(event.price)", scope, 4) == [None, 3.0, 4.0, -2.0]
    assert evaluate("floor(event.price)", scope, 4) == [None, 2.0, 3.0, -3.0]
    assert evaluate("round(event.price)", scope, 4) == [None, 2.0, 4.0, -2.0]
    assert evaluate("round(event.price, 1)", scope, 4) == [math.inf, 2.5, 3.5, -2.5]


def test_round_with_digits_is_correctly_rounded_like_python() -> None:
    values = [2.675, 0.125, 1.005, 0.285, 2.5, 25.0, 35.0, 1e20 + 0.5, -0.0049, 123.456]
    scope = {"event": {"price": np.array(values)}}
    for digits in (0, 1, 2, -1, 3):
        got = evaluate(f"round(event.price, {digits})", scope, len(values))
        assert got == [round(v, digits) for v in values], digits


def test_max_and_min_follow_python_on_nan() -> None:
    # inf - inf is a known NaN in Python; max keeps its first argument unless a later is greater.
    scope = {"event": {"price": np.array([np.inf])}}
    nan_first = evaluate("max(event.price - event.price, 1)", scope, 1)[0]
    assert math.isnan(nan_first)
    assert evaluate("max(1, event.price - event.price)", scope, 1) == [1.0]
    assert evaluate("min(3, 1, 2)", {}, 1) == [1.0]


def test_membership_over_text_and_numbers() -> None:
    scope = {"event": {"kind": Column(np.array(["a", "c", ""]), np.array([True, True, False])),
                       "qty": np.array([2.5, 3.0, np.nan])}}
    assert evaluate("event.kind in kinds", scope, 3) == [True, False, None]
    assert evaluate("event.kind not in ['c']", scope, 3) == [True, False, None]
    assert evaluate("event.qty in codes", scope, 3) == [True, False, None]
    assert evaluate("event.qty in nothing", scope, 3) == [False, False, None]


def test_scalars_broadcast_and_missing_data_is_unknown_everywhere() -> None:
    assert evaluate("event.price * 2", {"event": {"price": 4}}, 3) == [8.0, 8.0, 8.0]
    assert evaluate("event.price * 2", {"event": {"price": None}}, 2) == [None, None]
    assert evaluate("event.price * 2", {"event": None}, 2) == [None, None]
    assert evaluate("order.status == 'a'", {}, 2) == [None, None]
    assert evaluate("order.status != 'a'", {"order": {"status": np.array(["a", "b"])}}, 2) == \
        [False, True]


def test_a_column_of_the_wrong_length_is_named() -> None:
    with pytest.raises(ValueError, match=r"event\.price has 2 rows, but the scope has 3"):
        evaluate("event.price > 1", {"event": {"price": np.array([1.0, 2.0])}}, 3)


def test_an_unresolved_name_is_refused() -> None:
    with pytest.raises(ExpressionError, match="not resolved"):
        compile_numpy(parse("rate > 1"))


def test_columns_read_each_column_once() -> None:
    columns = Columns({"event": {"price": np.array([1.0, np.nan])}}, 2)
    first = columns.read("event", "price")
    assert columns.read("event", "price") is first
    assert first[1].tolist() == [True, False]


def test_stack_scopes_builds_typed_columns_from_engine_scopes() -> None:
    scopes = [
        {"event": {"price": 3, "kind": "a"}, "order": None},
        {"event": {"price": 2.5, "flag": True}, "order": {"shipped": False}},
    ]
    stacked = stack_scopes(scopes)
    assert stacked["event"]["price"].values.tolist() == [3.0, 2.5]
    assert stacked["event"]["kind"].to_list() == ["a", None]
    assert stacked["event"]["flag"].to_list() == [None, True]
    assert stacked["order"]["shipped"].to_list() == [None, False]
    only = stack_scopes(scopes, ["event.price"])
    assert list(only) == ["event"] and list(only["event"]) == ["price"]


def test_repeated_sub_expressions_are_computed_once_per_scope() -> None:
    condition, _ = resolve(parse("event.price * rate < 3 and event.flagged"), SYMBOLS, PARAMETERS)
    argument, _ = resolve(parse("max(event.price * rate, 1)"), SYMBOLS, PARAMETERS)
    shared = shared_subexpressions([condition, argument])
    product = structural_key(argument.args[0])  # type: ignore[attr-defined]
    assert shared == {product}
    columns = Columns({"event": {"price": np.array([4.0, 20.0]), "flagged": True}}, 2)
    assert compile_numpy(condition, shared)(columns, 2).to_list() == [True, False]
    assert product in columns.memo
    assert compile_numpy(argument, shared)(columns, 2).to_list() == [1.0, 5.0]


def test_structural_keys_tell_numbers_from_flags_and_ignore_positions() -> None:
    one, flag = parse("1"), parse("true")
    assert structural_key(one) != structural_key(flag)
    assert structural_key(parse("event.price + 1")) == structural_key(parse("event.price  +  1"))
    assert structural_key(parse("1")) != structural_key(parse("1.0"))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_gap_anywhere_in_a_number_column_is_unknown_and_infinities_are_known(dtype) -> None:
    for gaps in ([], [0], [4], [2, 3], [0, 1, 2, 3, 4]):
        price = np.array([1.0, np.inf, -np.inf, 9.9, 0.0], dtype=dtype)
        price[gaps] = np.nan
        got = evaluate("event.price >= 0", {"event": {"price": price}}, 5)
        expected = [True, True, False, True, True]
        assert got == [None if i in gaps else e for i, e in enumerate(expected)], gaps
    # A float32 9.9 is widened exactly: it stays below the 9.9 constant.
    assert evaluate("event.price < 9.9", {"event": {"price": np.array([9.9], np.float32)}},
                    1) == [True]
    assert evaluate("event.price + 1", {"event": {"price": np.array([])}}, 0) == []


def test_flag_and_integer_data_compare_with_numbers_as_python_does() -> None:
    # Data of another type than the field's (flags and integers in number fields).
    scope = {"event": {"price": np.array([True, False]), "qty": np.array([1, 1])},
             "merchant": {"verified": np.array([True, False])}}
    assert evaluate("event.price == event.qty", scope, 2) == [True, False]
    assert evaluate("event.price < event.qty", scope, 2) == [False, True]
    assert evaluate("event.qty > 0 and merchant.verified", scope, 2) == [True, False]
    assert evaluate("event.qty in codes", {"event": {"qty": 2.5}}, 2) == [True, True]
    assert evaluate("event.kind in kinds", {"event": {"kind": "b"}}, 1) == [True]
    assert evaluate("event.kind not in kinds", {"event": {"kind": "z"}}, 1) == [True]


def test_evaluators_say_when_their_values_are_theirs_to_hand_on() -> None:
    def compiled(source: str, shared: frozenset = frozenset()) -> Any:
        node, _ = resolve(parse(source), SYMBOLS, PARAMETERS)
        return compile_numpy(node, shared)

    for source in ("event.price * rate", "-event.price", "event.price < 3",
                   "event.flagged and merchant.verified", "not event.flagged",
                   "event.kind in kinds"):
        assert compiled(source).fresh, source
    for source in ("event.price", "rate", "event.price if event.flagged "
                   "else 1", "event.flagged"):
        assert not compiled(source).fresh, source
    node, _ = resolve(parse("event.price * rate"), SYMBOLS, PARAMETERS)
    shared = frozenset({structural_key(node)})
    assert not compiled("event.price * rate", shared).fresh  # others on the scope get it too
    # Whatever `fresh` says, a number column comes back as an array of the caller's own.
    price = np.array([1.0, 2.0])
    for source in ("event.price", "event.price * 1"):
        column = compiled(source)({"event": {"price": price}}, 2)
        out = column.to_float()
        assert out.tolist() == [1.0, 2.0] and not np.shares_memory(out, price)


def test_integers_beyond_int64_are_read_as_python_compares_them() -> None:
    # One value or a column, beyond int64 (an object array in numpy) and beyond the largest
    # float (an infinity of its sign: it compares with every float as the integer does).
    assert evaluate("event.qty > 1e20", {"event": {"qty": 2 ** 70}}, 2) == [True, True]
    assert evaluate("event.qty < -1e20", {"event": {"qty": -(2 ** 70)}}, 1) == [True]
    assert evaluate("event.qty > 1e308", {"event": {"qty": 10 ** 400}}, 1) == [True]
    assert evaluate("event.qty < -1e308", {"event": {"qty": -(10 ** 400)}}, 1) == [True]
    qty = np.array([2 ** 70, None, 10 ** 400, 3], dtype=object)
    assert evaluate("event.qty > 4", {"event": {"qty": qty}}, 4) == [True, None, True, False]
