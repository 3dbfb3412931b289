"""The eight-lane vectors of `simulator.simd` against the numbers numpy gives lane by lane.

Each operation is exact IEEE arithmetic per lane, so every check is bit for bit: loads of 1 to 8
numbers at the end of an array (widened from float32 and int32; the lanes past the count read as
zero), stores of as many (rounded to float32, truncated to int32, nothing written past them),
float32 arithmetic emulated by rounding after each operation, masks from bytes and back,
comparisons and selects with NaN about.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from simulator import simd


@njit(cache=False)
def _loaded(x, i, count, out):  # pragma: no cover - compiled
    simd.store(out, 0, simd.LANES, simd.load(x, i, count))


@njit(cache=False)
def _copied(x, i, count, v):  # pragma: no cover - compiled
    simd.store(x, i, count, simd.load(v, 0, simd.LANES))


@njit(cache=False)
def _float32_ops(a, b, out):  # pragma: no cover - compiled
    x, y = simd.load(a, 0, simd.LANES), simd.load(b, 0, simd.LANES)
    simd.store(out, 0, simd.LANES, simd.rounded(a, simd.add(x, y)))
    simd.store(out, 8, simd.LANES, simd.rounded(a, simd.subtract(x, y)))
    simd.store(out, 16, simd.LANES, simd.rounded(a, simd.multiply(x, y)))
    simd.store(out, 24, simd.LANES, simd.rounded(a, simd.divide(x, y)))


@njit(cache=False)
def _compared(x, y, flags, out, masks):  # pragma: no cover - compiled
    a, b = simd.load(x, 0, simd.LANES), simd.load(y, 0, simd.LANES)
    f = simd.load_mask(flags, 0, simd.LANES)
    simd.store_mask(masks, 0, simd.LANES, simd.less(a, b))
    simd.store_mask(masks, 8, simd.LANES, simd.greater(a, b))
    simd.store_mask(masks, 16, simd.LANES, simd.at_least(a, b))
    simd.store_mask(masks, 24, simd.LANES, simd.both(f, simd.less(a, b)))
    simd.store_mask(masks, 32, simd.LANES, simd.either(f, simd.less(a, b)))
    simd.store_mask(masks, 40, simd.LANES, simd.invert(f))
    simd.store(out, 0, simd.LANES, simd.where(f, a, simd.splat(-1)))
    simd.store_mask(masks, 48, simd.LANES, simd.equal(a, b))
    simd.store_mask(masks, 56, simd.LANES, simd.any_bits(b))
    return simd.lanes(f)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.int8])
@pytest.mark.parametrize("count", [1, 2, 5, 7, 8])
def test_loads_widen_count_numbers_and_read_zeros_past_them(dtype: type, count: int) -> None:
    rng = np.random.default_rng(count)
    x = (rng.standard_normal(13) * (1e6 if dtype != np.int8 else 60)).astype(dtype)
    if dtype not in (np.int32, np.int8):
        x[-1] = np.nan
    i = x.size - count  # the last numbers of the array: nothing past it is read
    out = np.full(8, 7.0)
    _loaded(x, i, count, out)
    expected = np.zeros(8)
    expected[:count] = x[i:].astype(np.float64)
    assert out.tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.int8])
@pytest.mark.parametrize("count", [1, 4, 8])
def test_stores_write_count_numbers_in_the_arrays_dtype(dtype: type, count: int) -> None:
    v = np.array([1.0 / 3.0, -2.5, 1e10, -0.0, 7.0, 2.0 ** 24 + 1, -3.0, 0.1])
    if dtype in (np.int32, np.int8):
        info = np.iinfo(dtype)
        v = np.trunc(v.clip(info.min, info.max))
    x = np.arange(12).astype(dtype)
    _copied(x, 12 - count, count, v)
    expected = np.arange(12).astype(dtype)
    expected[12 - count:] = v[:count].astype(dtype)  # numpy's rounding and truncation
    assert x.tobytes() == expected.tobytes()


def test_rounding_after_each_operation_gives_float32_arithmetic() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        a = (rng.standard_normal(8) * 10.0 ** rng.integers(-30, 30, 8)).astype(np.float32)
        b = (rng.standard_normal(8) * 10.0 ** rng.integers(-30, 30, 8)).astype(np.float32)
        out = np.empty(32)
        with np.errstate(all="ignore"):
            _float32_ops(a, b, out)
            expected = np.concatenate([a + b, a - b, a * b, a / b]).astype(np.float64)
        assert np.array_equal(out, expected, equal_nan=True)


def test_comparisons_masks_and_selects() -> None:
    x = np.array([1.0, 5.0, np.nan, -2.0, 3.0, 0.5, 9.0, -0.0])
    y = np.array([2.0, 5.0, 1.0, -0.0, np.nan, np.nan, 10.0, 0.0])
    flags = np.array([1, 0, 1, 1, 0, 1, 0, 1], dtype=np.uint8)
    out, masks = np.empty(8), np.empty(64, dtype=np.uint8)
    bits = _compared(x, y, flags, out, masks)
    f = flags != 0
    with np.errstate(invalid="ignore"):
        want = [x < y, x > y, x >= y, f & (x < y), f | (x < y), ~f, x == y,
                y.view(np.int64) != 0]  # (any_bits: -0.0, NaN set, +0.0 not)
    for k, w in enumerate(want):
        assert masks[8 * k: 8 * k + 8].tolist() == w.astype(np.uint8).tolist(), k
    assert out.tobytes() == np.where(f, x, -1.0).tobytes()
    assert bits == sum(1 << lane for lane in range(8) if f[lane])


def test_a_wrong_array_type_is_a_typing_error() -> None:
    @njit(cache=False)
    def load_int64(x):  # pragma: no cover - compiled
        return simd.lanes(simd.less(simd.load(x, 0, 8), simd.splat(0)))

    with pytest.raises(TypingError, match="load: a contiguous 1-d array"):
        load_int64(np.arange(8))
