"""`rulebook audit`: the JSON report, the other formats, and exit codes for CI."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from service.audit import cli as audit_cli
from service.cli import main
from simulator.projection import Projection

from .conftest import BOOKS, FIXTURES

LOW = str(BOOKS / "lowprice-2024")
REFORMED = str(BOOKS / "reformed-2025")
REQUIRED = {"criterion", "verdict", "severity", "rule", "location", "reading", "citation",
            "counterexample"}


def run(tmp_path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "report.json"
    code = main(["audit", *args, "--out", str(out)])
    return code, (json.loads(out.read_text()) if out.exists() else {})


def test_json_report_of_lowprice(tmp_path, capsys) -> None:
    code, data = run(tmp_path, LOW)
    assert code == 0  # no --fail-on: the audit ran
    assert data["rulebook_set"] == "lowprice-2024" and data["catalogue_revision"]
    assert data["findings"] and all(set(f) >= REQUIRED for f in data["findings"])
    first = data["findings"][0]
    assert first["verdict"] == "violation" and first["severity"] == "critical"
    sofa = [f for f in data["findings"] if f["criterion"] == "below_cost_forcing"
            and f["rule"] == "auto_follow/prompt_to_follow"]
    assert sofa and sofa[0]["counterexample"]["reproduced"] is True
    assert sofa[0]["location"].endswith("auto_follow.yaml:73")
    assert "violation" in capsys.readouterr().err


@pytest.mark.parametrize("path, fail_on, code", [
    (LOW, "high", 1), (LOW, "critical", 1), (REFORMED, "low", 0), (REFORMED, "info", 0),
    (str(FIXTURES / "pushy-2024"), "critical", 0), (str(FIXTURES / "pushy-2024"), "high", 1),
])
def test_fail_on(tmp_path, capsys, path: str, fail_on: str, code: int) -> None:
    got, _ = run(tmp_path, path, "--fail-on", fail_on)
    assert got == code
    if code:
        assert f"at or above {fail_on}" in capsys.readouterr().err


def test_events_add_dynamic_findings(tmp_path) -> None:
    from service.generate import generate_events, write_jsonl

    events = tmp_path / "events.jsonl"
    write_jsonl(generate_events(20, 2, 5), events)
    code, data = run(tmp_path, LOW, "--events", str(events))
    assert code == 0
    kinds = {f["kind"] for f in data["findings"]}
    assert kinds == {"static", "dynamic"}
    assert data["inputs"]["events"]["events"] > 0


def test_history_and_parameters(tmp_path) -> None:
    code, data = run(tmp_path, LOW, "--history", str(FIXTURES / "history" / "lowprice-2019"),
                     "--param", "appeal_capacity.orders_per_day=10")
    assert code == 0
    by = {(f["criterion"], f["verdict"]) for f in data["findings"]}
    assert ("rule_stability", "violation") in by
    assert ("appeal_capacity", "pass") in by  # 10 orders a day: about 4 disputes a month
    assert data["inputs"]["parameters"] == {"appeal_capacity.orders_per_day": "10"}


@pytest.mark.parametrize("args, message", [
    (["--param", "appeal_capacity.orders=3"], "has no parameter 'orders'"),
    (["--param", "nonsense"], "write criterion.parameter=value"),
    (["--events", "missing.jsonl"], "no such events file"),
])
def test_usage_errors_exit_2(tmp_path, capsys, args: list[str], message: str) -> None:
    code, _ = run(tmp_path, LOW, *args)
    assert code == 2 and message in capsys.readouterr().err


def test_an_unwritable_out_exits_2_not_1(tmp_path, capsys) -> None:
    # exit 1 means "violations at or above --fail-on"; a report that cannot be written is not
    out = tmp_path / "no" / "such" / "dir" / "report.json"
    code = main(["audit", REFORMED, "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"--out {out}: cannot write the report" in err and "Traceback" not in err


def test_a_broken_rulebook_exits_2_with_its_location(tmp_path, capsys) -> None:
    bad = tmp_path / "broken"
    bad.mkdir()
    text = (BOOKS / "lowprice-2024" / "refund.yaml").read_text()
    line = text[:text.index("effect: grant_refund")].count("\n") + 1
    (bad / "refund.yaml").write_text(text.replace("effect: grant_refund", "effect: grant_refnd",
                                                  1))
    code, _ = run(tmp_path, str(bad))
    assert code == 2
    err = capsys.readouterr().err
    assert f"refund.yaml:{line}:" in err and "grant_refnd" in err


def test_markdown_through_the_renderer(tmp_path) -> None:
    out = tmp_path / "audit.md"
    assert main(["audit", LOW, "--format", "md", "--out", str(out)]) == 0
    assert "below_cost_forcing" in out.read_text()


def test_other_formats_need_the_renderer(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(audit_cli, "_renderer", lambda: None)
    assert main(["audit", LOW, "--format", "html", "--out", str(tmp_path / "a.html")]) == 2
    assert "needs the report renderer" in capsys.readouterr().err
    assert not (tmp_path / "a.html").exists()


def test_project_without_the_simulator_is_a_clear_error(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "simulator.run", None)
    code, _ = run(tmp_path, LOW, "--project", "default")
    assert code == 2 and "needs the simulator" in capsys.readouterr().err


def test_project_runs_the_projected_checks(tmp_path, monkeypatch) -> None:
    calls = []

    def project(rulebook_set, scenario, days, replications, seed, progress=None):
        calls.append((rulebook_set.id, days, replications, seed))
        p = Projection(set_id=rulebook_set.id, revision=rulebook_set.revision,
                       scenario="default", days=days, replications=replications, seed=seed,
                       cohorts=("small", "medium", "large"))
        p.series["take_rate"] = np.full((replications, days), 0.09)
        return p

    def run_problem(scenario, days, replications):
        calls.append(("checked", days, replications))
        return None

    monkeypatch.setitem(sys.modules, "simulator.run",
                        types.SimpleNamespace(project=project, run_problem=run_problem))
    code, data = run(tmp_path, LOW, "--project", "default", "--days", "5", "--replications", "2")
    assert code == 0 and calls == [("checked", 5, 2), ("lowprice-2024", 5, 2, 1)]
    [take] = [f for f in data["findings"] if f["kind"] == "projected"
              and f["criterion"] == "take_rate"]
    assert take["verdict"] == "violation" and len(take["series"]["mean"]) == 5
    assert data["inputs"]["projection"]["days"] == 5
