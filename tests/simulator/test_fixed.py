"""Values a kernel is compiled for (`simulator.fixed`), and `refund_day`'s stages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit, typeof
from numba.core.errors import TypingError
from numba.extending import overload

from simulator import kernels
from simulator.fixed import Fixed, FixedType

ROOT = Path(__file__).resolve().parents[2]


def _scaled(fixed, x):  # the stub the overload below compiles
    raise NotImplementedError


@overload(_scaled)
def _scaled_compiled(fixed, x):
    (factor,) = fixed.values

    def scaled(fixed, x):
        return x * factor

    return scaled


def test_each_value_is_a_type_of_its_own() -> None:
    assert typeof(Fixed((1, (True, None)))) == typeof(Fixed((1, (True, None))))
    assert typeof(Fixed((1, (True, None)))) != typeof(Fixed((1, (False, None))))
    assert isinstance(typeof(Fixed((2,))), FixedType)
    assert Fixed((2,)) == Fixed((2,)) and hash(Fixed((2,))) == hash(Fixed((2,)))
    # True == 1 in Python, but they are two types (their reprs differ): and two values.
    assert typeof(Fixed((True,))) != typeof(Fixed((1,))) and Fixed((True,)) != Fixed((1,))


@pytest.mark.parametrize("values", [([1],), (1.0,), (np.int64(1),), (object(),), ("a",)])
def test_only_values_their_repr_tells_apart_are_taken(values: tuple) -> None:
    """A float's repr may hide its NaN payload, an object's is its address (another
    process's cache could hold another object's code under it): refused."""
    with pytest.raises(TypeError, match="ints, bools, None"):
        Fixed(values)


def test_a_kernel_is_compiled_once_for_each_value() -> None:
    @njit
    def scale(fixed, x):
        return _scaled(fixed, x)

    assert scale(Fixed((3,)), 2.0) == 6.0
    assert scale(Fixed((5,)), 2.0) == 10.0
    assert scale(Fixed((3,)), 4.0) == 12.0
    assert len(scale.signatures) == 2


_CACHED = """
import sys
import numpy as np
from simulator import kernels
n = 8
z32 = np.zeros(n, dtype=np.float32)
stages, fees = kernels.refund_stages(np.full((8, 4), 2, dtype=np.int64), np.ones((9, 3)),
                                     np.ones(5, dtype=bool), [1, 2, 3, 4, 5, 6])
out = [np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)]
kernels.refund_day(stages, np.full(n, 9.0), z32, z32 + 0.5, z32 + 0.5, 0.5, 1.0, 0.2, 0.2, 0.5,
                   0.5, 0.5, np.zeros(8), 1, 2, 3, 4, 5, 6, fees, z32 + 1, z32 + 2, z32 + 1,
                   np.ones(n, dtype=bool), *out)
stats = kernels.refund_day.stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()), out[0][0])
"""


def test_a_kernel_compiled_for_a_value_is_loaded_from_the_disk_cache(tmp_path: Path) -> None:
    """A second process finds the first one's machine code for the same value on disk (the
    type, its values included, is part of the cache's index), and computes the same."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", _CACHED], env=env, cwd=tmp_path, check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(2)]
    (hits_1, misses_1, value_1), (hits_2, misses_2, value_2) = runs
    assert (hits_1, misses_1) == ("0", "1")
    assert (hits_2, misses_2) == ("1", "0")
    assert value_1 == value_2 and float(value_1) > 0


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
    with pytest.raises(TypingError, match="every row alike"):
        kernels.refund_day(stages, *args, per_row, per_row, 0, 0, 0, 0, *tail)


def test_refund_day_takes_a_single_position_from_its_stages() -> None:
    """A stage that decides every row alike books by the position its stages hold (folded
    into the machine code), not by the number passed in its place."""
    n = 6
    z32 = np.zeros(n, dtype=np.float32)
    masks = np.zeros((8, 4), dtype=np.int64)
    masks[0, 0] = 1 << 3  # stage 0 (valid evidence, intervened): position 2 grants
    keys = np.array([[1.0, 0.0, 0.0]] * 9)

    def refunds(position: int, passed: int) -> np.ndarray:
        stages, fees = kernels.refund_stages(masks, keys, np.zeros(5, dtype=bool),
                                             [position, 0, 0, 0, 0, 0])
        out = [np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)]
        kernels.refund_day(stages, np.full(n, 20.0), z32 + 1, z32 + 0.5, z32 + 0.5, 0.5, 1.0,
                           0.0, 1.0, 0.5, 0.5, 0.5, np.zeros(8), passed, 0, 0, 0, 0, 0, fees,
                           z32, z32 + 3, z32 + 1, np.ones(n, dtype=bool), *out)
        return out[0]

    granted = refunds(2, 2)
    assert (granted > 0).all()
    assert np.array_equal(refunds(2, 1), granted)
    assert not refunds(1, 2).any()
