"""Reduce one simulated day of the replications run together to the figures a Projection keeps.

Shared by the vectorised model and the plain reference, so the oracle test compares the model's
state and flows, not two ways of computing a Gini. Percentiles, the median margin and the exposure
Gini are read on a fixed sample of merchants per cohort (every merchant when a cohort has no more
than the scenario's ``percentile_sample``): exact on small populations, and O(sample) per day on
a million merchants instead of a sort of the whole population. Their order statistics are
compiled (counted buckets or a quickselect, and a bucket or radix sort for the Gini) and have
numpy's bits; where a zero or NaN could make those bits depend on how numpy partitions or
sorts, that figure is left to numpy.

Every sum (flow totals, sums over each cohort's live merchants, live counts, each group's
exposure concentration) comes from one compiled pass over the slots that exist
(`simulator.aggregation_kernels.day_sums`), eight slots a step. A caller that hands the flows
back to the model (`simulator.run`) has the flows the model adds to zeroed in that pass, as
they are read, instead of the model zeroing new arrays the next day.

Sums of whole numbers (counts, orders, appeals) are exact. Sums of fractions are added in eight
lanes, not in numpy's pairwise order, so they may differ from numpy's sums in their last bits
(`tests/simulator/test_aggregates.py` checks the whole day against the numpy version to 1e-12,
`tests/simulator/test_aggregation_kernels.py` the pass against the order it documents).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from simulator.aggregation_kernels import COHORT_SUMS, FLOWS, TOTALS, chunk_sums
from simulator.kernels import chunk_sample_statistics
from simulator.projection import COHORT_SERIES, PERCENTILE_SERIES, POPULATION_SERIES
from simulator.scenario import TIERS

QUANTILES = (0.1, 0.5, 0.9)
_QUANTILES = np.array(QUANTILES)  # ascending, as `sample_statistics` takes them

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


def series_bytes(replications: int, days: int) -> int:
    """The bytes of the series `empty_series` makes for a run (float64 values)."""
    c, q = len(TIERS), len(QUANTILES)
    per_day = (len(POPULATION_SERIES) + len(EXTRA_SERIES) + len(COHORT_SERIES) * c
               + len(PERCENTILE_SERIES) * c * q)
    return 8 * per_day * replications * days


@dataclass(frozen=True)
class Samples:
    """Fixed merchant indices per cohort (within one replication) for quantile estimates, and
    each slot's cohort."""

    by_cohort: tuple[np.ndarray, ...]
    population: np.ndarray
    #: Merchants of each cohort that exist (the denominator of a cohort's share alive).
    sizes: np.ndarray
    #: Each slot's cohort (int8), -1 for a slot that does not exist (padding).
    label: np.ndarray

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
        label = np.where(exists, tier, -1).astype(np.int8)
        return cls(by_cohort, spread(existing, size * len(TIERS)),
                   counts.astype(np.float64), label)

    @cached_property
    def _runs(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return {}

    def runs(self, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The runs of slots that exist, cut where a group ends (groups are `n_groups`
        contiguous blocks of equal size): their starts, stops and groups (int64), for
        `day_sums` to skip the padding."""
        kept = self._runs
        if n_groups not in kept:
            n = self.label.size
            if n_groups < 1 or n % n_groups:
                raise ValueError(f"{n} slots do not make {n_groups} groups of equal size")
            width = n // n_groups
            exists = (self.label >= 0).reshape(n_groups, width).astype(np.int8)
            # Within each group's row, +1 where a run starts and -1 one past where it ends.
            edges = np.diff(exists, axis=1, prepend=0, append=0)
            group, start = np.nonzero(edges == 1)
            stop_group, stop = np.nonzero(edges == -1)
            kept[n_groups] = (group * width + start, stop_group * width + stop, group)
        return kept[n_groups]

    @cached_property
    def alone(self) -> ChunkSamples:
        """These samples as a chunk of one replication."""
        return ChunkSamples.of([self])

    @cached_property
    def sampled_slots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every sampled merchant once, in slot order (int64), and where the samples are in
        it: the cohorts' samples end to end as positions in the union, where each cohort's
        starts and ends (``bounds[c]:bounds[c + 1]``), and the pooled sample's positions.
        `sample_statistics` reads the arrays through the union in one pass in slot order,
        and takes the numbers by these positions."""
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


@dataclass(frozen=True)
class ChunkSamples:
    """The samples of the replications run together (a chunk), replication k in the chunk's
    slots [k n1, (k + 1) n1): each one's `Samples`, and what the compiled passes over all of
    them read, in the chunk's slots (made once per chunk)."""

    each: tuple[Samples, ...]
    #: Slots per replication.
    n1: int

    @classmethod
    def of(cls, each: Sequence[Samples]) -> ChunkSamples:
        n1 = each[0].label.size
        if any(s.label.size != n1 for s in each):
            raise ValueError("replications run together must have the same number of slots, "
                             f"not {sorted({s.label.size for s in each})}")
        return cls(tuple(each), n1)

    @cached_property
    def label(self) -> np.ndarray:
        return np.concatenate([s.label for s in self.each])

    @cached_property
    def sizes(self) -> np.ndarray:
        return np.stack([s.sizes for s in self.each])

    @cached_property
    def _runs(self) -> dict[int, tuple[np.ndarray, ...]]:
        return {}

    def runs(self, n_groups: int) -> tuple[np.ndarray, ...]:
        """Each replication's runs (`Samples.runs`) in chunk slots, end to end, and where
        each one's start (`run_at`, R + 1): run_at, starts, stops, groups."""
        kept = self._runs
        if n_groups not in kept:
            parts = [s.runs(n_groups) for s in self.each]
            kept[n_groups] = (_offsets([p[0].size for p in parts]),
                              *(np.concatenate([p[j] + (k * self.n1 if j < 2 else 0)
                                                for k, p in enumerate(parts)])
                                for j in range(3)))
        return kept[n_groups]

    @cached_property
    def sampled_slots(self) -> tuple[np.ndarray, ...]:
        """Each replication's `Samples.sampled_slots`, end to end, the union in chunk slots:
        union, union_at, cohort_pos, cohort_at, bounds (R, C + 1), pooled_pos, pooled_at."""
        parts = [s.sampled_slots for s in self.each]
        union = np.concatenate([p[0] + k * self.n1 for k, p in enumerate(parts)])
        return (union, _offsets([p[0].size for p in parts]),
                np.concatenate([p[1] for p in parts]), _offsets([p[1].size for p in parts]),
                np.stack([p[2] for p in parts]),
                np.concatenate([p[3] for p in parts]), _offsets([p[3].size for p in parts]))


def _offsets(sizes: Sequence[int]) -> np.ndarray:
    at = np.zeros(len(sizes) + 1, dtype=np.int64)
    at[1:] = np.cumsum(sizes)
    return at


def _sample_statistics(out: dict[str, np.ndarray], rows: slice, t: int,
                       state: Mapping[str, np.ndarray], exposure: np.ndarray,
                       chunk: ChunkSamples) -> None:
    """The percentiles of price, margin and quality by cohort, the median margin and the
    exposure Gini of day t on the fixed samples' live merchants of each replication, as
    numpy's ``quantile``, ``median`` and `_numpy_gini` of their float64 values give them: the
    sampled merchants' numbers read and their order statistics found in one compiled call
    for the chunk (`chunk_sample_statistics`); where a zero or NaN could make its bits differ
    from numpy's partition or sort, numpy computes that figure."""
    alive = state["alive"]
    arrays = (state["price"], state["margin"], state["quality"])
    union, union_at, cohort_pos, cohort_at, bounds, pooled_pos, pooled_at = chunk.sampled_slots
    r, cohorts = len(chunk.each), bounds.shape[1] - 1
    quantiles = np.empty((r, len(arrays), cohorts, len(QUANTILES)))
    exact = np.empty((r, len(arrays), cohorts), dtype=np.bool_)
    pooled_exposure = np.empty((r, int(np.diff(pooled_at).max(initial=0))))
    median, median_exact = np.empty(r), np.empty(r, dtype=np.bool_)
    pooled_live, gini_value = np.empty(r, dtype=np.int64), np.empty(r)
    gini_certain = np.empty(r, dtype=np.bool_)
    chunk_sample_statistics(*arrays, exposure, alive, union, union_at, cohort_pos, cohort_at,
                            bounds, pooled_pos, pooled_at, _QUANTILES, quantiles, exact,
                            pooled_exposure, median, median_exact, pooled_live, gini_value,
                            gini_certain)
    for k, v, c in zip(*np.nonzero(~exact), strict=True):
        idx = chunk.each[k].by_cohort[c] + k * chunk.n1
        idx = idx[alive[idx]]
        quantiles[k, v, c] = (np.quantile(arrays[v][idx].astype(np.float64), QUANTILES)
                              if idx.size else np.nan)
    for k in np.flatnonzero(~median_exact):
        pooled = chunk.each[k].population + k * chunk.n1
        pooled = pooled[alive[pooled]]
        median[k] = (float(np.median(state["margin"][pooled].astype(np.float64)))
                     if pooled.size else np.nan)
    for k in np.flatnonzero(~gini_certain):
        gini_value[k] = _numpy_gini(pooled_exposure[k, :pooled_live[k]])
    out["price_pct"][rows, t] = quantiles[:, 0]
    out["margin_pct"][rows, t] = quantiles[:, 1]
    out["quality_pct"][rows, t] = quantiles[:, 2]
    out["median_margin"][rows, t] = median
    out["exposure_gini"][rows, t] = gini_value


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


def _numpy_gini(x: np.ndarray) -> float:
    """The Gini coefficient of the float64 x by numpy's sort (and the definition
    `simulator.kernels.gini` reproduces, by a radix sort of the bits, for what that sort
    takes: no negative number, -0.0 or NaN)."""
    if x.size == 0:
        return float("nan")
    total = x.sum()
    if total <= 0:
        return 0.0
    s = np.sort(x)
    k = np.arange(1, s.size + 1, dtype=np.float64)
    return float((2.0 * (k * s).sum()) / (s.size * total) - (s.size + 1.0) / s.size)


def _flat(x: np.ndarray, dtype: Any) -> bool:
    return x.dtype == dtype and x.ndim == 1 and x.flags.c_contiguous


def _sums(state: Mapping[str, np.ndarray], flows: DayFlows, chunk: ChunkSamples,
          clear: Collection[str], totals: np.ndarray, by_cohort: np.ndarray,
          counts: np.ndarray, by_group: np.ndarray) -> None:
    """`day_sums` of each replication of the chunk into row r of totals, by_cohort, counts
    and by_group (zeros: the groups' sums are added to it), in one call (`chunk_sums`), with
    the flows named in `clear` zeroed. Arrays the kernel does not take as they are (not
    flat, or of another dtype: the reference's) are handed to it as flat copies, and zeroed
    after."""
    arrays = []
    bits = 0
    zero_after = []
    for j, name in enumerate(FLOWS):
        x = getattr(flows, name)
        if _flat(x, np.float64):
            bits |= (name in clear) << j
        else:
            if name in clear:
                zero_after.append(x)
            x = np.ascontiguousarray(x, dtype=np.float64).ravel()
        arrays.append(x)
    alive, enrolled = (np.ascontiguousarray(state[key], dtype=np.bool_).ravel().view(np.uint8)
                       for key in ("alive", "enrolled"))
    dtype = state["price"].dtype if state["price"].dtype == np.float32 else np.float64
    prices = [state[key] if _flat(state[key], dtype) else
              np.ascontiguousarray(state[key], dtype=dtype).ravel()
              for key in ("price", "price0", "margin", "quality", "unit_cost")]
    chunk_sums(*chunk.runs(by_group.shape[2]), chunk.label, alive, enrolled, *prices, *arrays,
               bits, totals, by_cohort, counts, by_group)
    for x in zero_after:
        x.fill(0.0)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b where b > 0, NaN elsewhere (inf / inf, after an overflow: NaN, said elsewhere);
    under `_write_figures`' errstate."""
    return np.where(b > 0, a / b, np.nan)


def aggregate(out: dict[str, np.ndarray], r: int, t: int, state: Mapping[str, np.ndarray],
              flows: DayFlows, n_groups: int, samples: Samples,
              clear: Collection[str] = ()) -> None:
    """Write day t of replication r into the series arrays `out` (float64, preallocated).

    Every sum the figures need is taken in one compiled pass over the slots that exist
    (`simulator.aggregation_kernels.day_sums`): whole-population totals of the flows, sums
    over each cohort's live merchants, the live counts, and each group's exposure and sum of
    squared exposures. Slots that do not exist (padding) are skipped: they hold no flows (no
    stage of the model writes there). The percentiles, median margin and exposure Gini are
    read on the fixed samples (`_sample_statistics`). The `n_groups` product groups are
    contiguous blocks of slots of equal size. The flows named in `clear` are
    zeroed once read (for `simulator.model.Model.recycle_flows`).
    """
    aggregate_chunk(out, r, t, state, flows, n_groups, samples.alone, clear)


def aggregate_chunk(out: dict[str, np.ndarray], base: int, t: int,
                    state: Mapping[str, np.ndarray], flows: DayFlows, n_groups: int,
                    chunk: ChunkSamples, clear: Collection[str] = ()) -> None:
    """`aggregate` of day t of the replications run together in `state` and `flows` (the
    chunk's arrays: replication k in slots [k n1, (k + 1) n1), `chunk`), the k-th written at
    row base + k.

    The replications' sums, and their order statistics, are each one compiled call over all
    of them, which makes the same calls on the same numbers as one replication's alone; the
    figures made of them are computed for all the replications at once, in arrays over them,
    with the operations one replication's would take (so the same bits). A day then costs a
    few dozen numpy calls, not a few dozen per replication, which on the default
    population's 200 merchants cost more than the compiled passes."""
    r, k = len(chunk.each), len(TIERS)
    totals, by_cohort = np.empty((r, len(TOTALS))), np.empty((r, len(COHORT_SUMS), k))
    counts, by_group = np.empty((r, 2)), np.zeros((r, 2, n_groups))
    rows = slice(base, base + r)
    # The samples first: the pass below zeroes the flows it is asked to.
    _sample_statistics(out, rows, t, state, flows.exposure, chunk)
    _sums(state, flows, chunk, clear, totals, by_cohort, counts, by_group)
    _write_figures(out, rows, t, totals, by_cohort, counts, by_group, chunk.sizes)


@np.errstate(invalid="ignore", divide="ignore", over="ignore")
def _write_figures(out: dict[str, np.ndarray], rows: slice, t: int, totals: np.ndarray,
                   by_cohort: np.ndarray, counts: np.ndarray, by_group: np.ndarray,
                   sizes: np.ndarray) -> None:
    """The day's figures of the replications `rows` from their sums (`chunk_sums`' outputs,
    a row per replication: totals (R, 9), by_cohort (R, 10, C), counts (R, 2), by_group
    (R, 2, G)) and their cohorts' sizes (R, C). A zero or infinite denominator
    gives NaN (or infinity) without numpy's warnings: `simulate` names such series itself."""
    commission, ads, fees, gmv, refund, below_cost, orders, prompts, forced = totals.T
    (revenue_c, refund_c, exposure_c, quality_c, price_c, margin_c, price_rel, n_c,
     attempted, won) = by_cohort.transpose(1, 0, 2)
    n_c = n_c.astype(np.int64)
    enrolled_alive, below_cost_listings = counts.T.astype(np.int64)
    by_group, squares = by_group.transpose(1, 0, 2)
    n_alive = n_c.sum(axis=1)
    out["share_alive"][rows, t] = n_alive / np.maximum(1, sizes.sum(axis=1).astype(np.int64))
    out["gmv"][rows, t] = gmv
    out["take_rate"][rows, t] = _ratio(commission + ads + fees, gmv)
    out["refund_burden_ratio"][rows, t] = _ratio(refund, gmv)
    out["fee_burden_ratio"][rows, t] = _ratio(commission + fees, gmv)
    out["ad_burden_ratio"][rows, t] = _ratio(ads, gmv)
    out["below_cost_sales_share"][rows, t] = _ratio(below_cost, orders)
    exposure_total = by_group.sum(axis=1)
    hhi_g = np.where(by_group > 0, squares / by_group ** 2, 0.0)
    out["exposure_hhi"][rows, t] = np.where(
        exposure_total > 0, (hhi_g * by_group).sum(axis=1) / exposure_total, np.nan)
    out["auto_follow_share"][rows, t] = _ratio(enrolled_alive, n_alive)
    out["prompts_per_merchant"][rows, t] = _ratio(prompts, n_alive)
    out["forced_follows_per_merchant"][rows, t] = _ratio(forced, n_alive)
    out["below_cost_listing_share"][rows, t] = _ratio(below_cost_listings, n_alive)
    sum_q = quality_c.sum(axis=1)
    out["quality_mean_population"][rows, t] = _ratio(sum_q, n_alive)
    # Live merchants' prices relative to their starting prices (1 = unchanged).
    out["price_index"][rows, t] = _ratio(price_rel.sum(axis=1), n_alive)
    alive_c = np.where(n_c > 0, n_c, np.nan)
    out["share_alive_by_cohort"][rows, t, :] = n_c / np.where(sizes > 0, sizes, np.nan)
    out["price_mean"][rows, t, :] = price_c / alive_c
    out["margin_mean"][rows, t, :] = margin_c / alive_c
    out["quality_mean"][rows, t, :] = quality_c / alive_c
    out["refund_burden_ratio_by_cohort"][rows, t, :] = np.where(
        (n_c > 0) & (revenue_c > 0), refund_c / revenue_c, np.nan)
    exposure_share = np.where(exposure_total[:, None] > 0,
                              exposure_c / exposure_total[:, None], np.nan)
    quality_share = np.where(sum_q[:, None] > 0, quality_c / sum_q[:, None], np.nan)
    out["exposure_per_quality_by_cohort"][rows, t, :] = np.where(
        n_c > 0, exposure_share / quality_share, np.nan)
    out["appeal_success_by_cohort"][rows, t, :] = np.where(attempted > 0, won / attempted,
                                                           np.nan)
