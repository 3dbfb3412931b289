"""A real Prometheus scrapes the running service, and its figures are what the events imply.

The service runs in-process with its `/metrics` endpoint on a free port; Debian's `prometheus`
server scrapes it every second. A small, fully known set of events goes through `Evaluate`:
three merchants of known size tiers each sell one order, pay for 40 advertising clicks between
them, and the small merchant's refund-only claim on a shipped order goes unanswered until the
36-hour window has passed, so it is granted by timeout. Once Prometheus has scraped after the
last batch, its HTTP API must give back exactly the burdens and counts those events carry under
the lowprice-2024 rules: 5 % commission of every paid amount, 2.17 yuan per click, and for the
granted claim the product cost, the shipping and the 0.17-yuan recall fee.

The test fails, rather than skips, when the prometheus binary is missing
(`apt-get install -y prometheus`, or set PROMETHEUS).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import pytest
import yaml
from prometheus_client import start_http_server

from rules.loader import load_set
from service.api.rulebook.v1 import evaluation_service_pb2 as ev_pb
from service.api.rulebook.v1 import evaluation_service_pb2_grpc as ev_grpc
from service.api.rulebook.v1 import events_pb2 as E
from service.server import Application, ServerConfig

ROOT = Path(__file__).resolve().parents[2]
RULEBOOKS = ROOT / "rules" / "books" / "lowprice-2024"
SET = "lowprice-2024"
JOB = "rulebook"

# The lowprice-2024 parameters (commission.yaml, refund.yaml).
COMMISSION_RATE = 0.05
COST_PER_CLICK = 2.17
RECALL_FEE = 0.17
RESPONSE_WINDOW_HOURS = 36

T0 = dt.datetime.fromisoformat("2024-07-01T09:00:00+08:00")


class Sale(NamedTuple):
    merchant: str
    tier: str
    order: str
    quantity: int
    amount: float
    shipping: float
    unit_cost: float
    clicks: int


SALES = (
    Sale("m-small", "small", "o-small", 2, 39.9, 4.0, 15.0, 10),
    Sale("m-medium", "medium", "o-medium", 1, 120.5, 6.0, 80.0, 25),
    Sale("m-large", "large", "o-large", 5, 1999.0, 12.0, 300.0, 5),
)
#: The small merchant's order is shipped and claimed refund-only; nobody answers the claim.
CLAIMED = SALES[0]


def at(hours: float) -> str:
    return (T0 + dt.timedelta(hours=hours)).isoformat()


def first_batch() -> list[E.Event]:
    events = []
    for s in SALES:
        events += [
            E.Event(event_id=f"{s.merchant}-registered", merchant_id=s.merchant,
                    event_time=at(0), merchant_registered=E.MerchantRegistered(size_tier=s.tier)),
            E.Event(event_id=f"{s.merchant}-listing", merchant_id=s.merchant, event_time=at(0),
                    listing_updated=E.ListingUpdated(
                        listing_id=f"{s.merchant}-item", product_group="grain",
                        price=s.amount / s.quantity, unit_cost=s.unit_cost, quality=0.8)),
            E.Event(event_id=f"{s.merchant}-order", merchant_id=s.merchant, event_time=at(1),
                    order_placed=E.OrderPlaced(
                        order_id=s.order, listing_id=f"{s.merchant}-item", quantity=s.quantity,
                        amount=s.amount, shipping_cost=s.shipping)),
        ]
    c = CLAIMED
    events += [
        E.Event(event_id="claim-shipped", merchant_id=c.merchant, event_time=at(2),
                order_shipped=E.OrderShipped(order_id=c.order)),
        E.Event(event_id="claim", merchant_id=c.merchant, event_time=at(3),
                refund_requested=E.RefundRequested(order_id=c.order, kind="refund_only",
                                                   evidence_valid=False)),
    ]
    events += [E.Event(event_id=f"{s.merchant}-clicks", merchant_id=s.merchant, event_time=at(4),
                       ad_click_charged=E.AdClickCharged(clicks=s.clicks))
               for s in SALES if s is not CLAIMED]
    return events


def second_batch() -> list[E.Event]:
    """The claimed merchant's clicks, after the response window: the claim's deadline fires."""
    c = CLAIMED
    return [E.Event(event_id=f"{c.merchant}-clicks", merchant_id=c.merchant,
                    event_time=at(3 + RESPONSE_WINDOW_HOURS + 9),
                    ad_click_charged=E.AdClickCharged(clicks=c.clicks))]


# -- running Prometheus ---------------------------------------------------------------------------

def prometheus_binary() -> str:
    path = os.environ.get("PROMETHEUS") or shutil.which("prometheus")
    if not path:
        pytest.fail("prometheus not found: install Debian's prometheus package "
                    "(apt-get install -y prometheus) or set PROMETHEUS")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_for(what: str, check: Callable[[], Any], proc: subprocess.Popen[bytes], log: Path,
             timeout: float = 30.0, interval: float = 0.25) -> Any:
    """Poll `check` until it returns something true: at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    for _ in range(int(timeout / interval) + 1):
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited ({proc.returncode}) while waiting for {what}:\n"
                        + log.read_text()[-4000:])
        try:
            last = check()
            if last:
                return last
        except OSError as exc:  # not listening yet, or 503 while starting
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}: {last!r}\n"
                + log.read_text()[-4000:])


class Prometheus:
    def __init__(self, api: str):
        self.api = api

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        answer = get_json(f"{self.api}/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", (expr, answer)
        assert answer["data"]["resultType"] == "vector", (expr, answer)
        return [(r["metric"], float(r["value"][1])) for r in answer["data"]["result"]]

    def by(self, label: str, expr: str) -> dict[str, float]:
        """The series of `expr` by the value of one label (which must tell them apart)."""
        result = self.query(expr)
        out = {metric[label]: value for metric, value in result}
        assert len(out) == len(result), (expr, result)
        return out

    def value(self, expr: str) -> float:
        [(_, value)] = self.query(expr)
        return value


@pytest.fixture()
def app(tmp_path):
    config = ServerConfig(rulebooks=str(RULEBOOKS), port=0, state=str(tmp_path / "state.sqlite"),
                          grace_seconds=2)
    application = Application(config)
    application.start()
    try:
        yield application
    finally:
        application.stop(grace=1)


@pytest.fixture()
def metrics_port(app):
    server, thread = start_http_server(0, addr="127.0.0.1", registry=app.metrics.registry)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def prometheus(metrics_port, tmp_path):
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": JOB, "static_configs": [
            {"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as response:
                return response.status == 200

        wait_for("prometheus to be ready", ready, proc, log)
        yield Prometheus(f"{base}/api/v1"), proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_prometheus_figures_equal_what_the_events_imply(app, prometheus) -> None:
    prom, proc, log = prometheus
    with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = ev_grpc.EvaluationServiceStub(channel)
        first = stub.Evaluate(ev_pb.EvaluateRequest(events=first_batch()), timeout=30)
        second = stub.Evaluate(ev_pb.EvaluateRequest(events=second_batch()), timeout=30)
    # Counters are updated before the answer goes back: a scrape that starts now sees them all.
    evaluated_at = time.time()
    assert not any(r.errors for r in (*first.results, *second.results))
    [granted] = [d for d in second.results[0].decisions if d.trigger == "deadline"]
    assert (granted.rule, granted.event_id) == ("refund_only_shipped", "claim")

    # The scrape's timestamp is its start; 50 ms clears Prometheus's 2 ms timestamp alignment.
    wait_for("a scrape after the last batch",
             lambda: prom.query(f'timestamp(up{{job="{JOB}"}} == 1) > {evaluated_at + 0.05:.3f}'),
             proc, log)

    who = f'set="{SET}",role="primary"'
    burden = f"rulebook_merchant_burden_yuan_total{{{who}"

    commission = prom.by("cohort", f'{burden},category="commission"}}')
    assert commission == {s.tier: pytest.approx(COMMISSION_RATE * s.amount) for s in SALES}
    assert prom.value(f'sum({burden},category="commission"}})') == \
        pytest.approx(COMMISSION_RATE * sum(s.amount for s in SALES))

    ads = prom.by("cohort", f'{burden},category="ads"}}')
    assert ads == {s.tier: pytest.approx(COST_PER_CLICK * s.clicks) for s in SALES}
    clicks = sum(s.clicks for s in SALES)
    assert clicks == 40
    assert prom.value(f'sum({burden},category="ads"}})') == pytest.approx(COST_PER_CLICK * clicks)

    c = CLAIMED
    refund = prom.by("cohort", f'{burden},category="refund"}}')
    assert refund == {c.tier: pytest.approx(c.unit_cost * c.quantity + c.shipping + RECALL_FEE)}
    assert refund[c.tier] == pytest.approx(34.17)

    # Nothing else was put on anyone.
    assert {m["category"] for m, _ in prom.query(f"{burden}}}")} == {"commission", "ads",
                                                                      "refund"}
    assert prom.query("rulebook_platform_burden_yuan_total") == []

    granted_by = prom.query(f"rulebook_refunds_granted_total{{{who}}}")
    assert [(m["cohort"], m["decided_by"], v) for m, v in granted_by] == [(c.tier, "timeout", 1)]
    assert prom.value('rulebook_refunds_granted_total{decided_by="timeout"}') == 1

    events = prom.by("event_type", 'rulebook_events_total{outcome="evaluated"}')
    assert events == {"merchant_registered": 3, "listing_updated": 3, "order_placed": 3,
                      "order_shipped": 1, "refund_requested": 1, "ad_click_charged": 3}
    assert {m["outcome"] for m, _ in prom.query("rulebook_events_total")} == {"evaluated"}
    assert prom.value(f'rulebook_decisions_total{{{who},family="refund",trigger="deadline"}}') == 1
    assert prom.by("cohort", f"rulebook_merchants{{{who}}}") == {s.tier: 1 for s in SALES}

    revision = load_set(RULEBOOKS).revision
    assert revision == app.ingestor.sets()["primary"].revision
    info = prom.query(f'rulebook_rulebook_info{{{who},family="set"}}')
    assert [(m["revision"], m["job"], v) for m, v in info] == [(revision, JOB, 1)]
    families = prom.by("family", f'rulebook_rulebook_info{{{who},family!="set"}}')
    assert families == {f: 1 for f in ("ranking", "auto_follow", "refund", "appeal",
                                       "commission")}
