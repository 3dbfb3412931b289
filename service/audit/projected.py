"""Projected checks: a criterion's metric over the days of a simulator projection.

A projection (`simulator.projection.Projection`) holds daily aggregates per replication. Each
projected check reads one series, averages it over the replications day by day (ignoring NaN,
the days a figure has no meaning), keeps the 10th and 90th percentiles as the band, and judges the
**last day** against the criterion's threshold: where the rules lead the population, not where it
started. The worst day is reported beside it. `Finding.series` carries the daily figures for the
report's chart; NaN days are written as null so the JSON stays valid.

Cohort criteria divide each cohort's daily mean by the reference cohort's and judge the last day's
disparity against the tau band, like the dynamic checks.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.rulebook import RulebookSet
from service.audit.criteria import Criterion
from service.audit.dynamic import disparity, tau_band
from service.audit.finding import Finding
from service.audit.static import make_finding
from simulator import bands
from simulator.projection import Projection


@dataclass(frozen=True)
class Measure:
    """A population series held to a criterion parameter: outside when above it.

    ``scale`` converts the projection's unit to the criterion's: the simulator keeps HHI on
    the 0-1 scale of its other shares, the catalogue states it on the antitrust 0-10,000 scale.
    """

    series: str
    bound: str
    scale: float = 1.0


POPULATION_MEASURES: dict[str, Measure] = {
    "below_cost_forcing": Measure("below_cost_sales_share", "max_below_cost_share"),
    "burden_shift": Measure("refund_burden_ratio", "max_refund_burden_ratio"),
    "take_rate": Measure("take_rate", "merchant_margin"),
    "exposure_gini": Measure("exposure_gini", "max_gini"),
    "exposure_hhi": Measure("exposure_hhi", "max_hhi", scale=10_000.0),
}

COHORT_MEASURES: dict[str, str] = {
    "exposure_per_quality_by_size_tier": "exposure_per_quality_by_cohort",
    "refund_burden_ratio_by_size_tier": "refund_burden_ratio_by_cohort",
    "appeal_success_by_size_tier": "appeal_success_by_cohort",
}


def _clean(values: Iterable[float]) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else round(float(v), 9) for v in values]


def _daily(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, 10th and 90th percentile over replications (axis 0), NaN-aware."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days stay NaN
        low, high = bands.nanpercentile(arr, (10.0, 90.0))
        return np.nanmean(arr, axis=0), low, high


def _last_finite(values: np.ndarray) -> tuple[int, float] | None:
    idx = np.flatnonzero(np.isfinite(values))
    return (int(idx[-1]), float(values[idx[-1]])) if idx.size else None


def _na(crit: Criterion, rs: RulebookSet, why: str) -> Finding:
    return make_finding(crit, rs, "not_applicable", {"details": why}, kind="projected",
                        template=why)


def check_population(rs: RulebookSet, crit: Criterion, p: Projection, m: Measure) -> Finding:
    arr = p.series.get(m.series)
    if arr is None:
        return _na(crit, rs, f"The projection has no '{m.series}' series.")
    mean, lo, hi = _daily(np.asarray(arr, dtype=float) * m.scale)
    last = _last_finite(mean)
    if last is None:
        return _na(crit, rs, f"The '{m.series}' series has no value on any day.")
    day, value = last
    worst = float(np.nanmax(mean))
    bound = float(crit.param(m.bound))
    verdict = "violation" if value > bound else ("warning" if worst > bound else "pass")
    finding = make_finding(
        crit, rs, verdict,
        {"series": m.series, "last": value, "last_day": day + 1, "worst": worst,
         "worst_day": int(np.nanargmax(mean)) + 1, "bound": bound, "scenario": p.scenario,
         "days": p.days, "replications": p.replications, "value": value},
        kind="projected")
    finding.series = {"mean": _clean(mean), "p10": _clean(lo), "p90": _clean(hi),
                      "bound": [bound] * len(mean)}  # type: ignore[dict-item]
    return finding


def check_cohorts(rs: RulebookSet, crit: Criterion, p: Projection, name: str) -> Finding:
    arr = p.series.get(name)
    if arr is None:
        return _na(crit, rs, f"The projection has no '{name}' series.")
    mean, _, _ = _daily(np.asarray(arr, dtype=float))      # (T, C)
    ref = str(crit.param("reference_cohort"))
    if ref not in p.cohorts:
        return _na(crit, rs, f"The projection has no '{ref}' cohort to compare with.")
    r = p.cohorts.index(ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = mean / mean[:, r:r + 1]
    finite_days = np.flatnonzero(np.isfinite(mean[:, r]) & (mean[:, r] > 0))
    if not finite_days.size:
        return _na(crit, rs, f"The '{ref}' cohort has no figure on any day.")
    day = int(finite_days[-1])
    verdict, evidence = disparity({c: float(mean[day, i]) for i, c in enumerate(p.cohorts)},
                                  crit)
    tau, high = tau_band(crit)
    others = [i for i, c in enumerate(p.cohorts) if c != ref]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ever_outside = any(np.any((ratios[:, i] < tau) | (ratios[:, i] > high))
                           for i in others)
    if verdict == "pass" and ever_outside:
        verdict = "warning"
    evidence.update({"series": name, "last_day": day + 1, "scenario": p.scenario,
                     "days": p.days, "replications": p.replications})
    finding = make_finding(crit, rs, verdict, evidence, kind="projected", template="{details}")
    finding.series = {f"{c} / {ref}": _clean(ratios[:, i]) for i, c in enumerate(p.cohorts)
                      if c != ref}  # type: ignore[misc]
    finding.series["tau_low"] = [tau] * p.days  # type: ignore[list-item]
    finding.series["tau_high"] = [high] * p.days  # type: ignore[list-item]
    return finding


ProjectedCheck = Callable[[RulebookSet, Criterion, Projection], Finding]


def projected_check(criterion_id: str) -> ProjectedCheck | None:
    if criterion_id in POPULATION_MEASURES:
        m = POPULATION_MEASURES[criterion_id]
        return lambda rs, c, p: check_population(rs, c, p, m)
    if criterion_id in COHORT_MEASURES:
        name = COHORT_MEASURES[criterion_id]
        return lambda rs, c, p: check_cohorts(rs, c, p, name)
    return None


def run_projected(rs: RulebookSet, criteria: Iterable[Criterion], projection: Projection) \
        -> list[Finding]:
    projection.check()
    out: list[Finding] = []
    for crit in criteria:
        if "projected" not in crit.checks:
            continue
        check = projected_check(crit.id)
        if check is None:
            raise ValueError(f"{crit.location}: criterion {crit.id} lists a projected check, "
                             f"but none is implemented for it")
        out.append(check(rs, crit, projection))
    return out


def series_used() -> dict[str, Any]:
    """Which projection series each criterion reads (for documentation and the report)."""
    return {**{k: v.series for k, v in POPULATION_MEASURES.items()}, **COHORT_MEASURES}
