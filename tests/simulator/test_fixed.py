"""Values a kernel is compiled for (`simulator.fixed`), and `refund_day`'s stages."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit, typeof
from numba.core.errors import TypingError
from numba.extending import overload

from simulator import kernels
from simulator.fixed import Fixed, FixedType


def _scaled(fixed, x):  # the stub the overload below compiles
    raise NotImplementedError


@overload(_scaled)
def _scaled_compiled(fixed, x):
    (factor,) = fixed.values

    def scaled(fixed, x):
        return x * factor

    return scaled


@njit
def _scale(fixed, x):
    return _scaled(fixed, x)


def test_each_value_is_a_type_of_its_own() -> None:
    assert typeof(Fixed((1, (True, None)))) == typeof(Fixed((1, (True, None))))
    assert typeof(Fixed((1, (True, None)))) != typeof(Fixed((1, (False, None))))
    assert isinstance(typeof(Fixed((2,))), FixedType)
    assert Fixed((2,)) == Fixed((2,)) and hash(Fixed((2,))) == hash(Fixed((2,)))
    with pytest.raises(TypeError):
        Fixed(([1],))  # a list is no type's key


def test_a_kernel_is_compiled_once_for_each_value() -> None:
    before = len(_scale.signatures)
    assert _scale(Fixed((3,)), 2.0) == 6.0
    assert _scale(Fixed((5,)), 2.0) == 10.0
    assert _scale(Fixed((3,)), 4.0) == 12.0
    assert len(_scale.signatures) == before + 2


def test_refund_stages_hold_the_tables_and_the_single_positions() -> None:
    masks = np.arange(32, dtype=np.int64).reshape(8, 4)
    keys = np.array([[1.0, 0.0, 0.17]] * 8 + [[1.0, 1.0, 2.5]])
    present = np.array([True, False, True, False, True])
    per_row = np.zeros(4, dtype=np.int32)
    stages, fees = kernels.refund_stages(masks, keys, present, [per_row, 3, per_row, -1, 0, 2])
    table, pays, back, flags, positions = stages.values
    assert table == tuple(tuple(range(4 * s, 4 * s + 4)) for s in range(8))
    assert pays == (True,) * 9 and back == (False,) * 8 + (True,)
    assert flags == (True, False, True, False, True)
    assert positions == (None, 3, None, -1, 0, 2)
    assert fees.dtype == np.float64 and fees.flags.c_contiguous
    assert fees.tolist() == [0.17] * 8 + [2.5]


def test_refund_day_refuses_a_single_rule_where_its_stages_say_row_by_row() -> None:
    n = 4
    z32, z64 = np.zeros(n, dtype=np.float32), np.zeros(n)
    per_row = np.zeros(n, dtype=np.int32)
    stages, fees = kernels.refund_stages(np.zeros((8, 4), dtype=np.int64), np.zeros((9, 3)),
                                         np.zeros(5, dtype=bool), [per_row, 0, 0, 0, 0, 0])
    out = [np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)]
    args = (z64, z32, z32, z32, 0.1, 1.0, 0.2, 0.2, 0.5, 0.5, 0.5, np.zeros(8))
    tail = (fees, z32, z32, z32, np.ones(n, dtype=bool), *out)
    kernels.refund_day(stages, *args, per_row, 0, 0, 0, 0, 0, *tail)  # as its stages say
    with pytest.raises(TypingError, match="row by row"):
        kernels.refund_day(stages, *args, 0, 0, 0, 0, 0, 0, *tail)
