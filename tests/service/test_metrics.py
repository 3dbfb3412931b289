"""Prometheus metrics: counters from decisions, state gauges at scrape time, label hygiene."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from rules.loader import load_set
from service.aggregates import (
    COHORTS,
    evaluate_criteria,
    load_stream_criteria,
    snapshot_from_store,
)
from service.decision import Decision, EffectOutcome
from service.engine import Engine
from service.events import parse_event
from service.generate import generate_events
from service.metrics import ServiceMetrics
from service.state import SQLiteStateStore

BOOKS = Path(__file__).resolve().parents[2] / "rules" / "books"

#: Every label the service's metrics may carry, each from a bounded set.
ALLOWED_LABELS = {"set", "role", "family", "trigger", "outcome", "event_type", "criterion",
                  "cohort", "category", "decided_by", "reason", "scope", "source", "method",
                  "code", "revision", "le"}


# -- helpers shared with tests/service/test_promtool.py and tests/deploy --------------------

def parse(exposition: bytes) -> list[Any]:
    return list(text_string_to_metric_families(exposition.decode()))


def samples(exposition: bytes) -> list[Any]:
    return [s for fam in parse(exposition) for s in fam.samples]


def replay(merchants: int = 30, days: int = 7, seed: int = 1, set_name: str = "lowprice-2024",
           store: SQLiteStateStore | None = None) -> tuple[Engine, list[Decision], list[dict]]:
    rulebook_set = load_set(BOOKS / set_name)
    raw = list(generate_events(merchants, days, seed))
    engine = Engine(rulebook_set, store=store)
    decisions = engine.process([parse_event(r) for r in raw])
    return engine, decisions, raw


def cohort_of(engine: Engine):
    return lambda merchant_id: engine.store.merchant(merchant_id).get("size_tier")


def replayed_metrics(merchants: int = 30, days: int = 7) \
        -> tuple[ServiceMetrics, Engine, list[Decision], list[dict]]:
    """A ServiceMetrics fed as the server feeds it, after replaying a generated stream."""
    engine, decisions, raw = replay(merchants, days)
    s = engine.set
    m = ServiceMetrics()
    m.set_rulebook_info(s.id, "primary", s.revision,
                        {f: rb.revision for f, rb in s.rulebooks.items()})
    m.observe_decisions(s.id, "primary", decisions, cohort_of(engine))
    m.register_state_source(s.id, "primary",
                            lambda: snapshot_from_store(engine.store, engine.watermark))
    for r in raw:
        m.count_events(r["type"], "evaluated")
    m.count_events("order_placed", "duplicate", 3)
    m.count_events("no_such_type", "invalid")
    m.count_engine_error(s.id)
    for seconds in (0.0004, 0.003, 0.02, 0.7):
        m.observe_rpc("EvaluateEvents", "OK", seconds)
    m.observe_rpc("EvaluateEvents", "INVALID_ARGUMENT", 0.001)
    for size in (1, 64, 500):
        m.observe_batch(size)
    for seconds in (0.0008, 0.004):
        m.observe_fsync(seconds)
    return m, engine, decisions, raw


@pytest.fixture(scope="module")
def replayed():
    m, engine, decisions, raw = replayed_metrics()
    yield m, engine, decisions, raw
    engine.close()


# -- hand-made decisions ----------------------------------------------------------------------

def _decision(n: int, merchant: str, rulebook: str | None, effects: list[EffectOutcome],
              trigger: str = "event", outcome: str = "applied") -> Decision:
    return Decision(decision_id=f"d-{n}", event_id=f"ev-{n}", event_type="x",
                    merchant_id=merchant, event_time="2024-07-01T10:00:00+08:00",
                    rulebook=rulebook, revision="r", rule="r" if rulebook else None,
                    trigger=trigger, outcome=outcome, effects=effects, set_id="lowprice-2024")


def _effect(name: str, args: dict | None = None, amounts: dict | None = None,
            burden: list[tuple[str, str, float]] = (), skipped: str | None = None) \
        -> EffectOutcome:
    return EffectOutcome(name, args or {}, amounts or {},
                         [{"party": p, "category": c, "amount": a} for p, c, a in burden],
                         skipped=skipped)


TIERS = {"m-secret-small": "small", "m-secret-large": "large", "m-secret-odd": "m-secret-odd"}

HAND_MADE = [
    _decision(1, "m-secret-small", "lowprice-2024/refund", [
        _effect("grant_refund", {"decided_by": "timeout", "payer": "merchant"},
                burden=[("merchant", "refund", 34.17)])], trigger="deadline"),
    _decision(2, "m-secret-small", "lowprice-2024/commission", [
        _effect("charge_fee", {"kind": "commission", "amount": 5.0},
                burden=[("merchant", "commission", 5.0)]),
        _effect("charge_fee", {"kind": "ad_click", "amount": 2.17},
                burden=[("merchant", "ads", 2.17)])]),
    _decision(3, "m-secret-large", "lowprice-2024/auto_follow", [
        _effect("set_price", {"price": 549.0}, {"price": 549.0, "below_cost_by": 11.0},
                burden=[("merchant", "below_cost", 11.0)])], trigger="deadline"),
    _decision(4, "m-secret-large", "lowprice-2024/auto_follow", [
        _effect("set_price", {"price": 570.0}, {"price": 570.0, "below_cost_by": 0.0})],
        trigger="deadline"),
    _decision(5, "m-secret-small", "lowprice-2024/auto_follow", [
        _effect("flag", {"finding": "below_cost_follow", "amount": 1.0},
                {"finding": "below_cost_follow", "amount": 1.0}),
        _effect("close_prompt")]),
    _decision(6, "m-secret-large", "lowprice-2024/appeal", [
        _effect("refuse_appeal", {"reason": "quota"}, {"reason": "quota"})]),
    _decision(7, "m-secret-large", "lowprice-2024/appeal", [
        _effect("block_appeals", {"scope": "month"}, {"scope": "month"})]),
    _decision(8, "m-secret-large", "lowprice-2024/refund", [
        _effect("grant_refund", {"decided_by": "platform", "payer": "platform"},
                burden=[("platform", "refund", 20.5)])]),
    _decision(9, "m-secret-small", "lowprice-2024/refund", [
        _effect("grant_refund", {"decided_by": "rule"}, skipped="no order is known")]),
    _decision(10, "m-secret-odd", "lowprice-2024/commission", [
        _effect("charge_fee", {"kind": "service", "amount": 3.0},
                burden=[("merchant", "fees", 3.0)])]),
    _decision(11, "m-secret-small", None, [], outcome="no_rule_applied"),
]


@pytest.fixture
def hand_made() -> ServiceMetrics:
    m = ServiceMetrics(process=False)
    m.observe_decisions("lowprice-2024", "primary", HAND_MADE, TIERS.get)
    return m


def _value(m: ServiceMetrics, name: str, **labels: str) -> float:
    v = m.registry.get_sample_value(name, {"set": "lowprice-2024", "role": "primary", **labels})
    return 0.0 if v is None else v


def test_burden_counters_equal_the_decisions_burdens(hand_made):
    m = hand_made
    assert _value(m, "rulebook_merchant_burden_yuan_total", cohort="small",
                  category="refund") == pytest.approx(34.17)
    assert _value(m, "rulebook_merchant_burden_yuan_total", cohort="small",
                  category="commission") == pytest.approx(5.0)
    assert _value(m, "rulebook_merchant_burden_yuan_total", cohort="small",
                  category="ads") == pytest.approx(2.17)
    assert _value(m, "rulebook_merchant_burden_yuan_total", cohort="large",
                  category="below_cost") == pytest.approx(11.0)
    assert _value(m, "rulebook_merchant_burden_yuan_total", cohort="unknown",
                  category="fees") == pytest.approx(3.0)
    assert _value(m, "rulebook_platform_burden_yuan_total", cohort="large",
                  category="refund") == pytest.approx(20.5)
    # Totals over all series equal the decisions' own burden totals.
    for party in ("merchant", "platform"):
        total = sum(s.value for s in samples(m.exposition())
                    if s.name == f"rulebook_{party}_burden_yuan_total")
        assert total == pytest.approx(sum(d.burden[party] for d in HAND_MADE))


def test_price_refund_and_appeal_counters(hand_made):
    m = hand_made
    assert _value(m, "rulebook_forced_price_changes_total", cohort="large") == 2
    assert _value(m, "rulebook_below_cost_price_changes_total", cohort="large",
                  source="auto_follow") == 1
    assert _value(m, "rulebook_below_cost_yuan_total", cohort="large",
                  source="auto_follow") == pytest.approx(11.0)
    assert _value(m, "rulebook_below_cost_price_changes_total", cohort="small",
                  source="merchant_follow") == 1
    assert _value(m, "rulebook_below_cost_yuan_total", cohort="small",
                  source="merchant_follow") == pytest.approx(1.0)
    assert _value(m, "rulebook_refunds_granted_total", cohort="small", decided_by="timeout") == 1
    assert _value(m, "rulebook_refunds_granted_total", cohort="large", decided_by="platform") == 1
    # A skipped effect did nothing: no refund was granted.
    assert _value(m, "rulebook_refunds_granted_total", cohort="small", decided_by="rule") == 0
    assert _value(m, "rulebook_appeals_refused_total", cohort="large", reason="quota") == 1
    assert _value(m, "rulebook_appeal_blocks_total", cohort="large", scope="month") == 1


def test_decisions_counter(hand_made):
    m = hand_made
    assert _value(m, "rulebook_decisions_total", family="refund", trigger="deadline",
                  outcome="applied") == 1
    assert _value(m, "rulebook_decisions_total", family="refund", trigger="event",
                  outcome="applied") == 2
    assert _value(m, "rulebook_decisions_total", family="auto_follow", trigger="deadline",
                  outcome="applied") == 2
    assert _value(m, "rulebook_decisions_total", family="none", trigger="event",
                  outcome="no_rule_applied") == 1
    total = sum(s.value for s in samples(m.exposition()) if s.name == "rulebook_decisions_total")
    assert total == len(HAND_MADE)


def test_no_label_value_is_a_merchant_id(hand_made):
    values = {v for s in samples(hand_made.exposition()) for v in s.labels.values()}
    assert not [v for v in values if "secret" in v or v.startswith("ev-") or v.startswith("d-")]
    # The merchant whose cohort lookup answered with its own id counts as unknown.
    assert _value(hand_made, "rulebook_decisions_total", family="commission", trigger="event",
                  outcome="applied") == 2
    cohorts = {s.labels["cohort"] for s in samples(hand_made.exposition()) if "cohort" in s.labels}
    assert cohorts <= set(COHORTS)


def test_roles_are_checked():
    m = ServiceMetrics(process=False)
    with pytest.raises(ValueError, match="role"):
        m.observe_decisions("s", "canary", [], lambda _: "small")
    with pytest.raises(ValueError, match="role"):
        m.set_rulebook_info("s", "m-1", "rev", {})


def test_count_events_keeps_event_types_bounded():
    m = ServiceMetrics(process=False)
    m.count_events("order_placed", "evaluated", 4)
    m.count_events("m-secret-1", "invalid")
    assert m.registry.get_sample_value(
        "rulebook_events_total", {"event_type": "order_placed", "outcome": "evaluated"}) == 4
    assert m.registry.get_sample_value(
        "rulebook_events_total", {"event_type": "unknown", "outcome": "invalid"}) == 1
    with pytest.raises(ValueError):
        m.count_events("order_placed", "dropped")


def test_service_histograms_and_counters():
    m = ServiceMetrics(process=False)
    m.observe_rpc("EvaluateEvents", "OK", 0.004)
    m.observe_rpc("EvaluateEvents", "OK", 0.2)
    m.observe_batch(100)
    m.observe_fsync(0.002)
    m.count_engine_error("lowprice-2024")
    m.count_engine_error("lowprice-2024")
    get = m.registry.get_sample_value
    rpc = {"method": "EvaluateEvents", "code": "OK"}
    assert get("rulebook_rpc_duration_seconds_count", rpc) == 2
    assert get("rulebook_rpc_duration_seconds_sum", rpc) == pytest.approx(0.204)
    assert get("rulebook_rpc_duration_seconds_bucket", {**rpc, "le": "0.005"}) == 1
    assert get("rulebook_batch_size_events_sum") == 100
    assert get("rulebook_journal_fsync_duration_seconds_count") == 1
    assert get("rulebook_engine_errors_total", {"set": "lowprice-2024"}) == 2


def test_rulebook_info_replaces_the_roles_old_series():
    m = ServiceMetrics(process=False)
    m.set_rulebook_info("lowprice-2024", "primary", "aaa", {"refund": "r1", "appeal": "a1"})
    m.set_rulebook_info("reformed-2025", "shadow", "bbb", {"refund": "r2"})
    m.set_rulebook_info("lowprice-2024", "primary", "ccc", {"refund": "r3", "appeal": "a1"})

    def info() -> set[tuple[str, ...]]:
        return {(s.labels["set"], s.labels["role"], s.labels["family"], s.labels["revision"])
                for s in samples(m.exposition()) if s.name == "rulebook_rulebook_info"
                and s.value == 1}

    assert info() == {("lowprice-2024", "primary", "set", "ccc"),
                      ("lowprice-2024", "primary", "refund", "r3"),
                      ("lowprice-2024", "primary", "appeal", "a1"),
                      ("reformed-2025", "shadow", "set", "bbb"),
                      ("reformed-2025", "shadow", "refund", "r2")}
    m.clear_rulebook_info("shadow")
    assert {i[1] for i in info()} == {"primary"}


# -- a replayed stream --------------------------------------------------------------------------

def test_every_metric_name_starts_with_rulebook(replayed):
    m = replayed[0]
    names = [fam.name for fam in parse(m.exposition())]
    assert len(names) > 25
    assert all(n.startswith("rulebook_") for n in names), [n for n in names
                                                           if not n.startswith("rulebook_")]


def test_labels_are_bounded_and_never_ids(replayed):
    m, _, _, raw = replayed
    ids = {r["merchant_id"] for r in raw} | {r["event_id"] for r in raw}
    for r in raw:
        for key in ("order_id", "listing_id", "product_group", "appeal_id"):
            if key in r["payload"]:
                ids.add(str(r["payload"][key]))
    assert len(ids) > 1000
    for s in samples(m.exposition()):
        assert set(s.labels) <= ALLOWED_LABELS, s
        assert not set(s.labels.values()) & ids, s
        if "cohort" in s.labels:
            assert s.labels["cohort"] in COHORTS


def test_counters_agree_with_the_state_store(replayed):
    """The counters (from decisions) and the merchant records (from effects) tell one story."""
    m, engine, _, _ = replayed
    burden: dict[tuple[str, str, str], float] = defaultdict(float)
    stats: dict[tuple[str, str], float] = defaultdict(float)
    for rec in engine.store.merchants():
        cohort = rec.get("size_tier") or "unknown"
        for key, amount in rec["_burden"].items():
            party, category = key.split(".")
            burden[(party, cohort, category)] += amount
        for key, n in rec["_stats"].items():
            stats[(cohort, key)] += n
    assert burden, "the replay should put costs on merchants"
    for (party, cohort, category), amount in burden.items():
        assert _value(m, f"rulebook_{party}_burden_yuan_total", cohort=cohort,
                      category=category) == pytest.approx(amount), (party, cohort, category)
    for cohort in COHORTS:
        assert _value(m, "rulebook_forced_price_changes_total", cohort=cohort) == \
            stats[(cohort, "forced_price_changes")]
        assert _value(m, "rulebook_below_cost_price_changes_total", cohort=cohort,
                      source="auto_follow") == stats[(cohort, "below_cost_price_changes")]
        assert _value(m, "rulebook_below_cost_yuan_total", cohort=cohort,
                      source="auto_follow") == pytest.approx(stats[(cohort, "below_cost_yuan")])
        assert _value(m, "rulebook_below_cost_price_changes_total", cohort=cohort,
                      source="merchant_follow") == stats[(cohort, "flag_below_cost_follow")]
        for by in ("timeout", "merchant", "platform", "rule"):
            assert _value(m, "rulebook_refunds_granted_total", cohort=cohort, decided_by=by) == \
                stats[(cohort, f"refunds_granted_by_{by}")]
        for reason in ("quota", "blocked", "out_of_window", "other"):
            assert _value(m, "rulebook_appeals_refused_total", cohort=cohort, reason=reason) == \
                stats[(cohort, f"appeals_refused_{reason}")]
        for scope in ("month", "year"):
            # A block repeated while one runs is a decision but does not lengthen the block.
            assert _value(m, "rulebook_appeal_blocks_total", cohort=cohort, scope=scope) >= \
                stats[(cohort, f"appeal_blocks_{scope}")]
    assert sum(stats[(c, "refunds_granted_by_timeout")] for c in COHORTS) > 0


def _state_samples(exposition: bytes) -> dict[tuple[str, tuple], float]:
    state_names = ("rulebook_merchants", "rulebook_merchant_burden_ratio",
                   "rulebook_merchants_blocked_from_appealing", "rulebook_exposure_",
                   "rulebook_criterion_", "rulebook_state_watermark")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples(exposition)
            if s.name.startswith(state_names)}


def test_state_gauges(replayed):
    m, engine, _, _ = replayed
    snap = snapshot_from_store(engine.store, engine.watermark)
    got = _state_samples(m.exposition())
    sr = (("role", "primary"), ("set", "lowprice-2024"))
    merchants = {k[1][0][1]: v for k, v in got.items() if k[0] == "rulebook_merchants"}
    assert sum(merchants.values()) == 30
    # The burden-ratio gauge histogram counts the merchants with GMV, per cohort.
    for cohort, n in merchants.items():
        key = ("rulebook_merchant_burden_ratio_gcount",
               (("category", "total"), ("cohort", cohort), *sr))
        with_gmv = sum(1 for r in snap.merchants if r.cohort == cohort and r.gmv > 0)
        assert got[key] == with_gmv <= n
    # Criteria: one value and one 0/1 per criterion, equal to the pure computation.
    for res in evaluate_criteria(snap, load_stream_criteria()):
        crit = (("criterion", res.criterion.id), *sr)
        assert got[("rulebook_criterion_outside_bounds", crit)] == (1 if res.outside else 0)
        if res.value is not None:
            assert got[("rulebook_criterion_value", crit)] == pytest.approx(res.value)
    assert got[("rulebook_criterion_threshold", (("criterion", "exposure_hhi"),))] == 1800
    gini_count = got[("rulebook_exposure_gini_gcount", sr)]
    assert gini_count == got[("rulebook_exposure_hhi_gcount", sr)] > 0
    assert 0 <= got[("rulebook_exposure_gini_max", sr)] < 1
    assert 0 < got[("rulebook_exposure_hhi_max", sr)] <= 10_000
    assert got[("rulebook_state_watermark_timestamp_seconds", sr)] == engine.watermark
    assert m.registry.get_sample_value("rulebook_state_snapshot_success",
                                       dict(sr)) == 1


def test_criteria_descriptions_are_in_the_help_text(replayed):
    families = {f.name: f for f in parse(replayed[0].exposition())}
    for c in load_stream_criteria():
        for name in ("rulebook_criterion_value", "rulebook_criterion_outside_bounds"):
            assert c.id in families[name].documentation
            assert c.description in families[name].documentation
            assert c.standard in families[name].documentation


def test_state_gauges_are_the_same_after_a_restart(tmp_path):
    path = tmp_path / "state.db"
    engine, _, _ = replay(merchants=12, days=5, store=SQLiteStateStore(path))
    before = ServiceMetrics(process=False)
    before.register_state_source("lowprice-2024", "primary",
                                 lambda: snapshot_from_store(engine.store, engine.watermark))
    expected = _state_samples(before.exposition())
    engine.close()
    engine.store.close()

    # A new process: new engine over the same state file, new metrics, no decisions observed.
    store = SQLiteStateStore(path)
    again = Engine(load_set(BOOKS / "lowprice-2024"), store=store)
    after = ServiceMetrics(process=False)
    after.register_state_source("lowprice-2024", "primary",
                                lambda: snapshot_from_store(again.store, again.watermark))
    assert again.watermark == engine.watermark
    got = _state_samples(after.exposition())
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    again.close()
    store.close()


def test_blocked_gauge_follows_the_watermark():
    store = SQLiteStateStore()
    for mid, tier, until in (("a", "small", 100.0), ("b", "small", 300.0), ("c", "large", 0.0)):
        rec = store.merchant(mid)
        rec.update(size_tier=tier, appeal_blocked_until=until)
    watermark = {"t": 200.0}
    m = ServiceMetrics(process=False)
    m.register_state_source("s", "primary", lambda: snapshot_from_store(store, watermark["t"]))

    def blocked(cohort: str) -> float | None:
        return m.registry.get_sample_value("rulebook_merchants_blocked_from_appealing",
                                           {"set": "s", "role": "primary", "cohort": cohort})

    assert (blocked("small"), blocked("large"), blocked("medium")) == (1, 0, None)
    watermark["t"] = 50.0
    assert blocked("small") == 2
    watermark["t"] = 300.0
    assert blocked("small") == 0


def test_a_failing_snapshot_does_not_break_the_scrape(caplog):
    m = ServiceMetrics(process=False)

    def broken():
        raise RuntimeError("store unavailable")

    m.register_state_source("lowprice-2024", "primary", broken)
    m.register_state_source("reformed-2025", "shadow", lambda: snapshot_from_store(
        SQLiteStateStore(), 0.0))
    m.count_engine_error("lowprice-2024")
    text = m.exposition()
    get = m.registry.get_sample_value
    assert get("rulebook_state_snapshot_success", {"set": "lowprice-2024", "role": "primary"}) == 0
    assert get("rulebook_state_snapshot_success", {"set": "reformed-2025", "role": "shadow"}) == 1
    assert get("rulebook_engine_errors_total", {"set": "lowprice-2024"}) == 1
    assert not [s for s in samples(text) if s.name.startswith("rulebook_criterion_value")]
    assert "store unavailable" in caplog.text


def test_registering_a_role_again_replaces_its_source():
    m = ServiceMetrics(process=False)
    empty = lambda: snapshot_from_store(SQLiteStateStore(), 0.0)  # noqa: E731
    m.register_state_source("lowprice-2024", "primary", empty)
    m.register_state_source("reformed-2025", "primary", empty)
    sets = {s.labels["set"] for s in samples(m.exposition())
            if s.name == "rulebook_state_snapshot_success"}
    assert sets == {"reformed-2025"}
    m.unregister_state_source("primary")
    assert not [s for s in samples(m.exposition()) if s.name == "rulebook_state_snapshot_success"]


def test_openmetrics_exposition_is_valid(replayed):
    """Prometheus asks for OpenMetrics first; gauge histograms are native there."""
    text = openmetrics_latest(replayed[0].registry).decode()
    families = {f.name: f for f in parse_openmetrics(text)}
    assert families["rulebook_merchant_burden_ratio"].type == "gaugehistogram"
    assert families["rulebook_exposure_hhi"].type == "gaugehistogram"
    assert families["rulebook_decisions"].type == "counter"
    for fam in families.values():
        for s in fam.samples:
            assert not (isinstance(s.value, float) and math.isinf(s.value)), s


def test_registry_can_be_shared():
    registry = CollectorRegistry()
    m = ServiceMetrics(registry, process=False)
    assert m.registry is registry
    m.count_engine_error("x")
    assert registry.get_sample_value("rulebook_engine_errors_total", {"set": "x"}) == 1
