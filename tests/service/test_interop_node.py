"""A client in another language talks to the service: Node.js with @grpc/grpc-js.

The service runs in-process; `tests/service/interop/client.js` loads the contract from `proto/`
with @grpc/proto-loader, checks health, evaluates two events and sends an empty batch, whose
INVALID_ARGUMENT carries a `google.rpc.Status` with a `BadRequest` in the
`grpc-status-details-bin` trailer. The client prints what it saw as one JSON object.

Node and the npm modules (package.json, installed by `make test` with `npm ci`) are required:
the test fails rather than skips without them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest

from service.api.rulebook.v1 import evaluation_service_pb2 as ev_pb
from service.api.rulebook.v1 import evaluation_service_pb2_grpc as ev_grpc
from service.api.rulebook.v1 import events_pb2
from service.server import Application, ServerConfig

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "tests" / "service" / "interop" / "client.js"
MODULES = ("@grpc/grpc-js", "@grpc/proto-loader", "protobufjs")

#: The order the client sends (client.js): 2 x 39.9 yuan.
ORDER_AMOUNT = 79.8


def node() -> str:
    """The node binary ($NODE, or node on PATH), with the npm modules the client needs."""
    path = os.environ.get("NODE") or shutil.which("node")
    if not path:
        pytest.fail("node not found: install Node.js (`make test` installs nodejs and npm with "
                    "apt-get) or set NODE")
    missing = [m for m in MODULES
               if not (ROOT / "node_modules" / m / "package.json").is_file()]
    if missing:
        pytest.fail(f"npm modules missing: {', '.join(missing)}; `make test` runs `npm ci` "
                    "(see package.json)")
    return path


@pytest.fixture()
def app(tmp_path):
    config = ServerConfig(rulebooks=str(ROOT / "rules" / "books" / "lowprice-2024"), port=0,
                          state=str(tmp_path / "state.sqlite"), grace_seconds=2)
    application = Application(config)
    application.start()
    yield application
    application.stop(grace=1)


def run_client(port: int) -> dict[str, Any]:
    result = subprocess.run([node(), str(CLIENT), f"127.0.0.1:{port}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def test_node_client_checks_health_evaluates_and_reads_error_details(app) -> None:
    seen = run_client(app.port)

    assert seen["health"] == {"status": "SERVING"}

    listing, order = seen["evaluate"]["results"]
    assert [(r["index"], r["event_id"]) for r in (listing, order)] == [
        (0, "node-listing"), (1, "node-order")]
    assert not listing["errors"] and not order["errors"]
    assert not listing["duplicate"] and not order["duplicate"]
    assert listing["decisions"]
    [commission] = [d for d in order["decisions"] if d["rule"] == "commission_on_paid_amount"]
    assert (commission["rulebook_set"], commission["merchant_id"], commission["trigger"],
            commission["outcome"]) == ("lowprice-2024", "node-m1", "event", "applied")
    assert commission["burden"]["merchant"] == pytest.approx(0.05 * ORDER_AMOUNT)
    assert commission["burden"]["platform"] == 0
    [fee] = commission["effects"]
    assert fee["effect"] == "charge_fee" and fee["args"]["kind"] == "commission"
    assert fee["burden"] == [{"party": "merchant", "category": "commission",
                              "amount": pytest.approx(0.05 * ORDER_AMOUNT)}]
    # google.protobuf.Struct crossed the wire: the value the rule's condition read.
    assert commission["explanation"] == {"event.amount": pytest.approx(ORDER_AMOUNT)}

    empty = seen["empty"]
    assert (empty["error"], empty["code_name"]) == (grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                                    "INVALID_ARGUMENT")
    assert empty["trailer_values"] == 1
    status = empty["status"]
    assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status["message"] == empty["details"] == "a batch needs at least one event"
    assert status["details"] == [{
        "type_url": "type.googleapis.com/google.rpc.BadRequest",
        "field_violations": [{"field": "events", "description": "empty"}],
    }]
    assert empty["violation_field"] == "events"


def test_events_from_node_are_journalled_as_python_would_send_them(app) -> None:
    seen = run_client(app.port)
    node_ids = [[d["decision_id"] for d in r["decisions"]] for r in seen["evaluate"]["results"]]
    E = events_pb2
    same = [
        E.Event(event_id="node-listing", merchant_id="node-m1",
                event_time="2024-07-01T09:00:00+08:00",
                listing_updated=E.ListingUpdated(listing_id="node-millet", product_group="grain",
                                                 price=39.9, unit_cost=30, quality=0.9)),
        E.Event(event_id="node-order", merchant_id="node-m1",
                event_time="2024-07-01T10:00:00+08:00",
                order_placed=E.OrderPlaced(order_id="node-o1", listing_id="node-millet",
                                           quantity=2, amount=ORDER_AMOUNT, shipping_cost=4)),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        again = ev_grpc.EvaluationServiceStub(channel).Evaluate(
            ev_pb.EvaluateRequest(events=same), timeout=30)
    assert [r.duplicate for r in again.results] == [True, True]
    assert [[d.decision_id for d in r.decisions] for r in again.results] == node_ids
    assert app.ingestor.journal_size() == 2
