"""A flattened program (`Program.flatten`) computes what the program computes, bit for bit.

`run_block` over a program reads its fields into registers (LOAD) and fills registers with
constants (CONST); a flattened program reads both in place, from rows of one matrix that holds
the caller's fields, the program's constants and its registers. Both run the same op loops,
so every result must be the same float64, NaN (unknown) included, for random expressions,
for every bundled rule expression, and with the fields bound to rows in any order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.expression import parse, resolve
from rules.expression.numba_target import (
    CONST,
    LOAD,
    Program,
    Vocabulary,
    compile_program,
    run_block,
)
from tests.rules.expression.test_numba_target import generated_scope, text_literals
from tests.rules.expression.test_numpy_target import (
    BUNDLED,
    EXPRESSIONS,
    PARAMETERS,
    SYMBOLS,
    rows_and_columns,
)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def registers_run(program: Program, inputs: np.ndarray, n: int) -> list[np.ndarray]:
    """Each result as `run_block` computes it with registers, the way programs usually run."""
    regs = program.registers(max(n, 1))
    run_block(program.ops, program.consts, inputs, 0, n, regs)
    return [regs[r, :n].copy() for r in program.results]


def flat_run(program: Program, inputs: np.ndarray, n: int, order: list[int],
             first: int) -> list[np.ndarray]:
    """Each result as the flattened program computes it in place, the program's fields put
    at the rows `order` gives them and its own rows from `first` on."""
    rows = {field: order[k] for k, field in enumerate(program.fields)}
    flat = program.flatten(rows, first)
    assert not np.isin(flat.ops[:, 0], [LOAD, CONST]).any()
    matrix = np.full((max(flat.stop, first), max(n, 1)), -123.0)  # junk where nothing is written
    for k in range(len(program.fields)):
        matrix[order[k], :n] = inputs[k, :n]
    for row, value in flat.fills:
        matrix[row] = value
    run_block(flat.ops, flat.consts, matrix, 0, n, matrix)
    return [matrix[r, :n].copy() for r in flat.results]


def assert_same_bits(a: list[np.ndarray], b: list[np.ndarray], label: str) -> None:
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        assert np.array_equal(x.view(np.int64), y.view(np.int64)) or \
            np.array_equal(x, y, equal_nan=True), f"{label}: result {k}: {x} against {y}"


def check(nodes: list[Any], scope: Any, n: int, label: str, seed: int) -> None:
    vocabulary = Vocabulary()
    program = compile_program(nodes, vocabulary)
    inputs, _ = program.inputs(scope, n, vocabulary)
    expected = registers_run(program, inputs, n)
    rng = np.random.default_rng(seed)
    spare = int(rng.integers(0, 3))  # rows of the caller's that the program does not read
    order = [int(r) for r in rng.permutation(len(program.fields) + spare)[:len(program.fields)]]
    first = len(program.fields) + spare
    assert_same_bits(flat_run(program, inputs, n, order, first), expected, label)


@SETTINGS
@given(sources=st.lists(EXPRESSIONS, min_size=1, max_size=4),
       data=rows_and_columns(SYMBOLS), seed=st.integers(0, 2**16))
def test_random_programs_give_the_registers_bits(sources: list[str], data: Any,
                                                 seed: int) -> None:
    _, columnar, n = data
    nodes = [resolve(parse(s), SYMBOLS, PARAMETERS)[0] for s in sources]
    check(nodes, columnar, n, " | ".join(sources), seed)


def test_every_bundled_expression_gives_the_registers_bits() -> None:
    n = 500
    for k, (label, expr, symbols) in enumerate(BUNDLED):
        scope = generated_scope(symbols, text_literals(expr.node), n, seed=k)
        check([expr.node], scope, n, f"{label} ({expr.text})", seed=k)


def test_results_that_are_a_field_or_a_constant_are_read_where_they_are() -> None:
    """A condition that is just a field, or folds to a constant, costs no op: its result row
    is the field's row, or the constant's row that the caller fills."""
    nodes = [resolve(parse(s), SYMBOLS, PARAMETERS)[0]
             for s in ("event.flagged", "true", "1 + 1 > 3", "event.flagged and event.qty > 1")]
    program = compile_program(nodes)
    rows = {f: 7 + k for k, f in enumerate(program.fields)}
    flat = program.flatten(rows, 20)
    assert flat.results[0] == rows["event.flagged"]
    fills = dict(flat.fills)
    assert fills[flat.results[1]] == 1.0 and fills[flat.results[2]] == 0.0
    assert flat.results[3] >= 20 and flat.stop == 20 + len(flat.fills) + len(flat.ops)
    # every op writes a row of its own, never one it reads
    written = flat.ops[:, 1].tolist()
    assert len(set(written)) == len(written)
    for op in flat.ops.tolist():
        assert op[1] not in op[2:5]
