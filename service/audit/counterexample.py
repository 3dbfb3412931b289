"""Counterexamples: a short event story that shows a rule's harm, confirmed by replaying it.

A static check says what a rule *can* do; a counterexample shows it *does*: for each rule-level
violation this module writes a minimal sequence of merchant and order events from the finding's
scenario (built from the rulebook's own parameters and the criterion's example figures), replays it
through the real engine (`service.engine.Engine`, in-memory state) and looks for the harm in the
decisions. The events are attached as JSON Lines that `rulebook replay` accepts; every line is
checked with `service.events` before it is attached.

A counterexample that does not reproduce is a defect of the audit, not a finding:
`attach_counterexamples(..., strict=True)` raises `CounterexampleError` for it (the tests run
strict), and otherwise it is attached with `reproduced: false` so a reader is never misled.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from rules.rulebook import RulebookSet
from service.audit.finding import Counterexample, Finding
from service.decision import Decision
from service.engine import Engine
from service.events import EventError, parse_event, parse_event_json


class CounterexampleError(AssertionError):
    """A counterexample did not show the harm its finding claims: a bug in the audit."""


@dataclass
class Story:
    """Events told as offsets in hours from a start, for one merchant unless told otherwise."""

    start: dt.datetime
    merchant: str = "m1"
    events: list[dict[str, Any]] = field(default_factory=list)

    def at(self, hours: float, type_: str, merchant: str | None = None,
           **payload: Any) -> str:
        event_id = f"cx-{len(self.events) + 1}"
        when = self.start + dt.timedelta(hours=hours)
        self.events.append({"event_id": event_id, "type": type_,
                            "merchant_id": merchant or self.merchant,
                            "event_time": when.isoformat(),
                            "payload": {k: v for k, v in payload.items() if v is not None}})
        return event_id

    def time(self, hours: float) -> dt.datetime:
        return self.start + dt.timedelta(hours=hours)


@dataclass
class Replay:
    decisions: list[Decision]
    merchants: dict[str, dict[str, Any]]


def replay(rs: RulebookSet, events: Sequence[dict[str, Any]],
           until: dt.datetime | None = None) -> Replay:
    """Run events through a fresh engine with in-memory state, then let event time run on."""
    parsed = []
    for i, raw in enumerate(events):
        try:
            parsed.append(parse_event(raw))
        except EventError as exc:
            raise CounterexampleError(f"counterexample event {i} is not a valid event: "
                                      f"{exc}") from None
    engine = Engine(rs)
    try:
        decisions = engine.process(parsed)
        if until is not None:
            decisions += engine.advance_to(until.timestamp())
            engine.store.flush()
        merchants = {m["merchant_id"]: dict(m) for m in engine.store.merchants()}
    finally:
        engine.close()
    return Replay(decisions, merchants)


def to_jsonl(events: Sequence[dict[str, Any]]) -> str:
    lines = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in events]
    for n, line in enumerate(lines, 1):
        try:
            parse_event_json(line)
        except EventError as exc:
            raise CounterexampleError(f"counterexample line {n} does not parse: {exc}") from None
    return "\n".join(lines) + "\n"


def _start(rs: RulebookSet, family: str | None) -> dt.datetime:
    """09:00 on the day the rulebook took effect, in its time zone: a plausible first morning."""
    rb = rs.rulebooks.get(family or "") or next(iter(rs.rulebooks.values()))
    day = rb.metadata.effective
    return dt.datetime(day.year, day.month, day.day, 9, tzinfo=ZoneInfo(rs.timezone))


def _by_rule(decisions: Sequence[Decision], ref: str) -> list[Decision]:
    return [d for d in decisions if d.rulebook and d.rule
            and f"{d.rulebook.split('/', 1)[1]}/{d.rule}" == ref]


def _effect(d: Decision, name: str) -> Any:
    return next((e for e in d.effects if e.effect == name and not e.skipped), None)


def _deadline_hours(rs: RulebookSet, ref: str) -> float:
    family, rule_id = ref.split("/", 1)
    rule = rs.rulebooks[family].rule(rule_id)
    if rule.deadline is None:
        return 0.0
    value = rule.deadline.after.evaluate({"event": {}, "merchant": {}, "listing": {},
                                          "order": {}})
    return float(value) / 3600 if isinstance(value, int | float) else 0.0


def _enrol(s: Story, h: float) -> None:
    s.at(h, "auto_follow_toggled", enrolled=True, steps=1, verified=False, via="settings")


# -- builders: (set, finding, scenario) -> (story, until, check) -------------------------------

Check = Callable[[Replay], tuple[bool, dict[str, Any]]]
Built = tuple[Story, dt.datetime | None, dict[str, Any], Check]


def _follow(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    ev = f.evidence
    s = Story(_start(rs, "auto_follow"))
    s.at(0, "merchant_registered", size_tier="small")
    s.at(0, "listing_updated", listing_id="sofa", product_group="sofas",
         price=ev["listing_price"], unit_cost=ev["unit_cost"], quality=0.8)
    _enrol(s, 0.5)
    s.at(1, "competitor_price_observed", listing_id="sofa", competitor_price=ev["competitor_price"])
    last = 1.0
    if sc["event_type"] == "prompt_dismissed":
        s.at(2, "prompt_dismissed", listing_id="sofa")
        last = 2.0
    until = s.time(last + _deadline_hours(rs, f.rule or "") + 1 / 60)
    effect = sc["effect"]
    expected = {"rule": f.rule, "effect": effect, "below_cost": True}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        for d in _by_rule(r.decisions, f.rule or ""):
            e = _effect(d, effect)
            if e is not None and e.amounts.get("below_cost_by", 0) > 0:
                key = "price" if effect == "set_price" else "target"
                return True, {"rule": f.rule, "trigger": d.trigger, "event_time": d.event_time,
                              key: e.args.get(key), "unit_cost": ev["unit_cost"],
                              "below_cost_by": e.amounts["below_cost_by"],
                              "merchant_burden": d.burden["merchant"]}
        return False, {"decisions": [f"{d.rule}:{d.effect_names}" for d in r.decisions]}
    return s, until, expected, check


def _channel(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    ev = f.evidence
    s = Story(_start(rs, "ranking"))
    s.at(0, "merchant_registered", size_tier="small")
    listing = s.at(0, "listing_updated", listing_id="item", product_group="g", price=ev["price"],
                   unit_cost=ev["unit_cost"], quality=0.8,
                   promo_signup_price=ev["promo_signup_price"])
    expected = {"rule": f.rule, "effect": "admit_to_channel", "price_below_unit_cost": True}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        for d in _by_rule(r.decisions, f.rule or ""):
            e = _effect(d, "admit_to_channel")
            if d.event_id == listing and e is not None and ev["price"] < ev["unit_cost"]:
                return True, {"rule": f.rule, "channel": e.args.get("channel"),
                              "impressions": e.args.get("impressions"), "price": ev["price"],
                              "unit_cost": ev["unit_cost"]}
        return False, {"decisions": [f"{d.rule}:{d.effect_names}" for d in r.decisions]}
    return s, None, expected, check


def _exposure_of(d: Decision) -> tuple[float, float | None]:
    channel = _effect(d, "admit_to_channel")
    score = _effect(d, "assign_ranking_score")
    return (float(channel.args.get("impressions") or 0) if channel else 0.0,
            score.args.get("score") if score else None)


def _two_listings(rs: RulebookSet, a: dict[str, Any], b: dict[str, Any]) -> tuple[Story, str, str]:
    s = Story(_start(rs, "ranking"))
    s.at(0, "merchant_registered", size_tier="small")
    s.at(0, "merchant_registered", merchant="m2", size_tier="small")
    first = s.at(1, "listing_updated", listing_id="item-a", product_group="g", **a)
    second = s.at(1, "listing_updated", merchant="m2", listing_id="item-b", product_group="g",
                  **b)
    return s, first, second


def _cliff(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    ev = f.evidence
    common = {"unit_cost": sc["unit_cost"], "quality": 0.8,
              "promo_signup_price": sc["promo_signup_price"]}
    s, low, high = _two_listings(rs, {"price": sc["price_in"], **common},
                                 {"price": sc["price_out"], **common})
    expected = {"rule_in": sc["rule_in"], "rule_out": sc["rule_out"],
                "impressions_in": ev["impressions_in"], "impressions_out": ev["impressions_out"],
                "score_in": ev["score_in"], "score_out": ev["score_out"]}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        d_low = next((d for d in r.decisions if d.event_id == low and d.rule), None)
        d_high = next((d for d in r.decisions if d.event_id == high and d.rule), None)
        if d_low is None or d_high is None:
            return False, {"decisions": [f"{d.rule}:{d.effect_names}" for d in r.decisions]}
        imp_in, score_in = _exposure_of(d_low)
        imp_out, score_out = _exposure_of(d_high)
        observed = {"rule_in": d_low.rule, "rule_out": d_high.rule, "impressions_in": imp_in,
                    "impressions_out": imp_out, "score_in": score_in, "score_out": score_out}
        same = all(_close(observed[k], expected[k]) for k in expected)
        return same and (imp_in > imp_out or ev["demoted"]), observed
    return s, None, expected, check


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-6
    return a == b


def _demotion(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    same = {"price": sc["price"], "unit_cost": sc["unit_cost"], "quality": 0.8}
    s, declined, plain = _two_listings(rs, {**same, "promo_signup_price": sc["promo_signup_price"]},
                                       same)
    expected = {"rule": f.rule, "score_declined_below_plain": f.evidence["demotion"]}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        d_dec = next((d for d in r.decisions if d.event_id == declined and d.rule), None)
        d_plain = next((d for d in r.decisions if d.event_id == plain and d.rule), None)
        if d_dec is None or d_plain is None:
            return False, {}
        _, s_dec = _exposure_of(d_dec)
        _, s_plain = _exposure_of(d_plain)
        observed = {"declined_rule": d_dec.rule, "declined_score": s_dec,
                    "plain_rule": d_plain.rule, "plain_score": s_plain}
        ok = (f.rule or "").endswith("/" + d_dec.rule) and s_dec is not None \
            and s_plain is not None and s_plain - s_dec > 0
        return ok, observed
    return s, None, expected, check


def _price_only(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    e = f.evidence
    promo = {"promo_signup_price": sc["promo_signup_price"]} if sc["promo_signup_price"] else {}
    s, dear, cheap = _two_listings(
        rs, {"price": sc["price"], "unit_cost": sc["unit_cost"], "quality": e["quality"], **promo},
        {"price": sc["cheaper_price"], "unit_cost": sc["unit_cost"],
         "quality": e["cheaper_quality"], **promo})
    expected = {"rule": f.rule, "cheaper_lower_quality_ranks_first": True}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        d_dear = next((d for d in r.decisions if d.event_id == dear and d.rule), None)
        d_cheap = next((d for d in r.decisions if d.event_id == cheap and d.rule), None)
        if d_dear is None or d_cheap is None:
            return False, {}
        _, s_dear = _exposure_of(d_dear)
        _, s_cheap = _exposure_of(d_cheap)
        observed = {"rule": f.rule, "score_dearer_better": s_dear, "score_cheaper_worse": s_cheap}
        ok = all((f.rule or "").endswith("/" + d.rule) for d in (d_dear, d_cheap)) \
            and s_dear is not None and s_cheap is not None and s_cheap > s_dear
        return ok, observed
    return s, None, expected, check


def _opt_out(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    s = Story(_start(rs, "auto_follow"))
    s.at(0, "merchant_registered", size_tier="small")
    join = s.at(0, "auto_follow_toggled", enrolled=True, steps=sc["in_steps"],
                verified=sc["in_code"], via="settings")
    leave = s.at(1, "auto_follow_toggled", enrolled=False, steps=sc["in_steps"],
                 verified=sc["in_code"], via="settings")
    expected = {"leave_refused" if sc["refused"] else "leave_harder_than_join": True}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        d_join = next((d for d in r.decisions if d.event_id == join and d.rule), None)
        d_leave = next((d for d in r.decisions if d.event_id == leave and d.rule), None)
        if d_join is None or d_leave is None:
            return False, {}
        j = _effect(d_join, "enrol_auto_follow")
        out = _effect(d_leave, "refuse_unenrol") or _effect(d_leave, "unenrol_auto_follow")
        observed = {"join": {"rule": d_join.rule, **(j.args if j else {})},
                    "leave": {"rule": d_leave.rule, "effect": out.effect if out else None,
                              **(out.args if out else {})},
                    "enrolled_after_leaving": r.merchants["m1"].get("auto_follow_enrolled")}
        if j is None or out is None:
            return False, observed
        harder = (out.args.get("steps") or 0) > (j.args.get("steps") or 0) or \
            (out.args.get("verification") is True and j.args.get("verification") is not True)
        refused = out.effect == "refuse_unenrol" and observed["enrolled_after_leaving"] is True
        return (refused if sc["refused"] else harder), observed
    return s, None, expected, check


def _reprompt(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    s = Story(_start(rs, "auto_follow"))
    s.at(0, "merchant_registered", size_tier="small")
    s.at(0, "listing_updated", listing_id="sofa", product_group="sofas", price=599.0,
         unit_cost=560.0, quality=0.8)
    _enrol(s, 0.5)
    s.at(1, "competitor_price_observed", listing_id="sofa", competitor_price=558.0)
    s.at(2, "prompt_dismissed", listing_id="sofa")
    dismissed = s.time(2)
    after = 2 + float(sc["hours"]) + 1 / 60
    if not sc["deadline"]:
        s.at(after, "competitor_price_observed", listing_id="sofa", competitor_price=558.0)
    until = s.time(after + 1 / 60)
    expected = {"prompt_after_dismissal": True, "hours": sc["hours"]}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        for d in r.decisions:
            e = _effect(d, "prompt_price_change")
            if e is not None and dt.datetime.fromisoformat(d.event_time) > dismissed:
                gap = (dt.datetime.fromisoformat(d.event_time) - dismissed).total_seconds()
                return True, {"rule": d.rule, "trigger": d.trigger, "event_time": d.event_time,
                              "hours_after_dismissal": round(gap / 3600, 3),
                              "target": e.args.get("target")}
        return False, {"decisions": [f"{d.rule}:{d.effect_names}" for d in r.decisions]}
    return s, until, expected, check


def _appeal_quota(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    quota = int(sc["quota"])
    if quota > 2000:
        raise _NoBuilder(f"a quota of {quota} appeals needs too long a story")
    s = Story(_start(rs, "appeal"))
    s.at(0, "merchant_registered", size_tier="small")
    last = ""
    for n in range(quota + 1):
        last = s.at(1 + n / 60, "appeal_filed", appeal_id=f"a{n + 1}")
    expected = {"refused_appeal_number": quota + 1, "reason": "quota"}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        refused = [d for d in r.decisions if _effect(d, "refuse_appeal") is not None]
        first = refused[0] if refused else None
        ok = first is not None and first.event_id == last and \
            _effect(first, "refuse_appeal").args.get("reason") == "quota"
        return ok, {"appeals_filed": quota + 1, "refused": len(refused),
                    "first_refused": first.event_id if first else None,
                    "rule": first.rule if first else None}
    return s, None, expected, check


def _appeal_block(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    failures = int(sc["failures"])
    if failures > 500:
        raise _NoBuilder(f"{failures} failed appeals need too long a story")
    s = Story(_start(rs, "appeal"))
    s.at(0, "merchant_registered", size_tier="small")
    h = 1.0
    for n in range(failures):
        s.at(h, "appeal_filed", appeal_id=f"a{n + 1}")
        s.at(h + 0.5, "appeal_decided", appeal_id=f"a{n + 1}", outcome="rejected",
             reviewer="automated")
        h += 1
    final = s.at(h, "appeal_filed", appeal_id="after-block")
    expected = {"block_scope": sc["scope"], "after_failures": failures,
                "next_appeal_refused": True}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        blocks = [d for d in _by_rule(r.decisions, f.rule or "") if
                  (e := _effect(d, "block_appeals")) is not None
                  and e.args.get("scope") == sc["scope"]]
        last = next((d for d in r.decisions if d.event_id == final and d.rule), None)
        refused = last is not None and _effect(last, "refuse_appeal") is not None
        return bool(blocks) and refused, {
            "blocked_at": blocks[0].event_time if blocks else None,
            "next_appeal": f"{last.rule}:{last.effect_names}" if last else None}
    return s, None, expected, check


def _appeal_review(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    s = Story(_start(rs, "appeal"))
    s.at(0, "merchant_registered", size_tier="small")
    filed = s.at(1, "appeal_filed", appeal_id="a1", human_review_requested=True)
    expected = {"human_review_requested": True, "review": "automated"}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        d = next((d for d in r.decisions if d.event_id == filed and d.rule), None)
        e = _effect(d, "accept_appeal") if d else None
        review = e.args.get("review") if e else None
        return review == "automated", {"rule": d.rule if d else None, "review": review}
    return s, None, expected, check


def _refund_grant(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    s = Story(_start(rs, "refund"))
    s.at(0, "merchant_registered", size_tier="small")
    s.at(0, "listing_updated", listing_id="millet", product_group="grain", price=sc["amount"],
         unit_cost=sc["unit_cost"], quality=0.9)
    s.at(1, "order_placed", order_id="o1", listing_id="millet", quantity=1, amount=sc["amount"],
         shipping_cost=sc["shipping_cost"])
    if sc.get("shipped", True):
        s.at(2, "order_shipped", order_id="o1")
    s.at(3, "refund_requested", order_id="o1", kind=sc.get("claim_kind", "refund_only"),
         evidence_valid=False)
    until = None
    if sc["decided_by"] == "platform":
        s.at(4, "platform_intervened", order_id="o1", requested_by="buyer")
    elif sc["trigger"] == "deadline":
        until = s.time(3 + _deadline_hours(rs, f.rule or "") + 1 / 60)
    expected = {"rule": f.rule, "decided_by": sc["decided_by"], "merchant_bears_loss": True}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        for d in _by_rule(r.decisions, f.rule or ""):
            e = _effect(d, "grant_refund")
            if e is not None and e.args.get("decided_by") == sc["decided_by"]:
                return (d.burden["merchant"] > 0 or not sc.get("shipped", True)), {
                    "rule": f.rule, "trigger": d.trigger, "event_time": d.event_time,
                    "decided_by": e.args.get("decided_by"), "evidence_valid": False,
                    "merchant_burden": d.burden["merchant"]}
        return False, {"decisions": [f"{d.rule}:{d.effect_names}" for d in r.decisions]}
    return s, until, expected, check


def _refund_review(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    s = Story(_start(rs, "refund"))
    s.at(0, "merchant_registered", size_tier="small")
    s.at(0, "listing_updated", listing_id="sofa", product_group="sofas", price=sc["amount"],
         unit_cost=sc["unit_cost"], quality=0.8)
    s.at(1, "order_placed", order_id="o1", listing_id="sofa", quantity=1, amount=sc["amount"],
         shipping_cost=sc["shipping_cost"])
    s.at(2, "order_shipped", order_id="o1")
    s.at(3, "refund_requested", order_id="o1", kind="refund_only", evidence_valid=True)
    asked = s.at(4, "platform_intervened", order_id="o1", requested_by="merchant")
    expected = {"rule": f.rule, "review": "automated"}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        d = next((d for d in _by_rule(r.decisions, f.rule or "") if d.event_id == asked), None)
        e = _effect(d, "platform_review") if d else None
        review = e.args.get("review") if e else None
        return review == "automated", {"rule": f.rule, "review": review}
    return s, None, expected, check


def _decline_penalty(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    s = Story(_start(rs, "auto_follow"))
    s.at(0, "merchant_registered", size_tier="small")
    s.at(0, "listing_updated", listing_id="sofa", product_group="sofas", price=599.0,
         unit_cost=560.0, quality=0.8)
    s.at(0.5, "auto_follow_toggled", listing_id="sofa", enrolled=True, steps=1, verified=False,
         via="settings")
    if sc["event_type"] == "prompt_dismissed":
        s.at(1, "competitor_price_observed", listing_id="sofa", competitor_price=558.0)
        declined = s.at(2, "prompt_dismissed", listing_id="sofa")
    else:
        declined = s.at(2, "auto_follow_toggled", listing_id="sofa", enrolled=False, steps=1,
                        verified=False, via="settings")
    expected = {"rule": f.rule, "declining_lowers_ranking": True}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        before = next((e.args.get("score") for d in r.decisions for e in d.effects
                       if e.effect == "assign_ranking_score" and d.event_id != declined), None)
        d = next((d for d in _by_rule(r.decisions, f.rule or "") if d.event_id == declined),
                 None)
        after = _effect(d, "assign_ranking_score") if d else None
        excluded = d is not None and _effect(d, "exclude_from_channel") is not None
        score = after.args.get("score") if after else None
        lowered = score is not None and (before is None or score < before)
        return (lowered or excluded), {"score_before": before, "score_after_declining": score,
                                       "excluded_from_channel": excluded}
    return s, None, expected, check


def _appeal_window(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    start = dt.datetime.fromtimestamp(float(sc["time"]), ZoneInfo(rs.timezone))
    s = Story(start)
    s.at(0, "merchant_registered", size_tier="small")
    filed = s.at(0, "appeal_filed", appeal_id="a1")
    expected = {"refused": "out_of_window"}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        d = next((d for d in r.decisions if d.event_id == filed and d.rule), None)
        e = _effect(d, "refuse_appeal") if d else None
        reason = e.args.get("reason") if e else None
        return reason == "out_of_window", {"rule": d.rule if d else None, "reason": reason}
    return s, None, expected, check


def _fee(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    s = Story(_start(rs, "commission"))
    s.at(0, "merchant_registered", size_tier="small")
    s.at(0, "listing_updated", listing_id="lamp", product_group="lamps", price=sc["amount"],
         unit_cost=sc["amount"] * 0.9, quality=0.8)
    order = s.at(1, "order_placed", order_id="o1", listing_id="lamp", quantity=1,
                 amount=sc["amount"], shipping_cost=5.0)
    expected = {"charged": sc["charged"], "share_of_order": sc["charged"] / sc["amount"]}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        charged = sum(float(e.args.get("amount") or 0) for d in r.decisions
                      if d.event_id == order for e in d.effects if e.effect == "charge_fee")
        return abs(charged - sc["charged"]) < 1e-6, {
            "charged": charged, "share_of_order": charged / sc["amount"],
            "merchant_burden": r.merchants["m1"].get("_burden", {})}
    return s, None, expected, check


_PAYLOADS: dict[str, dict[str, Any]] = {
    "merchant_registered": {"size_tier": "small"},
    "prompt_dismissed": {"listing_id": "sofa"},
    "auto_follow_toggled": {"enrolled": False, "steps": 1, "verified": False, "via": "popup"},
    "competitor_price_observed": {"listing_id": "sofa", "competitor_price": 558.0},
}


def _enrolment(rs: RulebookSet, f: Finding, sc: dict[str, Any]) -> Built:
    etype = sc.get("event_type", "auto_follow_toggled")
    payload = dict(sc.get("probe") or _PAYLOADS.get(etype) or {})
    if etype not in _PAYLOADS and not sc.get("probe"):
        raise _NoBuilder(f"no story for enrolment on {etype}")
    s = Story(_start(rs, "auto_follow"))
    s.at(0, "merchant_registered", size_tier="small")
    s.at(0, "listing_updated", listing_id="sofa", product_group="sofas", price=599.0,
         unit_cost=560.0, quality=0.8)
    trigger = s.at(1, etype, **payload) if etype != "merchant_registered" else "cx-1"
    expected = {"enrolled_without_request": True}

    def check(r: Replay) -> tuple[bool, dict[str, Any]]:
        hit = [d for d in _by_rule(r.decisions, f.rule or "")
               if _effect(d, "enrol_auto_follow") is not None]
        return bool(hit) and r.merchants["m1"].get("auto_follow_enrolled") is True, {
            "trigger_event": trigger, "enrolled": r.merchants["m1"].get("auto_follow_enrolled")}
    return s, None, expected, check


class _NoBuilder(Exception):
    pass


BUILDERS: dict[str, Callable[[RulebookSet, Finding, dict[str, Any]], Built]] = {
    "follow": _follow,
    "channel": _channel,
    "cliff": _cliff,
    "demotion": _demotion,
    "price_only": _price_only,
    "opt_out": _opt_out,
    "reprompt": _reprompt,
    "appeal_quota": _appeal_quota,
    "appeal_block": _appeal_block,
    "appeal_review": _appeal_review,
    "refund_grant": _refund_grant,
    "refund_review": _refund_review,
    "decline_penalty": _decline_penalty,
    "appeal_window": _appeal_window,
    "fee": _fee,
    "enrol_without_request": _enrolment,
    "enrol_on_leave": _enrolment,
}


def build_counterexample(rs: RulebookSet, finding: Finding) -> Counterexample | None:
    """Write, replay and judge the counterexample of one finding; None if it has no scenario."""
    scenario = finding.evidence.get("scenario")
    if not isinstance(scenario, dict) or scenario.get("kind") not in BUILDERS:
        return None
    try:
        story, until, expected, check = BUILDERS[scenario["kind"]](rs, finding, scenario)
    except _NoBuilder:
        return None
    result = replay(rs, story.events, until)
    reproduced, observed = check(result)
    command = f"rulebook replay --rulebooks {rs.path or rs.id}"
    if until is not None:
        command += f" --until {until.isoformat()}"
    command += " counterexample.jsonl"
    return Counterexample(events_jsonl=to_jsonl(story.events), expected=expected,
                          observed=observed, reproduced=reproduced, replay_command=command)


def attach_counterexamples(rs: RulebookSet, findings: Sequence[Finding], *,
                           strict: bool = False) -> None:
    """Give every rule-level static violation its replayed counterexample (in place)."""
    for f in findings:
        if f.verdict != "violation" or f.kind != "static" or f.rule is None:
            continue
        try:
            cx = build_counterexample(rs, f)
        except CounterexampleError:
            # e.g. a rulebook whose parameter no valid event can carry (opt_in_steps: -1)
            if strict:
                raise
            continue
        if cx is None:
            continue
        if strict and not cx.reproduced:
            raise CounterexampleError(
                f"{f.criterion} on {f.rule} ({f.location}): the counterexample did not show the "
                f"harm; expected {cx.expected}, observed {cx.observed}")
        f.counterexample = cx
