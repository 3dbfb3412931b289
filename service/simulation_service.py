"""gRPC `SimulationService`: projections and what-ifs streamed to other systems.

A projection takes seconds to minutes, so both calls are server-streaming: progress messages
while the model runs, then one result message. The model runs on a thread of its own; the RPC's
thread relays its progress, and if the client goes away (cancels, or its deadline passes) the
next progress report stops the model instead of letting it run on for nobody.

Projections are heavy, so the servicer runs at most ``limits.max_concurrent`` at once and answers
RESOURCE_EXHAUSTED beyond that, and bounds the size of a run (days, replications,
merchant-days). Malformed requests get INVALID_ARGUMENT with google.rpc.BadRequest field
violations, as everywhere in the service.

Registering it in a server::

    from service import simulation_service
    simulation_service.add_to_server(server, sets=lambda: app.ingestor.sets().values(),
                                     observe=app.metrics.observe_rpc)
"""

from __future__ import annotations

import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from service.api.rulebook.v1 import simulation_service_pb2 as pb
from service.api.rulebook.v1 import simulation_service_pb2_grpc as pb_grpc
from service.rulebook_sets import BUNDLED_BOOKS, resolve_set
from service.rulebook_sets import bad_request as _bad_request

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SimulationService"].full_name
BOOKS_DIR = BUNDLED_BOOKS
_SCENARIO_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")

#: Seconds between two progress messages (the last one is always sent).
PROGRESS_INTERVAL = 0.25

Project = Callable[..., Any]


@dataclass(frozen=True)
class SimulationLimits:
    """What one call may ask for; a request beyond them is INVALID_ARGUMENT."""

    default_days: int = 365
    default_replications: int = 8
    max_days: int = 3650
    max_replications: int = 256
    #: replications x merchants x days of one projection (1e9 is a few minutes on one core).
    max_merchant_days: int = 1_000_000_000
    #: merchant slots of one replication held in memory at once (product groups x the largest
    #: group's sellers, see simulator.population.Layout): about 0.7 GB a million.
    max_merchant_slots: int = 2_000_000
    #: projections running at once; more calls get RESOURCE_EXHAUSTED.
    max_concurrent: int = 1
    max_confidence: float = 0.999


class _Cancelled(Exception):
    """The client went away: stop the model at its next progress report."""


def _abort(context: grpc.ServicerContext, exc: Exception) -> None:
    from service.server import _abort_bad_request

    _abort_bad_request(context, exc)  # type: ignore[arg-type]


def _is_bad_request(exc: Exception) -> bool:
    from service.server import BadRequest

    return isinstance(exc, BadRequest)


class SimulationServicer(pb_grpc.SimulationServiceServicer):
    def __init__(self, *, sets: Callable[[], Iterable[Any]] | None = None,
                 books_dir: Path = BOOKS_DIR, scenarios_dir: Path | None = None,
                 limits: SimulationLimits | None = None, project: Project | None = None,
                 observe: Callable[[str, str, float], None] | None = None):
        from simulator.scenario import DEFAULT_SCENARIO

        self.sets = sets
        self.books_dir = Path(books_dir)
        self.scenarios_dir = Path(scenarios_dir) if scenarios_dir else DEFAULT_SCENARIO.parent
        self.limits = limits or SimulationLimits()
        self._project = project
        self._observe = observe
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent)

    # -- the RPCs ----------------------------------------------------------------------------
    def Simulate(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        return self._streamed("Simulate", context, lambda: self._simulate(request, context))

    def WhatIf(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        return self._streamed("WhatIf", context, lambda: self._whatif(request, context))

    def _streamed(self, method: str, context: grpc.ServicerContext,
                  body: Callable[[], Iterator[Any]]) -> Iterator[Any]:
        started = time.perf_counter()
        code = "OK"
        acquired = False
        try:
            try:
                gen = body()
                first = next(gen)  # validation happens before the first message
            except StopIteration:
                return
            except Exception as exc:
                if _is_bad_request(exc):
                    code = "INVALID_ARGUMENT"
                    _abort(context, exc)
                raise
            if not self._slots.acquire(blocking=False):
                code = "RESOURCE_EXHAUSTED"
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"{self.limits.max_concurrent} projection(s) already running; "
                              "retry later")
            acquired = True
            yield first
            yield from gen
        except _Cancelled:
            code = "CANCELLED"
        except grpc.RpcError:
            code = _code_name(context)
            raise
        except Exception:
            code = _code_name(context, "UNKNOWN")
            raise
        finally:
            if acquired:
                self._slots.release()
            if self._observe is not None:
                self._observe(method, code, time.perf_counter() - started)

    def _simulate(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        rulebook_set = self._resolve_set(request.rulebooks, "rulebooks")
        scenario, days, replications, seed = self._parameters(request.parameters)
        total = replications * days
        yield pb.SimulateResponse(progress=pb.SimulationProgress(
            set_id=rulebook_set.id, done=0, total=total))
        for item in self._run(rulebook_set, scenario, days, replications, seed, context,
                              offset=0, total=total):
            if isinstance(item, pb.SimulationProgress):
                yield pb.SimulateResponse(progress=item)
            else:
                yield pb.SimulateResponse(summary=summary_to_proto(item))

    def _whatif(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        from simulator import whatif

        set_a = self._resolve_set(request.a, "a")
        set_b = self._resolve_set(request.b, "b")
        scenario, days, replications, seed = self._parameters(request.parameters)
        confidence = request.confidence or whatif.DEFAULT_CONFIDENCE
        if not (0.0 < confidence <= self.limits.max_confidence) or math.isnan(confidence):
            raise _bad_request("confidence out of range", [
                ("confidence", f"between 0 and {self.limits.max_confidence}, e.g. 0.95; "
                               "0 means 0.95")])
        total = 2 * replications * days
        yield pb.WhatIfResponse(progress=pb.SimulationProgress(
            set_id=set_a.id, done=0, total=total))
        projections = []
        for offset, rs in ((0, set_a), (replications * days, set_b)):
            for item in self._run(rs, scenario, days, replications, seed, context,
                                  offset=offset, total=total):
                if isinstance(item, pb.SimulationProgress):
                    yield pb.WhatIfResponse(progress=item)
                else:
                    projections.append(item)
        comparison = whatif.compare(projections[0], projections[1], confidence=confidence)
        yield pb.WhatIfResponse(comparison=comparison_to_proto(comparison))

    # -- running the model -------------------------------------------------------------------
    def _run(self, rulebook_set: Any, scenario: Any, days: int, replications: int, seed: int,
             context: grpc.ServicerContext, *, offset: int, total: int) -> Iterator[Any]:
        """Project on a worker thread; yield progress messages, then the Projection."""
        project = self._project
        if project is None:
            from simulator.run import project
        reports: queue.Queue[tuple[str, Any]] = queue.Queue()
        cancelled = threading.Event()

        def progress(done: int, steps: int) -> None:
            if cancelled.is_set():
                raise _Cancelled()
            reports.put(("progress", (done, steps)))

        def work() -> None:
            try:
                reports.put(("done", project(rulebook_set, scenario, days, replications, seed,
                                             progress=progress)))
            except BaseException as exc:  # handed to the RPC thread, which re-raises it
                reports.put(("error", exc))

        thread = threading.Thread(target=work, name=f"simulate-{rulebook_set.id}", daemon=True)
        thread.start()
        last_sent = 0.0
        try:
            while True:
                try:
                    kind, value = reports.get(timeout=0.5)
                except queue.Empty:
                    if not context.is_active():
                        cancelled.set()
                        raise _Cancelled() from None
                    continue
                if kind == "progress":
                    if not context.is_active():
                        cancelled.set()
                        raise _Cancelled()
                    done, steps = value
                    now = time.monotonic()
                    if now - last_sent >= PROGRESS_INTERVAL or done >= steps:
                        last_sent = now
                        share = (done / steps) if steps else 1.0
                        yield pb.SimulationProgress(
                            set_id=rulebook_set.id, total=total,
                            done=offset + round(share * replications * days))
                elif kind == "error":
                    raise value
                else:
                    yield value
                    return
        finally:
            cancelled.set()

    # -- reading requests --------------------------------------------------------------------
    def _resolve_set(self, source: Any, field: str) -> Any:
        return resolve_set(source, field, sets=self.sets() if self.sets else (),
                           books_dir=self.books_dir)

    def _parameters(self, params: Any) -> tuple[Any, int, int, int]:
        from rules.yamlsource import SourceError
        from simulator.scenario import load_scenario, load_scenario_text

        lim = self.limits
        violations = []
        days = params.days or lim.default_days
        replications = params.replications or lim.default_replications
        if not 1 <= days <= lim.max_days:
            violations.append(("parameters.days", f"between 1 and {lim.max_days}; 0 means "
                                                  f"{lim.default_days}"))
        if not 1 <= replications <= lim.max_replications:
            violations.append(("parameters.replications",
                               f"between 1 and {lim.max_replications}; 0 means "
                               f"{lim.default_replications}"))
        which = params.WhichOneof("scenario")
        scenario = None
        try:
            if which == "scenario_yaml":
                scenario = load_scenario_text(params.scenario_yaml, "scenario.yaml")
            else:
                name = params.scenario_name if which == "scenario_name" else "default"
                path = self.scenarios_dir / f"{name}.yaml"
                if not _SCENARIO_NAME.match(name) or not path.is_file():
                    known = sorted(p.stem for p in self.scenarios_dir.glob("*.yaml"))
                    violations.append(("parameters.scenario_name",
                                       f"unknown scenario {name!r}; known: {', '.join(known)}"))
                else:
                    scenario = load_scenario(path)
        except SourceError as exc:
            violations += [("parameters.scenario_yaml", str(v)) for v in exc.violations]
        if scenario is not None and not violations:
            from simulator.population import Layout, calendar_problem

            problem = calendar_problem(scenario.start, days)
            if problem is not None:
                violations.append(("parameters.days", problem))

            layout = Layout.of(scenario)
            if layout.n > lim.max_merchant_slots:
                field = "parameters.scenario_yaml" if which == "scenario_yaml" \
                    else "parameters.scenario_name"
                violations.append((field, f"{len(scenario.model.groups)} product groups x "
                                          f"{layout.slots} sellers in the "
                                          f"largest group is more than "
                                          f"{lim.max_merchant_slots:,} merchant slots"))
            merchants = sum(int(g.sellers.value) for g in scenario.model.groups)
            if merchants * days * replications > lim.max_merchant_days:
                violations.append(("parameters", f"{merchants} merchants x {days} days x "
                                                 f"{replications} replications is more than "
                                                 f"{lim.max_merchant_days:,} merchant-days"))
        if violations:
            raise _bad_request("invalid simulation parameters", violations)
        return scenario, days, replications, int(params.seed)


def _code_name(context: grpc.ServicerContext, default: str = "UNKNOWN") -> str:
    try:
        code = context.code()
    except Exception:
        code = None
    return code.name if isinstance(code, grpc.StatusCode) else default


# -- results to messages --------------------------------------------------------------------------
def _banded(entry: dict[str, Any]) -> Any:
    msg = pb.BandedValue(replications=entry.get("n", 0))
    for key in ("mean", "p5", "p95"):
        if entry.get(key) is not None:
            setattr(msg, key, entry[key])
    return msg


def summary_to_proto(projection: Any) -> Any:
    """A projection's summary (see simulator.outputs.summarize) as a SimulationSummary."""
    from simulator import outputs

    s = outputs.summarize(projection)
    msg = pb.SimulationSummary(set_id=s["set"], revision=s["revision"], scenario=s["scenario"],
                               days=s["days"], replications=s["replications"], seed=s["seed"],
                               cohorts=s["cohorts"], infinite=s["infinite"])
    for name, entry in s["series"].items():
        common = {"name": name, "title": entry["title"], "unit": entry["unit"]}
        final, average = entry["final"], entry["time_average"]
        if "mean" in final:  # population-wide
            msg.series.add(**common, final=_banded(final), time_average=_banded(average))
            continue
        for cohort in s["cohorts"]:
            if "quantiles" in entry:
                for q in entry["quantiles"]:
                    key = f"q{q:g}"
                    msg.series.add(**common, cohort=cohort, quantile=q,
                                   final=_banded(final[cohort][key]),
                                   time_average=_banded(average[cohort][key]))
            else:
                msg.series.add(**common, cohort=cohort, final=_banded(final[cohort]),
                               time_average=_banded(average[cohort]))
    return msg


_STATISTIC = {"final": pb.OUTCOME_STATISTIC_FINAL,
              "time_average": pb.OUTCOME_STATISTIC_TIME_AVERAGE}


def comparison_to_proto(c: Any) -> Any:
    msg = pb.WhatIfComparison(
        a_set_id=c.a["set"], a_revision=c.a["revision"], b_set_id=c.b["set"],
        b_revision=c.b["revision"], scenario=c.scenario, days=c.days,
        replications=c.replications, seed=c.seed, confidence=c.confidence, cohorts=c.cohorts)
    for d in c.differences:
        item = msg.differences.add(series=d.series, cohort=d.cohort or "",
                                   statistic=_STATISTIC[d.statistic], unit=d.unit,
                                   pairs=d.pairs, significant=d.significant)
        for key in ("a", "b", "difference", "low", "high"):
            value = getattr(d, key)
            if math.isfinite(value):
                setattr(item, key, value)
    return msg


def add_to_server(server: grpc.Server, *, sets: Callable[[], Iterable[Any]] | None = None,
                  books_dir: Path = BOOKS_DIR, scenarios_dir: Path | None = None,
                  limits: SimulationLimits | None = None, project: Project | None = None,
                  observe: Callable[[str, str, float], None] | None = None) \
        -> SimulationServicer:
    """Register SimulationService on ``server``; returns the servicer.

    ``sets`` returns the rulebook sets the server runs (found by id before the bundled ones in
    ``books_dir``); ``observe(method, code, seconds)`` is called once per call, e.g. the
    service metrics' ``observe_rpc``; ``project`` replaces the model (tests).
    """
    servicer = SimulationServicer(sets=sets, books_dir=books_dir, scenarios_dir=scenarios_dir,
                                  limits=limits, project=project, observe=observe)
    pb_grpc.add_SimulationServiceServicer_to_server(servicer, server)
    return servicer
