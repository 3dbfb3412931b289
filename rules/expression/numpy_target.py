"""Evaluate a resolved expression over columns of numpy arrays: the simulator's compile target.

The simulator evaluates one rule for a whole merchant population at once, so the same resolved
tree that `python_target` turns into per-event closures is turned here into closures over
columns. `python_target` stays the reference semantics and this module must agree with it row
by row (a property test and the engine differential test hold it to that), including unknowns:

* A **columnar scope** maps a namespace ("event", "merchant", "listing", "order") to a mapping of
  field name to column. A column is one of:

  - a numpy array of length n: float arrays use NaN for "unknown" (float32 is widened to
    float64 exactly, so a float32 9.9 stays 9.8999996 and compares below a 9.9 constant); int,
    bool and text (``<U``) arrays are known everywhere; object arrays hold Python values with
    None for unknown (slow, meant for replaying recorded events, not for the simulator's hot
    path);
  - a `numpy.ma.MaskedArray`: masked rows are unknown;
  - a `Column` (values plus an explicit known mask): the way to carry unknown booleans and text;
  - a Python or numpy scalar, broadcast to every row (a float NaN scalar is unknown);
  - None, or a missing namespace or field: unknown on every row.

* Every result is a `Column`: `values` plus a boolean `known` mask. Numbers are float64 (so
  integers beyond 2**53 lose precision, unlike Python's ints, and `-0` may come out as -0.0,
  which no rule can tell from 0), conditions are bool, text stays text. Values on unknown
  rows are meaningless. A NaN or infinity computed from known inputs (``inf - inf``) stays
  known, exactly as Python computes it.

* Kleene logic and the unknown cases match `python_target`: a comparison or arithmetic with an
  unknown side is unknown, division by zero is unknown, `ceil`/`floor`/`round` of a non-finite
  number are unknown, `and` is False as soon as one side is known False, `or` is True as soon as
  one side is known True, and ``a if c else b`` is unknown where `c` is.

Each node costs a handful of whole-array numpy passes; nothing loops over rows in Python except
two rare fallbacks: object-dtype inputs, and `round(x, digits)` on values so close to a
half-way point that only Python's correctly-rounded `round` can settle them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    children,
    walk,
)

#: Values and known mask; either may be 0-d (one value for every row) until the end.
_Vec = tuple[np.ndarray, np.ndarray]
_Fn = Callable[["Columns"], _Vec]

ColumnInput = Any  # see the module docstring for what a column may be
ColumnarScope = Mapping[str, Mapping[str, ColumnInput] | None]

_NAN = np.float64(np.nan)
_UNKNOWN: _Vec = (np.asarray(_NAN), np.asarray(False))
_TRUE = np.asarray(True)
_MINIMUM = np.minimum.reduce
_FLOAT64 = np.dtype(np.float64)


@dataclass(frozen=True)
class Column:
    """A column with an explicit known mask: unknown rows are where `known` is False.

    Results of `compile_numpy` evaluators are always full-length Columns (possibly read-only
    broadcast views); as an input, a Column's arrays may also be 0-d (one value for every row).
    """

    values: np.ndarray
    known: np.ndarray

    def __len__(self) -> int:
        return int(np.shape(self.values)[0]) if np.ndim(self.values) else 1

    def is_true(self) -> np.ndarray:
        """Rows where the value is known and true: where a condition lets a rule fire."""
        return np.asarray(self.known & _truthy(self.values), dtype=bool)

    def to_float(self) -> np.ndarray:
        """A float64 array with NaN on unknown rows (the simulator's usual number form)."""
        return float_values(self.values, self.known, fresh=False)

    def to_list(self) -> list[Any]:
        """Python values row by row, None where unknown; for tests and reports, not hot paths."""
        values, knowns = np.broadcast_arrays(np.atleast_1d(self.values),
                                             np.atleast_1d(self.known))
        out: list[Any] = []
        for value, known in zip(values.tolist(), knowns.tolist(), strict=True):
            out.append(value if known else None)
        return out


class Columns:
    """A columnar scope of n rows whose columns are normalised once and then cached.

    Evaluators accept a plain mapping too; wrapping it here first lets many expressions over
    the same scope (a whole rulebook's conditions) share the normalisation work. A Columns is a
    snapshot: columns are read when first needed and kept, so build a new one once the data
    behind the scope has changed.
    """

    def __init__(self, scope: ColumnarScope, n: int) -> None:
        if n < 0:
            raise ValueError(f"a columnar scope needs a row count of 0 or more, not {n}")
        self.scope = scope
        self.n = n
        self._cache: dict[tuple[str, str], _Vec] = {}
        #: Results of shared sub-expressions, by structural key (see `compile_numpy`).
        self.memo: dict[Hashable, _Vec] = {}

    def read(self, namespace: str, field: str) -> _Vec:
        key = (namespace, field)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._load(namespace, field, f"{namespace}.{field}")
        return found

    def _load(self, namespace: str, field: str, where: str) -> _Vec:
        """The column normalised, not cached (`where` names it in errors)."""
        space = self.scope.get(namespace)
        return _normalise(space.get(field) if space is not None else None, self.n, where)


def as_columns(scope: ColumnarScope | Columns, n: int) -> Columns:
    """`scope` as a cached `Columns` of n rows (unchanged when it already is one)."""
    if isinstance(scope, Columns):
        if scope.n != n:
            raise ValueError(f"the columnar scope has {scope.n} rows, but {n} were asked for")
        return scope
    return Columns(scope, n)


class VectorEvaluator:
    """A compiled expression: call it with a columnar scope and a row count."""

    def __init__(self, node: Node, fn: _Fn, *, fresh: bool = False) -> None:
        self.node = node
        self._fn = fn
        #: `raw` without its floating-point error guard: for a caller that evaluates many
        #: expressions inside one `np.errstate(all="ignore")` of its own (the guard costs
        #: about as much as a small node).
        self.unguarded: _Fn = fn
        #: True when `raw`'s values are always an array nobody else holds (arithmetic makes a
        #: new one; a field read or a shared sub-expression hands out one others see), so a
        #: caller may hand them on without a defensive copy.
        self.fresh = fresh

    def __call__(self, scope: ColumnarScope | Columns, n: int) -> Column:
        values, known = self.raw(as_columns(scope, n))
        return Column(broadcast_rows(values, n), broadcast_rows(known, n))

    def raw(self, columns: Columns) -> tuple[np.ndarray, np.ndarray]:
        """(values, known) before broadcasting: either may be 0-d, meaning one value for every
        row. Callers that can act once for all rows (a condition no per-row field decides)
        use this to skip whole-column work."""
        with np.errstate(all="ignore"):
            return self._fn(columns)


def broadcast_rows(values: Any, n: int) -> np.ndarray:
    """`values` as a read-only array of n rows: `np.broadcast_to(values, (n,))`, without its
    Python-level cost in the common cases (one value for every row, or already n rows),
    which rule evaluation meets several times per expression."""
    if type(values) is not np.ndarray:
        values = np.asarray(values)
    if values.ndim == 0 and values.dtype.kind != "O":
        out = np.ndarray((n,), values.dtype, values, 0, (0,))
    elif values.ndim == 1 and values.shape[0] == n:
        out = values.view()
    else:
        return np.broadcast_to(values, (n,))
    out.flags.writeable = False
    return out


def compile_numpy(node: Node, shared: frozenset[Hashable] = frozenset()) -> VectorEvaluator:
    """Compile a resolved tree into an evaluator over a columnar scope (see the module doc).

    Sub-expressions whose `structural_key` is in `shared` (see `shared_subexpressions`) are
    computed once per `Columns` and reused by every evaluator compiled with the same keys.
    """
    fresh = _makes_new_values(node) and structural_key(node) not in shared
    return VectorEvaluator(node, _compiler(shared)(node), fresh=fresh)


def _makes_new_values(node: Node) -> bool:
    """Whether the node's values are a new array on every evaluation (a ufunc's output):
    arithmetic, negation and `not`, comparisons and membership, `and`/`or` of two or more.
    Not counted: a field read or a constant (the scope's or a shared array), an `if` (it may
    hand out a branch as it is) and calls (max() may hand out an argument). A shared
    sub-expression's result is also handed to the others that share it: the caller checks."""
    if isinstance(node, BoolOp):
        return len(node.operands) > 1
    return isinstance(node, Binary | Unary | Compare)


def known_truth(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """`Column(values, known).is_true()` on an evaluator's raw result, without the copy: when
    every row is known this may be `values` itself (a flag column the scope holds, say), so
    it is for reading, not for handing on or writing to."""
    truth = _truthy(values)
    if known is _TRUE or (np.ndim(known) == 0 and known):
        return truth
    return known & truth


def float_values(values: np.ndarray, known: np.ndarray, *, fresh: bool) -> np.ndarray:
    """`Column(values, known).to_float()` on an evaluator's raw result: numbers with NaN on
    unknown rows, a new array unless `fresh` says `values` already is one nobody else holds
    (then known rows keep their values without a copy). The usual column, known on every
    row (a 0-d True), is a plain copy, which costs a fraction of a masked select."""
    numbers = _numeric(values)
    if known is _TRUE or (np.ndim(known) == 0 and known):
        if fresh or numbers is not values:
            return numbers  # already a new array (a ufunc's output or a conversion)
        return np.array(numbers)
    return np.where(known, numbers, np.nan)


# -- inputs -----------------------------------------------------------------------------------
def _normalise(raw: ColumnInput, n: int, where: str) -> _Vec:
    """One input column as (values, known), values float64 for numbers."""
    if raw is None:
        return _UNKNOWN
    if type(raw) is np.ndarray and raw.ndim == 1 and raw.shape[0] == n:
        # The simulator's usual column: numbers or flags of n rows.
        kind = raw.dtype.kind
        if kind == "f":
            # (no call at all for the usual float64 column: `astype` costs one even unneeded)
            values = raw if raw.dtype is _FLOAT64 else raw.astype(np.float64, copy=False)
            if not n or not math.isnan(_MINIMUM(raw)):  # `_without_nan`, inline
                return values, _TRUE
            return values, _known_where(~np.isnan(values))
        if kind == "b":
            return raw, _TRUE
    if isinstance(raw, Column):
        values, known = np.asarray(raw.values), np.asarray(raw.known, dtype=bool)
        _check_length(values, n, where)
        _check_length(known, n, where)
        known = _known_where(known)
        if values.dtype.kind == "O":
            values, obj_known = _from_objects(values)
            known = known & obj_known
        elif values.dtype.kind in "iu":
            values = values.astype(np.float64)
        elif values.dtype.kind == "S":
            values = values.astype(str)
        return values, known
    if isinstance(raw, np.ma.MaskedArray):
        values, known = _normalise(raw.data, n, where)
        return values, known & ~np.ma.getmaskarray(raw)
    if isinstance(raw, list | tuple):
        raw = np.array(raw, dtype=object)
    values = np.asarray(raw)
    if values.ndim > 1:
        raise ValueError(f"column {where} must be one-dimensional, not of shape {values.shape}")
    _check_length(values, n, where)
    kind = values.dtype.kind
    if kind == "f":
        if values.ndim and _without_nan(values):
            return values.astype(np.float64, copy=False), _TRUE
        values = values.astype(np.float64, copy=False)
        return values, _known_where(~np.isnan(values))
    if kind in "iu":
        return values.astype(np.float64), _TRUE
    if kind in "bU":
        return values, _TRUE
    if kind == "S":
        return values.astype(str), _TRUE
    if kind == "O":
        return _from_objects(values)
    raise ValueError(f"column {where} has dtype {values.dtype}, which rules cannot read")


def _known_where(known: np.ndarray) -> np.ndarray:
    """A known mask, as one 0-d True when every row is known: the usual case (a price column
    without gaps), which then costs no per-row mask work in any expression that reads it."""
    # (a 0-d True too: the shared one keeps later nodes on their fast path). Counting is
    # the cheaper whole-array test: all() goes through a Python-level reduction wrapper.
    if known.ndim == 1 and known.dtype.kind == "b":
        every = np.count_nonzero(known) == known.shape[0]
    else:
        every = bool(known.all())
    return _TRUE if every else known


def _without_nan(values: np.ndarray) -> bool:
    """True when no value is NaN: the minimum is NaN exactly when some value is (a reduction
    in the column's own dtype, with no mask to allocate), the quick answer for the usual
    column without gaps."""
    return values.shape[0] == 0 or not math.isnan(_MINIMUM(values))


def _check_length(values: np.ndarray, n: int, where: str) -> None:
    if values.ndim == 1 and values.shape[0] != n:
        raise ValueError(f"column {where} has {values.shape[0]} rows, but the scope has {n}")


def _is_unknown(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _from_objects(objects: np.ndarray) -> _Vec:
    """Python values (None = unknown) as a typed column when they share one kind."""
    if objects.ndim == 0:
        if _is_unknown(objects.item()):
            return _UNKNOWN
        # One value (a payload constant): read as a column of one row. Not through
        # `_normalise` again: an int beyond int64 is an object array there too.
        values, known = _from_objects(objects.reshape(1))
        return values.reshape(()), _known_where(known.reshape(()))
    items = objects.tolist()
    known = np.array([not _is_unknown(v) for v in items], dtype=bool)
    present = [v for v, k in zip(items, known.tolist(), strict=True) if k]
    kinds = {_kind_of(v) for v in present}
    if not kinds or kinds == {"number"}:
        values = np.array([_as_float(v) if k else np.nan for v, k in zip(items, known.tolist(),
                                                                          strict=True)],
                          dtype=np.float64)
        return values, known
    if kinds == {"bool"}:
        return np.array([bool(v) if k else False for v, k in zip(items, known.tolist(),
                                                                 strict=True)]), known
    if kinds == {"text"}:
        return np.array([v if k else "" for v, k in zip(items, known.tolist(), strict=True)],
                        dtype=str), known
    return objects, known


def _as_float(value: Any) -> float:
    """A number as float64; an int beyond the largest float is an infinity of its sign (as it
    compares with every float)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _kind_of(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | float | np.integer | np.floating):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


def stack_scopes(
    scopes: Sequence[Mapping[str, Mapping[str, Any] | None]],
    fields: Iterable[str] | None = None,
) -> dict[str, dict[str, Column]]:
    """Stack per-row scopes (as the engine builds them) into a columnar scope of Columns.

    `fields` are dotted names ("event.price"); by default every field any row has. Rows lacking
    a field, or whose namespace is None, are unknown there. This loops in Python, once per
    row and field: it is for replaying recorded events and for tests, not for simulation.
    """
    if fields is None:
        wanted: set[tuple[str, str]] = set()
        for scope in scopes:
            for namespace, space in scope.items():
                if space:
                    wanted.update((namespace, f) for f in space)
    else:
        wanted = {_split_dotted(name) for name in fields}
    out: dict[str, dict[str, Column]] = {}
    for namespace, field in sorted(wanted):
        column = np.empty(len(scopes), dtype=object)
        for i, scope in enumerate(scopes):
            space = scope.get(namespace)
            column[i] = space.get(field) if space else None
        values, known = _from_objects(column)
        known = np.broadcast_to(known, (len(scopes),))
        out.setdefault(namespace, {})[field] = Column(values, known)
    return out


def _split_dotted(name: str) -> tuple[str, str]:
    namespace, _, field = name.partition(".")
    if not field:
        raise ValueError(f"'{name}' is not a dotted field name like event.price")
    return namespace, field


# -- values ----------------------------------------------------------------------------------
def _truthy(values: np.ndarray) -> np.ndarray:
    """Python's bool() of each value, as `and`, `or`, `not` and `if` read a condition."""
    kind = values.dtype.kind
    if kind == "b":
        return values
    if kind in "fiu":
        return values != 0
    if kind == "U":
        return np.char.str_len(values) > 0
    return np.frompyfunc(bool, 1, 1)(values).astype(bool)


def _numeric(values: np.ndarray) -> np.ndarray:
    """Values as float64 for arithmetic; text here is a type error, as in Python."""
    kind = values.dtype.kind
    if kind == "f":
        return values
    if kind in "biu":
        return values.astype(np.float64)
    if kind == "O":
        return np.frompyfunc(lambda v: np.nan if v is None else v, 1, 1)(values).astype(
            np.float64
        )
    raise TypeError(f"text where a number is needed ({values.dtype})")


def _is_text(values: np.ndarray) -> bool:
    return values.dtype.kind in "US"


def _category(values: np.ndarray) -> str:
    kind = values.dtype.kind
    return "text" if kind in "US" else "number" if kind in "fiu" else kind


# -- compilation ------------------------------------------------------------------------------
def structural_key(node: Node) -> Hashable:
    """What a node computes, without where its text was: equal keys mean equal results.

    Types are part of the key because `1`, `1.0` and `true` hash alike in Python.
    """
    match node:
        case Const(value=value):
            return ("const", type(value).__name__, value)
        case Param(value=value):
            if isinstance(value, tuple):
                return ("list", tuple((type(v).__name__, v) for v in value))
            return ("const", type(value).__name__, value)
        case Name(path=path):
            return ("name", path)
        case ListLit(items=items):
            return ("list", tuple(structural_key(i) for i in items))
        case Unary(op=op) | Binary(op=op) | Compare(op=op) | BoolOp(op=op):
            return (type(node).__name__, op, tuple(structural_key(c) for c in children(node)))
        case Call(func=func):
            return ("call", func, tuple(structural_key(c) for c in children(node)))
    return (type(node).__name__, tuple(structural_key(c) for c in children(node)))


def shared_subexpressions(trees: Iterable[Node]) -> frozenset[Hashable]:
    """Keys of the computed sub-expressions that occur more than once among `trees`.

    A rulebook repeats itself (a deadline re-checks its rule's condition, an effect argument
    repeats a comparison's side); compiling with these keys computes each repeat once per scope.
    """
    counts: Counter[Hashable] = Counter()
    for tree in trees:
        for node in walk(tree):
            if not isinstance(node, Const | Param | Name | ListLit):
                counts[structural_key(node)] += 1
    return frozenset(key for key, count in counts.items() if count > 1)


def _compiler(shared: frozenset[Hashable]) -> Callable[[Node], _Fn]:
    """A compile function whose sub-expressions listed in `shared` are memoised per scope."""

    def compile_node(node: Node) -> _Fn:
        fn = _compile_node(node, compile_node)
        if shared and not isinstance(node, Const | Param | Name | ListLit):
            key = structural_key(node)
            if key in shared:
                return _memoised(key, fn)
        return fn

    return compile_node


def _memoised(key: Hashable, fn: _Fn) -> _Fn:
    def memoised(columns: Columns) -> _Vec:
        found = columns.memo.get(key)
        if found is None:
            found = columns.memo[key] = fn(columns)
        return found

    return memoised


def _compile_node(node: Node, sub: Callable[[Node], _Fn]) -> _Fn:
    match node:
        case Const(value=value) | Param(value=value):
            return _constant(value, node)
        case Name(path=(namespace, field)):
            return _reader(namespace, field)
        case Name(path=path):
            raise ExpressionError(
                f"'{'.'.join(path)}' was not resolved; resolve() the expression first",
                node.start,
            )
        case Unary(op="neg", operand=operand):
            return _negate(sub(operand))
        case Unary(op="not", operand=operand):
            return _invert(sub(operand))
        case Binary(op=op, left=left, right=right):
            return _arithmetic(op, sub(left), sub(right))
        case Compare(op=("in" | "not in") as op, left=left, right=right):
            return _membership(op == "in", sub(left), list_items(right))
        case Compare(op=op, left=left, right=right):
            return _compare(op, sub(left), sub(right))
        case BoolOp(op=op, operands=operands):
            return _kleene(tuple(sub(o) for o in operands), decisive=op == "or")
        case IfExp(test=test, body=body, orelse=orelse):
            return _choose(sub(test), sub(body), sub(orelse))
        case Call(func=func, args=args):
            return _call(func, args, node, sub)
    raise ExpressionError("this kind of expression cannot be evaluated", node.start)


def _reader(namespace: str, field: str) -> _Fn:
    key = (namespace, field)
    where = f"{namespace}.{field}"

    def read(columns: Columns) -> _Vec:
        # A field read again (by another rule, or an argument) is one look-up, not a call.
        cache = columns._cache
        found = cache.get(key)
        if found is None:
            found = cache[key] = columns._load(namespace, field, where)
        return found

    return read


def _constant(value: Any, node: Node) -> _Fn:
    if value is None:
        vec = _UNKNOWN
    elif isinstance(value, tuple):
        raise ExpressionError("a list can only follow 'in' or 'not in'", node.start)
    elif isinstance(value, bool | str):
        vec = (np.asarray(value), _TRUE)
    elif isinstance(value, int | float):
        vec = (np.asarray(float(value)), _TRUE)
    else:
        raise ExpressionError(f"the value {value!r} cannot be evaluated", node.start)
    return lambda columns: vec


def list_items(node: Node) -> tuple[Any, ...]:
    """The constant items after `in` / `not in`: a list literal or a list parameter."""
    if isinstance(node, ListLit):
        out = []
        for item in node.items:
            if not isinstance(item, Const):
                raise ExpressionError("list items must be numbers or text", item.start)
            out.append(item.value)
        return tuple(out)
    if isinstance(node, Param) and isinstance(node.value, tuple):
        return node.value
    raise ExpressionError("'in' needs a list like [1, 2] or a list parameter", node.start)


def _negate(operand: _Fn) -> _Fn:
    def negate(columns: Columns) -> _Vec:
        values, known = operand(columns)
        return -_numeric(values), known

    return negate


def _invert(operand: _Fn) -> _Fn:
    def invert(columns: Columns) -> _Vec:
        values, known = operand(columns)
        return ~_truthy(values), known

    return invert


def _arithmetic(op: str, left: _Fn, right: _Fn) -> _Fn:
    ufunc = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[op]

    def arithmetic(columns: Columns) -> _Vec:
        a, a_known = left(columns)
        b, b_known = right(columns)
        a, b = _numeric(a), _numeric(b)
        known = _TRUE if a_known is _TRUE and b_known is _TRUE else a_known & b_known
        if op == "/":
            known = known & (b != 0)  # Python: division by zero is unknown
        return ufunc(a, b), known

    return arithmetic


_ORDERING = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def _compare(op: str, left: _Fn, right: _Fn) -> _Fn:
    ufunc = {"==": np.equal, "!=": np.not_equal, **_ORDERING}[op]

    def compare(columns: Columns) -> _Vec:
        a, a_known = left(columns)
        b, b_known = right(columns)
        # Every row known on both sides (the usual columns): the shared 0-d True, which
        # keeps the next node on this fast path too.
        known = _TRUE if a_known is _TRUE and b_known is _TRUE else a_known & b_known
        if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
            return ufunc(a, b), known  # numbers and flags: what _compare_values does
        return _compare_values(op, a, b, known), known

    return compare


def _compare_values(op: str, a: np.ndarray, b: np.ndarray, known: np.ndarray) -> np.ndarray:
    if _is_text(a) != _is_text(b) and "O" not in (a.dtype.kind, b.dtype.kind):
        # Text against a number or flag: Python says "not equal"; ordering them is an error,
        # unless no row has both sides known (say, a text field missing from the scope).
        if op in ("==", "!="):
            return np.asarray(op == "!=")
        if not np.any(known):
            return np.asarray(False)
        raise TypeError(f"'{op}' cannot compare {a.dtype} with {b.dtype}")
    if "O" in (a.dtype.kind, b.dtype.kind):
        return _object_compare(op, a, b, known)
    if op == "==":
        return np.equal(a, b)
    if op == "!=":
        return np.not_equal(a, b)
    return _ORDERING[op](a, b)


def _object_compare(op: str, a: np.ndarray, b: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Python's own comparison on the rows where both sides are known (mixed-type columns)."""
    import operator

    fn = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
          ">": operator.gt, ">=": operator.ge}[op]
    a, b, known = np.broadcast_arrays(a, b, known)
    out = np.zeros(a.shape, dtype=bool)
    rows = np.flatnonzero(known) if a.ndim else ([()] if bool(known) else [])
    for i in rows:
        out[i] = bool(fn(a[i].item() if hasattr(a[i], "item") else a[i],
                         b[i].item() if hasattr(b[i], "item") else b[i]))
    return out


def _membership(inside: bool, operand: _Fn, items: tuple[Any, ...]) -> _Fn:
    text_items = tuple(i for i in items if isinstance(i, str))
    number_items = tuple(float(i) for i in items if not isinstance(i, str))

    def member(columns: Columns) -> _Vec:
        values, known = operand(columns)
        kind = values.dtype.kind
        if kind == "O":
            found = np.frompyfunc(lambda v: v in items, 1, 1)(values).astype(bool)
        else:
            candidates = text_items if kind in "US" else number_items
            if candidates:
                found = np.equal(values, candidates[0])
                for item in candidates[1:]:
                    found = found | (values == item)
            else:
                found = np.zeros(values.shape, dtype=bool)
        return (found if inside else ~found), known

    return member


def _kleene(operands: tuple[_Fn, ...], *, decisive: bool) -> _Fn:
    """`and` (decisive=False: a known False decides) or `or` (decisive=True: a known True)."""

    def combine(columns: Columns) -> _Vec:
        sides = []
        every_row_known = True
        for operand in operands:
            side = operand(columns)
            sides.append(side)
            if every_row_known and side[1] is not _TRUE:
                known = side[1]
                every_row_known = known.ndim == 0 and bool(known)
        if every_row_known:
            # Every side known on every row: plain boolean algebra, same result.
            result = _truthy(sides[0][0])
            for values, _ in sides[1:]:
                result = (result | _truthy(values)) if decisive else (result & _truthy(values))
            return result, _TRUE
        decided: np.ndarray = np.asarray(False)
        all_known: np.ndarray = _TRUE
        for values, known in sides:
            truth = _truthy(values)
            decided = decided | (known & (truth if decisive else ~truth))
            all_known = all_known & known
        # Decided rows take the decisive value; the rest are unknown unless every side is known.
        return (decided if decisive else ~decided), decided | all_known

    return combine


def _choose(test: _Fn, body: _Fn, orelse: _Fn) -> _Fn:
    def choose(columns: Columns) -> _Vec:
        cond, cond_known = test(columns)
        truth = _truthy(cond)
        a, a_known = body(columns)
        b, b_known = orelse(columns)
        known = cond_known & np.where(truth, a_known, b_known)
        return _select(truth, a, a_known, b, b_known), known

    return choose


def _select(truth: np.ndarray, a: np.ndarray, a_known: np.ndarray, b: np.ndarray,
            b_known: np.ndarray) -> np.ndarray:
    """np.where over two branches whose value kinds may differ where one side is unknown.

    A field missing from the scope reads as an unknown float, whatever the field's type; a
    branch with no known row must not turn the other branch's flags or text into numbers.
    """
    if _category(a) != _category(b):
        if not np.any(b_known):
            return a
        if not np.any(a_known):
            return b
        return np.where(truth, a.astype(object), b.astype(object))
    return np.where(truth, a, b)


def _call(func: str, arg_nodes: tuple[Node, ...], node: Node, sub: Callable[[Node], _Fn]) \
        -> _Fn:
    if func == "round" and len(arg_nodes) == 2:
        digits_node = arg_nodes[1]
        digits = digits_node.value if isinstance(digits_node, Const | Param) else None
        if not isinstance(digits, int) or isinstance(digits, bool):
            raise ExpressionError(
                "the second argument of round() must be a whole number, like 2",
                digits_node.start,
            )
        return _round_digits(sub(arg_nodes[0]), digits)
    args = tuple(sub(a) for a in arg_nodes)
    if func in ("max", "min"):
        return _extreme(args, wants_greater=func == "max")
    unary = {"abs": _abs, "ceil": _ceil, "floor": _floor, "round": _round}.get(func)
    if unary is None or len(args) != 1:
        raise ExpressionError(f"the function {func}() with {len(args)} arguments is not known",
                              node.start)
    only = args[0]

    def call(columns: Columns) -> _Vec:
        values, known = only(columns)
        return unary(_numeric(values), known)

    return call


def _abs(values: np.ndarray, known: np.ndarray) -> _Vec:
    return np.abs(values), known


def _ceil(values: np.ndarray, known: np.ndarray) -> _Vec:
    return np.ceil(values), known & np.isfinite(values)  # math.ceil(inf/nan) raises: unknown


def _floor(values: np.ndarray, known: np.ndarray) -> _Vec:
    return np.floor(values), known & np.isfinite(values)


def _round(values: np.ndarray, known: np.ndarray) -> _Vec:
    # round(x) is round-half-even to an int, like rint; round(inf/nan) raises: unknown.
    return np.rint(values), known & np.isfinite(values)


def _extreme(args: tuple[_Fn, ...], *, wants_greater: bool) -> _Fn:
    """max()/min() exactly as Python's builtins: a later argument replaces the running result
    only when strictly greater (smaller), which also fixes how NaN and -0.0 come out."""
    better = np.greater if wants_greater else np.less

    def extreme(columns: Columns) -> _Vec:
        values, known = args[0](columns)
        result = _numeric(values)
        for arg in args[1:]:
            other, other_known = arg(columns)
            other = _numeric(other)
            result = np.where(better(other, result), other, result)
            known = known & other_known
        return result, known

    return extreme


def _round_digits(operand: _Fn, digits: int) -> _Fn:
    """round(x, digits) as Python does it: correctly rounded half-even on the exact value.

    Scaling by 10**digits and rint gives the right answer except within a rounding error of a
    half-way point (2.675 is really 2.67499999...), so those rows, and any the scaling cannot
    represent, go to Python's round one by one; in money data they are a small minority.
    """
    exact_scale = abs(digits) <= 22  # powers of ten up to 1e22 are exact doubles
    scale = 10.0 ** abs(digits) if exact_scale else 1.0

    def round_digits(columns: Columns) -> _Vec:
        values, known = operand(columns)
        x = _numeric(values)
        scaled = x * scale if digits >= 0 else x / scale
        result = np.rint(scaled)
        result = result / scale if digits >= 0 else result * scale
        distance = np.abs(scaled - np.floor(scaled) - 0.5)
        doubtful = (
            (distance <= 1e-9 * np.maximum(1.0, np.abs(scaled)))
            | ~np.isfinite(scaled)
            | (np.abs(scaled) >= 2.0**52)
        )
        if not exact_scale:
            doubtful = np.ones(np.shape(x), dtype=bool)
        doubtful = doubtful & known  # unknown rows need no answer
        if digits >= 0:
            result = np.where(np.isfinite(x) & (x == np.floor(x)), x, result)
        if np.any(doubtful):
            result = np.array(result, dtype=np.float64, copy=True)
            x_full, doubtful_full = np.broadcast_arrays(x, doubtful)
            if result.ndim == 0:
                result = np.asarray(float(round(float(x_full), digits)))
            else:
                rows = np.flatnonzero(doubtful_full)
                result[rows] = [round(v, digits) for v in x_full[rows].tolist()]
        return result, known

    return round_digits
