"""The real server serves the simulation and audit services next to evaluation: health,
reflection, a call each, and the RPC metrics that count them."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.api.rulebook.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    rulebook_sets_pb2,
    simulation_service_pb2,
    simulation_service_pb2_grpc,
)
from service.server import Application, ServerConfig

BOOKS = Path(__file__).resolve().parents[2] / "rules" / "books"
SERVICES = ("rulebook.v1.SimulationService", "rulebook.v1.AuditService")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    state = tmp_path_factory.mktemp("served") / "state.sqlite"
    config = ServerConfig(rulebooks=str(BOOKS / "lowprice-2024"),
                          shadow=str(BOOKS / "reformed-2025"), port=0, state=str(state),
                          grace_seconds=2)
    application = Application(config)
    application.start()
    yield application
    application.stop(grace=1)


@pytest.fixture(scope="module")
def channel(app):
    with grpc.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        yield ch


@pytest.mark.parametrize("service", SERVICES)
def test_health_reports_each_service_serving(channel, service: str) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(
        service=service), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_them(channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    [reply] = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        list_services="")]), timeout=10)
    names = {s.name for s in reply.list_services_response.service}
    assert set(SERVICES) <= names


def test_audit_of_the_primary_set_by_id(app, channel) -> None:
    stub = audit_service_pb2_grpc.AuditServiceStub(channel)
    reply = stub.AuditRulebook(audit_service_pb2.AuditRulebookRequest(
        rulebooks=rulebook_sets_pb2.RulebookSetSource(set_id="lowprice-2024")), timeout=60)
    assert reply.rulebook_set == "lowprice-2024"
    assert reply.revision == app.ingestor.sets()["primary"].revision
    below_cost = [f for f in reply.findings if f.criterion == "below_cost_forcing"
                  and f.verdict == audit_service_pb2.VERDICT_VIOLATION]
    assert below_cost
    with pytest.raises(grpc.RpcError) as err:
        stub.AuditRulebook(audit_service_pb2.AuditRulebookRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_simulate_streams_progress_then_the_summary(channel) -> None:
    stub = simulation_service_pb2_grpc.SimulationServiceStub(channel)
    replies = list(stub.Simulate(simulation_service_pb2.SimulateRequest(
        rulebooks=rulebook_sets_pb2.RulebookSetSource(set_id="reformed-2025"),
        parameters=simulation_service_pb2.SimulationParameters(days=2, replications=1, seed=7)),
        timeout=120))
    assert replies[-1].WhichOneof("kind") == "summary"
    assert any(r.WhichOneof("kind") == "progress" for r in replies[:-1])
    summary = replies[-1].summary
    assert (summary.set_id, summary.days, summary.replications, summary.seed) == \
        ("reformed-2025", 2, 1, 7)
    assert summary.series
