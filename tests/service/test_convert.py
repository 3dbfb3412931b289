"""The reply and journal encoding: wire bytes written by hand must be what protobuf would write."""

from __future__ import annotations

import pytest

from service.api.rulebook.v1 import evaluation_service_pb2 as ev_pb
from service.convert import (
    decision_to_proto,
    evaluate_response_wire,
    legacy_result_body,
    rejected_wire,
    result_body,
    result_wire,
    stream_response_wire,
)
from service.decision import Decision, EffectOutcome
from service.events import FieldViolation


class _Opaque:
    def __str__(self) -> str:
        return "opaque thing"


def _decisions() -> list[Decision]:
    long_text = "价格" * 100  # multi-byte characters and a length over 127 bytes
    applied = Decision(
        decision_id="d-1", event_id="e-1", event_type="refund_requested", merchant_id="m-é",
        event_time="2024-07-01T00:00:00+08:00", rulebook="lowprice-2024/refund",
        revision="abc", rule="refund_only_shipped", trigger="event", outcome="applied",
        set_id="lowprice-2024",
        effects=[
            EffectOutcome("grant_refund", {"decided_by": "platform", "with_return": False},
                          {"refund_amount": 599.0, "product_cost": 0.0, "decided_by": None},
                          [{"party": "merchant", "category": "refund", "amount": 12.5},
                           {"party": "platform", "category": "refund", "amount": 0.0}]),
            EffectOutcome("set_price", {"price": -3}, {}, [], skipped="no listing is known"),
        ],
        explanation={"event.kind": long_text, "order.shipped": True, "n": 3, "big": 2**60,
                     "nested": {"a": [1, "x", None, (2.5, False)], "b": {}},
                     "odd": _Opaque(), 7: "int key"},
        deadline={"id": '["refund","r","m",""]', "due": "2024-07-02T12:00:00+08:00",
                  "unless": ["merchant_responded", "platform_intervened"], "key": "order"},
        cancelled_deadlines=["a", "b" * 200],
    )
    nothing = Decision(
        decision_id="d-2", event_id="e-1", event_type="refund_requested", merchant_id="m-é",
        event_time="2024-07-01T00:00:00+08:00", rulebook=None, revision="rev", rule=None,
        trigger="event", outcome="no_rule_applied", set_id=None)
    return [applied, nothing]


def test_result_body_is_what_protobuf_serialises() -> None:
    primary = _decisions()
    shadow = _decisions()[1:]
    expected = ev_pb.EventResult(
        event_id="e-1", decisions=[decision_to_proto(d) for d in primary],
        shadow_decisions=[decision_to_proto(d) for d in shadow])
    body = result_body("e-1", primary, shadow)
    assert ev_pb.EventResult.FromString(body) == expected
    explanation = expected.decisions[0].explanation
    assert explanation["odd"] == "opaque thing" and explanation["7"] == "int key"
    assert expected.decisions[0].HasField("burden") and expected.decisions[1].HasField("burden")
    # Twice, so the cached pieces are used: the same bytes again.
    assert result_body("e-1", primary, shadow) == body


def test_result_wire_adds_index_and_duplicate_flag_to_a_stored_body() -> None:
    body = result_body("e-1", _decisions(), [])
    first = ev_pb.EventResult.FromString(result_wire(0, body, False))
    again = ev_pb.EventResult.FromString(result_wire(300, body, True))
    assert (first.index, first.duplicate) == (0, False)
    assert (again.index, again.duplicate) == (300, True)
    assert again.decisions == first.decisions and len(first.decisions) == 2


def test_responses_hold_the_results_in_order() -> None:
    results = [result_wire(i, result_body(f"e-{i}", _decisions()[1:], []), False)
               for i in range(3)]
    results.append(rejected_wire(3, "bad", [FieldViolation("events[3].x", "must be set")]))
    reply = ev_pb.EvaluateResponse.FromString(evaluate_response_wire(results))
    assert [r.event_id for r in reply.results] == ["e-0", "e-1", "e-2", "bad"]
    assert reply.results[3].errors[0].field == "events[3].x"
    stream = ev_pb.StreamEvaluateResponse.FromString(stream_response_wire("b7", results))
    assert stream.batch_id == "b7" and list(stream.results) == list(reply.results)


@pytest.mark.parametrize("index", [1, 127, 128, 300, 2**31 - 1])
def test_indexes_of_any_size_round_trip(index: int) -> None:
    assert ev_pb.EventResult.FromString(result_wire(index, b"", False)).index == index


def test_a_legacy_journal_row_becomes_the_same_body() -> None:
    primary = _decisions()
    primary[0].explanation = {k: v for k, v in primary[0].explanation.items()
                              if k not in ("odd", 7)}
    dicts = [d.to_dict() for d in primary]
    assert ev_pb.EventResult.FromString(legacy_result_body("e-1", dicts, [])) == \
        ev_pb.EventResult.FromString(result_body("e-1", primary, []))

