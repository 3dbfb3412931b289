"""End-to-end events/s through Evaluate and StreamEvaluate, next to the gRPC no-op ceiling.

Both servers run as subprocesses on 127.0.0.1 (one core each at most, since the engine is
single-threaded): the real service (`rulebook serve`, lowprice-2024's five rulebooks, journal in
SQLite WAL with an fsync per batch) and a no-op servicer that answers each batch with empty
results of the same count. The client sends the same pre-built batches of 1,000 events to both,
in the same run, then measures batch latency at half the measured throughput.

    python bench/grpc_throughput.py [--merchants 300] [--days 7]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.api.rulebook.v1 import evaluation_service_pb2 as ev_pb  # noqa: E402
from service.api.rulebook.v1 import evaluation_service_pb2_grpc as ev_grpc  # noqa: E402
from service.api.rulebook.v1 import events_pb2  # noqa: E402
from service.generate import generate_events  # noqa: E402


class NoOp(ev_grpc.EvaluationServiceServicer):
    def Evaluate(self, request, context):
        return ev_pb.EvaluateResponse(results=[ev_pb.EventResult(index=i, event_id=e.event_id)
                                               for i, e in enumerate(request.events)])

    def StreamEvaluate(self, request_iterator, context):
        for batch in request_iterator:
            yield ev_pb.StreamEvaluateResponse(batch_id=batch.batch_id, results=[
                ev_pb.EventResult(index=i, event_id=e.event_id)
                for i, e in enumerate(batch.events)])


def run_noop() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    ev_grpc.add_EvaluationServiceServicer_to_server(NoOp(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"gRPC listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


def to_proto(e: dict) -> events_pb2.Event:
    m = events_pb2.Event(event_id=e["event_id"], merchant_id=e["merchant_id"],
                         event_time=e["event_time"])
    payload = getattr(m, e["type"])
    payload.SetInParent()
    for k, v in e["payload"].items():
        setattr(payload, k, v)
    return m


def start(cmd: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    line = proc.stdout.readline()
    port = int(re.search(r"listening on [\d.]+:(\d+)", line).group(1))
    return proc, port


def measure(port: int, batches: list[list], pace: float | None = None,
            stream: bool = False) -> dict:
    """Unary Evaluate over all batches, or (stream=True) one StreamEvaluate over all of them."""
    out = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}",
                               options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
        stub = ev_grpc.EvaluationServiceStub(ch)
        n = sum(len(b) for b in batches)
        if stream:
            reqs = (ev_pb.StreamEvaluateRequest(batch_id=f"s{i}", events=b)
                    for i, b in enumerate(batches))
            t0 = time.perf_counter()
            count = sum(1 for _ in stub.StreamEvaluate(reqs, timeout=600))
            assert count == len(batches)
            return {"stream_events_per_s": round(n / (time.perf_counter() - t0))}
        latencies = []
        t0 = time.perf_counter()
        for i, batch in enumerate(batches):
            if pace:
                wait = t0 + i * pace - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            s = time.perf_counter()
            stub.Evaluate(ev_pb.EvaluateRequest(events=batch), timeout=120)
            latencies.append(time.perf_counter() - s)
        elapsed = time.perf_counter() - t0
        out["evaluate_events_per_s"] = round(n / elapsed)
        out["evaluate_p50_ms"] = round(statistics.median(latencies) * 1000, 1)
        out["evaluate_p99_ms"] = round(sorted(latencies)[int(0.99 * (len(latencies) - 1))]
                                       * 1000, 1)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--noop-server":
        run_noop()
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merchants", type=int, default=300)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    events = [to_proto(e) for e in generate_events(args.merchants, args.days, seed=1)]
    batches = [events[i:i + args.batch] for i in range(0, len(events), args.batch)]

    noop, noop_port = start([sys.executable, __file__, "--noop-server"])
    try:
        ceiling = measure(noop_port, batches) | measure(noop_port, batches, stream=True)
    finally:
        noop.kill()
    with tempfile.TemporaryDirectory() as tmp:
        def serve(name: str) -> tuple[subprocess.Popen, int]:
            return start([sys.executable, "-m", "service.cli", "serve", "--rulebooks",
                          str(ROOT / "rules/books/lowprice-2024"), "--port", "0",
                          "--metrics-port", "0", "--state", f"{tmp}/{name}.sqlite"])

        # A fresh state per pass, so no pass is answered from an earlier pass's journal.
        def one_pass(name: str, **kw) -> dict:
            server, port = serve(name)
            try:
                return measure(port, batches, **kw)
            finally:
                server.terminate()
                server.wait(timeout=30)

        full = one_pass("unary") | one_pass("stream", stream=True)
        half_rate = full["evaluate_events_per_s"] / 2
        half = one_pass("half", pace=args.batch / half_rate)
    print(json.dumps({
        "events": len(events), "batch": args.batch,
        "noop_ceiling": ceiling,
        "service": full,
        "service_at_half_load": {"events_per_s_offered": round(half_rate),
                                 "p50_ms": half["evaluate_p50_ms"],
                                 "p99_ms": half["evaluate_p99_ms"]},
        "evaluate_over_ceiling": round(full["evaluate_events_per_s"]
                                       / ceiling["evaluate_events_per_s"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
