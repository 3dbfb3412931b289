"""Rule programs a kernel is compiled for: each row's first rule, inside the kernel's own loop.

Why: the numba target's interpreter (`rules.expression.numba_target.run_block`) runs a
program over a block of rows an op at a time, each op a pass over the block, after the
caller has gathered each field into a row of its matrix. Where a kernel does little per
row besides, those passes cost as much as the rest: the appeal rounds' filing rules (two
comparisons for most rulebooks) took about a quarter of `appeal_rounds.appeal_day`, in a
gathering pass, two op passes and three passes for the first hit, each over every appeal.

A `FixedProgram` puts a flattened program (`Program.flatten`) in a numba type (a
`simulator.fixed.Fixed`): numba compiles the kernel that takes it once for its ops (cached
on disk like any signature). The kernel's `first_rule` call is an intrinsic that emits, for
each field, a call of the `read` function the kernel names (`first_rule_reading`: the field
read where the kernel keeps it), and for each op a call of the interpreter's own definition
of it (`numba_target.op_value`, `round_value`, `member_value`) with the op's code and
constants as arguments. LLVM inlines those calls and folds each to the op's few
instructions: the program becomes part of the kernel's loop, its values in registers. No
rule text becomes code: the ops are data, as they are for the interpreter; only the kernel's
machine code is specialised for them, the way `simulator.fixed` does for a refund stage's
tables.

Meant for small programs (a rulebook's conditions for one event type), a few per run: each
distinct program is a compilation of the kernel of its own (3-4 s for `appeal_day`), once
per machine. `FixedProgram.of` says None for a program past `MAX_OPS`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from numba import types
from numba.core.errors import TypingError
from numba.core.typing import signature
from numba.extending import intrinsic

from rules.expression.numba_target import (
    CONST,
    IN,
    LOAD,
    NOT_IN,
    ROUND_DIGITS,
    FlatProgram,
    _operand_slots,
    known_true,
    member_value,
    op_value,
    round_value,
)
from simulator.fixed import Fixed, FixedType

#: The largest program a kernel is compiled for (past it, the interpreter runs it), in ops,
#: an `in` list's items counted as ops too: each adds its instructions to the kernel's loop,
#: and LLVM's time to compile it.
MAX_OPS = 64

def _bits(value: float) -> int:
    """A float64 as the int of its bits (a `Fixed` holds ints: their repr is exact)."""
    return struct.unpack("<q", struct.pack("<d", value))[0]


def _float(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<q", bits))[0]


class FixedProgram:
    """A flattened program's ops, constants, conditions and fields, as a `Fixed`
    (`fixed`) for a kernel to be compiled for, and the fields' rows and tags (what the
    kernel's `read` takes to find a field's value: a source code, say)."""

    def __init__(self, fixed: Fixed):
        self.fixed = fixed

    @classmethod
    def of(cls, flat: FlatProgram, conditions: Sequence[int], fields: Mapping[int, int],
           max_ops: int | None = None) -> FixedProgram | None:
        """The program `flat` whose rules' conditions are the rows `conditions` (in rule
        order), reading the field rows `fields` (row -> the tag its `read` is given); None
        when it has more than `max_ops` ops (`MAX_OPS` unless given), each item of an `in`
        list counted as one more (the kernel compares the items one by one, and a parameter
        may list thousands: numba refuses a tuple of a thousand). A row that no op writes
        and no fill sets must be a field's."""
        ops = tuple(tuple(int(v) for v in op) for op in flat.ops.tolist())
        size = len(ops) + sum(op[4] for op in ops if op[0] in (IN, NOT_IN))
        if size > (MAX_OPS if max_ops is None else max_ops):
            return None
        fills = tuple((int(row), _bits(float(value))) for row, value in flat.fills)
        consts = tuple(_bits(float(v)) for v in flat.consts.tolist())
        written = {op[1] for op in ops} | {row for row, _ in fills}
        read = {row for op in ops for row in _operand_rows(op)} | set(int(c) for c in conditions)
        missing = sorted(read - written - set(fields))
        if missing:
            raise ValueError(f"rows {missing} are read but neither computed, filled nor "
                             "a field's")
        inputs = tuple(sorted((int(row), int(tag)) for row, tag in fields.items()))
        return cls(Fixed((ops, fills, consts, tuple(int(c) for c in conditions), inputs)))


def _operand_rows(op: tuple[int, ...]) -> tuple[int, ...]:
    """The rows op reads (ROUND_DIGITS' b is its digits, IN's b and c its items)."""
    if op[0] in (LOAD, CONST):
        raise ValueError("a flattened program has no LOAD or CONST ops")
    return tuple(op[slot] for slot in _operand_slots(op[0]))


def _emit_rows(context: Any, builder: Any, values: tuple[Any, ...], read: Any, env_type: Any,
               env: Any) -> list[Any]:
    """The LLVM values of each condition row of the program `values` on the row `env`
    describes: each field read by `read`, each op computed by the interpreter's own functions
    (`op_value`, `round_value`, `member_value`), called with the op's code and arguments as
    constants, which LLVM inlines and folds to the op's few instructions."""
    ops, fills, const_bits, conditions, inputs = values
    consts = [_float(b) for b in const_bits]
    f64, i64 = types.float64, types.int64
    rows: dict[int, Any] = {}
    for row, tag in inputs:
        # The tag and row as literal types: `read` may index a tuple with them.
        rows[row] = context.compile_internal(
            builder, read.py_func, signature(f64, types.literal(tag), types.literal(row),
                                             env_type),
            [context.get_constant(i64, tag), context.get_constant(i64, row), env])
    for row, bits in fills:
        rows[row] = context.get_constant(f64, _float(bits))
    zero = context.get_constant(f64, 0.0)
    for op in ops:
        code, dst, a, b, c = op
        x = rows[a]
        if code == ROUND_DIGITS:
            rows[dst] = context.compile_internal(
                builder, round_value.py_func, signature(f64, f64, i64),
                [x, context.get_constant(i64, b)])
        elif code in (IN, NOT_IN):
            # (no items: one NaN, which equals nothing, as no item does)
            items = consts[b:b + c] or [float("nan")]
            kind = types.UniTuple(f64, len(items))
            rows[dst] = context.compile_internal(
                builder, member_value.py_func, signature(f64, i64, f64, kind),
                [context.get_constant(i64, code), x,
                 context.make_tuple(builder, kind,
                                    [context.get_constant(f64, v) for v in items])])
        else:
            operands = [rows[r] for r in _operand_rows(op)] + [zero, zero]
            y, z = operands[1], operands[2]
            rows[dst] = context.compile_internal(
                builder, op_value.py_func, signature(f64, i64, f64, f64, f64),
                [context.get_constant(i64, code), x, y, z])
    return [rows[row] for row in conditions]


def _checked_program(name: str, program: Any) -> None:
    if not isinstance(program, FixedType):
        raise TypingError(f"{name}: a FixedProgram's `fixed` expected, got {program}")


def first_rule_reading(read: Any) -> Callable[..., int]:
    """``first_rule(program, env)`` for kernels: the position of the first rule whose
    condition is known True on the row `env` describes (-1: none), for `program`
    (`FixedProgram.fixed`), each field's value being ``read(tag, row, env)`` (a compiled
    function of the kernel's: `env` is whatever the kernel hands it, a tuple of the row's
    index and the arrays, say). Every condition is computed and the first known True
    chosen (`numba_target.known_true`), without a branch, as the interpreter computes
    them all."""

    @intrinsic
    def first_rule(typingctx: Any, program: Any, env: Any) -> Any:
        _checked_program("first_rule", program)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            conditions = _emit_rows(context, builder, program.values, read, env, args[1])
            i64 = types.int64
            found = context.get_constant(i64, -1)
            for position in range(len(conditions) - 1, -1, -1):
                holds = context.compile_internal(builder, known_true.py_func,
                                                 signature(types.boolean, types.float64),
                                                 [conditions[position]])
                found = builder.select(holds, context.get_constant(i64, position), found)
            return found

        return signature(types.int64, program, env), codegen

    return first_rule


def values_reading(read: Any) -> Callable[..., Any]:
    """``values(program, env)`` for kernels: the conditions' values on the row `env`
    describes, a tuple of float64 in the interpreter's encoding (NaN unknown), fields read
    as `first_rule_reading` reads them."""

    @intrinsic
    def values(typingctx: Any, program: Any, env: Any) -> Any:
        _checked_program("values", program)
        kind = types.UniTuple(types.float64, len(program.values[3]))

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            conditions = _emit_rows(context, builder, program.values, read, env, args[1])
            return context.make_tuple(builder, kind, conditions)

        return signature(kind, program, env), codegen

    return values
