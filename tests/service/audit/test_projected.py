"""Projected checks on synthetic projections: the metric over time, judged on the last day."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from service.audit.projected import COHORT_MEASURES, POPULATION_MEASURES, run_projected
from simulator.projection import Projection

COHORTS = ("small", "medium", "large")
R, T = 3, 30


def projection(**series: np.ndarray) -> Projection:
    p = Projection(set_id="x", revision="r", scenario="test", days=T, replications=R, seed=1,
                   cohorts=COHORTS, series=dict(series))
    p.check()
    return p


def ramp(start: float, end: float) -> np.ndarray:
    """(R, T): a straight line from start to end, with a little spread between replications."""
    line = np.linspace(start, end, T)
    return np.stack([line * (1 + 0.01 * (r - 1)) for r in range(R)])


def cohorts(small: float, medium: float, large: float) -> np.ndarray:
    return np.broadcast_to(np.array([small, medium, large]), (R, T, 3)).copy()


# criterion -> (violating series, passing series)
POPULATION = {
    "below_cost_forcing": (ramp(0.0, 0.2), np.zeros((R, T))),
    "burden_shift": (ramp(0.02, 0.10), ramp(0.01, 0.02)),
    "take_rate": (ramp(0.04, 0.09), ramp(0.02, 0.03)),
    "exposure_gini": (ramp(0.3, 0.9), ramp(0.2, 0.3)),
    "exposure_hhi": (ramp(0.10, 0.40), ramp(0.09, 0.12)),  # 0-1 here, 0-10,000 in the catalogue
}
COHORT = {
    "exposure_per_quality_by_size_tier": (cohorts(0.3, 0.9, 1.0), cohorts(0.95, 1.0, 1.0)),
    "refund_burden_ratio_by_size_tier": (cohorts(0.10, 0.045, 0.04), cohorts(0.04, 0.04, 0.04)),
    "appeal_success_by_size_tier": (cohorts(0.2, 0.5, 0.5), cohorts(0.5, 0.45, 0.5)),
}


def test_every_projected_criterion_is_covered(catalogue) -> None:
    listed = {c.id for c in catalogue if "projected" in c.checks}
    assert listed == set(POPULATION) | set(COHORT)
    assert listed == set(POPULATION_MEASURES) | set(COHORT_MEASURES)


@pytest.mark.parametrize("criterion", sorted(POPULATION))
def test_population_series(reformed, catalogue, criterion: str) -> None:
    name = POPULATION_MEASURES[criterion].series
    bad, good = POPULATION[criterion]
    [v] = run_projected(reformed, [catalogue[criterion]], projection(**{name: bad}))
    [p] = run_projected(reformed, [catalogue[criterion]], projection(**{name: good}))
    assert (v.verdict, p.verdict) == ("violation", "pass")
    assert v.kind == "projected" and len(v.series["mean"]) == T
    scale = POPULATION_MEASURES[criterion].scale
    assert v.evidence["last"] == pytest.approx(float(bad[:, -1].mean()) * scale)
    assert "{" not in v.reading and "last day" in v.reading


def test_the_daily_band_is_the_10th_to_90th_percentile_across_replications(
        reformed, catalogue) -> None:
    """p10 and p90 are numpy's nanpercentile across the replications, day by day (a day
    without a value in some replications counts the others; in none, null)."""
    series = np.random.default_rng(4).random((R, T)) * 0.01
    series[1, 5] = np.nan
    series[:, 7] = np.nan
    [f] = run_projected(reformed, [catalogue["take_rate"]], projection(take_rate=series))
    scale = POPULATION_MEASURES["take_rate"].scale
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        p10, p90 = np.nanpercentile(series * scale, (10, 90), axis=0)
    assert f.series["p10"][7] is None and f.series["p90"][7] is None
    keep = [d for d in range(T) if d != 7]
    assert [f.series["p10"][d] for d in keep] == [round(float(p10[d]), 9) for d in keep]
    assert [f.series["p90"][d] for d in keep] == [round(float(p90[d]), 9) for d in keep]
    assert all(f.series["p10"][d] < f.series["p90"][d] for d in keep if d != 5)


@pytest.mark.parametrize("criterion", sorted(COHORT))
def test_cohort_series(reformed, catalogue, criterion: str) -> None:
    name = COHORT_MEASURES[criterion]
    bad, good = COHORT[criterion]
    [v] = run_projected(reformed, [catalogue[criterion]], projection(**{name: bad}))
    [p] = run_projected(reformed, [catalogue[criterion]], projection(**{name: good}))
    assert (v.verdict, p.verdict) == ("violation", "pass")
    assert v.evidence["outside"] == ["small"]
    assert set(v.series) == {"small / large", "medium / large", "tau_low", "tau_high"}


def test_a_tau_of_zero_is_a_band_without_a_top(reformed, catalogue) -> None:
    crit = catalogue.with_parameters({"appeal_success_by_size_tier.tau": "0"})[
        "appeal_success_by_size_tier"]
    name = COHORT_MEASURES["appeal_success_by_size_tier"]
    [f] = run_projected(reformed, [crit], projection(**{name: cohorts(0.2, 0.5, 0.5)}))
    assert f.verdict == "pass"
    assert f.series["tau_low"][0] == 0.0 and f.series["tau_high"][0] == math.inf


def test_an_earlier_breach_is_a_warning(reformed, catalogue) -> None:
    hump = np.concatenate([np.full((R, 10), 0.08), np.full((R, T - 10), 0.03)], axis=1)
    [f] = run_projected(reformed, [catalogue["take_rate"]], projection(take_rate=hump))
    assert f.verdict == "warning" and f.evidence["worst_day"] == 1


def test_nan_days_are_skipped_and_written_as_null(reformed, catalogue) -> None:
    arr = ramp(0.01, 0.02)
    arr[:, -5:] = np.nan
    [f] = run_projected(reformed, [catalogue["take_rate"]], projection(take_rate=arr))
    assert f.evidence["last_day"] == T - 5
    assert f.series["mean"][-1] is None
    json.dumps(f.to_dict(), allow_nan=False)
    assert not any(isinstance(x, float) and math.isnan(x) for x in f.series["mean"])


def test_a_missing_series_is_not_applicable(reformed, catalogue) -> None:
    [f] = run_projected(reformed, [catalogue["exposure_gini"]], projection())
    assert f.verdict == "not_applicable" and "exposure_gini" in f.reading


def test_a_projection_of_the_wrong_shape_is_refused(reformed, catalogue) -> None:
    p = Projection(set_id="x", revision="r", scenario="t", days=T, replications=R, seed=1,
                   cohorts=COHORTS, series={"take_rate": np.zeros((R, T + 1))})
    with pytest.raises(ValueError, match="expected"):
        run_projected(reformed, [catalogue["take_rate"]], p)


def test_a_real_projection_is_judged_on_the_catalogue_scales(reformed, catalogue) -> None:
    """The simulator's own output, not a synthetic one: every projected criterion gets a
    verdict, and HHI reaches the criterion on its 0-10,000 scale (six sellers a group give an
    exposure HHI well above 1,000, so a 0-1 value read as is would always pass)."""
    from pathlib import Path

    from simulator.run import project

    tiny = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios" / "tiny.yaml"
    p = project(reformed, tiny, days=10, replications=2, seed=3)
    findings = {f.criterion: f for f in run_projected(reformed, list(catalogue), p)}
    assert set(POPULATION_MEASURES) | set(COHORT_MEASURES) <= set(findings)
    hhi = findings["exposure_hhi"]
    assert hhi.verdict != "not_applicable"
    assert 1_000 < hhi.evidence["last"] <= 10_000
    assert hhi.evidence["last"] == pytest.approx(
        float(np.nanmean(p.series["exposure_hhi"][:, -1])) * 10_000)
