"""SimulationService over a real in-process gRPC server: streamed progress, then the result."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service import request_decoding, simulation_service
from service.api.rulebook.v1 import rulebook_sets_pb2 as sets_pb
from service.api.rulebook.v1 import simulation_service_pb2 as pb
from service.api.rulebook.v1 import simulation_service_pb2_grpc as pb_grpc
from service.server import BadRequest
from simulator.projection import Projection
from tests.simulator.projection_factory import synthetic_projection

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "rules" / "books"


def fake_project(rulebook_set: Any, scenario: Any, days: int, replications: int, seed: int, *,
                 progress: Callable[[int, int], None] | None = None, **_: Any) -> Projection:
    """Stands in for the model: reports progress per day, differs by set."""
    for day in range(1, days + 1):
        if progress:
            progress(day * replications, days * replications)
    level = 0.1 if rulebook_set.id == "reformed-2025" else 0.0
    p = synthetic_projection(replications=replications, days=days, seed=seed, level=level,
                             set_id=rulebook_set.id)
    p.scenario = scenario.name
    return p


@pytest.fixture
def serve() -> Iterator[Callable[..., Any]]:
    servers: list[grpc.Server] = []
    channels: list[grpc.Channel] = []

    def start(**kwargs: Any) -> Any:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        observed: list[tuple[str, str]] = []
        kwargs.setdefault("project", fake_project)
        simulation_service.add_to_server(
            server, observe=lambda m, c, s: observed.append((m, c)), **kwargs)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        stub = pb_grpc.SimulationServiceStub(channel)
        stub.observed = observed  # type: ignore[attr-defined]
        return stub

    yield start
    for c in channels:
        c.close()
    for s in servers:
        s.stop(None)


def _params(**kw: Any) -> Any:
    return pb.SimulationParameters(**{"days": 6, "replications": 3, "seed": 5, **kw})


def _violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)
    assert status is not None
    out = []
    for detail in status.details:
        br = error_details_pb2.BadRequest()
        assert detail.Unpack(br)
        out += [(v.field, v.description) for v in br.field_violations]
    return out


def test_simulate_streams_progress_then_the_summary(serve: Callable[..., Any]) -> None:
    stub = serve()
    replies = list(stub.Simulate(pb.SimulateRequest(
        rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"), parameters=_params()),
        timeout=30))
    kinds = [r.WhichOneof("kind") for r in replies]
    assert kinds[-1] == "summary" and set(kinds[:-1]) == {"progress"} and len(kinds) >= 3
    progress = [r.progress for r in replies[:-1]]
    assert progress[0].done == 0 and progress[-1].done == progress[-1].total == 18
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    s = replies[-1].summary
    assert (s.set_id, s.days, s.replications, s.seed, s.scenario) == (
        "lowprice-2024", 6, 3, 5, "default")
    assert list(s.cohorts) == ["small", "medium", "large"] and len(s.revision) == 16
    margin_small = next(x for x in s.series if x.name == "margin_mean" and x.cohort == "small")
    assert margin_small.unit == "fraction" and margin_small.final.replications == 3
    assert margin_small.final.p5 <= margin_small.final.mean <= margin_small.final.p95
    gini = next(x for x in s.series if x.name == "exposure_gini")
    assert gini.cohort == "" and gini.HasField("final")
    assert any(x.name == "price_pct" and x.quantile == pytest.approx(0.9) for x in s.series)
    assert list(s.infinite) == []
    assert stub.observed == [("Simulate", "OK")]


def test_the_summary_names_the_series_that_reached_infinity(
        serve: Callable[..., Any]) -> None:
    """As `rulebook simulate` warns of them: a series with an infinite value on some day of
    some replication is listed (its figures show no value)."""
    def overflowing(*args: Any, **kwargs: Any) -> Projection:
        p = fake_project(*args, **kwargs)
        p.series["gmv"][1, 2] = np.inf
        p.series["price_mean"][0, -1, 0] = -np.inf
        return p

    stub = serve(project=overflowing)
    replies = list(stub.Simulate(pb.SimulateRequest(
        rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"), parameters=_params()),
        timeout=30))
    assert list(replies[-1].summary.infinite) == ["gmv", "price_mean"]


def test_whatif_streams_progress_then_the_comparison(serve: Callable[..., Any]) -> None:
    stub = serve()
    replies = list(stub.WhatIf(pb.WhatIfRequest(
        a=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
        b=sets_pb.RulebookSetSource(set_id="reformed-2025"),
        parameters=_params(), confidence=0.9), timeout=30))
    assert replies[-1].WhichOneof("kind") == "comparison"
    progress = [r.progress for r in replies[:-1]]
    assert {p.set_id for p in progress} == {"lowprice-2024", "reformed-2025"}
    assert progress[-1].done == progress[-1].total == 36
    c = replies[-1].comparison
    assert (c.a_set_id, c.b_set_id, c.confidence) == ("lowprice-2024", "reformed-2025", 0.9)
    d = next(x for x in c.differences if x.series == "share_alive_by_cohort"
             and x.cohort == "small" and x.statistic == pb.OUTCOME_STATISTIC_FINAL)
    assert d.difference == pytest.approx(0.1) and d.significant and d.pairs == 3


def test_inline_rulebook_set_and_scenario_text(serve: Callable[..., Any]) -> None:
    stub = serve()
    files = {p.name: p.read_text() for p in (BOOKS / "reformed-2025").glob("*.yaml")}
    scenario = (ROOT / "simulator" / "scenarios" / "default.yaml").read_text()
    scenario = scenario.replace("name: default", "name: proposal", 1)
    replies = list(stub.Simulate(pb.SimulateRequest(
        rulebooks=sets_pb.RulebookSetSource(inline=sets_pb.InlineRulebookSet(
            set_id="proposal-1", files=files)),
        parameters=_params(scenario_yaml=scenario, days=2, replications=1)), timeout=30))
    s = replies[-1].summary
    assert (s.set_id, s.scenario, s.days) == ("proposal-1", "proposal", 2)


@pytest.mark.parametrize(("request_", "field", "text"), [
    (pb.SimulateRequest(parameters=_params()), "rulebooks", "set_id"),
    (pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(set_id="nope"), parameters=_params()),
     "rulebooks.set_id", "lowprice-2024"),
    (pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(set_id="../books"),
                        parameters=_params()), "rulebooks.set_id", "unknown"),
    (pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
                        parameters=_params(days=99999)), "parameters.days", "3650"),
    (pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
                        parameters=_params(replications=-1)), "parameters.replications", "256"),
    (pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
                        parameters=_params(scenario_name="../etc")),
     "parameters.scenario_name", "default"),
    (pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
                        parameters=_params(scenario_yaml="scenario:\n  name: x\n  bogus: 1\n")),
     "parameters.scenario_yaml", "scenario.yaml:"),
    (pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
                        parameters=_params(scenario_yaml="scenario:\n  name: x\x01\n")),
     "parameters.scenario_yaml", "scenario.yaml:2:10: YAML does not allow the character U+0001"),
    (pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
                        parameters=_params(scenario_yaml=(ROOT / "simulator" / "scenarios"
                                                          / "default.yaml").read_text()
                                           .replace('start: "2024-07-01"',
                                                    'start: "9999-12-31"'), days=10)),
     "parameters.days", "run past what the calendar holds"),
    (pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(inline=sets_pb.InlineRulebookSet(
        set_id="p", files={"refund.yaml": "rulebook: [\n"})), parameters=_params()),
     "rulebooks.inline.files[refund.yaml]", "refund.yaml:"),
])
def test_bad_requests_are_invalid_argument_with_field_violations(
        serve: Callable[..., Any], request_: Any, field: str, text: str) -> None:
    stub = serve()
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Simulate(request_, timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = _violations(info.value)
    assert any(f == field and text in d for f, d in violations), violations
    assert stub.observed == [("Simulate", "INVALID_ARGUMENT")]


def test_a_long_refused_request_still_reaches_the_client_as_invalid_argument(
        serve: Callable[..., Any]) -> None:
    """The refusal travels in trailing metadata, which the client caps (8 KiB soft, 16 KiB
    hard): echoing a 10,000-character set id or 2,000 unknown keys in full once came back
    as RESOURCE_EXHAUSTED. Cut, it is the refusal, with the rest counted."""
    stub = serve()
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Simulate(pb.SimulateRequest(
            rulebooks=sets_pb.RulebookSetSource(set_id="a" * 10_000), parameters=_params()),
            timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in _violations(info.value)] == ["rulebooks.set_id"]
    message = info.value.details()
    assert "more characters" in message
    assert len(message.split("…")[0].encode()) <= request_decoding.MAX_MESSAGE_BYTES <= 512

    scenario = (ROOT / "simulator" / "scenarios" / "default.yaml").read_text()
    scenario += "".join(f"extra{k}: 1\n" for k in range(2000))
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Simulate(pb.SimulateRequest(
            rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
            parameters=_params(scenario_yaml=scenario)), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = _violations(info.value)
    assert violations[0][0] == "parameters.scenario_yaml" and "extra0" in violations[0][1]
    listed = len(violations) - 1
    assert violations[-1] == ("(more)", f"and {2000 - listed:,} more violations not listed")
    assert 10 < listed < 2000


def test_whatif_confidence_out_of_range(serve: Callable[..., Any]) -> None:
    stub = serve()
    with pytest.raises(grpc.RpcError) as info:
        list(stub.WhatIf(pb.WhatIfRequest(
            a=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
            b=sets_pb.RulebookSetSource(set_id="reformed-2025"), parameters=_params(),
            confidence=1.5), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in _violations(info.value)] == ["confidence"]


def test_a_run_too_large_is_refused_before_it_starts(serve: Callable[..., Any]) -> None:
    stub = serve(limits=simulation_service.SimulationLimits(max_merchant_days=1000))
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Simulate(pb.SimulateRequest(
            rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"), parameters=_params()),
            timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "merchant-days" in _violations(info.value)[0][1]


def test_one_projection_at_a_time_then_resource_exhausted(serve: Callable[..., Any]) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow_project(*args: Any, progress: Any = None, **kw: Any) -> Projection:
        started.set()
        release.wait(10)
        return fake_project(*args, progress=progress, **kw)

    stub = serve(project=slow_project)
    request = pb.SimulateRequest(rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
                                 parameters=_params())
    first = stub.Simulate(request, timeout=30)
    assert next(first).progress.done == 0
    assert started.wait(10)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Simulate(request, timeout=30))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    release.set()
    assert list(first)[-1].WhichOneof("kind") == "summary"
    # the slot is free again
    assert list(stub.Simulate(request, timeout=30))[-1].WhichOneof("kind") == "summary"


def test_a_cancelled_call_stops_the_model(serve: Callable[..., Any]) -> None:
    stopped = threading.Event()
    steps: list[int] = []

    def endless(*args: Any, progress: Any = None, **kw: Any) -> Projection:
        try:
            for i in range(10_000):
                steps.append(i)
                progress(i, 10_000)
                threading.Event().wait(0.01)
        except BaseException:
            stopped.set()
            raise
        raise AssertionError("the model was not stopped")

    stub = serve(project=endless)
    call = stub.Simulate(pb.SimulateRequest(
        rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"), parameters=_params()),
        timeout=30)
    next(call)
    next(call)
    call.cancel()
    assert stopped.wait(10)
    assert len(steps) < 10_000


def test_simulate_with_the_real_model(serve: Callable[..., Any]) -> None:
    stub = serve(project=None)
    replies = list(stub.Simulate(pb.SimulateRequest(
        rulebooks=sets_pb.RulebookSetSource(set_id="reformed-2025"),
        parameters=_params(days=3, replications=2)), timeout=120))
    assert replies[-1].WhichOneof("kind") == "summary"
    assert replies[-2].progress.done == replies[-2].progress.total == 6
    s = replies[-1].summary
    share = next(x for x in s.series if x.name == "share_alive" and x.cohort == "")
    assert 0.0 <= share.final.mean <= 1.0 and share.final.replications == 2


TINY = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "tiny.yaml"


def _lopsided(sellers: int) -> str:
    """tiny.yaml with its first group's sellers raised: few merchant-days, many slots."""
    text = TINY.read_text()
    lopsided = text.replace("sellers: {value: 6,", f"sellers: {{value: {sellers},", 1)
    assert lopsided != text
    return lopsided


def test_a_population_too_large_for_memory_is_invalid_argument_on_the_scenario() -> None:
    """One day and one replication is well under the merchant-day limit, but 3,000,000 sellers
    in one group would not fit in memory."""
    servicer = simulation_service.SimulationServicer()
    with pytest.raises(BadRequest) as info:
        servicer._parameters(pb.SimulationParameters(days=1, replications=1,
                                                     scenario_yaml=_lopsided(3_000_000)))
    fields = dict(info.value.violations)
    assert "merchant slots" in fields["parameters.scenario_yaml"]


def test_the_bundled_scenario_fits() -> None:
    servicer = simulation_service.SimulationServicer()
    scenario, *_ = servicer._parameters(pb.SimulationParameters(days=1, replications=1))
    assert scenario is not None
