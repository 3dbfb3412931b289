"""Lint finds each kind of decision-table problem on a crafted rulebook, with a witness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rules.loader import load_rulebook_text
from service.audit import lint
from service.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lint"
BOOKS = Path(__file__).resolve().parents[3] / "rules" / "books"


def _by_kind(path: Path, kind: str) -> list[lint.LintMessage]:
    return [m for m in lint.lint_file(path) if m.kind == kind]


def test_overlap_with_opposite_outcomes_is_a_warning_with_a_witness() -> None:
    [conflict] = [m for m in _by_kind(FIXTURES / "overlap.yaml", "overlap")
                  if m.severity == "warning"]
    assert conflict.rules == ["refund/grant_small_claims", "refund/reject_without_evidence"]
    assert conflict.location.endswith("overlap.yaml:17")
    assert "opposite outcome" in conflict.message
    # The witness is a real event: a small claim without valid evidence matches both rules.
    assert conflict.witness == {"order.evidence_valid": False, "order.refund_amount": 49}
    assert conflict.assumed == []
    # An exception placed before a catch-all is the usual idiom: info, not a warning.
    special = [m for m in _by_kind(FIXTURES / "overlap.yaml", "overlap") if m.severity == "info"]
    assert {tuple(m.rules) for m in special} == {
        ("refund/grant_small_claims", "refund/review_the_rest"),
        ("refund/reject_without_evidence", "refund/review_the_rest")}


def test_the_protection_line_itself_is_a_boundary_gap() -> None:
    [gap] = _by_kind(FIXTURES / "boundary_gap.yaml", "boundary_gap")
    assert gap.severity == "warning"
    assert gap.event_type == "platform_intervened"
    assert gap.witness == {"order.refund_amount": 100}
    assert "exactly 100" in gap.message and "99 and 101" in gap.message
    assert not _by_kind(FIXTURES / "boundary_gap.yaml", "value_gap")


def test_shadowed_and_contradictory_rules_are_unreachable() -> None:
    messages = _by_kind(FIXTURES / "unreachable.yaml", "unreachable")
    by_rule = {m.rules[0]: m for m in messages}
    assert set(by_rule) == {"appeal/contradictory_quota", "appeal/refuse_over_quota"}
    assert all(m.severity == "error" for m in messages)
    assert "cannot hold" in by_rule["appeal/contradictory_quota"].message
    shadowed = by_rule["appeal/refuse_over_quota"]
    assert shadowed.rules == ["appeal/refuse_over_quota", "appeal/hear_everything"]
    assert shadowed.location.endswith("unreachable.yaml:35")


def test_unhandled_event_types_and_uncovered_values_are_gaps() -> None:
    [unhandled] = _by_kind(FIXTURES / "gaps.yaml", "unhandled_event_type")
    assert unhandled.event_type == "ad_click_charged"
    [values] = _by_kind(FIXTURES / "gaps.yaml", "value_gap")
    assert values.witness == {"event.amount": -1}
    assert values.message.startswith("2 of 3 combinations")


def test_unused_and_undefined_parameters() -> None:
    [unused] = _by_kind(FIXTURES / "unused_parameter.yaml", "unused_parameter")
    assert "forgotten_rate" in unused.message and unused.severity == "warning"
    assert unused.location.endswith("unused_parameter.yaml:15")
    undefined = lint.lint_file(FIXTURES / "undefined_parameter.yaml")
    assert [(m.kind, m.location.rsplit(":", 1)[1]) for m in undefined] == [
        ("undefined_parameter", "24"), ("undefined_parameter", "30")]
    assert "'comission_rate'" in undefined[0].message
    assert "'min_clicks'" in undefined[1].message


def test_a_clean_rulebook_has_nothing_to_say() -> None:
    assert lint.lint_file(FIXTURES / "clean.yaml") == []


def test_a_file_that_does_not_load_is_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("rulebook: [unclosed\n")
    [m] = lint.lint_file(bad)
    assert m.kind == "load_error" and m.severity == "error"


def test_assumed_comparisons_are_named_in_witnesses() -> None:
    text = (FIXTURES / "clean.yaml").read_text().replace(
        "    on: [order_placed]\n    when: true",
        "    on: [order_placed]\n    when: event.amount > event.shipping_cost")
    rb = load_rulebook_text(text, "commission.yaml")
    [gap] = [m for m in lint.lint_rulebook(rb) if m.kind == "value_gap"]
    assert gap.assumed == ["not (event.shipping_cost < event.amount)"]


def test_multi_event_rule_shadowed_on_one_type_is_partly_unreachable() -> None:
    text = (FIXTURES / "clean.yaml").read_text().replace(
        "        amount: event.clicks * cost_per_click",
        "        amount: cost_per_click").replace(
        "    on: [ad_click_charged]", "    on: [ad_click_charged, order_placed]")
    rb = load_rulebook_text(text, "commission.yaml")
    [m] = lint.lint_rulebook(rb)
    assert m.kind == "partly_unreachable" and m.rules == ["commission/clicks"]
    assert "never decides order_placed" in m.message


@pytest.mark.parametrize("book", ["lowprice-2024", "reformed-2025"])
def test_bundled_sets_lint_without_errors_or_warnings(book: str) -> None:
    result = lint.lint_paths([BOOKS / book])
    assert len(result.files) == 5
    assert result.count("error") == 0 and result.count("warning") == 0
    kinds = {m.kind for m in result.messages}
    assert "unreachable" not in kinds and "boundary_gap" not in kinds


def test_lowprice_refund_line_is_covered_on_both_sides() -> None:
    """`<= line` and `> line` leave no gap at 100: the analysis must not invent one."""
    msgs = lint.lint_file(BOOKS / "lowprice-2024" / "refund.yaml")
    intervention = [m for m in msgs if m.event_type == "platform_intervened"]
    assert [m.kind for m in intervention] == ["value_gap"]
    assert intervention[0].witness is not None
    assert "any value other than" in intervention[0].witness["order.refund_status"]


def test_cli_exit_codes_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(FIXTURES / "clean.yaml")]) == 0
    assert main(["lint", str(FIXTURES / "boundary_gap.yaml")]) == 0
    assert main(["lint", "--fail-on", "warning", str(FIXTURES / "boundary_gap.yaml")]) == 1
    capsys.readouterr()
    assert main(["lint", "--format", "json", str(FIXTURES / "unreachable.yaml")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["error"] == 2 and "limits" in data
    assert main(["lint", str(FIXTURES / "missing")]) == 2


def test_a_deadline_that_can_never_apply() -> None:
    [m] = lint.lint_file(FIXTURES / "unreachable_deadline.yaml")
    assert (m.kind, m.severity, m.rules) == ("unreachable_deadline", "error",
                                             ["refund/claim_to_merchant"])
    assert m.location.endswith("unreachable_deadline.yaml:28")  # the deadline's `when`


def _scope(witness: dict[str, object]) -> dict[str, dict[str, object]]:
    scope: dict[str, dict[str, object]] = {}
    for key, value in witness.items():
        namespace, field = key.split(".", 1)
        if isinstance(value, str) and value.startswith("any value other than"):
            value = "zzz_not_named_by_any_rule"
        scope.setdefault(namespace, {})[field] = value
    return scope


def _exact_witnesses() -> list[tuple[Path, lint.LintMessage]]:
    paths = sorted(FIXTURES.glob("*.yaml")) + sorted(BOOKS.glob("*/*.yaml"))
    return [(p, m) for p in paths for m in lint.lint_file(p)
            if m.witness is not None and not m.assumed]


def test_exact_witnesses_hold_under_the_reference_evaluator() -> None:
    """A witness without assumptions is a real event: the rules' own evaluator agrees with it."""
    checked = 0
    for path, m in _exact_witnesses():
        rb = lint.load_document(lint.read_file(path), "fixture")
        rules = [r for r in rb.rules if m.event_type in r.on]
        fired = [f"{rb.family}/{r.id}" for r in rules
                 if r.when.evaluate(_scope(m.witness or {})) is True]
        if m.kind in ("boundary_gap", "value_gap"):
            assert fired == [], (path.name, m)
        elif m.kind == "overlap":
            assert m.rules[0] in fired and m.rules[1] in fired, (path.name, m)
            assert fired[0] == m.rules[0], (path.name, m)
        checked += 1
    assert checked >= 10


def test_a_condition_on_a_false_flag_parameter_never_holds() -> None:
    text = (FIXTURES / "clean.yaml").read_text().replace(
        "    on: [ad_click_charged]\n    when: true",
        "    on: [ad_click_charged]\n    when: clicks_charged").replace(
        "parameters:\n", "parameters:\n  clicks_charged:\n    value: false\n    unit: flag\n"
                         "    source: \"fixture: clicks are free\"\n")
    rb = load_rulebook_text(text, "commission.yaml")
    kinds = [(m.kind, m.rules) for m in lint.lint_rulebook(rb)]
    assert ("unreachable", ["commission/clicks"]) in kinds


def test_past_the_cell_limit_pairs_are_still_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint, "MAX_CELLS", 5)
    messages = lint.lint_file(FIXTURES / "overlap.yaml")
    kinds = {m.kind for m in messages}
    assert "analysis_limit" in kinds and "value_gap" not in kinds
    [warning] = [m for m in messages if m.kind == "overlap" and m.severity == "warning"]
    assert warning.rules == ["refund/grant_small_claims", "refund/reject_without_evidence"]
    shadowed = lint.lint_file(FIXTURES / "unreachable.yaml")
    assert {m.rules[0] for m in shadowed if m.kind == "unreachable"} == {
        "appeal/refuse_over_quota", "appeal/contradictory_quota"}


def test_an_unwritable_out_exits_2_not_1(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "missing-dir" / "lint.txt"
    # unreachable.yaml has errors (exit 1); a report it cannot write is a usage error instead
    assert main(["lint", "--out", str(out), str(FIXTURES / "unreachable.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: cannot write" in err and "Traceback" not in err
