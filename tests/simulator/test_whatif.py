"""What-if comparisons: paired differences and their confidence bands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from simulator import whatif
from tests.simulator.projection_factory import synthetic_projection


@pytest.mark.parametrize(("p", "df", "want"), [
    (0.975, 1, 12.706204736),
    (0.975, 4, 2.776445105),
    (0.975, 29, 2.045229642),
    (0.95, 10, 1.812461123),
    (0.995, 3, 5.840909309),
    (0.5, 7, 0.0),
])
def test_t_quantile_matches_published_tables(p: float, df: int, want: float) -> None:
    assert whatif.t_quantile(p, df) == pytest.approx(want, abs=1e-6)


def test_t_quantile_is_symmetric_and_tends_to_the_normal() -> None:
    assert whatif.t_quantile(0.025, 5) == pytest.approx(-whatif.t_quantile(0.975, 5))
    assert whatif.t_quantile(0.975, 100_000) == pytest.approx(1.959964, abs=1e-4)


def test_paired_interval_by_hand() -> None:
    d = np.array([1.0, 2.0, 3.0, 4.0])
    mean, low, high, n = whatif.paired_interval(d, 0.95)
    # sd = sqrt(5/3), se = sd / 2, t(0.975, 3) = 3.182446
    half = 3.182446305 * math.sqrt(5.0 / 3.0) / 2.0
    assert (mean, n) == (2.5, 4)
    assert (low, high) == pytest.approx((2.5 - half, 2.5 + half))
    assert math.isnan(whatif.paired_interval(np.array([1.0]))[1])
    assert whatif.paired_interval(np.array([np.nan, np.nan]))[3] == 0


def test_a_known_shift_is_recovered_exactly_with_a_zero_width_band() -> None:
    a = synthetic_projection(replications=5, days=6, level=0.0)
    b = synthetic_projection(replications=5, days=6, level=0.05, set_id="reformed-2025")
    c = whatif.compare(a, b)
    assert c.a["set"] == "lowprice-2024" and c.b["set"] == "reformed-2025"
    for d in c.differences:
        assert d.difference == pytest.approx(0.05), d
        assert d.high - d.low == pytest.approx(0.0, abs=1e-9)
    small = c.get("margin_mean", "small", "time_average")
    assert small.b - small.a == pytest.approx(0.05)
    assert small.significant
    assert c.get("exposure_gini").cohort is None


def test_pairing_removes_shared_noise_but_keeps_real_spread() -> None:
    a = synthetic_projection(replications=6, days=4, noise_seed=1)
    b = synthetic_projection(replications=6, days=4, noise_seed=2, set_id="reformed-2025")
    c = whatif.compare(a, b)
    d = c.get("share_alive")
    diffs = b.series["share_alive"][:, -1] - a.series["share_alive"][:, -1]
    assert d.difference == pytest.approx(diffs.mean())
    assert d.low < d.difference < d.high
    assert d.pairs == 6


def test_a_cohort_gone_in_one_replication_is_left_out_of_the_pairs() -> None:
    a = synthetic_projection(replications=4, days=3)
    b = synthetic_projection(replications=4, days=3, level=0.1)
    b.series["margin_mean"][1, -1, 0] = np.nan
    d = whatif.compare(a, b).get("margin_mean", "small")
    assert d.pairs == 3 and d.difference == pytest.approx(0.1)


def test_runs_that_are_not_paired_are_refused() -> None:
    a = synthetic_projection(replications=3, days=4, seed=1)
    b = synthetic_projection(replications=3, days=4, seed=1)
    b.seed = 2
    with pytest.raises(ValueError, match="seed"):
        whatif.compare(a, b)
    b = synthetic_projection(replications=2, days=4, seed=1)
    with pytest.raises(ValueError, match="replications"):
        whatif.compare(a, b)


@pytest.mark.parametrize("confidence", [0.0, 1.0, -1.0, float("nan"), 0.9999999999999999])
def test_a_confidence_without_an_interval_is_refused(confidence: float) -> None:
    a = synthetic_projection(replications=3, days=4)
    with pytest.raises(ValueError, match="confidence"):
        whatif.compare(a, a, confidence=confidence)
    assert whatif.confidence_problem(confidence) is not None
    assert whatif.confidence_problem(0.999999999) is None


def test_json_and_chart(tmp_path: Path) -> None:
    a = synthetic_projection(replications=3, days=4)
    b = synthetic_projection(replications=3, days=4, noise_seed=8, set_id="reformed-2025")
    path, charts = whatif.write_outputs(whatif.compare(a, b, confidence=0.9), tmp_path)
    data = json.loads(path.read_text())
    assert data["confidence"] == 0.9 and data["replications"] == 3
    row = next(r for r in data["differences"] if r["series"] == "share_alive_by_cohort"
               and r["cohort"] == "large" and r["statistic"] == "final")
    assert set(row) >= {"a", "b", "difference", "low", "high", "significant", "pairs"}
    assert sorted(p.name for p in charts) == ["whatif.png", "whatif.svg"]
    svg = charts[1].read_text()
    for text in ("reformed-2025", "lowprice-2024", "percentage points", "large"):
        assert text in svg
    _, again = whatif.write_outputs(whatif.compare(a, b, confidence=0.9), tmp_path / "again")
    assert [c.read_bytes() for c in charts] == [c.read_bytes() for c in again]


def test_rounding_noise_is_not_a_significant_difference() -> None:
    d = whatif.OutcomeDifference("fee_burden_ratio", None, "final", "fraction", 0.05,
                                 0.05 + 1e-16, 1e-16, 0.9e-16, 1.1e-16, 4)
    assert not d.significant
    d = whatif.OutcomeDifference("fee_burden_ratio", None, "final", "fraction", 0.05, 0.051,
                                 0.001, 0.0009, 0.0011, 4)
    assert d.significant
