"""The compiled kernels give numpy's bits: sums, segment sums, ranks and rounding offsets."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import kernels
from simulator.aggregates import segment_sums
from simulator.population import GOLDEN, offset, position_weights

SIZES = [0, 1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 130, 255, 256, 257, 1000, 1023, 4097,
         65_537, 300_001]


def _spread(rng: np.random.Generator, n: int) -> np.ndarray:
    """Numbers of very different magnitudes and both signs, where summation order shows."""
    return rng.standard_normal(n) * rng.random(n) ** 6 * 1e6


@pytest.mark.parametrize("n", SIZES)
def test_pairwise_sum_has_numpys_bits(n: int) -> None:
    rng = np.random.default_rng(n)
    a = _spread(rng, n + 5)
    for lo in (0, 3):
        assert kernels.pairwise_sum(a, lo, n) == a[lo:lo + n].sum()
        if n:
            assert kernels.pairwise_sum(a, lo, n) == a[lo:lo + n].reshape(1, -1).sum(axis=1)[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segment_take_sums_have_reduceats_bits(dtype: type) -> None:
    rng = np.random.default_rng(7)
    for trial in range(60):
        n = int(rng.integers(0, 3000)) if trial < 55 else 200_000
        x = _spread(rng, n).astype(dtype)
        if n:
            x[rng.integers(0, n, 3)] = -0.0  # a lone -0.0 segment stays -0.0, as in reduceat
        idx = rng.permutation(n)[: int(rng.integers(0, n + 1))]
        cuts = np.sort(rng.integers(0, idx.size + 1, 3))
        sizes = np.diff(np.concatenate([[0], cuts, [idx.size]]))
        expected = segment_sums(x[idx].astype(np.float64), sizes.astype(np.float64))
        got = kernels.segment_take_sums(x, idx, sizes.astype(np.int64), np.empty(sizes.size))
        assert np.array_equal(got, expected)
        assert np.array_equal(np.signbit(got), np.signbit(expected))


def test_floor_share_is_floor_of_count_times_share_plus_offset() -> None:
    rng = np.random.default_rng(3)
    u = rng.random(10_000, dtype=np.float32).astype(np.float64)
    count = np.floor(rng.random(10_000) * 50)
    for k in (1, 2, 5, 7):
        expected = np.floor(count * 0.37 + offset(u, k))
        got = kernels.floor_share(count, 0.37, u, k * GOLDEN, np.empty(u.size))
        assert np.array_equal(got, expected)


def _rank_numpy(score: np.ndarray, alive: np.ndarray, slots: int,
                weights: np.ndarray) -> np.ndarray:
    """Position weights from a stable argsort of -score at float32 precision (the dead last)."""
    s = np.where(alive, score, -np.inf).astype(np.float32)
    order = np.argsort(-s.reshape(-1, slots) + np.float32(0.0), axis=1, kind="stable")
    weight = np.empty(order.shape)
    np.put_along_axis(weight, order, weights[None, :], axis=1)
    return weight.ravel()


def test_rank_float32_matches_a_stable_sort_day_after_day() -> None:
    rng = np.random.default_rng(11)
    groups, slots = 3, 500
    n = groups * slots
    weights = position_weights(slots, 1.0)
    score = -np.round(rng.uniform(5, 20, n), 1)  # many ties
    score[::7] = 0.0
    score[1::13] = -0.0
    alive = rng.random(n) < 0.9
    key, prev = np.empty(n, np.float32), np.empty(n, np.float32)
    order, weight = np.empty(n, np.int64), np.empty(n)
    for day in range(12):
        kernels.rank_float32(score, alive, slots, weights, key, prev, order, weight, day == 0)
        key, prev = prev, key
        assert np.array_equal(weight, _rank_numpy(score, alive, slots, weights))
        # Tomorrow: some prices move (one group not at all), some merchants die.
        moved = rng.random(n) < (0.0 if day == 5 else 0.05)
        moved[:slots] = False
        score = np.where(moved, -np.round(rng.uniform(5, 20, n), 1), score)
        alive &= rng.random(n) < 0.99


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_live_cohorts_and_ratio_sums_match_numpy(dtype: type) -> None:
    rng = np.random.default_rng(5)
    n = 50_000
    alive = rng.random(n) < 0.8
    order = rng.permutation(n)[:40_000]
    sizes = np.array([25_000, 0, 10_000, 5_000])
    live = alive[order]
    expected_order = order[live]
    expected_counts = segment_sums(live.astype(np.int64), sizes.astype(np.float64))
    got_order, counts = np.empty(order.size, dtype=order.dtype), np.empty(sizes.size, np.int64)
    k = kernels.live_in_order(alive, order, sizes, got_order, counts)
    assert np.array_equal(got_order[:k], expected_order)
    assert np.array_equal(counts, expected_counts)
    price = rng.uniform(1, 30, n).astype(dtype)
    price0 = rng.uniform(1, 30, n).astype(dtype)
    expected = segment_sums((price / price0)[expected_order].astype(np.float64),
                            expected_counts)
    got = kernels.segment_take_ratio_sums(price, price0, expected_order, counts,
                                          np.empty(sizes.size))
    assert np.array_equal(got, expected)
