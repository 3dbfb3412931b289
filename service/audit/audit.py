"""The audit runner: one rulebook set against the criteria catalogue, by every check available.

    report = audit("rules/books/lowprice-2024", events="week.jsonl", projection=p)

- static checks always run (rule text and parameters; `history` adds earlier versions of the set
  for the stability criteria);
- dynamic checks run on `events` (a JSON Lines file or validated events, replayed through the
  engine) or on `snapshot` (the live service's `SetSnapshot`);
- projected checks run on `projection` (a `simulator.projection.Projection`);
- every rule-level static violation gets a counterexample replayed through the engine
  (`strict_counterexamples=True` raises if one does not reproduce; the tests run strict).

Findings come out in reading order: violations first, most severe first, then by criterion.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rules.loader import load_set
from rules.rulebook import RulebookSet
from service import aggregates as agg
from service.audit.counterexample import attach_counterexamples
from service.audit.criteria import Catalogue, load_catalogue
from service.audit.dynamic import facts_from_snapshot, replay_events, run_dynamic
from service.audit.finding import SEVERITY_ORDER, VERDICT_ORDER, AuditReport, Finding
from service.audit.static import run_static
from service.events import Event
from simulator.projection import Projection

PathOrSet = str | os.PathLike[str] | RulebookSet


def _as_set(value: PathOrSet) -> RulebookSet:
    return value if isinstance(value, RulebookSet) else load_set(value)


def _as_catalogue(value: Catalogue | str | os.PathLike[str] | None) -> Catalogue:
    if isinstance(value, Catalogue):
        return value
    return load_catalogue(value)


def reading_order(findings: Iterable[Finding]) -> list[Finding]:
    kinds = ("static", "dynamic", "projected")
    return sorted(findings, key=lambda f: (VERDICT_ORDER.index(f.verdict),
                                           -SEVERITY_ORDER.index(f.severity), f.criterion,
                                           kinds.index(f.kind), f.rule or "", f.location or ""))


def audit(path_or_set: PathOrSet, *,
          events: str | os.PathLike[str] | Iterable[Event] | None = None,
          projection: Projection | None = None,
          catalogue: Catalogue | str | os.PathLike[str] | None = None,
          parameters: Mapping[str, Any] | None = None,
          history: Sequence[PathOrSet] = (),
          snapshot: agg.SetSnapshot | None = None,
          criteria: Sequence[str] | None = None,
          counterexamples: bool = True,
          strict_counterexamples: bool = False,
          now: dt.datetime | None = None) -> AuditReport:
    """Audit one rulebook set; see the module docstring for what each input adds.

    `parameters` changes criterion thresholds for this audit, as {"criterion.parameter": value};
    `criteria` restricts the audit to these criterion ids. Raises `rules.loader.SourceError` for
    a set or catalogue that does not load, ValueError for an unknown criterion or parameter, and
    FileNotFoundError for a missing events file.
    """
    rs = _as_set(path_or_set)
    cat = _as_catalogue(catalogue).with_parameters(parameters)
    if criteria is not None:
        unknown = [c for c in criteria if c not in cat.criteria]
        if unknown:
            raise ValueError(f"unknown criteria: {', '.join(unknown)}")
        chosen = [cat[c] for c in criteria]
    else:
        chosen = list(cat)
    earlier = [_as_set(h) for h in history]
    findings = run_static(rs, chosen, earlier)
    if counterexamples:
        attach_counterexamples(rs, findings, strict=strict_counterexamples)
    inputs: dict[str, Any] = {"criteria": len(chosen)}
    if events is not None:
        facts = replay_events(rs, events)
        findings += run_dynamic(rs, chosen, facts)
        inputs["events"] = {"source": facts.source, "events": facts.events,
                            "invalid_events": facts.invalid_events,
                            "duplicate_events": facts.duplicate_events}
    elif snapshot is not None:
        findings += run_dynamic(rs, chosen, facts_from_snapshot(snapshot))
        inputs["events"] = {"source": "live state", "watermark": snapshot.watermark}
    if projection is not None:
        from service.audit.projected import run_projected

        findings += run_projected(rs, chosen, projection)
        inputs["projection"] = {"scenario": projection.scenario, "days": projection.days,
                                "replications": projection.replications,
                                "seed": projection.seed, "revision": projection.revision}
    findings += _not_judged(rs, chosen, findings)
    if parameters:
        inputs["parameters"] = dict(parameters)
    if earlier:
        inputs["history"] = [{"set": h.id, "revision": h.revision, "path": h.path}
                             for h in earlier]
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return AuditReport(
        rulebook_set=rs.id, revision=rs.revision, path=str(rs.path),
        generated_at=when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        catalogue_revision=cat.revision, findings=reading_order(findings), inputs=inputs,
    )


def _not_judged(rs: RulebookSet, chosen: Sequence[Any], findings: Sequence[Finding]) \
        -> list[Finding]:
    """A not_applicable finding for each criterion no check could judge with these inputs, so
    every criterion of the catalogue appears in the report and says what it would need."""
    from service.audit.static import make_finding

    judged = {f.criterion for f in findings}
    out = []
    for crit in chosen:
        if crit.id in judged:
            continue
        needs = " or ".join({"dynamic": "replayed events (--events)",
                             "projected": "a projection (--project)",
                             "static": "the rule text"}[k] for k in crit.checks)
        why = f"Not judged in this audit: this criterion needs {needs}."
        out.append(make_finding(crit, rs, "not_applicable", {"details": why}, template=why,
                                kind=next(iter(crit.checks))))
    return out


def violations_at_or_above(report: AuditReport, severity: str) -> list[Finding]:
    """Violations whose severity is `severity` or worse: what `--fail-on` fails a build for."""
    floor = SEVERITY_ORDER.index(severity)
    return [f for f in report.findings
            if f.verdict == "violation" and SEVERITY_ORDER.index(f.severity) >= floor]


__all__ = ["audit", "reading_order", "violations_at_or_above"]
