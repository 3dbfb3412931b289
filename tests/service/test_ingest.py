"""Durable, idempotent ingestion: acknowledged batches survive, resent events count once."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from rules.loader import load_set
from service.events import FieldViolation, parse_event
from service.generate import generate_events
from service.ingest import PRIMARY, SHADOW, Ingestor, Rejected, burden_totals

BOOKS = Path(__file__).resolve().parents[2] / "rules" / "books"


@pytest.fixture(scope="module")
def sets():
    return load_set(BOOKS / "lowprice-2024"), load_set(BOOKS / "reformed-2025")


@pytest.fixture(scope="module")
def stream():
    events = [parse_event(e) for e in generate_events(25, 4, seed=11)]
    return [events[i:i + 250] for i in range(0, len(events), 250)]


def run_all(path: Path, sets, batches) -> Ingestor:
    ingestor = Ingestor(path, *sets)
    for batch in batches:
        ingestor.ingest(batch)
    return ingestor


def test_resent_events_return_their_original_decisions_and_count_once(tmp_path, sets,
                                                                      stream) -> None:
    ingestor = Ingestor(tmp_path / "a.sqlite", *sets)
    first = ingestor.ingest(stream[0])
    totals = burden_totals(ingestor.store(PRIMARY))
    again = ingestor.ingest(stream[0])
    assert all(o.duplicate for o in again.outcomes)
    assert [o.decisions for o in again.outcomes] == [o.decisions for o in first.outcomes]
    assert [o.shadow_decisions for o in again.outcomes] == \
        [o.shadow_decisions for o in first.outcomes]
    assert again.new_events == [] and again.new_decisions == {PRIMARY: [], SHADOW: []}
    assert burden_totals(ingestor.store(PRIMARY)) == totals
    assert ingestor.journal_size() == len(stream[0])
    ingestor.close()


def test_a_duplicate_inside_one_batch_is_answered_like_the_first(tmp_path, sets,
                                                                 stream) -> None:
    ingestor = Ingestor(tmp_path / "b.sqlite", *sets)
    event = stream[0][0]
    report = ingestor.ingest([event, event])
    first, second = report.outcomes
    assert not first.duplicate and second.duplicate
    assert second.decisions == first.decisions and first.decisions
    assert len(report.new_events) == 1
    ingestor.close()


def test_invalid_items_are_answered_and_the_rest_evaluated(tmp_path, sets, stream) -> None:
    ingestor = Ingestor(tmp_path / "c.sqlite", *sets)
    bad = Rejected("bad-1", [FieldViolation("events[1].listing_updated.price", "must be > 0")])
    report = ingestor.ingest([stream[0][0], bad, stream[0][1]])
    assert [o.errors != [] for o in report.outcomes] == [False, True, False]
    assert report.outcomes[1].event_id == "bad-1" and report.outcomes[1].decisions == []
    assert ingestor.journal_size() == 2
    ingestor.close()


def test_shadow_set_decides_side_by_side(tmp_path, sets, stream) -> None:
    ingestor = Ingestor(tmp_path / "d.sqlite", *sets)
    report = ingestor.ingest(stream[0])
    for out in report.outcomes:
        assert {d.rulebook_set for d in out.decisions} == {"lowprice-2024"}
        assert {d.rulebook_set for d in out.shadow_decisions} == {"reformed-2025"}
    ingestor.close()


def test_a_crash_before_commit_loses_only_the_unacknowledged_batch(tmp_path, sets,
                                                                   stream) -> None:
    reference = run_all(tmp_path / "reference.sqlite", sets, stream)
    expected = burden_totals(reference.store(PRIMARY)), burden_totals(reference.store(SHADOW))
    reference.close()

    path = tmp_path / "crash.sqlite"
    ingestor = Ingestor(path, *sets)
    for batch in stream[:3]:
        ingestor.ingest(batch)

    def crash() -> None:
        raise OSError("disk gone")

    with pytest.raises(OSError):
        ingestor.ingest(stream[3], before_commit=crash)
    # The same process carries on from what committed ...
    ingestor.ingest(stream[3])
    ingestor.close()
    # ... and a restarted one too; resending an acknowledged batch changes nothing.
    restarted = Ingestor(path, *sets)
    assert all(o.duplicate for o in restarted.ingest(stream[3]).outcomes)
    for batch in stream[4:]:
        restarted.ingest(batch)
    assert (burden_totals(restarted.store(PRIMARY)), burden_totals(restarted.store(SHADOW))) \
        == expected
    assert restarted.journal_size() == sum(len(b) for b in stream)
    restarted.close()


def test_replacing_a_set_keeps_state_and_journal(tmp_path, sets, stream) -> None:
    lowprice, reformed = sets
    ingestor = Ingestor(tmp_path / "e.sqlite", lowprice)
    ingestor.ingest(stream[0])
    gmv = sum(m["gmv"] for m in ingestor.store(PRIMARY).merchants())
    ingestor.replace(PRIMARY, reformed)
    assert ingestor.sets()[PRIMARY].id == "reformed-2025"
    report = ingestor.ingest(stream[1])
    assert {d.rulebook_set for o in report.outcomes for d in o.decisions} == {"reformed-2025"}
    assert sum(m["gmv"] for m in ingestor.store(PRIMARY).merchants()) > gmv
    assert all(o.duplicate for o in ingestor.ingest(stream[0]).outcomes)
    ingestor.close()


def test_an_engine_failure_mid_batch_leaves_no_trace(tmp_path, sets, stream, monkeypatch) -> None:
    ingestor = Ingestor(tmp_path / "f.sqlite", *sets)
    engine = ingestor.engines[PRIMARY]
    calls = {"n": 0}
    real = engine.process_one

    def failing(event):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("engine broke")
        return real(event)

    monkeypatch.setattr(engine, "process_one", failing)
    with pytest.raises(RuntimeError):
        ingestor.ingest(stream[0])
    assert burden_totals(ingestor.store(PRIMARY)) == {}
    ingestor.ingest(stream[0])  # resent whole: counted once
    reference = Ingestor(tmp_path / "g.sqlite", *sets)
    reference.ingest(stream[0])
    assert burden_totals(ingestor.store(PRIMARY)) == burden_totals(reference.store(PRIMARY))
    ingestor.close()
    reference.close()


def test_event_times_far_from_now_are_refused_not_crashed_on() -> None:
    from service.events import EventError

    with pytest.raises(EventError) as info:
        parse_event({"event_id": "e", "type": "order_shipped", "merchant_id": "m",
                     "event_time": "9999-06-01T00:00:00+00:00", "payload": {"order_id": "o"}})
    assert info.value.errors[0].path == "event_time"


def test_a_journal_row_with_pickled_decisions_is_still_answered(tmp_path, sets, stream) -> None:
    # Journals written before result bodies were stored hold the decisions as pickled dicts.
    from service.state import encode

    lowprice, _ = sets
    path = tmp_path / "legacy.sqlite"
    ingestor = Ingestor(path, lowprice)
    first = ingestor.ingest(stream[0][:5])
    dicts = [[d.to_dict() for d in first.new_decisions[PRIMARY]
              if d.event_id == out.event_id] for out in first.outcomes]
    ingestor.close()
    db = sqlite3.connect(path)
    with db:
        for out, decisions in zip(first.outcomes, dicts, strict=True):
            db.execute("UPDATE journal SET result = ? WHERE event_id = ?",
                       (encode((decisions, [])), out.event_id))
    db.close()
    reopened = Ingestor(path, lowprice)
    again = reopened.ingest(stream[0][:5])
    assert all(o.duplicate for o in again.outcomes)
    assert [o.decisions for o in again.outcomes] == [o.decisions for o in first.outcomes]
    assert all(o.decisions for o in again.outcomes)
    reopened.close()


def test_the_journal_keeps_each_event_as_it_arrived(tmp_path, sets, stream) -> None:
    from service.api.rulebook.v1 import events_pb2

    lowprice, _ = sets
    path = tmp_path / "journal.sqlite"
    ingestor = Ingestor(path, lowprice)
    first, second = stream[0][0], stream[0][1]
    message = events_pb2.Event(event_id=second.event_id, merchant_id=second.merchant_id,
                               event_time=second.event_time)
    getattr(message, second.type).SetInParent()
    ingestor.ingest([first])
    with pytest.raises(ValueError, match="2 messages for 1 items"):
        ingestor.ingest([second], received=[message, message])
    ingestor.ingest([second], received=[message])
    ingestor.close()
    db = sqlite3.connect(path)
    rows = dict(db.execute("SELECT event_id, event FROM journal"))
    db.close()
    assert json.loads(rows[first.event_id])["event_id"] == first.event_id
    assert events_pb2.Event.FromString(rows[second.event_id]) == message


def test_a_small_order_cache_changes_no_answer_and_no_total(tmp_path, sets, stream) -> None:
    unbounded = Ingestor(tmp_path / "a.sqlite", *sets, max_cached_orders=None)
    bounded = Ingestor(tmp_path / "b.sqlite", *sets, max_cached_orders=40)
    for batch in stream:
        want = [o.result for o in unbounded.ingest(batch).outcomes]
        got = [o.result for o in bounded.ingest(batch).outcomes]
        assert got == want
        for role in (PRIMARY, SHADOW):
            assert bounded.store(role).cached_orders() <= 40
    assert bounded.store(PRIMARY)._orders_complete is False  # eviction really happened
    for role in (PRIMARY, SHADOW):
        assert burden_totals(bounded.store(role)) == burden_totals(unbounded.store(role))
    unbounded.close()
    bounded.close()
