"""End-to-end events/s through Evaluate and StreamEvaluate, next to the gRPC no-op ceiling.

Both servers run as subprocesses on 127.0.0.1 (one core each at most, since the engine is
single-threaded): the real service (`rulebook serve`, lowprice-2024's five rulebooks, journal in
SQLite WAL with an fsync per batch) and a no-op servicer that answers each batch with empty
results of the same count. The client sends the same pre-built batches of 1,000 events to both,
in the same run, then measures batch latency at half the measured throughput.

The machine the figures come from is shared, so besides wall-clock events/s each pass reports
the server process's own CPU time per event (user + system, from /proc): events per CPU-second
is what one core does when it has the core to itself, and it moves far less with other load.

    python bench/grpc_throughput.py [--merchants 300] [--days 7] [--repeat 3]
                                    [--compare-with <another checkout>]
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
sys.path.insert(0, str(ROOT / "bench"))

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


def start(cmd: list[str], cwd: Path = ROOT) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    line = proc.stdout.readline()
    port = int(re.search(r"listening on [\d.]+:(\d+)", line).group(1))
    return proc, port


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def raw_durable_rate(events: list[dict], repeat: int = 3) -> float:
    """Events/s through bare durable_rules posts in this process (see engine_throughput.py)."""
    from engine_throughput import raw_post_rate

    from service.events import parse_event

    return raw_post_rate([parse_event(e) for e in events], repeat)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--noop-server":
        run_noop()
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merchants", type=int, default=300)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1,
                    help="passes of each kind; figures are medians")
    ap.add_argument("--compare-with", metavar="DIR",
                    help="also serve from this checkout of the project (e.g. a git worktree of "
                         "an earlier commit), pass for pass with this one, in the same run")
    args = ap.parse_args()
    generated = list(generate_events(args.merchants, args.days, seed=1))
    events = [to_proto(e) for e in generated]
    batches = [events[i:i + args.batch] for i in range(0, len(events), args.batch)]

    def median_of(runs: list[dict]) -> dict:
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    noop, noop_port = start([sys.executable, __file__, "--noop-server"])
    try:
        ceiling = median_of([measure(noop_port, batches) | measure(noop_port, batches,
                                                                   stream=True)
                             for _ in range(args.repeat)])
    finally:
        noop.kill()
    raw = raw_durable_rate(generated)
    trees = {"service": ROOT}
    if args.compare_with:
        trees["compared"] = Path(args.compare_with).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        passes = iter(range(1_000_000))

        def serve(tree: Path) -> tuple[subprocess.Popen, int]:
            return start([sys.executable, "-m", "service.cli", "serve", "--rulebooks",
                          str(ROOT / "rules/books/lowprice-2024"), "--port", "0",
                          "--metrics-port", "0", "--state", f"{tmp}/{next(passes)}.sqlite"],
                         cwd=tree)

        # A fresh state per pass, so no pass is answered from an earlier pass's journal.
        def one_pass(tree: Path, **kw) -> dict:
            server, port = serve(tree)
            try:
                before = cpu_seconds(server.pid)
                out = measure(port, batches, **kw)
                after = cpu_seconds(server.pid)
                if before is not None and after is not None and after > before:
                    key = "stream" if kw.get("stream") else "evaluate"
                    out[f"{key}_events_per_server_cpu_s"] = round(len(events) / (after - before))
                return out
            finally:
                server.terminate()
                server.wait(timeout=30)

        # Pass for pass, alternating trees, so that both see the same background load.
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.repeat):
            for name, tree in trees.items():
                runs[name].append(one_pass(tree) | one_pass(tree, stream=True))
        full = {name: median_of(r) for name, r in runs.items()}
        half: dict[str, dict] = {}
        for name, tree in trees.items():
            rate = full[name]["evaluate_events_per_s"] / 2
            got = median_of([one_pass(tree, pace=args.batch / rate) for _ in range(args.repeat)])
            half[name] = {"events_per_s_offered": round(rate), "p50_ms": got["evaluate_p50_ms"],
                          "p99_ms": got["evaluate_p99_ms"],
                          # Idle gaps between batches make each batch cost the server more CPU
                          # on this machine (see bench/RESULTS.md), so this is reported too.
                          "events_per_server_cpu_s": got.get("evaluate_events_per_server_cpu_s")}
    report = {
        "events": len(events), "batch": args.batch, "repeat": args.repeat,
        "noop_ceiling": ceiling,
        "raw_durable_post_events_per_s": round(raw),
    }
    for name in trees:
        report[name] = full[name]
        report[f"{name}_at_half_load"] = half[name]
        report[f"{name}_evaluate_over_ceiling"] = round(
            full[name]["evaluate_events_per_s"] / ceiling["evaluate_events_per_s"], 3)
        report[f"{name}_stream_over_ceiling"] = round(
            full[name]["stream_events_per_s"] / ceiling["stream_events_per_s"], 3)
        report[f"{name}_evaluate_over_raw_durable"] = round(
            full[name]["evaluate_events_per_s"] / raw, 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
