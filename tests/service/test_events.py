"""The event model refuses what other systems get wrong, and says where, in field-path terms."""

from __future__ import annotations

import copy
import io
import json
import math
import pickle
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import events as ev
from service.events import (
    EVENT_TYPES,
    MAX_LINE_BYTES,
    PAYLOAD_FIELDS,
    Event,
    EventError,
    FieldViolation,
    event_to_json,
    parse_event,
    parse_event_json,
    read_jsonl,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

PAYLOADS: dict[str, dict[str, Any]] = {
    "merchant_registered": {
        "size_tier": "small",
        "name": "Suining Furniture 1",
        "region": "Suining",
    },
    "listing_updated": {
        "listing_id": "l1",
        "product_group": "sofa",
        "price": 599,
        "unit_cost": 560,
        "quality": 0.8,
        "promo_signup_price": 650.0,
    },
    "auto_follow_toggled": {"enrolled": True, "steps": 1, "verified": False, "via": "popup"},
    "competitor_price_observed": {
        "listing_id": "l1",
        "competitor_price": 558,
        "competitor_id": "c1",
    },
    "prompt_dismissed": {"listing_id": "l1"},
    "impressions_served": {
        "listing_id": "l1",
        "product_group": "sofa",
        "rank": 3,
        "impressions": 0,
        "channel": "search",
    },
    "order_placed": {
        "order_id": "o1",
        "listing_id": "l1",
        "quantity": 2,
        "amount": 39.8,
        "shipping_cost": 4.5,
    },
    "order_shipped": {"order_id": "o1"},
    "refund_requested": {
        "order_id": "o1",
        "kind": "refund_only",
        "evidence_valid": False,
        "amount": 19.9,
        "reason": "not as described",
    },
    "merchant_responded": {"order_id": "o1", "decision": "reject", "reason": "no evidence"},
    "platform_intervened": {"order_id": "o1", "requested_by": "buyer"},
    "appeal_filed": {"appeal_id": "a1", "order_id": "o1", "human_review_requested": True},
    "appeal_decided": {"appeal_id": "a1", "outcome": "rejected", "reviewer": "automated"},
    "ad_click_charged": {"listing_id": "l1", "clicks": 12},
}

# One invalid payload per type: (field to set, value, path the error must name).
INVALID: list[tuple[str, str, Any, str]] = [
    ("merchant_registered", "size_tier", "huge", "payload.size_tier"),
    ("listing_updated", "price", -1, "payload.price"),
    ("listing_updated", "price", 0, "payload.price"),
    ("listing_updated", "unit_cost", "560", "payload.unit_cost"),
    ("listing_updated", "quality", 1.2, "payload.quality"),
    ("listing_updated", "promo_signup_price", 0, "payload.promo_signup_price"),
    ("auto_follow_toggled", "steps", 0, "payload.steps"),
    ("auto_follow_toggled", "verified", "yes", "payload.verified"),
    ("auto_follow_toggled", "via", "email", "payload.via"),
    ("competitor_price_observed", "competitor_price", -558, "payload.competitor_price"),
    ("prompt_dismissed", "listing_id", "", "payload.listing_id"),
    ("impressions_served", "rank", 0, "payload.rank"),
    ("impressions_served", "impressions", -1, "payload.impressions"),
    ("impressions_served", "rank", 1.5, "payload.rank"),
    ("order_placed", "quantity", 0, "payload.quantity"),
    ("order_placed", "amount", -0.01, "payload.amount"),
    ("order_placed", "shipping_cost", "4.5", "payload.shipping_cost"),
    ("order_shipped", "order_id", 17, "payload.order_id"),
    ("refund_requested", "kind", "refund", "payload.kind"),
    ("refund_requested", "evidence_valid", 0, "payload.evidence_valid"),
    ("refund_requested", "amount", -5, "payload.amount"),
    ("merchant_responded", "decision", "maybe", "payload.decision"),
    ("platform_intervened", "requested_by", "platform", "payload.requested_by"),
    ("appeal_filed", "human_review_requested", "true", "payload.human_review_requested"),
    ("appeal_decided", "reviewer", "ai", "payload.reviewer"),
    ("appeal_decided", "outcome", "granted", "payload.outcome"),
    ("ad_click_charged", "clicks", 0, "payload.clicks"),
]


def make(event_type: str, /, **payload_changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(PAYLOADS[event_type])
    payload.update(payload_changes)
    return {
        "event_id": "e-1",
        "type": event_type,
        "merchant_id": "m1",
        "event_time": "2024-07-01T09:30:00+08:00",
        "payload": payload,
    }


def errors_of(obj: Any) -> list[FieldViolation]:
    with pytest.raises(EventError) as info:
        parse_event(obj)
    return info.value.errors


def paths_of(obj: Any) -> set[str]:
    return {v.path for v in errors_of(obj)}


def test_examples_cover_every_type() -> None:
    assert set(PAYLOADS) == set(EVENT_TYPES)
    assert len(EVENT_TYPES) == 14


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_every_type_validates_from_dict_and_json(kind: str) -> None:
    obj = make(kind)
    from_dict = parse_event(obj)
    from_json = parse_event_json(json.dumps(obj))
    assert from_dict == from_json
    assert isinstance(from_dict, Event)
    assert type(from_dict) is ev.EVENT_CLASSES[kind]
    assert from_dict.type == kind
    assert from_dict.time == datetime.fromisoformat("2024-07-01T09:30:00+08:00").timestamp()
    for name, value in obj["payload"].items():
        assert getattr(from_dict.payload, name) == value


@pytest.mark.parametrize(("kind", "name", "value", "path"), INVALID)
def test_invalid_payload_names_the_field(kind: str, name: str, value: Any, path: str) -> None:
    obj = make(kind, **{name: value})
    assert paths_of(obj) == {path}
    with pytest.raises(EventError) as info:
        parse_event_json(json.dumps(obj))
    assert {v.path for v in info.value.errors} == {path}


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_missing_required_payload_field(kind: str) -> None:
    optional = {"name", "region", "promo_signup_price", "competitor_id", "channel", "amount"}
    optional |= {"reason", "human_review_requested"}
    required = [f for f in PAYLOADS[kind] if f not in optional]
    if kind in {"auto_follow_toggled", "ad_click_charged", "appeal_filed"}:
        required = [f for f in required if f not in {"listing_id", "order_id"}]
    assert required, kind
    obj = make(kind)
    del obj["payload"][required[0]]
    (violation,) = errors_of(obj)
    assert violation == FieldViolation(f"payload.{required[0]}", "Field required")


def test_optional_fields_may_be_absent() -> None:
    event = parse_event(make("auto_follow_toggled"))
    assert event.payload.listing_id is None
    filed = make("appeal_filed")
    del filed["payload"]["human_review_requested"], filed["payload"]["order_id"]
    event = parse_event(filed)
    assert event.payload.human_review_requested is False
    assert event.payload.order_id is None
    refund = make("refund_requested")
    del refund["payload"]["amount"]
    assert parse_event(refund).payload.amount is None


def test_unknown_type_names_the_known_types() -> None:
    (violation,) = errors_of({**make("order_shipped"), "type": "price_followed"})
    assert violation.path == "type"
    assert "price_followed" in violation.message
    for known in EVENT_TYPES:
        assert known in violation.message


def test_missing_type_and_non_object() -> None:
    obj = make("order_shipped")
    del obj["type"]
    (violation,) = errors_of(obj)
    assert violation.path == "type"
    assert "order_placed" in violation.message
    with pytest.raises(EventError) as info:
        parse_event_json("[1, 2]")
    assert info.value.errors[0].path == ""


def test_envelope_fields_are_checked() -> None:
    obj = make("order_shipped")
    del obj["event_id"]
    obj["merchant_id"] = "m" * 129
    assert paths_of(obj) == {"event_id", "merchant_id"}
    assert paths_of({**make("order_shipped"), "event_id": ""}) == {"event_id"}


def test_extra_fields_are_refused_at_both_levels() -> None:
    obj = make("order_placed", coupon=5)
    obj["source"] = "pipeline"
    violations = errors_of(obj)
    assert {v.path for v in violations} == {"source", "payload.coupon"}
    assert all(v.message == "Extra inputs are not permitted" for v in violations)


def test_time_is_not_an_input() -> None:
    assert paths_of({**make("order_shipped"), "time": 0.0}) == {"time"}


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-07-01T09:30:00",
        "2024-07-01 09:30:00.250",
        "2024-07-01",
    ],
)
def test_naive_time_is_refused(stamp: str) -> None:
    (violation,) = errors_of({**make("order_shipped"), "event_time": stamp})
    assert violation.path == "event_time"
    assert "timezone" in violation.message


@pytest.mark.parametrize(
    "stamp",
    [
        "yesterday",
        "2024-07-01T09:30:00+0800",
        "1719797400",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-07-01T25:00:00Z",
        " 2024-07-01T09:30:00Z",
    ],
)
def test_malformed_or_impossible_time_is_refused(stamp: str) -> None:
    (violation,) = errors_of({**make("order_shipped"), "event_time": stamp})
    assert violation.path == "event_time"


@pytest.mark.parametrize(("stamp", "valid"), [
    ("9998-12-30T23:59:59Z", True), ("9998-12-31T00:00:00Z", False),
    ("9998-12-31T23:59:59Z", False),  # already 9999 in Shanghai: its months and years end
    ("9998-12-31T07:00:00-23:00", False), ("1971-01-02T00:00:00Z", True),
    ("1971-01-01T23:59:59Z", False), ("1971-01-02T07:59:59+08:00", False),
])
def test_a_time_no_zone_puts_past_the_calendar_is_required(stamp: str, valid: bool) -> None:
    """The years 1971 to 9998 in every time zone: a day in from their ends in UTC. The fast
    path (`compile_acceptor`'s minute cache) agrees: `test_fast_validation`."""
    if valid:
        assert parse_event({**make("order_shipped"), "event_time": stamp}).event_time == stamp
    else:
        (violation,) = errors_of({**make("order_shipped"), "event_time": stamp})
        assert violation.path == "event_time" and "1971 and 9998" in violation.message


@pytest.mark.parametrize(("kind", "name", "value", "message"), [
    ("order_placed", "quantity", 10**400, "less than or equal to 9223372036854775807"),
    ("order_placed", "amount", 1e308, "less than or equal to 1000000000000000000"),
])
def test_numbers_whose_sums_would_overflow_are_refused(kind: str, name: str, value: Any,
                                                      message: str) -> None:
    """A JSON integer of any size failed a float conversion in the engine; two amounts of
    1e308 made a merchant's GMV infinite for good."""
    event = make(kind)
    assert name in event["payload"]
    (violation,) = errors_of({**event, "payload": {**event["payload"], name: value}})
    assert violation.path == f"payload.{name}" and message in violation.message
    parse_event({**event, "payload": {**event["payload"], name: ev.MAX_YUAN
                                      if name == "amount" else ev.MAX_COUNT}})


def test_numeric_time_is_refused() -> None:
    (violation,) = errors_of({**make("order_shipped"), "event_time": 1719797400})
    assert violation == FieldViolation("event_time", "Input should be a valid string")


@pytest.mark.parametrize(
    ("stamp", "epoch"),
    [
        ("2024-07-01T09:30:00+08:00", 1719797400.0),
        ("2024-07-01T01:30:00Z", 1719797400.0),
        ("2024-07-01t01:30:00z", 1719797400.0),
        ("2024-06-30T20:30:00-05:00", 1719797400.0),
        ("2024-07-01T01:30:00.5Z", 1719797400.5),
    ],
)
def test_time_is_epoch_seconds(stamp: str, epoch: float) -> None:
    event = parse_event({**make("order_shipped"), "event_time": stamp})
    assert event.time == epoch
    assert event.event_time == stamp


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_money_is_refused_from_python(bad: float) -> None:
    assert paths_of(make("listing_updated", price=bad)) == {"payload.price"}
    assert paths_of(make("order_placed", amount=bad)) == {"payload.amount"}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_money_is_refused_from_json(literal: str) -> None:
    text = json.dumps(make("order_placed")).replace('"amount": 39.8', f'"amount": {literal}')
    assert literal in text
    with pytest.raises(EventError) as info:
        parse_event_json(text)
    assert [v.path for v in info.value.errors] == ["payload.amount"]


def test_no_silent_coercion() -> None:
    assert paths_of(make("order_placed", quantity="2")) == {"payload.quantity"}
    assert paths_of(make("order_placed", quantity=True)) == {"payload.quantity"}
    assert paths_of(make("order_placed", quantity=2.0)) == {"payload.quantity"}
    assert paths_of(make("listing_updated", price=True)) == {"payload.price"}
    assert paths_of(make("refund_requested", evidence_valid="false")) == {"payload.evidence_valid"}
    assert paths_of(make("prompt_dismissed", listing_id=5)) == {"payload.listing_id"}


def test_every_error_is_reported_not_only_the_first() -> None:
    obj = make("listing_updated", price=-1, quality=2, unit_cost="x")
    obj["event_time"] = "2024-07-01T09:30:00"
    assert paths_of(obj) == {
        "event_time",
        "payload.price",
        "payload.quality",
        "payload.unit_cost",
    }


def test_error_text_reads_like_a_compiler_message() -> None:
    error = EventError(
        [FieldViolation("payload.price", "Input should be greater than 0")],
        line=12,
        source="events.jsonl",
    )
    assert str(error) == "events.jsonl:12: payload.price: Input should be greater than 0"
    both = EventError([FieldViolation("event_time", "bad"), FieldViolation("", "whole")], line=3)
    assert str(both) == "3: event_time: bad; whole"
    assert str(EventError([FieldViolation("type", "x")])) == "type: x"
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.errors, copied.line, copied.source) == (error.errors, 12, "events.jsonl")


def test_payload_fields_match_the_model() -> None:
    assert tuple(PAYLOAD_FIELDS) == EVENT_TYPES
    for kind, fields in PAYLOAD_FIELDS.items():
        assert set(fields) == set(PAYLOADS[kind]) | (
            {"listing_id"} if kind == "auto_follow_toggled" else set()
        )
        assert set(fields.values()) <= {"number", "string", "bool"}
    assert PAYLOAD_FIELDS["listing_updated"]["price"] == "number"
    assert PAYLOAD_FIELDS["impressions_served"]["rank"] == "number"
    assert PAYLOAD_FIELDS["order_placed"]["order_id"] == "string"
    assert PAYLOAD_FIELDS["refund_requested"]["kind"] == "string"
    assert PAYLOAD_FIELDS["refund_requested"]["evidence_valid"] == "bool"
    assert PAYLOAD_FIELDS["refund_requested"]["amount"] == "number"
    assert PAYLOAD_FIELDS["auto_follow_toggled"]["listing_id"] == "string"
    assert PAYLOAD_FIELDS["appeal_filed"]["human_review_requested"] == "bool"


# -- JSON Lines ---------------------------------------------------------------------------------


def test_read_jsonl_keeps_good_lines_around_bad_ones() -> None:
    path = FIXTURES / "events_with_errors.jsonl"
    results = list(read_jsonl(path))
    assert [line for line, _ in results] == [1, 2, 4, 5, 6, 7, 8, 9]
    good = {line: item for line, item in results if isinstance(item, Event)}
    bad = {line: item for line, item in results if isinstance(item, EventError)}
    assert sorted(good) == [1, 2, 7, 9]
    assert [good[n].event_id for n in (1, 2, 7, 9)] == ["e-1", "e-2", "e-6", "e-8"]
    assert sorted(bad) == [4, 5, 6, 8]
    for line, error in bad.items():
        assert error.line == line
        assert error.source == str(path)
    assert bad[4].errors[0].path == ""
    assert "invalid JSON at column" in bad[4].errors[0].message
    assert [v.path for v in bad[5].errors] == ["payload.price"]
    assert str(bad[5]) == f"{path}:5: payload.price: Input should be greater than 0"
    assert [v.path for v in bad[6].errors] == ["type"]
    assert "price_followed" in str(bad[6])
    assert [v.path for v in bad[8].errors] == ["event_time"]


def test_read_jsonl_from_text_and_binary_streams() -> None:
    lines = [json.dumps(make("order_shipped")), "", "{oops", json.dumps(make("prompt_dismissed"))]
    text = "\n".join(lines) + "\n"
    for stream in (io.StringIO(text), io.BytesIO(text.encode())):
        results = list(read_jsonl(stream))
        assert [line for line, _ in results] == [1, 3, 4]
        assert isinstance(results[0][1], Event)
        assert isinstance(results[1][1], EventError)
        assert "column 2" in str(results[1][1])
        assert results[1][1].source is None
        assert isinstance(results[2][1], Event)


def test_read_jsonl_handles_bom_crlf_and_missing_final_newline() -> None:
    data = (
        "\ufeff"
        + json.dumps(make("order_shipped"))
        + "\r\n  \r\n"
        + json.dumps(make("order_shipped"))
    )
    results = list(read_jsonl(io.BytesIO(data.encode())))
    assert [line for line, _ in results] == [1, 3]
    assert all(isinstance(item, Event) for _, item in results)


def test_overlong_line_is_refused_and_reading_goes_on(tmp_path: Path) -> None:
    good = json.dumps(make("order_shipped"))
    huge = json.dumps({**make("order_shipped"), "pad": "x" * MAX_LINE_BYTES})
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join([good, huge, good, "x" * (MAX_LINE_BYTES + 10)]) + "\n")
    results = list(read_jsonl(path))
    assert [line for line, _ in results] == [1, 2, 3, 4]
    assert isinstance(results[0][1], Event)
    assert isinstance(results[1][1], EventError)
    assert "longer than" in str(results[1][1])
    assert isinstance(results[2][1], Event)
    assert isinstance(results[3][1], EventError)


def test_line_limit_boundary() -> None:
    line = json.dumps(make("order_shipped"))
    exact = list(read_jsonl(io.BytesIO((line + "\n").encode()), max_line_bytes=len(line)))
    assert isinstance(exact[0][1], Event)
    over = list(read_jsonl(io.BytesIO((line + "\n" + line).encode()), max_line_bytes=len(line) - 1))
    assert [type(item) for _, item in over] == [EventError, EventError]


# -- round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_round_trip(kind: str) -> None:
    event = parse_event(make(kind))
    text = event_to_json(event)
    again = parse_event_json(text)
    assert again == event
    assert again.time == event.time
    assert "time" not in json.loads(text)
    assert json.loads(text)["event_time"] == "2024-07-01T09:30:00+08:00"


def test_round_trip_keeps_time_as_given_and_drops_nulls() -> None:
    obj = {**make("refund_requested", reason=None), "event_time": "2024-07-01t01:30:00.250z"}
    event = parse_event(obj)
    out = json.loads(event_to_json(event))
    assert out["event_time"] == "2024-07-01t01:30:00.250z"
    assert "reason" not in out["payload"]
    assert parse_event(out) == event


@given(
    amount=st.floats(min_value=0, max_value=1e12, allow_nan=False),
    quantity=st.integers(min_value=1, max_value=10**6),
    listing=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=128),
)
def test_round_trip_property(amount: float, quantity: int, listing: str) -> None:
    event = parse_event(make("order_placed", amount=amount, quantity=quantity, listing_id=listing))
    assert parse_event_json(event_to_json(event)) == event
