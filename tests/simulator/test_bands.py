"""`simulator.bands.nanpercentile` against numpy's nanpercentile, bit for bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from simulator.bands import nanpercentile


def _numpy(a: np.ndarray, q: object) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        return np.nanpercentile(a, q, axis=0)


def _same_bits(x: np.ndarray, y: np.ndarray) -> bool:
    """The same bits, but for a zero's sign (0.0 and -0.0 tied in a column: numpy's partition
    and a sort may order them differently)."""
    x, y = np.asarray(x, dtype=np.float64) + 0.0, np.asarray(y, dtype=np.float64) + 0.0
    return x.shape == y.shape and bool(np.array_equal(x.view(np.uint64), y.view(np.uint64)))


@pytest.mark.parametrize("seed", range(40))
def test_the_same_bits_as_numpy_with_nans_infinities_and_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = int(rng.integers(1, 10))
    shape = (r, *rng.integers(1, 6, size=int(rng.integers(1, 4))))
    a = rng.normal(size=shape) * 10.0 ** rng.integers(-3, 4)
    a[rng.random(shape) < 0.2] = 0.5  # ties
    a[rng.random(shape) < rng.random() * 0.6] = np.nan
    a[rng.random(shape) < 0.05] = np.inf
    a[rng.random(shape) < 0.05] = -np.inf
    a[rng.random(shape) < 0.05] = -0.0
    if seed % 4 == 0:
        a[:, 0] = np.nan  # a column without a number
    for q in ((5.0, 95.0), 10.0, 90, (0.0, 50.0, 100.0), [33.3]):
        assert _same_bits(nanpercentile(a, q), _numpy(a, q)), (seed, q)


def test_without_any_nan_it_is_numpys_percentile() -> None:
    a = np.random.default_rng(1).random((8, 365, 3))
    assert _same_bits(nanpercentile(a, (5.0, 95.0)), np.percentile(a, (5.0, 95.0), axis=0))


def test_a_column_of_nans_gives_nan_without_a_warning() -> None:
    a = np.array([[np.nan, 1.0], [np.nan, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo, hi = nanpercentile(a, (0.0, 100.0))
    assert np.isnan(lo[0]) and np.isnan(hi[0])
    assert (lo[1], hi[1]) == (1.0, 3.0)


def test_a_scalar_q_gives_one_row_a_sequence_one_per_percentile() -> None:
    a = np.arange(12.0).reshape(4, 3)
    assert nanpercentile(a, 50.0).shape == (3,)
    assert nanpercentile(a, [50.0]).shape == (1, 3)
    assert nanpercentile(a, (10.0, 90.0)).shape == (2, 3)


def test_infinities_interpolate_to_nan_without_a_warning() -> None:
    a = np.array([[-np.inf], [np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = nanpercentile(a, 50.0)
    assert _same_bits(got, _numpy(a, 50.0))


def test_a_zeros_sign_is_all_that_may_differ() -> None:
    """0.0 and -0.0 tied: numpy's partition and the sort may put either at a rank."""
    a = np.array([[np.nan], [0.0], [-0.0], [-0.0]])
    got, want = nanpercentile(a, 95.0), _numpy(a, 95.0)
    assert got[0] == want[0] == 0.0
    assert _same_bits(got, want)
