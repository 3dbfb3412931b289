"""`rulebook lint` and `rulebook diff`: what a reviewer runs on a rule change before it is adopted.

Exit codes follow the rest of the CLI: 0 nothing to report at the chosen level, 1 findings at or
above `--fail-on` (for use in CI of a rules repository), 2 usage or input errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

OK, FINDINGS, USAGE = 0, 1, 2


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _write(text: str, out: str | None) -> bool:
    """Write the result; False (said on standard error) if `out` cannot be written."""
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:  # exit 1 means findings: a write error must not look like one
            _err(f"--out {out}: cannot write ({exc.strerror or exc})")
            return False
    else:
        sys.stdout.write(text)
    return True


# -- lint -----------------------------------------------------------------------------------
def cmd_lint(args: argparse.Namespace) -> int:
    import json

    from service.audit.lint import LIMITS, LINT_SEVERITIES, lint_paths

    try:
        result = lint_paths(args.paths)
    except FileNotFoundError as exc:
        _err(str(exc))
        return USAGE
    if args.format == "json":
        text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
    else:
        lines = [str(m) for m in result.messages]
        counts = ", ".join(f"{result.count(s)} {s}" for s in reversed(LINT_SEVERITIES))
        lines.append(f"{len(result.files)} file(s) linted: {counts}")
        lines.append(f"limits: {LIMITS}")
        text = "\n".join(lines) + "\n"
    if not _write(text, args.out):
        return USAGE
    threshold = LINT_SEVERITIES.index(args.fail_on)
    failing = [m for m in result.messages if LINT_SEVERITIES.index(m.severity) >= threshold]
    return FINDINGS if failing else OK


# -- diff -----------------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace) -> int:
    from service.audit import diff

    for path in (args.set_a, args.set_b):
        if not Path(path).is_dir():
            _err(f"{path}: not a directory of rulebooks")
            return USAGE
    if args.days < 1 or args.replications < 1 or args.seed < 0:
        _err("--days and --replications must be at least 1 and --seed zero or more")
        return USAGE
    try:
        result = diff.diff(args.set_a, args.set_b, verdicts=not args.no_verdicts,
                           project=args.project, days=args.days,
                           replications=args.replications, seed=args.seed)
    except diff.DiffError as exc:
        _err(str(exc))
        return USAGE
    if not _write(diff.render(result, args.format), args.out):
        return USAGE
    if args.fail_on and diff.worsened(result, args.fail_on):
        return FINDINGS
    return OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add `lint` and `diff` to the `rulebook` parser."""
    from service.audit.finding import SEVERITY_ORDER
    from service.audit.lint import LINT_SEVERITIES

    p = sub.add_parser(
        "lint", help="decision-table lint: overlapping rules, gaps, unreachable rules, "
                     "unused or undefined parameters",
        description="Analyse each rulebook as a decision table (first matching rule wins): "
                    "rules that overlap with different effects, event types or values no rule "
                    "decides (e.g. a refund of exactly the protection line), rules that can "
                    "never fire, parameters declared but unread or read but undeclared. "
                    "Each message names the rules, file:line and, where there is one, a "
                    "concrete witness. DIR may be a set, a directory of sets, or a file.")
    p.add_argument("paths", nargs="+", metavar="DIR", help="rulebook set(s) or file(s)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--fail-on", choices=LINT_SEVERITIES, default="error",
                   help="exit 1 when a message of this severity or worse is found "
                        "(default error)")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser(
        "diff", help="what a rule change changes: rules, parameters, criteria verdicts and "
                     "(with --project) projected outcomes",
        description="Compare rulebook set A (e.g. today's rules) with set B (a proposed "
                    "change): rule by rule (conditions, effects, deadlines, parameters with old "
                    "and new values, rule order), the fairness criteria whose verdict changes, "
                    "and with --project the simulator's paired what-if on the same population "
                    "and seeds (median margin, exit share, burden ratios with their bands).")
    p.add_argument("set_a", metavar="A", help="the baseline rulebook set (directory)")
    p.add_argument("set_b", metavar="B", help="the proposed rulebook set (directory)")
    p.add_argument("--project", metavar="SCENARIO",
                   help="also project both sets on this scenario (a file, or 'default')")
    p.add_argument("--days", type=int, default=60, help="days to project (default 60)")
    p.add_argument("--replications", type=int, default=5,
                   help="paired replications (default 5)")
    p.add_argument("--seed", type=int, default=1, help="seed of both runs (default 1)")
    p.add_argument("--format", choices=("text", "json", "md"), default="text")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--no-verdicts", action="store_true",
                   help="skip the audit of both sets (text changes only)")
    p.add_argument("--fail-on", choices=SEVERITY_ORDER, default=None,
                   help="exit 1 when B brings a new or worse violation of this severity or "
                        "higher")
    p.set_defaults(func=cmd_diff)
