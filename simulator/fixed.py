"""Values a compiled kernel is specialised for: numba types that carry them.

Why: a kernel's loop that tests a flag or a table entry that never changes during the call
(which effects a refund stage has, whether the merchant pays a grant) still carries the
test, or a select, on every row; numba compiles one version per argument *type*, not per
value, and LLVM does not unswitch a loop over two dozen such tests. A `Fixed` argument puts
its values in the type instead: numba compiles the kernel once per distinct value (cached on
disk like any other signature), and an ``@overload`` that takes it builds the implementation
with the values as constants, which LLVM folds (`kernels.refund_day`: a third less time,
bench/RESULTS.md).

Meant for a few distinct values per run (a rulebook set's tables): each is a compilation of
its own, two seconds or so for a large kernel, once per machine.
"""

from __future__ import annotations

from typing import Any

from numba import types
from numba.extending import NativeValue, models, register_model, typeof_impl, unbox


def _checked(value: Any, where: str) -> None:
    """Raise unless `value` is an int, a bool, None or a tuple of them (nested too): values
    whose repr says all there is to them, since the type is keyed by it (and numba's cache
    on disk by the type, across processes)."""
    if value is None or type(value) in (int, bool):
        return
    if type(value) is tuple:
        for k, item in enumerate(value):
            _checked(item, f"{where}[{k}]")
        return
    raise TypeError(f"Fixed values are ints, bools, None and tuples of them; {where} is "
                    f"{type(value).__name__} {value!r}")


class Fixed:
    """A tuple of ints, bools and None (nested tuples of them too) that a kernel is compiled
    for. Values with the same repr are one type, so the same machine code (True and 1 are
    two: they are told apart as the type is)."""

    __slots__ = ("_key", "_type", "_values")

    def __init__(self, values: tuple[Any, ...]):
        if type(values) is not tuple:
            raise TypeError(f"Fixed takes a tuple, not {type(values).__name__} {values!r}")
        _checked(values, "values")
        self._values = values
        self._key = f"Fixed{values!r}"
        self._type: FixedType | None = None

    @property
    def values(self) -> tuple[Any, ...]:
        return self._values

    @property
    def key(self) -> str:
        """Its repr, which is its numba type's name and key."""
        return self._key

    def numba_type(self) -> FixedType:
        """Its numba type, made once (the dispatcher asks on every call)."""
        if self._type is None:
            self._type = FixedType(self._values)
        return self._type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fixed) and other.key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return self._key


class FixedType(types.Dummy):
    """numba's type of a `Fixed`: its values are part of the type (the kernel's signature),
    and it carries no data at run time."""

    def __init__(self, values: tuple[Any, ...]):
        self.values = values
        super().__init__(name=f"Fixed{values!r}")  # (the name is the type's key)


@typeof_impl.register(Fixed)
def _typeof_fixed(val: Fixed, c: Any) -> FixedType:
    return val.numba_type()


register_model(FixedType)(models.OpaqueModel)


@unbox(FixedType)
def _unbox_fixed(typ: FixedType, obj: Any, c: Any) -> NativeValue:
    return NativeValue(c.context.get_dummy_value())
