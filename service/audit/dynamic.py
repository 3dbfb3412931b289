"""Dynamic checks: fairness criteria measured on what the rules did to a stream of events.

Two sources: a JSON Lines events file replayed through the engine (`replay_events`, the same
path as `rulebook replay`), or the live service's state (`facts_from_snapshot` over a
`service.aggregates.SetSnapshot`). Both reduce to `StreamFacts`: counters, burdens by cohort,
exposure by listing. A replay sees every decision, so it can tell which refund was granted on a
claim without evidence or which prompt came back after a dismissal; a snapshot only has the
counters the state keeps, and criteria that need more say so (not_applicable, with the reason).

Cohort criteria follow the Aequitas bias audit: a cohort's figure divided by the reference
cohort's is a disparity, fair when tau <= disparity <= 1/tau (tau = 0.8 by default).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.rulebook import RulebookSet
from service import aggregates as agg
from service.audit.criteria import Criterion
from service.audit.finding import Finding
from service.audit.static import make_finding
from service.decision import Decision
from service.engine import Engine
from service.events import Event, EventError, FirstOccurrences, read_jsonl
from service.state import SQLiteStateStore


@dataclass
class StreamFacts:
    """What the dynamic checks read; None where the source cannot tell."""

    source: str
    snapshot: agg.SetSnapshot
    events: int = 0
    invalid_events: int = 0
    #: Events skipped for repeating an event_id seen earlier in the source (counted once).
    duplicate_events: int = 0
    enrolled_without_request: int | None = None
    unenrol_requests: int | None = None
    reprompts: int | None = None
    dismissals: int | None = None
    refunds_by_decider: dict[str, float] = field(default_factory=dict)
    #: Refund-only claims without valid evidence that the merchant did not accept: loss by payer.
    unevidenced_loss: dict[str, float] | None = None
    #: Per cohort: (sum of impressions, sum of listing quality) of listings with a quality.
    exposure_quality: dict[str, tuple[float, float]] | None = None
    #: Per cohort: (appeals decided, appeals upheld).
    appeal_outcomes: dict[str, tuple[int, int]] | None = None


def _stat(s: agg.SetSnapshot, key: str) -> float:
    return math.fsum(m.stats.get(key, 0.0) for m in s.merchants)


def facts_from_snapshot(snapshot: agg.SetSnapshot, source: str = "live state") -> StreamFacts:
    """The facts the state keeps: counters and burdens, but not which claim had evidence."""
    refunds = {k.removeprefix("refunds_granted_by_"): _stat(snapshot, k)
               for k in {k for m in snapshot.merchants for k in m.stats
                         if k.startswith("refunds_granted_by_")}}
    return StreamFacts(source=source, snapshot=snapshot, refunds_by_decider=refunds)


class _Tracker:
    """Follows decisions during a replay for the facts the counters do not keep."""

    def __init__(self) -> None:
        self.enrolled_without_request = 0
        self.unenrol_requests = 0
        self.reprompts = 0
        self.dismissals = 0
        self.last_target: dict[tuple[str, str], float] = {}
        self.declined: dict[tuple[str, str], float] = {}  # listing -> target it declined
        self.origin: dict[str, tuple[str, str]] = {}     # event id -> (merchant, listing/order)
        self.claims: dict[tuple[str, str], tuple[str, bool]] = {}  # order -> (kind, evidence)
        self.accepted: set[tuple[str, str]] = set()
        self.unevidenced: dict[str, float] = {"merchant": 0.0, "platform": 0.0}
        self.appeals: dict[str, list[int]] = {}           # merchant -> [decided, upheld]

    def see(self, ev: Event) -> None:
        p = ev.payload
        m = ev.merchant_id
        if ev.type == "auto_follow_toggled" and not p.enrolled:
            self.unenrol_requests += 1
        elif ev.type == "prompt_dismissed":
            self.dismissals += 1
            key = (m, p.listing_id)
            if key in self.last_target:
                self.declined[key] = self.last_target[key]
            self.origin[ev.event_id] = key
        elif ev.type == "competitor_price_observed":
            self.origin[ev.event_id] = (m, p.listing_id)
        elif ev.type == "refund_requested":
            self.claims[(m, p.order_id)] = (p.kind, p.evidence_valid)
            self.accepted.discard((m, p.order_id))
            self.origin[ev.event_id] = (m, p.order_id)
        elif ev.type in ("platform_intervened", "merchant_responded"):
            self.origin[ev.event_id] = (m, p.order_id)
            if ev.type == "merchant_responded" and p.decision == "accept":
                self.accepted.add((m, p.order_id))
        elif ev.type == "appeal_decided":
            row = self.appeals.setdefault(m, [0, 0])
            row[0] += 1
            row[1] += p.outcome == "upheld"

    def decide(self, d: Decision, enrolled_request: bool) -> None:
        for e in d.effects:
            if e.skipped:
                continue
            if e.effect == "enrol_auto_follow" and not enrolled_request:
                self.enrolled_without_request += 1
            elif e.effect == "prompt_price_change":
                # A re-prompt asks again for what was declined (or more): the same offer the
                # merchant dismissed, brought back by a timer or by the next observation of an
                # unchanged competitor price. A prompt to follow a new, lower price is not one.
                key = self.origin.get(d.event_id)
                target = e.args.get("target")
                if key is None or not isinstance(target, int | float):
                    continue
                declined = self.declined.get(key)
                if declined is not None and target >= declined - 1e-9:
                    self.reprompts += 1
                self.last_target[key] = float(target)
            elif e.effect == "grant_refund":
                key = self.origin.get(d.event_id)
                claim = self.claims.get(key) if key else None
                if claim and claim[0] == "refund_only" and not claim[1] \
                        and key not in self.accepted:
                    for b in e.burden:
                        if b["party"] in self.unevidenced:
                            self.unevidenced[b["party"]] += b["amount"]


def replay_events(rs: RulebookSet, source: str | os.PathLike[str] | Iterable[Event],
                  batch_size: int = 1000) -> StreamFacts:
    """Replay events through a fresh engine (in-memory state) and gather the facts.

    `source` is a JSON Lines file (invalid lines are counted and skipped, as `rulebook replay`
    does) or validated events in time order.
    """
    store = SQLiteStateStore(":memory:")
    engine = Engine(rs, store)
    tracker = _Tracker()
    invalid = 0
    repeated = 0
    seen = FirstOccurrences()
    count = 0
    items: Iterable[tuple[int, Any]]
    if isinstance(source, str | os.PathLike):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{os.fspath(source)}: no such events file")
        items = read_jsonl(source)
        name = os.fspath(source)
    else:
        items = enumerate(source, 1)
        name = "events"
    try:
        # Event by event, so the tracker sees each decision before the next event (a dismissal
        # must know the prompt it declines); state is written once per batch, as in a replay.
        for line, item in items:
            if isinstance(item, EventError):
                invalid += 1
                continue
            if seen.earlier(item, line) is not None:
                repeated += 1
                continue
            tracker.see(item)
            request = item.type == "auto_follow_toggled" and item.payload.enrolled
            for d in engine.process_one(item):
                tracker.decide(d, request and d.event_id == item.event_id)
            count += 1
            if count % batch_size == 0:
                store.flush()
        store.flush()
        if count == 0 and invalid:
            # Judging rules on no events would read as "nothing happened"; it is a wrong file.
            raise ValueError(f"{name}: none of its {invalid} lines is a valid event "
                             "(rulebook replay lists what is wrong with each)")
        snapshot = agg.snapshot_from_store(store, engine.watermark)
        cohorts = {m["merchant_id"]: agg.cohort_label(m.get("size_tier"))
                   for m in store.merchants()}
        exposure: dict[str, list[float]] = {}
        for listing in store.listings():
            quality = listing.get("quality")
            if not isinstance(quality, int | float) or quality <= 0:
                continue
            row = exposure.setdefault(cohorts.get(listing["merchant_id"], "unknown"), [0.0, 0.0])
            row[0] += float(listing.get("impressions") or 0)
            row[1] += float(quality)
    finally:
        engine.close()
        store.close()
    appeals: dict[str, list[int]] = {}
    for merchant, (decided, upheld) in tracker.appeals.items():
        row = appeals.setdefault(cohorts.get(merchant, "unknown"), [0, 0])
        row[0] += decided
        row[1] += upheld
    facts = facts_from_snapshot(snapshot, source=name)
    facts.events, facts.invalid_events, facts.duplicate_events = count, invalid, repeated
    facts.enrolled_without_request = tracker.enrolled_without_request
    facts.unenrol_requests = tracker.unenrol_requests
    facts.reprompts, facts.dismissals = tracker.reprompts, tracker.dismissals
    facts.unevidenced_loss = dict(tracker.unevidenced)
    facts.exposure_quality = {c: (v[0], v[1]) for c, v in exposure.items()}
    facts.appeal_outcomes = {c: (v[0], v[1]) for c, v in appeals.items()}
    return facts


# -- checks -----------------------------------------------------------------------------------

def _na(crit: Criterion, rs: RulebookSet, why: str) -> Finding:
    return make_finding(crit, rs, "not_applicable", {"details": why}, kind="dynamic",
                        template=why)


def _verdict(bad: bool) -> str:
    return "violation" if bad else "pass"


def check_below_cost(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    forced = _stat(f.snapshot, "forced_price_changes")
    below = _stat(f.snapshot, "below_cost_price_changes")
    if forced <= 0:
        return _na(crit, rs, "The platform set no prices in these events.")
    share = below / forced
    return make_finding(crit, rs, _verdict(share > float(crit.param("max_below_cost_share"))),
                        {"forced": int(forced), "below_cost": int(below), "share": share,
                         "below_cost_yuan": _stat(f.snapshot, "below_cost_yuan")},
                        kind="dynamic")


def check_enrolment(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    if f.enrolled_without_request is None:
        return _na(crit, rs, "Needs a replayed events file: the state does not record why a "
                             "merchant was enrolled.")
    return make_finding(crit, rs, _verdict(f.enrolled_without_request > 0),
                        {"enrolled_without_request": f.enrolled_without_request},
                        kind="dynamic")


def check_opt_out(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    refused = _stat(f.snapshot, "unenrol_refused")
    if f.unenrol_requests == 0:
        return _na(crit, rs, "No merchant asked to leave auto-follow in these events.")
    return make_finding(crit, rs, _verdict(refused > 0),
                        {"refused": int(refused), "requests": f.unenrol_requests},
                        kind="dynamic")


def check_reprompts(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    if f.reprompts is None:
        return _na(crit, rs, "Needs a replayed events file: the state does not link prompts "
                             "to dismissals.")
    if not f.dismissals:
        return _na(crit, rs, "No prompt was dismissed in these events.")
    return make_finding(crit, rs, _verdict(f.reprompts > 0),
                        {"reprompts": f.reprompts, "dismissals": f.dismissals}, kind="dynamic")


def check_appeal_refusals(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    refused = math.fsum(v for m in f.snapshot.merchants for k, v in m.stats.items()
                        if k.startswith("appeals_refused_"))
    filed = _stat(f.snapshot, "appeals_accepted") + refused
    if filed <= 0:
        return _na(crit, rs, "No appeals were filed in these events.")
    share = refused / filed
    return make_finding(crit, rs, _verdict(share > float(crit.param("max_refused_share"))),
                        {"refused": int(refused), "filed": int(filed), "share": share},
                        kind="dynamic")


def check_refund_deciders(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    granted = math.fsum(f.refunds_by_decider.values())
    if granted <= 0:
        return _na(crit, rs, "No refunds were granted in these events.")
    not_by_merchant = granted - f.refunds_by_decider.get("merchant", 0.0)
    share = not_by_merchant / granted
    return make_finding(
        crit, rs, _verdict(share > float(crit.param("max_share_not_by_merchant"))),
        {"granted": int(granted), "not_by_merchant": int(not_by_merchant), "share": share,
         "by_decider": {k: int(v) for k, v in sorted(f.refunds_by_decider.items())}},
        kind="dynamic")


def check_burden_shift(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    if f.unevidenced_loss is None:
        return _na(crit, rs, "Needs a replayed events file: the state does not keep which "
                             "claims had evidence.")
    total = math.fsum(f.unevidenced_loss.values())
    if total <= 0:
        return _na(crit, rs, "No refund-only claim without valid evidence was granted against "
                             "the merchant's will in these events.")
    share = f.unevidenced_loss.get("merchant", 0.0) / total
    return make_finding(crit, rs, _verdict(share > float(crit.param("max_share"))),
                        {"merchant_share": share, "total": total,
                         "merchant_loss": f.unevidenced_loss.get("merchant", 0.0)},
                        kind="dynamic")


def check_take_rate(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    rate = agg.CRITERION_MEASURES["take_rate"](f.snapshot)
    if rate is None:
        return _na(crit, rs, "No sales in these events.")
    return make_finding(crit, rs, _verdict(rate > float(crit.param("merchant_margin"))),
                        {"rate": rate}, kind="dynamic")


def tau_band(crit: Criterion) -> tuple[float, float]:
    """The fair band of a disparity, tau to 1/tau (tau 0, a threshold policy staff may set:
    every ratio is fair)."""
    tau = float(crit.param("tau"))
    return tau, (1 / tau if tau > 0 else math.inf)


def disparity(values: Mapping[str, float | None], crit: Criterion) -> tuple[str, dict[str, Any]]:
    """Aequitas-style disparities against the reference cohort, with the verdict."""
    tau, high = tau_band(crit)
    ref = str(crit.param("reference_cohort"))
    base = values.get(ref)
    if base is None or not math.isfinite(base) or base <= 0:
        return "not_applicable", {"details": f"No figure for the reference cohort '{ref}', so "
                                             f"no disparity can be computed.", "values": values}
    ratios = {c: v / base for c, v in sorted(values.items())
              if c != ref and v is not None and math.isfinite(v) and c != "unknown"}
    if not ratios:
        return "not_applicable", {"details": "Only the reference cohort has a figure.",
                                  "values": values}
    outside = {c: r for c, r in ratios.items() if not tau <= r <= high}
    parts = [f"{c} {r:.2f}x" + (" (outside the band)" if c in outside else "")
             for c, r in ratios.items()]
    # Worded for either verdict: the criterion's title states the fair case, which a
    # violation contradicts.
    details = (f"Against the {ref} merchants' figure: " + "; ".join(parts)
               + f". Fair between {tau:g} and {high:.3g}.")
    return ("violation" if outside else "pass"), {
        "details": details, "ratios": ratios, "values": values, "tau": tau,
        "reference_cohort": ref, "outside": sorted(outside)}


def _cohort_finding(rs: RulebookSet, crit: Criterion, values: Mapping[str, float | None],
                    kind: str = "dynamic") -> Finding:
    verdict, evidence = disparity(values, crit)
    return make_finding(crit, rs, verdict, evidence, kind=kind, template="{details}")


def check_refund_burden_by_tier(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    sums: dict[str, list[float]] = {}
    for m in f.snapshot.merchants:
        row = sums.setdefault(m.cohort, [0.0, 0.0])
        row[0] += m.burden.get("merchant.refund", 0.0)
        row[1] += m.gmv
    values = {c: (b / g if g > 0 else None) for c, (b, g) in sums.items()}
    return _cohort_finding(rs, crit, values)


def check_exposure_by_tier(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    if f.exposure_quality is None:
        return _na(crit, rs, "Needs a replayed events file: the state snapshot does not keep "
                             "listing quality by cohort.")
    values = {c: (imp / q if q > 0 else None) for c, (imp, q) in f.exposure_quality.items()}
    return _cohort_finding(rs, crit, values)


def check_appeal_success_by_tier(rs: RulebookSet, crit: Criterion, f: StreamFacts) -> Finding:
    if f.appeal_outcomes is None:
        return _na(crit, rs, "Needs a replayed events file: the state does not keep appeal "
                             "outcomes by cohort.")
    values = {c: (u / d if d > 0 else None) for c, (d, u) in f.appeal_outcomes.items()}
    return _cohort_finding(rs, crit, values)


def _concentration(rs: RulebookSet, crit: Criterion, f: StreamFacts, attr: str,
                   bound: str) -> Finding:
    groups = agg.exposure_concentration(f.snapshot)
    if not groups:
        return _na(crit, rs, "No product group with two or more listings had impressions.")
    value = max(getattr(g, attr) for g in groups)
    return make_finding(crit, rs, _verdict(value > float(crit.param(bound))),
                        {"value": value, "groups": len(groups)}, kind="dynamic")


DynamicCheck = Callable[[RulebookSet, Criterion, StreamFacts], Finding]

DYNAMIC_CHECKS: dict[str, DynamicCheck] = {
    "below_cost_forcing": check_below_cost,
    "auto_follow_default_off": check_enrolment,
    "opt_in_opt_out_symmetry": check_opt_out,
    "no_reprompt_after_decline": check_reprompts,
    "appeal_access_not_capped": check_appeal_refusals,
    "refund_decided_by_merchant": check_refund_deciders,
    "burden_shift": check_burden_shift,
    "take_rate": check_take_rate,
    "refund_burden_ratio_by_size_tier": check_refund_burden_by_tier,
    "exposure_per_quality_by_size_tier": check_exposure_by_tier,
    "appeal_success_by_size_tier": check_appeal_success_by_tier,
    "exposure_gini": lambda rs, c, f: _concentration(rs, c, f, "gini", "max_gini"),
    "exposure_hhi": lambda rs, c, f: _concentration(rs, c, f, "hhi", "max_hhi"),
}


def run_dynamic(rs: RulebookSet, criteria: Iterable[Criterion], facts: StreamFacts) \
        -> list[Finding]:
    out = []
    for crit in criteria:
        if "dynamic" not in crit.checks:
            continue
        check = DYNAMIC_CHECKS.get(crit.id)
        if check is None:
            raise ValueError(f"{crit.location}: criterion {crit.id} lists a dynamic check, but "
                             f"none is implemented for it")
        finding = check(rs, crit, facts)
        finding.evidence.setdefault("source", facts.source)
        out.append(finding)
    return out
