"""Reports say the same thing in JSON, Markdown and HTML, escape what they quote, fetch nothing."""

from __future__ import annotations

import json
import re

import jsonschema
import markupsafe
import pytest

from service.audit import report as rp
from service.audit.finding import AuditReport, Citation, Counterexample, Finding

HOSTILE = '<script>alert("x")</script> | *bold* `tick` ```'


def _finding(**over: object) -> Finding:
    base: dict[str, object] = dict(
        criterion="below_cost_forcing",
        title="No price pushed below unit cost",
        kind="static",
        verdict="violation",
        severity="critical",
        rulebook_set="lowprice-2024",
        rule="auto_follow/prompt_to_follow",
        location="rules/books/lowprice-2024/auto_follow.yaml:73",
        evidence={"unit_cost": 560, "followed_price": 549.0, "below_cost_by": 11.0},
        reading="Under this rule, a merchant whose unit cost is 560 can be pushed to sell at "
                "549, 11 yuan below cost.",
        citation=Citation("Anti-Unfair Competition Law (2025)", "Art. 14", "no forced sales "
                          "below cost", verified=False),
        counterexample=Counterexample(
            events_jsonl='{"type": "listing_updated", "price": 599}\n'
                         '{"type": "competitor_price_observed", "competitor_price": 549}\n',
            expected={"price": 549}, observed={"price": 549, "below_cost_by": 11},
            reproduced=True),
    )
    base.update(over)
    return Finding(**base)  # type: ignore[arg-type]


def sample_report() -> AuditReport:
    findings = [
        _finding(),
        _finding(criterion="appeal_access_not_capped", title="Appeals are not capped",
                 verdict="warning", severity="high", rule="appeal/monthly_quota",
                 location="rules/books/lowprice-2024/appeal.yaml:38", counterexample=None,
                 reading="30 appeals a month against up to 30 claims a day."),
        _finding(criterion="ranking_parameters_disclosed", title="Ranking parameters disclosed",
                 verdict="pass", severity="medium", rule=None, location=None,
                 counterexample=None, reading="The ranking parameters are published."),
        _finding(criterion="exposure_hhi", title="Exposure concentration (HHI)",
                 kind="projected", verdict="violation", severity="medium", rule=None,
                 location=None, counterexample=None, evidence={"threshold": 1800.0},
                 reading="Exposure concentrates: HHI reaches 2,400 by day 30.",
                 series={"hhi": [1500.0, 1900.0, float("nan"), 2400.0],
                         "hhi_p5": [1400.0, 1800.0, 2000.0, 2200.0],
                         "hhi_p95": [1600.0, 2000.0, 2300.0, 2600.0]}),
        _finding(criterion="appeal_window_days", title="Appeal window", verdict="not_applicable",
                 severity="info", rule=None, location=None, counterexample=None,
                 reading="No appeal window is set."),
    ]
    return AuditReport(rulebook_set="lowprice-2024", revision="abc123",
                       path="rules/books/lowprice-2024", generated_at="2026-01-01T00:00:00Z",
                       catalogue_revision="cat456", findings=findings,
                       inputs={"scenario": "suining-furniture"})


def test_json_matches_the_published_schema_and_keeps_every_finding() -> None:
    report = sample_report()
    data = json.loads(rp.render(report, "json"))
    jsonschema.Draft202012Validator(rp.schema()).validate(data)
    assert [f["criterion"] for f in data["findings"]] == [f.criterion for f in report.findings]
    first = data["findings"][0]
    for key in ("criterion", "verdict", "severity", "rule", "location", "reading", "citation",
                "counterexample"):
        assert key in first
    assert first["counterexample"]["reproduced"] is True
    assert data["summary"] == {"total": 5, "worst_violation": "critical", "by_verdict": {
        "violation": 2, "warning": 1, "pass": 1, "not_applicable": 1}}
    # NaN is not JSON: an undefined day is null.
    assert data["findings"][3]["series"]["hhi"][2] is None


def test_json_that_breaks_the_schema_is_refused() -> None:
    data = rp.to_json_data(sample_report())
    data["findings"][0]["verdict"] = "maybe"
    del data["findings"][1]["citation"]
    with pytest.raises(rp.ReportError) as err:
        rp.validate(data)
    assert "findings/0/verdict" in str(err.value)
    assert "citation" in str(err.value)


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(rp.ReportError, match="unknown report format 'pdf'"):
        rp.render(sample_report(), "pdf")


def test_markdown_has_summary_then_findings_grouped_by_verdict_and_severity() -> None:
    md = rp.render(sample_report(), "md")
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert headings[0].startswith("# Fairness audit of `lowprice-2024`")
    assert headings.index("## Summary") < headings.index("## Findings")
    order = [h for h in headings if h.startswith("### ")]
    assert order == ["### Violation (2)", "### Warning (1)", "### Pass (1)",
                     "### Not applicable (1)"]
    # Within violations: critical before medium.
    assert md.index("#### Severity critical") < md.index("#### Severity medium")
    assert "| violation | 1 | 0 | 1 | 0 | 0 | 2 |" in md
    # Counterexample in a jsonl fence with its replay command.
    block = re.search(r"```jsonl\n(.*?)\n```", md, re.S)
    assert block and '"competitor_price": 549' in block.group(1)
    assert "`rulebook replay --rulebooks rules/books/lowprice-2024 below_cost_forcing.jsonl`" in md
    assert "save as `below_cost_forcing.jsonl`" in md
    assert "(article number unverified)" in md


def test_markdown_escapes_what_it_quotes() -> None:
    report = sample_report()
    report.findings[0].reading = HOSTILE
    report.findings[0].counterexample.events_jsonl = '{"note": "```"}\n'  # type: ignore[union-attr]
    md = rp.render(report, "md")
    assert "<script>" not in md
    assert "&lt;script&gt;" in md
    assert r"\| \*bold\* \`tick\`" in md
    # The fence around a block holding ``` is longer than it.
    assert '````jsonl\n{"note": "```"}\n````' in md


def test_html_is_self_contained_escaped_and_holds_every_finding() -> None:
    report = sample_report()
    report.findings[1].reading = HOSTILE
    html = rp.render(report, "html")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", html), "the page must not reference anything online"
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.I)
    assert "@import" not in html and not re.search(r"url\((?!#)", html)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    for f in report.findings:
        assert f'id="{rp._anchor(f)}"' in html
        assert f.criterion in html
    # One inline SVG chart, for the one projected finding with series.
    assert html.count("<svg") == 1
    assert "<style>" in html
    assert str(markupsafe.escape(rp.SEVERITY_MEANING["critical"])) in html
    assert "reproduced by replaying" in html


def test_the_file_to_save_is_the_one_the_replay_command_reads() -> None:
    report = sample_report()
    cx = report.findings[0].counterexample
    assert cx is not None
    cx.replay_command = "rulebook replay --rulebooks x --until 2024-07-04T11:01:00+08:00 cx.jsonl"
    assert "save as `cx.jsonl`" in rp.render(report, "md")
    assert "Save the lines above as <code>cx.jsonl</code>" in rp.render(report, "html")


def test_chart_is_deterministic_and_strips_comments() -> None:
    finding = sample_report().findings[3]
    finding.series = {"--><script>": [1.0, 2.0]}
    svg = rp.chart_svg(finding)
    assert svg == rp.chart_svg(finding)
    assert "<!--" not in svg and "<script" not in svg and svg.startswith("<svg")
    prefixed = rp.chart_svg(finding, prefix="c7-")
    assert 'id="c7-figure_1"' in prefixed and 'id="figure_1"' not in prefixed
    assert "url(#c7-" in prefixed


def test_band_pairs_are_recognised() -> None:
    bands, lines = rp._bands({"m": [1], "m_p5": [0], "m_p95": [2], "lower": [0], "upper": [3]})
    assert ("m", "m_p5", "m_p95") in bands and ("", "lower", "upper") in bands
    assert lines == ["m"]


def test_limit_series_are_drawn_as_limits() -> None:
    bands, lines = rp._bands({"mean": [1], "p10": [0], "p90": [2], "bound": [3],
                              "tau_low": [0.8]})
    assert bands == [("", "p10", "p90")]
    assert [k for k in lines if rp._is_limit(k)] == ["bound", "tau_low"]
    assert not rp._is_limit("mean") and not rp._is_limit("small / large")


def test_the_real_audit_of_lowprice_renders_in_every_format() -> None:
    runner = pytest.importorskip("service.audit.audit")
    from pathlib import Path

    books = Path(__file__).resolve().parents[3] / "rules" / "books"
    report = runner.audit(books / "lowprice-2024")
    data = json.loads(rp.render(report, "json"))
    assert len(data["findings"]) == len(report.findings)
    md = rp.render(report, "md")
    with_cx = [f for f in report.findings if f.counterexample is not None]
    assert with_cx, "rule-level violations come with counterexamples"
    assert md.count("```jsonl\n") == len(with_cx)
    assert md.count("Replay: `rulebook replay") == len(with_cx)
    html = rp.render(report, "html")
    assert not re.search(r"https?://", html)
    anchors = re.findall(r'<article class="finding [a-z_]+" id="([^"]+)"', html)
    assert len(anchors) == len(set(anchors)) == len(report.findings)
    for anchor in anchors:
        assert f'href="#{anchor}"' in html
