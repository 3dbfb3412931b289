"""The synthetic world is valid, repeatable, and shows the proportions the research reports."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from service.events import EVENT_TYPES, Event, parse_event, read_jsonl
from service.generate import generate_events, generate_to_file, write_jsonl

MERCHANTS, DAYS, SEED = 1000, 7, 1


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    """The size the CLI's default run uses: 1,000 merchants over a week."""
    return list(generate_events(MERCHANTS, DAYS, SEED))


@pytest.fixture(scope="module")
def by_type(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        grouped[event["type"]].append(event["payload"])
    return grouped


def test_volume(events: list[dict[str, Any]]) -> None:
    assert 100_000 <= len(events) <= 250_000


def test_deterministic_for_a_seed_and_different_for_another() -> None:
    first = list(generate_events(40, 3, seed=7))
    assert first == list(generate_events(40, 3, seed=7))
    other = list(generate_events(40, 3, seed=8))
    assert [e["payload"] for e in other] != [e["payload"] for e in first]


def test_every_event_validates(events: list[dict[str, Any]]) -> None:
    for event in events:  # parse_event raises on the first invalid one
        assert isinstance(parse_event(event), Event)


def test_sorted_by_time_with_unique_stable_ids(events: list[dict[str, Any]]) -> None:
    times = [datetime.fromisoformat(e["event_time"]) for e in events]
    assert times == sorted(times)
    assert times[0] >= datetime(2024, 7, 1, tzinfo=timezone(timedelta(hours=8)))
    assert times[-1] < datetime(2024, 7, 8, tzinfo=timezone(timedelta(hours=8)))
    assert [e["event_id"] for e in events[:3]] == ["e1-1", "e1-2", "e1-3"]
    assert len({e["event_id"] for e in events}) == len(events)
    assert all(e["event_time"].endswith("+08:00") for e in events[:100])


def test_every_type_appears(by_type: dict[str, list[dict[str, Any]]]) -> None:
    assert set(by_type) == set(EVENT_TYPES)


def test_tier_proportions(by_type: dict[str, list[dict[str, Any]]]) -> None:
    tiers = Counter(p["size_tier"] for p in by_type["merchant_registered"])
    assert sum(tiers.values()) == MERCHANTS
    assert 0.65 <= tiers["small"] / MERCHANTS <= 0.75
    assert 0.16 <= tiers["medium"] / MERCHANTS <= 0.24
    assert 0.07 <= tiers["large"] / MERCHANTS <= 0.13


def test_orders_per_day_follow_the_tier(events: list[dict[str, Any]]) -> None:
    tier = {
        e["merchant_id"]: e["payload"]["size_tier"]
        for e in events
        if e["type"] == "merchant_registered"
    }
    orders = Counter(tier[e["merchant_id"]] for e in events if e["type"] == "order_placed")
    stores = Counter(tier.values())
    for name, expected in (("small", 5), ("medium", 20), ("large", 60)):
        per_day = orders[name] / stores[name] / DAYS
        assert 0.75 * expected <= per_day <= 1.25 * expected, (name, per_day)


def test_most_orders_ship_within_hours(events: list[dict[str, Any]]) -> None:
    placed = {
        e["payload"]["order_id"]: e["event_time"] for e in events if e["type"] == "order_placed"
    }
    delays = [
        datetime.fromisoformat(e["event_time"])
        - datetime.fromisoformat(placed[e["payload"]["order_id"]])
        for e in events
        if e["type"] == "order_shipped"
    ]
    assert len(delays) > 0.85 * len(placed)
    within_a_day = sum(d <= timedelta(hours=24) for d in delays)
    assert within_a_day > 0.9 * len(delays)


def test_refund_claims_match_the_research(by_type: dict[str, list[dict[str, Any]]]) -> None:
    orders = len(by_type["order_placed"])
    refunds = by_type["refund_requested"]
    assert 0.05 <= len(refunds) / orders <= 0.10
    refund_only = [p for p in refunds if p["kind"] == "refund_only"]
    assert len(refund_only) > 0.7 * len(refunds)
    without_evidence = sum(not p["evidence_valid"] for p in refund_only) / len(refund_only)
    assert 0.20 <= without_evidence <= 0.30


def test_merchants_answer_in_hours_late_or_never(events: list[dict[str, Any]]) -> None:
    asked = {
        e["payload"]["order_id"]: datetime.fromisoformat(e["event_time"])
        for e in events
        if e["type"] == "refund_requested"
    }
    waits = [
        datetime.fromisoformat(e["event_time"]) - asked[e["payload"]["order_id"]]
        for e in events
        if e["type"] == "merchant_responded"
    ]
    assert sum(w <= timedelta(hours=12) for w in waits) > 0.5 * len(waits)
    assert sum(w > timedelta(hours=36) for w in waits) > 0.05 * len(waits)
    assert len(waits) < 0.9 * len(asked)  # some claims are never answered


def test_references_point_backwards(events: list[dict[str, Any]]) -> None:
    """Every event that names an order, listing or appeal comes after the one that made it."""
    listings: set[str] = set()
    orders: set[str] = set()
    appeals: set[str] = set()
    refunded: set[str] = set()
    for e in events:
        p, kind = e["payload"], e["type"]
        if kind == "listing_updated":
            listings.add(p["listing_id"])
        elif kind == "order_placed":
            assert p["listing_id"] in listings
            orders.add(p["order_id"])
        elif kind == "appeal_filed":
            assert p.get("order_id") is None or p["order_id"] in orders
            appeals.add(p["appeal_id"])
        elif kind == "appeal_decided":
            assert p["appeal_id"] in appeals
        elif kind == "refund_requested":
            assert p["order_id"] in orders
            refunded.add(p["order_id"])
        elif kind in ("merchant_responded", "platform_intervened"):
            assert p["order_id"] in refunded
        elif "order_id" in p:
            assert p["order_id"] in orders
        elif p.get("listing_id") is not None:
            assert p["listing_id"] in listings


def test_auto_follow_is_easy_to_join_and_hard_to_leave(
    by_type: dict[str, list[dict[str, Any]]],
) -> None:
    toggles = by_type["auto_follow_toggled"]
    joins = [p for p in toggles if p["enrolled"]]
    leaves = [p for p in toggles if not p["enrolled"]]
    assert joins and leaves
    assert all(p["steps"] == 1 and not p["verified"] for p in joins)
    assert {p["via"] for p in joins} == {"popup", "settings"}
    verified = [p for p in leaves if p["verified"]]
    assert verified and len(verified) < len(leaves)  # with and without a code
    assert min(p["steps"] for p in verified) > 1


def test_price_war_reaches_below_cost(events: list[dict[str, Any]]) -> None:
    updates = [e for e in events if e["type"] == "listing_updated"]
    below = {
        e["payload"]["listing_id"]
        for e in updates
        if e["payload"]["price"] < e["payload"]["unit_cost"]
    }
    assert len(below) >= 10
    assert sum(e["type"] == "prompt_dismissed" for e in events) > 0
    initial = [e["payload"] for e in updates if e["event_time"] == events[0]["event_time"]]
    margins = [(p["price"] - p["unit_cost"]) / p["price"] for p in initial]
    assert 0.15 <= sum(margins) / len(margins) <= 0.32


def test_the_sofa_case_is_in_the_stream(events: list[dict[str, Any]]) -> None:
    sofa = [
        e
        for e in events
        if e["payload"].get("listing_id") == "m00000-l0"
        and e["type"] in ("listing_updated", "competitor_price_observed")
    ]
    prices = [
        (e["type"], e["payload"].get("price", e["payload"].get("competitor_price"))) for e in sofa
    ]
    assert prices[:3] == [
        ("listing_updated", 599.0),
        ("competitor_price_observed", 558.0),
        ("listing_updated", 549.0),
    ]
    assert sofa[2]["payload"]["unit_cost"] == 560.0
    hours = datetime.fromisoformat(sofa[2]["event_time"]) - datetime.fromisoformat(
        sofa[1]["event_time"]
    )
    assert hours == timedelta(hours=12)


def test_impressions_rank_by_price_within_group(events: list[dict[str, Any]]) -> None:
    ranks: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for e in events:
        if e["type"] == "impressions_served":
            p = e["payload"]
            ranks[(e["event_time"], p["product_group"], p["channel"])].append(p["rank"])
    assert len({group for _, group, _ in ranks}) >= 45
    for key, seen in ranks.items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), key
    assert any(channel == "today_picks" for _, _, channel in ranks)


def test_busy_merchants_outrun_the_appeal_quota(events: list[dict[str, Any]]) -> None:
    filed = Counter(e["merchant_id"] for e in events if e["type"] == "appeal_filed")
    assert max(filed.values()) > 30
    decided = [e["payload"] for e in events if e["type"] == "appeal_decided"]
    automated = [p for p in decided if p["reviewer"] == "automated"]
    assert sum(p["outcome"] == "rejected" for p in automated) > 0.7 * len(automated)
    assert any(p["reviewer"] == "human" for p in decided)


def test_start_must_be_aware_and_sets_the_offset() -> None:
    with pytest.raises(ValueError, match="timezone"):
        list(generate_events(3, 1, 1, start=datetime(2024, 7, 1)))
    utc = list(generate_events(3, 1, 1, start=datetime(2025, 4, 22, tzinfo=UTC)))
    assert utc[0]["event_time"] == "2025-04-22T00:00:00+00:00"
    for start in (
        datetime(2024, 7, 1, 13, 45, 7, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2024, 3, 30, 12, tzinfo=ZoneInfo("Europe/Berlin")),  # crosses a DST change
    ):
        stamps = [e["event_time"] for e in generate_events(5, 2, 1, start=start)]
        assert stamps[0] == start.isoformat()
        instants = [datetime.fromisoformat(s).timestamp() for s in stamps]
        assert instants == sorted(instants)
        assert instants[-1] < start.timestamp() + 2 * 86400
        assert {s[19:] for s in stamps} == {
            (start + timedelta(days=d)).isoformat()[19:] for d in (0, 1)
        } | {start.isoformat()[19:]}
    assert list(generate_events(0, 3, 1)) == []
    assert list(generate_events(5, 0, 1)) == []


def test_files_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "world.jsonl"
    written = generate_to_file(path, merchants=30, days=2, seed=3)
    assert written == len(path.read_text().splitlines())
    read = list(read_jsonl(path))
    assert len(read) == written
    assert all(isinstance(item, Event) for _, item in read)
    again = tmp_path / "again.jsonl"
    assert write_jsonl(generate_events(30, 2, 3), again) == written
    assert again.read_bytes() == path.read_bytes()
