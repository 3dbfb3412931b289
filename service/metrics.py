"""Prometheus metrics of the service: fairness, burden and service health.

`ServiceMetrics` owns every metric, in its own registry. Names start with `rulebook_`, amounts are
in base units (seconds; yuan is the currency unit), counters end in `_total`, and every label
comes from a bounded set: rulebook set id (`set`), `role` (`primary`/`shadow`), rule `family`,
`trigger`, `outcome`, `event_type`, `criterion`, merchant `cohort` (`small`/`medium`/`large`/
`unknown`) and the closed vocabularies of the effects (`category`, `decided_by`, `reason`,
`scope`, `source`). Merchant, order, listing, event and product-group ids are never labels.

Two kinds of figures:

- counters and histograms the server feeds as it works (`observe_rpc`, `count_events`,
  `observe_decisions`, ...): rates of decisions and burdens since the process started;
- gauges computed at scrape time from the engine's state (`register_state_source`): burden shares
  of GMV, appeal blocks, exposure concentration and the stream criteria of
  `rules/criteria/stream.yaml`. These come from the state store, so they are right after a restart.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import operator
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rules.effects import CATEGORIES, EFFECTS
from rules.model import FAMILIES
from service.aggregates import (
    COHORTS,
    GINI_BUCKETS,
    HHI_BUCKETS,
    RATIO_BUCKETS,
    RATIO_CATEGORIES,
    Criterion,
    Distribution,
    SetSnapshot,
    blocked_counts,
    cohort_label,
    distribution,
    evaluate_criteria,
    exposure_concentration,
    load_stream_criteria,
    merchant_counts,
    ratio_distributions,
)
from service.decision import Decision
from service.events import EVENT_TYPES

log = logging.getLogger(__name__)

#: The port the service exposes `/metrics` on unless configured otherwise.
DEFAULT_PORT = 9464

ROLES = ("primary", "shadow")
EVENT_OUTCOMES = ("evaluated", "invalid", "duplicate")
TRIGGERS = ("event", "deadline")
DECISION_OUTCOMES = ("applied", "no_rule_applied", "engine_error")
DECIDERS = EFFECTS["grant_refund"].args["decided_by"].choices
REFUSAL_REASONS = EFFECTS["refuse_appeal"].args["reason"].choices
BLOCK_SCOPES = EFFECTS["block_appeals"].args["scope"].choices
BELOW_COST_SOURCES = ("auto_follow", "merchant_follow")

RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
               10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                 0.5, 1.0)


def _one_of(value: str | None, allowed: Sequence[str], fallback: str) -> str:
    return value if value in allowed else fallback


#: What decisions are counted by first: rulebook, trigger and outcome.
_RAW_KEY = operator.attrgetter("rulebook", "trigger", "outcome")


def _family_of(rulebook: str | None) -> str:
    if rulebook is None:
        return "none"
    return _one_of(rulebook.rsplit("/", 1)[-1], FAMILIES, "other")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


class ServiceMetrics:
    """Every metric of the service, registered in `registry` (a new one when None).

    With `process=True` (the default) the process's CPU, memory and file-descriptor figures are
    exported too, as `rulebook_process_*`.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True,
                 criteria: Sequence[Criterion] | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process:
            ProcessCollector(namespace="rulebook", registry=r)

        # -- service ------------------------------------------------------------------------
        self.rpc_duration = Histogram(
            "rulebook_rpc_duration_seconds",
            "Time to handle a gRPC call, in seconds, by method and gRPC status code.",
            ["method", "code"], buckets=RPC_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "rulebook_batch_size_events",
            "Events per batch evaluated by the engine (one state flush per batch).",
            buckets=BATCH_BUCKETS, registry=r)
        self.fsync_duration = Histogram(
            "rulebook_journal_fsync_duration_seconds",
            "Time to make a batch durable (journal fsync), in seconds.",
            buckets=FSYNC_BUCKETS, registry=r)
        self.events = Counter(
            "rulebook_events",
            "Events received, by event type and outcome: evaluated, invalid (refused by "
            "validation) or duplicate (an event id already seen). Unknown types count as "
            "event_type=\"unknown\".",
            ["event_type", "outcome"], registry=r)
        self.engine_errors = Counter(
            "rulebook_engine_errors",
            "Messages the rule engine (durable_rules) refused, by rulebook set; each one is an "
            "event some rules did not evaluate.",
            ["set"], registry=r)
        self.rulebook_info = Gauge(
            "rulebook_rulebook_info",
            "The rulebooks loaded, always 1: rulebook set, role (primary or shadow), rule family "
            "and the content revision of the family's rulebook (family=\"set\": of the whole set).",
            ["set", "role", "family", "revision"], registry=r)
        self._info_series: dict[str, list[tuple[str, str, str, str]]] = {}
        self._info_lock = threading.Lock()

        # -- decisions ----------------------------------------------------------------------
        who = ["set", "role", "cohort"]
        self.decisions = Counter(
            "rulebook_decisions",
            "Decisions made, by rulebook set, role, rule family (none: no rule applied), "
            "trigger (event or deadline) and outcome (applied, no_rule_applied, engine_error).",
            ["set", "role", "family", "trigger", "outcome"], registry=r)
        self.merchant_burden = Counter(
            "rulebook_merchant_burden_yuan",
            "Costs the rules put on merchants, in yuan (the currency unit), by merchant cohort "
            "and category: refund (goods not returned, shipping, recall fees), commission, ads, "
            "fees, below_cost (unit cost minus a price set below it, per unit).",
            [*who, "category"], registry=r)
        self.platform_burden = Counter(
            "rulebook_platform_burden_yuan",
            "Costs the rules put on the platform, in yuan (the currency unit), by merchant cohort "
            "of the merchant concerned and category (e.g. refunds the platform pays for).",
            [*who, "category"], registry=r)
        self.forced_price_changes = Counter(
            "rulebook_forced_price_changes",
            "Prices the platform set for a merchant's listing (set_price, e.g. automatic price "
            "following), by merchant cohort.",
            who, registry=r)
        self.below_cost_changes = Counter(
            "rulebook_below_cost_price_changes",
            "Price changes to below the listing's unit cost, by merchant cohort and source: "
            "auto_follow (a price the platform set) or merchant_follow (the merchant cut its "
            "price while a follow prompt was open, flagged below_cost_follow).",
            [*who, "source"], registry=r)
        self.below_cost_yuan = Counter(
            "rulebook_below_cost_yuan",
            "How far below unit cost those prices were, in yuan (the currency unit) per unit "
            "sold, summed over the price changes, by merchant cohort and source.",
            [*who, "source"], registry=r)
        self.refunds_granted = Counter(
            "rulebook_refunds_granted",
            "Refund claims granted, by merchant cohort and who or what decided: timeout (no "
            "answer in the window), merchant, platform (intervention) or rule (at once).",
            [*who, "decided_by"], registry=r)
        self.appeals_refused = Counter(
            "rulebook_appeals_refused",
            "Merchant appeals refused without a hearing, by merchant cohort and reason: quota, "
            "blocked, out_of_window, other.",
            [*who, "reason"], registry=r)
        self.appeal_blocks = Counter(
            "rulebook_appeal_blocks",
            "Decisions blocking a merchant from appealing, by merchant cohort and scope: month "
            "or year (a block repeated while one is running counts again).",
            [*who, "scope"], registry=r)

        self.state = StateCollector(criteria if criteria is not None
                                    else load_stream_criteria())
        r.register(self.state)

    # -- service ----------------------------------------------------------------------------
    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        """One gRPC call: `method` is the bare method name, `code` the status name (`OK`)."""
        self.rpc_duration.labels(method, code).observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def observe_fsync(self, seconds: float) -> None:
        self.fsync_duration.observe(seconds)

    def count_events(self, event_type: str, outcome: str, n: int = 1) -> None:
        if outcome not in EVENT_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(EVENT_OUTCOMES)}")
        self.events.labels(_one_of(event_type, EVENT_TYPES, "unknown"), outcome).inc(n)

    def count_engine_error(self, set_id: str) -> None:
        self.engine_errors.labels(set_id).inc()

    def set_rulebook_info(self, set_id: str, role: str, revision: str,
                          rulebooks: Mapping[str, str]) -> None:
        """Record the rulebooks `role` now runs; the series of what it ran before go away."""
        _check_role(role)
        series = [(set_id, role, "set", revision)]
        series += [(set_id, role, fam, rev) for fam, rev in sorted(rulebooks.items())]
        with self._info_lock:
            self._drop_info(role)
            for labels in series:
                self.rulebook_info.labels(*labels).set(1)
            self._info_series[role] = series

    def clear_rulebook_info(self, role: str) -> None:
        """The role runs nothing any more (e.g. the shadow set was stopped)."""
        with self._info_lock:
            self._drop_info(role)

    def _drop_info(self, role: str) -> None:
        for old in self._info_series.pop(role, []):
            with contextlib.suppress(KeyError):
                self.rulebook_info.remove(*old)

    # -- decisions --------------------------------------------------------------------------
    def observe_decisions(self, set_id: str, role: str, decisions: Iterable[Decision],
                          cohort_of: Callable[[str], str]) -> int:
        """Count decisions and the burdens, price changes, refunds and appeals they carry.

        `cohort_of(merchant_id)` gives the merchant's size tier; anything outside `COHORTS`
        counts as `unknown`, so a merchant id can never become a label value. Returns how many
        of the decisions are engine errors (counted here by outcome; `count_engine_error` is
        the caller's, by set).
        """
        _check_role(role)
        cohorts: dict[str, str] = {}
        # A batch names few label sets many times: count decisions per label set and look each
        # child series up once, instead of a `labels()` lookup (and a lock) per decision. Amounts
        # are still added one by one, in order, so the float totals are the same.
        counts: dict[tuple[str, str, str], int] = {}
        children: dict[tuple[Any, ...], Any] = {}

        def child(metric: Any, *labels: str) -> Any:
            key = (id(metric), *labels)
            found = children.get(key)
            if found is None:
                found = children[key] = metric.labels(*labels)
            return found

        burden_series: dict[tuple[str, str, str], Any] = {}
        # Counted by rulebook, trigger and outcome; the family label is read once per key.
        decisions = decisions if isinstance(decisions, list) else list(decisions)
        raw_counts = collections.Counter(map(_RAW_KEY, decisions))  # counted in C
        for d in decisions:
            if not d.effects:
                continue
            cohort = cohorts.get(d.merchant_id)
            if cohort is None:
                cohort = cohorts[d.merchant_id] = cohort_label(cohort_of(d.merchant_id))
            who = (set_id, role, cohort)
            for eff in d.effects:
                if eff.skipped:
                    continue
                for b in eff.burden:
                    party = b["party"]
                    if party != "merchant" and party != "platform":
                        continue
                    amount = b["amount"]
                    if amount > 0:
                        # The child series by party, cohort and category, looked up once.
                        key = (party, cohort, b["category"])
                        series = burden_series.get(key)
                        if series is None:
                            counter = (self.merchant_burden if party == "merchant"
                                       else self.platform_burden)
                            series = burden_series[key] = child(
                                counter, *who, _one_of(b["category"], CATEGORIES, "other"))
                        series.inc(amount)
                name = eff.effect
                if name == "set_price":
                    child(self.forced_price_changes, *who).inc()
                    below = eff.amounts.get("below_cost_by") or 0
                    if below > 0:
                        child(self.below_cost_changes, *who, "auto_follow").inc()
                        child(self.below_cost_yuan, *who, "auto_follow").inc(below)
                elif name == "flag" and eff.amounts.get("finding") == "below_cost_follow":
                    child(self.below_cost_changes, *who, "merchant_follow").inc()
                    amount = eff.amounts.get("amount") or 0
                    if amount > 0:
                        child(self.below_cost_yuan, *who, "merchant_follow").inc(amount)
                elif name == "grant_refund":
                    child(self.refunds_granted, *who,
                          _one_of(eff.args.get("decided_by"), DECIDERS, "other")).inc()
                elif name == "refuse_appeal":
                    child(self.appeals_refused, *who,
                          _one_of(eff.args.get("reason"), REFUSAL_REASONS, "other")).inc()
                elif name == "block_appeals":
                    child(self.appeal_blocks, *who,
                          _one_of(eff.args.get("scope"), BLOCK_SCOPES, "other")).inc()
        errors = 0
        for (rulebook, trigger, outcome), n in raw_counts.items():
            key = (_family_of(rulebook), trigger, outcome)
            counts[key] = counts.get(key, 0) + n
            if outcome == "engine_error":
                errors += n
        for (family, trigger, outcome), n in counts.items():
            self.decisions.labels(set_id, role, family, _one_of(trigger, TRIGGERS, "other"),
                                  _one_of(outcome, DECISION_OUTCOMES, "other")).inc(n)
        return errors

    # -- state ------------------------------------------------------------------------------
    def register_state_source(self, set_id: str, role: str,
                              snapshot: Callable[[], SetSnapshot]) -> None:
        """Compute the state gauges of `role` from `snapshot()` at every scrape.

        A role has one source: registering again replaces the previous one (its series go).
        `snapshot` runs on the scrape thread; see `service.aggregates.snapshot_from_store`.
        """
        self.state.register(set_id, _check_role(role), snapshot)

    def unregister_state_source(self, role: str) -> None:
        self.state.unregister(role)

    # -- exposition -------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The text exposition of every metric, as a scrape would get it."""
        return generate_latest(self.registry)

    def serve(self, port: int = DEFAULT_PORT, addr: str = "0.0.0.0"):
        """Serve `/metrics` over HTTP from a background thread; returns (server, thread)."""
        return start_http_server(port, addr=addr, registry=self.registry)


# -- scrape-time collector ------------------------------------------------------------------

@dataclass(frozen=True)
class _Source:
    set_id: str
    role: str
    snapshot: Callable[[], SetSnapshot]


def _buckets(dist: Distribution) -> list[tuple[str, float]]:
    return [("+Inf" if math.isinf(le) else repr(float(le)), float(n)) for le, n in dist.buckets]


def _percent(x: float) -> str:
    return f"{x * 100:g} %"


def _criteria_help(criteria: Sequence[Criterion]) -> str:
    parts = []
    for c in criteria:
        bound = _percent(c.threshold) if c.unit == "fraction" else f"{c.threshold:g}"
        parts.append(f"{c.id}: {c.description} Measure: {c.measure} Outside bounds {c.direction} "
                     f"{bound}. Standard: {c.standard}.")
    return " ".join(parts)


class StateCollector(Collector):
    """Gauges computed at scrape time from each registered role's state snapshot."""

    def __init__(self, criteria: Sequence[Criterion]):
        self.criteria = tuple(criteria)
        self._sources: dict[str, _Source] = {}
        self._lock = threading.Lock()
        self._criteria_help = _criteria_help(self.criteria)

    def register(self, set_id: str, role: str, snapshot: Callable[[], SetSnapshot]) -> None:
        with self._lock:
            self._sources[role] = _Source(set_id, role, snapshot)

    def unregister(self, role: str) -> None:
        with self._lock:
            self._sources.pop(role, None)

    def _families(self) -> dict[str, Metric]:
        sr = ["set", "role"]
        return {
            "merchants": GaugeMetricFamily(
                "rulebook_merchants",
                "Merchants in the engine's state, by merchant cohort (size tier).",
                labels=[*sr, "cohort"]),
            "ratio": GaugeHistogramMetricFamily(
                "rulebook_merchant_burden_ratio",
                "Distribution over merchants of what the rules cost each merchant as a share of "
                "its GMV (0.03 is 3 %), by merchant cohort and category: refund, "
                "commission_fees (commission and other fees), ads, total (all four). Merchants "
                "without GMV yet are left out.",
                labels=[*sr, "cohort", "category"]),
            "blocked": GaugeMetricFamily(
                "rulebook_merchants_blocked_from_appealing",
                "Merchants blocked from appealing at the engine's current event time, by "
                "merchant cohort.",
                labels=[*sr, "cohort"]),
            "gini": GaugeHistogramMetricFamily(
                "rulebook_exposure_gini",
                "Distribution over product groups (with two listings or more) of the Gini "
                "coefficient of listing impressions within the group (0: equal exposure; "
                "(n-1)/n: one listing of n gets all).",
                labels=sr),
            "hhi": GaugeHistogramMetricFamily(
                "rulebook_exposure_hhi",
                "Distribution over product groups (with two listings or more) of the "
                "Herfindahl-Hirschman index of listing impressions within the group, on the "
                "0-10,000 scale (shares in percent; above 1,800 is highly concentrated).",
                labels=sr),
            "gini_max": GaugeMetricFamily(
                "rulebook_exposure_gini_max",
                "Largest Gini coefficient of listing impressions over product groups with two "
                "listings or more.",
                labels=sr),
            "hhi_max": GaugeMetricFamily(
                "rulebook_exposure_hhi_max",
                "Largest Herfindahl-Hirschman index (0-10,000) of listing impressions over "
                "product groups with two listings or more.",
                labels=sr),
            "value": GaugeMetricFamily(
                "rulebook_criterion_value",
                "Current value of each stream criterion (fractions: 0.03 is 3 %; absent while "
                "there is nothing to measure). " + self._criteria_help,
                labels=[*sr, "criterion"]),
            "outside": GaugeMetricFamily(
                "rulebook_criterion_outside_bounds",
                "1 when the stream criterion's value is outside its bounds, else 0. "
                + self._criteria_help,
                labels=[*sr, "criterion"]),
            "threshold": GaugeMetricFamily(
                "rulebook_criterion_threshold",
                "The bound each stream criterion is held to (fractions: 0.03 is 3 %).",
                labels=["criterion"]),
            "watermark": GaugeMetricFamily(
                "rulebook_state_watermark_timestamp_seconds",
                "Event time the state gauges were computed at (the latest event time seen), in "
                "seconds since the Unix epoch.",
                labels=sr),
            "success": GaugeMetricFamily(
                "rulebook_state_snapshot_success",
                "1 when the state gauges of the role could be computed at this scrape, else 0.",
                labels=sr),
            "seconds": GaugeMetricFamily(
                "rulebook_state_snapshot_duration_seconds",
                "Time taken at this scrape to take the state snapshot and compute the gauges, "
                "in seconds.",
                labels=sr),
        }

    def describe(self) -> Iterator[Metric]:
        yield from self._families().values()

    def collect(self) -> Iterator[Metric]:
        f = self._families()
        for c in self.criteria:
            f["threshold"].add_metric([c.id], c.threshold)
        with self._lock:
            sources = sorted(self._sources.values(), key=lambda s: s.role)
        for src in sources:
            sr = [src.set_id, src.role]
            started = time.perf_counter()
            try:
                snap = src.snapshot()
                self._add(f, sr, snap)
            except Exception:
                log.exception("state metrics for %s (%s) could not be computed", src.set_id,
                              src.role)
                f["success"].add_metric(sr, 0)
            else:
                f["success"].add_metric(sr, 1)
            f["seconds"].add_metric(sr, time.perf_counter() - started)
        yield from f.values()

    def _add(self, f: dict[str, Metric], sr: list[str], snap: SetSnapshot) -> None:
        # Compute everything first, so a failure adds no partial series.
        counts = merchant_counts(snap)
        ratios = ratio_distributions(snap, RATIO_BUCKETS)
        blocked = blocked_counts(snap)
        groups = exposure_concentration(snap)
        results = evaluate_criteria(snap, self.criteria)
        gini_dist = distribution((g.gini for g in groups), GINI_BUCKETS)
        hhi_dist = distribution((g.hhi for g in groups), HHI_BUCKETS)

        for cohort in COHORTS:
            if cohort not in counts:
                continue
            f["merchants"].add_metric([*sr, cohort], counts[cohort])
            f["blocked"].add_metric([*sr, cohort], blocked[cohort])
            for category in RATIO_CATEGORIES:
                dist = ratios[(cohort, category)]
                f["ratio"].add_metric([*sr, cohort, category], _buckets(dist), dist.sum)
        f["gini"].add_metric(sr, _buckets(gini_dist), gini_dist.sum)
        f["hhi"].add_metric(sr, _buckets(hhi_dist), hhi_dist.sum)
        if groups:
            f["gini_max"].add_metric(sr, max(g.gini for g in groups))
            f["hhi_max"].add_metric(sr, max(g.hhi for g in groups))
        for res in results:
            if res.value is not None:
                f["value"].add_metric([*sr, res.criterion.id], res.value)
            f["outside"].add_metric([*sr, res.criterion.id], 1 if res.outside else 0)
        if math.isfinite(snap.watermark):
            f["watermark"].add_metric(sr, snap.watermark)
