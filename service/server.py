"""The gRPC service: evaluation, rulebook management, health, reflection, metrics.

Batches stay batches from the wire to the journal: one request carries up to `max_batch`
events, the ingestor evaluates and commits them in one transaction, and the answer goes back
only after that commit. The engines are single-threaded, so batches are evaluated one at a
time; gRPC worker threads wait for their turn within their deadline.

The evaluation replies are assembled as wire bytes from the result bodies the journal stores
(see service.convert), so the evaluation service is registered with a pass-through response
serialiser instead of the generated one; every other service uses its generated registration.
"""

from __future__ import annotations

import gc
import json
import logging
import operator
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rules.loader import load_rulebook_text, load_set, load_set_from_texts
from rules.rulebook import Rulebook, RulebookSet
from rules.yamlsource import SourceError, read_text
from service import simulation_service
from service.api.rulebook.v1 import (
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    rulebook_service_pb2,
    rulebook_service_pb2_grpc,
)
from service.audit import grpc_service as audit_grpc
from service.convert import (
    evaluate_response_wire,
    event_from_proto,
    rejected_wire,
    result_wire,
    stream_response_wire,
)
from service.ingest import PRIMARY, SHADOW, BatchReport, Ingestor
from service.metrics import ServiceMetrics
from service.request_decoding import DecodeErrors, abort_bad_request, cut_message
from service.rulebook_sets import SET_ID
from service.state import DEFAULT_MAX_CACHED_ORDERS

log = logging.getLogger("rulebook.service")

SERVICE_NAMES = (
    evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name,
    rulebook_service_pb2.DESCRIPTOR.services_by_name["RulebookService"].full_name,
    simulation_service.SERVICE_NAME,
    audit_grpc.SERVICE_NAME,
)
_ROLE = {rulebook_service_pb2.SET_ROLE_PRIMARY: PRIMARY,
         rulebook_service_pb2.SET_ROLE_SHADOW: SHADOW,
         rulebook_service_pb2.SET_ROLE_UNSPECIFIED: PRIMARY}
_ROLE_ENUM = {PRIMARY: rulebook_service_pb2.SET_ROLE_PRIMARY,
              SHADOW: rulebook_service_pb2.SET_ROLE_SHADOW}


@dataclass
class ServerConfig:
    """Everything `rulebook serve` can be told, by flag or by environment variable."""

    rulebooks: str
    shadow: str | None = None
    host: str = "127.0.0.1"
    port: int = 50051
    metrics_port: int = 9464
    state: str = "rulebook-state.sqlite"
    admin_token: str | None = None
    max_batch: int = 10_000
    max_in_flight: int = 64
    workers: int = 16
    grace_seconds: float = 10.0
    max_cached_orders: int = DEFAULT_MAX_CACHED_ORDERS


class BadRequest(Exception):
    """A request that is malformed as a whole: INVALID_ARGUMENT with field violations."""

    def __init__(self, message: str, violations: list[tuple[str, str]]):
        super().__init__(message)
        self.violations = violations


def _abort_bad_request(context: grpc.ServicerContext, exc: BadRequest) -> None:
    abort_bad_request(context, str(exc), exc.violations)


class _Observed:
    """Times each RPC and counts it by method and final status code."""

    def __init__(self, metrics: ServiceMetrics):
        self.metrics = metrics

    def unary(self, method: str, fn: Callable[[Any, grpc.ServicerContext], Any]) \
            -> Callable[[Any, grpc.ServicerContext], Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                return fn(request, context)
            except BadRequest as exc:
                code = "INVALID_ARGUMENT"
                _abort_bad_request(context, exc)
            except grpc.RpcError:
                code = _code_name(context)
                raise
            except Exception as exc:
                # `context.abort` raises a plain Exception after setting the status.
                code = _code_name(context, "")
                if code:
                    raise
                code = "INTERNAL"
                _abort_internal(context, method, exc)
            finally:
                self.metrics.observe_rpc(method, code, time.perf_counter() - started)
            return None

        return run


def _abort_internal(context: grpc.ServicerContext, method: str, exc: Exception) -> None:
    """A failure that is neither the request's fault nor the store's: INTERNAL, logged with its
    traceback, rather than the UNKNOWN gRPC would send for an escaped exception."""
    log.error("%s failed", method, exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, cut_message(
        f"{method} failed inside the service: {type(exc).__name__}: {exc}"))


def _code_name(context: grpc.ServicerContext, default: str = "UNKNOWN") -> str:
    try:
        code = context.code()
    except Exception:
        code = None
    return code.name if isinstance(code, grpc.StatusCode) else default


class EvaluationServicer(evaluation_service_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, app: Application):
        self.app = app

    def Evaluate(self, request: Any, context: grpc.ServicerContext) -> bytes:
        """The serialised `EvaluateResponse` (see `add_evaluation_servicer`)."""
        return evaluate_response_wire(self.app.evaluate(request.events, context, "events"))

    def StreamEvaluate(self, request_iterator: Iterator[Any],
                       context: grpc.ServicerContext) -> Iterator[Any]:
        started = time.perf_counter()
        code = "OK"
        try:
            # Reading the next batch only after the previous answer has been handed to gRPC is
            # the flow control: a client that stops reading stops the server reading too.
            for k, batch in enumerate(request_iterator):
                try:
                    results = self.app.evaluate(batch.events, context, "events")
                except BadRequest as exc:
                    # Which of the stream's messages: the earlier ones were answered.
                    code = "INVALID_ARGUMENT"
                    _abort_bad_request(context, BadRequest(
                        f"batch {batch.batch_id!r} (message {k + 1} of the stream): {exc}",
                        exc.violations))
                yield stream_response_wire(batch.batch_id, results)
        except grpc.RpcError:
            code = _code_name(context)
            raise
        except Exception as exc:
            code = _code_name(context, "")
            if code:
                raise
            code = "INTERNAL"
            _abort_internal(context, "StreamEvaluate", exc)
        finally:
            self.app.metrics.observe_rpc("StreamEvaluate", code, time.perf_counter() - started)


def _already_serialised(message: bytes) -> bytes:
    return message


def add_evaluation_servicer(servicer: EvaluationServicer, server: grpc.Server) -> None:
    """Register the evaluation service like the generated `add_..._to_server`, except that its
    answers are already serialised (`bytes`) and go on the wire as they are."""
    service = evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name
    handlers = {
        "Evaluate": grpc.unary_unary_rpc_method_handler(
            servicer.Evaluate,
            request_deserializer=evaluation_service_pb2.EvaluateRequest.FromString,
            response_serializer=_already_serialised),
        "StreamEvaluate": grpc.stream_stream_rpc_method_handler(
            servicer.StreamEvaluate,
            request_deserializer=evaluation_service_pb2.StreamEvaluateRequest.FromString,
            response_serializer=_already_serialised),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


class RulebookServicer(rulebook_service_pb2_grpc.RulebookServiceServicer):
    def __init__(self, app: Application):
        self.app = app

    def ListRulebookSets(self, request: Any, context: grpc.ServicerContext) -> Any:
        return rulebook_service_pb2.ListRulebookSetsResponse(sets=[
            _set_info(role, rs) for role, rs in sorted(self.app.ingestor.sets().items())
        ])

    def GetRulebook(self, request: Any, context: grpc.ServicerContext) -> Any:
        role = _role(request.role)
        sets = self.app.ingestor.sets()
        if role not in sets:
            raise BadRequest(f"no {role} rulebook set is loaded", [("role", "not loaded")])
        rulebook = sets[role].rulebooks.get(request.family)
        if rulebook is None:
            raise BadRequest(f"no rulebook for family '{request.family}'", [
                ("family", f"one of {', '.join(sorted(sets[role].rulebooks))}")])
        parsed = struct_pb2.Struct()
        parsed.update(json.loads(json.dumps(read_text(rulebook.text, rulebook.file).data,
                                            default=str)))
        return rulebook_service_pb2.GetRulebookResponse(
            info=_rulebook_info(rulebook), yaml_text=rulebook.text, parsed=parsed)

    def ValidateRulebook(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.yaml_text:
            raise BadRequest("yaml_text is empty", [("yaml_text", "send the rulebook's text")])
        name = request.file_name or "rulebook.yaml"
        try:
            rulebook = load_rulebook_text(request.yaml_text, name, "submitted")
        except SourceError as exc:
            return rulebook_service_pb2.ValidateRulebookResponse(valid=False, violations=[
                rulebook_service_pb2.RulebookViolation(
                    file=v.file, line=v.line, column=v.column, path=v.path, message=v.message)
                for v in exc.violations])
        return rulebook_service_pb2.ValidateRulebookResponse(valid=True,
                                                             info=_rulebook_info(rulebook))

    def LoadRulebookSet(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.app.authorize_admin(context)
        if not request.set_id:
            raise BadRequest("set_id is empty", [("set_id", "name the set, e.g. reformed-2025")])
        if not SET_ID.match(request.set_id):
            raise BadRequest("set_id is not a set's name", [
                ("set_id", "lower-case letters, digits, '.', '_' and '-', at most 64, "
                           "starting with a letter or digit, e.g. reformed-2025")])
        role = _role(request.role)
        if not request.files:
            raise BadRequest("files is empty", [
                ("files", "send the set's rulebook files: file name to YAML text")])
        try:
            rulebook_set = load_set_from_texts(request.set_id, dict(request.files))
        except SourceError as exc:
            raise BadRequest("the rulebook set does not load", [
                (f"files[{v.file}]", f"{v.line}:{v.column}: {v.path}: {v.message}")
                for v in exc.violations]) from None
        self.app.replace(role, rulebook_set)
        return rulebook_service_pb2.LoadRulebookSetResponse(set=_set_info(role, rulebook_set))


def _role(value: int) -> str:
    """The set role a request names (unspecified: primary); BadRequest for a number the
    enum does not have (it would have replaced the primary set)."""
    if value not in _ROLE:
        raise BadRequest(f"unknown role {value}", [
            ("role", "SET_ROLE_PRIMARY, SET_ROLE_SHADOW or unspecified (primary)")])
    return _ROLE[value]


def _rulebook_info(rb: Rulebook) -> Any:
    return rulebook_service_pb2.RulebookInfo(
        id=rb.id, family=rb.family, revision=rb.revision, version=rb.metadata.version,
        published=rb.metadata.published.isoformat(), effective=rb.metadata.effective.isoformat(),
        rules=len(rb.rules), parameters=len(rb.parameters))


def _set_info(role: str, rs: RulebookSet) -> Any:
    return rulebook_service_pb2.RulebookSetInfo(
        id=rs.id, role=_ROLE_ENUM[role], revision=rs.revision,
        rulebooks=[_rulebook_info(rb) for _, rb in sorted(rs.rulebooks.items())])


class Application:
    """The service's parts wired together: ingestor, metrics, gRPC server and health."""

    def __init__(self, config: ServerConfig, metrics: ServiceMetrics | None = None):
        self.config = config
        self.metrics = metrics or ServiceMetrics()
        self.health = health.HealthServicer()
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        primary = load_set(config.rulebooks)
        shadow = load_set(config.shadow) if config.shadow else None
        self.ingestor = Ingestor(config.state, primary, shadow,
                                 max_cached_orders=config.max_cached_orders)
        for role, rs in self.ingestor.sets().items():
            self._publish(role, rs)
        self.server: grpc.Server | None = None
        self.port: int | None = None
        self._stopped = threading.Event()
        self._closed = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> int:
        observed = _Observed(self.metrics)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.config.workers,
                                       thread_name_prefix="rpc"),
            maximum_concurrent_rpcs=self.config.max_in_flight,
            interceptors=[DecodeErrors(self.metrics.observe_rpc, SERVICE_NAMES)],
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                     ("grpc.max_send_message_length", 64 * 1024 * 1024)],
        )
        evaluation = EvaluationServicer(self)
        evaluation.Evaluate = observed.unary("Evaluate", evaluation.Evaluate)  # type: ignore
        add_evaluation_servicer(evaluation, server)
        rulebooks = RulebookServicer(self)
        for name in ("ListRulebookSets", "GetRulebook", "ValidateRulebook", "LoadRulebookSet"):
            setattr(rulebooks, name, observed.unary(name, getattr(rulebooks, name)))
        rulebook_service_pb2_grpc.add_RulebookServiceServicer_to_server(rulebooks, server)
        simulation_service.add_to_server(
            server, sets=lambda: self.ingestor.sets().values(), observe=self.metrics.observe_rpc)
        audit_grpc.add_to_server(
            server, known_sets=lambda: {rs.id: rs for rs in self.ingestor.sets().values()},
            wrap=observed.unary)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
        self.port = server.add_insecure_port(f"{self.config.host}:{self.config.port}")
        if not self.port:
            raise OSError(f"cannot listen on {self.config.host}:{self.config.port}")
        server.start()
        self.server = server
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        return self.port

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight RPCs finish within the grace period, then close."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.server is not None:
            self.server.stop(self.config.grace_seconds if grace is None else grace).wait()
        self.ingestor.close()
        self._closed.set()

    def wait(self) -> None:
        """Block until `stop` has finished."""
        self._closed.wait()

    def _set_health(self, status: int) -> None:
        self.health.set("", status)
        for name in SERVICE_NAMES:
            self.health.set(name, status)

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, events: Any, context: grpc.ServicerContext, prefix: str) -> list[bytes]:
        """Evaluate one batch; the serialised `EventResult` of each event, in request order."""
        n = len(events)
        if n == 0:
            raise BadRequest("a batch needs at least one event", [(prefix, "empty")])
        if n > self.config.max_batch:
            raise BadRequest(f"a batch holds at most {self.config.max_batch} events, not {n}",
                             [(prefix, f"{n} events; split into batches of at most "
                                       f"{self.config.max_batch}")])
        items = [event_from_proto(e, i, prefix) for i, e in enumerate(events)]
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before "
                                                             "the batch could be evaluated")
        try:
            report = self.ingestor.ingest(items, timeout=remaining, received=events)
        except TimeoutError:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                          "the deadline passed while earlier batches were being evaluated")
        except sqlite3.Error as exc:
            # The ingestor rolled the batch back and rebuilt its state from what committed, so
            # the batch can be resent as it is: a failure of the store (disk full, I/O error, a
            # locked file) is the service being unavailable, not the client's fault.
            log.error("batch not journalled", extra={"fields": {"error": str(exc)}})
            context.abort(grpc.StatusCode.UNAVAILABLE,
                          f"the journal could not be written ({exc}); nothing of this batch "
                          "was acknowledged, resend it")
        with self.ingestor.locked():  # metrics read state; no batch may be half applied
            self._observe(report)
        return [rejected_wire(o.index, o.event_id, o.errors) if o.errors
                else result_wire(o.index, o.result, o.duplicate) for o in report.outcomes]

    def _observe(self, report: BatchReport) -> None:
        m = self.metrics
        m.observe_batch(len(report.outcomes))
        m.observe_fsync(report.fsync_seconds)
        for outcome, events in (("evaluated", report.new_events),
                                ("duplicate", report.duplicates)):
            for event_type, n in Counter(map(_event_type, events)).items():
                m.count_events(event_type, outcome, n)
        # Every item of a batch is new, a duplicate or invalid.
        invalid = len(report.outcomes) - len(report.new_events) - len(report.duplicates)
        if invalid:
            m.count_events("unknown", "invalid", invalid)
        sets = self.ingestor.sets()
        for role, decisions in report.new_decisions.items():
            rs = sets.get(role)
            if rs is None:
                continue
            store = self.ingestor.store(role)
            errors = m.observe_decisions(rs.id, role, decisions, _cohort_lookup(store))
            for _ in range(errors):
                m.count_engine_error(rs.id)
            if decisions:
                log.info("batch evaluated", extra={"fields": {
                    "set": rs.id, "role": role, "decisions": len(decisions),
                    "decision_ids": [d.decision_id for d in decisions[:20]]}})

    # -- rulebook sets -----------------------------------------------------------------------
    def replace(self, role: str, rulebook_set: RulebookSet) -> None:
        self.ingestor.replace(role, rulebook_set)
        self._publish(role, rulebook_set)
        log.info("rulebook set loaded", extra={"fields": {
            "role": role, "set": rulebook_set.id, "revision": rulebook_set.revision}})

    def _publish(self, role: str, rs: RulebookSet) -> None:
        self.metrics.set_rulebook_info(rs.id, role, rs.revision,
                                       {f: rb.revision for f, rb in rs.rulebooks.items()})
        self.metrics.register_state_source(rs.id, role, _snapshotter(self.ingestor, role))

    def authorize_admin(self, context: grpc.ServicerContext) -> None:
        token = self.config.admin_token
        if not token:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          "administration is disabled: the server has no admin token")
        supplied = dict(context.invocation_metadata()).get("authorization", "")
        if supplied != f"Bearer {token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "send the metadata 'authorization: Bearer <admin token>'")


_event_type = operator.attrgetter("type")


def _cohort_lookup(store: Any) -> Callable[[str], str]:
    # Every merchant a decision names has a record by then (the engine created it).
    def cohort(merchant_id: str) -> str:
        return store.merchant(merchant_id).get("size_tier") or "unknown"

    return cohort


def _snapshotter(ingestor: Ingestor, role: str) -> Callable[[], Any]:
    """Scrapes read state between batches, never halfway through one (the ingestor's lock)."""
    from service.aggregates import snapshot_from_store

    def snapshot() -> Any:
        with ingestor.locked():
            return snapshot_from_store(ingestor.store(role), ingestor.engines[role].watermark)

    return snapshot


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the `fields` a log call passed in `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record), "level": record.levelname,
               "logger": record.name, "message": record.getMessage()}
        out.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


#: Allocations between young-generation collections while serving (CPython's default: 700).
GC_YOUNG_THRESHOLD = 100_000


def _tune_gc() -> None:
    """Collect less often while serving: a batch of 1,000 events allocates some hundred thousand
    short-lived objects, almost all freed by reference counting, so the default threshold runs
    the cycle collector hundreds of times per batch over the same long-lived objects (about a
    tenth of the CPU time, see bench/RESULTS.md). What exists at start-up (rulebooks, compiled
    rules, modules) is frozen out of the collector's view for good."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def serve(config: ServerConfig, log_json: bool = False) -> int:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    handler = logging.StreamHandler()
    if log_json:
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    from prometheus_client import start_http_server

    app = Application(config)
    _tune_gc()
    metrics_server, _ = start_http_server(config.metrics_port, addr=config.host,
                                          registry=app.metrics.registry)
    metrics_url = f"http://{config.host}:{metrics_server.server_port}/metrics"
    port = app.start()
    sets = ", ".join(f"{role} {rs.id} ({rs.revision})" for role, rs in app.ingestor.sets().items())
    log.info("serving", extra={"fields": {"grpc": f"{config.host}:{port}",
                                          "metrics": metrics_url, "state": config.state}})
    # One line a person (or a test harness) can read the addresses from.
    print(f"gRPC listening on {config.host}:{port}; metrics on {metrics_url}; "
          f"rulebook sets: {sets}; state in {config.state}", flush=True)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("shutting down", extra={"fields": {"signal": signal.Signals(signum).name}})
        threading.Thread(target=app.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.wait()
    metrics_server.shutdown()
    return 0
