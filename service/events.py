"""Merchant and order events: the typed model, its validation errors and JSON Lines I/O.

Events arrive from other systems (a platform's order pipeline, a regulator's monitor) and from
files, so the model is strict: unknown fields are refused rather than dropped, strings are never
silently turned into numbers, money must be finite, and a time without an offset is refused
because "36 hours to answer" means nothing without one. Each error carries a dotted field path so
it can become a ``google.rpc.BadRequest`` field violation unchanged.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import UnionType
from typing import IO, Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, core_schema

__all__ = [
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "MAX_LINE_BYTES",
    "PAYLOAD_FIELDS",
    "AdClickCharged",
    "AnyEvent",
    "AppealDecided",
    "AppealFiled",
    "AutoFollowToggled",
    "CompetitorPriceObserved",
    "Event",
    "EventError",
    "FieldViolation",
    "ImpressionsServed",
    "ListingUpdated",
    "MerchantRegistered",
    "MerchantResponded",
    "OrderPlaced",
    "OrderShipped",
    "PlatformIntervened",
    "PromptDismissed",
    "RefundRequested",
    "compile_acceptor",
    "event_to_json",
    "parse_event",
    "parse_event_json",
    "read_jsonl",
]

MAX_LINE_BYTES = 1 << 20
"""One event never needs more; a longer line is a broken writer or an attack, not data."""

# -- field types ------------------------------------------------------------------------------

# No control characters: ids are joined with one (\x1f) into state keys.
Ident = Annotated[str, StringConstraints(min_length=1, max_length=128,
                                         pattern=r"^[^\x00-\x1f\x7f]+$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(max_length=2000)]
#: The most yuan an amount or price may be: 1e18. Far above any order (and still one Python
#: writes with an exponent, which the engine must pass to durable_rules as a plain number),
#: and far enough below a float's range that sums of them (a merchant's GMV, a cohort's
#: burden over years of events) stay finite: 1e308 twice was infinity in a merchant's state
#: for good.
MAX_YUAN = 1e18
#: The largest count (quantity, clicks, impressions): the largest int64, as the protobuf
#: fields hold; a JSON integer may be any size (10**400 failed a float conversion).
MAX_COUNT = 2**63 - 1
Money = Annotated[float, Field(ge=0, le=MAX_YUAN)]
"""Yuan. Zero is a real amount (a free gift, a waived fee); negative never is."""
Price = Annotated[float, Field(gt=0, le=MAX_YUAN)]
"""Yuan. A listed or observed price of zero would make every ratio rule divide by zero."""
Share = Annotated[float, Field(ge=0, le=1)]
PositiveCount = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class _Strict(BaseModel):
    """Shared config: refuse what we do not understand instead of guessing."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        frozen=True,
    )


# -- payloads ---------------------------------------------------------------------------------


class MerchantRegisteredPayload(_Strict):
    size_tier: Literal["small", "medium", "large"]
    name: Label | None = None
    region: Label | None = None


class ListingUpdatedPayload(_Strict):
    """The whole listing as it now stands, so rules never need the previous update to judge it."""

    listing_id: Ident
    product_group: Ident
    price: Price
    unit_cost: Money
    quality: Share
    promo_signup_price: Price | None = None
    """The ordinary promotion sign-up price that a special channel's 50-70 % bar is measured on."""


class AutoFollowToggledPayload(_Strict):
    """How hard it was to opt in or out is the point, so the steps and the code are recorded."""

    listing_id: Ident | None = None
    enrolled: bool
    steps: PositiveCount
    verified: bool
    via: Literal["settings", "popup"]


class CompetitorPriceObservedPayload(_Strict):
    listing_id: Ident
    competitor_price: Price
    competitor_id: Ident | None = None


class PromptDismissedPayload(_Strict):
    listing_id: Ident


class ImpressionsServedPayload(_Strict):
    listing_id: Ident
    product_group: Ident
    rank: PositiveCount
    impressions: Count
    channel: Label | None = None


class OrderPlacedPayload(_Strict):
    order_id: Ident
    listing_id: Ident
    quantity: PositiveCount
    amount: Money
    shipping_cost: Money


class OrderShippedPayload(_Strict):
    order_id: Ident


class RefundRequestedPayload(_Strict):
    order_id: Ident
    kind: Literal["refund_only", "return_and_refund"]
    evidence_valid: bool
    amount: Money | None = None
    """Absent means the whole amount paid for the order."""
    reason: Text | None = None


class MerchantRespondedPayload(_Strict):
    order_id: Ident
    decision: Literal["accept", "reject"]
    reason: Text | None = None


class PlatformIntervenedPayload(_Strict):
    order_id: Ident
    requested_by: Literal["buyer", "merchant"]


class AppealFiledPayload(_Strict):
    appeal_id: Ident
    order_id: Ident | None = None
    human_review_requested: bool = False


class AppealDecidedPayload(_Strict):
    appeal_id: Ident
    outcome: Literal["upheld", "rejected"]
    reviewer: Literal["automated", "human"]


class AdClickChargedPayload(_Strict):
    listing_id: Ident | None = None
    clicks: PositiveCount


# -- events -----------------------------------------------------------------------------------

# RFC 3339 section 5.6 date-time: full date, full time and an offset that is never optional.
# Checked in pydantic-core (Rust) so the hot path runs no Python for it.
_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")

EventTime = Annotated[str, StringConstraints(pattern=_RFC3339)]


def _epoch_schema(_source: Any, _handler: Any) -> core_schema.CoreSchema:
    # Parse the same input again as an aware datetime (in Rust) and take its epoch seconds.
    return core_schema.chain_schema(
        [
            core_schema.datetime_schema(tz_constraint="aware", strict=False),
            core_schema.no_info_plain_validator_function(epoch_in_range),
        ]
    )


def epoch_in_range(moment: datetime) -> float:
    # Deadlines add days to event time and months roll over into the next year: keep far from
    # the calendar's ends so that arithmetic never leaves it. The year is checked in UTC a
    # day in from the ends, so that no time zone (at most 14 hours off) puts the moment in
    # another year (9998-12-31T23:59:59Z is already 9999 in Shanghai).
    if not _EARLIEST <= moment <= _LATEST:
        raise ValueError("event_time must be between the years 1971 and 9998")
    return moment.timestamp()


_EARLIEST = datetime(1971, 1, 2, tzinfo=UTC)
_LATEST = datetime(9998, 12, 30, 23, 59, 59, tzinfo=UTC)


EpochSeconds = Annotated[float, GetPydanticSchema(_epoch_schema)]


class Event(_Strict):
    """Common envelope of every event; ``parse_event`` picks the concrete class by ``type``.

    ``time`` (epoch seconds) is read from the same ``event_time`` key and computed once here,
    because every windowed rule compares it and re-parsing the string each time would dominate
    the engine's cost. It is never written out: ``event_time`` stays exactly as received.
    """

    event_id: Ident
    type: str
    merchant_id: Ident
    event_time: EventTime
    payload: BaseModel
    time: EpochSeconds = Field(validation_alias="event_time", exclude=True, repr=False)


class MerchantRegistered(Event):
    type: Literal["merchant_registered"]
    payload: MerchantRegisteredPayload


class ListingUpdated(Event):
    type: Literal["listing_updated"]
    payload: ListingUpdatedPayload


class AutoFollowToggled(Event):
    type: Literal["auto_follow_toggled"]
    payload: AutoFollowToggledPayload


class CompetitorPriceObserved(Event):
    type: Literal["competitor_price_observed"]
    payload: CompetitorPriceObservedPayload


class PromptDismissed(Event):
    type: Literal["prompt_dismissed"]
    payload: PromptDismissedPayload


class ImpressionsServed(Event):
    type: Literal["impressions_served"]
    payload: ImpressionsServedPayload


class OrderPlaced(Event):
    type: Literal["order_placed"]
    payload: OrderPlacedPayload


class OrderShipped(Event):
    type: Literal["order_shipped"]
    payload: OrderShippedPayload


class RefundRequested(Event):
    type: Literal["refund_requested"]
    payload: RefundRequestedPayload


class MerchantResponded(Event):
    type: Literal["merchant_responded"]
    payload: MerchantRespondedPayload


class PlatformIntervened(Event):
    type: Literal["platform_intervened"]
    payload: PlatformIntervenedPayload


class AppealFiled(Event):
    type: Literal["appeal_filed"]
    payload: AppealFiledPayload


class AppealDecided(Event):
    type: Literal["appeal_decided"]
    payload: AppealDecidedPayload


class AdClickCharged(Event):
    type: Literal["ad_click_charged"]
    payload: AdClickChargedPayload


_EVENT_CLASSES: tuple[type[Event], ...] = (
    MerchantRegistered,
    ListingUpdated,
    AutoFollowToggled,
    CompetitorPriceObserved,
    PromptDismissed,
    ImpressionsServed,
    OrderPlaced,
    OrderShipped,
    RefundRequested,
    MerchantResponded,
    PlatformIntervened,
    AppealFiled,
    AppealDecided,
    AdClickCharged,
)

AnyEvent = Annotated[Union[_EVENT_CLASSES], Field(discriminator="type")]  # noqa: UP007
"""The discriminated union: validation jumps straight to the class named by ``type``."""

_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)

EVENT_TYPES: tuple[str, ...] = tuple(
    get_args(cls.model_fields["type"].annotation)[0] for cls in _EVENT_CLASSES
)
EVENT_CLASSES: dict[str, type[Event]] = dict(zip(EVENT_TYPES, _EVENT_CLASSES, strict=True))


def _kind(annotation: Any) -> str:
    """Map a payload annotation to the rule language's three scalar kinds."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kind(get_args(annotation)[0])
    if origin in (Union, UnionType):
        (inner,) = (arg for arg in get_args(annotation) if arg is not type(None))
        return _kind(inner)
    if origin is Literal:
        return _kind(type(get_args(annotation)[0]))
    if annotation is bool:
        return "bool"
    if annotation in (int, float):
        return "number"
    if annotation is str:
        return "string"
    raise TypeError(f"no rule-language kind for {annotation!r}")


PAYLOAD_FIELDS: dict[str, dict[str, str]] = {
    name: {
        field: _kind(info.annotation)
        for field, info in cls.model_fields["payload"].annotation.model_fields.items()
    }
    for name, cls in EVENT_CLASSES.items()
}
"""Derived from the models so the rule type-checker can never drift from what validation allows."""


# -- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one field; ``path`` is dotted (``payload.price``), empty for the whole."""

    path: str
    message: str


class EventError(Exception):
    """An event that could not be accepted, with every reason found, not only the first."""

    def __init__(
        self,
        errors: list[FieldViolation],
        line: int | None = None,
        source: str | None = None,
    ) -> None:
        self.errors = errors
        self.line = line
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.source is not None or self.line is not None:
            parts = [p for p in (self.source, self.line) if p is not None]
            where = ":".join(str(p) for p in parts) + ": "
        return where + "; ".join(
            f"{v.path}: {v.message}" if v.path else v.message for v in self.errors
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Survive pickling (e.g. a process pool reading files) with the violations intact.
        return (EventError, (self.errors, self.line, self.source))

    def located(self, line: int | None, source: str | None = None) -> EventError:
        """The same error, placed in a file."""
        return EventError(self.errors, line=line, source=source)


_KNOWN = ", ".join(EVENT_TYPES)
_JSON_POSITION = re.compile(r" at line (\d+) column (\d+)$")


def _violation(error: Any) -> FieldViolation:
    kind = error["type"]
    loc = error["loc"]
    if kind == "union_tag_invalid":
        tag = error["ctx"]["tag"]
        return FieldViolation("type", f"unknown event type {tag!r}; known types: {_KNOWN}")
    if kind == "union_tag_not_found":
        return FieldViolation("type", f"Field required; known types: {_KNOWN}")
    if kind == "json_invalid":
        reason = error["ctx"]["error"]
        match = _JSON_POSITION.search(reason)
        if match is not None:
            line, column = match.groups()
            reason = reason[: match.start()]
            where = f"column {column}" if line == "1" else f"line {line} column {column}"
            return FieldViolation("", f"invalid JSON at {where}: {reason}")
        return FieldViolation("", f"invalid JSON: {reason}")
    # The first element of a tagged union's location is the tag itself: not a field.
    if loc and loc[0] in EVENT_CLASSES:
        loc = loc[1:]
    if loc == ("event_time",):
        return FieldViolation("event_time", _event_time_message(error))
    return FieldViolation(".".join(str(part) for part in loc), error["msg"])


def _event_time_message(error: Any) -> str:
    """Say what is wrong with a time in the reader's terms, not as a regular expression."""
    kind = error["type"]
    if kind == "string_pattern_mismatch":
        if _NAIVE.fullmatch(error["input"]):
            return "Input should carry a timezone offset or Z; a naive time is ambiguous"
        return "Input should be an RFC 3339 time like 2024-07-01T09:30:00+08:00"
    if kind.startswith("datetime"):
        reason = error["msg"].removeprefix("Input should be a valid datetime or date, ")
        return f"Input is not a real time: {reason}"
    return error["msg"]


def _event_error(exc: ValidationError) -> EventError:
    violations: list[FieldViolation] = []
    time_reported = False
    for error in exc.errors(include_url=False):
        violation = _violation(error)
        # event_time is validated twice (as text and as an instant): report it once.
        if violation.path == "event_time":
            if time_reported:
                continue
            time_reported = True
        violations.append(violation)
    return EventError(violations)


# -- parsing and writing ----------------------------------------------------------------------


def parse_event(obj: dict[str, Any]) -> Event:
    """Validate an already decoded event (e.g. from gRPC or a test)."""
    try:
        return _ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise _event_error(exc) from None


def parse_event_json(text: str | bytes) -> Event:
    """Validate one JSON-encoded event; decoding and validation both run in pydantic-core."""
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as exc:
        raise _event_error(exc) from None


def event_to_json(event: Event) -> str:
    """One compact JSON line; ``event_time`` is written exactly as it was received."""
    return event.model_dump_json(exclude_none=True)


# -- the hot path: accepting what is certainly valid -------------------------------------------
#
# The gRPC service validates every event of every batch, and through pydantic that costs about 9 us
# per event, most of it the general machinery around a handful of checks. `compile_acceptor`
# writes, once per event type, a function that makes the same checks, read from the models above
# (lengths, patterns, bounds, choices, defaults, the event-time pattern and `epoch_in_range`), and
# builds the same model instances directly. It only ever *accepts*: whatever it is not sure of (a
# failed check, a non-ASCII string, a time form outside the common ones) makes it return None, and
# the caller then asks `parse_event`, which alone decides about and words errors. A constraint the
# derivation does not understand raises when the acceptors are compiled (service.convert does that
# on import), so a rule added to a model is never skipped on the hot path;
# tests/service/test_fast_validation.py checks that both agree.

_EnvT = dict[str, Any]


#: The bytes of ASCII text with every digit replaced by 0x80 (which ASCII text cannot hold), and
#: the event-time layouts without a fraction of a second written the same way: an ASCII time is
#: in one of these layouts exactly when its marked bytes are one of these.
_DIGIT_MARKS = bytes(0x80 if 0x30 <= c <= 0x39 else c for c in range(256))
_TIME_LAYOUTS = frozenset(
    f"####-##-##{sep}##:##:##{zone}".replace("#", "\x80").encode("latin-1")
    for sep in "Tt " for zone in ("Z", "z", "+##:##", "-##:##"))

#: Patterns with an exact equivalent in string methods on ASCII text (every string the acceptors
#: check is ASCII first), as an expression over `{v}` (`{m}` is the pattern's `fullmatch`). A
#: regular expression match costs a few thousand instructions (the matcher's state and a match
#: object), and every event has one to three ids and a time to check.
#: - `^[^\x00-\x1f\x7f]+$` (ids: no control characters, not empty): the only ASCII characters
#:   `str.isprintable` refuses are 0x00-0x1f and 0x7f, and `$` before a final newline cannot help
#:   a fullmatch, as the newline is itself refused.
#: - `_RFC3339`: the layouts without a fraction of a second (`_TIME_LAYOUTS`, all of which the
#:   pattern matches) by one byte translation; any other text is left to the pattern.
_ASCII_EQUIVALENTS = {
    r"^[^\x00-\x1f\x7f]+$": "({v} != '' and {v}.isprintable())",
    _RFC3339: "({v}.encode().translate(_DIGIT_MARKS) in _TIME_LAYOUTS or {m}({v}) is not None)",
}


def _string_source(var: str, constraints: Sequence[Any], env: _EnvT) -> str:
    low, high, pattern = 0, None, None
    for c in constraints:
        if not isinstance(c, StringConstraints):
            raise TypeError(f"compile_acceptor cannot check {c!r} on a string")
        if any(getattr(c, name) is not None
               for name in ("strip_whitespace", "to_upper", "to_lower", "strict", "ascii_only")):
            raise TypeError(f"compile_acceptor cannot check {c!r}")
        if c.min_length is not None:
            low = max(low, c.min_length)
        if c.max_length is not None:
            high = c.max_length if high is None else min(high, c.max_length)
        if c.pattern is not None:
            if pattern is not None:
                raise TypeError("compile_acceptor checks one pattern per string")
            pattern = c.pattern
    # ASCII only: pydantic-core refuses strings with lone surrogates, and character classes are
    # only certain to mean the same in its regex engine and Python's on ASCII text.
    parts = [f"{var}.__class__ is str", f"{var}.isascii()",
             f"{low} <= len({var})" if high is None else f"{low} <= len({var}) <= {high}"]
    if pattern is not None:
        # fullmatch: Python's `$` also matches before a final newline, pydantic's does not.
        name = f"_match{len(env)}"
        env[name] = re.compile(pattern).fullmatch
        equivalent = _ASCII_EQUIVALENTS.get(pattern)
        parts.append(equivalent.format(v=var, m=name) if equivalent is not None
                     else f"{name}({var}) is not None")
    return "(" + " and ".join(parts) + ")"


def _number_source(var: str, kind: type, constraints: Sequence[Any]) -> str:
    # Strict: an int is left to pydantic where a float is expected; never inf or nan.
    parts = [f"{var}.__class__ is float", f"_isfinite({var})"] if kind is float \
        else [f"{var}.__class__ is int"]
    for c in constraints:
        for cls, attr, op in ((Gt, "gt", ">"), (Ge, "ge", ">="), (Lt, "lt", "<"), (Le, "le", "<=")):
            if isinstance(c, cls):
                bound = getattr(c, attr)
                if type(bound) not in (int, float) or not math.isfinite(bound):
                    raise TypeError(f"compile_acceptor cannot compare with {bound!r}")
                parts.append(f"{var} {op} {bound!r}")
                break
        else:
            raise TypeError(f"compile_acceptor cannot check {c!r} on a number")
    return "(" + " and ".join(parts) + ")"


def _check_source(var: str, annotation: Any, constraints: Sequence[Any], env: _EnvT) -> str:
    """A Python expression over `var` that holds only for values the model keeps as given."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        inner: list[Any] = list(constraints)
        for item in extra:
            inner.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        return _check_source(var, base, inner, env)
    if origin in (Union, UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) != 1 or constraints:
            raise TypeError(f"compile_acceptor cannot check {annotation!r}")
        return f"({var} is None or {_check_source(var, args[0], (), env)})"
    if origin is Literal:
        choices = get_args(annotation)
        if constraints or not all(type(c) is str for c in choices):
            raise TypeError(f"compile_acceptor cannot check {annotation!r}")
        name = f"_choices{len(env)}"
        env[name] = frozenset(choices)
        return f"({var}.__class__ is str and {var} in {name})"
    if annotation is str:
        return _string_source(var, constraints, env)
    if annotation in (int, float):
        return _number_source(var, annotation, constraints)
    if annotation is bool and not constraints:
        return f"{var}.__class__ is bool"
    raise TypeError(f"compile_acceptor cannot check {annotation!r} {list(constraints)!r}")


def _field_source(var: str, model: type[BaseModel], name: str, env: _EnvT) -> str:
    info = model.model_fields[name]
    return _check_source(var, info.annotation, list(info.metadata), env)


#: Epoch seconds at the start of a minute (None: pydantic decides), by the text up to the minute
#: and the offset.
_MINUTE_STARTS: dict[str, float | None] = {}
_UNKNOWN: Any = object()
#: The seconds of a minute by their two digits: a look-up instead of `int` (the pattern has
#: already made them two ASCII digits).
_SECONDS = {f"{second:02d}": second for second in range(60)}
_from_iso = datetime.fromisoformat


def _epoch_of(text: str) -> float | None:
    if text[-1] != "Z" and (text[-5:-3] > "23" or text[-2:] > "59"):
        return None  # an offset of a day or more, or of 60 minutes: pydantic decides
    try:
        return epoch_in_range(_from_iso(text))
    except ValueError:
        return None


def _fast_epoch(text: str) -> float | None:
    """Epoch seconds of an event time that matched the pattern, or None if pydantic decides.

    Taken: ASCII text with no fraction of a second (from the start of its minute, cached, since the
    times of a batch share few minutes; whole seconds are exact, as `timestamp()` is) or with at
    most six fraction digits (both parsers are exact to the microsecond there); the calendar
    checks of `fromisoformat` (a 30th of February, hour 24 or second 60 are left to pydantic);
    the same `epoch_in_range`.
    """
    n = len(text)
    last = text[-1]
    if last == "z":
        return None
    if (n == 25 and text[19] in "+-") or (n == 20 and last == "Z"):  # 2024-07-01T09:30:00+08:00
        key = text[:16] + text[19:]
        start = _MINUTE_STARTS.get(key, _UNKNOWN)
        if start is _UNKNOWN:
            if len(_MINUTE_STARTS) > 4096:
                _MINUTE_STARTS.clear()
            start = _MINUTE_STARTS[key] = _epoch_of(f"{text[:16]}:00{text[19:]}")
        second = _SECONDS.get(text[17:19])  # None from 60 up
        if start is None or second is None:
            return None
        return start + second
    if (n - 21 if last == "Z" else n - 26) > 6:  # digits after the decimal point
        return None
    return _epoch_of(text)


_new = object.__new__
# A model instance's four slots, set through their descriptors, as `BaseModel.model_construct`
# sets them (without the generic attribute lookup of `object.__setattr__`).
_set_dict, _set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[name].__set__ for name in BaseModel.__slots__)
if BaseModel.__slots__ != ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__",
                           "__pydantic_private__"):
    raise TypeError(f"compile_acceptor does not know pydantic's slots {BaseModel.__slots__}")


def compile_acceptor(event_type: str, source_fields: Sequence[tuple[str, bool]]) \
        -> Callable[[Any, Any, Any, Any], Event | None]:
    """A function `(event_id, merchant_id, event_time, body) -> Event | None` for one type.

    `body` holds the payload as attributes, `source_fields` names them with whether each one has
    explicit presence (`body.HasField(name)` says if it is set; the others are always read), as a
    protobuf payload message does. The result equals what `parse_event` makes of the same event
    (class, values, fields set), or is None whenever `parse_event` may refuse it or see it
    differently.
    """
    cls = EVENT_CLASSES[event_type]
    payload_cls = cls.model_fields["payload"].annotation
    if set(cls.model_fields) != set(Event.model_fields):
        raise TypeError(f"compile_acceptor does not know every field of {cls.__name__}")
    for model in (cls, payload_cls):
        if model.__pydantic_post_init__ or model.__private_attributes__:
            raise TypeError(f"compile_acceptor cannot build {model.__name__} without pydantic")
    env: _EnvT = {"_isfinite": math.isfinite, "_epoch": _fast_epoch, "_new": _new,
                  "_DIGIT_MARKS": _DIGIT_MARKS, "_TIME_LAYOUTS": _TIME_LAYOUTS,
                  "_set_dict": _set_dict, "_set_fields_set": _set_fields_set,
                  "_set_extra": _set_extra, "_set_private": _set_private,
                  "_cls": cls, "_payload_cls": payload_cls}
    lines = ["def accept(event_id, merchant_id, event_time, body):"]
    if cls.model_fields["time"].metadata != Event.model_fields["time"].metadata \
            or cls.model_fields["time"].validation_alias != "event_time":
        raise TypeError(f"compile_acceptor does not know how {cls.__name__} reads its time")
    if [getattr(c, "pattern", None) for c in cls.model_fields["event_time"].metadata] \
            != [_RFC3339]:
        raise TypeError("compile_acceptor reads event times laid out as _RFC3339 only")
    for var in ("event_id", "merchant_id", "event_time"):
        lines.append(f"    if not {_field_source(var, cls, var, env)}: return None")
    lines.append("    epoch = _epoch(event_time)")
    lines.append("    if epoch is None: return None")
    present = dict(source_fields)
    model_fields = payload_cls.model_fields
    always = [name for name, has in source_fields if not has]
    lines.append(f"    fields_set = {set(always)!r}" if always else "    fields_set = set()")
    for name, has in source_fields:
        if name not in model_fields:  # pydantic refuses fields it does not know
            lines.append(f"    if body.HasField({name!r}): return None" if has
                         else "    return None")
    values = []
    for i, (name, info) in enumerate(model_fields.items()):
        if info.alias is not None or info.validation_alias is not None:
            raise TypeError(f"compile_acceptor cannot read the alias of {name}")
        default = info.default
        if info.default_factory is not None or not (
                default is PydanticUndefined or default is None
                or type(default) in (bool, int, float, str)):
            raise TypeError(f"compile_acceptor cannot copy the default of {name}")
        var = f"v{i}"
        check = _field_source(var, payload_cls, name, env)
        if name not in present:
            if info.is_required():
                lines.append("    return None")
            lines.append(f"    {var} = {default!r}")
        elif present[name]:
            lines.append(f"    if body.HasField({name!r}):")
            lines.append(f"        {var} = body.{name}")
            lines.append(f"        if not {check}: return None")
            lines.append(f"        fields_set.add({name!r})")
            if info.is_required():
                lines.append("    else: return None")
            else:
                lines.append(f"    else: {var} = {default!r}")
        else:
            lines.append(f"    {var} = body.{name}")
            lines.append(f"    if not {check}: return None")
        values.append(f"{name!r}: {var}")
    # Both instances as pydantic's validator leaves them, for values already checked: the four
    # slots set in line (no helper function: two calls fewer per event).
    lines.append("    payload = _new(_payload_cls)")
    lines.append("    _set_dict(payload, {" + ", ".join(values) + "})")
    lines.append("    _set_fields_set(payload, fields_set)")
    lines.append("    _set_extra(payload, None)")
    lines.append("    _set_private(payload, None)")
    lines.append("    event = _new(_cls)")
    lines.append(f"    _set_dict(event, {{'event_id': event_id, 'type': {event_type!r}, "
                 "'merchant_id': merchant_id, 'event_time': event_time, 'payload': payload, "
                 "'time': epoch})")
    lines.append(f"    _set_fields_set(event, {set(Event.model_fields)!r})")
    lines.append("    _set_extra(event, None)")
    lines.append("    _set_private(event, None)")
    lines.append("    return event")
    namespace = dict(env)
    exec(compile("\n".join(lines), f"<accept {event_type}>", "exec"), namespace)
    accept: Callable[[Any, Any, Any, Any], Event | None] = namespace["accept"]
    accept.__doc__ = "\n".join(lines)  # what was compiled, for anyone reading a traceback
    return accept


def _physical_lines(stream: IO[Any], limit: int) -> Iterator[tuple[int, Any]]:
    """Yield (line number, content or None when over ``limit``) without ever holding a long line.

    Reading with a bound means a 2 GB line with no newline costs 1 MiB of memory, not 2 GB.
    """
    lineno = 0
    newline: Any = None
    while True:
        chunk = stream.readline(limit + 1)
        if not chunk:
            return
        if newline is None:
            newline = b"\n" if isinstance(chunk, bytes) else "\n"
        lineno += 1
        if len(chunk) > limit and not (len(chunk) == limit + 1 and chunk.endswith(newline)):
            while chunk and not chunk.endswith(newline):
                chunk = stream.readline(1 << 16)
            yield lineno, None
            continue
        yield lineno, chunk


_BOM = ("\ufeff", b"\xef\xbb\xbf")


def read_jsonl(
    path_or_file: str | os.PathLike[str] | IO[Any],
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[tuple[int, Event | EventError]]:
    """Yield ``(line number, event or error)`` for each non-blank line, 1-based.

    A bad line becomes an ``EventError`` in the stream instead of an exception, so one broken
    record in a day's export does not hide the thousands of good ones after it.
    """
    if isinstance(path_or_file, str | os.PathLike):
        source = os.fspath(path_or_file)
        with open(source, "rb") as stream:
            yield from _read_stream(stream, source, max_line_bytes)
        return
    name = getattr(path_or_file, "name", None)
    source = name if isinstance(name, str) else None
    yield from _read_stream(path_or_file, source, max_line_bytes)


def _read_stream(
    stream: IO[Any], source: str | None, max_line_bytes: int
) -> Iterator[tuple[int, Event | EventError]]:
    for lineno, content in _physical_lines(stream, max_line_bytes):
        if content is None:
            message = f"line longer than {max_line_bytes} bytes"
            yield lineno, EventError([FieldViolation("", message)], lineno, source)
            continue
        if lineno == 1:
            for bom in _BOM:
                if isinstance(content, type(bom)) and content.startswith(bom):
                    content = content[len(bom) :]
        if not content.strip():
            continue
        # Without the line break, a truncated record reports its column on this line.
        content = content.rstrip(b"\r\n" if isinstance(content, bytes) else "\r\n")
        try:
            yield lineno, parse_event_json(content)
        except EventError as exc:
            yield lineno, exc.located(lineno, source)


class FirstOccurrences:
    """Which events of a file repeat an `event_id` seen earlier in it, and where it was first.

    The service answers a resent event with its first answer and counts it once; a replay
    or audit of a file that holds an event twice (an export's overlapping pages, say) does
    the same by skipping the repeat, rather than evaluating it again and counting its
    decisions, its burden and its event twice."""

    def __init__(self) -> None:
        self._first: dict[str, int] = {}

    def earlier(self, event: Event, line: int) -> int | None:
        """The line where `event`'s id was first seen, None (and remembered at `line`) if
        this is its first occurrence."""
        first = self._first.setdefault(event.event_id, line)
        return None if first == line else first
