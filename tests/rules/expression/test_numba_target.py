"""The numba target agrees with the Python evaluator row by row, and with the numpy target.

The random expressions, scopes and bundled rule expressions of the numpy target's test are
reused: the two vectorised targets are held to the same reference in the same way. Blocks are
kept small here (a few rows) so that every test also crosses block boundaries.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from rules.expression import Type, compile_python, parse, resolve, walk
from rules.expression.errors import ExpressionError
from rules.expression.numba_target import (
    ADD,
    MUL,
    FirstHit,
    Vocabulary,
    compile_numba,
    compile_program,
    evaluate_range,
    first_hit_block,
    link_programs,
    run_block,
)
from rules.expression.numpy_target import Column, compile_numpy, stack_scopes
from rules.loader import load_set
from tests.rules.expression.test_numpy_target import (
    BOOKS,
    BUNDLED,
    EXPRESSIONS,
    PARAMETERS,
    SYMBOLS,
    _symbols,
    boolean,
    rows_and_columns,
    same,
)

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def check_rows(node: Any, rows: list[dict[str, Any]], columnar: dict[str, Any], n: int,
               label: str, block: int = 4) -> None:
    reference = compile_python(node)
    expected = [reference(row) for row in rows]
    got = compile_numba(node, block=block).to_list(columnar, n)
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        assert same(e, g), f"{label}: row {i} {rows[i]}: python {e!r}, numba {g!r}"


@SETTINGS
@given(source=EXPRESSIONS, data=rows_and_columns(SYMBOLS))
def test_random_expressions_agree_row_by_row(source: str, data: Any) -> None:
    rows, columnar, n = data
    node, _ = resolve(parse(source), SYMBOLS, PARAMETERS)
    check_rows(node, rows, columnar, n, source, block=3)


@SETTINGS
@given(data=st.data())
def test_bundled_rule_expressions_agree_row_by_row(data: st.DataObject) -> None:
    label, expr, symbols = data.draw(st.sampled_from(BUNDLED))
    rows, columnar, n = data.draw(rows_and_columns(symbols))
    check_rows(expr.node, rows, columnar, n, label)


# -- the bundled rulebooks against the numpy target, on a larger generated scope -------------
def generated_scope(symbols: dict[str, Type], texts: list[str], n: int,
                    seed: int) -> dict[str, dict[str, Any]]:
    """A columnar scope of n rows: about one value in six unknown, text drawn from `texts`."""
    rng = np.random.default_rng(seed)
    scope: dict[str, dict[str, Any]] = {}
    for dotted, kind in sorted(symbols.items()):
        namespace, field = dotted.split(".")
        known = rng.random(n) > 1 / 6
        if kind is Type.NUMBER:
            pool = np.array([0.0, 1.0, 2.5, -1.0, 0.05, 3.0, 10.0, 100.0, 0.5, 7.25, 2.675])
            values = np.where(rng.random(n) < 0.5, rng.choice(pool, n),
                              np.round(rng.normal(5, 20, n), 2))
            scope.setdefault(namespace, {})[field] = np.where(known, values, np.nan)
        elif kind is Type.BOOL:
            scope.setdefault(namespace, {})[field] = Column(rng.random(n) < 0.5, known)
        else:
            values = np.array(texts)[rng.integers(0, len(texts), n)]
            scope.setdefault(namespace, {})[field] = Column(values, known)
    return scope


def text_literals(node: Any) -> list[str]:
    """The text constants of a tree (so generated text columns hit them), plus one that no
    rule names."""
    found = {"zzz"}
    for sub in walk(node):
        value = getattr(sub, "value", None)  # a Const or a Param, maybe a list parameter
        found.update(v for v in (value if isinstance(value, tuple) else (value,))
                     if isinstance(v, str))
    return sorted(found)


def test_every_bundled_expression_compiles_and_agrees_with_numpy() -> None:
    n = 3000
    for k, (label, expr, symbols) in enumerate(BUNDLED):
        scope = generated_scope(symbols, text_literals(expr.node), n, seed=k)
        expected = compile_numpy(expr.node)(scope, n).to_list()
        got = compile_numba(expr.node, block=256).to_list(scope, n)
        bad = [i for i, (e, g) in enumerate(zip(expected, got, strict=True)) if not same(e, g)]
        assert not bad, f"{label} ({expr.text}): row {bad[0]}: numpy {expected[bad[0]]!r}, " \
                        f"numba {got[bad[0]]!r}"


# -- the FIRST policy -------------------------------------------------------------------------
def first_hit_reference(conditions: list[Any], rows: list[dict[str, Any]]) -> list[int]:
    evaluators = [compile_python(c) for c in conditions]
    out = []
    for row in rows:
        out.append(next((j for j, ev in enumerate(evaluators) if ev(row) is True), -1))
    return out


@SETTINGS
@given(sources=st.lists(boolean(2), min_size=1, max_size=4), data=rows_and_columns(SYMBOLS))
def test_first_hit_agrees_with_a_python_loop(sources: list[str], data: Any) -> None:
    rows, columnar, n = data
    conditions = [resolve(parse(s), SYMBOLS, PARAMETERS)[0] for s in sources]
    got = FirstHit(conditions, block=4)(columnar, n).tolist()
    assert got == first_hit_reference(conditions, rows), sources


def bundled_rows(symbols: dict[str, Type], texts: list[str], n: int,
                 seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for _ in range(n):
        row: dict[str, Any] = {}
        for dotted, kind in symbols.items():
            namespace, field = dotted.split(".")
            if rnd.random() < 0.15:
                value: Any = None
            elif kind is Type.NUMBER:
                value = rnd.choice([0, 1, 2.5, -1.0, 0.05, 3, 10, 100, 0.5, 7.25,
                                    round(rnd.gauss(5, 20), 2)])
            elif kind is Type.BOOL:
                value = rnd.random() < 0.5
            else:
                value = rnd.choice(texts)
            row.setdefault(namespace, {})[field] = value
        rows.append(row)
    return rows


def test_first_hit_over_each_bundled_event_type() -> None:
    checked = 0
    for set_dir in ("lowprice-2024", "reformed-2025"):
        for family, rb in load_set(BOOKS / set_dir).rulebooks.items():
            for event_type in rb.event_types:
                rules = [r for r in rb.rules if event_type in r.on]
                conditions = [r.when.node for r in rules]
                symbols: dict[str, Type] = {}
                texts: set[str] = {"zzz"}
                for r in rules:
                    symbols.update(_symbols(r.when))
                    texts.update(text_literals(r.when.node))
                rows = bundled_rows(symbols, sorted(texts), 400, seed=checked)
                columnar = stack_scopes(rows, symbols)
                got = FirstHit(conditions, block=64)(columnar, len(rows)).tolist()
                expected = [next((j for j, r in enumerate(rules) if r.when.evaluate(row) is True),
                                 -1) for row in rows]
                assert got == expected, f"{set_dir}/{family} on {event_type}"
                checked += 1
    assert checked > 5


# -- the semantics, case by case ---------------------------------------------------------------
def evaluate(source: str, scope: dict[str, Any], n: int, block: int = 2) -> list[Any]:
    node, _ = resolve(parse(source), SYMBOLS, PARAMETERS)
    return compile_numba(node, block=block).to_list(scope, n)


def python(source: str, row: dict[str, Any]) -> Any:
    node, _ = resolve(parse(source), SYMBOLS, PARAMETERS)
    return compile_python(node)(row)


TRUTH = [True, False, None]


@pytest.mark.parametrize("source", ["event.flagged and merchant.verified",
                                    "event.flagged or merchant.verified",
                                    "not event.flagged",
                                    "event.flagged == merchant.verified",
                                    "(1 if event.flagged else 2) + 0",
                                    "(event.flagged and merchant.verified) or not event.flagged"])
def test_kleene_truth_tables(source: str) -> None:
    pairs = [(a, b) for a in TRUTH for b in TRUTH]
    scope = {"event": {"flagged": np.array([a for a, _ in pairs], dtype=object)},
             "merchant": {"verified": np.array([b for _, b in pairs], dtype=object)}}
    expected = [python(source, {"event": {"flagged": a}, "merchant": {"verified": b}})
                for a, b in pairs]
    assert evaluate(source, scope, len(pairs)) == expected


def test_division_by_zero_is_unknown() -> None:
    scope = {"event": {"price": np.array([6.0, 6.0, 0.0, np.nan, -6.0]),
                       "qty": np.array([2.0, 0.0, 0.0, 0.0, -0.0])}}
    assert evaluate("event.price / event.qty", scope, 5) == [3.0, None, None, None, None]
    assert evaluate("1 / 0 > 1 or event.price > 5", scope, 5) == [True, True, None, None, None]


def test_infinities_are_numbers_but_a_computed_nan_is_unknown() -> None:
    scope = {"event": {"price": np.array([np.inf, -np.inf, 1e308])}}
    assert evaluate("event.price > 1", scope, 3) == [True, False, True]
    assert evaluate("event.price * 10", scope, 3) == [math.inf, -math.inf, math.inf]
    assert evaluate("ceil(event.price)", scope, 3) == [None, None, 1e308]
    assert evaluate("floor(event.price)", scope, 3) == [None, None, 1e308]
    assert evaluate("round(event.price)", scope, 3) == [None, None, 1e308]
    assert evaluate("round(event.price, 1)", scope, 3) == [math.inf, -math.inf, 1e308]
    # The documented difference: Python (and numpy_target) keep inf - inf as a known NaN.
    assert evaluate("event.price - event.price", scope, 3) == [None, None, 0.0]
    assert math.isnan(python("event.price - event.price", {"event": {"price": math.inf}}))


def test_round_is_half_to_even() -> None:
    values = [0.5, 1.5, 2.5, -0.5, -2.5, 3.4999999999999996, 4503599627370497.0, -0.0]
    scope = {"event": {"price": np.array(values)}}
    assert evaluate("round(event.price)", scope, len(values)) == [round(v) for v in values]


def awkward_numbers(seed: int) -> list[float]:
    """Numbers near half-way points of decimal rounding, and of every magnitude."""
    rnd = random.Random(seed)
    out = [2.675, 0.125, 1.005, 0.285, 2.5, 25.0, 35.0, 1e20 + 0.5, -0.0049, 123.456, 0.0,
           -0.0, 5e-324, 1e-300, 1.7976931348623157e308, 2.0**53 + 2, 2.0**60 + 2**9,
           4503599627370495.5, 0.49999999999999994, 1e15 + 0.5, 1e22, 5e21, 15.0, 150.0]
    for _ in range(300):
        digits = rnd.randint(0, 8)
        k = rnd.randint(-10**9, 10**9)
        half = (k + 0.5) / 10**digits
        out += [half, math.nextafter(half, math.inf), math.nextafter(half, -math.inf)]
        out.append(rnd.uniform(-1e6, 1e6))
        out.append(math.ldexp(rnd.random(), rnd.randint(-60, 80)) * rnd.choice([1, -1]))
    return out


@pytest.mark.parametrize("digits", list(range(-15, 23)))
def test_round_with_digits_is_correctly_rounded_like_python(digits: int) -> None:
    values = awkward_numbers(digits)
    scope = {"event": {"price": np.array(values)}}
    got = evaluate(f"round(event.price, {digits})", scope, len(values), block=64)
    expected = [round(v, digits) for v in values]
    bad = [(v, e, g) for v, e, g in zip(values, expected, got, strict=True)
           if e != g or math.copysign(1, e) != math.copysign(1, g)]
    assert not bad, bad[:5]


def test_round_digits_beyond_the_supported_range_are_refused() -> None:
    node, _ = resolve(parse("round(event.price, 23)"), SYMBOLS, PARAMETERS)
    with pytest.raises(ExpressionError, match="numba target"):
        compile_numba(node)


def test_max_and_min_with_unknowns_and_ties() -> None:
    scope = {"event": {"price": np.array([1.0, np.nan, 3.0, -0.0]),
                       "qty": np.array([2.0, 1.0, np.nan, 0.0])}}
    assert evaluate("max(event.price, event.qty, 0)", scope, 4) == [2.0, None, None, 0.0]
    assert evaluate("min(event.price, event.qty)", scope, 4) == [1.0, None, None, 0.0]
    assert math.copysign(1, evaluate("max(event.price, event.qty)", scope, 4)[3]) == -1
    assert evaluate("min(3, 1, 2)", {}, 3) == [1.0, 1.0, 1.0]
    assert evaluate("min(event.price, 1)", {"event": {"price": np.array([])}}, 0) == []


def test_text_equality_and_membership() -> None:
    kind = Column(np.array(["a", "c", "", "é", "b"]), np.array([True, True, False, True, True]))
    scope = {"event": {"kind": kind}, "order": {"status": np.array(["a", "a", "a", "é", "x"])}}
    assert evaluate("event.kind in kinds", scope, 5) == [True, False, None, False, True]
    assert evaluate("event.kind not in ['c', 'é']", scope, 5) == [True, False, None, False, True]
    assert evaluate("event.kind in nothing", scope, 5) == [False, False, None, False, False]
    assert evaluate("event.kind == order.status", scope, 5) == [True, False, None, True, False]
    assert evaluate("event.kind != 'c'", scope, 5) == [True, False, None, True, True]
    scope["event"]["qty"] = np.array([2.0, 0.0, 2.0, 0.0, np.nan])
    assert evaluate("(event.kind if event.qty > 1 else 'z')", scope, 5) == \
        ["a", "z", None, "z", None]
    assert evaluate("order.status == 'a'", {}, 2) == [None, None]


def test_numbers_in_lists_compare_as_python_does() -> None:
    scope = {"event": {"qty": np.array([2.5, 2.0, 3.0, np.nan, 1.0])}}
    assert evaluate("event.qty in codes", scope, 5) == [True, True, False, None, True]
    assert evaluate("event.qty not in [1, 2.5]", scope, 5) == [False, True, True, None, False]


def test_nested_if_with_unknown_tests() -> None:
    source = ("(1 if event.flagged else (2 if merchant.verified else 3)) "
              "if event.price > 1 else -1")
    rows = [{"event": {"flagged": f, "price": p}, "merchant": {"verified": v}}
            for f in TRUTH for v in TRUTH for p in (0.0, 2.0, None)]
    scope = stack_scopes(rows, ["event.flagged", "event.price", "merchant.verified"])
    assert evaluate(source, scope, len(rows)) == [python(source, row) for row in rows]


def test_constant_sub_expressions_are_folded_by_python() -> None:
    # 3 / 2 * 2 is folded to one constant 3.0, and 10**10 * 10**10 to 1e20.
    node, _ = resolve(parse("event.price * (3 / 2 * 2) > 10000000000 * 10000000000"),
                      SYMBOLS, PARAMETERS)
    program = compile_program([node])
    assert program.ops[:, 0].tolist().count(MUL) == 1
    assert compile_numba(node).to_list({"event": {"price": np.array([1e19, 3.4e19])}}, 2) == \
        [False, True]


def test_an_unresolved_name_is_refused() -> None:
    with pytest.raises(ExpressionError, match="not resolved"):
        compile_numba(parse("rate > 1"))


# -- the program ------------------------------------------------------------------------------
def test_program_shares_sub_expressions_and_reuses_registers() -> None:
    a, _ = resolve(parse("event.price * rate + 1 < 3 and event.flagged"), SYMBOLS, PARAMETERS)
    b, _ = resolve(parse("max(event.price * rate + 1, event.qty)"), SYMBOLS, PARAMETERS)
    program = compile_program([a, b])
    codes = program.ops[:, 0].tolist()
    assert codes.count(MUL) == 1 and codes.count(ADD) == 1
    assert program.ops.dtype == np.int64 and program.ops.shape == (len(codes), 5)
    assert program.n_registers < len(codes)
    assert program.fields == ("event.price", "event.flagged", "event.qty")


def test_vocabulary_codes_are_stable_and_unknown_is_reserved() -> None:
    vocabulary = Vocabulary(["a"])
    node, _ = resolve(parse("event.kind == 'b'"), SYMBOLS, PARAMETERS)
    evaluator = compile_numba(node, vocabulary)
    assert vocabulary.code("a") == 0 and vocabulary.code("b") == 1
    codes = vocabulary.codes(np.array(["b", "new", "a"]), np.array([True, True, False]))
    assert codes.tolist() == [1, 2, Vocabulary.UNKNOWN]
    values, known = evaluator.evaluate({"event": {"kind": np.array(["b", "c", "a"])}}, 3)
    assert values[known].tolist() == [1.0, 0.0, 0.0] and known.all()


@njit(cache=True)
def _fused_kernel(ops: np.ndarray, consts: np.ndarray, starts: np.ndarray, state: np.ndarray,
                  event_type: np.ndarray, results: np.ndarray, block: int,
                  out: np.ndarray) -> None:
    """What a fused simulator kernel does: its own state matrix and block loop, one linked
    program per event type, the FIRST rule per row for the rows of each event type."""
    regs = np.empty((16, block))
    n = state.shape[1]
    for low in range(0, n, block):
        high = min(low + block, n)
        for j in range(starts.shape[0] - 1):
            run_block(ops[starts[j]:starts[j + 1]], consts, state, low, high, regs)
            hits = np.empty(high - low, dtype=np.int64)
            first_hit_block(regs, results[j][results[j] >= 0], high - low, hits, 0)
            for i in range(high - low):
                if event_type[low + i] == j:
                    out[low + i] = hits[i]


def test_linked_programs_run_from_njit_code_over_a_callers_own_matrix() -> None:
    per_type = [["listing.unit_cost > event.price", "event.price * 2 > 5", "event.qty > 0"],
                ["event.kind in kinds", "event.qty in [1, 2.5]"]]
    vocabulary = Vocabulary()
    programs = [compile_program([resolve(parse(s), SYMBOLS, PARAMETERS)[0] for s in sources],
                                vocabulary) for sources in per_type]
    layout = {"event.qty": 0, "listing.unit_cost": 1, "spare": 2, "event.price": 3,
              "event.kind": 4}
    kind = vocabulary.encode(np.array(["a", "a", "b", "z", "a", "z"]),
                             np.array([True, True, True, True, True, False]))
    state = np.array([[1.0, 0.0, np.nan, 0.0, 0.0, 2.5],
                      [9.0, 1.0, 1.0, 1.0, np.nan, 0.0],
                      [7.0, 7.0, 7.0, 7.0, 7.0, 7.0],
                      [2.0, 3.0, 1.0, 2.0, 1.0, 0.0],
                      kind])
    event_type = np.array([0, 0, 0, 1, 1, 1])
    ops, consts, starts = link_programs(programs, layout)
    results = np.full((2, 3), -1, dtype=np.int64)
    for j, program in enumerate(programs):
        results[j, :len(program.results)] = program.results
    out = np.empty(6, dtype=np.int64)
    _fused_kernel(ops, consts, starts, state, event_type, results, 4, out)
    assert out.tolist() == [0, 1, -1, -1, 0, 1]

    single = compile_program([resolve(parse("event.price * 2 > 5"), SYMBOLS, PARAMETERS)[0]])
    values = np.full(6, -7.0)
    evaluate_range(single.bind(layout), single.consts, state, 1, 4, single.registers(2),
                   single.results[0], values)
    assert values.tolist() == [-7.0, 1.0, 0.0, 0.0, -7.0, -7.0]
