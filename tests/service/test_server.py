"""The gRPC service in-process: evaluation, shadow sets, errors, limits, health, admin calls."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from service.api.rulebook.v1 import (
    evaluation_service_pb2 as ev_pb,
)
from service.api.rulebook.v1 import (
    evaluation_service_pb2_grpc as ev_grpc,
)
from service.api.rulebook.v1 import events_pb2
from service.api.rulebook.v1 import (
    rulebook_service_pb2 as rb_pb,
)
from service.api.rulebook.v1 import (
    rulebook_service_pb2_grpc as rb_grpc,
)
from service.server import Application, ServerConfig

BOOKS = Path(__file__).resolve().parents[2] / "rules" / "books"
T0 = "2024-07-01T09:00:00+08:00"


def at(hours: float) -> str:
    import datetime as dt

    return (dt.datetime.fromisoformat(T0) + dt.timedelta(hours=hours)).isoformat()


def refund_story(prefix: str = "", merchant: str = "m1") -> list[events_pb2.Event]:
    E = events_pb2
    return [
        E.Event(event_id=f"{prefix}l", merchant_id=merchant, event_time=at(0),
                listing_updated=E.ListingUpdated(listing_id="millet", product_group="grain",
                                                 price=39.9, unit_cost=30, quality=0.9)),
        E.Event(event_id=f"{prefix}o", merchant_id=merchant, event_time=at(0),
                order_placed=E.OrderPlaced(order_id="o1", listing_id="millet", quantity=1,
                                           amount=39.9, shipping_cost=4)),
        E.Event(event_id=f"{prefix}s", merchant_id=merchant, event_time=at(1),
                order_shipped=E.OrderShipped(order_id="o1")),
        E.Event(event_id=f"{prefix}r", merchant_id=merchant, event_time=at(2),
                refund_requested=E.RefundRequested(order_id="o1", kind="refund_only",
                                                   evidence_valid=False)),
        E.Event(event_id=f"{prefix}later", merchant_id=merchant, event_time=at(40),
                ad_click_charged=E.AdClickCharged(clicks=1)),
    ]


@pytest.fixture()
def app(tmp_path):
    config = ServerConfig(rulebooks=str(BOOKS / "lowprice-2024"),
                          shadow=str(BOOKS / "reformed-2025"), port=0,
                          state=str(tmp_path / "state.sqlite"), admin_token="s3cret",
                          max_batch=100, grace_seconds=2)
    application = Application(config)
    application.start()
    yield application
    application.stop(grace=1)


@pytest.fixture()
def channel(app):
    with grpc.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        yield ch


def test_evaluate_answers_each_event_with_primary_and_shadow_decisions(channel) -> None:
    stub = ev_grpc.EvaluationServiceStub(channel)
    reply = stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()), timeout=30)
    assert [r.event_id for r in reply.results] == ["l", "o", "s", "r", "later"]
    later = reply.results[4]
    [auto] = [d for d in later.decisions if d.trigger == "deadline"]
    assert (auto.rulebook_set, auto.rule, auto.event_id) == ("lowprice-2024",
                                                             "refund_only_shipped", "r")
    assert auto.burden.merchant == pytest.approx(34.17)
    assert auto.effects[0].amounts["recall_fee"] == pytest.approx(0.17)
    assert {d.rulebook_set for d in later.shadow_decisions} == {"reformed-2025"}
    assert all(d.rule != "refund_only_shipped" for d in later.shadow_decisions)


def test_resent_events_are_answered_from_the_journal(channel) -> None:
    stub = ev_grpc.EvaluationServiceStub(channel)
    first = stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()), timeout=30)
    again = stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()), timeout=30)
    assert all(r.duplicate for r in again.results)
    assert [list(r.decisions) for r in again.results] == [list(r.decisions)
                                                          for r in first.results]


def test_invalid_events_get_field_errors_and_the_rest_is_evaluated(channel) -> None:
    stub = ev_grpc.EvaluationServiceStub(channel)
    events = refund_story()
    events[0].listing_updated.price = -1
    events[2].event_time = "2024-07-01 10:00"
    reply = stub.Evaluate(ev_pb.EvaluateRequest(events=events), timeout=30)
    assert [v.field for v in reply.results[0].errors] == ["events[0].listing_updated.price"]
    assert [v.field for v in reply.results[2].errors] == ["events[2].event_time"]
    assert reply.results[1].decisions and not reply.results[1].errors


def test_malformed_request_is_invalid_argument_with_bad_request_details(channel) -> None:
    stub = ev_grpc.EvaluationServiceStub(channel)
    too_many = [events_pb2.Event(event_id=f"e{i}", merchant_id="m", event_time=T0,
                                 order_shipped=events_pb2.OrderShipped(order_id="o"))
                for i in range(101)]
    for events in ([], too_many):
        with pytest.raises(grpc.RpcError) as info:
            stub.Evaluate(ev_pb.EvaluateRequest(events=events), timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(info.value)
        bad = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad)
        assert bad.field_violations[0].field == "events"


def _bad_request(error: grpc.RpcError) -> error_details_pb2.BadRequest:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    status = rpc_status.from_call(error)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return bad


#: An Event whose event_id (field 1, a string) holds bytes that are not UTF-8, in an
#: EvaluateRequest's events (field 1): protobuf refuses to decode it.
NOT_UTF8 = bytes([0x0A, 4, 0x0A, 2, 0xFF, 0xFE])
TRUNCATED = ev_pb.EvaluateRequest(events=refund_story()).SerializeToString()[:-7]


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff", NOT_UTF8, TRUNCATED],
                         ids=["garbage", "not-utf8", "truncated"])
def test_bytes_that_do_not_decode_are_invalid_argument_not_internal(app, channel,
                                                                   payload) -> None:
    raw = channel.unary_unary("/rulebook.v1.EvaluationService/Evaluate")
    with pytest.raises(grpc.RpcError) as info:
        raw(payload, timeout=30)
    bad = _bad_request(info.value)
    assert bad.field_violations[0].field == "(request)"
    assert "do not decode" in bad.field_violations[0].description
    assert "EvaluationService/Evaluate" in info.value.details()
    assert _rpc_count(app, "Evaluate", "INVALID_ARGUMENT") == 1
    assert _rpc_count(app, "Evaluate", "INTERNAL") == 0
    # The service goes on: a well-formed request right after is answered.
    stub = ev_grpc.EvaluationServiceStub(channel)
    assert len(stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()), timeout=30)
               .results) == 5


def test_a_stream_keeps_what_it_accepted_before_bytes_that_do_not_decode(app, channel) -> None:
    raw = channel.stream_stream("/rulebook.v1.EvaluationService/StreamEvaluate")
    good = ev_pb.StreamEvaluateRequest(batch_id="b0", events=refund_story("s-"))
    replies = raw(iter([good.SerializeToString(), b"\xff\xff\xff"]), timeout=60)
    first = ev_pb.StreamEvaluateResponse.FromString(next(replies))
    assert first.batch_id == "b0" and len(first.results) == 5
    with pytest.raises(grpc.RpcError) as info:
        next(replies)
    assert _bad_request(info.value).field_violations[0].field == "(request)"
    assert _rpc_count(app, "StreamEvaluate", "INVALID_ARGUMENT") == 1
    # The first batch was committed: resent, it is answered from the journal.
    stub = ev_grpc.EvaluationServiceStub(channel)
    again = stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story("s-")), timeout=30)
    assert [r.event_id for r in again.results] == [r.event_id for r in first.results]
    assert all(r.duplicate for r in again.results)


def test_every_service_refuses_bytes_that_do_not_decode(app, channel) -> None:
    for method, stream in (("/rulebook.v1.RulebookService/ValidateRulebook", False),
                           ("/rulebook.v1.SimulationService/Simulate", True),
                           ("/rulebook.v1.AuditService/AuditRulebook", False),
                           ("/grpc.health.v1.Health/Check", False)):
        call = (channel.unary_stream if stream else channel.unary_unary)(method)
        with pytest.raises(grpc.RpcError) as info:
            result = call(b"\xff\xff\xff", timeout=30)
            if stream:
                list(result)
        assert _bad_request(info.value).field_violations[0].field == "(request)", method
    # Counted where the service's calls are counted: not health (nor reflection).
    assert _rpc_count(app, "ValidateRulebook", "INVALID_ARGUMENT") == 1
    assert _rpc_count(app, "Check", "INVALID_ARGUMENT") == 0


def test_stream_evaluate_answers_batches_in_order(channel) -> None:
    stub = ev_grpc.EvaluationServiceStub(channel)
    batches = [ev_pb.StreamEvaluateRequest(batch_id=f"b{i}", events=refund_story(f"{i}-",
                                                                               f"m{i}"))
               for i in range(5)]
    replies = list(stub.StreamEvaluate(iter(batches), timeout=60))
    assert [r.batch_id for r in replies] == [f"b{i}" for i in range(5)]
    assert all(len(r.results) == 5 for r in replies)


def test_health_reflection_and_rulebook_listing(app, channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "rulebook.v1.EvaluationService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == \
            health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    [answer] = list(reflect.ServerReflectionInfo(iter([
        reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in answer.list_services_response.service}
    assert {"rulebook.v1.EvaluationService", "rulebook.v1.RulebookService"} <= names
    listing = rb_grpc.RulebookServiceStub(channel).ListRulebookSets(
        rb_pb.ListRulebookSetsRequest())
    assert [(s.id, s.role) for s in listing.sets] == [
        ("lowprice-2024", rb_pb.SET_ROLE_PRIMARY), ("reformed-2025", rb_pb.SET_ROLE_SHADOW)]
    assert all(len(s.rulebooks) == 5 and s.revision for s in listing.sets)


def test_get_and_validate_rulebooks(channel) -> None:
    stub = rb_grpc.RulebookServiceStub(channel)
    got = stub.GetRulebook(rb_pb.GetRulebookRequest(family="refund"))
    assert got.info.id == "lowprice-2024/refund" and "36h" in got.yaml_text
    assert got.parsed["parameters"]["recall_fee"]["value"] == pytest.approx(0.17)
    broken = got.yaml_text.replace("order.shipped", "order.shiped")
    answer = stub.ValidateRulebook(rb_pb.ValidateRulebookRequest(yaml_text=broken,
                                                                 file_name="refund.yaml"))
    assert not answer.valid
    assert len(answer.violations) == got.yaml_text.count("order.shipped") == 2
    for v in answer.violations:
        assert "order.shiped" in v.message and v.line > 0 and v.column > 0
        assert broken.splitlines()[v.line - 1][v.column - 1:].startswith("order.shiped")
    with pytest.raises(grpc.RpcError) as info:
        stub.GetRulebook(rb_pb.GetRulebookRequest(family="pricing"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_loading_a_set_needs_the_admin_token_and_swaps_between_batches(channel) -> None:
    stub = rb_grpc.RulebookServiceStub(channel)
    files = {p.name: p.read_text() for p in (BOOKS / "reformed-2025").glob("*.yaml")}
    request = rb_pb.LoadRulebookSetRequest(role=rb_pb.SET_ROLE_PRIMARY, set_id="reformed-2025",
                                           files=files)
    for metadata, code in ((None, grpc.StatusCode.UNAUTHENTICATED),
                           ((("authorization", "Bearer wrong"),), grpc.StatusCode.UNAUTHENTICATED)):
        with pytest.raises(grpc.RpcError) as info:
            stub.LoadRulebookSet(request, metadata=metadata)
        assert info.value.code() == code
    loaded = stub.LoadRulebookSet(request, metadata=(("authorization", "Bearer s3cret"),))
    assert loaded.set.id == "reformed-2025"
    reply = ev_grpc.EvaluationServiceStub(channel).Evaluate(
        ev_pb.EvaluateRequest(events=refund_story("after-")), timeout=30)
    assert {d.rulebook_set for r in reply.results for d in r.decisions} == {"reformed-2025"}
    broken = dict(files, **{"refund.yaml": files["refund.yaml"].replace("when: true", "when: 3")})
    with pytest.raises(grpc.RpcError) as info:
        stub.LoadRulebookSet(rb_pb.LoadRulebookSetRequest(set_id="x", files=broken),
                             metadata=(("authorization", "Bearer s3cret"),))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(("role", "set_id", "field"), [
    (99, "reformed-2025", "role"),  # (not in the enum: it used to replace the primary set)
    (rb_pb.SET_ROLE_SHADOW, "a\x00b", "set_id"), (rb_pb.SET_ROLE_SHADOW, "../etc", "set_id"),
    (rb_pb.SET_ROLE_SHADOW, "x" * 65, "set_id"), (rb_pb.SET_ROLE_SHADOW, "A b", "set_id"),
])
def test_loading_a_set_with_an_unknown_role_or_a_bad_name_is_refused(
        channel, role: int, set_id: str, field: str) -> None:
    stub = rb_grpc.RulebookServiceStub(channel)
    before = stub.ListRulebookSets(rb_pb.ListRulebookSetsRequest())
    files = {p.name: p.read_text() for p in (BOOKS / "reformed-2025").glob("*.yaml")}
    with pytest.raises(grpc.RpcError) as info:
        stub.LoadRulebookSet(rb_pb.LoadRulebookSetRequest(role=role, set_id=set_id, files=files),
                             metadata=(("authorization", "Bearer s3cret"),))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(info.value)
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    assert bad.field_violations[0].field == field
    assert stub.ListRulebookSets(rb_pb.ListRulebookSetsRequest()) == before
    with pytest.raises(grpc.RpcError) as info:
        stub.GetRulebook(rb_pb.GetRulebookRequest(role=77, family="refund"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_loading_a_set_of_no_files_names_the_files_field(channel) -> None:
    stub = rb_grpc.RulebookServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.LoadRulebookSet(rb_pb.LoadRulebookSetRequest(set_id="empty-set"),
                             metadata=(("authorization", "Bearer s3cret"),))
    assert [(v.field, v.description) for v in _bad_request(info.value).field_violations] == [
        ("files", "send the set's rulebook files: file name to YAML text")]


def test_a_bad_batch_in_a_stream_is_named_by_its_id_and_place(channel) -> None:
    stub = ev_grpc.EvaluationServiceStub(channel)
    batches = [ev_pb.StreamEvaluateRequest(batch_id="b0", events=refund_story("n-")),
               ev_pb.StreamEvaluateRequest(batch_id="b1")]
    replies = stub.StreamEvaluate(iter(batches), timeout=60)
    assert next(replies).batch_id == "b0"
    with pytest.raises(grpc.RpcError) as info:
        next(replies)
    assert _bad_request(info.value).field_violations[0].field == "events"
    assert info.value.details() == ("batch 'b1' (message 2 of the stream): a batch needs at "
                                    "least one event")


def test_a_past_deadline_is_honoured(app, channel) -> None:
    stub = ev_grpc.EvaluationServiceStub(channel)
    app.ingestor._lock.acquire()  # an earlier batch holds the engine
    try:
        with pytest.raises(grpc.RpcError) as info:
            stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()), timeout=0.5)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        app.ingestor._lock.release()
    assert app.ingestor.journal_size() == 0


def test_over_the_in_flight_limit_is_resource_exhausted(tmp_path) -> None:
    config = ServerConfig(rulebooks=str(BOOKS / "lowprice-2024"), port=0,
                          state=str(tmp_path / "s.sqlite"), max_in_flight=1, workers=4)
    application = Application(config)
    application.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{application.port}") as ch:
            stub = ev_grpc.EvaluationServiceStub(ch)
            application.ingestor._lock.acquire()
            results: list = []
            first = threading.Thread(target=lambda: results.append(
                stub.Evaluate.future(ev_pb.EvaluateRequest(events=refund_story()),
                                     timeout=20)))
            first.start()
            first.join()
            import time

            time.sleep(0.5)  # the first call is now in flight, waiting for the engine
            with pytest.raises(grpc.RpcError) as info:
                stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story("x")), timeout=20)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            application.ingestor._lock.release()
            assert len(results[0].result().results) == 5
    finally:
        application.stop(grace=1)


def test_serving_collects_garbage_less_often_and_freezes_startup_objects() -> None:
    import gc

    from service.server import GC_YOUNG_THRESHOLD, _tune_gc

    before = gc.get_threshold()
    try:
        _tune_gc()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_evaluate_replies_are_wire_compatible_with_the_generated_messages(app, channel) -> None:
    # The service sends pre-serialised bytes; a client built from the .proto reads them as usual,
    # and the same event resent is the same answer plus the duplicate flag.
    stub = ev_grpc.EvaluationServiceStub(channel)
    events = refund_story("wire-")
    first = stub.Evaluate(ev_pb.EvaluateRequest(events=events), timeout=30)
    again = stub.Evaluate(ev_pb.EvaluateRequest(events=events[1:2]), timeout=30)
    assert [r.index for r in first.results] == list(range(len(events)))
    [resent] = again.results
    assert resent.duplicate and resent.index == 0
    assert list(resent.decisions) == list(first.results[1].decisions)


def _rpc_count(app: Application, method: str, code: str) -> float:
    return app.metrics.registry.get_sample_value(
        "rulebook_rpc_duration_seconds_count", {"method": method, "code": code}) or 0.0


def test_a_store_failure_is_unavailable_and_the_batch_can_be_resent(app, channel,
                                                                      monkeypatch) -> None:
    import sqlite3

    stub = ev_grpc.EvaluationServiceStub(channel)
    first = stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()[:2]), timeout=30)
    real_commit = app.ingestor._commit

    def disk_full(rows):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(app.ingestor, "_commit", disk_full)
    with pytest.raises(grpc.RpcError) as failed:
        stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()[2:]), timeout=30)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "disk is full" in failed.value.details()
    assert _rpc_count(app, "Evaluate", "UNAVAILABLE") == 1
    monkeypatch.setattr(app.ingestor, "_commit", real_commit)
    # Nothing of the failed batch was kept, nothing before it was lost: resending the whole
    # story answers the first two events from the journal and evaluates the rest afresh.
    again = stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()), timeout=30)
    assert [r.duplicate for r in again.results] == [True, True, False, False, False]
    assert [list(r.decisions) for r in again.results[:2]] == [list(r.decisions)
                                                              for r in first.results]
    [auto] = [d for d in again.results[4].decisions if d.trigger == "deadline"]
    assert auto.burden.merchant == pytest.approx(34.17)  # the story's full refund, counted once
    assert app.ingestor.journal_size() == 5


def test_a_failure_inside_the_service_is_internal_not_unknown(app, channel,
                                                             monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.ingestor, "ingest", broken)
    stub = ev_grpc.EvaluationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as unary:
        stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()), timeout=30)
    assert unary.value.code() == grpc.StatusCode.INTERNAL
    assert "RuntimeError: a bug" in unary.value.details()
    with pytest.raises(grpc.RpcError) as streamed:
        list(stub.StreamEvaluate(iter([ev_pb.StreamEvaluateRequest(
            batch_id="b", events=refund_story())]), timeout=30))
    assert streamed.value.code() == grpc.StatusCode.INTERNAL
    assert _rpc_count(app, "Evaluate", "INTERNAL") == 1
    assert _rpc_count(app, "StreamEvaluate", "INTERNAL") == 1
    # A deadline the service sets itself is still reported as such, not as INTERNAL.
    monkeypatch.undo()
    with pytest.raises(grpc.RpcError) as late:
        stub.Evaluate(ev_pb.EvaluateRequest(events=refund_story()), timeout=0.000001)
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert _rpc_count(app, "Evaluate", "INTERNAL") == 1
