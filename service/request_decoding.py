"""Requests whose bytes are not the message the method takes: INVALID_ARGUMENT, not INTERNAL.

grpcio decodes a request before any handler runs, and answers a decoding failure (garbage
bytes, a truncated message, invalid UTF-8 in a string field) with INTERNAL "Exception
deserializing request!": the client is told the service failed when its own request was
malformed. `DecodeErrors`, a server interceptor, gives every method's deserializer a wrapper
that hands the handler the decoding error instead of the message; the handler's wrapper
refuses such a request with INVALID_ARGUMENT and a google.rpc.BadRequest naming the message
type and what protobuf said. A stream's requests before the bad one are handled as usual
(what was accepted stays accepted); the stream ends at the bad one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

#: How a refused request is counted: (bare method name, status name, seconds).
Observe = Callable[[str, str, float], None]


#: Bounds on what a refusal echoes back. The status travels in the response's trailing
#: metadata, which clients cap (grpcio: 8 KiB soft, 16 KiB hard, headers included): past
#: them the client gets RESOURCE_EXHAUSTED instead of the refusal. A request's text can be
#: long (a 10,000-character set id; a scenario with thousands of unknown keys, each a
#: violation), so the message and each field and description are cut, and the violations
#: after the first that fill `MAX_DETAILS_BYTES` are counted in a last one instead.
MAX_MESSAGE_BYTES = 512
MAX_FIELD_CHARS = 200
MAX_DESCRIPTION_CHARS = 500
MAX_DETAILS_BYTES = 3072


def abort_bad_request(context: grpc.ServicerContext, message: str,
                      violations: list[tuple[str, str]]) -> NoReturn:
    """End the RPC with INVALID_ARGUMENT and a google.rpc.BadRequest of (field, description)
    violations, cut to the bounds above."""
    detail = any_pb2.Any()
    detail.Pack(bounded_bad_request(violations))
    context.abort_with_status(rpc_status.to_status(status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=cut_message(message),
        details=[detail])))
    raise AssertionError("abort_with_status returned")  # pragma: no cover - it raises


def bounded_bad_request(violations: list[tuple[str, str]]) -> error_details_pb2.BadRequest:
    """The BadRequest of `violations`, each field and description cut to its bound, as many
    as fit in `MAX_DETAILS_BYTES` (at least one), then one saying how many more there were."""
    out = error_details_pb2.BadRequest()
    for k, (field, description) in enumerate(violations):
        v = error_details_pb2.BadRequest.FieldViolation(
            field=_cut(field, MAX_FIELD_CHARS), description=_cut(description,
                                                                 MAX_DESCRIPTION_CHARS))
        if k and out.ByteSize() + v.ByteSize() > MAX_DETAILS_BYTES:
            more = len(violations) - k
            out.field_violations.add(
                field="(more)", description=f"and {more:,} more violation"
                                            f"{'s' if more > 1 else ''} not listed")
            break
        out.field_violations.append(v)
    return out


def _cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def cut_message(text: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """A status message: `text` cut to `limit` bytes of UTF-8 at a character's edge (grpc
    sends it percent-encoded: up to three times its bytes), saying how much was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    return f"{kept}… ({len(text) - len(kept):,} more characters)"


class Undecodable:
    """What the wrapped deserializer gives for bytes that do not decode: the reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


def _decoding(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, UnicodeDecodeError) as exc:
            return Undecodable(str(exc) or type(exc).__name__)

    return decode


def _refuse(context: grpc.ServicerContext, method: str, bad: Undecodable) -> NoReturn:
    abort_bad_request(context, f"the request to {method} is not a valid protobuf message", [
        ("(request)", f"the bytes do not decode as the method's request message: {bad.reason}")])


def _checked(requests: Iterator[Any], context: grpc.ServicerContext,
             method: str) -> Iterator[Any]:
    for request in requests:
        if isinstance(request, Undecodable):
            _refuse(context, method, request)
        yield request


def _unary_request(behaviour: Callable[..., Any], method: str,
                   observe: Observe | None) -> Callable[..., Any]:
    def run(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            if observe is not None:
                observe(method.rpartition("/")[2], "INVALID_ARGUMENT", 0.0)
            _refuse(context, method, request)
        return behaviour(request, context)

    return run


def _stream_request(behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
    def run(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        return behaviour(_checked(requests, context, method), context)

    return run


class DecodeErrors(grpc.ServerInterceptor):
    """Give every method with a request deserializer the wrappers above. `observe(method,
    code, seconds)` counts a refused unary request of the services named in `observed`
    (their handler never runs, so nothing else would; the services whose calls are not
    counted, health and reflection, are not counted refused either); a stream's handler
    sees the refusal inside its loop and counts it itself."""

    def __init__(self, observe: Observe | None = None, observed: Collection[str] = ()):
        self.observe = observe
        self.observed = frozenset(observed)
        #: The wrapped handler of each method's handler, made once (a call's cost otherwise).
        self._wrapped: dict[tuple[str, Any], Any] = {}

    def intercept_service(self, continuation: Callable[[Any], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        key = (handler_call_details.method, handler)
        wrapped = self._wrapped.get(key)
        if wrapped is None:
            wrapped = self._wrapped[key] = self._wrap(handler_call_details.method, handler)
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        decode = _decoding(handler.request_deserializer)
        out = handler.response_serializer
        service = method.split("/")[1] if method.count("/") >= 2 else ""  # "/pkg.Service/M"
        observe = self.observe if service in self.observed else None
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary_request(handler.unary_unary, method, observe), decode, out)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _unary_request(handler.unary_stream, method, observe), decode, out)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _stream_request(handler.stream_unary, method), decode, out)
        return grpc.stream_stream_rpc_method_handler(
            _stream_request(handler.stream_stream, method), decode, out)
