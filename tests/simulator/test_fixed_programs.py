"""A program compiled into a kernel (`simulator.fixed_programs`) gives, row by row, the values
and the first rule the interpreter (`run_block`, `first_hit_block`) gives, bit for bit.

Each distinct program is a compilation of the test kernels of its own, so the programs are a
few: one that holds every op with the values that make them differ (NaN, infinities, -0.0,
halves to round), and the bundled rulebooks' expressions grouped into programs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numba import njit

from rules.expression import parse, resolve
from rules.expression.numba_target import (
    OPCODE_NAMES,
    Program,
    Vocabulary,
    compile_program,
    first_hit_block,
    run_block,
)
from simulator.fixed_programs import MAX_OPS, FixedProgram, first_rule_reading, values_reading
from simulator.model import Model
from simulator.run import replication_seed
from simulator.scenario import load_scenario
from tests.rules.expression.test_numba_target import generated_scope, text_literals
from tests.rules.expression.test_numpy_target import BUNDLED, PARAMETERS, SYMBOLS
from tests.simulator.model_runs import (
    BOOKS,
    FIXTURE_BOOKS,
    TINY,
    assert_identical,
    run_days,
    with_rulebook,
)


@njit
def _read(tag: int, row: int, env: Any) -> float:
    """A field's value: row `row` of the matrix at column i (env is (matrix, i)); `tag` is
    the field's row too here, so reading row `tag` must give the same."""
    matrix, i = env
    return matrix[tag, i] if tag == row else np.nan


_first_rule = first_rule_reading(_read)
_values = values_reading(_read)


@njit
def _first_rules(program: Any, matrix: np.ndarray, n: int, out: np.ndarray) -> None:
    for i in range(n):
        out[i] = _first_rule(program, (matrix, i))


@njit
def _all_values(program: Any, matrix: np.ndarray, n: int, out: np.ndarray) -> None:
    for i in range(n):
        values = _values(program, (matrix, i))
        for k in range(len(values)):
            out[k, i] = values[k]


def _check(program: Program, inputs: np.ndarray, n: int, label: str) -> None:
    fields = {f: k for k, f in enumerate(program.fields)}
    first = len(program.fields)
    flat = program.flatten(fields, first)
    # The interpreter, in place over one matrix.
    matrix = np.full((max(flat.stop, first), n), np.nan)
    matrix[:first] = inputs
    for row, value in flat.fills:
        matrix[row] = value
    run_block(flat.ops, flat.consts, matrix, 0, n, matrix)
    expected = matrix[list(flat.results)]
    expected_hit = np.empty(n, dtype=np.int64)
    first_hit_block(matrix, np.array(flat.results, dtype=np.int64), n, expected_hit, 0)
    # Compiled for the program: the kernel's matrix holds the fields alone (nothing else is
    # read from it).
    fixed = FixedProgram.of(flat, flat.results, {row: row for row in range(first)},
                            max_ops=10_000)
    assert fixed is not None
    fields_only = np.full((max(first, 1), n), np.nan)
    fields_only[:first] = inputs
    values = np.full((len(flat.results), n), -7.0)
    _all_values(fixed.fixed, fields_only, n, values)
    for k in range(len(flat.results)):
        # Row by row the same bits (-0.0 is not 0.0), or both NaN (unknown, whatever its bits).
        same = (values[k].view(np.int64) == expected[k].view(np.int64)) | (
            np.isnan(values[k]) & np.isnan(expected[k]))
        assert same.all(), f"{label}: result {k}: {values[k][~same]} against " \
                           f"{expected[k][~same]}"
    hit = np.full(n, -9, dtype=np.int64)
    _first_rules(fixed.fixed, fields_only, n, hit)
    assert hit.tolist() == expected_hit.tolist(), label


#: Every op of the interpreter, over fields that take NaN, infinities, -0.0 and halves.
EVERY_OP = [
    "-event.price < event.qty",
    "not event.flagged",
    "event.price + event.qty >= event.price - event.qty",
    "event.price * rate / event.qty > 1",
    "event.price <= cap and event.qty != 3 or merchant.verified",
    "event.price == event.qty",
    "(event.price if event.flagged else event.qty) > 2",
    "abs(event.price) + ceil(event.qty) + floor(event.price) + round(event.qty)",
    "round(event.price, 2) + round(event.qty, -1)",
    "max(event.price, event.qty) - min(event.price, 2)",
    "event.kind in kinds",
    "event.kind not in kinds",
    "event.qty in codes",
    "event.qty in nothing",
    "event.qty not in nothing",
    "event.price",
    "true",
    "1 + 1 > 3",
]
_SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 0.5, 1.5, 2.5, -2.5, 2.675, 1e308,
                     -1e308, 5e-324, 3.0, 10.0, 0.25, 1.0, 2.0, 123.456, -7.0])


def test_every_op_gives_the_interpreters_bits() -> None:
    nodes = [resolve(parse(s), SYMBOLS, PARAMETERS)[0] for s in EVERY_OP]
    vocabulary = Vocabulary()
    program = compile_program(nodes, vocabulary)
    ops = {OPCODE_NAMES[code] for code in program.ops[:, 0].tolist()}
    assert ops >= set(OPCODE_NAMES) - {"LOAD", "CONST"}, set(OPCODE_NAMES) - ops
    n = 4000
    scope = generated_scope(SYMBOLS, ["a", "b", "zzz"], n, seed=3)
    inputs, _ = program.inputs(scope, n, vocabulary)
    rng = np.random.default_rng(4)
    for row, field in enumerate(program.fields):
        if field in ("event.price", "event.qty"):
            special = rng.random(n) < 0.5
            inputs[row] = np.where(special, rng.choice(_SPECIAL, n), inputs[row])
    _check(program, inputs, n, "every op")


def _bundled_programs(size: int = 8) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """The bundled expressions, `size` to a program, each program's fields the union of its
    expressions' fields."""
    out = []
    for start in range(0, len(BUNDLED), size):
        part = BUNDLED[start:start + size]
        symbols: dict[str, Any] = {}
        for _, _, kinds in part:
            symbols.update(kinds)
        out.append((f"{part[0][0]}..{part[-1][0]}", [expr.node for _, expr, _ in part],
                    symbols))
    return out


@pytest.mark.parametrize(("label", "nodes", "symbols"), _bundled_programs(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_the_bundled_expressions_give_the_interpreters_bits(label: str, nodes: list[Any],
                                                            symbols: dict[str, Any]) -> None:
    vocabulary = Vocabulary()
    program = compile_program(nodes, vocabulary)
    n = 2000
    texts = sorted({t for node in nodes for t in text_literals(node)})
    scope = generated_scope(symbols, texts, n, seed=len(label))
    inputs, _ = program.inputs(scope, n, vocabulary)
    _check(program, inputs, n, label)


def test_a_program_past_the_limit_is_left_to_the_interpreter() -> None:
    program = compile_program([resolve(parse(f"event.price * {k} > {k + 1}"), SYMBOLS,
                                       PARAMETERS)[0] for k in range(1, MAX_OPS)])
    flat = program.flatten({f: k for k, f in enumerate(program.fields)}, len(program.fields))
    assert len(flat.ops) > MAX_OPS
    assert FixedProgram.of(flat, flat.results, {0: 0}) is None
    assert FixedProgram.of(flat, flat.results, {0: 0}, max_ops=len(flat.ops)) is not None


@pytest.mark.parametrize("member", ["in", "not in"])
def test_the_items_of_an_in_list_count_against_the_limit(member: str) -> None:
    """A parameter may list thousands of items (numba refuses a tuple of a thousand): each
    item counts as an op, so a long list is left to the interpreter, a short one is not."""
    def flat_of(items: int) -> Any:
        parameters = {**PARAMETERS, "listed": tuple(float(k) for k in range(items))}
        program = compile_program([resolve(parse(f"event.price {member} listed"), SYMBOLS,
                                           parameters)[0]])
        return program.flatten({f: k for k, f in enumerate(program.fields)},
                               len(program.fields))

    short, long = flat_of(MAX_OPS - 1), flat_of(MAX_OPS)
    assert len(short.ops) == len(long.ops) == 1
    assert FixedProgram.of(short, short.results, {0: 0}) is not None
    assert FixedProgram.of(long, long.results, {0: 0}) is None
    huge = flat_of(3000)
    assert FixedProgram.of(huge, huge.results, {0: 0}, max_ops=3001) is not None


#: Per family: a rulebook, a condition in it, and what to add to the condition that changes
#: nothing in these runs (no amount, price or count of them is in the list) but makes the
#: program too long for a kernel: a parameter of a thousand items, `not in`.
_LISTED = {
    "ranking": (FIXTURE_BOOKS / "ranking_mixed.yaml",
                "when: event.price <= channel_line and listing.quality > 0.9",
                " and event.price not in listed", "score", range(-1000, 0)),
    "commission": (FIXTURE_BOOKS / "commission_mixed.yaml", "when: listing.quality < 0.6",
                   " and event.amount not in listed", "score", range(-1000, 0)),
    "appeal": (BOOKS / "lowprice-2024" / "appeal.yaml",
               "when: merchant.appeals_filed_month >= appeal_quota_month",
               " and merchant.appeals_filed_month not in listed", "count",
               range(1000, 2000)),
}


def _prepared(model: Model, family: str) -> Any:
    """The family's compiled pass as the model prepared it on its first day (None: none)."""
    if family == "appeal":
        assert model._appeal_rounds is not None
        return model._appeal_rounds.filed_program
    found = model._ranking if family == "ranking" else model._charges
    assert found is not None
    return found[0]


@pytest.mark.parametrize("family", sorted(_LISTED))
def test_a_parameter_listing_a_thousand_items_runs_without_a_kernel(family: str) -> None:
    """The ranking's, the fees' and the appeals' compiled passes leave such rules to numpy
    (to the interpreter for the appeals' filing rules), and the run is the plain rulebook's
    compiled run, bit for bit."""
    path, condition, listed, unit, items = _LISTED[family]
    plain = path.read_text()
    assert condition in plain and "parameters:\n" in plain
    longer = plain.replace(condition, condition + listed).replace(
        "parameters:\n", "parameters:\n  listed:\n    value: [" + ", ".join(map(str, items))
        + f"]\n    unit: {unit}\n    source: \"assumption: test value\"\n", 1)
    sc = load_scenario(TINY).with_values({"refunds.lacking_evidence_share": 0.6,
                                          "appeals.propensity": 0.8})
    sets = [with_rulebook("lowprice-2024", family, text) for text in (longer, plain)]
    for rulebook_set, compiled in zip(sets, (False, True), strict=True):
        model = Model(rulebook_set, sc, [replication_seed(3, 0)])
        model.step(0)  # (the passes are prepared on the first day)
        assert (_prepared(model, family) is not None) == compiled
    assert_identical(*(run_days(rulebook_set, sc, 25, np.float32, seed=3)
                       for rulebook_set in sets))


def test_a_row_read_but_never_given_is_refused() -> None:
    program = compile_program([resolve(parse("event.price > event.qty"), SYMBOLS,
                                       PARAMETERS)[0]])
    flat = program.flatten({f: k for k, f in enumerate(program.fields)}, 2)
    with pytest.raises(ValueError, match=r"rows \[1\] are read"):
        FixedProgram.of(flat, flat.results, {0: 0})


def test_programs_alike_are_one_type_and_others_another() -> None:
    def fixed(source: str, tag: int = 0) -> Any:
        program = compile_program([resolve(parse(source), SYMBOLS, PARAMETERS)[0]])
        flat = program.flatten({f: k for k, f in enumerate(program.fields)}, 1)
        found = FixedProgram.of(flat, flat.results, {0: tag})
        assert found is not None
        return found.fixed

    assert fixed("event.price > 2") == fixed("event.price > 2")
    assert fixed("event.price > 2") != fixed("event.price > 3")  # the constant's bits
    assert fixed("event.price > 2") != fixed("event.price >= 2")
    assert fixed("event.price > 2") != fixed("event.price > 2", tag=1)
