"""Summary JSON, arrays and charts of a projection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulator import outputs
from simulator.projection import COHORT_SERIES, POPULATION_SERIES
from tests.simulator.projection_factory import synthetic_projection


def test_summary_gives_final_and_time_averaged_values_with_bands_per_cohort() -> None:
    p = synthetic_projection(replications=5, days=6)
    s = outputs.summarize(p)
    assert (s["set"], s["revision"], s["days"], s["replications"], s["seed"]) == (
        "lowprice-2024", "0123456789abcdef", 6, 5, 7)
    assert s["scenario"] == "synthetic" and s["cohorts"] == ["small", "medium", "large"]
    assert set(s["series"]) == set(p.series)

    margin = s["series"]["margin_mean"]
    final = p.series["margin_mean"][:, -1, 1]
    assert margin["final"]["medium"]["mean"] == pytest.approx(final.mean())
    assert margin["final"]["medium"]["p5"] == pytest.approx(np.percentile(final, 5))
    assert margin["final"]["medium"]["p95"] == pytest.approx(np.percentile(final, 95))
    avg = p.series["margin_mean"][:, :, 2].mean(axis=1)
    assert margin["time_average"]["large"]["mean"] == pytest.approx(avg.mean())
    assert margin["unit"] == "fraction"

    gini = s["series"]["exposure_gini"]
    assert gini["final"]["mean"] == pytest.approx(p.series["exposure_gini"][:, -1].mean())
    assert gini["final"]["p5"] <= gini["final"]["mean"] <= gini["final"]["p95"]

    pct = s["series"]["price_pct"]
    assert pct["quantiles"] == [0.1, 0.5, 0.9]
    assert pct["final"]["small"]["q0.5"]["mean"] == pytest.approx(
        p.series["price_pct"][:, -1, 0, 1].mean())


def test_a_cohort_that_has_all_left_gives_null_not_nan() -> None:
    p = synthetic_projection(replications=3, days=4)
    p.series["margin_mean"][:, 2:, 0] = np.nan  # the small cohort left on day 3
    s = outputs.summarize(p)
    assert s["series"]["margin_mean"]["final"]["small"] == {
        "mean": None, "p5": None, "p95": None, "n": 0}
    # the time average uses the days on which the cohort still traded
    want = p.series["margin_mean"][:, :2, 0].mean(axis=1).mean()
    assert s["series"]["margin_mean"]["time_average"]["small"]["mean"] == pytest.approx(want)
    text = json.dumps(s, allow_nan=False)  # strict JSON: would raise on NaN
    assert "NaN" not in text


def test_the_summary_names_the_series_that_reached_infinity() -> None:
    """Written as null like a NaN (no data), an infinity (an overflow) is named apart."""
    p = synthetic_projection(replications=3, days=4)
    assert outputs.summarize(p)["infinite"] == []
    p.series["gmv"][1, 2] = np.inf
    p.series["price_mean"][0, 3, 1] = -np.inf
    p.series["margin_mean"][:, 0, 0] = np.nan  # (no data: not named)
    assert outputs.summarize(p)["infinite"] == ["gmv", "price_mean"]


def test_summary_refuses_a_projection_with_a_wrong_shape() -> None:
    p = synthetic_projection(replications=2, days=3)
    p.series["share_alive"] = np.zeros((2, 4))
    with pytest.raises(ValueError, match="share_alive"):
        outputs.summarize(p)


def test_arrays_round_trip(tmp_path: Path) -> None:
    p = synthetic_projection(replications=2, days=5)
    path = outputs.write_arrays(p, tmp_path / "series.npz")
    back = outputs.load_arrays(path)
    assert (back.set_id, back.revision, back.days, back.replications, back.seed, back.cohorts) == (
        p.set_id, p.revision, p.days, p.replications, p.seed, p.cohorts)
    assert set(back.series) == set(p.series)
    for name, arr in p.series.items():
        np.testing.assert_array_equal(back.series[name], arr)
    assert back.meta == {"merchants": 300}


def test_write_outputs_draws_every_key_chart_in_png_and_svg(tmp_path: Path) -> None:
    p = synthetic_projection(replications=3, days=8)
    written = outputs.write_outputs(p, tmp_path)
    assert json.loads(written.summary.read_text())["days"] == 8
    names = {path.name for path in written.charts}
    for chart in ("price", "margin", "quality", "share_alive", "concentration", "burdens",
                  "take_rate", "below_cost", "spread"):
        assert f"{chart}.png" in names and f"{chart}.svg" in names
    png = (tmp_path / "charts" / "margin.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    svg = (tmp_path / "charts" / "share_alive.svg").read_text()
    # readable by policy staff: the cohort names, the title and the unit are in the figure
    for text in ("small", "medium", "large", "Merchants still trading", "%", "day"):
        assert text in svg


def test_charts_are_the_same_bytes_when_drawn_again(tmp_path: Path) -> None:
    p = synthetic_projection(replications=3, days=8)
    first = outputs.write_charts(p, tmp_path / "first")
    again = outputs.write_charts(p, tmp_path / "again")
    assert [f.name for f in first] == [f.name for f in again]
    assert any(f.suffix == ".svg" for f in first)
    for a, b in zip(first, again, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_the_band_is_numpys_mean_and_percentiles_across_replications_where_a_day_has_one(
) -> None:
    rng = np.random.default_rng(3)
    arr = rng.random((5, 30))
    arr[:, 20:] = np.nan  # a cohort that has left: no band
    arr[1:3, 10:20] = np.nan  # days on which some replications have no value
    arr[0, 5] = np.inf
    mean, lo, hi = outputs._band(arr)
    with np.errstate(invalid="ignore"):
        want_lo, want_hi = np.nanpercentile(arr[:, :20], outputs.BAND, axis=0)
    np.testing.assert_array_equal(mean[:20], np.nanmean(arr[:, :20], axis=0))
    np.testing.assert_array_equal(lo[:20], want_lo)
    np.testing.assert_array_equal(hi[:20], want_hi)
    assert np.isnan(mean[20:]).all() and np.isnan(lo[20:]).all() and np.isnan(hi[20:]).all()


def test_charts_skip_series_the_model_does_not_provide(tmp_path: Path) -> None:
    p = synthetic_projection(replications=1, days=3)
    keep = {"share_alive", "exposure_gini"}
    p.series = {k: v for k, v in p.series.items() if k in keep}
    written = outputs.write_charts(p, tmp_path, formats=("png",))
    assert sorted(path.name for path in written) == ["concentration.png", "share_alive.png"]


def test_series_info_covers_every_contract_series() -> None:
    for name in (*POPULATION_SERIES, *COHORT_SERIES):
        assert name in outputs.SERIES_INFO, name
