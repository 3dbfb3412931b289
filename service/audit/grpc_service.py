"""gRPC AuditService: the audit and the diff for other systems, with the same content as the CLI.

A regulator's monitor or a merchants' association's tool sends a set (by id, or as texts of a
proposed change) and gets each finding as a typed message plus the rendered report, so it can both
act on verdicts and show the report people read. Bad requests get INVALID_ARGUMENT with
google.rpc.BadRequest field violations, through the same functions as the rest of the server.

Projected deltas are not computed here: a projection takes minutes, so it belongs to
SimulationService.WhatIf, which streams progress.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from rules.rulebook import RulebookSet
from service.api.rulebook.v1 import audit_service_pb2 as pb
from service.api.rulebook.v1 import audit_service_pb2_grpc as pb_grpc
from service.audit import diff as diffing
from service.audit import report as reporting
from service.audit.finding import AuditReport, Finding
from service.rulebook_sets import BUNDLED_BOOKS, resolve_set
from service.rulebook_sets import bad_request as _bad_request

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AuditService"].full_name

Runner = Callable[[RulebookSet], AuditReport]
KnownSets = Callable[[], Mapping[str, RulebookSet]]
Wrap = Callable[[str, Callable[[Any, grpc.ServicerContext], Any]],
                Callable[[Any, grpc.ServicerContext], Any]]

_REPORT_FORMATS = {pb.REPORT_FORMAT_JSON: "json", pb.REPORT_FORMAT_MARKDOWN: "md",
                   pb.REPORT_FORMAT_HTML: "html"}
_DIFF_FORMATS = {pb.DIFF_FORMAT_TEXT: "text", pb.DIFF_FORMAT_JSON: "json",
                 pb.DIFF_FORMAT_MARKDOWN: "md"}
_VERDICTS = {"violation": pb.VERDICT_VIOLATION, "warning": pb.VERDICT_WARNING,
             "pass": pb.VERDICT_PASS, "not_applicable": pb.VERDICT_NOT_APPLICABLE}
_SEVERITIES = {"info": pb.SEVERITY_INFO, "low": pb.SEVERITY_LOW, "medium": pb.SEVERITY_MEDIUM,
               "high": pb.SEVERITY_HIGH, "critical": pb.SEVERITY_CRITICAL}
_KINDS = {"static": pb.CHECK_KIND_STATIC, "dynamic": pb.CHECK_KIND_DYNAMIC,
          "projected": pb.CHECK_KIND_PROJECTED}


def _guard(name: str, fn: Callable[[Any, grpc.ServicerContext], Any]) \
        -> Callable[[Any, grpc.ServicerContext], Any]:
    """Turn a BadRequest into INVALID_ARGUMENT with field violations (when not wrapped)."""
    from service.server import BadRequest, _abort_bad_request

    def run(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request, context)
        except BadRequest as exc:
            _abort_bad_request(context, exc)
        return None

    run.__name__ = name
    return run


def _struct(data: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(json.loads(json.dumps(reporting._plain(dict(data)), allow_nan=False)))
    return out


def finding_to_proto(f: Finding) -> Any:
    """One finding as an AuditFinding message."""
    msg = pb.AuditFinding(
        criterion=f.criterion, title=f.title, kind=_KINDS.get(f.kind, pb.CHECK_KIND_UNSPECIFIED),
        verdict=_VERDICTS.get(f.verdict, pb.VERDICT_UNSPECIFIED),
        severity=_SEVERITIES.get(f.severity, pb.SEVERITY_UNSPECIFIED),
        rulebook_set=f.rulebook_set, rule=f.rule or "", location=f.location or "",
        evidence=_struct(f.evidence), reading=f.reading,
        citation=pb.AuditCitation(law=f.citation.law, article=f.citation.article,
                                  text=f.citation.text, verified=f.citation.verified),
    )
    if f.counterexample is not None:
        c = f.counterexample
        msg.counterexample.CopyFrom(pb.AuditCounterexample(
            events_jsonl=c.events_jsonl, expected=_struct(c.expected),
            observed=_struct(c.observed), reproduced=c.reproduced,
            replay_command=c.replay_command))
    for name, values in (f.series or {}).items():
        msg.series[name].values.extend(
            math.nan if v is None else float(v) for v in values)
    return msg


class AuditServicer(pb_grpc.AuditServiceServicer):
    """Audits and compares rulebook sets named by id or sent as texts."""

    def __init__(self, known_sets: KnownSets | None = None, runner: Runner | None = None,
                 books_dir: Path = BUNDLED_BOOKS):
        self.known_sets = known_sets or dict
        self._runner = runner
        self.books_dir = books_dir

    # -- resolving sets -----------------------------------------------------------------------
    def runner(self) -> Runner | None:
        return self._runner or diffing._audit_runner()

    def resolve(self, source: Any, field: str) -> RulebookSet:
        return resolve_set(source, field, sets=self.known_sets().values(),
                           books_dir=self.books_dir)

    # -- RPCs ---------------------------------------------------------------------------------
    def AuditRulebook(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.format not in (pb.REPORT_FORMAT_UNSPECIFIED, *_REPORT_FORMATS):
            raise _bad_request(f"unknown report format {request.format}", [
                ("format", "REPORT_FORMAT_JSON, REPORT_FORMAT_MARKDOWN or REPORT_FORMAT_HTML")])
        rulebook_set = self.resolve(request.rulebooks, "rulebooks")
        runner = self.runner()
        if runner is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          "this server has no audit runner (service.audit.audit)")
        assert runner is not None
        audit = runner(rulebook_set)
        fmt = _REPORT_FORMATS.get(request.format)
        worst = audit.worst("violation")
        return pb.AuditRulebookResponse(
            rulebook_set=audit.rulebook_set, revision=audit.revision,
            generated_at=audit.generated_at, catalogue_revision=audit.catalogue_revision,
            findings=[finding_to_proto(f) for f in reporting.ordered(audit.findings)],
            worst_violation=_SEVERITIES[worst] if worst else pb.SEVERITY_UNSPECIFIED,
            format=request.format, report=reporting.render(audit, fmt) if fmt else "")

    def DiffRulebooks(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.format not in (pb.DIFF_FORMAT_UNSPECIFIED, *_DIFF_FORMATS):
            raise _bad_request(f"unknown diff format {request.format}", [
                ("format", "DIFF_FORMAT_TEXT, DIFF_FORMAT_JSON or DIFF_FORMAT_MARKDOWN")])
        set_a = self.resolve(request.a, "a")
        set_b = self.resolve(request.b, "b")
        d = diffing.diff_sets(set_a, set_b)
        if not request.skip_verdicts:
            diffing.add_verdicts(d, set_a, set_b, self._runner)
        fmt = _DIFF_FORMATS.get(request.format)
        return pb.DiffRulebooksResponse(
            rulebooks=[_rule_change(r) for r in d.metadata],
            parameters=[pb.ParameterValueChange(
                family=p.family, name=p.name, unit=p.unit, old_value=p.old or "",
                new_value=p.new or "", location=p.location) for p in d.parameters],
            rules=[_rule_change(r) for r in d.rules],
            verdicts_compared=d.verdicts is not None, verdicts_note=d.verdicts_note,
            verdicts=[pb.CriterionVerdictChange(
                criterion=v.criterion, title=v.title,
                old_verdict=_VERDICTS.get(v.old_verdict or "", pb.VERDICT_UNSPECIFIED),
                old_severity=_SEVERITIES.get(v.old_severity or "", pb.SEVERITY_UNSPECIFIED),
                old_rules=[r for r in v.old_rules if r],
                new_verdict=_VERDICTS.get(v.new_verdict or "", pb.VERDICT_UNSPECIFIED),
                new_severity=_SEVERITIES.get(v.new_severity or "", pb.SEVERITY_UNSPECIFIED),
                new_rules=[r for r in v.new_rules if r],
                direction=v.direction, reading=v.reading) for v in d.verdicts or []],
            format=request.format, report=diffing.render(d, fmt) if fmt else "")


def _rule_change(r: diffing.RuleChange) -> Any:
    return pb.RuleTextChange(
        family=r.family, rule=r.rule, status=r.status, location=r.location,
        description=r.description,
        changes=[pb.FieldChange(what=c.what, old_value=c.old, new_value=c.new)
                 for c in r.changes])


def add_to_server(server: grpc.Server, *, known_sets: KnownSets | None = None,
                  runner: Runner | None = None, wrap: Wrap | None = None) -> AuditServicer:
    """Register AuditService on `server`.

    `known_sets` returns the sets the server runs by id (bundled sets are found by name too);
    `wrap(method, fn)` lets the server add its own RPC metrics and error mapping (it must turn
    service.server.BadRequest into INVALID_ARGUMENT); without it, BadRequest is mapped here.
    """
    servicer = AuditServicer(known_sets=known_sets, runner=runner)
    wrapper = wrap or _guard
    for name in ("AuditRulebook", "DiffRulebooks"):
        setattr(servicer, name, wrapper(name, getattr(servicer, name)))
    pb_grpc.add_AuditServiceServicer_to_server(servicer, server)
    return servicer
