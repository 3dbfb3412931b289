"""Kill the server with SIGKILL mid-stream, restart it, resend: nothing acknowledged is lost or
counted twice, and the burden totals equal an uninterrupted run's."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from rules.loader import load_set
from service.api.rulebook.v1 import evaluation_service_pb2 as ev_pb
from service.api.rulebook.v1 import evaluation_service_pb2_grpc as ev_grpc
from service.api.rulebook.v1 import events_pb2
from service.events import parse_event
from service.generate import generate_events
from service.ingest import PRIMARY, SHADOW, Ingestor, burden_totals
from service.state import SQLiteStateStore, open_database

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "rules" / "books"
BATCH = 200


def to_proto(e: dict) -> events_pb2.Event:
    message = events_pb2.Event(event_id=e["event_id"], merchant_id=e["merchant_id"],
                               event_time=e["event_time"])
    getattr(message, e["type"]).SetInParent()
    payload = getattr(message, e["type"])
    for key, value in e["payload"].items():
        setattr(payload, key, value)
    return message


@pytest.fixture(scope="module")
def stream() -> list[list[dict]]:
    events = list(generate_events(30, 3, seed=21))
    return [events[i:i + BATCH] for i in range(0, len(events), BATCH)]


class Server:
    def __init__(self, state: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve",
             "--rulebooks", str(BOOKS / "lowprice-2024"), "--shadow", str(BOOKS / "reformed-2025"),
             "--port", "0", "--metrics-port", "0", "--state", str(state),
             "--grace-seconds", "5"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        found = re.search(r"gRPC listening on [\d.]+:(\d+)", line)
        if not found:
            self.proc.kill()
            raise AssertionError(f"server did not start: {line}{self.proc.stderr.read()}")
        self.port = int(found.group(1))

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(f"127.0.0.1:{self.port}")


def send(server: Server, batches: list[list[dict]], acked: list[int], first: int,
         kill_after: int | None = None) -> None:
    requests = (ev_pb.StreamEvaluateRequest(batch_id=str(i), events=[to_proto(e) for e in b])
                for i, b in enumerate(batches) if i >= first)
    with server.channel() as channel:
        stub = ev_grpc.EvaluationServiceStub(channel)
        try:
            for reply in stub.StreamEvaluate(requests, timeout=120):
                acked.append(int(reply.batch_id))
                if kill_after is not None and len(acked) == kill_after:
                    os.kill(server.proc.pid, signal.SIGKILL)
        except grpc.RpcError as exc:
            assert kill_after is not None, exc  # only the killed server may break the stream


def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path, stream) -> None:
    reference = Ingestor(tmp_path / "reference.sqlite", load_set(BOOKS / "lowprice-2024"),
                         load_set(BOOKS / "reformed-2025"))
    for batch in stream:
        reference.ingest([parse_event(e) for e in batch])
    expected = (burden_totals(reference.store(PRIMARY)), burden_totals(reference.store(SHADOW)))
    reference.close()

    state = tmp_path / "state.sqlite"
    server = Server(state)
    acked: list[int] = []
    send(server, stream, acked, 0, kill_after=3)
    assert server.proc.wait(timeout=30) == -signal.SIGKILL
    assert acked[:3] == [0, 1, 2] and len(acked) < len(stream)  # killed mid-stream
    acknowledged = {e["event_id"] for i in acked for e in stream[i]}

    restarted = Server(state)
    try:
        again: list[int] = []
        # Resend from the first batch not acknowledged; the last acknowledged batch too, to
        # check that a resent acknowledged batch is not counted twice.
        send(restarted, stream, again, max(acked))
        assert again == list(range(max(acked), len(stream)))
        restarted.proc.send_signal(signal.SIGTERM)
        assert restarted.proc.wait(timeout=30) == 0
    finally:
        if restarted.proc.poll() is None:
            restarted.proc.kill()

    db = open_database(state)
    journalled = [row[0] for row in db.execute("SELECT event_id FROM journal")]
    assert len(journalled) == len(set(journalled)) == sum(len(b) for b in stream)
    assert acknowledged <= set(journalled)
    stores = (SQLiteStateStore(db=db, prefix="primary_"), SQLiteStateStore(db=db, prefix="shadow_"))
    assert (burden_totals(stores[0]), burden_totals(stores[1])) == expected
    db.close()


def test_sigterm_shuts_down_gracefully(tmp_path, stream) -> None:
    server = Server(tmp_path / "s.sqlite")
    acked: list[int] = []
    send(server, stream[:2], acked, 0)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == \
            len(stream[0]) + len(stream[1])
