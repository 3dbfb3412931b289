"""Fairness and burden aggregates over the engine's state: pure computations, no Prometheus.

`snapshot_from_store` copies what the aggregates need out of a state store into a `SetSnapshot`
(plain data: it does not change when the engine goes on), and the functions below compute from a
snapshot alone:

- each merchant's burden as a share of its GMV, by cohort and category, and its distribution;
- the merchants currently blocked from appealing, by cohort;
- how concentrated listing impressions are within each product group (Gini coefficient and
  Herfindahl-Hirschman index), and the distribution of both over the groups;
- the stream criteria of `rules/criteria/stream.yaml`: one number per criterion and whether it is
  outside the criterion's bounds.

Every result is keyed by bounded labels only (cohort, category, criterion id); merchant, listing
and product-group names never leave this module. Because everything is computed from the store,
the figures are the same after a restart as before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

#: Merchant cohorts: the size tier a merchant registered with, or `unknown`.
COHORTS: tuple[str, ...] = ("small", "medium", "large", "unknown")

#: Burden categories whose share of GMV is reported, and the merchant-borne burden categories
#: (`rules.effects.CATEGORIES`) each one adds up. `below_cost` is left out: it is a price gap per
#: unit, not money paid out of GMV.
RATIO_CATEGORIES: dict[str, tuple[str, ...]] = {
    "refund": ("refund",),
    "commission_fees": ("commission", "fees"),
    "ads": ("ads",),
    "total": ("refund", "commission", "fees", "ads"),
}

#: Upper bounds of the burden-ratio buckets (fractions of GMV). 0.03 and 0.05 are the ends of the
#: 3-5 % yearly profit margin the field research reports.
RATIO_BUCKETS: tuple[float, ...] = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)

#: Upper bounds of the Gini buckets (0 = equal impressions, 1 = one listing takes everything).
GINI_BUCKETS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

#: Upper bounds of the HHI buckets (0-10,000 scale). 1,000 and 1,800 are the "unconcentrated" and
#: "highly concentrated" lines of the US merger guidelines; 2,500 is four equal sellers.
HHI_BUCKETS: tuple[float, ...] = (1000, 1500, 1800, 2500, 5000, 7500, 10000)


def cohort_label(size_tier: Any) -> str:
    """The cohort label for a size tier: one of `COHORTS`, whatever the input."""
    return size_tier if isinstance(size_tier, str) and size_tier in COHORTS else "unknown"


# -- snapshot ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MerchantRow:
    """What the aggregates read of one merchant (its id is deliberately not kept)."""

    cohort: str
    gmv: float
    burden: Mapping[str, float]  # "party.category" -> yuan, e.g. {"merchant.refund": 34.17}
    stats: Mapping[str, float]  # counters of `service.apply.count`
    appeal_blocked_until: float  # epoch seconds; 0 when never blocked


@dataclass(frozen=True)
class SetSnapshot:
    """A rulebook set's state at one watermark, reduced to what the aggregates need."""

    watermark: float
    merchants: tuple[MerchantRow, ...] = ()
    #: Impressions of each listing, by product group. The group names are only used to group.
    exposure: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


class _Store(Protocol):
    def merchants(self) -> Iterable[dict[str, Any]]: ...
    def listings(self) -> Iterable[dict[str, Any]]: ...


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    value = float(value)
    return value if math.isfinite(value) else 0.0


def _merchant_row(m: dict[str, Any]) -> MerchantRow:
    # dict(d) copies a plain dict without running Python code, so no other thread can change it
    # half-way; iterating the live dict could fail with "changed size during iteration".
    burden = dict(m.get("_burden") or {})
    stats = dict(m.get("_stats") or {})
    return MerchantRow(
        cohort=cohort_label(m.get("size_tier")),
        gmv=_number(m.get("gmv")),
        burden={k: _number(v) for k, v in burden.items()},
        stats={k: _number(v) for k, v in stats.items()},
        appeal_blocked_until=_number(m.get("appeal_blocked_until")),
    )


def snapshot_from_store(store: _Store, watermark: float) -> SetSnapshot:
    """Copy the merchant and listing records of `store` into a `SetSnapshot`.

    The snapshot is plain data that no later event changes. For a consistent cut, call it where
    the engine is not writing (its thread, or under its lock). Called from another thread it
    still does not fail on records changing under it (each record's dicts are copied in one step
    before they are read), but it may see one batch half applied.
    """
    merchants = tuple(_merchant_row(m) for m in store.merchants())
    groups: dict[str, list[float]] = {}
    for listing in store.listings():
        group = listing.get("product_group")
        if group is None:
            continue  # impressions served before the listing was described: no group to judge
        groups.setdefault(str(group), []).append(max(0.0, _number(listing.get("impressions"))))
    return SetSnapshot(watermark=float(watermark), merchants=merchants,
                       exposure={g: tuple(v) for g, v in groups.items()})


# -- concentration ----------------------------------------------------------------------------

def _shares_input(values: Iterable[float]) -> list[float]:
    xs = [float(v) for v in values]
    if any(not math.isfinite(x) or x < 0 for x in xs):
        raise ValueError("values must be finite and not negative")
    if not xs or sum(xs) <= 0:
        raise ValueError("concentration is undefined for an empty or all-zero group")
    return xs


def gini(values: Iterable[float]) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, (n-1)/n when one takes all.

    G = sum_i sum_j |x_i - x_j| / (2 n^2 mean), computed on the sorted values as
    G = 2 sum_i i x_(i) / (n sum x) - (n + 1) / n.
    """
    xs = sorted(_shares_input(values))
    n = len(xs)
    total = math.fsum(xs)
    weighted = math.fsum(i * x for i, x in enumerate(xs, start=1))
    return max(0.0, 2.0 * weighted / (n * total) - (n + 1) / n)


def hhi(values: Iterable[float]) -> float:
    """Herfindahl-Hirschman index on the 0-10,000 scale: the sum of squared shares in percent.

    A monopoly is 10,000; n equal sellers give 10,000 / n.
    """
    xs = _shares_input(values)
    total = math.fsum(xs)
    return math.fsum((100.0 * x / total) ** 2 for x in xs)


@dataclass(frozen=True)
class GroupConcentration:
    listings: int
    impressions: float
    gini: float
    hhi: float


#: A product group needs this many listings for its concentration to mean anything: a group of
#: one listing is a "monopoly" (HHI 10,000) with nobody to be unfair to.
MIN_GROUP_LISTINGS = 2


def exposure_concentration(snapshot: SetSnapshot) -> list[GroupConcentration]:
    """Gini and HHI of listing impressions within each product group with at least
    `MIN_GROUP_LISTINGS` listings and some impressions.

    Groups are returned in no particular order and without their names.
    """
    out = []
    for values in snapshot.exposure.values():
        total = math.fsum(values)
        if len(values) < MIN_GROUP_LISTINGS or total <= 0:
            continue
        out.append(GroupConcentration(len(values), total, gini(values), hhi(values)))
    return out


# -- distributions ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Distribution:
    """A cumulative histogram: `buckets` holds (upper bound, values <= bound), ending at +inf."""

    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float


def distribution(values: Iterable[float], bounds: Sequence[float]) -> Distribution:
    edges = sorted(float(b) for b in bounds)
    xs = sorted(float(v) for v in values)
    buckets = []
    i = 0
    for edge in edges:
        while i < len(xs) and xs[i] <= edge:
            i += 1
        buckets.append((edge, i))
    buckets.append((math.inf, len(xs)))
    return Distribution(tuple(buckets), len(xs), math.fsum(xs))


def merchant_counts(snapshot: SetSnapshot) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in snapshot.merchants:
        counts[m.cohort] = counts.get(m.cohort, 0) + 1
    return counts


def _merchant_burden(m: MerchantRow, categories: Iterable[str]) -> float:
    return math.fsum(m.burden.get(f"merchant.{c}", 0.0) for c in categories)


def burden_ratios(snapshot: SetSnapshot) -> dict[tuple[str, str], list[float]]:
    """Each merchant's merchant-borne burden over its GMV, keyed by (cohort, ratio category).

    Every cohort with merchants gets every category, possibly with no values: a merchant with no
    GMV yet has no ratio and is left out.
    """
    out: dict[tuple[str, str], list[float]] = {
        (c, cat): [] for c in merchant_counts(snapshot) for cat in RATIO_CATEGORIES
    }
    for m in snapshot.merchants:
        if m.gmv <= 0:
            continue
        for cat, parts in RATIO_CATEGORIES.items():
            out[(m.cohort, cat)].append(_merchant_burden(m, parts) / m.gmv)
    return out


def ratio_distributions(snapshot: SetSnapshot, bounds: Sequence[float] = RATIO_BUCKETS) \
        -> dict[tuple[str, str], Distribution]:
    return {k: distribution(v, bounds) for k, v in burden_ratios(snapshot).items()}


def is_blocked(m: MerchantRow, watermark: float) -> bool:
    """Blocked from appealing at `watermark`: a block exists and ends after it."""
    return m.appeal_blocked_until > 0 and m.appeal_blocked_until > watermark


def blocked_counts(snapshot: SetSnapshot) -> dict[str, int]:
    """Merchants blocked from appealing at the snapshot's watermark, for every cohort present."""
    out = dict.fromkeys(merchant_counts(snapshot), 0)
    for m in snapshot.merchants:
        if is_blocked(m, snapshot.watermark):
            out[m.cohort] += 1
    return out


# -- stream criteria --------------------------------------------------------------------------

def _refund_burden_over_margin(s: SetSnapshot) -> float | None:
    ratios = [m.burden.get("merchant.refund", 0.0) / m.gmv for m in s.merchants if m.gmv > 0]
    return math.fsum(ratios) / len(ratios) if ratios else None


def _take_rate(s: SetSnapshot) -> float | None:
    gmv = math.fsum(m.gmv for m in s.merchants if m.gmv > 0)
    if gmv <= 0:
        return None
    taken = math.fsum(_merchant_burden(m, RATIO_CATEGORIES["total"]) for m in s.merchants
                      if m.gmv > 0)
    return taken / gmv


def _stat(s: SetSnapshot, key: str) -> float:
    return math.fsum(m.stats.get(key, 0.0) for m in s.merchants)


def _below_cost_share(s: SetSnapshot) -> float | None:
    forced = _stat(s, "forced_price_changes")
    return _stat(s, "below_cost_price_changes") / forced if forced > 0 else None


def _exposure_hhi(s: SetSnapshot) -> float | None:
    groups = exposure_concentration(s)
    return max(g.hhi for g in groups) if groups else None


def _appeal_refusal_share(s: SetSnapshot) -> float | None:
    refused = math.fsum(v for m in s.merchants for k, v in m.stats.items()
                        if k.startswith("appeals_refused_"))
    filed = _stat(s, "appeals_accepted") + refused
    return refused / filed if filed > 0 else None


#: How each stream criterion is measured; `None` when there is nothing to measure yet.
CRITERION_MEASURES: dict[str, Callable[[SetSnapshot], float | None]] = {
    "refund_burden_over_margin": _refund_burden_over_margin,
    "take_rate": _take_rate,
    "below_cost_share": _below_cost_share,
    "exposure_hhi": _exposure_hhi,
    "appeal_refusal_share": _appeal_refusal_share,
}


@dataclass(frozen=True)
class Criterion:
    """A measure held to a threshold: outside its bounds when above (or below) the threshold."""

    id: str
    title: str
    description: str
    measure: str
    unit: Literal["fraction", "index"]
    threshold: float
    direction: Literal["above", "below"]
    threshold_source: str
    standard: str

    def outside(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        return value > self.threshold if self.direction == "above" else value < self.threshold


STREAM_CRITERIA_FILE = "criteria/stream.yaml"
_CRITERION_KEYS = {f for f in Criterion.__dataclass_fields__}


def load_stream_criteria(path: str | Path | None = None) -> tuple[Criterion, ...]:
    """Read the stream criteria table (default: `rules/criteria/stream.yaml`) and check it."""
    if path is None:
        text = resources.files("rules").joinpath(STREAM_CRITERIA_FILE).read_text("utf-8")
        where = f"rules/{STREAM_CRITERIA_FILE}"
    else:
        text = Path(path).read_text("utf-8")
        where = str(path)
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("criteria"), list):
        raise ValueError(f"{where}: expected a mapping with a `criteria` list")
    out: list[Criterion] = []
    for i, item in enumerate(data["criteria"]):
        if not isinstance(item, dict) or set(item) != _CRITERION_KEYS:
            got = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise ValueError(f"{where}: criteria[{i}] must have exactly the keys "
                             f"{sorted(_CRITERION_KEYS)}, got {got}")
        if item["id"] not in CRITERION_MEASURES:
            raise ValueError(f"{where}: criteria[{i}]: no measure for {item['id']!r}; known: "
                             f"{', '.join(CRITERION_MEASURES)}")
        if item["direction"] not in ("above", "below") or item["unit"] not in ("fraction",
                                                                                 "index"):
            raise ValueError(f"{where}: criteria[{i}]: direction must be above/below and unit "
                             "fraction/index")
        if isinstance(item["threshold"], bool) or not isinstance(item["threshold"], int | float):
            raise ValueError(f"{where}: criteria[{i}]: threshold must be a number")
        for key in ("title", "description", "measure", "threshold_source", "standard"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise ValueError(f"{where}: criteria[{i}]: {key} must be non-empty text")
        out.append(Criterion(**{**item, "threshold": float(item["threshold"]),
                                **{k: " ".join(item[k].split()) for k in
                                   ("title", "description", "measure", "threshold_source",
                                    "standard")}}))
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: duplicate criterion ids")
    return tuple(out)


@dataclass(frozen=True)
class CriterionResult:
    criterion: Criterion
    value: float | None

    @property
    def outside(self) -> bool:
        return self.criterion.outside(self.value)


def evaluate_criteria(snapshot: SetSnapshot, criteria: Iterable[Criterion]) \
        -> list[CriterionResult]:
    return [CriterionResult(c, CRITERION_MEASURES[c.id](snapshot)) for c in criteria]
