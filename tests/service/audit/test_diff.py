"""`rulebook diff`: rule changes, verdict changes and projected deltas, as a reviewer reads them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rules.loader import load_set
from service.audit import diff
from service.audit.finding import AuditReport, Citation, Finding
from service.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "diff"
BOOKS = Path(__file__).resolve().parents[3] / "rules" / "books"


def _changes(d: diff.SetDiff, rule: str) -> dict[str, tuple[str, str]]:
    [r] = [r for r in d.rules if f"{r.family}/{r.rule}" == rule]
    return {c.what: (c.old, c.new) for c in r.changes}


def test_rule_by_rule_changes_of_the_fixture() -> None:
    d = diff.diff(FIXTURES / "before", FIXTURES / "after", verdicts=False)
    assert [(p.name, p.old, p.new) for p in d.parameters] == [("response_window", "36h", "48h")]
    assert d.parameters[0].location.endswith("after/refund.yaml:12")
    status = {f"{r.family}/{r.rule}": r.status for r in d.rules}
    assert status == {"refund/claim_to_merchant": "changed",
                      "refund/intervention_reviews": "added",
                      "refund/intervention_grants": "removed"}
    changes = _changes(d, "refund/claim_to_merchant")
    assert changes["when"] == ('event.kind == "refund_only"',
                               'event.kind == "refund_only" or event.kind == "return_and_refund"')
    assert changes["deadline.after"] == ("response_window (36h)", "response_window (48h)")
    assert changes["deadline.unless"] == ("merchant_responded",
                                          "merchant_responded, platform_intervened")
    assert changes["deadline.then grant_refund.payer"] == ("merchant", "platform")
    assert changes["deadline.then grant_refund.recall_fee"] == ("recall_fee = 0.17", "0")
    assert changes["parameter response_window (read by this rule)"] == ("36h", "48h")
    [meta] = d.metadata
    order = {c.what: (c.old, c.new) for c in meta.changes}
    assert order["rule order"][1] == "claim_to_merchant, merchant_accepts, merchant_rejects"
    assert order["consulted"] == ("false", "true")
    # The two reordered rules are otherwise unchanged, so they are not listed as changed.
    assert "refund/merchant_rejects" not in status


def test_a_set_against_itself_has_no_changes() -> None:
    d = diff.diff(BOOKS / "reformed-2025", BOOKS / "reformed-2025", verdicts=False)
    assert d.unchanged and not d.rules
    assert "no changes in the rule text" in diff.render(d, "text")


def test_bundled_sets_show_the_reform() -> None:
    d = diff.diff(BOOKS / "lowprice-2024", BOOKS / "reformed-2025")
    params = {(p.family, p.name): (p.old, p.new) for p in d.parameters}
    assert params[("auto_follow", "opt_out_verification")] == ("true", "false")
    assert params[("refund", "price_protection_line")] == ("100", None)
    removed = {r.rule for r in d.rules if r.status == "removed"}
    assert {"dismissal_only_silences", "monthly_quota", "refund_only_shipped"} <= removed
    # The audit runner judges both sets: the reform clears the expected violations.
    assert d.verdicts is not None
    changes = {v.criterion: v for v in d.verdicts}
    for criterion in ("below_cost_forcing", "opt_in_opt_out_symmetry", "appeal_access_not_capped",
                      "ranking_not_price_only"):
        assert changes[criterion].old_verdict == "violation"
        assert changes[criterion].direction == "better"
    assert "auto_follow/prompt_to_follow" in changes["below_cost_forcing"].old_rules
    assert not diff.worsened(d, "info")


def _finding(criterion: str, verdict: str, severity: str, rule: str | None = None) -> Finding:
    return Finding(criterion=criterion, title=criterion.replace("_", " "), kind="static",
                   verdict=verdict, severity=severity, rulebook_set="x", rule=rule,
                   location=None, evidence={}, reading=f"{criterion} reads {verdict}",
                   citation=Citation("law", "art"))  # type: ignore[arg-type]


def _report(*findings: Finding) -> AuditReport:
    return AuditReport("x", "r", "", "2026-01-01T00:00:00Z", "c", list(findings))


def test_verdict_changes_are_per_criterion_with_their_rules() -> None:
    a = _report(_finding("below_cost_forcing", "violation", "critical", "auto_follow/p"),
                _finding("below_cost_forcing", "pass", "critical", "ranking/q"),
                _finding("appeal_window_days", "pass", "low"),
                _finding("take_rate", "warning", "medium"),
                _finding("moved", "violation", "high", "refund/a"),
                _finding("same", "violation", "low", "refund/x"))
    b = _report(_finding("below_cost_forcing", "pass", "critical"),
                _finding("appeal_window_days", "violation", "high", "appeal/w"),
                _finding("take_rate", "warning", "high"),
                _finding("moved", "violation", "high", "refund/b"),
                _finding("same", "violation", "low", "refund/x"),
                _finding("new_one", "violation", "low"))
    changes = {v.criterion: v for v in diff.verdict_changes(a, b)}
    assert set(changes) == {"below_cost_forcing", "appeal_window_days", "take_rate", "moved",
                            "new_one"}
    below = changes["below_cost_forcing"]
    assert (below.old_verdict, below.old_rules, below.new_verdict) == (
        "violation", ["auto_follow/p"], "pass")
    assert below.direction == "better"
    assert changes["appeal_window_days"].direction == "worse"
    assert changes["appeal_window_days"].new_rules == ["appeal/w"]
    assert changes["take_rate"].direction == "worse"        # same verdict, higher severity
    assert changes["moved"].direction == "changed"          # same violation, another rule
    assert changes["new_one"].old_verdict is None and changes["new_one"].direction == "worse"
    d = diff.SetDiff(a={}, b={}, verdicts=list(changes.values()))
    assert [v.criterion for v in diff.worsened(d, "high")] == ["appeal_window_days"]
    assert {v.criterion for v in diff.worsened(d, "low")} == {"appeal_window_days", "new_one"}


def test_verdicts_come_from_the_audit_runner(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    def fake_audit(rulebook_set: Any) -> AuditReport:
        verdict = "violation" if rulebook_set.id == "after" else "pass"
        return _report(_finding("response_window_hours", verdict, "high", "refund/claim"))

    monkeypatch.setattr(diff, "_audit_runner", lambda: fake_audit)
    assert main(["diff", str(FIXTURES / "before"), str(FIXTURES / "after"), "--format", "md",
                 "--fail-on", "high"]) == 1
    md = capsys.readouterr().out
    assert "## Criteria whose verdict changes" in md
    assert "| pass | violation (high) on `refund/claim` | worse |" in md
    assert md.index("## Criteria whose verdict changes") < md.index("## Text changes")
    assert main(["diff", str(FIXTURES / "after"), str(FIXTURES / "before"),
                 "--fail-on", "high"]) == 0


def test_without_a_runner_the_diff_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diff, "_audit_runner", lambda: None)
    d = diff.diff(FIXTURES / "before", FIXTURES / "after")
    assert d.verdicts is None and "not available" in d.verdicts_note
    assert "criteria: not compared" in diff.render(d, "text")


def test_json_format_is_plain_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(FIXTURES / "before"), str(FIXTURES / "after"), "--format", "json",
                 "--no-verdicts"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["a"]["set"] == "before" and data["b"]["set"] == "after"
    assert data["parameters"][0]["new"] == "48h"


def test_bad_inputs_are_usage_errors(tmp_path: Path) -> None:
    assert main(["diff", str(tmp_path / "nope"), str(FIXTURES / "after")]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "refund.yaml").write_text("rulebook: {}\n")
    assert main(["diff", str(broken), str(FIXTURES / "after"), "--no-verdicts"]) == 2
    assert main(["diff", str(FIXTURES / "before"), str(FIXTURES / "after"), "--no-verdicts",
                 "--project", str(tmp_path / "no-such-scenario.yaml")]) == 2


def test_outcome_deltas_turn_survival_into_exit_share() -> None:
    def od(series: str, a: float, b: float, low: float, high: float,
           cohort: str | None = None) -> Any:
        return SimpleNamespace(series=series, cohort=cohort, statistic="final", unit="fraction",
                               a=a, b=b, difference=b - a, low=low, high=high,
                               significant=low > 0 or high < 0)

    comparison = SimpleNamespace(differences=[
        od("share_alive", 0.4, 0.7, 0.25, 0.35),
        od("median_margin", 0.05, 0.09, 0.03, 0.05),
        od("refund_burden_ratio", 0.1, 0.04, -0.07, -0.05),
        od("gmv", 1.0, 2.0, 0.5, 1.5),
        SimpleNamespace(series="median_margin", cohort=None, statistic="time_average",
                        unit="fraction", a=0, b=0, difference=0, low=0, high=0,
                        significant=False),
    ])
    deltas = {o.outcome: o for o in diff._outcome_deltas(comparison)}
    assert set(deltas) == {"exit_share", "median_margin", "refund_burden_ratio"}
    exit_share = deltas["exit_share"]
    assert exit_share.a == pytest.approx(0.6) and exit_share.b == pytest.approx(0.3)
    assert exit_share.difference == pytest.approx(-0.3)
    assert (exit_share.low, exit_share.high) == (pytest.approx(-0.35), pytest.approx(-0.25))
    d = diff.SetDiff(a={"set": "a", "revision": "1"}, b={"set": "b", "revision": "2"},
                     projection={"scenario": "default", "days": 30, "replications": 4,
                                 "confidence": 0.95},
                     outcomes=list(deltas.values()))
    text = diff.render(d, "text")
    assert "exit_share (all merchants): 60.00% -> 30.00%, change -30.00 pp" in text
    md = diff.render(d, "md")
    assert "| Exit share" in md and "-30.00 pp **" in md
    assert not math.isnan(json.loads(diff.render(d, "json"))["outcomes"][0]["difference"])


def test_format_value_writes_units_like_rulebooks() -> None:
    assert diff.format_value(129600, "duration") == "36h"
    assert diff.format_value(14 * 86400, "duration") == "14d"
    assert diff.format_value(0.05, "fraction") == "5%"
    assert diff.format_value(True) == "true"
    assert load_set(FIXTURES / "after").rulebooks["refund"].parameters["response_window"] == 172800


def test_projection_of_the_reform_with_bands() -> None:
    """A short paired what-if through the real simulator: the reform lowers the refund burden."""
    pytest.importorskip("simulator.run")
    d = diff.diff(BOOKS / "lowprice-2024", BOOKS / "reformed-2025", verdicts=False,
                  project="default", days=8, replications=3, seed=1)
    assert d.projection is not None and d.projection["replications"] == 3
    outcomes = {(o.outcome, o.cohort): o for o in d.outcomes}
    for key in (("median_margin", None), ("exit_share", None), ("refund_burden_ratio", None),
                ("refund_burden_ratio_by_cohort", "small")):
        o = outcomes[key]
        assert o.low is not None and o.high is not None and o.low <= o.high
    refund = outcomes[("refund_burden_ratio", None)]
    assert refund.difference is not None and refund.difference < 0
    assert "projected on default" in diff.render(d, "text")


def test_an_unwritable_out_exits_2_not_1(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "missing-dir" / "diff.md"
    assert main(["diff", str(FIXTURES / "before"), str(FIXTURES / "after"), "--no-verdicts",
                 "--out", str(out)]) == 2
    assert f"--out {out}: cannot write" in capsys.readouterr().err
