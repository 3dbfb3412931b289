"""AuditService over a real in-process gRPC server: findings as messages, reports, bad requests."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import jsonschema
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from rules.loader import load_set
from rules.rulebook import RulebookSet
from service.api.rulebook.v1 import audit_service_pb2 as pb
from service.api.rulebook.v1 import audit_service_pb2_grpc as pb_grpc
from service.api.rulebook.v1 import rulebook_sets_pb2 as sets_pb
from service.audit import grpc_service, report
from service.audit.finding import AuditReport, Citation, Counterexample, Finding

ROOT = Path(__file__).resolve().parents[3]
DIFF = ROOT / "tests" / "fixtures" / "diff"


def fake_runner(rs: RulebookSet) -> AuditReport:
    """Findings that depend on the set, so the tests see which set was audited."""
    bad = "auto_follow" in rs.rulebooks and "prompt_to_follow" in {
        r.id for r in rs.rulebooks["auto_follow"].rules}
    findings = [
        Finding("below_cost_forcing", "No price pushed below unit cost", "static",
                "violation" if bad else "pass", "critical", rs.id,
                "auto_follow/prompt_to_follow" if bad else None,
                "auto_follow.yaml:73" if bad else None,
                {"unit_cost": 560, "followed_price": 549}, f"Reading for {rs.id} <b>",
                Citation("Anti-Unfair Competition Law", "Art. 14", verified=False),
                Counterexample('{"type": "listing_updated"}\n', {"price": 549},
                               {"price": 549}, True, "rulebook replay x.jsonl") if bad else None),
        Finding("exposure_hhi", "Exposure HHI", "projected", "warning", "medium", rs.id, None,
                None, {"threshold": 1800}, "HHI rises.", Citation("P2B", "Art. 5"),
                series={"hhi": [1500.0, math.nan, 1900.0]}),
    ]
    return AuditReport(rs.id, rs.revision, rs.path, "2026-01-01T00:00:00Z", "cat", findings)


@pytest.fixture(scope="module")
def stub() -> Iterator[Any]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    known = {"lowprice-2024": load_set(ROOT / "rules" / "books" / "lowprice-2024")}
    grpc_service.add_to_server(server, known_sets=lambda: known, runner=fake_runner)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.AuditServiceStub(channel)
    finally:
        channel.close()
        server.stop(None)


def _texts(directory: Path, set_id: str) -> Any:
    return sets_pb.RulebookSetSource(inline=sets_pb.InlineRulebookSet(
        set_id=set_id, files={p.name: p.read_text() for p in directory.glob("*.yaml")}))


def _violations(err: grpc.RpcError) -> dict[str, str]:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return {v.field: v.description for v in bad.field_violations}


def test_audit_by_set_id_returns_typed_findings_and_html(stub: Any) -> None:
    resp = stub.AuditRulebook(pb.AuditRulebookRequest(
        rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
        format=pb.REPORT_FORMAT_HTML))
    assert resp.rulebook_set == "lowprice-2024"
    assert resp.worst_violation == pb.SEVERITY_CRITICAL
    first = resp.findings[0]
    assert (first.criterion, first.verdict, first.severity, first.kind) == (
        "below_cost_forcing", pb.VERDICT_VIOLATION, pb.SEVERITY_CRITICAL, pb.CHECK_KIND_STATIC)
    assert first.rule == "auto_follow/prompt_to_follow"
    assert first.evidence["unit_cost"] == 560
    assert first.counterexample.reproduced and not first.citation.verified
    assert math.isnan(resp.findings[1].series["hhi"].values[1])
    assert resp.format == pb.REPORT_FORMAT_HTML
    assert "<svg" in resp.report and "&lt;b&gt;" in resp.report


def test_audit_of_texts_returns_the_schema_valid_json(stub: Any) -> None:
    resp = stub.AuditRulebook(pb.AuditRulebookRequest(
        rulebooks=_texts(DIFF / "after", "proposal"), format=pb.REPORT_FORMAT_JSON))
    data = json.loads(resp.report)
    jsonschema.Draft202012Validator(report.schema()).validate(data)
    assert data["rulebook_set"] == "proposal"
    verdicts = {f.criterion: f.verdict for f in resp.findings}
    assert verdicts == {"exposure_hhi": pb.VERDICT_WARNING, "below_cost_forcing": pb.VERDICT_PASS}
    # Findings come in reading order: warnings before passes.
    assert [f.criterion for f in resp.findings] == ["exposure_hhi", "below_cost_forcing"]
    assert resp.worst_violation == pb.SEVERITY_UNSPECIFIED


def test_bundled_sets_are_found_by_name(stub: Any) -> None:
    resp = stub.AuditRulebook(pb.AuditRulebookRequest(
        rulebooks=sets_pb.RulebookSetSource(set_id="reformed-2025")))
    assert resp.rulebook_set == "reformed-2025" and resp.report == ""


@pytest.mark.parametrize(("request_", "field", "says"), [
    (pb.AuditRulebookRequest(), "rulebooks", "set_id"),
    (pb.AuditRulebookRequest(rulebooks=sets_pb.RulebookSetSource(set_id="../etc")),
     "rulebooks.set_id", "lowprice-2024"),
    (pb.AuditRulebookRequest(rulebooks=sets_pb.RulebookSetSource(inline=sets_pb.InlineRulebookSet(
        set_id="p", files={"refund.yaml": "rulebook: {}\n"}))),
     "rulebooks.inline.files[refund.yaml]", "missing key"),
    (pb.AuditRulebookRequest(rulebooks=sets_pb.RulebookSetSource(inline=sets_pb.InlineRulebookSet(
        set_id="", files={}))), "rulebooks.inline.set_id", "name"),
    (pb.AuditRulebookRequest(rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
                             format=42), "format", "REPORT_FORMAT_JSON"),
])
def test_bad_audit_requests_name_the_field(stub: Any, request_: Any, field: str,
                                           says: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.AuditRulebook(request_)
    violations = _violations(err.value)
    assert field in violations, violations
    assert says in violations[field]


def test_diff_of_texts_lists_changes_and_verdicts(stub: Any) -> None:
    resp = stub.DiffRulebooks(pb.DiffRulebooksRequest(
        a=sets_pb.RulebookSetSource(set_id="lowprice-2024"), b=_texts(DIFF / "after", "proposal"),
        format=pb.DIFF_FORMAT_MARKDOWN))
    assert resp.verdicts_compared
    [change] = [v for v in resp.verdicts if v.criterion == "below_cost_forcing"]
    assert change.old_verdict == pb.VERDICT_VIOLATION
    assert list(change.old_rules) == ["auto_follow/prompt_to_follow"]
    assert change.new_verdict == pb.VERDICT_PASS and list(change.new_rules) == []
    assert change.direction == "better"
    assert resp.report.startswith("# Rule change: `lowprice-2024` → `proposal`")

    resp = stub.DiffRulebooks(pb.DiffRulebooksRequest(
        a=_texts(DIFF / "before", "before"), b=_texts(DIFF / "after", "after"),
        skip_verdicts=True))
    assert not resp.verdicts_compared and resp.report == ""
    assert [(p.name, p.old_value, p.new_value) for p in resp.parameters] == [
        ("response_window", "36h", "48h")]
    changed = {r.rule: r for r in resp.rules}
    assert changed["claim_to_merchant"].status == "changed"
    assert {c.what for c in changed["claim_to_merchant"].changes} >= {"when", "deadline.after"}
    assert changed["intervention_reviews"].status == "added"
    assert resp.rulebooks[0].family == "refund"


def test_bad_diff_request_names_the_side(stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.DiffRulebooks(pb.DiffRulebooksRequest(a=sets_pb.RulebookSetSource(set_id="nope")))
    assert "a.set_id" in _violations(err.value)
    with pytest.raises(grpc.RpcError) as err:
        stub.DiffRulebooks(pb.DiffRulebooksRequest(a=sets_pb.RulebookSetSource(
            set_id="lowprice-2024")))
    assert "b" in _violations(err.value)


def test_the_real_audit_runner_when_present() -> None:
    audit = pytest.importorskip("service.audit.audit")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    grpc_service.add_to_server(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            resp = pb_grpc.AuditServiceStub(channel).AuditRulebook(pb.AuditRulebookRequest(
                rulebooks=sets_pb.RulebookSetSource(set_id="lowprice-2024"),
                format=pb.REPORT_FORMAT_JSON))
    finally:
        server.stop(None)
    expected = audit.audit(ROOT / "rules" / "books" / "lowprice-2024")
    assert {f.criterion for f in resp.findings} == {f.criterion for f in expected.findings}
    assert any(f.verdict == pb.VERDICT_VIOLATION for f in resp.findings)
    jsonschema.Draft202012Validator(report.schema()).validate(json.loads(resp.report))


def test_the_server_can_wrap_each_method() -> None:
    """The server passes its own wrapper (RPC metrics); BadRequest still maps to field errors."""
    seen: list[str] = []

    def wrap(name: str, fn: Any) -> Any:
        guarded = grpc_service._guard(name, fn)

        def run(request: Any, context: grpc.ServicerContext) -> Any:
            seen.append(name)
            return guarded(request, context)

        return run

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    grpc_service.add_to_server(server, runner=fake_runner, wrap=wrap)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AuditServiceStub(channel)
            stub.AuditRulebook(pb.AuditRulebookRequest(
                rulebooks=sets_pb.RulebookSetSource(set_id="reformed-2025")))
            with pytest.raises(grpc.RpcError) as err:
                stub.DiffRulebooks(pb.DiffRulebooksRequest())
            assert "a" in _violations(err.value)
    finally:
        server.stop(None)
    assert seen == ["AuditRulebook", "DiffRulebooks"]
