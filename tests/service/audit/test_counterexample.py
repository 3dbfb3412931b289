"""Counterexamples: every rule-level violation comes with events that replay to the harm."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rules.loader import load_set_from_texts
from rules.yamlsource import SourceError
from service.audit.counterexample import (
    CounterexampleError,
    attach_counterexamples,
    build_counterexample,
)
from service.audit.static import run_static
from service.events import read_jsonl

from .conftest import ROOT


@pytest.fixture(scope="module")
def lowprice_findings(lowprice, catalogue):
    findings = run_static(lowprice, list(catalogue))
    attach_counterexamples(lowprice, findings, strict=True)
    return findings


@pytest.mark.parametrize("set_name", ["lowprice", "pushy"])
def test_every_rule_level_violation_reproduces(request, catalogue, set_name: str) -> None:
    rs = request.getfixturevalue(set_name)
    findings = run_static(rs, list(catalogue))
    attach_counterexamples(rs, findings, strict=True)  # raises if one does not reproduce
    rule_level = [f for f in findings if f.verdict == "violation" and f.rule]
    assert rule_level
    for f in rule_level:
        assert f.counterexample is not None, f"{f.criterion} on {f.rule} has no counterexample"
        assert f.counterexample.reproduced


def test_counterexample_lines_are_valid_events(lowprice_findings, tmp_path) -> None:
    for f in lowprice_findings:
        if f.counterexample is None:
            continue
        path = tmp_path / "cx.jsonl"
        path.write_text(f.counterexample.events_jsonl)
        items = [item for _, item in read_jsonl(path)]
        assert items and all(not isinstance(i, Exception) for i in items)


def test_the_sofa_replays_with_rulebook_replay(lowprice_findings, tmp_path) -> None:
    """The attached lines and command, run as a reader would, show the sofa sold below cost."""
    [sofa] = [f for f in lowprice_findings if f.criterion == "below_cost_forcing"
              and f.rule == "auto_follow/prompt_to_follow"]
    cx = sofa.counterexample
    assert cx.observed["price"] == 549.0 and cx.observed["below_cost_by"] == 11.0
    assert cx.observed["trigger"] == "deadline"
    events = tmp_path / "counterexample.jsonl"
    events.write_text(cx.events_jsonl)
    args = cx.replay_command.split()
    assert args[:2] == ["rulebook", "replay"]
    until = args[args.index("--until") + 1]
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "replay", "--rulebooks",
         str(ROOT / "rules" / "books" / "lowprice-2024"), "--until", until,
         "--decisions", str(tmp_path / "d.jsonl"), "--format", "json", str(events)],
        capture_output=True, text=True, cwd=ROOT, check=True)
    decisions = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    forced = [d for d in decisions if d["rule"] == "prompt_to_follow"
              and d["trigger"] == "deadline"]
    assert forced and forced[0]["effects"][0]["amounts"]["below_cost_by"] == 11.0
    assert json.loads(out.stdout)["events"] == len(cx.events_jsonl.splitlines())


def test_refund_at_36_hours_without_a_merchant_decision(lowprice_findings) -> None:
    [f] = [f for f in lowprice_findings if f.criterion == "refund_decided_by_merchant"
           and f.rule == "refund/refund_only_shipped"]
    obs = f.counterexample.observed
    assert obs["decided_by"] == "timeout" and obs["trigger"] == "deadline"
    assert obs["merchant_burden"] == pytest.approx(34.17)
    lines = [json.loads(x) for x in f.counterexample.events_jsonl.splitlines()]
    assert [e["type"] for e in lines][-1] == "refund_requested"
    assert not any(e["type"] == "merchant_responded" for e in lines)


def test_a_counterexample_that_does_not_reproduce_fails_loudly(lowprice_findings,
                                                               reformed) -> None:
    """The lowprice sofa story replayed against a set whose rule floors the price: no harm."""
    [sofa] = [f for f in lowprice_findings if f.criterion == "below_cost_forcing"
              and f.rule == "auto_follow/prompt_to_follow"]
    text = reformed.rulebooks["auto_follow"].text.replace("prompt_to_follow_above_cost",
                                                          "prompt_to_follow")
    floored = load_set_from_texts("floored", {"auto_follow.yaml": text})
    cx = build_counterexample(floored, sofa)
    assert cx is not None and cx.reproduced is False
    with pytest.raises(CounterexampleError, match="did not show the harm"):
        attach_counterexamples(floored, [sofa], strict=True)


def test_a_parameter_no_event_can_carry_is_refused_before_the_audit(lowprice) -> None:
    """An inline set (e.g. sent to AuditService) with `opt_in_steps: -1`: no valid event could
    tell its opt-in story, and the loader refuses the count before any check or counterexample
    runs, naming the file, line and parameter."""
    text = lowprice.rulebooks["auto_follow"].text
    odd = text.replace("  opt_in_steps:\n    value: 1\n", "  opt_in_steps:\n    value: -1\n")
    assert odd != text
    with pytest.raises(SourceError, match=r"auto_follow.yaml:\d+:\d+: "
                                          r"parameters.opt_in_steps.value: a count cannot"):
        load_set_from_texts("odd", {"auto_follow.yaml": odd})

