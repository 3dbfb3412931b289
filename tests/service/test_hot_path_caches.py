"""The caches on the evaluation path answer exactly what they stand in for.

Each one replaces a computation by a look-up of its earlier result: rounding to 6 places, the
calendar periods of a quarter hour, a Struct entry of the reply writer; and string methods
stand in for a regular expression in the fast validator. A cached answer must be the same value
(of the same type and sign) as the computation's, and every cache stays bounded.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
from zoneinfo import ZoneInfo, available_timezones

from google.protobuf import struct_pb2

from rules import effects
from rules.effects import round6
from service import events
from service.api.rulebook.v1 import events_pb2
from service.apply import _period_starts
from service.convert import _ACCEPTORS, Rejected, _DecisionWriter, event_from_proto


class _Float(float):
    pass


def _same(a: object, b: object) -> bool:
    """Equal values of the same type; floats also of the same sign, and NaN is NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def test_round6_is_round_to_six_places_hit_or_miss() -> None:
    rng = random.Random(7)
    values: list[object] = [0.0, -0.0, 1e-7, -1e-7, 0.1 + 0.2, 2.5e-6, 1e300, -1e300, math.inf,
                            -math.inf, math.nan, 5e-324, 1, -3, True, False, _Float(1.23456789)]
    values += [rng.uniform(-1e4, 1e4) for _ in range(2000)]
    values += [round(rng.uniform(0, 100), rng.randrange(0, 9)) for _ in range(2000)]
    for _ in range(2):  # the second pass answers from the cache
        for v in values:
            assert _same(round6(v), round(v, 6)), v  # type: ignore[call-overload]
    # A zero is never cached: 0.0 and -0.0 are equal keys that round to different signs.
    round6(0.0)
    assert math.copysign(1, round6(-0.0)) == -1.0
    # An int is not answered by an equal float's entry.
    round6(7.0)
    assert type(round6(7)) is int


def test_round6_cache_is_bounded() -> None:
    for i in range(effects._ROUNDED_LIMIT * 2):
        round6(i + 0.5)
    assert len(effects._ROUNDED) <= effects._ROUNDED_LIMIT


def _reference_periods(quarter: int, zone: str) -> tuple[str, str, float, float]:
    """The calendar periods as `_period_starts` computed them per quarter hour before."""
    t = dt.datetime.fromtimestamp(quarter * 900, ZoneInfo(zone))
    next_month = (t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
                  + dt.timedelta(days=32)).replace(day=1)
    next_year = t.replace(year=t.year + 1, month=1, day=1, hour=0, minute=0, second=0,
                          microsecond=0)
    return f"{t.year:04d}-{t.month:02d}", f"{t.year:04d}", next_month.timestamp(), \
        next_year.timestamp()


def test_periods_are_worked_out_per_month_with_the_same_answers() -> None:
    rng = random.Random(3)
    zones = sorted(available_timezones())
    for zone in [*rng.sample(zones, 60), "Asia/Shanghai", "UTC", "America/Santiago",
                 "Europe/London", "Australia/Lord_Howe"]:
        quarters = [rng.randrange(0, 4_100_000_000 // 900) for _ in range(300)]
        # every quarter hour of two years, across DST changes and month ends
        start = 1_700_000_000 // 900
        quarters += range(start, start + 2 * 366 * 96, 5)
        for q in quarters:
            assert _period_starts(q, zone) == _reference_periods(q, zone), (q, zone)


def _ascii_strings() -> list[str]:
    rng = random.Random(5)
    singles = [chr(c) for c in range(128)]
    pairs = [a + b for a in singles for b in singles]
    samples = ["".join(rng.choice(singles) for _ in range(rng.randrange(0, 12)))
               for _ in range(20000)]
    return ["", *singles, *pairs, *samples, "id\n", "\nid", "a b", " ", "o-1\x1f"]


def test_the_id_check_holds_exactly_when_the_pattern_fully_matches() -> None:
    """Ids are checked with string methods, not the model's pattern: on ASCII text (the fast
    path's only), they accept exactly what the pattern and the length bounds accept."""
    pattern = events.Ident.__metadata__[0].pattern
    assert pattern in events._ASCII_EQUIVALENTS
    matches = re.compile(pattern).fullmatch
    shipped = _ACCEPTORS["order_shipped"]
    for text in _ascii_strings():
        accepted = shipped("e-1", "m-1", "2024-07-01T09:30:05+08:00",
                           events_pb2.OrderShipped(order_id=text)) is not None
        assert accepted == (len(text) <= 128 and matches(text) is not None), repr(text)


def test_ids_are_checked_without_the_regular_expression() -> None:
    shipped = _ACCEPTORS["order_shipped"]
    assert "_match" not in shipped.__doc__.split("event_time")[0]
    ok = shipped("e-1", "m-1", "2024-07-01T09:30:05+08:00",
                 events_pb2.OrderShipped(order_id="o 1"))
    assert ok is not None and ok.payload.order_id == "o 1"
    for bad in ("", "x" * 129, "a\n", "\x7f", "a\x1fb"):
        assert shipped("e-1", "m-1", "2024-07-01T09:30:05+08:00",
                       events_pb2.OrderShipped(order_id=bad)) is None
        assert isinstance(event_from_proto(events_pb2.Event(
            event_id="e-1", merchant_id="m-1", event_time="2024-07-01T09:30:05+08:00",
            order_shipped=events_pb2.OrderShipped(order_id=bad)), 0), Rejected)


def test_seconds_of_sixty_and_up_are_left_to_pydantic() -> None:
    assert events._fast_epoch("2024-07-01T09:30:59+08:00") is not None
    assert events._fast_epoch("2024-07-01T09:30:60+08:00") is None
    assert events._fast_epoch("2024-07-01T09:30:07Z") == dt.datetime(
        2024, 7, 1, 9, 30, 7, tzinfo=dt.UTC).timestamp()


def test_cached_struct_entries_of_words_are_the_wire_form() -> None:
    data = {"kind": "commission", "reason": "", "decided_by": "platform", "amount": 1.5,
            "long": "w" * 80, "none": None, "flag": True}
    expected = struct_pb2.Struct()
    expected.update(data)
    writer = _DecisionWriter()
    first = writer._struct(data)  # every entry written anew
    assert struct_pb2.Struct.FromString(first) == expected
    for _ in range(2):  # then from the writer's caches: the same bytes
        assert writer._struct(data) == first


def test_blobs_are_bound_as_they_are() -> None:
    import sqlite3

    import service.state  # noqa: F401  (registers the adapter)

    blob = bytes(range(256)) * 3
    assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)](blob) is blob
    db = sqlite3.connect(":memory:")
    assert db.execute("SELECT typeof(?), ?", (blob, blob)).fetchone() == ("blob", blob)
    db.close()


def test_event_time_layouts_are_exactly_what_the_pattern_matches_there() -> None:
    """An ASCII time whose marked bytes are a layout is one the pattern matches; and every time
    the pattern matches without a fraction of a second is in a layout."""
    matches = re.compile(events._RFC3339).fullmatch
    rng = random.Random(9)
    alphabet = "0123456789-:+TtZz .x\n\x80"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.choice((19, 20, 21, 24, 25, 26))))
             for _ in range(50000)]
    for _ in range(5000):
        digits = [str(rng.randrange(10)) for _ in range(18)]
        body = "{}{}{}{}-{}{}-{}{}{}{}{}:{}{}:{}{}".format(*digits[:8], rng.choice("Tt x"),
                                                         *digits[8:14])
        texts += [body + rng.choice(["Z", "z", "", "+08:00", "-05:30", "+0800", ".5Z", "Zz"]),
                  body.replace("-", rng.choice("-/"), 1) + "Z", body + "+1:00"]
    for text in texts:
        if not text.isascii():
            continue
        in_layout = text.encode().translate(events._DIGIT_MARKS) in events._TIME_LAYOUTS
        matched = matches(text) is not None
        assert not in_layout or matched, repr(text)
        assert in_layout or not matched or "." in text, repr(text)
