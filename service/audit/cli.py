"""`rulebook audit`: hold a rulebook set against the fairness criteria and write the report.

Exit codes as everywhere in `rulebook`: 0 the audit ran (and nothing at or above `--fail-on` was
violated), 1 a violation at or above `--fail-on`, 2 usage or input errors (a set, catalogue,
events file or scenario that does not load; a report format this build cannot write).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from service.audit.finding import SEVERITY_ORDER, AuditReport

OK, FINDINGS, USAGE = 0, 1, 2
FORMATS = ("json", "md", "html")

EXAMPLES = """\
examples:
  rulebook audit rules/books/lowprice-2024 --format html --out report.html
  rulebook audit rules/books/reformed-2025 --fail-on high          # for CI: exit 1 on a violation
  rulebook audit rules/books/lowprice-2024 --events week.jsonl --format md --out audit.md
  rulebook audit rules/books/lowprice-2024 --project default --days 90 --replications 4
  rulebook audit rules/books/2025-06 --history rules/books/2025-01 --history rules/books/2024-07
  rulebook audit rules/books/lowprice-2024 --param appeal_capacity.orders_per_day=300
"""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def report_json(report: AuditReport) -> str:
    """The JSON report: through the published schema's renderer when this build has it."""
    renderer = _renderer()
    if renderer is not None:
        return str(renderer(report, "json"))
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _renderer() -> Any:
    try:
        module = importlib.import_module("service.audit.report")
    except ModuleNotFoundError as exc:
        if exc.name == "service.audit.report":
            return None
        raise
    return getattr(module, "render", None)


def _parameters(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r}: write criterion.parameter=value")
        out[key.strip()] = value.strip()
    return out


def _projection(args: argparse.Namespace, rulebook_set: Any) -> Any:
    """Run the simulator for --project, or raise ValueError saying why it cannot."""
    try:
        run = importlib.import_module("simulator.run")
    except ModuleNotFoundError as exc:
        if exc.name in ("simulator.run",):
            raise ValueError("--project needs the simulator (simulator.run), which this build "
                             "does not have yet") from None
        raise
    from rules.yamlsource import SourceError
    from simulator.scenario import load_scenario

    path = None if args.project == "default" else args.project
    if path is not None and not Path(path).is_file():
        raise ValueError(f"{path}: no such scenario file (or use --project default)")
    try:
        scenario = load_scenario(path)
    except SourceError as exc:
        raise ValueError("\n".join(str(v) for v in exc.violations)) from None
    problem = run.run_problem(scenario, args.days, args.replications)
    if problem is not None:
        raise ValueError(f"{scenario.file}: {problem}")
    return run.project(rulebook_set, scenario, args.days, args.replications, args.seed)


def cmd_audit(args: argparse.Namespace) -> int:
    from rules.loader import load_set
    from rules.yamlsource import SourceError
    from service.audit.audit import audit, violations_at_or_above

    if args.format != "json" and _renderer() is None:
        _err(f"--format {args.format} needs the report renderer (service.audit.report), which "
             "this build does not have yet; use --format json")
        return USAGE
    try:
        parameters = _parameters(args.param)
        rs = load_set(args.dir)
        history = [load_set(h) for h in args.history]
        projection = _projection(args, rs) if args.project else None
        if args.events is not None and not Path(args.events).is_file():
            raise ValueError(f"{args.events}: no such events file")
        report = audit(rs, events=args.events, projection=projection,
                       catalogue=args.criteria, parameters=parameters, history=history,
                       strict_counterexamples=False)
    except SourceError as exc:
        for v in exc.violations:
            _err(str(v))
        return USAGE
    except (ValueError, FileNotFoundError) as exc:
        _err(str(exc))
        return USAGE
    text = report_json(report) if args.format == "json" else \
        str(_renderer()(report, args.format))
    if args.out in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:  # exit 1 means "violations found": a write error is not that
            _err(f"--out {args.out}: cannot write the report ({exc.strerror or exc})")
            return USAGE
    failing = violations_at_or_above(report, args.fail_on) if args.fail_on else []
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[f.verdict] = counts.get(f.verdict, 0) + 1
    summary = ", ".join(f"{counts.get(v, 0)} {v.replace('_', ' ')}"
                        for v in ("violation", "warning", "pass", "not_applicable"))
    _err(f"audited {report.rulebook_set} (revision {report.revision}) against "
         f"{report.inputs.get('criteria')} criteria: {summary}"
         + (f"; wrote {args.out}" if args.out not in (None, "-") else ""))
    if failing:
        _err(f"{len(failing)} violation(s) at or above {args.fail_on}: "
             + ", ".join(sorted({f.criterion for f in failing})))
        return FINDINGS
    return OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add `rulebook audit` to the `rulebook` parser."""
    p = sub.add_parser(
        "audit", help="hold a rulebook set against the fairness criteria; write the report",
        description="Check a rulebook set against the fairness criteria catalogue "
                    "(rules/criteria/): statically on the rule text, dynamically on a replayed "
                    "events file, and on a simulator projection. Rule-level violations come "
                    "with a counterexample replayed through the engine.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", metavar="DIR", help="the rulebook set directory to audit")
    p.add_argument("--events", metavar="FILE",
                   help="JSON Lines events to replay for the dynamic checks")
    p.add_argument("--project", metavar="SCENARIO",
                   help="a simulator scenario file (or 'default') for the projected checks")
    p.add_argument("--days", type=int, default=90, help="days to project (default 90)")
    p.add_argument("--replications", type=int, default=4,
                   help="replications to project (default 4)")
    p.add_argument("--seed", type=int, default=1, help="projection seed (default 1)")
    p.add_argument("--history", metavar="DIR", action="append", default=[],
                   help="an earlier version of the set (repeatable), for rule stability")
    p.add_argument("--criteria", metavar="DIR",
                   help="a criteria catalogue directory (default: the bundled rules/criteria)")
    p.add_argument("--param", metavar="CRITERION.PARAM=VALUE", action="append", default=[],
                   help="change a criterion threshold for this audit (repeatable)")
    p.add_argument("--format", choices=FORMATS, default="json")
    p.add_argument("--out", metavar="FILE", default="-",
                   help="where to write the report (default: standard output)")
    p.add_argument("--fail-on", choices=SEVERITY_ORDER, default=None, metavar="SEVERITY",
                   help="exit 1 when a violation of this severity or worse is found "
                        f"({', '.join(SEVERITY_ORDER)}); default: never")
    p.set_defaults(func=cmd_audit)
