"""What-if: the same population and the same seeds under two rulebook sets, outcome by outcome.

Both sets are projected with the same scenario, days, replications and seed, so replication r of
set A and replication r of set B see the same population and the same random draws wherever the
rules do not make them diverge (common random numbers). The difference of an outcome is therefore
estimated *paired*: d_r = B_r - A_r for each replication, and its confidence band is the Student
t-interval of the mean of the d_r. Pairing removes the population noise the two runs share, so a
rule change shows up with far fewer replications than two independent runs would need.

An outcome is one figure of one series: its value on the last day ("final") or its average over the
run ("time_average"), for the whole population or for one cohort.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator import outputs
from simulator.projection import COHORT_SERIES, POPULATION_SERIES, Projection

STATISTICS = ("final", "time_average")
DEFAULT_CONFIDENCE = 0.95

#: The outcomes the comparison chart shows, in this order (the JSON has every series).
CHART_OUTCOMES = (
    "share_alive_by_cohort", "margin_mean", "price_mean", "quality_mean",
    "refund_burden_ratio_by_cohort", "exposure_gini", "exposure_hhi", "take_rate",
    "below_cost_sales_share", "refund_burden_ratio", "fee_burden_ratio", "ad_burden_ratio",
)


# -- Student's t without scipy -------------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on the CDF; exact to ~1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def paired_interval(diffs: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) \
        -> tuple[float, float, float, int]:
    """Mean of paired differences and its t confidence interval: (mean, low, high, n).

    Replications where either side has no value (NaN, e.g. a cohort gone in one run) are left
    out. With fewer than two pairs there is no interval (low and high are NaN).
    """
    d = np.asarray(diffs, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    n = int(d.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(d.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    se = float(d.std(ddof=1)) / math.sqrt(n)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * se
    return mean, mean - half, mean + half, n


# -- the comparison ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutcomeDifference:
    """B - A for one outcome, with the mean of each side and the paired confidence band."""

    series: str
    cohort: str | None  # None: the whole population
    statistic: str  # "final" or "time_average"
    unit: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    pairs: int

    @property
    def significant(self) -> bool:
        """Whether the band excludes zero (no band, no claim). A difference at the level of
        floating-point rounding is no difference, however narrow its band."""
        noise = 1e-12 * max(1.0, abs(self.a) if math.isfinite(self.a) else 1.0,
                            abs(self.b) if math.isfinite(self.b) else 1.0)
        return (math.isfinite(self.low) and abs(self.difference) > noise
                and (self.low > 0 or self.high < 0))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("a", "b", "difference", "low", "high"):
            d[k] = outputs._finite_or_none(d[k])
        d["significant"] = self.significant
        return d


@dataclass
class Comparison:
    """Set B against set A on one scenario, every outcome's difference with its band."""

    a: dict[str, str]  # set id and revision
    b: dict[str, str]
    scenario: str
    days: int
    replications: int
    seed: int
    cohorts: tuple[str, ...]
    confidence: float
    differences: list[OutcomeDifference] = field(default_factory=list)

    def get(self, series: str, cohort: str | None = None,
            statistic: str = "final") -> OutcomeDifference:
        for d in self.differences:
            if (d.series, d.cohort, d.statistic) == (series, cohort, statistic):
                return d
        raise KeyError((series, cohort, statistic))

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a, "b": self.b, "scenario": self.scenario, "days": self.days,
            "replications": self.replications, "seed": self.seed, "cohorts": list(self.cohorts),
            "confidence": self.confidence,
            "method": "paired differences B - A per replication (same seeds); mean and Student "
                      "t confidence interval",
            "differences": [d.to_dict() for d in self.differences],
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        return path


def _same_run(a: Projection, b: Projection) -> None:
    """Paired differences only mean something if both runs used the same population and seeds."""
    for attr in ("scenario", "days", "replications", "seed", "cohorts"):
        if getattr(a, attr) != getattr(b, attr):
            raise ValueError(f"the two projections differ in {attr}: {getattr(a, attr)!r} vs "
                             f"{getattr(b, attr)!r}; a what-if needs the same scenario, days, "
                             "replications and seed")


def confidence_problem(confidence: float) -> str | None:
    """What is wrong with `confidence` as a what-if's confidence level, None if nothing: it
    lies strictly between 0 and 1, and far enough below 1 that the quantile its interval
    takes, 0.5 + confidence / 2, is below 1 in float64 (for 0.9999999999999999 it is 1: an
    interval without end)."""
    if not 0.0 < confidence < 1.0:  # (NaN too)
        return f"must be between 0 and 1, e.g. 0.95, not {confidence!r}"
    if 0.5 + confidence / 2.0 >= 1.0:
        return f"{confidence!r} is too close to 1: its interval would have no end"
    return None


def compare(a: Projection, b: Projection, *,
            confidence: float = DEFAULT_CONFIDENCE) -> Comparison:
    """The difference B - A of every population and cohort outcome both projections have."""
    problem = confidence_problem(confidence)
    if problem is not None:
        raise ValueError(f"confidence {problem}")
    _same_run(a, b)
    a.check()
    b.check()
    result = Comparison(a={"set": a.set_id, "revision": a.revision},
                        b={"set": b.set_id, "revision": b.revision}, scenario=a.scenario,
                        days=a.days, replications=a.replications, seed=a.seed,
                        cohorts=a.cohorts, confidence=confidence)
    names = [n for n in (*POPULATION_SERIES, *COHORT_SERIES) if n in a.series and n in b.series]
    names += sorted(n for n in a.series.keys() & b.series.keys()
                    if n not in names and a.series[n].ndim in (2, 3))
    for name in names:
        unit = outputs.info(name).unit
        for statistic in STATISTICS:
            reduce: Callable[[np.ndarray], np.ndarray] = (
                outputs.final_values if statistic == "final" else outputs.time_average)
            va, vb = reduce(a.series[name]), reduce(b.series[name])
            columns: Sequence[tuple[str | None, np.ndarray, np.ndarray]]
            if va.ndim == 1:
                columns = [(None, va, vb)]
            else:
                columns = [(c, va[:, i], vb[:, i]) for i, c in enumerate(a.cohorts)]
            for cohort, xa, xb in columns:
                diff, low, high, n = paired_interval(xb - xa, confidence)
                result.differences.append(OutcomeDifference(
                    series=name, cohort=cohort, statistic=statistic, unit=unit,
                    a=_nanmean(xa), b=_nanmean(xb), difference=diff, low=low, high=high,
                    pairs=n))
    return result


def _nanmean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


# -- chart ---------------------------------------------------------------------------------------
def write_chart(c: Comparison, path_stem: str | Path, formats: Sequence[str] = ("png", "svg"),
                statistic: str = "final") -> list[Path]:
    """One small panel per outcome: B - A by cohort (or for everyone) with its confidence band.

    Differences are in the outcome's own unit (percentage points for fractions), so each panel
    has its own scale; a dashed line marks "no change".
    """
    plt = outputs._pyplot()
    names = [n for n in CHART_OUTCOMES if any(d.series == n for d in c.differences)]
    if not names:
        return []
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 2.9 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        ds = [d for d in c.differences if d.series == name and d.statistic == statistic]
        si = outputs.info(name)
        k = outputs._scale(si.unit)
        labels = [d.cohort or "all merchants" for d in ds]
        values = np.array([d.difference for d in ds]) * k
        low = np.array([d.low for d in ds]) * k
        high = np.array([d.high for d in ds]) * k
        err = np.vstack([np.nan_to_num(values - low), np.nan_to_num(high - values)])
        # Colour says whether the band excludes zero, not whether the change is good: more of
        # some outcomes (merchants trading) is better, more of others (burdens) is worse.
        colours = ["tab:blue" if d.significant else "tab:gray" for d in ds]
        y = np.arange(len(ds))
        ax.barh(y, np.nan_to_num(values), xerr=err, color=colours, alpha=0.75, capsize=3)
        ax.set_yticks(y, labels, fontsize=8)
        ax.axvline(0.0, color="black", linestyle="--", linewidth=0.8)
        ax.set_xlim(*_span(np.concatenate([values, low, high])))
        unit = "percentage points" if si.unit in ("fraction", "share") else si.unit
        ax.set_title(si.title, fontsize=10)
        ax.set_xlabel(f"B - A ({unit})", fontsize=8)
        ax.grid(True, axis="x", alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    when = "on the last day" if statistic == "final" else "averaged over the run"
    fig.suptitle(
        f"What-if: {c.b['set']} (B) minus {c.a['set']} (A), {when}\n"
        f"{c.scenario}, {c.days} days, {c.replications} paired replications; "
        f"whiskers: {c.confidence:.0%} confidence interval; blue: the interval excludes zero",
        fontsize=11)
    fig.tight_layout()
    written = []
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        outputs.save_figure(fig, path, fmt)
        written.append(path)
    plt.close(fig)
    return written


def _span(xs: np.ndarray) -> tuple[float, float]:
    """An x range that shows zero and every bar and whisker with some room; differences that
    are rounding noise (1e-15) get a plain ±1 range instead of an axis in units of 1e-15."""
    xs = xs[np.isfinite(xs)]
    lo = min(0.0, float(xs.min())) if xs.size else 0.0
    hi = max(0.0, float(xs.max())) if xs.size else 0.0
    if hi - lo < 1e-9:
        return -1.0, 1.0
    pad = 0.08 * (hi - lo)
    return lo - pad, hi + pad


def write_outputs(c: Comparison, out_dir: str | Path) -> tuple[Path, list[Path]]:
    """``whatif.json`` and ``charts/whatif.{png,svg}`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return c.write_json(out / "whatif.json"), write_chart(c, out / "charts" / "whatif")
