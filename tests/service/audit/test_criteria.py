"""The criteria catalogue: every criterion the issue names, well formed, located, hashed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules.yamlsource import SourceError
from service.audit.criteria import load_catalogue, load_catalogue_texts, render_reading
from service.audit.dynamic import DYNAMIC_CHECKS
from service.audit.projected import projected_check
from service.audit.static import STATIC_CHECKS

from .conftest import ROOT

NAMED = [
    "below_cost_forcing", "auto_follow_default_off", "opt_in_opt_out_symmetry",
    "no_reprompt_after_decline", "exposure_penalty_on_decline", "ranking_parameters_disclosed",
    "ranking_not_price_only", "price_cliff", "appeal_access_not_capped", "appeal_capacity",
    "appeal_human_review", "appeal_window_days", "appeal_deadline_published",
    "refund_decided_by_merchant", "response_window_hours", "burden_shift",
    "price_protection_floor", "rule_stability", "rule_change_notice_days",
    "rule_change_consultation", "fee_itemised", "fee_change_consulted", "take_rate",
    "exposure_per_quality_by_size_tier", "refund_burden_ratio_by_size_tier",
    "appeal_success_by_size_tier", "exposure_gini", "exposure_hhi",
]

MINIMAL = """criteria:
  - id: sample
    title: A sample
    families: [refund]
    description: A sample criterion.
    citations: [{law: "China, E-Commerce Law", article: "Art. 35"}]
    severity: high
    checks: [static]
    parameters:
      limit: {value: 0.5, unit: fraction, source: "a test"}
    reading: {violation: "The limit is {limit:.0%}."}
"""


def test_every_named_criterion_is_in_the_catalogue(catalogue) -> None:
    assert set(NAMED) <= set(catalogue.criteria)
    assert len(catalogue) == len(NAMED)


def test_each_criterion_has_a_check_for_every_kind_it_lists(catalogue) -> None:
    for crit in catalogue:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", crit.id)
        assert crit.citations and all(c.law and c.article for c in crit.citations)
        assert crit.reading.violation
        if "static" in crit.checks:
            assert crit.id in STATIC_CHECKS, crit.id
        if "dynamic" in crit.checks:
            assert crit.id in DYNAMIC_CHECKS, crit.id
        if "projected" in crit.checks:
            assert projected_check(crit.id) is not None, crit.id
        for name, spec in crit.parameter_specs.items():
            assert spec.source.strip(), f"{crit.id}.{name} has no source"


def test_citations_come_from_the_standards_and_unsure_articles_are_marked(catalogue) -> None:
    laws = " ".join(c.law for crit in catalogue for c in crit.citations)
    for law in ("E-Commerce Law", "Anti-Unfair Competition Law", "2019/1150",
                "Digital Services Act"):
        assert law in laws
    aucl = catalogue["below_cost_forcing"].citation
    assert "Anti-Unfair Competition" in aucl.law and aucl.verified is False
    assert catalogue["rule_change_notice_days"].citation.article == "Art. 34"
    assert {c.article for c in catalogue["rule_change_notice_days"].citations} == {"Art. 34",
                                                                                   "Art. 3"}


def test_locations_point_at_the_entry(catalogue) -> None:
    loc = catalogue["below_cost_forcing"].location
    file, line = loc.rsplit(":", 1)
    assert file == "rules/criteria/pricing.yaml"
    text = (ROOT / file).read_text().splitlines()
    assert "id: below_cost_forcing" in text[int(line) - 1]


def test_stream_table_is_not_part_of_the_catalogue_and_still_loads(catalogue) -> None:
    from service.aggregates import load_stream_criteria

    assert "rules/criteria/stream.yaml" not in catalogue.files
    assert {c.id for c in load_stream_criteria()} >= {"take_rate", "exposure_hhi"}


def test_revision_changes_with_the_text() -> None:
    a = load_catalogue_texts([("x.yaml", MINIMAL)])
    b = load_catalogue_texts([("x.yaml", MINIMAL.replace("0.5", "0.4"))])
    assert a.revision != b.revision
    assert a.revision == load_catalogue_texts([("x.yaml", MINIMAL)]).revision


def test_overrides_change_thresholds_and_the_revision() -> None:
    cat = load_catalogue_texts([("x.yaml", MINIMAL)])
    changed = cat.with_parameters({"sample.limit": "0.25"})
    assert changed["sample"].param("limit") == 0.25
    assert cat["sample"].param("limit") == 0.5
    assert changed.revision != cat.revision
    with pytest.raises(ValueError, match="has no parameter 'limt'"):
        cat.with_parameters({"sample.limt": 1})
    with pytest.raises(ValueError, match="unknown criterion parameter"):
        cat.with_parameters({"nothing.limit": 1})
    with pytest.raises(ValueError, match="expected a number"):
        cat.with_parameters({"sample.limit": "lots"})


@pytest.mark.parametrize("value, message", [
    ("inf", "expected a finite number"),
    ("nan", "expected a finite number"),
    ("1.5", "between 0 and 1"),  # refused in the file, so refused as an override too
    ("-0.1", "between 0 and 1"),
])
def test_overrides_get_the_checks_a_value_in_the_file_gets(value: str, message: str) -> None:
    cat = load_catalogue_texts([("x.yaml", MINIMAL)])
    with pytest.raises(ValueError, match=f"sample.limit: .*{message}"):
        cat.with_parameters({"sample.limit": value})


def test_an_infinite_threshold_on_the_command_line_is_a_usage_error(tmp_path, capsys) -> None:
    from service.cli import main

    code = main(["audit", str(ROOT / "rules" / "books" / "lowprice-2024"), "--param",
                 "appeal_capacity.orders_per_day=inf", "--out", str(tmp_path / "r.json")])
    assert code == 2
    assert "expected a finite number" in capsys.readouterr().err


@pytest.mark.parametrize("text, where, message", [
    (MINIMAL.replace("severity: high", "severity: dire"), 7, "'critical'"),
    (MINIMAL.replace("    checks: [static]\n", "    checks: [static]\n    colour: red\n"), 9,
     "unknown key 'colour'"),
    (MINIMAL.replace("value: 0.5", "value: 5"), 10, "between 0 and 1"),
    (MINIMAL.replace("{limit:.0%}", "{limit"), 11, "not a valid template"),
])
def test_bad_entries_are_reported_with_file_and_line(text: str, where: int,
                                                     message: str) -> None:
    with pytest.raises(SourceError) as exc:
        load_catalogue_texts([("rules/criteria/x.yaml", text)])
    v = exc.value.violations[0]
    assert v.file == "rules/criteria/x.yaml" and v.line == where
    assert message in v.message


def test_duplicate_ids_across_files_are_refused() -> None:
    with pytest.raises(SourceError, match=r"already defined at a\.yaml:2"):
        load_catalogue_texts([("a.yaml", MINIMAL), ("b.yaml", MINIMAL)])


def test_a_directory_without_criteria_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no criteria files"):
        load_catalogue(tmp_path)


def test_readings_fill_placeholders_and_show_missing_ones() -> None:
    assert render_reading("cost {unit_cost:g}, {share:.1%}", {"unit_cost": 560.0,
                                                              "share": 0.25}) == \
        "cost 560, 25.0%"
    assert render_reading("cost {unit_cost:g} and {gap}", {"unit_cost": 560}) == \
        "cost 560 and {gap}"


@pytest.mark.parametrize("template, message", [
    ("{limit.__class__}", "must be a plain name"),
    ("{limit[0]}", "must be a plain name"),
    ("{0}", "must be a plain name"),
    ("{limit!r}", "must not use a conversion"),
    ("{limit:>999999999}", "number format"),
])
def test_readings_only_name_and_format_evidence(template: str, message: str) -> None:
    """A catalogue reading fills in evidence values; it cannot reach into objects or pad a
    report with a billion spaces."""
    text = MINIMAL.replace("The limit is {limit:.0%}.", f"The limit is {template}.")
    assert text != MINIMAL
    with pytest.raises(SourceError, match=message):
        load_catalogue_texts([("x.yaml", text)])
    assert load_catalogue_texts([("x.yaml", MINIMAL)])["sample"].reading.violation
