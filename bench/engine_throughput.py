"""Engine throughput against the raw durable_rules post rate, measured in the same run.

The baseline posts the same events, one message each, to a durable_rules ruleset with one
matching rule per event type and a no-op action: what durable_rules itself costs per event, once
through its Python `Host` (as the engine used to post) and once through its C binding with the
calls the engine now makes (assert, start the action, complete it, all in one reused session). The
engine figure is the whole path for the bundled rulebooks: deadlines, state (SQLite, WAL, one
fsync per batch of 1,000), enrichment, durable_rules, effects and burdens. Validation of the JSON
lines is measured separately, since a service pays it before the engine.

    python bench/engine_throughput.py [--merchants 300] [--days 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from durable import engine as durable_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.loader import load_set  # noqa: E402
from rules.vocabulary import EVENT_TYPES  # noqa: E402
from service.engine import Engine  # noqa: E402
from service.events import parse_event_json  # noqa: E402
from service.generate import generate_events  # noqa: E402
from service.state import SQLiteStateStore  # noqa: E402


class _QuietHost(durable_engine.Host):
    def _run(self) -> None:
        return None


def raw_post_rate(events: list, repeat: int) -> float:
    """Events per second through bare durable_rules posts (one matching rule per type)."""
    rates = []
    for r in range(repeat):
        name = f"raw{r}"
        rules = {
            f"r_{t}": {"all": [{"m": {"type": t}}], "run": lambda c: None} for t in EVENT_TYPES
        }
        host = _QuietHost({name: rules})
        messages = [{"sid": e.merchant_id, "type": e.type} for e in events]
        t0 = time.perf_counter()
        for m in messages:
            host.post(name, m)
        rates.append(len(messages) / (time.perf_counter() - t0))
    return statistics.median(rates)


def raw_binding_post_rate(events: list, repeat: int) -> float:
    """Events per second through durable_rules' C binding, posted the way the engine posts."""
    from service.engine import _DurableRuleset

    rates = []
    for r in range(repeat):
        rules = {
            f"r_{t}": {"all": [{"m": {"type": t}}], "run": lambda c: None} for t in EVENT_TYPES
        }
        ruleset = _DurableRuleset(f"rawc{r}", rules)
        messages = [{"sid": e.merchant_id, "type": e.type} for e in events]
        t0 = time.perf_counter()
        for m in messages:
            ruleset.post_in_session(m)
        rates.append(len(messages) / (time.perf_counter() - t0))
        ruleset.delete()
    return statistics.median(rates)


def engine_rate(events: list, set_dir: Path, repeat: int,
                batch: int) -> tuple[float, float, int]:
    """Median events/s by the wall clock and per CPU-second of this process, and decisions."""
    rates, cpu_rates = [], []
    decisions = 0
    for r in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            store = SQLiteStateStore(Path(tmp) / "state.sqlite")
            engine = Engine(load_set(set_dir), store, host_prefix=f"e{r}.")
            t0, c0 = time.perf_counter(), time.process_time()
            decisions = 0
            for i in range(0, len(events), batch):
                decisions += len(engine.process(events[i:i + batch]))
            rates.append(len(events) / (time.perf_counter() - t0))
            cpu_rates.append(len(events) / (time.process_time() - c0))
            store.close()
    return statistics.median(rates), statistics.median(cpu_rates), decisions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merchants", type=int, default=300)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--set", default=str(ROOT / "rules" / "books" / "lowprice-2024"))
    args = ap.parse_args()

    lines = [json.dumps(e) for e in generate_events(args.merchants, args.days, args.seed)]
    t0 = time.perf_counter()
    events = [parse_event_json(line) for line in lines]
    validate_us = (time.perf_counter() - t0) / len(events) * 1e6

    raw = raw_post_rate(events, args.repeat)
    raw_binding = raw_binding_post_rate(events, args.repeat)
    eng, eng_cpu, decisions = engine_rate(events, Path(args.set), args.repeat, args.batch)
    result = {
        "machine": f"{platform.machine()} {platform.python_implementation()} "
                   f"{platform.python_version()}",
        "events": len(events),
        "merchants": args.merchants,
        "days": args.days,
        "rulebook_set": Path(args.set).name,
        "batch": args.batch,
        "decisions": decisions,
        "validation_us_per_event": round(validate_us, 2),
        "raw_durable_post_events_per_s": round(raw),
        "raw_durable_binding_post_events_per_s": round(raw_binding),
        "engine_events_per_s": round(eng),
        "engine_events_per_cpu_s": round(eng_cpu),
        "engine_over_raw": round(eng / raw, 3),
        "engine_over_raw_binding": round(eng / raw_binding, 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
