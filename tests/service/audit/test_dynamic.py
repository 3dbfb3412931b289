"""Dynamic checks: rates and ratios measured on replayed events or the live state."""

from __future__ import annotations

import datetime as dt

import pytest

from service.aggregates import MerchantRow, SetSnapshot
from service.audit.counterexample import Story
from service.audit.dynamic import (
    StreamFacts,
    disparity,
    facts_from_snapshot,
    replay_events,
    run_dynamic,
)
from service.events import event_to_json, parse_event

START = dt.datetime(2025, 6, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def harms() -> list:
    """One merchant per harm of the field research, and a last event a month on so every
    deadline falls due."""
    s = Story(START)
    s.at(0, "merchant_registered", merchant="sofa", size_tier="small")
    s.at(0, "listing_updated", merchant="sofa", listing_id="sofa", product_group="sofas",
         price=599.0, unit_cost=560.0, quality=0.8)
    s.at(0.5, "auto_follow_toggled", merchant="sofa", enrolled=True, steps=1, verified=False,
         via="settings")
    s.at(1, "competitor_price_observed", merchant="sofa", listing_id="sofa",
         competitor_price=549.0)
    s.at(0, "merchant_registered", merchant="decliner", size_tier="small")
    s.at(0, "listing_updated", merchant="decliner", listing_id="lamp", product_group="lamps",
         price=200.0, unit_cost=150.0, quality=0.8)
    s.at(0.5, "auto_follow_toggled", merchant="decliner", enrolled=True, steps=1,
         verified=False, via="settings")
    s.at(1, "competitor_price_observed", merchant="decliner", listing_id="lamp",
         competitor_price=190.0)
    s.at(2, "prompt_dismissed", merchant="decliner", listing_id="lamp")
    s.at(4, "competitor_price_observed", merchant="decliner", listing_id="lamp",
         competitor_price=190.0)
    s.at(3, "auto_follow_toggled", merchant="decliner", enrolled=False, steps=1,
         verified=False, via="settings")
    s.at(0, "merchant_registered", merchant="appealer", size_tier="medium")
    for n in range(31):
        s.at(1 + n / 60, "appeal_filed", merchant="appealer", appeal_id=f"a{n}")
    s.at(0, "merchant_registered", merchant="miller", size_tier="large")
    s.at(0, "listing_updated", merchant="miller", listing_id="millet", product_group="grain",
         price=39.9, unit_cost=30.0, quality=0.9)
    for n in range(3):
        s.at(1, "order_placed", merchant="miller", order_id=f"o{n}", listing_id="millet",
             quantity=1, amount=39.9, shipping_cost=4.0)
        s.at(2, "order_shipped", merchant="miller", order_id=f"o{n}")
    s.at(3, "refund_requested", merchant="miller", order_id="o0", kind="refund_only",
         evidence_valid=False)
    s.at(3, "refund_requested", merchant="miller", order_id="o1", kind="refund_only",
         evidence_valid=True)
    s.at(4, "merchant_responded", merchant="miller", order_id="o1", decision="accept")
    s.at(24 * 30, "merchant_registered", merchant="late", size_tier="small")
    events = sorted(s.events, key=lambda e: dt.datetime.fromisoformat(e["event_time"]))
    return [parse_event(e) for e in events]


@pytest.fixture(scope="module")
def facts(request):
    out = {}
    for name in ("lowprice", "reformed", "fair", "pushy"):
        rs = request.getfixturevalue(name)
        out[name] = (rs, replay_events(rs, harms()))
    return out


def judge(facts, catalogue, name: str, criterion: str):
    rs, f = facts[name]
    [finding] = run_dynamic(rs, [catalogue[criterion]], f)
    assert finding.kind == "dynamic" and "{" not in finding.reading, finding.reading
    return finding


@pytest.mark.parametrize("criterion, bad, good", [
    ("below_cost_forcing", "lowprice", "reformed"),
    ("opt_in_opt_out_symmetry", "lowprice", "reformed"),
    ("no_reprompt_after_decline", "lowprice", "fair"),
    ("appeal_access_not_capped", "lowprice", "reformed"),
    ("refund_decided_by_merchant", "lowprice", "reformed"),
    ("take_rate", "lowprice", "fair"),
    ("auto_follow_default_off", "pushy", "lowprice"),
])
def test_replayed_events_fail_one_set_and_pass_another(facts, catalogue, criterion, bad,
                                                       good) -> None:
    assert judge(facts, catalogue, bad, criterion).verdict == "violation"
    assert judge(facts, catalogue, good, criterion).verdict == "pass"


def test_replay_counts_what_happened(facts, catalogue) -> None:
    f = judge(facts, catalogue, "lowprice", "below_cost_forcing")
    assert f.evidence["forced"] == 1 and f.evidence["below_cost"] == 1
    assert f.evidence["below_cost_yuan"] == pytest.approx(11.0)
    a = judge(facts, catalogue, "lowprice", "appeal_access_not_capped")
    assert (a.evidence["refused"], a.evidence["filed"]) == (1, 31)
    r = judge(facts, catalogue, "lowprice", "refund_decided_by_merchant")
    assert r.evidence["by_decider"] == {"merchant": 1, "timeout": 1}
    assert "1 of 2 refunds" in r.reading


def test_a_repeated_event_id_is_counted_once(lowprice, tmp_path) -> None:
    """An events source holding events twice (an export's overlapping pages) gives the facts
    of each event once, as the service would answer the repeats from its journal; the
    repeats are counted, from a file and from a list alike."""
    events = harms()
    doubled = [e for event in events for e in (event, event)]
    once = replay_events(lowprice, events)
    twice = replay_events(lowprice, doubled)
    path = tmp_path / "doubled.jsonl"
    path.write_text("".join(event_to_json(e) + "\n" for e in doubled))
    from_file = replay_events(lowprice, path)
    for facts in (twice, from_file):
        assert (facts.events, facts.duplicate_events) == (len(events), len(events))
        assert facts.snapshot == once.snapshot
        assert facts.unevidenced_loss == once.unevidenced_loss
        assert (facts.reprompts, facts.dismissals) == (once.reprompts, once.dismissals)
    assert once.duplicate_events == 0


def test_burden_shift_counts_only_claims_without_evidence(facts, catalogue) -> None:
    bad = judge(facts, catalogue, "lowprice", "burden_shift")
    assert bad.verdict == "violation"
    # o0 (no evidence, unanswered): goods 30 + shipping 4 + recall fee 0.17; o1 was accepted.
    assert bad.evidence["total"] == pytest.approx(34.17)
    assert judge(facts, catalogue, "reformed", "burden_shift").verdict == "not_applicable"
    rs, f = facts["lowprice"]
    f2 = StreamFacts(source="t", snapshot=f.snapshot,
                     unevidenced_loss={"merchant": 0.0, "platform": 50.0})
    [ok] = run_dynamic(rs, [catalogue["burden_shift"]], f2)
    assert ok.verdict == "pass"


def _row(cohort: str, gmv: float, refund: float) -> MerchantRow:
    return MerchantRow(cohort=cohort, gmv=gmv, burden={"merchant.refund": refund}, stats={},
                       appeal_blocked_until=0.0)


def test_cohort_disparities_use_the_tau_band(reformed, catalogue) -> None:
    crit = catalogue["refund_burden_ratio_by_size_tier"]
    fair_rows = (_row("small", 1000, 30), _row("medium", 1000, 28), _row("large", 1000, 30))
    unfair_rows = (_row("small", 1000, 80), _row("medium", 1000, 30), _row("large", 1000, 30))
    for rows, verdict in ((fair_rows, "pass"), (unfair_rows, "violation")):
        facts = facts_from_snapshot(SetSnapshot(watermark=0, merchants=rows))
        [f] = run_dynamic(reformed, [crit], facts)
        assert f.verdict == verdict
    assert f.evidence["outside"] == ["small"] and f.evidence["ratios"]["small"] == \
        pytest.approx(80 / 30)
    wider = catalogue.with_parameters({"refund_burden_ratio_by_size_tier.tau": 0.3})
    [g] = run_dynamic(reformed, [wider["refund_burden_ratio_by_size_tier"]], facts)
    assert g.verdict == "pass"


def test_a_tau_of_zero_makes_every_disparity_fair_instead_of_failing(catalogue) -> None:
    """tau is a ratio (0..1) policy staff may set with --param; 0 is a band with no top."""
    crit = catalogue.with_parameters({"appeal_success_by_size_tier.tau": "0"})[
        "appeal_success_by_size_tier"]
    verdict, evidence = disparity({"small": 0.01, "large": 0.5}, crit)
    assert verdict == "pass" and evidence["outside"] == []


def test_disparity_without_the_reference_cohort_is_not_applicable(catalogue) -> None:
    verdict, evidence = disparity({"small": 0.1}, catalogue["appeal_success_by_size_tier"])
    assert verdict == "not_applicable" and "large" in evidence["details"]


@pytest.mark.parametrize("criterion, values, verdict", [
    ("exposure_per_quality_by_size_tier", {"small": (400.0, 2.0), "large": (1000.0, 2.0)},
     "violation"),
    ("exposure_per_quality_by_size_tier", {"small": (950.0, 2.0), "large": (1000.0, 2.0)},
     "pass"),
    ("appeal_success_by_size_tier", {"small": (10, 2), "large": (10, 5)}, "violation"),
    ("appeal_success_by_size_tier", {"small": (10, 5), "large": (10, 5)}, "pass"),
])
def test_exposure_and_appeal_cohorts(reformed, catalogue, criterion, values, verdict) -> None:
    facts = facts_from_snapshot(SetSnapshot(watermark=0))
    if criterion.startswith("exposure"):
        facts.exposure_quality = values
    else:
        facts.appeal_outcomes = values
    [f] = run_dynamic(reformed, [catalogue[criterion]], facts)
    assert f.verdict == verdict


@pytest.mark.parametrize("criterion, groups, verdict", [
    ("exposure_hhi", {"g": (100.0, 100.0, 100.0, 100.0, 100.0, 100.0)}, "pass"),   # 1,667
    ("exposure_hhi", {"g": (900.0, 50.0, 50.0)}, "violation"),
    ("exposure_gini", {"g": (10.0, 10.0, 11.0)}, "pass"),
    ("exposure_gini", {"g": (1000.0, 1.0, 1.0, 1.0)}, "violation"),
])
def test_concentration(reformed, catalogue, criterion, groups, verdict) -> None:
    facts = facts_from_snapshot(SetSnapshot(watermark=0, exposure=groups))
    [f] = run_dynamic(reformed, [catalogue[criterion]], facts)
    assert f.verdict == verdict


def test_the_live_state_cannot_tell_everything(reformed, catalogue) -> None:
    facts = facts_from_snapshot(SetSnapshot(watermark=0, merchants=(_row("small", 10, 1),)))
    [f] = run_dynamic(reformed, [catalogue["no_reprompt_after_decline"]], facts)
    assert f.verdict == "not_applicable" and "replayed events" in f.reading


def test_a_missing_events_file_is_an_error(reformed, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no such events file"):
        replay_events(reformed, tmp_path / "missing.jsonl")


def test_a_file_with_no_valid_event_is_an_error_not_a_clean_bill(reformed, tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not an event\n{\"type\": \"nothing\"}\n")
    with pytest.raises(ValueError, match="none of its 2 lines is a valid event"):
        replay_events(reformed, notes)


def test_a_cohort_disparity_reads_right_for_either_verdict() -> None:
    from service.audit.criteria import load_catalogue
    from service.audit.dynamic import disparity

    crit = load_catalogue().criteria["appeal_success_by_size_tier"]
    verdict, evidence = disparity({"small": 0.2, "medium": 0.5, "large": 0.5}, crit)
    assert verdict == "violation"
    assert evidence["details"] == ("Against the large merchants' figure: medium 1.00x; "
                                   "small 0.40x (outside the band). Fair between 0.8 and 1.25.")
    assert "is fair" not in evidence["details"]
    verdict, evidence = disparity({"small": 0.45, "large": 0.5}, crit)
    assert verdict == "pass"
    assert evidence["details"] == ("Against the large merchants' figure: small 0.90x. "
                                   "Fair between 0.8 and 1.25.")
