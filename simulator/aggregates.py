"""Reduce one simulated day of one replication to the figures a Projection keeps.

Shared by the vectorised model and the plain reference, so the oracle test compares the model's
state and flows, not two ways of computing a Gini. Percentiles, the median margin and the exposure
Gini are read on a fixed sample of merchants per cohort (every merchant when a cohort has no more
than the scenario's ``percentile_sample``): exact on small populations, and O(sample) per day on
a million merchants instead of a sort of the whole population. Cohort sums, the exposure
concentration sums and the live counts are compiled (`simulator.kernels`) and fused, several
quantities per pass (three arrays per walk of the live merchants' index), with the bits of
the numpy gathers, ``np.add.reduceat``, row sums and counts they replace; the prices relative
to the starting prices are divided in one contiguous pass (vectorised) before the walk
gathers them, and the walk's index of live merchants is kept from day to day while no
merchant dies or enters (`Samples.live`). So are the sample statistics: the walk reads every
sampled merchant's numbers as it passes their slots, counted buckets (or quickselect) find the
order statistics of ``np.quantile`` and ``np.median`` and a bucket sort (or a radix sort) the
Gini's, with numpy's bits; where a zero or NaN could make those bits depend on how numpy
partitions or sorts, that figure is left to numpy. Flows of whole numbers (orders, prompts,
appeals... and flows all zero) are summed as integers, which is exact and so has the bits of
numpy's sums in any order: vectorised, the appeals by cohort in one contiguous pass instead of
a walk of the order; any other total stays numpy's sum (contiguous arrays, which numpy sums
faster than a compiled pairwise sum). A caller that hands the flows back to the model
(`simulator.run`) has the flows the model adds to zeroed as soon as they are read, instead of
the model zeroing new arrays the next day: those nothing reads after their totals are summed
and zeroed in one compiled pass (`simulator.aggregation_kernels.total_clearing`, numpy's
pairwise sum, each leaf of 128 numbers zeroed while in cache), the others once read; a
stretch of 128 slots that is all +0.0 already is not written (no cache line dirtied for
nothing).
`tests/simulator/test_kernels.py` checks each kernel against its numpy expression,
`tests/simulator/test_aggregates.py` the whole day against the numpy version.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from simulator.aggregation_kernels import clear_flow, total_clearing
from simulator.kernels import (
    cohort_live_sums_and_samples,
    cohort_pair_sums,
    first_difference,
    gini,
    live_in_order,
    ratios_and_counts,
    row_sums_squares,
    sampled_statistics,
    whole_cohort_pair_sums,
    whole_total,
)
from simulator.projection import COHORT_SERIES, PERCENTILE_SERIES, POPULATION_SERIES
from simulator.scenario import TIERS

QUANTILES = (0.1, 0.5, 0.9)
_QUANTILES = np.array(QUANTILES)  # ascending, as `sampled_statistics` takes them

#: Series this model adds to the documented Projection series, all of shape (R, T).
EXTRA_SERIES = ("auto_follow_share", "prompts_per_merchant", "forced_follows_per_merchant",
                "below_cost_listing_share", "quality_mean_population", "price_index")


def empty_series(replications: int, days: int) -> dict[str, np.ndarray]:
    """NaN-filled arrays for every series a run fills (Projection layout)."""
    c, q = len(TIERS), len(QUANTILES)
    out: dict[str, np.ndarray] = {}
    for name in (*POPULATION_SERIES, *EXTRA_SERIES):
        out[name] = np.full((replications, days), np.nan)
    for name in COHORT_SERIES:
        out[name] = np.full((replications, days, c), np.nan)
    for name in PERCENTILE_SERIES:
        out[name] = np.full((replications, days, c, q), np.nan)
    return out


class _LiveOrder:
    """The last `Samples.live` walk, and the `alive` flags it was made for."""

    def __init__(self) -> None:
        self.alive: np.ndarray | None = None
        self.order = np.empty(0, dtype=np.int64)
        self.counts = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class Samples:
    """Fixed merchant indices per cohort (within one replication) for quantile estimates."""

    by_cohort: tuple[np.ndarray, ...]
    population: np.ndarray
    #: Merchants of each cohort that exist (the denominator of a cohort's share alive).
    sizes: np.ndarray
    #: The existing merchants ordered by cohort (slot order within one): a cohort sum has the
    #: bits of a gather in this order and `np.add.reduceat`.
    order: np.ndarray

    @classmethod
    def of(cls, tier: np.ndarray, exists: np.ndarray, size: int) -> Samples:
        def spread(idx: np.ndarray, k: int) -> np.ndarray:
            if idx.size > k:
                idx = idx[np.linspace(0, idx.size - 1, k).round().astype(np.int64)]
            return idx

        by_cohort = tuple(spread(np.flatnonzero((tier == c) & exists), size)
                          for c in range(len(TIERS)))
        counts = np.bincount(tier[exists], minlength=len(TIERS))
        existing = np.flatnonzero(exists)
        order = existing[np.argsort(tier[existing], kind="stable")]
        return cls(by_cohort, spread(existing, size * len(TIERS)),
                   counts.astype(np.float64), order)

    @cached_property
    def compact_order(self) -> np.ndarray:
        """`order` as int32 where every slot fits (half the bytes for the daily walks to read
        and write), else as it is."""
        if self.order.size and self.order.max() >= np.iinfo(np.int32).max:
            return self.order
        return self.order.astype(np.int32)

    @cached_property
    def cohort_sizes(self) -> np.ndarray:
        """`sizes` as the int64 counts the compiled cohort walks take."""
        return self.sizes.astype(np.int64)

    @cached_property
    def _live(self) -> _LiveOrder:
        return _LiveOrder()

    def live(self, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The live merchants of `order` (in that order, `compact_order`'s dtype) and how many
        each cohort has (int64). Merchants die or enter on few days, so the walk of the order
        is kept and done again only when `alive` differs from the last one asked about
        (`first_difference`: one compiled pass that stops where they first differ, from
        where the copy is brought up to date)."""
        kept = self._live
        last = kept.alive
        if (last is not None and last.shape == alive.shape and last.dtype == np.bool_
                and alive.dtype == np.bool_):
            at = first_difference(alive.view(np.uint8), last.view(np.uint8))
            if at < 0:
                return kept.order, kept.counts
            last[at:] = alive[at:]  # (the copy made equal again from where they differ)
        else:
            last = alive.copy()
        kept.alive = None  # (until the walk is done)
        order = self.compact_order
        live_order = np.empty(order.size, dtype=order.dtype)
        counts = np.empty(self.cohort_sizes.size, dtype=np.int64)
        k = live_in_order(alive, order, self.cohort_sizes, live_order, counts)
        kept.alive, kept.order, kept.counts = last, live_order[:k], counts
        return kept.order, kept.counts

    @cached_property
    def _labels(self) -> dict[int, np.ndarray | None]:
        return {}

    def cohort_labels(self, n: int) -> np.ndarray | None:
        """Each of n slots' cohort in `order` (int8; -1 for a slot in none), for sums over
        each cohort's merchants in any order; None if `order` names a slot twice or one
        past n (or there are too many cohorts for int8)."""
        kept = self._labels
        if n not in kept:
            label = None
            sizes = self.cohort_sizes
            order = self.order
            if (sizes.size < 127 and order.size == int(sizes.sum())
                    and (order.size == 0 or (order.min() >= 0 and order.max() < n))):
                label = np.full(n, -1, dtype=np.int8)
                label[order] = np.repeat(np.arange(sizes.size), sizes).astype(np.int8)
                if np.count_nonzero(label >= 0) != order.size:  # a slot named twice
                    label = None
            kept[n] = label
        return kept[n]

    @cached_property
    def sampled_slots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every sampled merchant once, in slot order (int64), and where the samples are in
        it: the cohorts' samples end to end as positions in the union, where each cohort's
        starts and ends (``bounds[c]:bounds[c + 1]``), and the pooled sample's positions.
        The cohort walk (`cohort_live_sums_and_samples`) reads the arrays through the union as
        it passes those slots; `sampled_statistics` takes the numbers by these positions."""
        bounds = np.zeros(len(self.by_cohort) + 1, dtype=np.int64)
        bounds[1:] = np.cumsum([idx.size for idx in self.by_cohort])
        flat = np.concatenate([*self.by_cohort, np.empty(0, dtype=np.int64)]).astype(np.int64)
        union = _sorted_union(flat, self.population)
        return (union, np.searchsorted(union, flat), bounds,
                np.searchsorted(union, self.population))


def _sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.union1d(a, b)`` as int64 (the sorted distinct slots of both): one sort and a mask
    of the repeats, a fifth of the time of numpy 2's hashing `unique` on the samples."""
    both = np.concatenate((a, b)).astype(np.int64)
    both.sort()
    if both.size < 2:
        return both
    first = np.empty(both.size, dtype=bool)
    first[0] = True
    np.not_equal(both[1:], both[:-1], out=first[1:])
    return both[first]


def _group_sums(exposure: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Each group's exposure and sum of squared exposures (groups are equal contiguous rows):
    ``x.sum(axis=1)`` and ``np.square(x).sum(axis=1)`` of the rows, bit for bit, in one
    compiled pass without the squared copy (numpy's expressions for arrays it does not take)."""
    if (exposure.dtype == np.float64 and exposure.ndim == 1 and exposure.flags.c_contiguous
            and n_groups > 0 and exposure.size % n_groups == 0):
        sums, squares = np.empty(n_groups), np.empty(n_groups)
        row_sums_squares(exposure, n_groups, sums, squares)
        return sums, squares
    rows = exposure.astype(np.float64, copy=False).reshape(n_groups, -1)
    return rows.sum(axis=1), np.square(rows).sum(axis=1)


def _sample_statistics(out: dict[str, np.ndarray], r: int, t: int, state: dict[str, np.ndarray],
                       samples: Samples, values: np.ndarray, live: np.ndarray) -> None:
    """The percentiles of price, margin and quality by cohort, the median margin and the
    exposure Gini of day t on the fixed samples' live merchants, as numpy's ``quantile``,
    ``median`` and `_gini` of their float64 values give them. The sampled merchants' numbers
    (values, live) were read by the cohort walk (`cohort_live_sums_and_samples`); the order
    statistics come from one compiled pass (`sampled_statistics`); where a zero or NaN could
    make its bits differ from numpy's partition, numpy computes that figure."""
    alive = state["alive"]
    arrays = (state["price"], state["margin"], state["quality"])
    _, cohort_pos, bounds, pooled_pos = samples.sampled_slots
    cohorts = len(samples.by_cohort)
    quantiles = np.empty((len(arrays), cohorts, len(QUANTILES)))
    exact = np.empty((len(arrays), cohorts), dtype=np.bool_)
    pooled_exposure = np.empty(pooled_pos.size)
    median, median_exact, pooled_live = sampled_statistics(
        values, live, cohort_pos, bounds, pooled_pos, _QUANTILES, quantiles, exact,
        pooled_exposure)
    for v, c in zip(*np.nonzero(~exact), strict=True):
        idx = samples.by_cohort[c]
        idx = idx[alive[idx]]
        quantiles[v, c] = (np.quantile(arrays[v][idx].astype(np.float64), QUANTILES)
                           if idx.size else np.nan)
    if not median_exact:
        pooled = samples.population[alive[samples.population]]
        median = (float(np.median(state["margin"][pooled].astype(np.float64)))
                  if pooled.size else np.nan)
    out["price_pct"][r, t], out["margin_pct"][r, t], out["quality_pct"][r, t] = quantiles
    out["median_margin"][r, t] = median
    out["exposure_gini"][r, t] = _gini(pooled_exposure[:pooled_live])


def segment_sums(v: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of `v` of the given sizes (an empty segment sums to 0)."""
    out = np.zeros(len(sizes), dtype=v.dtype)
    nonempty = sizes > 0  # reduceat would read an empty segment as its next element
    if nonempty.any():
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        out[nonempty] = np.add.reduceat(v, starts[nonempty])
    return out


@dataclass
class DayFlows:
    """What happened to each merchant today (arrays of length n of one replication)."""

    exposure: np.ndarray
    orders: np.ndarray
    revenue: np.ndarray
    commission: np.ndarray
    ads: np.ndarray
    fees: np.ndarray
    refund: np.ndarray
    below_cost_units: np.ndarray
    appeals_attempted: np.ndarray
    appeals_won: np.ndarray
    prompts: np.ndarray
    forced_follows: np.ndarray


def _gini(x: np.ndarray) -> float:
    """The Gini coefficient of the float64 x: compiled (`simulator.kernels.gini`, a radix sort
    of the bits), numpy's sort for what that sort does not take (negatives, -0.0, NaN)."""
    value, certain = gini(x)
    return float(value) if certain else _numpy_gini(x)


def _numpy_gini(x: np.ndarray) -> float:
    """The Gini coefficient of the float64 x by numpy's sort (and the definition `gini`
    reproduces)."""
    if x.size == 0:
        return float("nan")
    total = x.sum()
    if total <= 0:
        return 0.0
    s = np.sort(x)
    k = np.arange(1, s.size + 1, dtype=np.float64)
    return float((2.0 * (k * s).sum()) / (s.size * total) - (s.size + 1.0) / s.size)


#: The flows whose whole-population sums the day's figures read, in `_totals`' order.
_TOTALS = ("commission", "ads", "fees", "revenue", "refund", "below_cost_units", "orders",
           "prompts", "forced_follows")


#: The flows the day's figures read after their totals (by the cohort walks and the samples).
_READ_LATER = frozenset({"revenue", "refund", "exposure", "appeals_attempted", "appeals_won"})


def _whole_limit(n: int) -> float:
    """The bound under which n whole numbers sum in int64 without overflow."""
    return 2.0 ** 62 / max(1, n)


def _flat_float64(x: np.ndarray) -> bool:
    return x.dtype == np.float64 and x.ndim == 1 and x.flags.c_contiguous


def _total(x: np.ndarray) -> tuple[float, bool]:
    """numpy's sum of the flow x, and whether it has any bit set (False: all +0.0). Counts
    (orders, prompts...) and flows that are all zero are summed as whole numbers
    (`whole_total`: the same bits, vectorised, and it tells an all-zero flow); any other
    flow is numpy's sum (over a contiguous array numpy sums faster than a compiled pairwise
    sum), the whole-number pass given up on at its first fraction."""
    if _flat_float64(x):
        total, certain, nonzero = whole_total(x, _whole_limit(x.size))
        if certain:
            return float(total), bool(nonzero)
    return float(np.add.reduce(x, dtype=np.float64)), True  # np.sum's own call


def _clear(x: np.ndarray) -> None:
    """Zero the flow x, leaving its stretches that are all +0.0 unwritten (`clear_flow`)."""
    if _flat_float64(x):
        clear_flow(x)
    else:
        x.fill(0.0)


def _totals(flows: DayFlows, clear: Collection[str]) -> list[float]:
    """The whole population's sum of each flow of `_TOTALS` (`_total`). The flows named in
    `clear` that nothing reads later are zeroed as they are summed (`total_clearing`, for
    flat float64 flows: numpy's bits for any numbers, so no whole-number check), else right
    after their sums, while their numbers are still in cache, unless all +0.0 already."""
    totals = []
    for name in _TOTALS:
        x = getattr(flows, name)
        if name in clear and name not in _READ_LATER and _flat_float64(x):
            totals.append(float(total_clearing(x, True)))
            continue
        total, nonzero = _total(x)
        totals.append(total)
        if nonzero and name in clear and name not in _READ_LATER:
            x.fill(0.0)
    return totals


def _appeal_sums(flows: DayFlows, samples: Samples, k: int) -> tuple[np.ndarray, set[str]]:
    """Appeals attempted and won over each cohort's merchants (live or not), with the bits
    of a gather in `order` and ``np.add.reduceat``: as whole numbers in one contiguous pass
    (`whole_cohort_pair_sums`) where they are, else a walk of the order; and which of the
    two flows are known to be all +0.0."""
    a, b = flows.appeals_attempted, flows.appeals_won
    out = np.empty((2, k))
    if _flat_float64(a) and _flat_float64(b) and a.size == b.size:
        label = samples.cohort_labels(a.size)
        if label is not None and samples.cohort_sizes.size == k:
            certain, any_a, any_b = whole_cohort_pair_sums(a, b, label, _whole_limit(a.size),
                                                           out)
            if certain:
                zero = {name for name, seen in (("appeals_attempted", any_a),
                                                ("appeals_won", any_b)) if not seen}
                return out, zero
    return cohort_pair_sums(a, b, samples.compact_order, samples.cohort_sizes, out), set()


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def aggregate(out: dict[str, np.ndarray], r: int, t: int, state: dict[str, np.ndarray],
              flows: DayFlows, group: np.ndarray, n_groups: int, samples: Samples,
              clear: Collection[str] = ()) -> None:
    """Write day t of replication r into the series arrays `out` (float64, preallocated).

    Cohort figures are sums over each cohort's (live) merchants in cohort order, slot order
    within a cohort, each with the bits of a gather and ``np.add.reduceat``; whole-population
    figures are numpy sums. The cohort sums are compiled and fused (`simulator.kernels`): the
    live merchants' seven sums in one walk of their index, summing each stretch of up to 128
    merchants for every quantity while their rows are in cache (three quantities per read of
    the index), instead of one gather and sum per quantity. The percentiles, median margin
    and exposure Gini on the fixed samples are compiled too (`_sample_statistics`). `group`
    is the product group of each merchant; groups are contiguous blocks of equal size. The
    flows named in `clear` are zeroed once read (for `simulator.model.Model.recycle_flows`).
    """
    alive = state["alive"]
    k = len(TIERS)
    price, quality, margin = state["price"], state["quality"], state["margin"]
    # First the flows the model's last stages (accounts) read, while some are in cache.
    commission, ads, fees, gmv, refund, below_cost, orders, prompts, forced = _totals(flows,
                                                                                     clear)
    # The live merchants in cohort order, and how many each cohort has.
    live_order, n_c = samples.live(alive)
    # Prices relative to the starting prices and the live counts in one contiguous pass; then
    # sums over each cohort's live merchants of six quantities and those ratios, in one walk
    # of live_order; appeals over all its merchants, in one contiguous pass.
    price0 = state["price0"]
    ratio = np.empty(price.size, (price[:0] / price0[:0]).dtype)
    enrolled_alive, below_cost_listings = (int(x) for x in ratios_and_counts(
        price, price0, alive, state["enrolled"], state["unit_cost"], ratio))
    # The walk reads the fixed samples' numbers too, as it passes their slots.
    union = samples.sampled_slots[0]
    values, live = np.empty((4, union.size)), np.empty(union.size, dtype=np.bool_)
    live_sums = cohort_live_sums_and_samples(
        flows.revenue, flows.refund, flows.exposure, quality, price, margin, ratio, live_order,
        n_c, np.empty((7, k)), alive, union, values, live)
    _sample_statistics(out, r, t, state, samples, values, live)
    # Groups are contiguous blocks of slots (simulator.population): sums by group are row sums.
    by_group, squares = _group_sums(flows.exposure, n_groups)
    flow_sums, zero = _appeal_sums(flows, samples, k)
    revenue_c, refund_c, exposure_c, quality_c, price_c, margin_c, price_rel = live_sums
    attempted, won = flow_sums
    n_alive = int(n_c.sum())
    for name in clear:  # the last reading of the flows is done
        if (name in _READ_LATER or name not in _TOTALS) and name not in zero:
            _clear(getattr(flows, name))
    out["share_alive"][r, t] = n_alive / max(1, int(samples.sizes.sum()))
    out["gmv"][r, t] = gmv
    out["take_rate"][r, t] = _ratio(commission + ads + fees, gmv)
    out["refund_burden_ratio"][r, t] = _ratio(refund, gmv)
    out["fee_burden_ratio"][r, t] = _ratio(commission + fees, gmv)
    out["ad_burden_ratio"][r, t] = _ratio(ads, gmv)
    out["below_cost_sales_share"][r, t] = _ratio(below_cost, orders)
    exposure_total = float(by_group.sum())
    if exposure_total > 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            hhi_g = np.where(by_group > 0, squares / by_group ** 2, 0.0)
        out["exposure_hhi"][r, t] = float((hhi_g * by_group).sum() / exposure_total)
    else:
        out["exposure_hhi"][r, t] = float("nan")
    out["auto_follow_share"][r, t] = _ratio(enrolled_alive, n_alive)
    out["prompts_per_merchant"][r, t] = _ratio(prompts, n_alive)
    out["forced_follows_per_merchant"][r, t] = _ratio(forced, n_alive)
    out["below_cost_listing_share"][r, t] = _ratio(below_cost_listings, n_alive)
    sum_q = float(quality_c.sum())
    out["quality_mean_population"][r, t] = sum_q / n_alive if n_alive else np.nan
    # Live merchants' prices relative to their starting prices (1 = unchanged).
    out["price_index"][r, t] = _ratio(float(price_rel.sum()), n_alive)
    with np.errstate(invalid="ignore", divide="ignore"):
        alive_c = np.where(n_c > 0, n_c, np.nan)
        out["share_alive_by_cohort"][r, t, :] = n_c / np.where(samples.sizes > 0, samples.sizes,
                                                               np.nan)
        out["price_mean"][r, t, :] = price_c / alive_c
        out["margin_mean"][r, t, :] = margin_c / alive_c
        out["quality_mean"][r, t, :] = quality_c / alive_c
        out["refund_burden_ratio_by_cohort"][r, t, :] = np.where(
            (n_c > 0) & (revenue_c > 0), refund_c / revenue_c, np.nan)
        exposure_share = exposure_c / exposure_total if exposure_total > 0 else np.nan
        quality_share = quality_c / sum_q if sum_q > 0 else np.nan
        out["exposure_per_quality_by_cohort"][r, t, :] = np.where(
            n_c > 0, exposure_share / quality_share, np.nan)
        out["appeal_success_by_cohort"][r, t, :] = np.where(attempted > 0, won / attempted,
                                                            np.nan)
