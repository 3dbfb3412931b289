"""`rulebook`: validate, test and replay platform rulebooks from the command line.

Exit codes: 0 all good; 1 failed rule tests (or other findings); 2 usage or input errors
(a rulebook that does not load, an event file with invalid lines, a missing file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import sys
import time
from pathlib import Path
from typing import IO, Any

from rules.loader import load_set
from rules.yamlsource import SourceError
from service.state import DEFAULT_MAX_CACHED_ORDERS

OK, FINDINGS, USAGE = 0, 1, 2

EPILOG = """\
examples:
  rulebook validate rules/books/lowprice-2024 rules/books/reformed-2025
  rulebook test rules/books
  rulebook generate --merchants 1000 --days 7 --seed 1 --out events.jsonl
  rulebook replay --rulebooks rules/books/lowprice-2024 --decisions decisions.jsonl events.jsonl

exit codes: 0 ok, 1 failed tests or findings, 2 usage or input errors
"""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


# -- validate -------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    status = OK
    for path in args.paths:
        p = Path(path)
        try:
            if p.is_dir():
                rs = load_set(p)
                books = [{"family": f, "file": rb.file, "revision": rb.revision,
                          "rules": len(rb.rules), "parameters": len(rb.parameters)}
                         for f, rb in sorted(rs.rulebooks.items())]
                results.append({"path": str(p), "ok": True, "set": rs.id,
                                "revision": rs.revision, "rulebooks": books})
            else:
                from rules.loader import load_rulebook

                rb = load_rulebook(p)
                results.append({"path": str(p), "ok": True, "rulebooks": [
                    {"family": rb.family, "file": rb.file, "revision": rb.revision,
                     "rules": len(rb.rules), "parameters": len(rb.parameters)}]})
        except SourceError as exc:
            status = USAGE
            results.append({"path": str(p), "ok": False,
                            "errors": [v.to_dict() for v in exc.violations]})
    if args.format == "json":
        print(json.dumps({"results": results}, indent=2))
        return status
    for r in results:
        if r["ok"]:
            books = ", ".join(f"{b['family']} ({b['rules']} rules)" for b in r["rulebooks"])
            rev = f" revision {r['revision']}" if "revision" in r else ""
            print(f"ok   {r['path']}{rev}: {books}")
        else:
            print(f"FAIL {r['path']}")
            for e in r["errors"]:
                where = f" {e['path']}:" if e["path"] else ""
                print(f"  {e['file']}:{e['line']}:{e['column']}:{where} {e['message']}")
    return status


# -- test -----------------------------------------------------------------------------------
def cmd_test(args: argparse.Namespace) -> int:
    from service.ruletest import find_test_files, run_file

    pairs = []
    for path in args.paths:
        p = Path(path)
        if not p.exists():
            _err(f"{p}: no such file or directory")
            return USAGE
        pairs.extend(find_test_files(p))
    if not pairs:
        _err("no rule tests found (they live in <set>/tests/*.yaml)")
        return USAGE
    sets: dict[Path, Any] = {}
    results = []
    load_errors = []
    for set_dir, test_file in pairs:
        try:
            if set_dir not in sets:
                sets[set_dir] = load_set(set_dir)
            results.extend(run_file(sets[set_dir], test_file))
        except SourceError as exc:
            load_errors.extend(exc.violations)
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    if args.format == "json":
        print(json.dumps({
            "passed": passed, "failed": failed,
            "errors": [v.to_dict() for v in load_errors],
            "cases": [{"file": r.file, "line": r.line, "name": r.name, "passed": r.passed,
                       "failures": r.failures} for r in results],
        }, indent=2))
    else:
        for r in results:
            if r.passed and not args.verbose:
                continue
            mark = "PASS" if r.passed else "FAIL"
            print(f"{mark} {r.file}:{r.line}: {r.name}")
            for f in r.failures:
                print(f"     {f}")
        for v in load_errors:
            print(f"ERROR {v}")
        print(f"{passed} passed, {failed} failed")
    if load_errors:
        return USAGE
    return FINDINGS if failed else OK


# -- generate -------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from service.generate import generate_events, write_jsonl

    if args.merchants < 1 or args.days < 1:
        _err("--merchants and --days must be at least 1")
        return USAGE
    events = generate_events(args.merchants, args.days, args.seed)
    if args.out in (None, "-"):
        # Standard output is for piping into `rulebook replay`; no count is printed.
        for e in events:
            sys.stdout.write(json.dumps(e, separators=(",", ":")) + "\n")
    else:
        n = write_jsonl(events, args.out)
        _err(f"wrote {n} events for {args.merchants} merchants over {args.days} days "
             f"(seed {args.seed}) to {args.out}")
    return OK


# -- replay ---------------------------------------------------------------------------------
def _open_out(path: str | None) -> IO[str]:
    if path in (None, "-"):
        return sys.stdout
    return open(path, "w", encoding="utf-8")


def cmd_replay(args: argparse.Namespace) -> int:
    from service.burden import burden_table
    from service.engine import Engine
    from service.events import EventError, FirstOccurrences, read_jsonl
    from service.state import SQLiteStateStore

    try:
        rs = load_set(args.rulebooks)
    except SourceError as exc:
        for v in exc.violations:
            _err(str(v))
        return USAGE
    if not Path(args.events).is_file():
        _err(f"{args.events}: no such file")
        return USAGE
    store = SQLiteStateStore(args.state or ":memory:")
    engine = Engine(rs, store)
    out = _open_out(args.decisions)
    invalid = 0
    repeated = 0
    seen = FirstOccurrences()
    processed = 0
    decisions = 0
    by_outcome: dict[str, int] = {}
    started = time.perf_counter()
    batch: list[Any] = []

    def flush_batch() -> None:
        nonlocal decisions
        for d in engine.process(batch):
            decisions += 1
            key = d.outcome if d.trigger == "event" else "deadline"
            by_outcome[key] = by_outcome.get(key, 0) + 1
            out.write(json.dumps(d.to_dict(), separators=(",", ":"), ensure_ascii=False) + "\n")
        batch.clear()

    try:
        for line, item in read_jsonl(args.events):
            if isinstance(item, EventError):
                invalid += 1
                if invalid <= 20:
                    _err(f"{args.events}:{line}: invalid event, skipped: "
                         + "; ".join(f"{v.path}: {v.message}" for v in item.errors))
                continue
            first = seen.earlier(item, line)
            if first is not None:
                repeated += 1
                if repeated <= 20:
                    _err(f"{args.events}:{line}: event_id {item.event_id!r} repeats line "
                         f"{first}, skipped (the service answers a resent event once)")
                continue
            batch.append(item)
            processed += 1
            if len(batch) >= args.batch_size:
                flush_batch()
        flush_batch()
        if args.until is not None:
            for d in engine.advance_to(args.until):
                decisions += 1
                by_outcome["deadline"] = by_outcome.get("deadline", 0) + 1
                out.write(json.dumps(d.to_dict(), separators=(",", ":"),
                                     ensure_ascii=False) + "\n")
            store.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    elapsed = time.perf_counter() - started
    engine.close()
    table = burden_table(store.merchants())
    pending = len(engine.pending_deadlines())
    store.close()
    summary = {
        "set": rs.id,
        "revision": rs.revision,
        "events": processed,
        "invalid_events": invalid,
        "duplicate_events": repeated,
        "decisions": decisions,
        "decisions_by_outcome": by_outcome,
        "pending_deadlines": pending,
        "seconds": round(elapsed, 3),
        "burden_by_cohort": [r.to_dict() for r in table],
    }
    summary_out = sys.stderr if args.decisions in (None, "-") else sys.stdout
    if args.format == "json":
        print(json.dumps(summary, indent=2), file=summary_out)
    else:
        _print_summary(summary, table, summary_out)
    if invalid > 20:
        _err(f"... {invalid - 20} more invalid events")
    if repeated > 20:
        _err(f"... {repeated - 20} more repeated event_ids")
    return USAGE if invalid else OK


def _print_summary(summary: dict[str, Any], table: list[Any], out: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=140)
    console.print(
        f"Replayed {summary['events']} events through {summary['set']} (revision "
        f"{summary['revision']}) in {summary['seconds']} s: {summary['decisions']} decisions "
        f"({', '.join(f'{k} {v}' for k, v in sorted(summary['decisions_by_outcome'].items()))}); "
        f"{summary['pending_deadlines']} deadlines still pending"
        + (f"; {summary['invalid_events']} invalid events skipped"
           if summary["invalid_events"] else "")
        + (f"; {summary['duplicate_events']} repeated event_ids skipped"
           if summary["duplicate_events"] else ""),
        highlight=False,
    )
    money = Table(title="Burden borne by merchants, by cohort (yuan)", title_justify="left")
    for col in ("cohort", "merchants", "GMV", "refunds", "commission", "ads", "other fees",
                "cost / GMV", "below cost (per unit)", "platform-borne"):
        money.add_column(col, justify="left" if col == "cohort" else "right")
    for r in table:
        ratio = "-" if r.cost_over_gmv is None else f"{r.cost_over_gmv:.1%}"
        money.add_row(r.cohort, str(r.merchants), f"{r.gmv:,.2f}", f"{r.merchant['refund']:,.2f}",
                      f"{r.merchant['commission']:,.2f}", f"{r.merchant['ads']:,.2f}",
                      f"{r.merchant['fees']:,.2f}", ratio, f"{r.merchant['below_cost']:,.2f}",
                      f"{sum(r.platform.values()):,.2f}")
    console.print(money)
    from service.burden import COUNTERS

    counts = Table(title="Decisions that shift costs, by cohort", title_justify="left")
    counts.add_column("what")
    for r in table:
        counts.add_column(r.cohort, justify="right")
    for key, label in COUNTERS.items():
        values = [r.counts.get(key, 0) for r in table]
        if any(values):
            counts.add_row(label, *[f"{v:,.0f}" for v in values])
    console.print(counts)


# -- serve ----------------------------------------------------------------------------------
def _env(name: str, default: Any) -> Any:
    import os

    # The text as it is: argparse converts a text default with the option's `type` and reports
    # a bad value as a usage error, as for the flag itself.
    value = os.environ.get(name)
    return default if value is None else value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, not {text}")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    from service.server import ServerConfig, serve

    if args.log_format not in ("text", "json"):  # argparse checks choices of flags only
        _err(f"--log-format must be text or json, not {args.log_format!r} "
             "(from RULEBOOK_LOG_FORMAT)")
        return USAGE
    config = ServerConfig(
        rulebooks=args.rulebooks, shadow=args.shadow, host=args.host, port=args.port,
        metrics_port=args.metrics_port, state=args.state, admin_token=args.admin_token,
        max_batch=args.max_batch, max_in_flight=args.max_in_flight,
        grace_seconds=args.grace_seconds, max_cached_orders=args.max_cached_orders,
    )
    try:
        return serve(config, log_json=args.log_format == "json")
    except SourceError as exc:
        for v in exc.violations:
            _err(str(v))
        return USAGE
    except OSError as exc:
        _err(f"cannot start: {exc}")
        return USAGE


# -- schema ---------------------------------------------------------------------------------
def cmd_schema(args: argparse.Namespace) -> int:
    from rules.schema_export import rulebook_schema

    print(json.dumps(rulebook_schema(), indent=2, ensure_ascii=False))
    return OK


_COMMAND_MODULES = ("service.simulate_cli", "service.audit.cli", "service.audit.review_cli")


def _until_time(text: str) -> float:
    """--until as epoch seconds: an RFC 3339 time with its offset, in the years events may
    have (as an event's time is read)."""
    from service.events import epoch_in_range

    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time like 2024-07-10T00:00:00+08:00") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no offset: write one, like 2024-07-10T00:00:00+08:00")
    try:
        return epoch_in_range(moment)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the time must fall in the years 1971 to "
                                         "9998") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rulebook",
        description="Audit e-commerce platform rulebooks: validate them, run their rule tests, "
                    "and replay merchant and order events through them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check rulebook files or sets; errors as file:line:column")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a rulebook set directory or a file")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("test", help="run the rule tests of rulebook sets (<set>/tests/*.yaml)")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a test file, a set directory, or a tree of sets")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("replay", help="evaluate a JSON Lines event file; print decisions and "
                                      "the burden table by cohort")
    p.add_argument("events", metavar="EVENTS.jsonl")
    p.add_argument("--rulebooks", required=True, metavar="DIR", help="a rulebook set directory")
    p.add_argument("--decisions", metavar="FILE", default="-",
                   help="where to write decisions as JSON Lines (default: standard output; the "
                        "summary then goes to standard error)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="format of the summary and burden table")
    p.add_argument("--state", metavar="PATH",
                   help="SQLite state file to keep (default: in memory)")
    p.add_argument("--until", metavar="TIME", type=_until_time,
                   help="after the last event, advance event time to this RFC 3339 time so "
                        "deadlines due by then fire")
    p.add_argument("--batch-size", type=int, default=1000, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("generate", help="write a synthetic event stream for demos and benchmarks")
    p.add_argument("--merchants", type=int, default=100)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", metavar="FILE", help="output file (default: standard output)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "serve", help="run the gRPC service and its Prometheus metrics endpoint",
        description="Run the gRPC service. Every option can also be set by the environment "
                    "variable named in its help; a flag wins over the environment.")
    p.add_argument("--rulebooks", metavar="DIR", default=_env("RULEBOOK_RULEBOOKS", None),
                   required=_env("RULEBOOK_RULEBOOKS", None) is None,
                   help="the primary rulebook set directory [RULEBOOK_RULEBOOKS]")
    p.add_argument("--shadow", metavar="DIR", default=_env("RULEBOOK_SHADOW", None),
                   help="a rulebook set evaluated side by side [RULEBOOK_SHADOW]")
    p.add_argument("--host", default=_env("RULEBOOK_HOST", "127.0.0.1"),
                   help="address to listen on [RULEBOOK_HOST] (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=_env("RULEBOOK_PORT", 50051),
                   help="gRPC port, 0 for any free port [RULEBOOK_PORT] (default 50051)")
    p.add_argument("--metrics-port", type=int, default=_env("RULEBOOK_METRICS_PORT", 9464),
                   help="Prometheus /metrics port [RULEBOOK_METRICS_PORT] (default 9464)")
    p.add_argument("--state", metavar="PATH",
                   default=_env("RULEBOOK_STATE", "rulebook-state.sqlite"),
                   help="SQLite file for the journal and state [RULEBOOK_STATE]")
    p.add_argument("--admin-token", default=_env("RULEBOOK_ADMIN_TOKEN", None),
                   help="bearer token for LoadRulebookSet; unset disables it "
                        "[RULEBOOK_ADMIN_TOKEN]")
    p.add_argument("--max-batch", type=_positive_int, default=_env("RULEBOOK_MAX_BATCH", 10_000),
                   help="most events in one batch [RULEBOOK_MAX_BATCH] (default 10000)")
    p.add_argument("--max-in-flight", type=_positive_int,
                   default=_env("RULEBOOK_MAX_IN_FLIGHT", 64),
                   help="most RPCs at once before RESOURCE_EXHAUSTED [RULEBOOK_MAX_IN_FLIGHT]")
    p.add_argument("--grace-seconds", type=_non_negative_float,
                   default=_env("RULEBOOK_GRACE_SECONDS", 10.0),
                   help="time in-flight RPCs get to finish on SIGTERM [RULEBOOK_GRACE_SECONDS]")
    p.add_argument("--max-cached-orders", type=_positive_int,
                   default=_env("RULEBOOK_MAX_CACHED_ORDERS", DEFAULT_MAX_CACHED_ORDERS),
                   help="orders kept in memory per rulebook set; older ones are read back "
                        "from the state file when needed [RULEBOOK_MAX_CACHED_ORDERS] "
                        f"(default {DEFAULT_MAX_CACHED_ORDERS})")
    p.add_argument("--log-format", choices=("text", "json"),
                   default=_env("RULEBOOK_LOG_FORMAT", "text"),
                   help="structured JSON logs with decision ids [RULEBOOK_LOG_FORMAT]")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("schema", help="print the JSON Schema of rulebook files")
    p.set_defaults(func=cmd_schema)

    # Commands of the simulator and the audit live next to their code; each module registers its
    # own sub-commands.
    for module in _COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return USAGE if exc.code not in (0, None) else OK
    if not getattr(args, "func", None):
        parser.print_help()
        return USAGE
    try:
        return args.func(args)
    except BrokenPipeError:
        return OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
