"""Where a compiled rule pass reads each field a rulebook's rules read, and the programs it runs.

Why: a pass that decides rules row by row inside a kernel (`simulator.ranking_rules`,
`simulator.charge_rules`) is given the rules as `FixedProgram`s and reads each field where
the model keeps it: a float array over every row (a state array, or one a kernel has just
written), or one number that every row shares (the event's time). `FieldSources` gives each
field its tag (an array's position, or a number's, negative), `read_field` is the kernels'
`read` (`simulator.fixed_programs.first_rule_reading`), and `fixed_rules` compiles the
conditions and the booked arguments, or says None where the numba target or the pass cannot
take them: the caller's numpy path decides then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numba import njit

from rules.expression.errors import ExpressionError
from rules.expression.nodes import Const, Node
from rules.expression.numba_target import Vocabulary, compile_program
from simulator.fixed_programs import FixedProgram
from simulator.kernels import _OPTIONS

#: The arrays a field may be read from (unless a pass takes fewer): numbers, widened to
#: float64 as the numpy target widens them (integers, flags and text are not taken: their
#: semantics differ).
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@njit(inline="always", **_OPTIONS)
def read_field(tag, row, env):  # pragma: no cover - compiled
    """Field `tag` of the row env[0]: its array's value (env[1][tag], as float64), or for
    a negative tag the number every row shares (env[2][-1 - tag])."""
    i, arrays, constants = env
    return np.float64(arrays[tag][i]) if tag >= 0 else constants[-1 - tag]


class FieldSources:
    """The fields' tags for `read_field`: the arrays read row by row, in tag order, and the
    numbers every row shares, by scope, namespace and name (looked up on each call: the
    event's time changes from day to day). One pass may decide several event types, each
    with its own scope (`key`): a field of one name may differ between them."""

    def __init__(self, dtypes: tuple[Any, ...] = _FLOATS) -> None:
        #: The dtypes an array may have (a pass that loops over its arrays, to prefetch
        #: them, needs them of one dtype: numba iterates over a tuple of one type only).
        self.dtypes = tuple(np.dtype(d) for d in dtypes)
        self.arrays: list[np.ndarray] = []
        self.constants: list[tuple[str, str, str]] = []
        self._tags: dict[tuple[str, str], int] = {}

    def tag(self, dotted: str, scope: Mapping[str, Mapping[str, Any]],
            key: str = "") -> int | None:
        """The tag of field `dotted` ("namespace.name") as `scope` (the scope `key`) gives
        it: a 1-D array of one of `dtypes` (every row's value; one tag per array), or a
        number (not a flag) that every row shares; None for anything else."""
        found = self._tags.get((key, dotted))
        if found is not None:
            return found
        namespace, name = dotted.split(".", 1)
        value = (scope.get(namespace) or {}).get(name)
        if isinstance(value, np.ndarray):
            if value.ndim != 1 or value.dtype not in self.dtypes:
                return None
            tag = next((t for t, a in enumerate(self.arrays) if a is value), len(self.arrays))
            if tag == len(self.arrays):
                self.arrays.append(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            tag = -1 - len(self.constants)
            self.constants.append((key, namespace, name))
        else:
            return None
        self._tags[key, dotted] = tag
        return tag

    def values(self, scopes: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> np.ndarray:
        """The shared numbers as the scopes (by key) give them today, in tag order (a NaN
        alone when there are none: the kernel's argument keeps one type)."""
        return np.array([float(scopes[key][namespace][name])
                         for key, namespace, name in self.constants] or [np.nan])


def number_argument(call: Any, name: str) -> Node | None:
    """The node giving the effect call's argument `name`: its expression, or its literal
    number as a constant (None: a literal of another kind, or an argument that is not a
    number)."""
    if call.spec.args[name].kind not in ("number", "duration"):
        return None
    if name in call.expressions:
        return call.expressions[name].node
    value = call.literals.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Const(float(value))


def fixed_rules(conditions: Sequence[Node], arguments: Sequence[Node],
                tag_of: Callable[[str], int | None]
                ) -> tuple[FixedProgram, FixedProgram] | None:
    """The rules' conditions (in rule order) and the arguments they book, as two
    `FixedProgram`s reading each field at the tag `tag_of` gives it; None when a field has
    none, a text is compared, the numba target refuses an expression (a rounding to 30
    digits, say) or a program is past `fixed_programs.MAX_OPS`."""
    vocabulary = Vocabulary()
    try:
        tested = compile_program(list(conditions), vocabulary)
        booked = compile_program(list(arguments), vocabulary)
    except ExpressionError:
        return None
    if len(vocabulary):  # a text the rules compare a field with
        return None
    tags: dict[str, int] = {}
    for dotted in sorted(set(tested.fields) | set(booked.fields)):
        tag = tag_of(dotted)
        if tag is None:
            return None
        tags[dotted] = tag
    programs = []
    for program in (tested, booked):
        rows = {f: k for k, f in enumerate(program.fields)}
        flat = program.flatten(rows, len(program.fields))
        fixed = FixedProgram.of(flat, flat.results, {k: tags[f] for f, k in rows.items()})
        if fixed is None:
            return None
        programs.append(fixed)
    return programs[0], programs[1]
