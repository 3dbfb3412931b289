"""Reduce one simulated day of one replication to the figures a Projection keeps.

Shared by the vectorised model and the plain reference, so the oracle test compares the model's
state and flows, not two ways of computing a Gini. Percentiles, the median margin and the exposure
Gini are read on a fixed sample of merchants per cohort (every merchant when a cohort has no more
than the scenario's ``percentile_sample``): exact on small populations, and O(sample) per day on
a million merchants instead of a sort of the whole population. Cohort sums are compiled
(`simulator.kernels`), with the bits of the numpy gather and ``np.add.reduceat`` they replace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.kernels import live_in_order, segment_take_ratio_sums, segment_take_sums
from simulator.projection import COHORT_SERIES, PERCENTILE_SERIES, POPULATION_SERIES
from simulator.scenario import TIERS

QUANTILES = (0.1, 0.5, 0.9)

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


@dataclass(frozen=True)
class Samples:
    """Fixed merchant indices per cohort (within one replication) for quantile estimates."""

    by_cohort: tuple[np.ndarray, ...]
    population: np.ndarray
    #: Merchants of each cohort that exist (the denominator of a cohort's share alive).
    sizes: np.ndarray
    #: The existing merchants ordered by cohort (slot order within one): cohort sums are one
    #: gather and one `np.add.reduceat`.
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

    def cohort_sums(self, x: np.ndarray) -> np.ndarray:
        """Sum of x over each cohort's merchants, as float64, in slot order."""
        return take_sums(x, self.order, self.sizes)


def take_sums(x: np.ndarray, idx: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """`segment_sums(x[idx].astype(np.float64), sizes)` in one compiled pass, same bits."""
    return segment_take_sums(x, idx, np.asarray(sizes, dtype=np.int64),
                             np.empty(len(sizes)))


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
    if x.size == 0:
        return float("nan")
    total = x.sum()
    if total <= 0:
        return 0.0
    s = np.sort(x)
    k = np.arange(1, s.size + 1, dtype=np.float64)
    return float((2.0 * (k * s).sum()) / (s.size * total) - (s.size + 1.0) / s.size)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def aggregate(out: dict[str, np.ndarray], r: int, t: int, state: dict[str, np.ndarray],
              flows: DayFlows, group: np.ndarray, n_groups: int, samples: Samples) -> None:
    """Write day t of replication r into the series arrays `out` (float64, preallocated).

    Cohort figures are sums over each cohort's (live) merchants in cohort order, slot order
    within a cohort: one gather and one segmented sum per quantity. `group` is the
    product group of each merchant; groups are contiguous blocks of equal size.
    """
    alive = state["alive"]
    k = len(TIERS)
    # The live merchants in cohort order, and how many each cohort has.
    sizes = samples.sizes.astype(np.int64)
    live_order = np.empty(samples.order.size, dtype=samples.order.dtype)
    n_c = np.empty(k, dtype=np.int64)
    live_order = live_order[:live_in_order(alive, samples.order, sizes, live_order, n_c)]

    def by(x: np.ndarray) -> np.ndarray:
        """Sum over each cohort's live merchants."""
        return take_sums(x, live_order, n_c)

    def flow(x: np.ndarray) -> np.ndarray:
        """Sum over each cohort's merchants, live or not."""
        return samples.cohort_sums(x)

    def total(x: np.ndarray) -> float:
        return float(np.sum(x, dtype=np.float64))

    price, quality, margin = state["price"], state["quality"], state["margin"]
    n_alive = int(n_c.sum())
    revenue_c = by(flows.revenue)
    refund_c = by(flows.refund)
    exposure_c = by(flows.exposure)
    quality_c = by(quality)
    commission, ads, fees = total(flows.commission), total(flows.ads), total(flows.fees)
    gmv = total(flows.revenue)
    out["share_alive"][r, t] = n_alive / max(1, int(samples.sizes.sum()))
    out["gmv"][r, t] = gmv
    out["take_rate"][r, t] = _ratio(commission + ads + fees, gmv)
    out["refund_burden_ratio"][r, t] = _ratio(total(flows.refund), gmv)
    out["fee_burden_ratio"][r, t] = _ratio(commission + fees, gmv)
    out["ad_burden_ratio"][r, t] = _ratio(ads, gmv)
    out["below_cost_sales_share"][r, t] = _ratio(total(flows.below_cost_units),
                                                 total(flows.orders))
    # Groups are contiguous blocks of slots (simulator.population): sums by group are row sums.
    exposure = flows.exposure.astype(np.float64, copy=False).reshape(n_groups, -1)
    by_group = exposure.sum(axis=1)
    exposure_total = float(by_group.sum())
    if exposure_total > 0:
        squares = np.square(exposure).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            hhi_g = np.where(by_group > 0, squares / by_group ** 2, 0.0)
        out["exposure_hhi"][r, t] = float((hhi_g * by_group).sum() / exposure_total)
    else:
        out["exposure_hhi"][r, t] = float("nan")
    out["auto_follow_share"][r, t] = _ratio(int(np.count_nonzero(state["enrolled"] & alive)),
                                            n_alive)
    out["prompts_per_merchant"][r, t] = _ratio(total(flows.prompts), n_alive)
    out["forced_follows_per_merchant"][r, t] = _ratio(total(flows.forced_follows), n_alive)
    out["below_cost_listing_share"][r, t] = _ratio(
        int(np.count_nonzero(alive & (price < state["unit_cost"]))), n_alive)
    sum_q = float(quality_c.sum())
    out["quality_mean_population"][r, t] = sum_q / n_alive if n_alive else np.nan
    # Live merchants' prices relative to their starting prices (1 = unchanged).
    price_rel = segment_take_ratio_sums(price, state["price0"], live_order, n_c, np.empty(k))
    out["price_index"][r, t] = _ratio(float(price_rel.sum()), n_alive)
    with np.errstate(invalid="ignore", divide="ignore"):
        alive_c = np.where(n_c > 0, n_c, np.nan)
        out["share_alive_by_cohort"][r, t, :] = n_c / np.where(samples.sizes > 0, samples.sizes,
                                                               np.nan)
        out["price_mean"][r, t, :] = by(price) / alive_c
        out["margin_mean"][r, t, :] = by(margin) / alive_c
        out["quality_mean"][r, t, :] = quality_c / alive_c
        out["refund_burden_ratio_by_cohort"][r, t, :] = np.where(
            (n_c > 0) & (revenue_c > 0), refund_c / revenue_c, np.nan)
        exposure_share = exposure_c / exposure_total if exposure_total > 0 else np.nan
        quality_share = quality_c / sum_q if sum_q > 0 else np.nan
        out["exposure_per_quality_by_cohort"][r, t, :] = np.where(
            n_c > 0, exposure_share / quality_share, np.nan)
        attempted = flow(flows.appeals_attempted)
        won = flow(flows.appeals_won)
        out["appeal_success_by_cohort"][r, t, :] = np.where(attempted > 0, won / attempted,
                                                            np.nan)
    for c in range(k):
        idx = samples.by_cohort[c]
        idx = idx[alive[idx]]
        for name, arr in (("price_pct", price), ("margin_pct", margin),
                          ("quality_pct", quality)):
            out[name][r, t, c, :] = (np.quantile(arr[idx].astype(np.float64), QUANTILES)
                                     if n_c[c] and idx.size else np.nan)
    pooled = samples.population[alive[samples.population]]
    out["median_margin"][r, t] = (float(np.median(margin[pooled].astype(np.float64)))
                                  if pooled.size else np.nan)
    out["exposure_gini"][r, t] = _gini(flows.exposure[pooled].astype(np.float64))
