"""The one pass that takes every sum of a simulated day's figures (`simulator.aggregates`).

At 200,000 merchants a day's figures read a dozen flows and seven state arrays, some 30 MB.
Summed one array (or one cohort's gathered merchants) at a time, with numpy's pairwise order
kept bit for bit, they took 4.7 ms of a 21-24 ms day on a machine without AVX-512; every
array came from memory again, and pushed the model's own arrays out of the cache.
`day_sums` reads each number once, eight slots a step in SIMD registers (`simulator.simd`),
skips the padding slots, and zeroes the flows handed back to the model (`Model.recycle_flows`)
as it reads them, leaving stretches that are all +0.0 unwritten (their cache lines stay clean).
`chunk_sums` makes each replication's `day_sums` of replications run together in one call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator import simd
from simulator.kernels import _OPTIONS, _kernel

#: The flows `day_sums` reads, in the order of its arguments and of the bits of its `clear`.
FLOWS = ("commission", "ads", "fees", "revenue", "refund", "below_cost_units", "orders",
         "prompts", "forced_follows", "exposure", "appeals_attempted", "appeals_won")
#: The day's totals `day_sums` gives, in its `totals`' order: the first nine flows.
TOTALS = FLOWS[:9]
#: What `day_sums` sums over each cohort (rows of its `cohort`): six quantities and the prices
#: relative to the starting prices over the live merchants, how many are live, then the
#: appeals over every merchant of the cohort (live or not).
COHORT_SUMS = ("revenue", "refund", "exposure", "quality", "price", "margin", "price_index",
               "live", "appeals_attempted", "appeals_won")
_C = len(COHORT_SUMS)
_T = len(TOTALS)


@njit(inline="always", **_OPTIONS)
def _accumulate(acc, row, v):  # pragma: no cover - compiled
    """acc's lanes of sum `row` += v."""
    at = np.uint64(row * simd.LANES)
    eight = np.uint64(simd.LANES)
    simd.store(acc, at, eight, simd.add(simd.load(acc, at, eight), v))


@njit(inline="always", **_OPTIONS)
def _cleared(x, i, count, v, clear, bit):  # pragma: no cover - compiled
    """Zero x[i:i + count] (holding v) if `clear` has `bit`, unless it is all +0.0 already (its
    cache lines stay clean: nothing to write back to memory for the sparse flows)."""
    if (clear >> bit) & 1 and simd.lanes(simd.any_bits(v)) != 0:
        simd.store(x, i, count, simd.splat(0.0))


@njit(inline="always", **_OPTIONS)
def _flow(acc, row, x, i, count, clear):  # pragma: no cover - compiled
    """Add x[i:i + count] to total `row` and zero it if `clear` says so; returns its numbers."""
    v = simd.load(x, i, count)
    _accumulate(acc, row, v)
    _cleared(x, i, count, v, clear, row)
    return v


@njit(inline="always", **_OPTIONS)
def _step(i, count, label, alive, enrolled, price, price0, margin, quality, unit_cost,
          commission, ads, fees, revenue, refund, below, orders, prompts, forced, exposure,
          attempted, won, clear, k, acc, gs, gq):  # pragma: no cover - compiled
    """`day_sums` of the `count` slots from i (8 but at a run's end): adds to the lanes of
    acc, and returns the run's exposure sums (gs, gq) with these slots'."""
    z = simd.splat(0.0)
    one = simd.splat(1.0)
    a = simd.load_mask(alive, i, count)
    _flow(acc, 0, commission, i, count, clear)
    _flow(acc, 1, ads, i, count, clear)
    _flow(acc, 2, fees, i, count, clear)
    rv = simd.load(revenue, i, count)
    _accumulate(acc, 3, rv)
    rf = simd.load(refund, i, count)
    _accumulate(acc, 4, rf)
    _flow(acc, 5, below, i, count, clear)
    _flow(acc, 6, orders, i, count, clear)
    _flow(acc, 7, prompts, i, count, clear)
    _flow(acc, 8, forced, i, count, clear)
    ex = simd.load(exposure, i, count)
    gs = simd.add(gs, ex)
    gq = simd.add(gq, simd.multiply(ex, ex))
    at = simd.load(attempted, i, count)
    wo = simd.load(won, i, count)
    p = simd.load(price, i, count)
    q = simd.load(quality, i, count)
    m = simd.load(margin, i, count)
    ratio = simd.rounded(price, simd.divide(p, simd.load(price0, i, count)))
    lab = simd.load(label, i, count)
    for c in range(k):
        cohort = simd.equal(lab, simd.splat(c))
        live = simd.both(cohort, a)
        row = _T + _C * c
        _accumulate(acc, row, simd.where(live, rv, z))
        _accumulate(acc, row + 1, simd.where(live, rf, z))
        _accumulate(acc, row + 2, simd.where(live, ex, z))
        _accumulate(acc, row + 3, simd.where(live, q, z))
        _accumulate(acc, row + 4, simd.where(live, p, z))
        _accumulate(acc, row + 5, simd.where(live, m, z))
        _accumulate(acc, row + 6, simd.where(live, ratio, z))
        _accumulate(acc, row + 7, simd.where(live, one, z))
        _accumulate(acc, row + 8, simd.where(cohort, at, z))
        _accumulate(acc, row + 9, simd.where(cohort, wo, z))
    row = _T + _C * k
    _accumulate(acc, row, simd.where(simd.both(a, simd.load_mask(enrolled, i, count)), one, z))
    _accumulate(acc, row + 1, simd.where(simd.both(a, simd.less(p, simd.load(unit_cost, i, count))),
                                     one, z))
    _cleared(revenue, i, count, rv, clear, 3)
    _cleared(refund, i, count, rf, clear, 4)
    _cleared(exposure, i, count, ex, clear, 9)
    _cleared(attempted, i, count, at, clear, 10)
    _cleared(won, i, count, wo, clear, 11)
    return gs, gq


@njit(inline="always", **_OPTIONS)
def _lane_sum(x, at):  # pragma: no cover - compiled
    """The eight lanes from x[at] added pairwise."""
    return (((x[at] + x[at + 1]) + (x[at + 2] + x[at + 3]))
            + ((x[at + 4] + x[at + 5]) + (x[at + 6] + x[at + 7])))


@_kernel
def day_sums(starts, stops, run_group, label, alive, enrolled, price, price0, margin, quality,
             unit_cost, commission, ads, fees, revenue, refund, below, orders, prompts, forced,
             exposure, attempted, won, clear, totals, cohort, counts,
             groups):  # pragma: no cover - compiled
    """Every sum of one day's figures in one pass over the runs of slots [starts[r], stops[r])
    (the slots that exist: the padding between them holds nothing), eight slots a step:

    - totals[j]: the sum of flow j of `TOTALS` over the runs' slots, dead merchants' too;
    - cohort[q, c]: the sums of `COHORT_SUMS` over the slots labelled c (`label`, int8; -1
      for none): over its live merchants (`alive`, uint8), then its appeals over all;
    - counts: the live merchants enrolled in auto-follow, and those pricing below unit cost;
    - groups[0, g] and groups[1, g]: the exposure and the sum of its squares over the runs of
      group g (`run_group[r]`), added to what groups holds;

    and the flows with bit j of `clear` set (`FLOWS` order) zeroed once read, except stretches
    of eight that are all +0.0 already. price / price0 is divided in the state's dtype, as
    numpy divides the arrays.

    Each sum is added in eight lanes: slot i of a run goes to lane (i - start) % 8 (a run's
    last step of fewer than eight reads zeros past its end), the lanes carried from run to
    run and added pairwise at the end; a group's sums are its runs' sums added in order.
    That is not numpy's pairwise order, so a sum of fractions may differ from numpy's in its
    last bits (tests bound it); sums of whole numbers (counts, orders) are exact, whatever
    the order."""
    lanes = simd.LANES
    k = cohort.shape[1]
    acc = np.zeros((_T + _C * k + 2) * lanes)
    run = np.empty(2 * lanes)  # a run's exposure lanes, to add up
    eight = np.uint64(lanes)
    for r in range(starts.shape[0]):
        lo, hi = np.uint64(starts[r]), np.uint64(stops[r])
        gs = simd.splat(0.0)
        gq = simd.splat(0.0)
        i = lo
        whole = lo + (hi - lo) // eight * eight
        while i < whole:
            gs, gq = _step(i, eight, label, alive, enrolled, price, price0, margin, quality,
                           unit_cost, commission, ads, fees, revenue, refund, below, orders,
                           prompts, forced, exposure, attempted, won, clear, k, acc, gs, gq)
            i += eight
        if i < hi:
            gs, gq = _step(i, hi - i, label, alive, enrolled, price, price0, margin, quality,
                           unit_cost, commission, ads, fees, revenue, refund, below, orders,
                           prompts, forced, exposure, attempted, won, clear, k, acc, gs, gq)
        g = run_group[r]
        simd.store(run, np.uint64(0), eight, gs)
        simd.store(run, eight, eight, gq)
        groups[0, g] += _lane_sum(run, 0)
        groups[1, g] += _lane_sum(run, lanes)
    for j in range(_T):
        totals[j] = _lane_sum(acc, j * lanes)
    for c in range(k):
        for q in range(_C):
            cohort[q, c] = _lane_sum(acc, (_T + _C * c + q) * lanes)
    counts[0] = _lane_sum(acc, (_T + _C * k) * lanes)
    counts[1] = _lane_sum(acc, (_T + _C * k + 1) * lanes)


@_kernel
def chunk_sums(run_at, starts, stops, run_group, label, alive, enrolled, price, price0, margin,
               quality, unit_cost, commission, ads, fees, revenue, refund, below, orders,
               prompts, forced, exposure, attempted, won, clear, totals, cohort, counts,
               groups):  # pragma: no cover - compiled
    """`day_sums` of each replication r of a chunk, in one call: its runs of slots are
    runs run_at[r] to run_at[r + 1] (slots of the chunk), its sums go to totals[r],
    cohort[r], counts[r] and groups[r]. The same pass over the same numbers as one
    replication's: the same bits."""
    for r in range(run_at.shape[0] - 1):
        lo, hi = run_at[r], run_at[r + 1]
        day_sums(starts[lo:hi], stops[lo:hi], run_group[lo:hi], label, alive, enrolled, price,
                 price0, margin, quality, unit_cost, commission, ads, fees, revenue, refund,
                 below, orders, prompts, forced, exposure, attempted, won, clear, totals[r],
                 cohort[r], counts[r], groups[r])
