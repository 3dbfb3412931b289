"""Values a compiled kernel is specialised for: numba types that carry them.

Why: a kernel's loop that tests a flag or a table entry that never changes during the call
(which effects a refund stage has, whether the merchant pays a grant) still carries the
test, or a select, on every row; numba compiles one version per argument *type*, not per
value, and LLVM does not unswitch a loop over two dozen such tests. A `Fixed` argument puts
its values in the type instead: numba compiles the kernel once per distinct value (cached on
disk like any other signature), and an ``@overload`` that takes it builds the implementation
with the values as constants, which LLVM folds (`kernels.refund_day`: about a quarter fewer
cycles a row, bench/RESULTS.md).

Meant for a few distinct values per run (a rulebook set's tables): each is a compilation of
its own, a second or so for a large kernel.
"""

from __future__ import annotations

from typing import Any

from numba import types
from numba.extending import NativeValue, models, register_model, typeof_impl, unbox


class Fixed:
    """A tuple of ints, bools and None (nested tuples of them too) that a kernel is compiled
    for. Equal values give the same type, so the same machine code."""

    __slots__ = ("values",)

    def __init__(self, values: tuple[Any, ...]):
        hash(values)  # (a type's key must be hashable: fail here, not inside numba)
        self.values = values

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fixed) and other.values == self.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"Fixed{self.values!r}"


class FixedType(types.Dummy):
    """numba's type of a `Fixed`: its values are part of the type (the kernel's signature),
    and it carries no data at run time."""

    def __init__(self, values: tuple[Any, ...]):
        self.values = values
        super().__init__(name=f"Fixed{values!r}")  # (the name is the type's key)


@typeof_impl.register(Fixed)
def _typeof_fixed(val: Fixed, c: Any) -> FixedType:
    return FixedType(val.values)


register_model(FixedType)(models.OpaqueModel)


@unbox(FixedType)
def _unbox_fixed(typ: FixedType, obj: Any, c: Any) -> NativeValue:
    return NativeValue(c.context.get_dummy_value())
