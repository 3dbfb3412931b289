"""Merchant and order events: the typed model, its validation errors and JSON Lines I/O.

Events arrive from other systems (a platform's order pipeline, a regulator's monitor) and from
files, so the model is strict: unknown fields are refused rather than dropped, strings are never
silently turned into numbers, money must be finite, and a time without an offset is refused
because "36 hours to answer" means nothing without one. Each error carries a dotted field path so
it can become a ``google.rpc.BadRequest`` field violation unchanged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import UnionType
from typing import IO, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import core_schema

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
Money = Annotated[float, Field(ge=0)]
"""Yuan. Zero is a real amount (a free gift, a waived fee); negative never is."""
Price = Annotated[float, Field(gt=0)]
"""Yuan. A listed or observed price of zero would make every ratio rule divide by zero."""
Share = Annotated[float, Field(ge=0, le=1)]
PositiveCount = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]


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
            core_schema.no_info_plain_validator_function(_epoch_in_range),
        ]
    )


def _epoch_in_range(moment: datetime) -> float:
    # Deadlines add days to event time and months roll over into the next year: keep far from
    # the calendar's ends so that arithmetic never leaves it.
    if not 1971 <= moment.year <= 9998:
        raise ValueError("event_time must be between the years 1971 and 9998")
    return moment.timestamp()


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
