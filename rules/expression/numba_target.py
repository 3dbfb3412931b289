"""Evaluate resolved expressions in numba: a block-vectorised bytecode interpreter.

The simulator's fused numba kernels cannot call Python closures, and no rule text may be turned
into source code and run, so rules reach numba as data: a resolved tree is compiled into a
flat **program** that one interpreter, compiled once by numba and cached on disk, runs over
blocks of rows: each op is one tight loop over the block, so dispatch costs little per row.
`python_target` is the reference semantics and this target agrees with it row by row, as
`numpy_target` does (see "Semantics" below for the one representation limit).

Program
    `Program.ops` is an int64 array of shape (n_ops, 5): ``opcode, dst, a, b, c``. ``dst``,
    ``a``, ``b`` and ``c`` are register numbers, except for LOAD (``a`` = row of the input
    matrix), CONST (``a`` = index into `consts`), IN / NOT_IN (``b`` = offset into `consts`,
    ``c`` = item count) and ROUND_DIGITS (``b`` = digits). `Program.consts` is float64. Every
    tree node gets one SSA value and equal sub-expressions (by `structural_key`) are computed
    once, across all the trees of one program; constant sub-trees are folded at compile time by
    `python_target` itself. Registers are then reused once their value is dead, so the
    scratch space stays small, but an op never writes over its own operands (that would keep
    LLVM from vectorising it). `Program.results` are the registers holding each tree's value.

Values
    Registers are rows of a float64 array of shape (n_registers, block). Numbers are float64,
    flags are 1.0 / 0.0, text is a code from a `Vocabulary`, and NaN means unknown everywhere.
    Inputs are one float64 matrix of shape (fields, rows) in the same encoding; LOAD copies a
    block of one of its rows into a register. `Program.fields` names the row each field is
    read from (`Program.bind` renumbers them to rows of a caller's own matrix).

Semantics (as `python_target`; the cases `tests/rules/expression/test_numba_target.py` pins)
    * an operation with an unknown operand is unknown; `and` is False as soon as one side is
      known False and `or` True as soon as one side is known True (Kleene); ``a if c else b`` is
      unknown where `c` is; `not` keeps unknown unknown;
    * division by zero is unknown; `ceil`, `floor` and `round` of an infinity are unknown;
      `round` is half-to-even, and ``round(x, digits)`` is correctly rounded like Python's (an
      exact two-product decides the half-way cases; digits from -15 to 22);
    * `max`/`min` keep the earliest argument unless a later one is strictly greater (smaller);
    * infinities are ordinary known numbers (``1e308 * 10 > 1`` is True, as in Python). The one
      difference: a NaN *computed* from known numbers (``inf - inf``) is a known NaN to Python
      and to `numpy_target` but unknown here, since NaN is this target's unknown. Only
      infinities, in the inputs or from overflow (``1e308 * 10``), can produce one;
    * numbers are float64, so integers beyond 2**53 lose precision, as in `numpy_target`.

Calling it from numba
    ``run_block(ops, consts, inputs, start, stop, regs)`` runs a program over rows
    [start, stop) of `inputs` (a float64 matrix of fields x rows); `regs` needs at least
    ``n_registers`` rows and ``stop - start`` columns. ``first_hit_block`` then turns the
    result registers of a program of rule conditions into the FIRST policy's rule index per
    row; ``evaluate_range`` and ``first_hit_range`` are the block loops for one program. All
    are ``@njit(cache=True, nogil=True)``. `link_programs` puts several programs (one per event
    type, say) into one ops and one consts array bound to the caller's own state matrix.
    `Program.flatten` makes a program run in place over one matrix that holds the caller's
    fields, the program's constants and its registers as rows (no LOAD or CONST ops left):
    ``run_block(flat.ops, flat.consts, matrix, 0, m, matrix)``.
    From Python, `compile_numba` and `FirstHit` take the columnar scopes `numpy_target` takes.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

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
    is_constant,
)
from .numpy_target import ColumnarScope, Columns, as_columns, list_items, structural_key
from .python_target import compile_python

# -- opcodes ----------------------------------------------------------------------------------
LOAD = 0
CONST = 1
NEG = 2
NOT = 3
ADD = 4
SUB = 5
MUL = 6
DIV = 7
LT = 8
LE = 9
GT = 10
GE = 11
EQ = 12
NE = 13
AND = 14
OR = 15
IF = 16
ABS = 17
CEIL = 18
FLOOR = 19
ROUND = 20
ROUND_DIGITS = 21
MAX = 22
MIN = 23
IN = 24
NOT_IN = 25

OPCODE_NAMES = (
    "LOAD", "CONST", "NEG", "NOT", "ADD", "SUB", "MUL", "DIV", "LT", "LE", "GT", "GE", "EQ",
    "NE", "AND", "OR", "IF", "ABS", "CEIL", "FLOOR", "ROUND", "ROUND_DIGITS", "MAX", "MIN",
    "IN", "NOT_IN",
)

_ARITH = {"+": ADD, "-": SUB, "*": MUL, "/": DIV}
_COMPARE = {"<": LT, "<=": LE, ">": GT, ">=": GE, "==": EQ, "!=": NE}
_UNARY_CALLS = {"abs": ABS, "ceil": CEIL, "floor": FLOOR, "round": ROUND}
MIN_DIGITS = -15
MAX_DIGITS = 22

DEFAULT_BLOCK = 256

#: Exact powers of ten (10**22 is the largest that a float64 holds exactly).
_POW10 = np.array([10.0**i for i in range(MAX_DIGITS + 1)], dtype=np.float64)


# -- text -------------------------------------------------------------------------------------
class Vocabulary:
    """Text values as integer codes 0, 1, 2, ... in the order first seen.

    The compiler adds the literals of the expressions it compiles; callers add their columns'
    values (`encode` does so as it goes). Codes never change once given, so programs compiled
    earlier stay valid. `UNKNOWN` (-1) is the code of unknown text in integer code arrays; in
    the interpreter's float64 form unknown text is NaN like any other unknown value.
    """

    UNKNOWN = -1

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._codes: dict[str, int] = {}
        self._texts: list[str] = []
        self.extend(texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __contains__(self, text: object) -> bool:
        return text in self._codes

    def code(self, text: str) -> int:
        """The code of `text`, given a new one if it has none yet."""
        found = self._codes.get(text)
        if found is None:
            found = self._codes[text] = len(self._texts)
            self._texts.append(text)
        return found

    def extend(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.code(text)

    def text(self, code: int) -> str | None:
        """The text of a code; None for `UNKNOWN`."""
        return None if code == self.UNKNOWN else self._texts[code]

    def encode(self, values: Any, known: Any = True) -> np.ndarray:
        """Text values as float64 codes, NaN where `known` is False (shapes broadcast)."""
        array = np.asarray(values)
        if array.dtype.kind == "S":
            array = array.astype(str)
        if array.ndim == 0:
            codes = np.asarray(float(self.code(str(array))))
        else:
            unique, inverse = np.unique(array, return_inverse=True)
            table = np.array([self.code(t) for t in unique.tolist()], dtype=np.float64)
            codes = table[inverse.reshape(array.shape)]
        return np.where(known, codes, np.nan)

    def codes(self, values: Any, known: Any = True) -> np.ndarray:
        """Text values as int64 codes with `UNKNOWN` where not known."""
        encoded = self.encode(values, known)
        return np.where(np.isnan(encoded), self.UNKNOWN, encoded).astype(np.int64)


# -- the compiled form ------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Program:
    """A compiled set of expressions; see the module doc for the format.

    `kinds[i]` is "number", "bool" or "text" for the value of tree i where the tree alone tells
    (None where it is a field's value, whose kind only the data shows).
    """

    ops: np.ndarray
    consts: np.ndarray
    fields: tuple[str, ...]
    n_registers: int
    results: tuple[int, ...]
    kinds: tuple[str | None, ...]

    def bind(self, field_rows: Mapping[str, int]) -> np.ndarray:
        """The ops with LOAD reading field f from row `field_rows[f]` of the caller's matrix."""
        ops = self.ops.copy()
        loads = ops[:, 0] == LOAD
        ops[loads, 2] = [field_rows[self.fields[i]] for i in ops[loads, 2].tolist()]
        return ops

    def flatten(self, field_rows: Mapping[str, int], first_row: int) -> FlatProgram:
        """The program for a caller who keeps its inputs, the program's constants and its
        registers as rows of one matrix (`FlatProgram`): LOADs and CONSTs become rows the
        other ops read in place (an input row; a row the caller fills with the constant once),
        so a block costs only the ops that compute. Every computing op writes a row of its
        own, from `first_row` on: no op writes over its operands, as `_allocate` ensures."""
        row: dict[int, int] = {}  # register -> the matrix row holding its value now
        const_rows: dict[int, int] = {}
        fills: list[tuple[int, float]] = []
        ops: list[list[int]] = []
        free = first_row
        for op in self.ops.tolist():
            code, dst = op[0], op[1]
            if code == LOAD:
                row[dst] = field_rows[self.fields[op[2]]]
                continue
            if code == CONST:
                if op[2] not in const_rows:
                    const_rows[op[2]] = free
                    fills.append((free, float(self.consts[op[2]])))
                    free += 1
                row[dst] = const_rows[op[2]]
                continue
            flat = list(op)
            for slot in _operand_slots(code):
                flat[slot] = row[op[slot]]
            flat[1] = row[dst] = free
            free += 1
            ops.append(flat)
        return FlatProgram(ops=np.array(ops, dtype=np.int64).reshape(len(ops), 5),
                           consts=self.consts, fills=tuple(fills),
                           results=tuple(row[r] for r in self.results), stop=free)

    def registers(self, block: int = DEFAULT_BLOCK) -> np.ndarray:
        """A scratch array for `run_block` and friends."""
        return np.empty((max(self.n_registers, 1), block), dtype=np.float64)

    def inputs(
        self, scope: ColumnarScope | Columns, n: int, vocabulary: Vocabulary,
        skip: Collection[str] = (),
    ) -> tuple[np.ndarray, dict[str, str | None]]:
        """The input matrix (fields x n rows) for a columnar scope like `numpy_target`'s, and
        each field's kind ("number", "bool", "text", or None when unknown on every row).
        Fields in `skip` (a caller fills them itself) are not read: their rows are unknown."""
        columns = as_columns(scope, n)
        matrix = np.empty((len(self.fields), n), dtype=np.float64)
        kinds: dict[str, str | None] = {}
        for row, dotted in enumerate(self.fields):
            if dotted in skip:
                matrix[row] = np.nan
                continue
            namespace, field = dotted.split(".", 1)
            values, known = columns.read(namespace, field)
            matrix[row], kinds[dotted] = _encode_column(values, known, vocabulary, dotted)
        return matrix, kinds

    def describe(self) -> str:
        """The program as text, one op a line, for debugging and reports."""
        lines = []
        for code, dst, a, b, c in self.ops.tolist():
            lines.append(f"r{dst} = {OPCODE_NAMES[code]} {a} {b} {c}")
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class FlatProgram:
    """A program run in place over one matrix (`Program.flatten`): `run_block(ops, consts,
    matrix, 0, m, matrix)` computes every op over the first m columns, reading and writing rows
    of `matrix` only (there are no LOADs), once the caller has put each field's values in its
    row and each (row, value) of `fills` in its row. `results` are the rows holding each
    tree's value (an input row or a constant row where the tree is just that); the rows from
    the `first_row` given to `flatten` up to `stop` are the program's own."""

    ops: np.ndarray
    consts: np.ndarray
    fills: tuple[tuple[int, float], ...]
    results: tuple[int, ...]
    stop: int


def link_programs(programs: Sequence[Program], field_rows: Mapping[str, int]) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """Several programs as one ops array and one consts array, for a kernel that runs many.

    Returns (ops, consts, starts): program j is ``ops[starts[j]:starts[j + 1]]`` (a view that
    `run_block` takes as it is), with its LOADs bound to rows of the caller's matrix by
    `field_rows` and its constant indices moved to its part of `consts`.
    """
    ops_parts, const_parts, starts = [], [], [0]
    offset = 0
    for program in programs:
        ops = program.bind(field_rows)
        ops[ops[:, 0] == CONST, 2] += offset
        members = (ops[:, 0] == IN) | (ops[:, 0] == NOT_IN)
        ops[members, 3] += offset
        ops_parts.append(ops)
        const_parts.append(program.consts)
        offset += len(program.consts)
        starts.append(starts[-1] + len(ops))
    return (np.concatenate(ops_parts) if ops_parts else np.zeros((0, 5), dtype=np.int64),
            np.concatenate(const_parts) if const_parts else np.zeros(0),
            np.array(starts, dtype=np.int64))


def _encode_column(values: np.ndarray, known: np.ndarray, vocabulary: Vocabulary,
                   where: str) -> tuple[Any, str | None]:
    kind = values.dtype.kind
    if not np.any(known):
        return np.nan, None
    if kind == "f":
        return np.where(known, values, np.nan), "number"
    if kind == "b":
        return np.where(known, values.astype(np.float64), np.nan), "bool"
    if kind in "US":
        return vocabulary.encode(values, known), "text"
    raise TypeError(f"column {where} mixes kinds of values ({values.dtype}); the numba target "
                    "needs numbers, flags or text")


def compile_program(nodes: Sequence[Node], vocabulary: Vocabulary | None = None) -> Program:
    """Compile resolved trees into one program; `results[i]` is the register of `nodes[i]`."""
    compiler = _Compiler(vocabulary if vocabulary is not None else Vocabulary())
    virtual = [compiler.compile(node) for node in nodes]
    ops, n_registers, results = _allocate(compiler.ops, virtual)
    kinds = tuple(compiler.kind(node) for node in nodes)
    return Program(
        ops=np.array(ops, dtype=np.int64).reshape(len(ops), 5),
        consts=np.array(compiler.consts, dtype=np.float64),
        fields=tuple(compiler.fields),
        n_registers=n_registers,
        results=tuple(results),
        kinds=kinds,
    )


class _Compiler:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.ops: list[list[int]] = []
        self.consts: list[float] = []
        self.fields: list[str] = []
        self._field_index: dict[str, int] = {}
        self._const_index: dict[Hashable, int] = {}
        self._memo: dict[Hashable, int] = {}
        self._n = 0

    def _emit(self, code: int, a: int = 0, b: int = 0, c: int = 0) -> int:
        dst = self._n
        self._n += 1
        self.ops.append([code, dst, a, b, c])
        return dst

    def _constant(self, value: float) -> int:
        key = ("nan",) if math.isnan(value) else (value, math.copysign(1.0, value))
        found = self._const_index.get(key)
        if found is None:
            found = self._const_index[key] = len(self.consts)
            self.consts.append(value)
        memo_key = ("CONST", found)
        reg = self._memo.get(memo_key)
        if reg is None:
            reg = self._memo[memo_key] = self._emit(CONST, found)
        return reg

    def _scalar(self, value: Any, node: Node) -> float:
        if value is None:
            return math.nan
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, str):
            return float(self.vocabulary.code(value))
        if isinstance(value, int | float):
            return float(value)
        raise ExpressionError(f"the value {value!r} cannot be evaluated", node.start)

    def compile(self, node: Node) -> int:
        if isinstance(node, Name):
            if len(node.path) != 2:
                raise ExpressionError(
                    f"'{node.dotted}' was not resolved; resolve() the expression first",
                    node.start,
                )
            key: Hashable = ("name", node.path)
        elif isinstance(node, ListLit) or (isinstance(node, Param)
                                           and isinstance(node.value, tuple)):
            raise ExpressionError("a list can only follow 'in' or 'not in'", node.start)
        else:
            key = structural_key(node)
        found = self._memo.get(key)
        if found is not None:
            return found
        reg = self._compile(node)
        self._memo[key] = reg
        return reg

    def _compile(self, node: Node) -> int:
        if is_constant(node):
            folded = self._fold(node)
            if folded is not None:
                return folded
        match node:
            case Name(path=path):
                dotted = ".".join(path)
                index = self._field_index.get(dotted)
                if index is None:
                    index = self._field_index[dotted] = len(self.fields)
                    self.fields.append(dotted)
                return self._emit(LOAD, index)
            case Unary(op="neg", operand=operand):
                return self._emit(NEG, self.compile(operand))
            case Unary(op="not", operand=operand):
                return self._emit(NOT, self.compile(operand))
            case Binary(op=op, left=left, right=right):
                return self._emit(_ARITH[op], self.compile(left), self.compile(right))
            case Compare(op=("in" | "not in") as op, left=left, right=right):
                operand = self.compile(left)
                offset = len(self.consts)
                items = [self._scalar(item, node) for item in list_items(right)]
                self.consts.extend(items)
                return self._emit(IN if op == "in" else NOT_IN, operand, offset, len(items))
            case Compare(op=op, left=left, right=right):
                return self._emit(_COMPARE[op], self.compile(left), self.compile(right))
            case BoolOp(op=op, operands=operands):
                code = AND if op == "and" else OR
                regs = [self.compile(o) for o in operands]
                reg = regs[0]
                for other in regs[1:]:
                    reg = self._emit(code, reg, other)
                return reg
            case IfExp(test=test, body=body, orelse=orelse):
                if is_constant(test):
                    decided = compile_python(test)({})
                    if decided is None:
                        return self._constant(math.nan)
                    return self.compile(body if decided else orelse)
                return self._emit(IF, self.compile(test), self.compile(body),
                                  self.compile(orelse))
            case Call(func=func, args=args):
                return self._call(func, args, node)
        raise ExpressionError("this kind of expression cannot be evaluated", node.start)

    def _fold(self, node: Node) -> int | None:
        """A constant sub-tree, evaluated once by the reference evaluator itself."""
        if isinstance(node, Param) and isinstance(node.value, tuple):
            raise ExpressionError("a list can only follow 'in' or 'not in'", node.start)
        try:
            value = compile_python(node)({})
            return self._constant(self._scalar(value, node))
        except OverflowError:  # a Python int beyond float64: compute it the long way
            if isinstance(node, Const | Param):
                raise ExpressionError("this number is too large", node.start) from None
            return None

    def _call(self, func: str, args: tuple[Node, ...], node: Node) -> int:
        if func == "round" and len(args) == 2:
            digits_node = args[1]
            digits = digits_node.value if isinstance(digits_node, Const | Param) else None
            if not isinstance(digits, int) or isinstance(digits, bool):
                raise ExpressionError(
                    "the second argument of round() must be a whole number, like 2",
                    digits_node.start,
                )
            if not MIN_DIGITS <= digits <= MAX_DIGITS:
                raise ExpressionError(
                    f"round() to {digits} digits is beyond what the numba target supports "
                    f"({MIN_DIGITS} to {MAX_DIGITS})",
                    digits_node.start,
                )
            return self._emit(ROUND_DIGITS, self.compile(args[0]), digits)
        if func in ("max", "min") and len(args) >= 2:
            code = MAX if func == "max" else MIN
            regs = [self.compile(a) for a in args]
            reg = regs[0]
            for other in regs[1:]:
                reg = self._emit(code, reg, other)
            return reg
        code = _UNARY_CALLS.get(func)
        if code is None or len(args) != 1:
            raise ExpressionError(f"the function {func}() with {len(args)} arguments is not known",
                                  node.start)
        return self._emit(code, self.compile(args[0]))

    def kind(self, node: Node) -> str | None:
        """"number", "bool" or "text" as far as the tree alone tells (None: a field's kind)."""
        match node:
            case Const(value=value) | Param(value=value):
                return _value_kind(value)
            case Name():
                return None
            case Compare() | BoolOp() | Unary(op="not"):
                return "bool"
            case IfExp(body=body, orelse=orelse):
                return self.kind(body) or self.kind(orelse)
        return "number"


def _value_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "number"
    return None


def _operand_slots(code: int) -> tuple[int, ...]:
    """Which of an op's columns are registers it reads."""
    if code in (LOAD, CONST):
        return ()
    if code in (NEG, NOT, ABS, CEIL, FLOOR, ROUND, ROUND_DIGITS, IN, NOT_IN):
        return (2,)
    if code == IF:
        return (2, 3, 4)
    return (2, 3)


def _operands(op: list[int]) -> tuple[int, ...]:
    """The registers an op reads."""
    return tuple(op[slot] for slot in _operand_slots(op[0]))


def _allocate(ops: list[list[int]], results: list[int]) -> tuple[list[list[int]], int,
                                                                   list[int]]:
    """Map SSA values to as few registers as their lifetimes allow.

    A register is free again after the op that reads its value last, but that op itself
    writes elsewhere: an output that aliases an operand makes LLVM's runtime alias check send
    the loop to its scalar, branchy version (several times slower for comparisons), and IN
    writes its output before it has finished reading its operand. Results stay live.
    """
    last_use: dict[int, int] = {}
    for position, op in enumerate(ops):
        for value in _operands(op):
            last_use[value] = position
    for value in results:
        last_use[value] = len(ops)
    physical: dict[int, int] = {}
    free: list[int] = []
    n_registers = 0
    out: list[list[int]] = []
    for position, op in enumerate(ops):
        reads = _operands(op)
        mapped = list(op)
        for slot, value in zip(_operand_slots(op[0]), reads, strict=True):
            mapped[slot] = physical[value]
        dying = [physical[v] for v in dict.fromkeys(reads) if last_use[v] == position]
        if op[1] not in last_use:
            last_use[op[1]] = position  # computed but never read (cannot happen for results)
        if free:
            register = free.pop()
        else:
            register = n_registers
            n_registers += 1
        free.extend(dying)  # only after: an op never writes over its own operands
        physical[op[1]] = register
        mapped[1] = register
        if last_use[op[1]] == position:
            free.append(register)
        out.append(mapped)
    return out, n_registers, [physical[v] for v in results]


# -- the interpreter --------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _product_error(a: float, b: float, p: float) -> float:
    """a * b - p exactly, for p = fl(a * b) (Dekker's two-product, no FMA needed)."""
    c = 134217729.0 * a
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(cache=True, nogil=True)
def _round_places(x: float, s: float) -> float:
    """Python's round(x, digits) for digits >= 0, s = 10.0 ** digits (exact): half-to-even on
    the exact binary value of x * s, then correctly rounded back. Branch-free, so the loop
    calling it vectorises; non-finite x and whole x come back unchanged, as in Python."""
    p = x * s
    e = _product_error(x, s, p)  # x * s == p + e exactly
    k0 = np.rint(p)
    a = p - k0  # exact; x * s - k0 is exactly a + e
    above = a - 0.5  # exact wherever the comparisons below are close
    below = a + 0.5
    half = 0.5 * k0
    odd = half != np.floor(half)
    up = (above > -e) | ((above == -e) & odd)
    down = (below < -e) | ((below == -e) & odd)
    k = k0 + 1.0 if up else (k0 - 1.0 if down else k0)
    result = k / s
    result = math.copysign(0.0, x) if result == 0.0 else result
    # 10**-digits finer than x's own precision (|x * s| >= 2**53) leaves x as it is.
    keep = (x == np.floor(x)) | (abs(p) >= 9007199254740992.0) | (x != x)
    return x if keep else result


@njit(cache=True, nogil=True)
def _round_tens(x: float, s: float) -> float:
    """Python's round(x, digits) for digits < 0, s = 10.0 ** -digits (exact, at most 1e15)."""
    if x != x or x == np.inf or x == -np.inf:
        return x
    if abs(x) <= 0.5 * s:
        return math.copysign(0.0, x)
    rem = np.fmod(x, s)  # exact, with the sign of x
    twice = 2.0 * abs(rem)
    up = twice > s or (twice == s and abs(np.fmod(x, 2.0 * s)) >= s)
    step = math.copysign(s, x) if up else 0.0
    # Below 2**53 x - rem is exact; above, x is whole and step - rem is exact: either way the
    # one rounding left is the final one.
    small = abs(x) < 9007199254740992.0
    result = (x - rem) + step if small else x + (step - rem)
    return math.copysign(0.0, x) if result == 0.0 else result


@njit(inline="always")
def op_value(code: int, x: float, y: float, z: float) -> float:
    """The value of op `code` on one row whose operands hold x, y and z (those the op does not
    take are ignored): the one definition of each computing op but ROUND_DIGITS, IN and
    NOT_IN (`round_value`, `member_value`). `run_block` applies it over a block, an op at a
    time; a kernel compiled for a program's ops (`simulator.fixed_programs`) on one row. With
    `code` a constant, as both call it, only its own case is left."""
    nan = np.nan
    if code == NEG:
        return -x
    if code == NOT:
        return nan if x != x else (1.0 if x == 0.0 else 0.0)
    if code == ADD:
        return x + y
    if code == SUB:
        return x - y
    if code == MUL:
        return x * y
    if code == DIV:
        return nan if y == 0.0 else x / y
    if code == LT:
        return nan if (x != x) | (y != y) else (1.0 if x < y else 0.0)
    if code == LE:
        return nan if (x != x) | (y != y) else (1.0 if x <= y else 0.0)
    if code == GT:
        return nan if (x != x) | (y != y) else (1.0 if x > y else 0.0)
    if code == GE:
        return nan if (x != x) | (y != y) else (1.0 if x >= y else 0.0)
    if code == EQ:
        return nan if (x != x) | (y != y) else (1.0 if x == y else 0.0)
    if code == NE:
        return nan if (x != x) | (y != y) else (1.0 if x != y else 0.0)
    if code == AND:
        # a known False decides; otherwise unknown if either side is (NaN spreads)
        return 0.0 if (x == 0.0) | (y == 0.0) else (nan if (x != x) | (y != y) else 1.0)
    if code == OR:
        return 1.0 if ((x != 0.0) & (x == x)) | ((y != 0.0) & (y == y)) else (
            nan if (x != x) | (y != y) else 0.0)
    if code == IF:  # x the condition, y its value where true, z where false
        return nan if x != x else (y if x != 0.0 else z)
    if code == ABS:
        return abs(x)
    if code == CEIL:
        return nan if (x == np.inf) | (x == -np.inf) else np.ceil(x)
    if code == FLOOR:
        return nan if (x == np.inf) | (x == -np.inf) else np.floor(x)
    if code == ROUND:
        return nan if (x == np.inf) | (x == -np.inf) else np.rint(x)
    if code == MAX:
        return nan if (x != x) | (y != y) else (y if y > x else x)
    if code == MIN:
        return nan if (x != x) | (y != y) else (y if y < x else x)
    return nan  # (not a computing op of one row's operands)


@njit(inline="always")
def round_value(x: float, digits: int) -> float:
    """ROUND_DIGITS on one row: ``round(x, digits)`` as Python rounds."""
    if digits >= 0:
        return _round_places(x, _POW10[digits])
    return _round_tens(x, _POW10[-digits])


@njit(inline="always")
def member_value(code: int, x: float, items: Any) -> float:
    """IN (NOT_IN) on one row: whether x is (is not) one of `items` (an array or a tuple of
    float64); unknown where x is."""
    hit = 1.0 if code == IN else 0.0
    found = False
    for item in items:
        found |= x == item
    return np.nan if x != x else (hit if found else 1.0 - hit)


@njit(cache=True, nogil=True)
def run_block(ops: np.ndarray, consts: np.ndarray, inputs: np.ndarray, start: int, stop: int,
              regs: np.ndarray) -> None:
    """Run every op over rows [start, stop) of `inputs`; register r holds row start + i at
    ``regs[r, i]``. ``stop - start`` must not exceed ``regs.shape[1]``. Each op is one loop
    over the rows, applying `op_value` (`round_value`, `member_value`) with the op's code a
    constant."""
    m = stop - start
    for k in range(ops.shape[0]):
        code = ops[k, 0]
        d = regs[ops[k, 1]]
        if code == LOAD:
            src = inputs[ops[k, 2], start:stop]  # a slice: indexes LLVM can vectorise over
            for i in range(m):
                d[i] = src[i]
        elif code == CONST:
            v = consts[ops[k, 2]]
            for i in range(m):
                d[i] = v
        elif code == NEG:
            a = regs[ops[k, 2]]
            for i in range(m):
                d[i] = op_value(NEG, a[i], 0.0, 0.0)
        elif code == NOT:
            a = regs[ops[k, 2]]
            for i in range(m):
                d[i] = op_value(NOT, a[i], 0.0, 0.0)
        elif code == ADD:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(ADD, a[i], b[i], 0.0)
        elif code == SUB:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(SUB, a[i], b[i], 0.0)
        elif code == MUL:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(MUL, a[i], b[i], 0.0)
        elif code == DIV:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(DIV, a[i], b[i], 0.0)
        elif code == LT:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(LT, a[i], b[i], 0.0)
        elif code == LE:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(LE, a[i], b[i], 0.0)
        elif code == GT:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(GT, a[i], b[i], 0.0)
        elif code == GE:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(GE, a[i], b[i], 0.0)
        elif code == EQ:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(EQ, a[i], b[i], 0.0)
        elif code == NE:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(NE, a[i], b[i], 0.0)
        elif code == AND:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(AND, a[i], b[i], 0.0)
        elif code == OR:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(OR, a[i], b[i], 0.0)
        elif code == IF:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            c = regs[ops[k, 4]]
            for i in range(m):
                d[i] = op_value(IF, a[i], b[i], c[i])
        elif code == ABS:
            a = regs[ops[k, 2]]
            for i in range(m):
                d[i] = op_value(ABS, a[i], 0.0, 0.0)
        elif code == CEIL:
            a = regs[ops[k, 2]]
            for i in range(m):
                d[i] = op_value(CEIL, a[i], 0.0, 0.0)
        elif code == FLOOR:
            a = regs[ops[k, 2]]
            for i in range(m):
                d[i] = op_value(FLOOR, a[i], 0.0, 0.0)
        elif code == ROUND:
            a = regs[ops[k, 2]]
            for i in range(m):
                d[i] = op_value(ROUND, a[i], 0.0, 0.0)
        elif code == ROUND_DIGITS:
            a = regs[ops[k, 2]]
            digits = ops[k, 3]
            for i in range(m):
                d[i] = round_value(a[i], digits)
        elif code == MAX:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(MAX, a[i], b[i], 0.0)
        elif code == MIN:
            a = regs[ops[k, 2]]
            b = regs[ops[k, 3]]
            for i in range(m):
                d[i] = op_value(MIN, a[i], b[i], 0.0)
        elif code == IN:
            a = regs[ops[k, 2]]
            items = consts[ops[k, 3]:ops[k, 3] + ops[k, 4]]
            for i in range(m):
                d[i] = member_value(IN, a[i], items)
        elif code == NOT_IN:
            a = regs[ops[k, 2]]
            items = consts[ops[k, 3]:ops[k, 3] + ops[k, 4]]
            for i in range(m):
                d[i] = member_value(NOT_IN, a[i], items)


@njit(cache=True, nogil=True)
def evaluate_range(ops: np.ndarray, consts: np.ndarray, inputs: np.ndarray, start: int,
                   stop: int, regs: np.ndarray, result: int, out: np.ndarray) -> None:
    """Run the program over rows [start, stop) block by block; ``out[row]`` gets register
    `result` (out is indexed by row, like the inputs)."""
    block = regs.shape[1]
    r = regs[result]
    for low in range(start, stop, block):
        high = min(low + block, stop)
        run_block(ops, consts, inputs, low, high, regs)
        o = out[low:high]
        for i in range(high - low):
            o[i] = r[i]


@njit(inline="always")
def known_true(x: float) -> bool:
    """Whether a condition's value x is known True: known (not NaN) and not zero."""
    return (x == x) & (x != 0.0)


@njit(cache=True, nogil=True)
def first_hit_block(regs: np.ndarray, conditions: np.ndarray, m: int, out: np.ndarray,
                    offset: int) -> None:
    """``out[offset + i]`` = index of the first condition register known True at block row i,
    -1 for none (the FIRST policy)."""
    o = out[offset:offset + m]
    for i in range(m):
        o[i] = -1
    for j in range(conditions.shape[0] - 1, -1, -1):
        c = regs[conditions[j]]
        for i in range(m):
            o[i] = j if known_true(c[i]) else o[i]


@njit(cache=True, nogil=True)
def first_hit_range(ops: np.ndarray, consts: np.ndarray, inputs: np.ndarray, start: int,
                    stop: int, regs: np.ndarray, conditions: np.ndarray,
                    out: np.ndarray) -> None:
    """First-hit rule index per row over rows [start, stop), into ``out[row]``."""
    block = regs.shape[1]
    for low in range(start, stop, block):
        high = min(low + block, stop)
        run_block(ops, consts, inputs, low, high, regs)
        first_hit_block(regs, conditions, high - low, out, low)


# -- the Python-facing side -------------------------------------------------------------------
class NumbaEvaluator:
    """One compiled expression: `evaluate` a columnar scope (as `numpy_target` takes it)."""

    def __init__(self, node: Node, program: Program, vocabulary: Vocabulary,
                 block: int = DEFAULT_BLOCK) -> None:
        self.node = node
        self.program = program
        self.vocabulary = vocabulary
        self.block = block

    def run(self, inputs: np.ndarray, n: int) -> np.ndarray:
        """The result register over an already-encoded input matrix: float64, NaN unknown."""
        out = np.empty(n, dtype=np.float64)
        regs = self.program.registers(self.block)
        evaluate_range(self.program.ops, self.program.consts, inputs, 0, n, regs,
                       self.program.results[0], out)
        return out

    def evaluate(self, scope: ColumnarScope | Columns, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, known): values float64 (flags 1.0/0.0, text as vocabulary codes)."""
        inputs, _ = self.program.inputs(scope, n, self.vocabulary)
        values = self.run(inputs, n)
        return values, ~np.isnan(values)

    def to_list(self, scope: ColumnarScope | Columns, n: int) -> list[Any]:
        """Python values row by row (None where unknown); for tests and reports."""
        inputs, field_kinds = self.program.inputs(scope, n, self.vocabulary)
        kind = self.program.kinds[0] or _field_kind(self.node, field_kinds)
        return decode(self.run(inputs, n), kind, self.vocabulary)


def _field_kind(node: Node, field_kinds: Mapping[str, str | None]) -> str | None:
    match node:
        case Name(path=path):
            return field_kinds.get(".".join(path))
        case IfExp(body=body, orelse=orelse):
            return _field_kind(body, field_kinds) or _field_kind(orelse, field_kinds)
    return None


def decode(values: np.ndarray, kind: str | None, vocabulary: Vocabulary) -> list[Any]:
    """Register values as Python values: bool, float or text, None where unknown."""
    out: list[Any] = []
    for value in values.tolist():
        if value != value:
            out.append(None)
        elif kind == "bool":
            out.append(value != 0.0)
        elif kind == "text":
            out.append(vocabulary.text(int(value)))
        else:
            out.append(value)
    return out


def compile_numba(node: Node, vocabulary: Vocabulary | None = None,
                  block: int = DEFAULT_BLOCK) -> NumbaEvaluator:
    """Compile one resolved tree; its text literals are added to `vocabulary`."""
    vocabulary = vocabulary if vocabulary is not None else Vocabulary()
    return NumbaEvaluator(node, compile_program([node], vocabulary), vocabulary, block)


class FirstHit:
    """The FIRST policy over several rule conditions, evaluated in one interpreter pass."""

    def __init__(self, conditions: Sequence[Node], vocabulary: Vocabulary | None = None,
                 block: int = DEFAULT_BLOCK) -> None:
        self.vocabulary = vocabulary if vocabulary is not None else Vocabulary()
        self.program = compile_program(conditions, self.vocabulary)
        self.conditions = np.array(self.program.results, dtype=np.int64)
        self.block = block

    def run(self, inputs: np.ndarray, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.int64)
        regs = self.program.registers(self.block)
        first_hit_range(self.program.ops, self.program.consts, inputs, 0, n, regs,
                        self.conditions, out)
        return out

    def __call__(self, scope: ColumnarScope | Columns, n: int) -> np.ndarray:
        """Per row, the index of the first condition that is known True; -1 for none."""
        inputs, _ = self.program.inputs(scope, n, self.vocabulary)
        return self.run(inputs, n)
