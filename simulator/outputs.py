"""What a run leaves behind for people: a JSON summary, the arrays, and charts with bands.

Policy staff read the charts and the summary; analysts reload the arrays. Everything here reads
only the :class:`~simulator.projection.Projection` contract, so any model that fills it gets the
same outputs.

Bands are always *across replications*: for each day (or each summary figure) the 5th and 95th
percentiles of the R replication values, next to their mean. They show how much the projection
depends on chance, not how merchants differ from each other (that is what the cohort percentile
series ``*_pct`` are for).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator import bands
from simulator.projection import (
    COHORT_SERIES,
    PERCENTILE_SERIES,
    POPULATION_SERIES,
    Projection,
)

#: Percentiles across replications given as the band in summaries and charts.
BAND = (5.0, 95.0)
SUMMARY_VERSION = 1


@dataclass(frozen=True)
class SeriesInfo:
    """How a series is named and shown to people."""

    title: str
    unit: str  # "fraction" (shown as %), "yuan", "index" or "count"
    description: str


SERIES_INFO: dict[str, SeriesInfo] = {
    "exposure_gini": SeriesInfo("Exposure Gini", "index",
                                "inequality of impressions (0 equal, 1 one seller has all)"),
    "exposure_hhi": SeriesInfo("Exposure HHI", "index",
                               "Herfindahl index of impression shares (1 = a single seller)"),
    "take_rate": SeriesInfo("Platform take rate", "fraction",
                            "commission, fees and ads paid to the platform over GMV"),
    "refund_burden_ratio": SeriesInfo("Refund burden, all", "fraction",
                                      "refunds borne by merchants over GMV"),
    "fee_burden_ratio": SeriesInfo("Fee burden", "fraction", "commission and fees over GMV"),
    "ad_burden_ratio": SeriesInfo("Ad burden", "fraction", "ad spend over GMV"),
    "below_cost_sales_share": SeriesInfo("Sales below cost", "fraction",
                                         "share of units sold at a price below unit cost"),
    "share_alive": SeriesInfo("Merchants still trading, all", "fraction",
                              "share of the starting merchants still in the market"),
    "gmv": SeriesInfo("GMV", "yuan", "gross merchandise value per day"),
    "median_margin": SeriesInfo("Median margin", "fraction",
                                "median of (price - cost - burdens) / price"),
    "share_alive_by_cohort": SeriesInfo("Merchants still trading", "fraction",
                                        "share of each cohort's starting merchants still trading"),
    "price_mean": SeriesInfo("Mean price", "yuan", "mean listed price of trading merchants"),
    "margin_mean": SeriesInfo("Mean margin", "fraction",
                              "mean of (price - unit cost - per-unit burdens) / price"),
    "quality_mean": SeriesInfo("Mean quality", "index", "mean product quality (1 = as designed)"),
    "refund_burden_ratio_by_cohort": SeriesInfo("Refund burden", "fraction",
                                                "refunds borne by merchants over their GMV"),
    "exposure_per_quality_by_cohort": SeriesInfo(
        "Exposure per unit of quality", "index",
        "impressions share over quality share: above 1 means traffic beyond what quality earns"),
    "appeal_success_by_cohort": SeriesInfo("Appeal success", "fraction",
                                           "share of appeals that succeed"),
    # Series the bundled model adds beyond the contract (simulator.aggregates.EXTRA_SERIES).
    "auto_follow_share": SeriesInfo("Enrolled in auto-follow", "fraction",
                                    "share of trading merchants enrolled in auto-follow"),
    "prompts_per_merchant": SeriesInfo("Follow prompts per merchant", "count",
                                       "auto-follow prompts a day per trading merchant"),
    "forced_follows_per_merchant": SeriesInfo(
        "Forced follows per merchant", "count",
        "prices set by an unanswered prompt's deadline, a day per trading merchant"),
    "below_cost_listing_share": SeriesInfo("Listings below cost", "fraction",
                                           "share of trading merchants priced below unit cost"),
    "quality_mean_population": SeriesInfo("Mean quality, all", "index",
                                          "mean product quality of trading merchants"),
    "price_index": SeriesInfo("Price index", "index",
                              "trading merchants' prices over their starting prices (1 = same)"),
    "price_pct": SeriesInfo("Price percentiles", "yuan", "percentiles of price across merchants"),
    "margin_pct": SeriesInfo("Margin percentiles", "fraction",
                             "percentiles of margin across merchants"),
    "quality_pct": SeriesInfo("Quality percentiles", "index",
                              "percentiles of quality across merchants"),
}

def info(name: str) -> SeriesInfo:
    """The display information of a series; a model's extra series get a plain default."""
    return SERIES_INFO.get(name, SeriesInfo(name.replace("_", " ").capitalize(), "index", name))


# -- numbers -------------------------------------------------------------------------------------
def _finite_or_none(x: float) -> float | None:
    """JSON has no NaN: a figure without meaning (a cohort that has all left) becomes null."""
    x = float(x)
    return x if math.isfinite(x) else None


def band_stats(values: np.ndarray) -> dict[str, float | None]:
    """Mean and 5/95 % band of replication values (NaNs, e.g. empty cohorts, left out)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": None, "p5": None, "p95": None, "n": 0}
    lo, hi = np.percentile(v, BAND)
    return {"mean": _finite_or_none(v.mean()), "p5": _finite_or_none(lo),
            "p95": _finite_or_none(hi), "n": int(v.size)}


def time_average(arr: np.ndarray) -> np.ndarray:
    """Average over days (axis 1), per replication, skipping days without meaning.

    A replication with no meaningful day at all gives NaN (without numpy's warning).
    """
    finite = np.isfinite(arr)
    count = finite.sum(axis=1)
    total = np.where(finite, arr, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def final_values(arr: np.ndarray) -> np.ndarray:
    """The last day's value per replication (axis 1 is days)."""
    return arr[:, -1, ...]


def _per_cohort(arr: np.ndarray, cohorts: Sequence[str]) -> dict[str, Any]:
    return {c: band_stats(arr[:, i]) for i, c in enumerate(cohorts)}


def series_summary(p: Projection, name: str) -> dict[str, Any]:
    """Final and time-averaged value of one series: mean and band across replications."""
    arr = p.series[name]
    si = info(name)
    entry: dict[str, Any] = {"title": si.title, "unit": si.unit, "description": si.description}
    fin, avg = final_values(arr), time_average(arr)
    if arr.ndim == 2:
        entry["final"] = band_stats(fin)
        entry["time_average"] = band_stats(avg)
    elif arr.ndim == 3:
        entry["final"] = _per_cohort(fin, p.cohorts)
        entry["time_average"] = _per_cohort(avg, p.cohorts)
    elif arr.ndim == 4:
        entry["quantiles"] = list(p.quantiles)
        entry["final"] = {c: {f"q{q:g}": band_stats(fin[:, i, j])
                              for j, q in enumerate(p.quantiles)}
                          for i, c in enumerate(p.cohorts)}
        entry["time_average"] = {c: {f"q{q:g}": band_stats(avg[:, i, j])
                                     for j, q in enumerate(p.quantiles)}
                                 for i, c in enumerate(p.cohorts)}
    else:
        raise ValueError(f"series {name!r} has {arr.ndim} dimensions; expected 2 to 4")
    return entry


def summarize(p: Projection) -> dict[str, Any]:
    """The run's summary as plain JSON-ready data."""
    p.check()
    return {
        "summary_version": SUMMARY_VERSION,
        "scenario": p.scenario,
        "set": p.set_id,
        "revision": p.revision,
        "days": p.days,
        "replications": p.replications,
        "seed": p.seed,
        "cohorts": list(p.cohorts),
        "quantiles": list(p.quantiles),
        "band_percentiles": list(BAND),
        "meta": _jsonable(p.meta),
        "series": {name: series_summary(p, name) for name in sorted(p.series)},
        "infinite": infinite_series(p),
    }


def infinite_series(p: Projection) -> list[str]:
    """The series that reached an infinity on some day of some replication: numbers past
    float64's range (a scenario whose costs or spreads are absurdly large, say). The summary
    writes such a value as null, as it writes a NaN (no data: no sales that day), so it says
    which they are."""
    return sorted(name for name, x in p.series.items() if np.isinf(x).any())


def _jsonable(value: Any) -> Any:
    """Make a projection's free-form metadata JSON-safe (numpy scalars, tuples, paths)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return _finite_or_none(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def write_summary(p: Projection, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(summarize(p), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


# -- arrays --------------------------------------------------------------------------------------
_META_KEY = "__projection__"


def write_arrays(p: Projection, path: str | Path) -> Path:
    """Every series as an array in one compressed ``.npz``, with the run's identity alongside.

    The identity is stored as a JSON string (not a pickle), so loading needs no
    ``allow_pickle``.
    """
    path = Path(path)
    header = {"set_id": p.set_id, "revision": p.revision, "scenario": p.scenario,
              "days": p.days, "replications": p.replications, "seed": p.seed,
              "cohorts": list(p.cohorts), "quantiles": list(p.quantiles),
              "meta": _jsonable(p.meta)}
    arrays = {name: np.asarray(a, dtype=np.float64) for name, a in p.series.items()}
    if _META_KEY in arrays:
        raise ValueError(f"a series may not be called {_META_KEY!r}")
    np.savez_compressed(path, **arrays, **{_META_KEY: np.array(json.dumps(header))})
    return path


def load_arrays(path: str | Path) -> Projection:
    """Read back what :func:`write_arrays` wrote."""
    with np.load(Path(path), allow_pickle=False) as data:
        header = json.loads(str(data[_META_KEY]))
        series = {k: data[k] for k in data.files if k != _META_KEY}
    return Projection(
        set_id=header["set_id"], revision=header["revision"], scenario=header["scenario"],
        days=int(header["days"]), replications=int(header["replications"]),
        seed=int(header["seed"]), cohorts=tuple(header["cohorts"]),
        quantiles=tuple(header["quantiles"]), series=series, meta=header.get("meta", {}))


# -- charts --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chart:
    """One figure: a title and the series drawn in it, one panel per series."""

    name: str
    title: str
    series: tuple[str, ...]


CHARTS: tuple[Chart, ...] = (
    Chart("price", "Mean price by cohort", ("price_mean",)),
    Chart("margin", "Mean margin by cohort", ("margin_mean",)),
    Chart("quality", "Mean quality by cohort", ("quality_mean",)),
    Chart("share_alive", "Merchants still trading",
          ("share_alive_by_cohort", "share_alive")),
    Chart("concentration", "Concentration of exposure", ("exposure_gini", "exposure_hhi")),
    Chart("burdens", "Costs borne by merchants, as a share of GMV",
          ("refund_burden_ratio", "fee_burden_ratio", "ad_burden_ratio")),
    Chart("refund_burden_by_cohort", "Refund burden by cohort",
          ("refund_burden_ratio_by_cohort",)),
    Chart("spread", "How merchants differ within each cohort (percentiles across merchants)",
          ("price_pct", "margin_pct", "quality_pct")),
    Chart("auto_follow", "Automatic price following",
          ("auto_follow_share", "below_cost_listing_share")),
    Chart("take_rate", "Platform take rate", ("take_rate",)),
    Chart("below_cost", "Share of sales below unit cost", ("below_cost_sales_share",)),
)

CHART_FORMATS = ("png", "svg")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: runs on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, fmt: str) -> None:
    """Write `fig` to `path` as `fmt`, the same bytes for the same figure: an SVG's metadata
    without the date, and its element ids hashed with a fixed salt (matplotlib salts them at
    random), so a rerun's charts can be compared with a file comparison, not only by eye."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "rulebook-auditor"}):
        fig.savefig(path, format=fmt, dpi=110,
                    metadata={"Date": None} if fmt == "svg" else None)


def _scale(unit: str) -> float:
    return 100.0 if unit in ("fraction", "share") else 1.0


def _axis_label(unit: str) -> str:
    return {"fraction": "%", "share": "%", "yuan": "yuan", "index": "index",
            "count": "count"}.get(unit, unit)


def _band(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per day: mean and 5/95 % band across replications (axis 0), NaN where no replication
    has a value."""
    mean, safe, any_finite = _mean(arr)
    lo, hi = bands.nanpercentile(safe, BAND)
    nan = np.full(mean.shape, np.nan)
    return mean, np.where(any_finite, lo, nan), np.where(any_finite, hi, nan)


def _mean(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per day: the mean across replications (axis 0), NaN where no replication has a
    value; and for `_band`, the values with those days zeroed, and which days have one."""
    any_finite = np.isfinite(arr).any(axis=0)
    safe = np.where(any_finite[None, ...], arr, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days are masked just below
        mean = np.nanmean(safe, axis=0)
    return np.where(any_finite, mean, np.nan), safe, any_finite


def _draw_panel(ax: Any, p: Projection, name: str) -> None:
    arr = p.series[name]
    si = info(name)
    k = _scale(si.unit)
    days = np.arange(1, p.days + 1)
    lines: list[tuple[str, np.ndarray]]
    if arr.ndim == 4:
        _draw_percentiles(ax, p, name)
        return
    if arr.ndim == 2:
        lines = [("all merchants", arr)]
    elif arr.ndim == 3:
        lines = [(c, arr[:, :, i]) for i, c in enumerate(p.cohorts)]
    else:
        raise ValueError(f"cannot chart {name!r} with {arr.ndim} dimensions")
    for label, values in lines:
        mean, lo, hi = _band(values)
        (line,) = ax.plot(days, mean * k, label=label, linewidth=1.6)
        if p.replications > 1:
            ax.fill_between(days, lo * k, hi * k, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title(f"{si.title} ({_axis_label(si.unit)})", fontsize=10)
    ax.set_xlabel("day")
    ax.set_ylabel(_axis_label(si.unit))
    ax.grid(True, alpha=0.3)
    if len(lines) > 1:
        ax.legend(title="cohort", fontsize=8, title_fontsize=8, loc="best")


def _draw_percentiles(ax: Any, p: Projection, name: str) -> None:
    """Spread across merchants: per cohort, the middle percentile as a line and the outer ones
    as a shaded range (each the mean across replications)."""
    arr = p.series[name]
    si = info(name)
    k = _scale(si.unit)
    days = np.arange(1, p.days + 1)
    q = list(p.quantiles)
    mid = min(range(len(q)), key=lambda j: abs(q[j] - 0.5))
    for i, c in enumerate(p.cohorts):
        mean_mid = _mean(arr[:, :, i, mid])[0]
        (line,) = ax.plot(days, mean_mid * k, label=f"{c} (p{q[mid] * 100:g})", linewidth=1.6)
        if len(q) > 1:
            low, high = _mean(arr[:, :, i, 0])[0], _mean(arr[:, :, i, -1])[0]
            ax.fill_between(days, low * k, high * k, color=line.get_color(), alpha=0.15,
                            linewidth=0, label=f"{c} p{q[0] * 100:g}-p{q[-1] * 100:g}")
    ax.set_title(f"{si.title} across merchants ({_axis_label(si.unit)})", fontsize=10)
    ax.set_xlabel("day")
    ax.set_ylabel(_axis_label(si.unit))
    ax.grid(True, alpha=0.3)
    ax.legend(title="cohort", fontsize=7, title_fontsize=8, loc="best")


def write_charts(p: Projection, out_dir: str | Path,
                 formats: Iterable[str] = CHART_FORMATS,
                 charts: Sequence[Chart] = CHARTS) -> list[Path]:
    """Draw each chart whose series the projection has; returns the files written.

    Each line is the mean across replications; the shaded band is the 5-95 % range across
    replications (drawn when there is more than one).
    """
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    formats = tuple(formats)
    written: list[Path] = []
    for chart in charts:
        names = [s for s in chart.series if s in p.series]
        if not names:
            continue
        fig, axes = plt.subplots(1, len(names), figsize=(max(7.5, 5.2 * len(names)), 4.0),
                                 squeeze=False)
        for ax, name in zip(axes[0], names, strict=True):
            _draw_panel(ax, p, name)
        banded = p.replications > 1 and any(p.series[n].ndim < 4 for n in names)
        band = (f"; band: {BAND[0]:g}-{BAND[1]:g} % across {p.replications} replications"
                if banded else "")
        fig.suptitle(f"{chart.title}\n{p.set_id} on {p.scenario}, {p.days} days{band}",
                     fontsize=11)
        fig.tight_layout()
        for fmt in formats:
            path = out / f"{chart.name}.{fmt}"
            save_figure(fig, path, fmt)
            written.append(path)
        plt.close(fig)
    return written


# -- all of it -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WrittenOutputs:
    summary: Path
    arrays: Path
    charts: tuple[Path, ...]


def write_outputs(p: Projection, out_dir: str | Path, *, charts: bool = True) -> WrittenOutputs:
    """Write ``summary.json``, ``series.npz`` and ``charts/*.{png,svg}`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = write_summary(p, out / "summary.json")
    arrays = write_arrays(p, out / "series.npz")
    drawn = write_charts(p, out / "charts") if charts else []
    return WrittenOutputs(summary, arrays, tuple(drawn))


__all__ = [
    "BAND", "CHARTS", "COHORT_SERIES", "PERCENTILE_SERIES", "POPULATION_SERIES", "SERIES_INFO",
    "band_stats", "load_arrays", "summarize", "write_arrays", "write_charts", "write_outputs",
    "write_summary",
]
