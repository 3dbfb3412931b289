"""What a simulation run returns: daily aggregates, never the full population history.

A run over 1,000,000 merchants and 365 days cannot keep (day x merchant) arrays, so the model
reduces each day to the figures people read (cohort means and percentiles, concentration, burden
ratios) and the projection stores only those, per replication. Every consumer (summary JSON,
charts, what-if, sensitivity, the audit's projected checks, the gRPC service) reads this one shape.

Layout of ``series`` (all float64):
- shape ``(R, T)`` for population-wide figures;
- shape ``(R, T, C)`` for cohort figures, ``C = len(cohorts)`` in the order of ``cohorts``;
- shape ``(R, T, C, Q)`` for cohort percentiles, ``Q = len(quantiles)``.
R = replications, T = days. A figure with no meaning on a day (e.g. the margin of a cohort whose
merchants have all left) is NaN there.

Series names (a model may add more; these are the ones consumers rely on):
  (R, T)        exposure_gini, exposure_hhi, take_rate, refund_burden_ratio, fee_burden_ratio,
                ad_burden_ratio, below_cost_sales_share, share_alive, gmv, median_margin
  (R, T, C)     share_alive_by_cohort, price_mean, margin_mean, quality_mean,
                refund_burden_ratio_by_cohort, exposure_per_quality_by_cohort,
                appeal_success_by_cohort
  (R, T, C, Q)  price_pct, margin_pct, quality_pct
Ratios are fractions (0.05 = 5 %), exposure_hhi included (0-1: the exposure-weighted mean of the
product groups' HHI; multiply by 10,000 for the antitrust convention); money is yuan; margin is
(price - unit cost - per-unit burdens) over price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

COHORT_SERIES = (
    "share_alive_by_cohort", "price_mean", "margin_mean", "quality_mean",
    "refund_burden_ratio_by_cohort", "exposure_per_quality_by_cohort", "appeal_success_by_cohort",
)
PERCENTILE_SERIES = ("price_pct", "margin_pct", "quality_pct")
POPULATION_SERIES = (
    "exposure_gini", "exposure_hhi", "take_rate", "refund_burden_ratio", "fee_burden_ratio",
    "ad_burden_ratio", "below_cost_sales_share", "share_alive", "gmv", "median_margin",
)


@dataclass
class Projection:
    """Daily aggregates of R replications of one rulebook set on one scenario."""

    set_id: str
    revision: str
    scenario: str
    days: int
    replications: int
    seed: int
    cohorts: tuple[str, ...]
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    series: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise ValueError if a series does not have the documented shape."""
        r, t, c, q = self.replications, self.days, len(self.cohorts), len(self.quantiles)
        for name, arr in self.series.items():
            if name in COHORT_SERIES:
                want: tuple[int, ...] = (r, t, c)
            elif name in PERCENTILE_SERIES:
                want = (r, t, c, q)
            elif name in POPULATION_SERIES:
                want = (r, t)
            else:
                continue
            if arr.shape != want:
                raise ValueError(f"series {name!r} has shape {arr.shape}, expected {want}")
