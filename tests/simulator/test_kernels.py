"""The compiled kernels give numpy's bits: sums, segment sums, ranks and rounding offsets."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from numba import njit, types

from simulator import kernels
from simulator.aggregates import _numpy_gini
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


def test_floor_share_is_floor_of_count_times_share_plus_offset() -> None:
    rng = np.random.default_rng(3)
    u = rng.random(10_000, dtype=np.float32).astype(np.float64)
    count = np.floor(rng.random(10_000) * 50)
    for k in (1, 2, 5, 7):
        expected = np.floor(count * 0.37 + offset(u, k))
        got = kernels.floor_share(count, 0.37, u, k * GOLDEN, np.empty(u.size))
        assert np.array_equal(got, expected)


def _claim_inputs(dtype: Any, n: int = 5_000, seed: int = 8) -> dict[str, Any]:
    """Claim counts, costs in the state dtype (a NaN, a negative, an infinite cost among them)
    and the rule that decided each row."""
    rng = np.random.default_rng(seed)
    unit_cost = (rng.random(n) * 40).astype(dtype)
    shipping = (rng.random(n) * 5 - 0.5).astype(dtype)
    unit_cost[:4] = [np.nan, -50.0, np.inf, 0.0]
    shipping[4:7] = [np.nan, -0.0, -3.0]
    count = np.floor(rng.random(n) * 4) * (rng.random(n) < 0.6)
    rule = rng.integers(-1, 3, n).astype(np.int32)
    return {"unit_cost": unit_cost, "shipping": shipping, "count": count, "rule": rule,
            "u": rng.random(n, dtype=np.float32).astype(np.float64)}


def _numpy_cost(unit_cost: np.ndarray, shipping: np.ndarray, merchant_pays: bool,
                with_return: bool, recall: float) -> np.ndarray:
    """`_Claims._cost` as it was written in numpy."""
    product, ship = unit_cost.astype(np.float64), shipping.astype(np.float64)
    if not merchant_pays:
        return np.zeros(product.size)
    total = ship + recall if with_return else product + ship + recall
    if not total.min(initial=np.inf) > 0:
        total = np.where(total > 0, total, 0.0)
    return total


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _numpy_book(cost: np.ndarray, count: np.ndarray, burden: np.ndarray, wrongful: np.ndarray,
                wrongful_burden: np.ndarray, valid: bool) -> None:
    """`_Claims.grant` as it was written in numpy: granted claims' burden, and the wrongful
    claims and their burden (an infinite cost times no claims is NaN, as in the model)."""
    with np.errstate(invalid="ignore"):
        per = cost * count
    burden += per
    if not valid:
        wrongful += count
        wrongful_burden += per


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("merchant_pays", [True, False])
@pytest.mark.parametrize("with_return", [True, False])
def test_claim_grants_book_what_cost_arrays_and_masks_booked(dtype: type, merchant_pays: bool,
                                                             with_return: bool) -> None:
    x = _claim_inputs(dtype)
    cost = _numpy_cost(x["unit_cost"], x["shipping"], merchant_pays, with_return, 0.17)
    for valid in (True, False):
        for position in (None, 1):
            start = np.random.default_rng(1).random((3, x["count"].size))
            want, got = start.copy(), start.copy()
            c = x["count"] if position is None else x["count"] * (x["rule"] == position)
            _numpy_book(cost, c, *want, valid)
            rule = np.empty(0, np.int32) if position is None else x["rule"]
            kernels.claim_grants(x["unit_cost"], x["shipping"], merchant_pays, with_return, 0.17,
                                 x["count"], rule, position or 0, *got, valid)
            assert all(_same(a, b) for a, b in zip(want, got, strict=True))
            if not valid:
                assert not np.array_equal(want[1], start[1])  # the wrongful claims were booked


def test_add_claims_fires_and_count_positive_match_numpy() -> None:
    x = _claim_inputs(np.float64)
    count, rule = x["count"], x["rule"]
    masked = count * (rule == 2)
    acc = np.empty(count.size)
    kernels.add_claims(acc, True, count, rule, 2)
    assert _same(acc, masked)
    kernels.add_claims(acc, False, count, np.empty(0, np.int32), 0)
    assert _same(acc, masked + count)
    assert kernels.fires(rule, 2) and not kernels.fires(rule, 7)
    assert not kernels.fires(np.empty(0, np.int32), 0)
    for n in (1, 255, 256, 257, 600):  # a hit in a whole stretch of 256 rows or the tail
        for at in {0, n // 2, 255 % n, n - 1}:
            one = np.full(n, -1, np.int32)
            one[at] = 3
            assert kernels.fires(one, 3) and not kernels.fires(one, 2), (n, at)
    assert kernels.count_positive(count) == np.count_nonzero(count > 0)
    assert kernels.count_positive(np.array([0.0, -1.0, np.nan])) == 0


def test_split_share_is_floor_share_and_the_rest() -> None:
    x = _claim_inputs(np.float64, seed=4)
    part, rest = np.empty(x["count"].size), np.empty(x["count"].size)
    positive = kernels.split_share(x["count"], 0.37, x["u"], 2 * GOLDEN, part, rest)
    expected = np.floor(x["count"] * 0.37 + offset(x["u"], 2))
    assert _same(part, expected) and _same(rest, x["count"] - expected)
    assert positive == np.count_nonzero(expected > 0) > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_claims_split_is_claim_counts_then_split_share_of_each_class(dtype: type) -> None:
    rng = np.random.default_rng(11)
    n = 5_000
    orders = np.floor(rng.random(n) * 12).astype(dtype)
    quality = rng.random(n, dtype=np.float32).astype(dtype)
    u_claims, u_refund = (rng.random(n, dtype=np.float32).astype(dtype) for _ in range(2))
    args = (orders, quality, u_claims, u_refund, 0.3, 0.8, 0.35)
    ur, valid, lacking = np.empty(n), np.empty(n), np.empty(n)
    kernels.claim_counts(*args, ur, valid, lacking)
    want = [np.empty(n) for _ in range(4)]
    positives = (kernels.split_share(valid, 0.37, ur, GOLDEN, want[0], want[1]),
                 kernels.split_share(lacking, 0.37, ur, 2 * GOLDEN, want[2], want[3]))
    got_ur, *got = (np.empty(n) for _ in range(5))
    assert kernels.claims_split(*args, 0.37, GOLDEN, 2 * GOLDEN, got_ur, *got) == positives
    assert min(positives) > 0 and lacking.sum() > 0
    assert _same(got_ur, ur) and all(_same(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_return", [True, False])
def test_claim_grants_both_is_claim_grants_of_each_class_in_turn(dtype: type,
                                                                 with_return: bool) -> None:
    x = _claim_inputs(dtype)
    lacking = np.floor(np.random.default_rng(2).random(x["count"].size) * 3)
    for rule in (np.empty(0, np.int32), x["rule"]):
        start = np.random.default_rng(3).random((3, x["count"].size))
        want, got = start.copy(), start.copy()
        for count, valid in ((x["count"], True), (lacking, False)):
            kernels.claim_grants(x["unit_cost"], x["shipping"], True, with_return, 0.17, count,
                                 rule, 1, *want, valid)
        kernels.claim_grants_both(x["unit_cost"], x["shipping"], True, with_return, 0.17,
                                  x["count"], lacking, rule, 1, *got)
        assert all(_same(a, b) for a, b in zip(want, got, strict=True))
        assert not np.array_equal(want[1], start[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_answers_come_out_of_capacity_in_order(dtype: type) -> None:
    rng = np.random.default_rng(6)
    n = 4_000
    lacking, valid = np.floor(rng.random(n) * 6), np.floor(rng.random(n) * 6)
    capacity = np.floor(rng.random(n) * 8).astype(dtype)
    wide = capacity.astype(np.float64)
    a_lacking = np.minimum(lacking, wide)
    a_valid = np.minimum(valid, wide - a_lacking)
    got = [np.empty(n) for _ in range(4)]
    kernels.answer_both(lacking, valid, capacity, *got)
    assert all(_same(a, b) for a, b in zip(
        got, (a_lacking, lacking - a_lacking, a_valid, valid - a_valid), strict=True))
    remaining, answered, unanswered = np.empty(n), np.empty(n), np.empty(n)
    kernels.answer(lacking, capacity, remaining, answered, unanswered)
    assert _same(answered, a_lacking) and _same(unanswered, lacking - a_lacking)
    assert _same(remaining, wide - a_lacking)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kinds", ["all", "automated", "human", "lacking only", "none"])
def test_review_close_books_reviews_then_closes_the_day(dtype: type, kinds: str) -> None:
    x = _claim_inputs(dtype, seed=5)
    n = x["count"].size
    rng = np.random.default_rng(2)
    auto_valid = np.floor(rng.random(n) * 5) if kinds in ("all", "automated") else None
    human_valid = np.floor(rng.random(n) * 3) if kinds in ("all", "human") else None
    auto_lacking = np.floor(rng.random(n) * 5) if kinds not in ("human", "none") else None
    start = [rng.random(n) * 9, np.floor(rng.random(n) * 3), rng.random(n) * 5]
    alive = rng.random(n) < 0.9
    u, share, propensity = x["u"], 0.4, 0.6
    cost = _numpy_cost(x["unit_cost"], x["shipping"], True, True, 0.0)
    # As the model booked them in numpy: floor shares, grants, then the day's close.
    want = [a.copy() for a in start]
    granted_valid = human_valid
    if auto_valid is not None:
        extra = np.floor(auto_valid * share + offset(u, 5))
        granted_valid = extra if granted_valid is None else granted_valid + extra
    if granted_valid is not None:
        _numpy_book(cost, granted_valid, *want, True)
    if auto_lacking is not None:
        _numpy_book(cost, np.floor(auto_lacking * share + offset(u, 6)), *want, False)
    wrongful = want[1]
    appeals = np.where(alive & (wrongful > 0), np.floor(wrongful * propensity + offset(u, 7)), 0)
    expected = [*want, appeals.astype(np.int64)]
    got = [np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)]
    empty = np.empty(0)
    kernels.review_close(
        empty if auto_valid is None else auto_valid, empty if human_valid is None else human_valid,
        empty if auto_lacking is None else auto_lacking, share, u, 5 * GOLDEN, 6 * GOLDEN,
        x["unit_cost"], x["shipping"], True, True, 0.0, *[a.copy() for a in start], alive,
        7 * GOLDEN, propensity, *got)
    assert all(_same(a, b) for a, b in zip(expected, got, strict=True))
    assert got[3].any()  # some merchants want to appeal


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_changed_rows_are_flatnonzero_of_the_bits_that_differ(dtype: type) -> None:
    rng = np.random.default_rng(9)
    previous = rng.random(3_000).astype(dtype)
    current = previous.copy()
    current[[3, 17, 2_999]] += 1
    current[40] = -0.0 if previous[40] == 0 else 0.0  # a zero whose sign differs: changed
    previous[41], current[41] = np.nan, np.nan  # the same NaN: unchanged
    bits = np.dtype(f"u{previous.itemsize}")
    expected = np.flatnonzero(current.view(bits) != previous.view(bits))
    out = np.empty(current.size, dtype=np.int64)
    k = kernels.changed_rows(current.view(bits), previous.view(bits), out)
    assert np.array_equal(out[:k], expected) and k == 4
    assert previous.tobytes() == current.tobytes()  # the new reference


def test_charge_adds_known_fees_of_live_merchants_where_the_rule_fired() -> None:
    rng = np.random.default_rng(12)
    n = 3_000
    amount = rng.random(n) * 9
    amount[:3] = [np.nan, np.inf, -2.0]
    orders = np.floor(rng.random(n) * 4)
    orders[3] = np.inf
    mask, alive = rng.random(n) < 0.7, rng.random(n) < 0.9
    start = rng.random(n)
    for m, times in ((mask, orders), (None, orders), (mask, None), (None, None)):
        fired = np.ones(n, dtype=bool) if m is None else m
        ok = fired & ~np.isnan(amount) & alive
        with np.errstate(invalid="ignore"):
            expected = start + np.where(ok, amount * (1.0 if times is None else times), 0.0)
        out = start.copy()
        kernels.charge(out, np.empty(0, dtype=bool) if m is None else m, amount, alive,
                       np.empty(0) if times is None else times)
        assert _same(out, expected)


def _rank_numpy(score: np.ndarray, alive: np.ndarray, slots: int,
                weights: np.ndarray) -> np.ndarray:
    """Position weights from a stable argsort of -score at float32 precision (the dead last)."""
    s = np.where(alive, score, -np.inf).astype(np.float32)
    order = np.argsort(-s.reshape(-1, slots) + np.float32(0.0), axis=1, kind="stable")
    weight = np.empty(order.shape)
    np.put_along_axis(weight, order, weights[None, :], axis=1)
    return weight.ravel()


@pytest.mark.parametrize("narrow", [False, True])
@pytest.mark.parametrize("told", [False, True])
def test_rank_float32_matches_a_stable_sort_day_after_day(told: bool, narrow: bool) -> None:
    """Day after day, some scores move (none in one group, none at all on one day), some
    merchants die and some enter: the weights are a stable sort's, whether the kernel is told
    the rows whose score moved (`told`) or computes every key. `narrow`: the scores move
    within a band, so the ranks above and below the moved listings' old and new places stay
    (and the kernel leaves them unwritten)."""
    rng = np.random.default_rng(11)
    groups, slots = 3, 500
    n = groups * slots
    weights = position_weights(slots, 1.0)
    score = -np.round(rng.uniform(5, 20, n), 1)  # many ties
    score[::7] = 0.0
    score[1::13] = -0.0
    alive = rng.random(n) < 0.9
    key, seen = np.empty(n, np.uint32), np.empty(n, np.uint8)
    ranked, weight = np.empty(n, np.uint64), np.empty(n)
    rows: np.ndarray | None = None
    for day in range(12):
        kernels.rank_float32(score, alive.view(np.uint8), slots, weights, key, seen, ranked,
                             weight, np.empty(0, np.int64) if rows is None else rows,
                             rows is None, day == 0)
        assert np.array_equal(weight, _rank_numpy(score, alive, slots, weights))
        # Tomorrow: some prices move (one group not at all), some merchants die or enter
        # (not on day 3: then only the rows told are looked at).
        moved = rng.random(n) < (0.0 if day == 5 else 0.05)
        moved[:slots] = False
        if narrow:  # a few listings within one band of scores
            moved &= (score < -11.0) & (score > -13.0) & (rng.random(n) < 0.5)
        low, high = (11, 13) if narrow else (5, 20)
        score = np.where(moved, -np.round(rng.uniform(low, high, n), 1), score)
        score[moved & (rng.random(n) < 0.1)] = -0.0
        if day != 3:
            alive = (alive & (rng.random(n) < 0.99)) | (rng.random(n) < 0.005)
        # A listing told but unchanged changes nothing.
        rows = np.flatnonzero(moved | (rng.random(n) < 0.01)) if told else None


def test_merge_moved_writes_only_the_stretch_that_moved() -> None:
    """Two listings of a group move within it: the ranking is a stable sort's again, and the
    listings ranked above both moved listings' old and new places, or below, keep their
    weight without a write (NaN here stays NaN). `_group_keys` gives the moved listings' old
    keys' least and greatest."""
    slots = 12
    weights = position_weights(slots, 1.0)
    old_score = -(100.0 + 10.0 * np.arange(slots))  # best first: slot s at rank s
    new_score = old_score.copy()
    new_score[4], new_score[7] = -175.0, -125.0  # 4 drops past 7, 7 climbs past 3
    alive = np.ones(slots, dtype=np.uint8)
    fkey, gbits = np.empty(slots, np.float32), np.empty(slots, np.uint32)
    changed = np.empty(slots, np.uint64)
    k, _, _ = kernels._group_keys(old_score, alive, fkey, gbits, changed, True)
    granked = np.sort(changed[:k])
    old_bits = gbits.copy()
    k, least, most = kernels._group_keys(new_score, alive, fkey, gbits, changed, False)
    assert k == 2
    old = (old_bits[[4, 7]].astype(np.uint64) << np.uint64(32)) | np.array([4, 7], np.uint64)
    assert (least, most) == (old.min(), old.max())
    moved = np.sort(changed[:k])
    gweight = np.full(slots, np.nan)
    moved_slot = np.zeros(slots, dtype=np.bool_)
    kernels._merge_moved(moved, granked, gweight, weights, moved_slot, np.empty(slots + 1,
                         np.uint64), least, most)
    order = np.argsort(-new_score.astype(np.float32), kind="stable")
    assert np.array_equal(granked & np.uint64(0xFFFFFFFF), order)
    # New ranks 3..7 (slot 7 climbs to rank 3, slot 4 drops to rank 7) are written; the rest
    # kept their rank and were not.
    written = np.zeros(slots, dtype=bool)
    written[order[3:8]] = True
    assert np.isnan(gweight[~written]).all()
    assert np.array_equal(gweight[order[3:8]], weights[3:8])
    assert not moved_slot.any()


def test_group_exposure_is_the_numpy_expression() -> None:
    """Weight x scale over the group's (pairwise) total, times the group's impressions, plus
    an equal share of its channel impressions for the admitted; zero for the dead. Groups
    with and without admitted listings, scales of very different sizes."""
    rng = np.random.default_rng(5)
    groups, slots = 4, 1_001
    n = groups * slots
    weight = position_weights(slots, 1.0)[rng.permutation(n) % slots]
    alive = rng.random(n) < 0.8
    scale = _spread(rng, n) ** 2
    channel = np.where(rng.random(n) < 0.3, rng.choice([250.0, 1e3 / 3], n), 0.0)
    channel[:slots] = 0.0  # one group admits no one
    impressions = rng.uniform(1e4, 1e6, groups)
    share = rng.random(groups)
    got = np.empty(n)
    positive = kernels.group_exposure(weight, alive, scale, channel, impressions, share, slots,
                                      np.empty(slots), got, True)
    want = _numpy_group_exposure(weight, alive, scale, channel, impressions, share, groups,
                                 slots)
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))
    assert positive == np.count_nonzero(channel > 0)


def _numpy_group_exposure(weight: np.ndarray, alive: np.ndarray, scale: np.ndarray,
                          channel: np.ndarray, impressions: np.ndarray, share: np.ndarray,
                          groups: int, slots: int) -> np.ndarray:
    """The numpy expressions `kernels.group_exposure` replaces."""
    w = np.where(alive, weight * scale, 0.0).reshape(groups, slots)
    total = w.sum(axis=1)
    want = np.where(alive.reshape(groups, slots), impressions[:, None] * w / total[:, None], 0.0)
    admitted_rows = (alive & (channel > 0)).reshape(groups, slots)
    admitted = admitted_rows.sum(axis=1)
    extra = channel.reshape(groups, slots) * share[:, None] / np.maximum(admitted, 1)[:, None]
    return np.where(admitted_rows, want + extra, want).ravel()


@pytest.mark.parametrize("slots", [1, 7, 64, 1_003])
def test_group_exposure_counts_the_admitted_whatever_the_dead_channels_hold(slots: int) -> None:
    """The admitted count (`channel x alive > 0`) is `alive & (channel > 0)` for channels of
    every kind, live or dead: NaN, infinities, signed zeros, negatives; odd group sizes."""
    rng = np.random.default_rng(slots)
    groups = 3
    n = groups * slots
    weight = rng.uniform(0.1, 1.0, n)
    alive = rng.random(n) < 0.7
    alive[::slots] = True  # a live listing in every group: a total above zero
    scale = rng.uniform(0.5, 2.0, n).astype(np.float32)
    kinds = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -5.0, 5e-324, 250.0, 1e3 / 3])
    channel = kinds[rng.integers(0, kinds.size, n)]
    impressions = rng.uniform(1e4, 1e6, groups)
    share = rng.random(groups)
    got = np.empty(n)
    positive = kernels.group_exposure(weight, alive, scale, channel, impressions, share, slots,
                                      np.empty(slots), got, True)
    want = _numpy_group_exposure(weight, alive, scale, channel, impressions, share, groups,
                                 slots)
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))
    assert positive == np.count_nonzero(channel > 0)


@pytest.mark.parametrize("slots", [1, 7, 1_003])
def test_group_exposure_without_positive_channels_skips_them(slots: int) -> None:
    """Told that no channel is positive, the kernel gives the exposure it gives reading
    channels that are none of them positive (NaN, -inf, zeros of both signs, negatives),
    and says it found none; told nothing, it counts the positive ones."""
    rng = np.random.default_rng(slots + 1)
    groups = 3
    n = groups * slots
    weight = rng.uniform(0.1, 1.0, n)
    alive = rng.random(n) < 0.7
    alive[::slots] = True
    scale = rng.uniform(0.5, 2.0, n).astype(np.float32)
    kinds = np.array([np.nan, -np.inf, 0.0, -0.0, -5.0])
    channel = kinds[rng.integers(0, kinds.size, n)]
    impressions = rng.uniform(1e4, 1e6, groups)
    share = rng.random(groups)
    read, skipped = np.empty(n), np.empty(n)
    assert kernels.group_exposure(weight, alive, scale, channel, impressions, share, slots,
                                  np.empty(slots), read, True) == 0
    assert kernels.group_exposure(weight, alive, scale, channel, impressions, share, slots,
                                  np.empty(slots), skipped, False) == 0
    want = _numpy_group_exposure(weight, alive, scale, channel, impressions, share, groups,
                                 slots)
    assert np.array_equal(read.view(np.uint64), want.view(np.uint64))
    assert np.array_equal(skipped.view(np.uint64), want.view(np.uint64))


@pytest.mark.parametrize("n", [0, 1, 9, 1_000])
def test_put_known_is_numpy_copyto_where_known(n: int) -> None:
    """`put_known` is ``np.copyto(target, values, where=mask & ~np.isnan(values))`` bit for
    bit: NaN, infinities, signed zeros, masked rows; broadcast (stride-0) values too."""
    rng = np.random.default_rng(n)
    kinds = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -5.0, 5e-324, 2.5])
    for values in (kinds[rng.integers(0, kinds.size, n)] if n else np.empty(0),
                   np.broadcast_to(np.float64(-0.0), (n,)),
                   np.broadcast_to(np.float64(np.nan), (n,))):
        mask = rng.random(n) < 0.6
        target = rng.uniform(-1.0, 1.0, n)
        want = target.copy()
        np.copyto(want, values, where=mask & ~np.isnan(values))
        kernels.put_known(target, values, mask.view(np.uint8))
        assert np.array_equal(target.view(np.uint64), want.view(np.uint64))


def test_changed_rows_within_blocks() -> None:
    """`mark_changed_in` over several fields: changed bit for bit (-0.0 against 0.0 counts)
    only within the blocks, and the previous values become the current ones there."""
    rng = np.random.default_rng(9)
    n = 10_000
    starts, stops = np.array([0, 3_000, 7_001]), np.array([2_500, 7_000, 10_000])
    inside = np.zeros(n, dtype=bool)
    for a, b in zip(starts, stops, strict=True):
        inside[a:b] = True
    fields = [rng.random(n).astype(np.float32) for _ in range(3)]
    fields[0][::17] = 0.0
    previous = [f.copy() for f in fields]
    changed = np.zeros(n, dtype=bool)
    for _ in range(3):
        current = [np.where(rng.random(n) < 0.02, rng.random(n).astype(np.float32), f)
                   for f in previous]
        current[0][::17] = np.where(rng.random(current[0][::17].size) < 0.5, -0.0, 0.0)
        want = np.zeros(n, dtype=bool)
        for c, p in zip(current, previous, strict=True):
            want |= c.view(np.uint32) != p.view(np.uint32)
        want &= inside
        for f, (c, p) in enumerate(zip(current, previous, strict=True)):
            kernels.mark_changed_in(c.view(np.uint32), p.view(np.uint32), starts, stops,
                                    changed, f == 0)
            assert np.array_equal(p.view(np.uint32)[inside], c.view(np.uint32)[inside])
        assert np.array_equal(changed, want)


@pytest.mark.parametrize("n", [255, 256, 257, 1000, 4097, 12_288])
def test_rank_values_are_the_sorted_numbers(n: int) -> None:
    """The counted buckets' ranks are a sort's numbers (as values: a zero may be either
    zero); an all-equal sample or one spanning past the float range is left to quickselect."""
    rng = np.random.default_rng(n + 5)
    ranks = np.array([0, 1, n // 10, n // 10, n // 10 + 1, n // 2, n // 2 + 1, n - 2, n - 1])
    for kind in range(7):
        x = _order_sample(rng, n, kind)
        values = np.empty(ranks.size)
        done = kernels._rank_values(x.copy(), n, ranks, values)
        assert done == (n >= 256 and kind != 2)
        if done:
            assert np.array_equal(values, np.sort(x)[ranks])
    wide = np.where(np.arange(n) % 2, -1.7e308, 1.7e308) * (0.5 + rng.random(n) / 2)
    assert not kernels._rank_values(wide, n, ranks, np.empty(ranks.size))
    # Ranks out of order (a quantile asked twice) are left to quickselect too.
    assert not kernels._rank_values(rng.random(n), n, ranks[::-1].copy(), np.empty(ranks.size))


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 12_288])
def test_bucket_sort_is_numpys_sort_or_says_not(n: int) -> None:
    rng = np.random.default_rng(n + 9)
    for x in (rng.random(n) * 1e5, np.exp(rng.standard_normal(n) * 20),
              np.abs(rng.standard_normal(n)) * rng.random(n) ** 6 * 1e6):
        out = np.empty(n)
        if kernels._bucket_sort_nonnegative(x, out):
            assert out.tobytes() == np.sort(x).tobytes()
    if n > kernels._BUCKET_MOST:  # ties crowd a bucket: the radix sort's turn
        assert not kernels._bucket_sort_nonnegative(np.full(n, 2.0), np.empty(n))
        assert kernels._bucket_sort_nonnegative(rng.random(n), np.empty(n))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_live_minima_are_numpys_where_it_is_sure(dtype: type) -> None:
    """`live_minima` finds each group's least live price bit for bit as numpy's masked
    minimum does (groups with nobody live get all bits set; +inf and 0.0 prices count), and
    says it is unsure when a live price is negative, -0.0 or NaN (a dead one's may be)."""
    rng = np.random.default_rng(13)
    groups, slots = 5, 257
    unsigned = {4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]
    top = unsigned(np.array(np.inf, dtype=dtype).view(unsigned))
    none = unsigned(np.iinfo(unsigned).max)
    for trial in range(6):
        price = rng.uniform(0.5, 900, groups * slots).astype(dtype)
        alive = rng.random(groups * slots) < 0.7
        alive[slots:2 * slots] = False  # a group with nobody live
        price[rng.choice(price.size, 5)] = np.inf
        price[rng.choice(price.size, 2)] = 0.0
        dead = np.flatnonzero(~alive)
        price[dead[:4]] = [np.nan, -1.0, -0.0, -np.inf]  # the dead's prices never count
        bad = [None, np.nan, -3.0, -0.0, -np.inf, None][trial]
        if bad is not None:
            price[np.flatnonzero(alive)[7]] = bad
        out = np.empty(groups, dtype=unsigned)
        ok = kernels.live_minima(price.view(unsigned), alive.view(np.uint8), slots, top, none,
                                 out)
        assert ok == (bad is None)
        if ok:
            want = np.min(price.reshape(-1, slots), axis=1, initial=np.inf,
                          where=alive.reshape(-1, slots))
            got = np.where(out == none, dtype(np.inf), out.view(dtype))
            np.testing.assert_array_equal(got.view(unsigned), want.view(unsigned))
            assert out[1] == none


@pytest.mark.parametrize("size", [0, 1, 60, 500])
def test_split_due_is_numpys_selections(size: int) -> None:
    """`split_due` parts the merchants given a deadline as `Model._due_rows`' numpy did:
    due by the time and live, due and dead, due later (not inf), in order; NaN and inf due
    times nowhere; and the earliest later due time (inf if none)."""
    rng = np.random.default_rng(size)
    n = 1_000
    T = 5.0
    kinds = np.array([np.nan, np.inf, -np.inf, T, np.nextafter(T, np.inf), 0.0, 7.5])
    due_at = np.where(rng.random(n) < 0.5, rng.uniform(0, 10, n),
                      kinds[rng.integers(0, kinds.size, n)])
    alive = rng.random(n) < 0.8
    rows = np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
    out = np.empty((3, size), dtype=np.int64)
    n_now, n_later, n_dead, earliest = kernels.split_due(rows, due_at, alive.view(np.uint8), T,
                                                         *out)
    at = due_at[rows]
    later = (at > T) & (at < np.inf)
    due = rows[at <= T]
    np.testing.assert_array_equal(out[0, :n_now], due[alive[due]])
    np.testing.assert_array_equal(out[1, :n_later], rows[later])
    np.testing.assert_array_equal(out[2, :n_dead], due[~alive[due]])
    assert earliest == (at[later].min() if later.any() else np.inf)


def test_take_deadlines_is_numpys_gathers_and_resets() -> None:
    """`take_deadlines` reads the due merchants' rule, event time and price (NaN included)
    and clears their deadlines as numpy's gathers and scatters do, touching no other
    merchant; it tells whether every rule is the first one's."""
    rng = np.random.default_rng(4)
    n = 500
    for rules_drawn in ((3,), (0, 2), ()):
        dl_rule = rng.choice(np.array([-1, 0, 1, 2, 3], dtype=np.int16), n)
        dl_due = rng.uniform(0, 10, n)
        dl_time = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 5, n))
        dl_price = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(1, 50, n))
        due = np.sort(rng.choice(n, 0 if not rules_drawn else 60, replace=False))
        dl_rule[due] = rng.choice(np.array(rules_drawn or (0,), dtype=np.int16), due.size)
        want = [a.copy() for a in (dl_rule, dl_due, dl_time, dl_price)]
        expected = (want[0][due], want[2][due], want[3][due])
        want[0][due], want[1][due], want[2][due], want[3][due] = -1, np.inf, np.nan, np.nan
        rule, at, price = (np.empty(due.size, dtype=np.int16), np.empty(due.size),
                           np.empty(due.size))
        one = kernels.take_deadlines(due, dl_rule, dl_due, dl_time, dl_price, rule, at, price)
        assert one == bool((expected[0] == expected[0][:1]).all())
        for got, exp in zip((rule, at, price), expected, strict=True):
            np.testing.assert_array_equal(got, exp)
        for got, exp in zip((dl_rule, dl_due, dl_time, dl_price), want, strict=True):
            np.testing.assert_array_equal(got, exp)


def test_arm_prompts_is_numpys_selections() -> None:
    """`arm_prompts` arms the fired observers whose deadline is within the day, as numpy's
    masks pick them (a deadline of exactly a day, NaN, unfired rows), and tells whether a
    fired one's deadline is later."""
    rng = np.random.default_rng(6)
    n, day = 2000, 86400.0
    for later_share in (0.0, 0.2):
        obs = np.sort(rng.choice(3 * n, n, replace=False))
        fired = rng.random(n) < 0.6
        after = np.where(rng.random(n) < later_share, rng.choice([day, 2 * day], n),
                         rng.choice([0.0, 3600.0, np.nextafter(day, 0.0), np.nan], n))
        price = rng.uniform(1, 50, n)
        prompt_rule = np.full(3 * n, -1, dtype=np.int16)
        event_price = np.full(3 * n, np.nan)
        want_rule, want_price = prompt_rule.copy(), event_price.copy()
        today = fired & (after < day)
        want_rule[obs[today]] = 2
        want_price[obs[today]] = price[today]
        armed = np.empty(n, dtype=obs.dtype)
        k, later = kernels.arm_prompts(obs, fired.view(np.uint8), after, price, day, 2,
                                       prompt_rule, event_price, armed)
        np.testing.assert_array_equal(armed[:k], obs[today])
        assert later == bool((fired & (after >= day)).any())
        np.testing.assert_array_equal(prompt_rule, want_rule)
        np.testing.assert_array_equal(event_price, want_price)


@pytest.mark.parametrize("target_dtype", [np.float64, np.float32, np.int64])
def test_prompt_price_change_is_numpys_scatters(target_dtype: type) -> None:
    """`prompt_price_change` opens the prompts `Model._apply_listing` opened with numpy:
    only where the rule fired (or everywhere) and the target is known, at the target, one
    more prompt seen and prompted; other merchants untouched."""
    rng = np.random.default_rng(8)
    n = 3000
    idx = rng.permutation(2 * n)[:n]
    for fired in (rng.random(n) < 0.4, None):
        target = rng.uniform(1, 50, n).astype(target_dtype)
        if np.issubdtype(target_dtype, np.floating):
            target[rng.random(n) < 0.1] = np.nan
        state = (rng.random(2 * n) < 0.3, rng.uniform(1, 50, 2 * n),
                 rng.integers(0, 5, 2 * n).astype(np.int32), rng.uniform(0, 3, 2 * n))
        want = [a.copy() for a in state]
        v = target if fired is None else target[fired]
        at = idx if fired is None else idx[fired]
        ok = ~np.isnan(v) if v.dtype.kind == "f" else np.ones(v.shape, dtype=bool)
        j = at[ok]
        want[0][j] = True
        want[1][j] = v[ok]
        want[2][j] += 1
        want[3][j] += 1
        opened = np.empty(n, dtype=np.int64)
        k = kernels.prompt_price_change(idx, np.empty(0, np.uint8) if fired is None
                                        else fired.view(np.uint8), target, *state, opened)
        for got, exp in zip(state, want, strict=True):
            np.testing.assert_array_equal(got, exp)
        np.testing.assert_array_equal(opened[:k], j)
    # One target for every merchant (a 0-d argument, broadcast without a copy).
    state = (np.zeros(2 * n, dtype=bool), np.zeros(2 * n), np.zeros(2 * n, dtype=np.int32),
             np.zeros(2 * n))
    k = kernels.prompt_price_change(idx, np.empty(0, np.uint8),
                                    np.broadcast_to(np.asarray(target_dtype(7)), idx.shape),
                                    *state, np.empty(n, dtype=np.int64))
    assert k == n
    assert state[0][idx].all() and (state[1][idx] == 7).all() and state[0].sum() == n


def test_cancel_deadlines_is_numpys_table_lookups() -> None:
    """`cancel_deadlines` clears the prompt rules and deadlines the cancel table picks (rule
    -1 reads the table's last entry, False), as `Model._cancel`'s numpy did."""
    rng = np.random.default_rng(9)
    n = 400
    table = np.array([True, False, True, False])
    prompt_rule = rng.integers(-1, 3, n).astype(np.int16)
    dl_rule = rng.integers(-1, 3, n).astype(np.int16)
    dl_due, dl_time, dl_price = rng.uniform(0, 9, n), rng.uniform(0, 9, n), rng.uniform(0, 9, n)
    idx = np.sort(rng.choice(n, 150, replace=False))
    want = [a.copy() for a in (prompt_rule, dl_rule, dl_due, dl_time, dl_price)]
    want[0][idx[table[want[0][idx]]]] = -1
    j = idx[table[want[1][idx]]]
    want[1][j], want[2][j], want[3][j], want[4][j] = -1, np.inf, np.nan, np.nan
    state = (prompt_rule, dl_rule, dl_due, dl_time, dl_price)
    kernels.cancel_deadlines(idx, table, *state)
    for got, exp in zip(state, want, strict=True):
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("at_least", [-np.inf, 86400.0])
def test_set_deadlines_is_numpys_masked_scatters(at_least: float) -> None:
    """`set_deadlines` arms the fired merchants whose deadline is known and at least
    `at_least` (NaN never), due at the time plus it, with the event's time and price (a
    broadcast NaN too), as the model's numpy masks and scatters did."""
    rng = np.random.default_rng(10)
    n, T = 300, 1.7e9
    idx = rng.permutation(2 * n)[:n]
    fired = rng.random(n) < 0.5
    after = rng.choice([np.nan, 0.0, 3600.0, 86400.0, 3 * 86400.0], n)
    for price in (rng.uniform(1, 50, n), np.broadcast_to(np.nan, (n,))):
        state = (np.full(2 * n, -1, dtype=np.int16), np.full(2 * n, np.inf),
                 np.full(2 * n, np.nan), np.full(2 * n, np.nan))
        want = [a.copy() for a in state]
        ok = fired & (after >= at_least)
        j = idx[ok]
        want[0][j], want[1][j], want[2][j], want[3][j] = 3, T + after[ok], T, price[ok]
        armed = np.empty(n, dtype=np.int64)
        k, earliest = kernels.set_deadlines(idx, fired.view(np.uint8), after, at_least, 3, T,
                                            price, *state, armed)
        for got, exp in zip(state, want, strict=True):
            np.testing.assert_array_equal(got, exp)
        np.testing.assert_array_equal(armed[:k], j)
        assert earliest == (T + after[ok]).min(initial=np.inf)


def test_union_sorted_is_numpys_union() -> None:
    """`union_sorted` merges two increasing arrays into their union (shared numbers once,
    either empty), and refuses (-1) an input that is not increasing."""
    rng = np.random.default_rng(12)
    for na, nb in ((0, 0), (0, 5), (7, 0), (50, 80), (200, 3)):
        a = np.sort(rng.choice(200, na, replace=False))
        b = np.sort(rng.choice(200, nb, replace=False))
        out = np.empty(na + nb, dtype=np.int64)
        k = kernels.union_sorted(a, b, out)
        np.testing.assert_array_equal(out[:k], np.union1d(a, b))
    out = np.empty(6, dtype=np.int64)
    assert kernels.union_sorted(np.array([1, 3, 2]), np.array([4, 5, 6]), out) == -1
    assert kernels.union_sorted(np.array([1, 2]), np.array([4, 4, 6, 7]), out) == -1


def test_prompt_answers_are_numpys_selections() -> None:
    """`count_range` and `prompt_answers` pick the merchants that follow, dismiss and ignore
    their prompt as the numpy expressions do: draws on and one float32 step either side of
    each count's thresholds, counts from 0 (a probability of 1 - (1 - a) / (1 - b)) up,
    rows in any order and none."""
    rng = np.random.default_rng(3)
    first, step, dismiss_p = 0.3, 0.2, 0.4
    for n in (1, 2, 9, 1000, 5003):
        seen = rng.integers(0, 6, n).astype(np.int32)
        r = rng.random(n, dtype=np.float32)
        k = seen.astype(np.float64)
        p = 1.0 - (1.0 - first) * (1.0 - step) ** (k - 1.0)
        edge = p + (1.0 - p) * dismiss_p
        at = rng.random(n) < 0.5
        for bound in (p, edge):
            b = bound.astype(np.float32)
            r = np.where(at & (rng.random(n) < 0.3), b, r)
            r = np.where(at & (rng.random(n) < 0.2), np.nextafter(b, np.float32(0)), r)
            r = np.where(at & (rng.random(n) < 0.2), np.nextafter(b, np.float32(1)), r)
        rows = rng.permutation(n)[: max(1, n // 2)]
        lo, hi = kernels.count_range(rows, seen)
        assert (lo, hi) == (seen[rows].min(), seen[rows].max())
        counts = np.arange(lo, hi + 1, dtype=np.float64)
        by_count = 1.0 - (1.0 - first) * (1.0 - step) ** (counts - 1.0)
        out = np.full((3, rows.size), -1, dtype=np.int64)
        nf, nd, ni = kernels.prompt_answers(rows, seen, r, by_count, lo, dismiss_p, out)
        pr, rr = p[rows], r[rows]
        follow = rr < pr
        dismiss = ~follow & (rr < pr + (1.0 - pr) * dismiss_p)
        ignore = ~follow & ~dismiss
        np.testing.assert_array_equal(out[0, :nf], rows[follow])
        np.testing.assert_array_equal(out[1, :nd], rows[dismiss])
        np.testing.assert_array_equal(out[2, :ni], rows[ignore])
        assert (nf and nd and ni) or n < 10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_toggle_codes_are_numpys_selections(dtype: type) -> None:
    """Bits 0-3 of `toggle_codes` are the model's numpy selections of accidental enrolments,
    attempts to leave, repricing and the attempts with the code, with the thresholds as
    Python floats (NEP 50: compared in the arrays' dtypes): margins and draws set on and
    around each threshold, NaN margins, every combination of live and enrolled, odd sizes."""
    rng = np.random.default_rng(11)
    enrol_p, leave_p, leave_m, reprice_m, code_p = 0.02, 0.05, 0.05, 0.1, 0.05 * 0.3
    near = np.array([enrol_p, leave_p, leave_m, reprice_m, code_p, 0.0])
    for n in (0, 1, 7, 33, 1000, 4099):
        alive, enrolled = rng.random(n) < 0.8, rng.random(n) < 0.5
        r = rng.random(n, dtype=np.float32)
        margin = rng.uniform(-0.2, 0.3, n).astype(dtype)
        if n > 8:  # on the thresholds, and one float32 step either side of them
            at = rng.choice(n, n // 2, replace=False)
            on = near.astype(np.float32)
            steps = np.concatenate([on, np.nextafter(on, np.float32(-1)),
                                    np.nextafter(on, np.float32(1))])
            r[at[: n // 4]] = rng.choice(steps, n // 4)
            margin[at[n // 4:]] = rng.choice(steps, at.size - n // 4).astype(dtype)
            margin[rng.choice(n, 3)] = np.nan
        code = np.full(n, 255, dtype=np.uint8)
        kernels.toggle_codes(alive.view(np.uint8), enrolled.view(np.uint8), margin, r,
                             np.float32(enrol_p), np.float32(leave_p), dtype(leave_m),
                             dtype(reprice_m), np.float32(code_p), code)
        assert (code < 16).all()
        np.testing.assert_array_equal((code & 1) != 0, alive & ~enrolled & (r < enrol_p))
        np.testing.assert_array_equal((code & 2) != 0, alive & enrolled & (margin < leave_m)
                                      & (r < leave_p))
        np.testing.assert_array_equal((code & 4) != 0, alive & ~enrolled & (margin < reprice_m))
        np.testing.assert_array_equal((code & 8) != 0, ((code & 2) != 0) & (r < code_p))
        if n > 8:  # the thresholds decided some rows: the test can tell float32 from float64
            assert ((r == np.float32(enrol_p)) | (r == np.float32(leave_p))
                    | (r == np.float32(code_p))).any()


@pytest.mark.parametrize("draws", [np.float32, np.float64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_web_prices_are_numpys(dtype: type, draws: type) -> None:
    """`web_prices` gives the whole-web prices and falls `Model.step`'s numpy expression gave,
    to the bit (the model's group draws are float64; float32 ones, were they so, would have
    numpy round the Python numbers to float32): draws on and around the cut probability,
    groups with no live seller
    (an infinite minimum), minima above and equal to the price, floors and caps that bind,
    NaN among the prices, minima, floors and caps."""
    rng = np.random.default_rng(5)
    cut_p, low, high, rebound = 0.3, 0.02, 0.1, 0.01
    g = 2000
    web = rng.uniform(50, 100, g)
    minima = (web * rng.uniform(0.8, 1.2, g)).astype(dtype)
    minima[rng.choice(g, 50)] = np.inf
    minima[:20] = web[:20].astype(dtype)
    floor = web * rng.uniform(0.5, 1.0, g)
    cap = web * rng.uniform(1.0, 1.02, g)
    for a in (web, floor, cap):
        a[rng.choice(g, 5)] = np.nan
    minima[rng.choice(g, 5)] = np.nan
    gu = rng.random((2, g), dtype=draws)
    on = draws(cut_p)
    gu[0, rng.choice(g, 300)] = rng.choice([on, np.nextafter(on, draws(0)),
                                            np.nextafter(on, draws(1))], 300)
    lowest = np.minimum(web, minima.astype(np.float64))
    depth = low + (high - low) * gu[1]
    expected = np.where(gu[0] < cut_p, np.maximum(floor, lowest * (1.0 - depth)),
                        np.minimum(cap, web * (1.0 + rebound)))
    new, observed = np.empty(g), np.empty(g, dtype=bool)
    f = draws
    kernels.web_prices(web, minima, floor, cap, gu[0], gu[1], f(cut_p), f(low), f(high - low),
                       f(1.0), 1.0 + rebound, new, observed)
    assert new.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(observed, expected < web)
    assert observed.any() and not observed.all()


#: Every combination of `toggle_codes` bits a merchant can have.
_TOGGLE_CODES = np.array([1, 2, 4, 5, 10], dtype=np.uint8)


@pytest.mark.parametrize("size", [0, 1, 9, 1000])
def test_toggle_parts_are_numpys_selections(size: int) -> None:
    """`toggle_parts` parts the coded merchants as numpy's selections did: accidental
    enrolments, attempts to leave without the code and with it, each in order."""
    rng = np.random.default_rng(size + 4)
    coded = np.sort(rng.choice(10 * size + 1, size, replace=False)).astype(np.int64)
    code = _TOGGLE_CODES[rng.integers(0, _TOGGLE_CODES.size, size)]
    out = np.full((4, size), -1, dtype=np.int64)
    ne, nu, nv = kernels.toggle_parts(coded, code, out)
    leave = (code & 2) != 0
    np.testing.assert_array_equal(out[0, :ne], coded[(code & 1) != 0])
    np.testing.assert_array_equal(out[1, :nu], coded[leave & ((code & 8) == 0)])
    np.testing.assert_array_equal(out[2, :nv], coded[(code & 8) != 0])
    assert (ne and nu and nv) or size < 9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 1, 9, 3000])
def test_reprice_is_numpys_repricing(dtype: type, size: int) -> None:
    """`reprice` raises the prices of the coded merchants that numpy's selections reprice
    (coded for repricing alone; toggled and now out of auto-follow with a margin below the
    threshold), to the same bits (NEP 50: the Python numbers rounded to the state dtype),
    and lists those raised in order: margins and targets on and around the thresholds,
    NaN margins, costs and burdens."""
    rng = np.random.default_rng(size + 9)
    n = 4 * size + 3
    reprice_below, reprice_to = 0.1, 0.3
    margin = rng.uniform(-0.2, 0.3, n).astype(dtype)
    margin[rng.choice(n, n // 4)] = dtype(reprice_below)
    unit_cost = (rng.random(n) * 40).astype(dtype)
    shipping = (rng.random(n) * 5).astype(dtype)
    burden = (rng.random(n) * 0.4).astype(dtype)
    for a in (margin, unit_cost, burden):
        a[rng.choice(n, 2)] = np.nan
    target = (unit_cost + shipping) / (1.0 - reprice_to - burden)
    price = np.where(rng.random(n) < 0.5, target * dtype(0.9), target * dtype(1.1))
    price[rng.choice(n, n // 8)] = target[rng.choice(n, n // 8)]  # (some equal: not raised)
    price = price.astype(dtype)
    enrolled = rng.random(n) < 0.5
    coded = np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
    code = _TOGGLE_CODES[rng.integers(0, _TOGGLE_CODES.size, size)]
    # numpy's selections, as `Model._toggles_by_numpy` makes them
    rp = coded[(code & 5) == 4]
    toggled = coded[(code & 3) != 0]
    back = toggled[~enrolled[toggled] & (margin[toggled] < reprice_below)]
    rp = np.sort(np.concatenate((rp, back)))
    expected = price.copy()
    goal = (unit_cost[rp] + shipping[rp]) / (1.0 - reprice_to - burden[rp])
    up = goal > expected[rp]
    expected[rp[up]] = goal[up]
    raised = np.full(size, -1, dtype=np.int64)
    k = kernels.reprice(coded, code, enrolled.view(np.uint8), margin, dtype(reprice_below),
                        unit_cost, shipping, burden, dtype(1.0 - reprice_to), price, raised)
    assert price.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(raised[:k], rp[up])
    assert k or size < 9


@pytest.mark.parametrize("size", [0, 1, 9, 1000])
def test_mark_positions_finds_numpys_unique_positions(size: int) -> None:
    """`mark_positions` marks the rule positions numpy's `unique` finds among the rules that
    are not -1 and counts those rules; a position beyond the table gives -1."""
    rng = np.random.default_rng(size + 6)
    for values in (np.arange(-1, 6), np.array([-1, 3]), np.array([2])):
        rules = values[rng.integers(0, values.size, size)].astype(np.int16)
        present = np.zeros(6, dtype=np.uint8)
        k = kernels.mark_positions(rules, present)
        np.testing.assert_array_equal(np.flatnonzero(present), np.unique(rules[rules >= 0]))
        assert k == np.count_nonzero(rules >= 0)
    if size:
        rules[rng.integers(0, size)] = 6
        assert kernels.mark_positions(rules, np.zeros(6, dtype=np.uint8)) == -1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 1, 9, 1000])
def test_follow_and_close_prompts_are_numpys(dtype: type, size: int) -> None:
    """`follow_prompts` takes the old prices and sets the targets (float64, rounded to the
    state dtype: values between two float32 numbers, NaN, inf, beyond float32's range) as
    numpy's gathers and assignment did; `close_prompts` closes the prompts and resets the
    counts, or leaves the counts, as numpy's assignments did."""
    rng = np.random.default_rng(size + 12)
    n = 3 * size + 1
    target = rng.uniform(1, 100, n) * (1 + rng.random(n) * 1e-7)
    target[rng.choice(n, min(n, 4), replace=False)] = [np.nan, np.inf, 1e300, -0.0][:min(n, 4)]
    price = rng.uniform(1, 100, n).astype(dtype)
    rows = np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
    expected_price, expected_old = price.copy(), price[rows]
    with np.errstate(over="ignore"):  # (1e300 to float32: inf)
        expected_price[rows] = target[rows]
    old = np.full(size, -1.0, dtype=dtype)
    kernels.follow_prompts(rows, target, price, old)
    assert price.tobytes() == expected_price.tobytes()
    assert old.tobytes() == expected_old.tobytes()
    for seen_too in (True, False):
        prompt_open, seen = rng.random(n) < 0.5, rng.integers(0, 5, n).astype(np.int32)
        expected_open, expected_seen = prompt_open.copy(), seen.copy()
        expected_open[rows] = False
        if seen_too:
            expected_seen[rows] = 0
        kernels.close_prompts(rows, prompt_open, seen, seen_too)
        np.testing.assert_array_equal(prompt_open, expected_open)
        np.testing.assert_array_equal(seen, expected_seen)


def _numpy_known_rows(idx: np.ndarray, values: np.ndarray,
                      rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The merchants idx[rows] where an effect's argument is known, and its values there, as
    `Model._apply_listing` picked them with numpy (a 0-d argument is one value for all)."""
    at = idx if rows is None else idx[rows]
    v = values if rows is None or values.ndim == 0 else values[rows]
    ok = ~np.isnan(v) if v.dtype.kind == "f" else np.ones(v.shape, dtype=bool)
    if v.ndim == 0:
        return (at, v) if ok else (at[:0], v)
    return at[ok], v[ok]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 1, 9, 1000])
def test_set_price_and_silence_prompts_are_numpys(dtype: type, size: int) -> None:
    """`set_price` and `silence_prompts` book the effects where numpy's selections and
    scatters booked them: on the fired merchants (or every one), where the argument is
    known (per merchant, NaN on some, or one value for all, known or not), prices rounded
    to the state dtype, durations as float64 or whole numbers."""
    rng = np.random.default_rng(size + 13)
    n = 3 * size + 1
    idx = np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
    prices = rng.uniform(1, 100, size) * (1 + rng.random(size) * 1e-7)
    prices[rng.random(size) < 0.1] = np.nan
    durations = [rng.uniform(0, 3e5, size), rng.integers(0, 300_000, size)]
    for fired in (None, rng.random(size) < 0.6):
        every = np.zeros(0, dtype=np.uint8)
        mask = every if fired is None else fired.view(np.uint8)
        for values in (prices, np.array(42.5), np.array(np.nan)):
            state = [rng.uniform(1, 100, n).astype(dtype), rng.random(n) < 0.5,
                     rng.integers(0, 5, n).astype(np.int32), np.floor(rng.random(n) * 3)]
            expected = [a.copy() for a in state]
            j, v = _numpy_known_rows(idx, values, fired)
            expected[0][j] = v
            expected[1][j] = False
            expected[2][j] = 0
            expected[3][j] += 1
            kernels.set_price(idx, mask, np.broadcast_to(values, idx.shape), *state)
            for got, want in zip(state, expected, strict=True):
                assert got.tobytes() == want.tobytes()
        for values in (*durations, np.array(7200.0), np.array(np.nan)):
            state = [rng.random(n) < 0.5, rng.uniform(0, 1e6, n)]
            expected = [a.copy() for a in state]
            j, v = _numpy_known_rows(idx, values, fired)
            expected[0][j] = False
            expected[1][j] = 1_000.5 + v
            kernels.silence_prompts(idx, mask, np.broadcast_to(values, idx.shape), 1_000.5,
                                    *state)
            for got, want in zip(state, expected, strict=True):
                assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("size", [0, 1, 9, 1000])
def test_open_prompts_are_numpys_selections(size: int) -> None:
    """`open_prompts` finds the recorded merchants whose prompt is still open, live and
    dead, in order, as numpy's selections did, and their counts' range as `count_range`."""
    rng = np.random.default_rng(size + 2)
    n = 3 * size + 1
    prompt_open, alive = rng.random(n) < 0.7, rng.random(n) < 0.8
    seen = rng.integers(0, 9, n).astype(np.int32)
    rows = np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
    out = np.full((2, size), -1, dtype=np.int64)
    n_live, n_dead, lo, hi = kernels.open_prompts(rows, prompt_open.view(np.uint8),
                                                  alive.view(np.uint8), seen, *out)
    open_ = rows[prompt_open[rows]]
    live = open_[alive[open_]]
    np.testing.assert_array_equal(out[0, :n_live], live)
    np.testing.assert_array_equal(out[1, :n_dead], open_[~alive[open_]])
    assert (lo, hi) == (tuple(kernels.count_range(live, seen)) if live.size else (0, 0))
    assert (n_live and n_dead) or size < 9


_ORDER_SIZES = [1, 2, 3, 7, 8, 9, 127, 128, 129, 1000, 4097]


def _order_sample(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    """Numbers whose order statistics are hard to get right: distinct, tied, all equal,
    sorted either way, float32 widened, and zeros of both signs."""
    if kind == 0:
        return rng.standard_normal(n) * 10
    if kind == 1:
        return np.round(rng.uniform(1, 40, n), 1).astype(np.float32).astype(np.float64)
    if kind == 2:
        return np.full(n, 3.5)
    if kind == 3:
        return np.sort(rng.random(n))
    if kind == 4:
        return np.sort(rng.random(n))[::-1].copy()
    if kind == 5:
        return np.where(rng.random(n) < 0.8, 10.0, rng.random(n))
    x = np.round(rng.random(n) * 4) - 2.0
    x[rng.random(n) < 0.3] = -0.0
    return x


@pytest.mark.parametrize("n", _ORDER_SIZES)
def test_select_puts_the_order_statistic_in_place(n: int) -> None:
    rng = np.random.default_rng(n)
    for kind in range(7):
        x = _order_sample(rng, n, kind)
        lo = int(rng.integers(0, n))
        k = int(rng.integers(lo, n))
        a = x.copy()
        if lo:
            kernels._select(a, 0, n, lo - 1)  # as `_quantiles_of` narrows the range
        kernels._select(a, lo, n, k)
        assert a[k] == np.sort(x)[k]
        assert np.all(a[:k] <= a[k]) and np.all(a[k + 1:] >= a[k])
        assert np.array_equal(np.sort(a), np.sort(x))  # a reordering, nothing lost


@pytest.mark.parametrize("n", _ORDER_SIZES)
def test_quantiles_and_median_have_numpys_bits_or_say_not(n: int) -> None:
    """Where the compiled order statistics claim numpy's bits they have them; they claim them
    whenever no zero is involved."""
    rng = np.random.default_rng(n + 7)
    for q in (np.array([0.1, 0.5, 0.9]), np.array([0.0, 0.3, 0.3, 0.75, 1.0]),
              np.array([0.5])):
        for kind in range(7):
            x = _order_sample(rng, n, kind)
            out = np.empty(q.size)
            exact = kernels._quantiles_of(x.copy(), n, q, out)
            expected = np.quantile(x, q)
            assert exact or np.any(x == 0.0)
            if exact:
                assert out.tobytes() == expected.tobytes(), (kind, q)
            median, exact = kernels._median_of(x.copy(), n)
            assert exact or np.any(x == 0.0)
            if exact:
                assert np.float64(median).tobytes() == np.float64(np.median(x)).tobytes()


def _sample_numpy(x: np.ndarray, alive: np.ndarray, idx: np.ndarray, q: np.ndarray) -> np.ndarray:
    live = idx[alive[idx]]
    return np.quantile(x[live].astype(np.float64), q) if live.size else np.full(q.size, np.nan)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", [[0, 0, 0], [1, 0, 2], [7, 129, 4096], [300, 50, 0]], ids=str)
def test_sample_statistics_match_numpy_on_the_live_samples(dtype: type, sizes: list[int]) -> None:
    rng = np.random.default_rng(sum(sizes))
    n = 3 * sum(sizes) + 10
    q = np.array([0.1, 0.5, 0.9])
    for all_dead in (False, True):
        alive = rng.random(n) < (0.0 if all_dead else 0.7)
        arrays = [rng.uniform(1, 40, n).astype(dtype) for _ in range(3)]
        arrays[0] = np.round(arrays[0]).astype(dtype)  # ties
        exposure = np.abs(rng.standard_normal(n)) * 1e4 * alive
        cohorts = [np.sort(rng.choice(n, s, replace=False)) for s in sizes]
        pooled = np.sort(rng.choice(n, sum(sizes), replace=False))
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        flat = np.concatenate([*cohorts, np.empty(0, np.int64)]).astype(np.int64)
        union = np.union1d(flat, pooled).astype(np.int64)
        quantiles = np.empty((3, len(sizes), q.size))
        exact = np.empty((3, len(sizes)), dtype=np.bool_)
        pooled_exposure = np.empty(pooled.size)
        median, median_exact, live = kernels.sample_statistics(
            *arrays, exposure, alive, union, np.searchsorted(union, flat), bounds,
            np.searchsorted(union, pooled), q, quantiles, exact, pooled_exposure)
        assert exact.all() and median_exact
        for v, x in enumerate(arrays):
            for c, idx in enumerate(cohorts):
                assert quantiles[v, c].tobytes() == _sample_numpy(x, alive, idx, q).tobytes()
        live_pooled = pooled[alive[pooled]]
        expected = (np.median(arrays[1][live_pooled].astype(np.float64)) if live_pooled.size
                    else np.nan)
        assert np.float64(median).tobytes() == np.float64(expected).tobytes()
        assert np.array_equal(pooled_exposure[:live], exposure[live_pooled])


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 129, 2047, 2048, 12_288, 65_537])
def test_gini_has_the_bits_of_numpys_sort(n: int) -> None:
    rng = np.random.default_rng(n)
    samples = [rng.random(n) * 1e5, np.round(rng.random(n) * 10),
               np.abs(rng.standard_normal(n)) * rng.random(n) ** 6 * 1e6,
               rng.random(n).astype(np.float32).astype(np.float64),
               np.exp(rng.standard_normal(n) * 20), np.zeros(n)]
    for x in samples:
        value, certain = kernels.gini(x)
        assert certain
        assert np.float64(value).tobytes() == np.float64(_numpy_gini(x)).tobytes()
    if n > 1:  # what the radix sort does not take: the caller asks numpy
        for bad in (-1e-9, -0.0, np.nan):
            x = rng.random(n)
            x[n // 2] = bad
            assert not kernels.gini(x)[1]


def _sprinkle(rng: np.random.Generator, x: np.ndarray, values: list[float],
              share: float = 0.03) -> np.ndarray:
    """`x` with a share of its entries replaced by the given special values."""
    hit = rng.random(x.size) < share
    x[hit] = rng.choice(np.array(values), hit.sum()).astype(x.dtype)
    return x


#: Blocks of the kernels' row tests, with gaps between them (rows no block holds stay as they
#: were): longer than a stretch of `kernels.accounts`, a single row and an empty block.
_STARTS = np.array([0, 700, 2613, 3000], dtype=np.int64)
_STOPS = np.array([637, 2613, 2614, 3000], dtype=np.int64)  # 637: a stretch of 125 rows
_ROWS = 3100
_SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf]


def _same_bits_or_nan(got: np.ndarray, expected: np.ndarray) -> bool:
    """The same bits, except which NaN where both are NaN: when two NaNs meet, which one an
    operation passes on is the compiler's choice of operand order (numpy's own loops choose
    theirs), so a NaN's sign and payload are no part of the kernels' bits."""
    if got.dtype != expected.dtype:
        return False
    if got.dtype.kind != "f":
        return got.tobytes() == expected.tobytes()
    nan = np.isnan(got)
    return (np.array_equal(nan, np.isnan(expected))
            and got[~nan].tobytes() == expected[~nan].tobytes())


def _accounts_case(rng: np.random.Generator, dtype: type) -> tuple[list[Any], list[Any]]:
    """A day's arguments of `kernels.accounts` (arrays, then the numbers): live, dead, mostly
    dead and wholly dead stretches, losses, exits on both counts, quality cuts, and zero,
    negative, infinite and NaN flows and state."""
    n = _ROWS
    f = np.dtype(dtype).type
    dead = np.zeros(n, dtype=np.bool_)
    dead[700:1300] = True  # a wholly dead stretch
    dead[1300:1900] = rng.random(600) < 0.3
    dead[1900:2613] = rng.random(713) < 0.85  # mostly dead: the branching path
    dead[2613] = True
    flows = [_sprinkle(rng, _spread(rng, n) * 1e-3, _SPECIAL) for _ in range(4)]
    revenue = _sprinkle(rng, rng.uniform(-5, 400, n), _SPECIAL, 0.1)
    revenue[dead & (rng.random(n) < 0.8)] = 0.0
    orders = _sprinkle(rng, np.floor(rng.uniform(0, 20, n)), [0.0, np.nan])

    def state(lo: float, hi: float, share: float = 0.03) -> np.ndarray:
        return _sprinkle(rng, rng.uniform(lo, hi, n).astype(dtype), _SPECIAL, share)

    unit_cost, shipping, fixed_cost = state(0, 12), state(0, 3), state(0, 5)
    cash = state(-20, 200, 0.05)
    loss_days = rng.integers(0, 50, n).astype(np.int32)
    burden_ema, last_revenue = state(0, 0.5), state(0, 300)
    alive = ~dead
    alive[rng.random(n) < 0.02] ^= True  # alive need not mirror dead_before
    dl_rule = rng.integers(-1, 5, n).astype(np.int16)
    dl_due, dl_event_time, dl_event_price = (rng.uniform(0, 50, n) for _ in range(3))
    price = state(0, 30, 0.05)
    margin, quality, full_cost = state(-1, 1), state(0.3, 1.0), state(1, 12)
    u_adapt = rng.random(n, dtype=np.float32)
    arrays = [dead, *flows, revenue, orders, unit_cost, shipping, fixed_cost, cash, loss_days,
              burden_ema, last_revenue, alive, dl_rule, dl_due, dl_event_time, dl_event_price,
              price, margin, quality, full_cost, u_adapt]
    numbers = [f(1.0 - 0.1), 0.1, 45, f(0.3), f(0.5), np.float32(0.5), 0.5, 0.05, 0.4]
    return arrays, numbers


def _accounts_reference(starts: np.ndarray, stops: np.ndarray, dead_before: np.ndarray,
                        commission: np.ndarray, ads: np.ndarray, fees: np.ndarray,
                        refund: np.ndarray, revenue: np.ndarray, orders: np.ndarray,
                        unit_cost: np.ndarray, shipping: np.ndarray, fixed_cost: np.ndarray,
                        cash: np.ndarray, loss_days: np.ndarray, burden_ema: np.ndarray,
                        last_revenue: np.ndarray, alive: np.ndarray, dl_rule: np.ndarray,
                        dl_due: np.ndarray, dl_event_time: np.ndarray,
                        dl_event_price: np.ndarray, price: np.ndarray, margin: np.ndarray,
                        quality: np.ndarray, full_cost: np.ndarray, u_adapt: np.ndarray,
                        keep: Any, memory: float, loss_days_limit: int, margin_threshold: Any,
                        quality_floor_s: Any, adapt_probability: np.float32,
                        quality_floor: float, quality_step: float, cost_share: float) -> None:
    """`kernels.accounts` row by row in numpy scalars, branch for branch as it was written
    first (each store rounds to the array's dtype, as numpy's do)."""
    for b in range(starts.size):
        for i in range(starts[b], stops[b]):
            if dead_before[i]:
                cash[i] = np.float64(cash[i]) + 0.0
                continue
            burden = commission[i] + ads[i] + fees[i] + refund[i]
            uc, sh, rev = unit_cost[i], shipping[i], revenue[i]
            profit = rev - orders[i] * (np.float64(uc) + np.float64(sh)) - burden - np.float64(
                fixed_cost[i])
            cash[i] = np.float64(cash[i]) + profit
            c = cash[i]
            days = int(loss_days[i]) + 1 if profit < 0 else 0
            loss_days[i] = days
            if rev > 0:
                burden_ema[i] = np.float64(keep * burden_ema[i]) + memory * burden / rev
            ema = burden_ema[i]
            last_revenue[i] = rev
            if days >= loss_days_limit or c < 0:
                alive[i] = False
                dl_rule[i], dl_due[i] = -1, np.inf
                dl_event_time[i] = dl_event_price[i] = np.nan
                continue
            p = price[i]
            m = (p - uc - sh) / p - ema
            margin[i] = m
            q0 = quality[i]
            if m < margin_threshold and q0 > quality_floor_s and u_adapt[i] < adapt_probability:
                q = max(quality_floor, np.float64(q0) - quality_step)
                quality[i] = q
                unit_cost[i] = np.float64(full_cost[i]) * (1.0 - cost_share * (1.0 - q))
                margin[i] = (p - unit_cost[i] - sh) / p - ema


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accounts_match_a_row_by_row_reference(dtype: type, seed: int) -> None:
    rng = np.random.default_rng(seed)
    arrays, numbers = _accounts_case(rng, dtype)
    got = [a.copy() for a in arrays]
    expected = [a.copy() for a in arrays]
    kernels.accounts(_STARTS, _STOPS, *got, *numbers)
    with np.errstate(all="ignore"):
        _accounts_reference(_STARTS, _STOPS, *expected, *numbers)
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert _same_bits_or_nan(g, e), k
    alive, quality = 14, 21  # the case reaches exits and quality cuts
    assert (arrays[alive] & ~got[alive]).any() and (got[quality] != arrays[quality]).any()


def _demand_numpy(starts: np.ndarray, stops: np.ndarray, alive: np.ndarray, price: np.ndarray,
                  last_revenue: np.ndarray, quality: np.ndarray, unit_cost: np.ndarray,
                  exposure: np.ndarray, u_orders: np.ndarray, budget_share: float,
                  cost_per_click: float, conversion: float, ctr: float, power: bool,
                  conv_in: np.ndarray, outs: list[np.ndarray]) -> None:
    """`kernels.demand` in numpy over each block."""
    for lo, hi in zip(starts, stops, strict=True):
        r = slice(lo, hi)
        p = price[r].astype(np.float64)
        clicks = budget_share * last_revenue[r].astype(np.float64) / cost_per_click
        conv = conv_in[r] if power else conversion * quality[r].astype(np.float64)
        lam = (exposure[r] * ctr + clicks) * conv
        o = np.where(alive[r], np.floor(lam + u_orders[r].astype(np.float64)), 0.0)
        outs[0][r], outs[1][r], outs[2][r] = clicks, o, o * p
        outs[3][r] = np.where(p < unit_cost[r], o, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("power", [False, True])
def test_demand_matches_numpy(dtype: type, power: bool) -> None:
    rng = np.random.default_rng(int(power))
    n = _ROWS
    alive = rng.random(n) < 0.6
    price = _sprinkle(rng, rng.uniform(0, 30, n).astype(dtype), _SPECIAL)
    last_revenue = _sprinkle(rng, rng.uniform(0, 400, n).astype(dtype), _SPECIAL)
    quality = _sprinkle(rng, rng.uniform(0.3, 1, n).astype(dtype), _SPECIAL)
    unit_cost = _sprinkle(rng, rng.uniform(0, 30, n).astype(dtype), _SPECIAL)
    exposure = _sprinkle(rng, rng.uniform(0, 1e4, n), _SPECIAL)
    exposure[rng.random(n) < 0.05] = -1e4  # negative rates: floor below zero
    u_orders = rng.random(n, dtype=np.float32)
    with np.errstate(all="ignore"):
        conv_in = (0.023 * quality.astype(np.float64) ** 0.7) if power else np.empty(0)
        numbers = (0.04, 2.17, 0.023, 0.05)
        got = [np.full(n, 7.0) for _ in range(4)]  # rows outside the blocks stay as they are
        expected = [a.copy() for a in got]
        unknown = kernels.demand(_STARTS, _STOPS, alive, price, last_revenue, quality,
                                 unit_cost, exposure, u_orders, *numbers, power, 0.7, conv_in,
                                 *got)
        _demand_numpy(_STARTS, _STOPS, alive, price, last_revenue, quality, unit_cost,
                      exposure, u_orders, *numbers, power, conv_in, expected)
    for g, e in zip(got, expected, strict=True):
        assert _same_bits_or_nan(g, e)
    # It counts the blocks' NaN clicks (the rows outside them are not its to count).
    inside = np.zeros(n, dtype=bool)
    for lo, hi in zip(_STARTS, _STOPS, strict=True):
        inside[lo:hi] = True
    assert unknown == np.isnan(expected[0][inside]).sum() > 0


def _array(dtype: Any) -> Any:
    return types.Array(dtype, 1, "C")


_F32, _F64, _U8, _BOOL = (_array(types.float32), _array(types.float64), _array(types.uint8),
                          _array(types.boolean))
#: Per-merchant loops written so that no row's load or store depends on a condition, with
#: argument types as the model calls them. A vectorised conditional load or store is a
#: masked one, which a machine with AVX2 alone makes byte by byte for booleans: each of
#: these was slower there, some several times (bench/RESULTS.md).
_UNMASKED: dict[str, tuple[Any, ...]] = {
    "mark_changed_in": (_array(types.uint32), _array(types.uint32), _array(types.int64),
                        _array(types.int64), _BOOL, types.boolean),
    "_charge_rows none": (_F64, types.none, _F64, _U8, types.none),
    "_charge_rows mask times": (_F64, _U8, _F64, _U8, _F64),
    "live_minima": (_array(types.uint32), _U8, types.int64, types.uint32, types.uint32,
                    _array(types.uint32)),
    "demand": (_array(types.int64), _array(types.int64), _BOOL, _F32, _F32, _F32, _F32, _F64,
               _F32, types.float64, types.float64, types.float64, types.float64,
               types.boolean, types.float64, _F64, _F64, _F64, _F64, _F64),
    "group_exposure": (_F64, _BOOL, _F32, _F64, _F64, _F64, types.int64, _F64, _F64,
                       types.boolean),
    "_accounts_mixed": (types.uint64, types.uint64, _U8, _F64, _F64, _F64, _F64, _F64, _F64,
                        _F32, _F32, _F32, _F32, _array(types.int32), _F32, _F32, _U8,
                        _array(types.int16), _F64, _F64, _F64, _F32, _F32, _F32, _F32, _F32,
                        types.float32, types.float64, types.int64, types.float32,
                        types.float32, types.float32, types.float64, types.float64,
                        types.float64),
}


@pytest.mark.parametrize("case", sorted(_UNMASKED))
def test_per_merchant_loops_vectorise_without_masks(case: str) -> None:
    """The kernel compiled afresh for this machine (a cached kernel's IR cannot be read)
    loads vectors and has no masked load or store. Were a row's load or store made
    conditional again, LLVM would either mask it (on any machine with AVX) or leave the loop
    scalar (a short-circuit `and` of two flags did, in `charge`)."""
    fn = getattr(kernels, case.split()[0]).py_func
    compiled = njit(_UNMASKED[case], **kernels._OPTIONS)(fn)
    code = "\n".join(compiled.inspect_llvm().values())
    assert re.findall(r"llvm\.masked\.\w+", code) == []
    assert re.search(r"= load <\d+ x \w+>", code)
