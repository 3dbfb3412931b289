"""Static audit of a five-rulebook set against the criteria catalogue, with its baseline.

The target (issue: fairness criteria) is a static audit of a five-rulebook set in under 0.2 s.
"Static" is the rule text and parameters only: no events, no projection. Measured in the same run:

- baseline: loading and checking the set alone (YAML, schema, expressions; what any tool pays);
- static checks: `audit(set, counterexamples=False)` on the loaded set, the catalogue loaded once
  (what a CI job or the gRPC service pays per audit);
- static checks with counterexamples: the same plus building and replaying through the engine a
  counterexample for every rule-level violation (the full `rulebook audit` minus rendering);
- end to end: load the set and audit it with counterexamples, as `rulebook audit DIR` does;
- lint, for comparison (decision-table analysis of the same five files).

Each figure is the median of --repeat runs after one warm-up; both bundled sets are measured.

    python bench/audit_static.py [--repeat 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.loader import load_set  # noqa: E402
from service.audit.audit import audit  # noqa: E402
from service.audit.criteria import load_catalogue  # noqa: E402
from service.audit.lint import lint_paths  # noqa: E402

SETS = ("lowprice-2024", "reformed-2025")
TARGET_SECONDS = 0.2


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up: imports, caches, first compile
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(set_dir: Path, repeat: int) -> dict[str, Any]:
    catalogue = load_catalogue(None)
    rs = load_set(set_dir)
    report = audit(rs, catalogue=catalogue, counterexamples=False)
    figures = {
        "load_set": median_seconds(lambda: load_set(set_dir), repeat),
        "static_checks": median_seconds(
            lambda: audit(rs, catalogue=catalogue, counterexamples=False), repeat),
        "static_with_counterexamples": median_seconds(
            lambda: audit(rs, catalogue=catalogue), repeat),
        "end_to_end": median_seconds(lambda: audit(load_set(set_dir), catalogue=catalogue),
                                     repeat),
        "lint": median_seconds(lambda: lint_paths([set_dir]), repeat),
    }
    return {
        "set": rs.id, "rulebooks": len(rs.rulebooks),
        "rules": sum(len(rb.rules) for rb in rs.rulebooks.values()),
        "findings": len(report.findings),
        "violations": sum(1 for f in report.findings if f.verdict == "violation"),
        "seconds": figures,
        "static_over_load": figures["static_checks"] / figures["load_set"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    results = [measure(ROOT / "rules" / "books" / name, args.repeat) for name in SETS]
    if args.json:
        print(json.dumps({"python": platform.python_version(), "target_seconds": TARGET_SECONDS,
                          "results": results}, indent=2))
        return 0
    print(f"static audit of a five-rulebook set; medians of {args.repeat} runs; "
          f"target {TARGET_SECONDS * 1000:.0f} ms (Python {platform.python_version()})")
    header = f"{'figure':30} " + " ".join(f"{r['set']:>15}" for r in results)
    print(header)
    for key in ("load_set", "static_checks", "static_with_counterexamples", "end_to_end",
                "lint"):
        print(f"{key:30} " + " ".join(f"{r['seconds'][key] * 1000:12.1f} ms" for r in results))
    print(f"{'static checks / load':30} " + " ".join(f"{r['static_over_load']:15.2f}"
                                                     for r in results))
    print(f"{'findings (violations)':30} " + " ".join(
        f"{r['findings']:>10} ({r['violations']:>2})" for r in results))
    met = all(r["seconds"]["static_checks"] < TARGET_SECONDS for r in results)
    print(f"static checks under {TARGET_SECONDS * 1000:.0f} ms on both sets: "
          f"{'yes' if met else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
