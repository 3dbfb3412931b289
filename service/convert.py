"""Between the gRPC messages and the engine's plain data.

Events arrive as protobuf messages whose payload is a `oneof`; they become the same typed events
the JSON Lines reader produces, so one validator (service.events) decides what is valid for every
entry point. Most are taken by acceptors compiled from that validator's models, which read the
payload message directly and only ever accept; pydantic decides about the rest. Field paths in
errors are rewritten to the request's own shape (`events[3].listing_updated.price`), which is what
`google.rpc.BadRequest` clients expect.

Answers go the other way once: the engine's decisions for an event become one serialised
`EventResult` *body* (event id, decisions, shadow decisions), which is what the journal stores and
what a resent event is answered with. A reply is assembled from bodies as wire bytes, without
parsing them back: protobuf fields may be concatenated, so the index, a body and the duplicate flag
side by side are one `EventResult`, and `results` entries side by side are the response's list.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from rules.effects import round6
from service.api.rulebook.v1 import decisions_pb2, evaluation_service_pb2, events_pb2
from service.decision import Decision
from service.events import Event, EventError, FieldViolation, compile_acceptor, parse_event

#: For each payload type: (field name, has explicit presence) in declaration order.
_PAYLOAD_FIELDS: dict[str, list[tuple[str, bool]]] = {}
for _oneof_field in events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields:
    _PAYLOAD_FIELDS[_oneof_field.name] = [
        (f.name, f.has_presence) for f in _oneof_field.message_type.fields
    ]


def _reader(fields: list[tuple[str, bool]]) -> Callable[[Any], dict[str, Any]]:
    """Reads a payload message into a dict: every field without presence, and the optional
    ones only when set (an unset optional field is absent, not its zero value)."""
    plain = tuple(name for name, has_presence in fields if not has_presence)
    optional = tuple(name for name, has_presence in fields if has_presence)
    get_plain = operator.attrgetter(*plain) if plain else None

    def read(message: Any) -> dict[str, Any]:
        if get_plain is None:
            payload: dict[str, Any] = {}
        elif len(plain) == 1:
            payload = {plain[0]: get_plain(message)}
        else:
            payload = dict(zip(plain, get_plain(message), strict=True))
        for name in optional:
            if message.HasField(name):
                payload[name] = getattr(message, name)
        return payload

    return read


_PAYLOAD_READERS = {kind: _reader(fields) for kind, fields in _PAYLOAD_FIELDS.items()}

#: For each payload type: the fast path that accepts what is certainly valid, reading the
#: payload message's fields directly (see `service.events.compile_acceptor`).
_ACCEPTORS = {kind: compile_acceptor(kind, fields) for kind, fields in _PAYLOAD_FIELDS.items()}


@dataclass(frozen=True)
class Rejected:
    """An item of a batch that did not validate: answered with its errors, never stored."""

    event_id: str
    errors: list[FieldViolation]


def event_from_proto(message: events_pb2.Event, index: int, prefix: str = "events") \
        -> Event | Rejected:
    """A validated event, or the reasons it is not one, with paths like events[3].x.y.

    Most events are taken by the fast path; pydantic decides about the rest and words errors.
    """
    kind = message.WhichOneof("payload")
    if kind is not None:
        event = _ACCEPTORS[kind](message.event_id, message.merchant_id, message.event_time,
                                 getattr(message, kind))
        if event is not None:
            return event
    raw = _raw_event(message, index, prefix)
    if isinstance(raw, Rejected):
        return raw
    return _validated(message.event_id, raw, index, prefix)


def _raw_event(message: events_pb2.Event, index: int, prefix: str) -> dict[str, Any] | Rejected:
    kind = message.WhichOneof("payload")
    if kind is None:
        return Rejected(message.event_id, [FieldViolation(
            f"{prefix}[{index}].payload", "an event needs a payload; set one of "
            + ", ".join(sorted(_PAYLOAD_FIELDS)))])
    return {
        "event_id": message.event_id,
        "type": kind,
        "merchant_id": message.merchant_id,
        "event_time": message.event_time,
        "payload": _PAYLOAD_READERS[kind](getattr(message, kind)),
    }


def _validated(event_id: str, raw: dict[str, Any], index: int, prefix: str) -> Event | Rejected:
    try:
        return parse_event(raw)
    except EventError as exc:
        here = f"{prefix}[{index}]"
        return Rejected(event_id, [
            FieldViolation(_request_path(here, raw["type"], v.path), v.message)
            for v in exc.errors
        ])


def _request_path(here: str, kind: str, path: str) -> str:
    if path.startswith("payload."):
        return f"{here}.{kind}.{path[len('payload.'):]}"
    if path == "payload":
        return f"{here}.{kind}"
    return f"{here}.{path}" if path else here


# -- answers --------------------------------------------------------------------------------
def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if data:
        try:
            s.update(data)
        except (ValueError, TypeError):  # a value Struct cannot hold: say it as text
            s = struct_pb2.Struct()
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


_Share = decisions_pb2.BurdenShare
_Effect = decisions_pb2.EffectOutcome
_Split = decisions_pb2.BurdenSplit


def decision_to_proto(d: Decision) -> decisions_pb2.Decision:
    """The wire form of an engine decision (the same fields `Decision.to_dict` names)."""
    out = decisions_pb2.Decision(
        decision_id=d.decision_id,
        event_id=d.event_id,
        event_type=d.event_type,
        merchant_id=d.merchant_id,
        event_time=d.event_time,
        rulebook_set=d.set_id or "",
        rulebook=d.rulebook or "",
        revision=d.revision or "",
        rule=d.rule or "",
        trigger=d.trigger,
        outcome=d.outcome,
        cancelled_deadlines=d.cancelled_deadlines,
    )
    if d.effects:
        burden = d.burden
        out.burden.CopyFrom(_Split(merchant=burden["merchant"], platform=burden["platform"],
                                   buyer=burden["buyer"]))
        out.effects.extend([
            _Effect(effect=e.effect, args=_struct(e.args), amounts=_struct(e.amounts),
                    burden=[_Share(**b) for b in e.burden], skipped=e.skipped or "")
            for e in d.effects])
    else:
        out.burden.SetInParent()  # an empty split is still sent, as every decision has one
    if d.explanation:
        out.explanation.CopyFrom(_struct(d.explanation))
    deadline = d.deadline
    if deadline:
        out.deadline.CopyFrom(decisions_pb2.PendingDeadline(
            id=deadline["id"], due=deadline["due"], unless=deadline["unless"],
            key=deadline["key"]))
    return out


def result_body(event_id: str, decisions: Sequence[Decision],
                shadow_decisions: Sequence[Decision]) -> bytes:
    """The serialised `EventResult` of an evaluated event without its index and duplicate flag:
    what the journal keeps and every later answer for the same event_id repeats.

    Written straight to the wire format (see `_DecisionWriter`): the same bytes a
    `rulebook.v1.EventResult` built from `decision_to_proto` serialises to, at a third of the
    cost, because most of a decision (set, rulebook, revision, rule, trigger, outcome) is the same
    for every decision of a rule and is encoded once.
    """
    parts = [b"\x12", _varint(len(encoded := event_id.encode())), encoded] if event_id else []
    write = _WRITER.decision
    for d in decisions:
        body = write(d)
        parts += (b"\x1a", _varint(len(body)), body)
    for d in shadow_decisions:
        body = write(d)
        parts += (b"\x22", _varint(len(body)), body)
    return b"".join(parts)


_pack_double = struct.Struct("<d").pack


def _string_field(key: bytes, text: str) -> bytes:
    """A string field (omitted when empty, as proto3 does)."""
    if not text:
        return b""
    data = text.encode()
    return key + _varint(len(data)) + data


def _message_field(key: bytes, body: bytes) -> bytes:
    return key + _varint(len(body)) + body


class _DecisionWriter:
    """Encodes decisions in protobuf wire format, field by field in field-number order.

    Pieces that repeat across decisions are cached: the fields a rule's decisions share, and
    Struct keys, effect names, burden shares and Struct entries of short words (bounded sets:
    names from the rulebooks and the effect vocabulary). Struct values follow `Struct.update`
    after `_plain`: None, bool, str, numbers (as doubles), dicts, lists and tuples; anything
    else as its text.
    """

    _LIMIT = 4096

    def __init__(self) -> None:
        self._shared: dict[tuple[Any, ...], tuple[bytes, bytes, bytes]] = {}
        self._shares: dict[tuple[str, str], bytes] = {}
        self._struct_keys: dict[str, bytes] = {}
        self._float_entries: dict[str, bytes] = {}
        self._effect_names: dict[str, bytes] = {}
        self._text_entries: dict[tuple[str, str], bytes] = {}

    def decision(self, d: Decision) -> bytes:
        shared_key = (d.event_type, d.set_id, d.rulebook, d.revision, d.rule, d.trigger,
                      d.outcome)
        shared = self._shared.get(shared_key)
        if shared is None:
            if len(self._shared) > self._LIMIT:
                self._shared.clear()
            rest = (_string_field(b"\x32", d.set_id or "")
                    + _string_field(b"\x3a", d.rulebook or "")
                    + _string_field(b"\x42", d.revision or "")
                    + _string_field(b"\x4a", d.rule or "")
                    + _string_field(b"\x52", d.trigger) + _string_field(b"\x5a", d.outcome))
            # The last: fields 6 to 11 followed by the empty burden split of a decision without
            # effects (field 12 is then absent, 13 comes next).
            shared = self._shared[shared_key] = (
                _string_field(b"\x1a", d.event_type), rest, rest + b"\x6a\x00")
        # Fields 1 to 5 (ids and time) as key, length, UTF-8; field 3 is cached with the rest.
        event_type, rest, rest_no_effects = shared
        effects = d.effects
        if not effects:
            rest = rest_no_effects
        did, eid = d.decision_id.encode(), d.event_id.encode()
        mid, etime = d.merchant_id.encode(), d.event_time.encode()
        if did and eid and mid and etime and len(eid) < 16384 and len(mid) < 16384 \
                and len(etime) < 16384 and len(did) < 16384:
            parts = [b"\x0a", _VARINTS[len(did)], did, b"\x12", _VARINTS[len(eid)], eid,
                     event_type, b"\x22", _VARINTS[len(mid)], mid, b"\x2a", _VARINTS[len(etime)],
                     etime, rest]
        else:  # an empty field is left out, as proto3 does
            parts = [_message_field(b"\x0a", did) if did else b"",
                     _message_field(b"\x12", eid) if eid else b"", event_type,
                     _message_field(b"\x22", mid) if mid else b"",
                     _message_field(b"\x2a", etime) if etime else b"", rest]
        if effects:
            # The decision's burden split (`Decision.burden`): each party's shares summed in
            # order from 0.0, then rounded, the same floats.
            merchant = platform = buyer = 0.0
            for e in effects:
                body = self._effect(e)
                n = len(body)
                parts += (b"\x62", _VARINTS[n] if n < 16384 else _encode_varint(n), body)
                for b in e.burden:
                    party = b["party"]
                    if party == "merchant":
                        merchant += b["amount"]
                    elif party == "platform":
                        platform += b["amount"]
                    elif party == "buyer":
                        buyer += b["amount"]
                    else:
                        raise KeyError(party)
            # A party with no share sums to 0.0, which rounds to itself: no call for it.
            if merchant:
                merchant = round6(merchant)
            if platform:
                platform = round6(platform)
            if buyer:
                buyer = round6(buyer)
            split = b"".join(
                [b"\x09" + _pack_double(merchant) if merchant else b"",
                 b"\x11" + _pack_double(platform) if platform else b"",
                 b"\x19" + _pack_double(buyer) if buyer else b""])
            parts += (b"\x6a", _VARINTS[len(split)], split)
        # else: `rest` ended with the empty split, still sent, as every decision has one
        if d.explanation:
            parts.append(_message_field(b"\x72", self._struct(d.explanation)))
        deadline = d.deadline
        if deadline:
            body = [_string_field(b"\x0a", deadline["id"]), _string_field(b"\x12", deadline["due"])]
            body += [_message_field(b"\x1a", u.encode()) for u in deadline["unless"]]
            body.append(_string_field(b"\x22", deadline["key"]))
            parts.append(_message_field(b"\x7a", b"".join(body)))
        for cancelled in d.cancelled_deadlines:
            parts.append(_message_field(b"\x82\x01", cancelled.encode()))
        return b"".join(parts)

    def _effect(self, e: Any) -> bytes:
        args = self._struct(e.args)
        amounts = self._struct(e.amounts)
        name = self._effect_names.get(e.effect)
        if name is None:
            if len(self._effect_names) > self._LIMIT:
                self._effect_names.clear()
            name = self._effect_names[e.effect] = _string_field(b"\x0a", e.effect)
        parts = [name, b"\x12", _varint(len(args)), args, b"\x1a", _varint(len(amounts)), amounts]
        for b in e.burden:
            parts.append(self._share(b["party"], b["category"], b["amount"]))
        if e.skipped:
            parts.append(_string_field(b"\x2a", e.skipped))
        return b"".join(parts)

    def _share(self, party: str, category: str, amount: float) -> bytes:
        head = self._shares.get((party, category))
        if head is None:
            if len(self._shares) > self._LIMIT:
                self._shares.clear()
            head = self._shares[(party, category)] = (
                _string_field(b"\x0a", party) + _string_field(b"\x12", category))
        body = head + b"\x19" + _pack_double(amount) if amount else head
        return b"\x22" + _varint(len(body)) + body

    def _struct_key(self, key: Any) -> bytes:
        """A map entry's key field and the key of its value field, up to the value's length."""
        if key.__class__ is not str:
            return _string_field(b"\x0a", str(key)) + b"\x12" if str(key) else b"\x12"
        found = self._struct_keys.get(key)
        if found is None:
            if len(self._struct_keys) > self._LIMIT:
                self._struct_keys.clear()
            found = self._struct_keys[key] = _string_field(b"\x0a", key) + b"\x12"
        return found

    def _float_entry(self, key: Any) -> bytes:
        """Everything of a map entry whose value is a number, up to the number's 8 bytes: the
        entry's key and length (always the same), the key field and the value's field keys."""
        found = self._float_entries.get(key) if key.__class__ is str else None
        if found is None:
            head = self._struct_key(key) + b"\x09\x11"
            found = b"\x0a" + _varint(len(head) + 8) + head
            if key.__class__ is str:
                if len(self._float_entries) > self._LIMIT:
                    self._float_entries.clear()
                self._float_entries[key] = found
        return found

    def _struct(self, data: dict[Any, Any]) -> bytes:
        """A `google.protobuf.Struct` (entries of its `fields` map, in the dict's order)."""
        parts: list[bytes] = []
        keys = self._struct_keys
        floats = self._float_entries
        texts = self._text_entries
        for k, v in data.items():
            if v.__class__ is float:  # the common case: a Value of 9 bytes, a number
                prefix = floats.get(k)
                parts += (prefix if prefix is not None else self._float_entry(k),
                          _pack_double(v))
                continue
            if v.__class__ is str and k.__class__ is str:
                # Words from a small set (kinds, reasons, deciders): the whole entry, cached.
                entry = texts.get((k, v))
                if entry is None:
                    entry = self._text_entry(k, v)
                parts.append(entry)
                continue
            head = keys.get(k) if k.__class__ is str else None
            if head is None:
                head = self._struct_key(k)
            encoded = self._value(v)
            n = len(encoded)
            entry = head + (_VARINTS[n] if n < 16384 else _encode_varint(n)) + encoded
            n = len(entry)
            parts += (b"\x0a", _VARINTS[n] if n < 16384 else _encode_varint(n), entry)
        return b"".join(parts)

    def _text_entry(self, key: str, value: str) -> bytes:
        """The whole map entry of a string value, as the general path below writes it; cached
        when short (long texts are rarely repeated words)."""
        encoded = self._value(value)
        entry = self._struct_key(key) + _varint(len(encoded)) + encoded
        entry = b"\x0a" + _varint(len(entry)) + entry
        if len(value) <= 64:
            if len(self._text_entries) > self._LIMIT:
                self._text_entries.clear()
            self._text_entries[(key, value)] = entry
        return entry

    def _value(self, v: Any) -> bytes:
        cls = v.__class__
        if cls is float:
            return b"\x11" + _pack_double(v)
        if cls is str:
            data = v.encode()
            return b"\x1a" + _varint(len(data)) + data
        if v is None:
            return b"\x08\x00"
        if cls is bool:
            return b"\x20\x01" if v else b"\x20\x00"
        if isinstance(v, bool):
            return b"\x20\x01" if v else b"\x20\x00"
        if isinstance(v, int | float):
            return b"\x11" + _pack_double(float(v))
        if isinstance(v, str):
            return self._value(str(v))
        if isinstance(v, dict):
            return _message_field(b"\x2a", self._struct(v))
        if isinstance(v, list | tuple):
            return _message_field(b"\x32", b"".join(
                _message_field(b"\x0a", self._value(item)) for item in v))
        return self._value(str(v))


_WRITER = _DecisionWriter()


def legacy_result_body(event_id: str, decisions: list[dict[str, Any]],
                       shadow_decisions: list[dict[str, Any]]) -> bytes:
    """The body for a journal row written before bodies were journalled (decision dicts)."""
    return evaluation_service_pb2.EventResult(
        event_id=event_id,
        decisions=[_decision_from_dict(d) for d in decisions],
        shadow_decisions=[_decision_from_dict(d) for d in shadow_decisions],
    ).SerializeToString()


def _decision_from_dict(d: dict[str, Any]) -> decisions_pb2.Decision:
    burden = d.get("burden") or {}
    out = decisions_pb2.Decision(
        decision_id=d["decision_id"], event_id=d["event_id"], event_type=d["event_type"],
        merchant_id=d["merchant_id"], event_time=d["event_time"],
        rulebook_set=d.get("set") or "", rulebook=d.get("rulebook") or "",
        revision=d.get("revision") or "", rule=d.get("rule") or "", trigger=d["trigger"],
        outcome=d["outcome"],
        burden=_Split(merchant=burden.get("merchant", 0.0),
                      platform=burden.get("platform", 0.0), buyer=burden.get("buyer", 0.0)),
        cancelled_deadlines=d.get("cancelled_deadlines") or [],
    )
    for e in d.get("effects") or []:
        out.effects.append(_Effect(
            effect=e["effect"], args=_struct(e.get("args") or {}),
            amounts=_struct(e.get("amounts") or {}),
            burden=[_Share(**b) for b in e.get("burden") or []], skipped=e.get("skipped") or ""))
    if d.get("explanation"):
        out.explanation.CopyFrom(_struct(d["explanation"]))
    deadline = d.get("deadline")
    if deadline:
        out.deadline.CopyFrom(decisions_pb2.PendingDeadline(
            id=deadline["id"], due=deadline["due"], unless=deadline["unless"],
            key=deadline["key"]))
    return out


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


#: Every length and index below 16,384 (one or two bytes), encoded once.
_VARINTS = [_encode_varint(n) for n in range(1 << 14)]


def _varint(n: int) -> bytes:
    """A non-negative integer in protobuf's base-128 varint encoding."""
    return _VARINTS[n] if n < 16384 else _encode_varint(n)


#: EventResult field keys: index (1, varint) and duplicate (6, varint) set to true.
_INDEX_KEY, _DUPLICATE_TRUE = b"\x08", b"\x30\x01"


#: The index field (key and varint) of every index below 16,384, written once.
_INDEX_HEADS = [_INDEX_KEY + v if n else b"" for n, v in enumerate(_VARINTS)]


def result_wire(index: int, body: bytes, duplicate: bool) -> bytes:
    """A whole serialised `EventResult`: the index, then the stored body, then the flag."""
    head = _INDEX_HEADS[index] if index < 16384 else _INDEX_KEY + _encode_varint(index)
    return head + body + _DUPLICATE_TRUE if duplicate else head + body


def rejected_wire(index: int, event_id: str, errors: Iterable[FieldViolation]) -> bytes:
    """The serialised `EventResult` of an event that did not validate."""
    return evaluation_service_pb2.EventResult(
        index=index, event_id=event_id,
        errors=[evaluation_service_pb2.FieldViolation(field=v.path, description=v.message)
                for v in errors],
    ).SerializeToString()


#: Keys of the `results` field: 1 in EvaluateResponse, 2 in StreamEvaluateResponse.
_EVALUATE_RESULTS, _STREAM_RESULTS = b"\x0a", b"\x12"


def _results_wire(key: bytes, results: Iterable[bytes]) -> list[bytes]:
    parts: list[bytes] = []
    for r in results:
        n = len(r)
        parts += (key, _VARINTS[n] if n < 16384 else _encode_varint(n), r)
    return parts


def evaluate_response_wire(results: Iterable[bytes]) -> bytes:
    """A serialised `EvaluateResponse` holding the given serialised `EventResult`s in order."""
    return b"".join(_results_wire(_EVALUATE_RESULTS, results))


def stream_response_wire(batch_id: str, results: Iterable[bytes]) -> bytes:
    """A serialised `StreamEvaluateResponse` for one batch."""
    head = evaluation_service_pb2.StreamEvaluateResponse(batch_id=batch_id).SerializeToString()
    return b"".join([head, *_results_wire(_STREAM_RESULTS, results)])


__all__ = ["Rejected", "decision_to_proto", "evaluate_response_wire", "event_from_proto",
           "legacy_result_body", "rejected_wire", "result_body", "result_wire",
           "stream_response_wire"]
