"""Scenario files: the default is complete and sourced; bad files fail with their location."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario import SourceError, load_scenario, load_scenario_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"


def test_default_scenario_loads_and_every_value_says_where_it_comes_from() -> None:
    sc = load_scenario()
    sources = sc.sources()
    assert len(sources) > 60
    for path, source in sources.items():
        assert source.startswith(("Field research", "assumption")), (path, source)
    # Figures that come from the field research carry its numbers.
    assert sc.value("ads.cost_per_click") == 2.17
    assert 0.021 <= sc.value("demand.conversion") <= 0.025
    assert 0.05 <= sc.value("refunds.claim_rate") <= 0.10
    assert sc.value("refunds.lacking_evidence_share") == 0.25
    assert (sc.value("population.initial_margin_low"),
            sc.value("population.initial_margin_high")) == (0.20, 0.30)
    assert sources["refunds.claim_rate"].startswith("Field research")
    assert sc.start.isoformat() == "2024-07-01"


def test_fixture_scenario_loads_with_its_own_population() -> None:
    sc = load_scenario(FIXTURES / "tiny.yaml")
    assert sc.name == "tiny"
    assert [g.sellers.value for g in sc.model.groups] == [6, 6, 6, 6]


def test_unknown_key_is_reported_with_file_line_and_column() -> None:
    with pytest.raises(SourceError) as err:
        load_scenario(FIXTURES / "unknown_key.yaml")
    text = str(err.value)
    assert "unknown_key.yaml:10:5" in text
    assert "daily_impresions" in text
    # The whole file is checked: the missing sections are reported too.
    assert "missing key 'tiers'" in text


def test_a_character_yaml_does_not_allow_is_located() -> None:
    text = _default_with("name: default", "name: def\x01ault")
    with pytest.raises(SourceError) as err:
        load_scenario_text(text, "s.yaml")
    [v] = err.value.violations
    assert (v.line, v.column) == (_line_of(text, "name: def"), 12)
    assert v.message.startswith("YAML does not allow the character U+0001")


def test_yaml_syntax_error_is_located() -> None:
    with pytest.raises(SourceError) as err:
        load_scenario(FIXTURES / "broken_syntax.yaml")
    v = err.value.violations[0]
    assert v.file.endswith("broken_syntax.yaml") and v.line >= 3
    assert "YAML syntax error" in v.message


def _default_with(old: str, new: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "simulator" / "scenarios"
            / "default.yaml").read_text()
    assert old in text
    return text.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_a_value_without_source_is_an_error_at_its_line() -> None:
    text = _default_with('cost_per_click: {value: 2.17, source: "Field research, fees: cost per '
                         'click 2.17 yuan (2023)"}', "cost_per_click: {value: 2.17}")
    with pytest.raises(SourceError) as err:
        load_scenario_text(text, "s.yaml")
    v = err.value.violations[0]
    assert (v.file, v.line) == ("s.yaml", _line_of(text, "cost_per_click"))
    assert v.path == "ads.cost_per_click" and "missing key 'source'" in v.message


def test_out_of_range_value_is_located_at_the_value() -> None:
    text = _default_with("claim_rate: {value: 0.075", "claim_rate: {value: 1.5")
    with pytest.raises(SourceError) as err:
        load_scenario_text(text, "s.yaml")
    v = err.value.violations[0]
    assert v.line == _line_of(text, "claim_rate")
    assert v.path == "refunds.claim_rate.value"
    assert "less than or equal to 1" in v.message


@pytest.mark.parametrize(("old", "new", "path"), [
    ("cost_per_click: {value: 2.17,", "cost_per_click: {value: .inf,", "ads.cost_per_click.value"),
    ("leave_margin_threshold: {value: 0.05,", "leave_margin_threshold: {value: .nan,",
     "auto_follow.leave_margin_threshold.value"),
    # A whole number past float64's range (no float is that large: taken as infinite).
    ("cost_per_click: {value: 2.17,", "cost_per_click: {value: 1" + "0" * 400 + ",",
     "ads.cost_per_click.value"),
])
def test_infinite_and_nan_values_are_errors_at_the_value(old: str, new: str, path: str) -> None:
    """YAML reads .inf and .nan as floats; the model would run on them and report NaN."""
    text = _default_with(old, new)
    with pytest.raises(SourceError) as err:
        load_scenario_text(text, "s.yaml")
    v = err.value.violations[0]
    assert (v.line, v.path) == (_line_of(text, new), path)
    assert "finite number" in v.message


def test_tier_shares_must_add_up_to_one() -> None:
    text = _default_with("share: {value: 0.7,", "share: {value: 0.6,")
    with pytest.raises(SourceError) as err:
        load_scenario_text(text, "s.yaml")
    v = err.value.violations[0]
    assert v.line == _line_of(text, "share: {value: 0.6,")
    assert "add up to 0.9" in v.message


def test_a_count_must_be_a_whole_number() -> None:
    text = _default_with("sellers: {value: 40,", "sellers: {value: 40.5,")
    with pytest.raises(SourceError) as err:
        load_scenario_text(text, "s.yaml")
    assert err.value.violations[0].path == "groups[0].sellers.value"


def test_overrides_are_checked_and_marked() -> None:
    sc = load_scenario()
    changed = sc.with_values({"refunds.claim_rate": 0.1, "groups.0.sellers": 3})
    assert changed.value("refunds.claim_rate") == 0.1
    assert changed.value("groups.0.sellers") == 3
    assert changed.sources()["refunds.claim_rate"].startswith("override of Field research")
    assert sc.value("refunds.claim_rate") != 0.1  # the original is untouched
    with pytest.raises(KeyError, match=r"no value 'refunds\.claim_rat'"):
        sc.with_values({"refunds.claim_rat": 0.1})
    with pytest.raises(ValueError, match="invalid"):
        sc.with_values({"refunds.claim_rate": 2.0})
