"""Between the gRPC messages and the engine's plain data.

Events arrive as protobuf messages whose payload is a `oneof`; they become the same typed events
the JSON Lines reader produces, so one validator (service.events) decides what is valid for every
entry point. Field paths in errors are rewritten to the request's own shape
(`events[3].listing_updated.price`), which is what `google.rpc.BadRequest` clients expect.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from service.api.rulebook.v1 import decisions_pb2, evaluation_service_pb2, events_pb2
from service.events import Event, EventError, FieldViolation, parse_event
from service.ingest import EventOutcome, Rejected

#: For each payload type: (field name, has explicit presence) in declaration order.
_PAYLOAD_FIELDS: dict[str, list[tuple[str, bool]]] = {}
for _oneof_field in events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields:
    _PAYLOAD_FIELDS[_oneof_field.name] = [
        (f.name, f.has_presence) for f in _oneof_field.message_type.fields
    ]


def event_from_proto(message: events_pb2.Event, index: int, prefix: str = "events") \
        -> Event | Rejected:
    """A validated event, or the reasons it is not one, with paths like events[3].x.y."""
    here = f"{prefix}[{index}]"
    kind = message.WhichOneof("payload")
    if kind is None:
        return Rejected(message.event_id, [FieldViolation(
            f"{here}.payload", "an event needs a payload; set one of "
            + ", ".join(sorted(_PAYLOAD_FIELDS)))])
    payload_message = getattr(message, kind)
    payload: dict[str, Any] = {}
    for name, has_presence in _PAYLOAD_FIELDS[kind]:
        if has_presence and not payload_message.HasField(name):
            continue
        payload[name] = getattr(payload_message, name)
    raw = {
        "event_id": message.event_id,
        "type": kind,
        "merchant_id": message.merchant_id,
        "event_time": message.event_time,
        "payload": payload,
    }
    try:
        return parse_event(raw)
    except EventError as exc:
        return Rejected(message.event_id, [
            FieldViolation(_request_path(here, kind, v.path), v.message) for v in exc.errors
        ])


def _request_path(here: str, kind: str, path: str) -> str:
    if path.startswith("payload."):
        return f"{here}.{kind}.{path[len('payload.'):]}"
    if path == "payload":
        return f"{here}.{kind}"
    return f"{here}.{path}" if path else here


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if data:
        s.update(_plain(data))
    return s


def _plain(value: Any) -> Any:
    """Struct holds JSON-like values only: tuples become lists, other objects text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def decision_to_proto(d: dict[str, Any]) -> decisions_pb2.Decision:
    burden = d.get("burden") or {}
    out = decisions_pb2.Decision(
        decision_id=d["decision_id"],
        event_id=d["event_id"],
        event_type=d["event_type"],
        merchant_id=d["merchant_id"],
        event_time=d["event_time"],
        rulebook_set=d.get("set") or "",
        rulebook=d.get("rulebook") or "",
        revision=d.get("revision") or "",
        rule=d.get("rule") or "",
        trigger=d["trigger"],
        outcome=d["outcome"],
        burden=decisions_pb2.BurdenSplit(
            merchant=burden.get("merchant", 0.0), platform=burden.get("platform", 0.0),
            buyer=burden.get("buyer", 0.0)),
        cancelled_deadlines=d.get("cancelled_deadlines") or [],
    )
    for e in d.get("effects") or []:
        out.effects.append(decisions_pb2.EffectOutcome(
            effect=e["effect"], args=_struct(e.get("args") or {}),
            amounts=_struct(e.get("amounts") or {}),
            burden=[decisions_pb2.BurdenShare(**b) for b in e.get("burden") or []],
            skipped=e.get("skipped") or "",
        ))
    if d.get("explanation"):
        out.explanation.CopyFrom(_struct(d["explanation"]))
    deadline = d.get("deadline")
    if deadline:
        out.deadline.CopyFrom(decisions_pb2.PendingDeadline(
            id=deadline["id"], due=deadline["due"], unless=deadline["unless"],
            key=deadline["key"]))
    return out


def outcome_to_proto(o: EventOutcome) -> evaluation_service_pb2.EventResult:
    return evaluation_service_pb2.EventResult(
        index=o.index,
        event_id=o.event_id,
        decisions=[decision_to_proto(d) for d in o.decisions],
        shadow_decisions=[decision_to_proto(d) for d in o.shadow_decisions],
        errors=[evaluation_service_pb2.FieldViolation(field=v.path, description=v.message)
                for v in o.errors],
        duplicate=o.duplicate,
    )
