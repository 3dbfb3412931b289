"""The hot-path validator (`service.events.compile_acceptor`) agrees with the pydantic models.

The fast path may only accept: whatever it accepts must be exactly what pydantic makes of the same
protobuf event (class, values, epoch seconds, fields set), and whatever pydantic refuses it must
leave to pydantic. It must also take the common forms of valid events, or it is no fast path.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import pytest
from annotated_types import MultipleOf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.api.rulebook.v1 import events_pb2
from service.convert import (
    _ACCEPTORS,
    _PAYLOAD_FIELDS,
    Rejected,
    _raw_event,
    _validated,
    event_from_proto,
)
from service.events import EVENT_CLASSES, Event, _check_source, compile_acceptor
from service.generate import generate_events

_FIELD_TYPES = {
    kind: {f.name: f for f in events_pb2.Event.DESCRIPTOR.fields_by_name[kind].message_type.fields}
    for kind in _PAYLOAD_FIELDS
}
_CHOICES = ["small", "medium", "large", "settings", "popup", "refund_only", "return_and_refund",
            "accept", "reject", "buyer", "merchant", "upheld", "rejected", "automated", "human",
            "Small", ""]

# Strings around every string rule: empty, control characters, a final newline, non-ASCII
# letters, lengths at and over 128, 256 and 2,000.
_texts = st.one_of(
    st.sampled_from(["m1", "e-1", "l 1", "", "a\n", "a\x1f", "a\x7f", "价格", "é", "x" * 128,
                     "x" * 129, "y" * 256, "y" * 257, "z" * 2000, "z" * 2001, *_CHOICES]),
    st.text(max_size=12),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1,
            max_size=20),
)
_floats = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 0.5, 1.5, -1.0, 1e-300, 5e-324,
                                     math.inf, -math.inf, math.nan, 1e308]),
                    st.floats(allow_nan=True, allow_infinity=True))


def _times() -> st.SearchStrategy[str]:
    def text(year: int, month: int, day: int, hour: int, minute: int, second: int, sep: str,
             fraction: str, zone: str) -> str:
        return (f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}"
                f"{fraction}{zone}")

    zones = st.one_of(st.sampled_from(["Z", "z", "+08:00", "-05:30", "+00:00", "-00:00",
                                       "+23:59", "+24:00", "-23:60", "+14:00", ""]),
                      st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
                                st.sampled_from("+-"), st.integers(0, 30), st.integers(0, 70)))
    fractions = st.one_of(st.just(""), st.builds(lambda n: "." + "123456789"[:n],
                                                 st.integers(1, 10)),
                          st.builds(lambda d: f".{d}", st.integers(0, 10**9)))
    formed = st.builds(text, st.sampled_from([1, 1969, 1970, 1971, 2024, 9998, 9999]) |
                       st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32),
                       st.integers(0, 25), st.integers(0, 61), st.integers(0, 61),
                       st.sampled_from(["T", "t", " ", "_"]), fractions, zones)
    return st.one_of(formed, st.sampled_from(["2024-07-01T09:30:00+08:00", "2024-02-29T12:00:00Z",
                                              "2023-02-29T12:00:00Z", "2024-07-01T09:30:00",
                                              "2024-07-01", "", "not a time"]), _texts)


_IDENT = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                max_size=40)


def _valid_time(draw: Any) -> str:
    second = draw(st.integers(0, 59))
    fraction = draw(st.sampled_from(["", ".5", ".123", ".123456"]))
    zone = draw(st.sampled_from(["Z", "+08:00", "-05:30", "+00:00"]))
    return (f"{draw(st.integers(1972, 9997)):04d}-{draw(st.integers(1, 12)):02d}-"
            f"{draw(st.integers(1, 28)):02d}T{draw(st.integers(0, 23)):02d}:"
            f"{draw(st.integers(0, 59)):02d}:{second:02d}{fraction}{zone}")


def _valid_value(draw: Any, name: str, field: Any) -> Any:
    if field.type == field.TYPE_STRING:
        return draw(_IDENT)
    if field.type == field.TYPE_DOUBLE:
        return draw(st.floats(0.0, 1.0)) if name == "quality" \
            else draw(st.floats(min_value=0.01, max_value=1e6))
    if field.type == field.TYPE_BOOL:
        return draw(st.booleans())
    return draw(st.integers(1, 1000))


def _odd_value(draw: Any, field: Any) -> Any:
    if field.type == field.TYPE_STRING:
        return draw(st.one_of(st.sampled_from(_CHOICES), _texts))
    if field.type == field.TYPE_DOUBLE:
        return draw(_floats)
    if field.type == field.TYPE_BOOL:
        return draw(st.booleans())
    if field.type == field.TYPE_INT32:
        return draw(st.one_of(st.integers(-2, 3), st.integers(-(2**31), 2**31 - 1)))
    return draw(st.one_of(st.integers(-2, 3), st.integers(-(2**63), 2**63 - 1)))


@st.composite
def _events(draw: Any, odd: float = 0.2) -> events_pb2.Event:
    """Events whose every part is valid or, with probability `odd`, anything: mostly events that
    are valid or wrong in one place, where the two validators could disagree."""

    def is_odd() -> bool:
        return draw(st.integers(0, 99)) < odd * 100

    message = events_pb2.Event(
        event_id=draw(_texts) if is_odd() else draw(_IDENT),
        merchant_id=draw(_texts) if is_odd() else draw(_IDENT),
        event_time=draw(_times()) if is_odd() else _valid_time(draw))
    kind = draw(st.sampled_from(sorted(_PAYLOAD_FIELDS)))
    body = getattr(message, kind)
    body.SetInParent()
    for name, field in _FIELD_TYPES[kind].items():
        if field.has_presence and not draw(st.booleans()):
            continue
        valid_choices = _LITERALS.get((kind, name))
        if is_odd():
            value = _odd_value(draw, field)
        elif valid_choices is not None:
            value = draw(st.sampled_from(valid_choices))
        else:
            value = _valid_value(draw, name, field)
        setattr(body, name, value)
    return message


def _literals() -> dict[tuple[str, str], tuple[str, ...]]:
    from typing import Literal, get_args, get_origin

    out = {}
    for kind, cls in EVENT_CLASSES.items():
        for name, info in cls.model_fields["payload"].annotation.model_fields.items():
            if get_origin(info.annotation) is Literal:
                out[(kind, name)] = get_args(info.annotation)
    return out


_LITERALS = _literals()


def _by_pydantic(message: events_pb2.Event) -> Event | Rejected:
    raw = _raw_event(message, 0, "events")
    return raw if isinstance(raw, Rejected) else _validated(message.event_id, raw, 0, "events")


def _fast(message: events_pb2.Event) -> Event | None:
    kind = message.WhichOneof("payload")
    return _ACCEPTORS[kind](message.event_id, message.merchant_id, message.event_time,
                            getattr(message, kind))


def _assert_same(fast: Event, slow: Event) -> None:
    assert type(fast) is type(slow)
    assert fast == slow
    assert fast.__dict__.keys() == slow.__dict__.keys()
    assert fast.time == slow.time  # the same float, not merely close
    assert fast.model_fields_set == slow.model_fields_set
    assert type(fast.payload) is type(slow.payload)
    assert list(fast.payload.__dict__.items()) == list(slow.payload.__dict__.items())
    assert fast.payload.model_fields_set == slow.payload.model_fields_set
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.__pydantic_extra__ == slow.__pydantic_extra__
    assert fast.__pydantic_private__ == slow.__pydantic_private__


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_events())
@example(events_pb2.Event(event_id="e", merchant_id="m", event_time="2024-07-01T09:30:00.1234Z",
                          order_shipped=events_pb2.OrderShipped(order_id="o")))
@example(events_pb2.Event(event_id="e", merchant_id="m", event_time="1970-12-31T23:59:59-01:00",
                          order_shipped=events_pb2.OrderShipped(order_id="o")))
@example(events_pb2.Event(event_id="e", merchant_id="m", event_time="2024-07-01T09:30:60Z",
                          order_shipped=events_pb2.OrderShipped(order_id="o")))
def test_the_fast_path_accepts_only_what_pydantic_accepts_and_the_same(message: Any) -> None:
    fast = _fast(message)
    slow = _by_pydantic(message)
    if fast is None:
        return
    assert not isinstance(slow, Rejected), slow
    _assert_same(fast, slow)
    # and the service's entry point answers with that event
    _assert_same(event_from_proto(message, 0), slow)  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(_events(odd=0.0))
def test_the_fast_path_takes_the_common_forms_of_valid_events(message: Any) -> None:
    slow = _by_pydantic(message)
    assert not isinstance(slow, Rejected), slow
    fast = _fast(message)
    assert fast is not None
    _assert_same(fast, slow)


def test_the_fast_path_takes_every_generated_event() -> None:
    from service.api.rulebook.v1 import events_pb2 as pb

    for e in generate_events(20, 3, seed=7):
        message = pb.Event(event_id=e["event_id"], merchant_id=e["merchant_id"],
                           event_time=e["event_time"])
        body = getattr(message, e["type"])
        body.SetInParent()
        for k, v in e["payload"].items():
            setattr(body, k, v)
        fast = _fast(message)
        slow = _by_pydantic(message)
        if e["type"] == "merchant_registered":  # names and regions in Chinese: pydantic's
            assert not isinstance(slow, Rejected)
            continue
        assert fast is not None, e
        _assert_same(fast, slow)


def test_invalid_events_still_get_pydantics_errors_with_request_paths() -> None:
    message = events_pb2.Event(event_id="e", merchant_id="m", event_time="2024-07-01T09:30:00",
                               listing_updated=events_pb2.ListingUpdated(
                                   listing_id="l", product_group="g", price=-1.0, quality=0.5))
    out = event_from_proto(message, 3)
    assert isinstance(out, Rejected)
    assert {v.path for v in out.errors} == {"events[3].event_time",
                                           "events[3].listing_updated.price"}


def test_a_constraint_the_fast_path_cannot_check_fails_at_import_not_silently() -> None:
    with pytest.raises(TypeError, match="cannot check"):
        _check_source("v", Annotated[float, MultipleOf(2)], (), {})
    with pytest.raises(TypeError, match="cannot check"):
        _check_source("v", list[int], (), {})


def test_every_event_type_has_an_acceptor() -> None:
    assert set(_ACCEPTORS) == set(EVENT_CLASSES)
    # a source with a field the model does not know is never accepted (pydantic forbids it)
    extra = compile_acceptor("order_shipped", [("order_id", False), ("surprise", False)])
    assert extra("e", "m", "2024-07-01T09:30:00Z",
                 events_pb2.OrderShipped(order_id="o")) is None
