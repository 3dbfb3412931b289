"""The loader rejects a bad rulebook whole and says where: file:line:column and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rules.loader import load_rulebook, load_rulebook_text, load_set
from rules.schema_export import SCHEMA_PATH, rulebook_schema
from rules.yamlsource import MAX_ALIASES, SourceError, read_text


def load_yaml(text: str) -> object:
    return read_text(text, "x.yaml").data

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "rulebooks"
BOOKS = ROOT / "rules" / "books"

GOOD = """\
rulebook:
  platform: test
  family: commission
  version: "1"
  published: 2024-07-01
  effective: 2024-07-08
  description: A small valid rulebook.
parameters:
  commission_rate:
    value: 5%
    unit: fraction
    source: "Field research, fees"
rules:
  - id: commission
    description: Every paid order pays commission.
    on: [order_placed]
    when: event.amount > 0
    then:
      - effect: charge_fee
        kind: commission
        amount: event.amount * commission_rate
    source: "Field research, fees"
"""


def errors_of(text: str, file: str = "commission.yaml") -> list[str]:
    with pytest.raises(SourceError) as info:
        load_rulebook_text(text, file)
    return [str(v) for v in info.value.violations]


def test_a_valid_rulebook_loads_with_parameters_in_base_units() -> None:
    rb = load_rulebook_text(GOOD, "commission.yaml")
    assert rb.family == "commission"
    assert rb.parameters["commission_rate"] == pytest.approx(0.05)
    assert [r.id for r in rb.rules] == ["commission"]
    assert rb.rules[0].when.names == frozenset({"event.amount"})
    assert len(rb.revision) == 16


def test_unknown_name_in_expression_points_at_the_name() -> None:
    with pytest.raises(SourceError) as info:
        load_rulebook(FIXTURES / "broken_refund.yaml")
    [v] = info.value.violations
    assert (v.line, v.column) == (19, 43)
    assert v.path == "rules[0].when"
    assert "unknown name 'order.shiped'" in v.message
    assert "order.shipped" in v.message
    assert str(v).startswith(f"{FIXTURES / 'broken_refund.yaml'}:19:43:")


def test_unknown_key_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(SourceError) as info:
        load_rulebook(FIXTURES / "unknown_key.yaml")
    [v] = info.value.violations
    assert (v.line, v.column) == (19, 5)
    assert "unknown key 'whne'" in v.message and "'when'" in v.message


def test_unknown_effect_and_bad_arguments() -> None:
    text = GOOD.replace("effect: charge_fee", "effect: charge_fees")
    [msg] = errors_of(text)
    assert ":19:" in msg and "unknown effect 'charge_fees'" in msg and "charge_fee" in msg
    text = GOOD.replace("kind: commission", "kind: tip")
    [msg] = errors_of(text)
    assert ":20:" in msg and "'tip' is not one of" in msg
    text = GOOD.replace("        kind: commission\n", "")
    [msg] = errors_of(text)
    assert "needs argument 'kind'" in msg
    text = GOOD.replace("kind: commission", "kind: commission\n        rate: 3")
    [msg] = errors_of(text)
    assert "has no argument 'rate'" in msg


def test_type_errors_and_conditions_that_are_not_conditions() -> None:
    [msg] = errors_of(GOOD.replace("when: event.amount > 0", "when: event.amount"))
    assert "true/false condition is needed" in msg
    [msg] = errors_of(GOOD.replace("amount: event.amount * commission_rate",
                                   "amount: event.amount > 3"))
    assert "a number is needed" in msg
    msgs = errors_of(GOOD.replace("when: event.amount > 0", 'when: event.amount == "x"'))
    assert msgs and ":17:" in msgs[0]


def test_every_number_and_rule_needs_a_source() -> None:
    msgs = errors_of(GOOD.replace('    source: "Field research, fees"\nrules:', "rules:"))
    assert any("missing key 'source'" in m and "parameters.commission_rate" in m for m in msgs)
    msgs = errors_of(GOOD.rstrip().rsplit("\n", 1)[0] + "\n")
    assert any("missing key 'source'" in m and "rules[0]" in m for m in msgs)


def test_undefined_parameter_and_unknown_event_type() -> None:
    [msg] = errors_of(GOOD.replace("* commission_rate", "* comission_rate"))
    assert "comission_rate" in msg and "commission_rate" in msg
    [msg] = errors_of(GOOD.replace("on: [order_placed]", "on: [order_paid]"))
    assert "unknown event type 'order_paid'" in msg and "order_placed" in msg


def test_names_not_provided_by_the_event_are_refused() -> None:
    [msg] = errors_of(GOOD.replace("when: event.amount > 0", "when: event.clicks > 0"))
    assert "unknown name 'event.clicks'" in msg
    two = GOOD.replace("on: [order_placed]", "on: [order_placed, ad_click_charged]")
    msgs = errors_of(two)  # amount is not on ad clicks: both the condition and the fee say so
    assert len(msgs) == 2 and all("unknown name 'event.amount'" in m for m in msgs)


def test_yaml_problems_are_located() -> None:
    [msg] = errors_of(GOOD.replace("  family: commission\n", "  family: commission\n  family: x\n"))
    assert ":4:3:" in msg and "duplicate key 'family'" in msg
    [msg] = errors_of(GOOD.replace("on: [order_placed]", "on: [order_placed"))
    assert "YAML syntax error" in msg
    [msg] = errors_of("rules: !!python/object:os.system {}\n")
    assert "not allowed" in msg
    # A control character, which PyYAML's reader refuses before any parsing: located too.
    [msg] = errors_of(GOOD.replace("A small valid", "A small\x07 valid"))
    assert msg.endswith(":7:23: YAML does not allow the character U+0007 (special characters "
                        "are not allowed)")


def test_alias_bombs_and_huge_files_are_refused() -> None:
    anchors = "a: &a [1]\n" + "".join(f"k{i}: *a\n" for i in range(MAX_ALIASES + 1))
    [msg] = errors_of(anchors)
    assert "aliases" in msg
    [msg] = errors_of("x: " + "y" * (1 << 20) + "\n")
    assert "larger than" in msg


@pytest.mark.parametrize(("text", "where"), [
    ("rulebook: " + "[" * 100_000 + "]" * 100_000, ":1:75:"),  # flow: refused before PyYAML
    ("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 80)) + "  " * 80 + "c: 1\n",
     ":65:129:"),  # block nesting, from PyYAML's events
])
def test_nesting_deeper_than_the_limit_is_refused_at_once(text: str, where: str) -> None:
    """PyYAML composes recursively (a few hundred levels overflow Python's stack) and scans
    deep flow nesting in quadratic time (minutes for 100,000 brackets)."""
    [msg] = errors_of(text)
    assert where in msg and msg.endswith("nested more than 64 levels deep")


def test_nesting_within_the_limit_and_brackets_in_text_load() -> None:
    text = ('a: "[[[[ {{"\nb: [1, [2, {c: 3}]]\nd: \'[[\'\' [\'  # [[[[[[\n'
            + "e: " + "[" * 63 + "]" * 63 + "\n")  # (63 lists in the top mapping: 64 levels)
    text += "f: " + "a range [0, 1) " * 100 + "\n"  # (brackets in plain text open nothing)
    doc = load_yaml(text)
    assert doc["a"] == "[[[[ {{" and doc["b"] == [1, [2, {"c": 3}]] and doc["d"] == "[[' ["
    assert doc["f"].count("[0, 1)") == 100


def test_family_must_match_file_name_and_dates_must_be_dates() -> None:
    [msg] = errors_of(GOOD, file="refund.yaml")
    assert "family 'commission'" in msg and "commission.yaml" in msg
    [msg] = errors_of(GOOD.replace("published: 2024-07-01", "published: July"))
    assert "not a date" in msg
    [msg] = errors_of(GOOD.replace("effective: 2024-07-08", "effective: 2024-06-01"))
    assert "before it is published" in msg


def test_durations_and_percentages_in_parameters() -> None:
    text = GOOD.replace("value: 5%", "value: 36h")
    [msg] = errors_of(text)
    assert "percentage" in msg
    text = GOOD.replace("value: 5%\n    unit: fraction", "value: 5%\n    unit: duration")
    [msg] = errors_of(text)
    assert "duration" in msg


@pytest.mark.parametrize("value", ["1" + "0" * 400, "[1, -1" + "0" * 400 + "]"])
def test_a_whole_number_past_a_floats_range_is_refused_where_it_is_written(value: str) -> None:
    """Rules compute in float64: a parameter's whole number past its range would fail every
    target, so the file is refused at the number (pydantic's "Value error, " not repeated)."""
    text = GOOD.replace("value: 5%\n    unit: fraction", f"value: {value}\n    unit: count")
    assert text != GOOD
    [msg] = errors_of(text)
    assert msg.endswith(":10:12: parameters.commission_rate.value: this number is too large")


@pytest.mark.parametrize("value", ["1" + "0" * 5000, "-1_" + "0" * 5000])
def test_a_whole_number_past_pythons_digit_limit_is_refused_where_it_is_written(
        value: str) -> None:
    """Past 4,300 digits Python will not convert a number at all (against slow conversions):
    still named at the number, not at the file's first line in PyYAML's words."""
    text = GOOD.replace("value: 5%\n    unit: fraction", f"value: {value}\n    unit: count")
    assert text != GOOD
    [msg] = errors_of(text)
    assert msg.endswith(":10:12: parameters.commission_rate.value: this number is too large "
                        "(5,001 digits)")


@pytest.mark.parametrize(("written", "value"), [("1e3", 1000.0), ("2.5E-2", 0.025),
                                              ("1.0e+3", 1000.0)])
def test_numbers_in_exponent_form_are_numbers(written: str, value: float) -> None:
    """YAML 1.1 reads 1e3 (no dot, no sign) as text; these files read it as YAML 1.2 does."""
    rb = load_rulebook_text(GOOD.replace("value: 5%\n    unit: fraction",
                                         f"value: {written}\n    unit: score"),
                            "commission.yaml")
    assert rb.parameters["commission_rate"] == value


@pytest.mark.parametrize(("old", "new", "message"), [
    ("amount: event.amount * commission_rate", "amount: 1" + "0" * 400,
     ":21:17: rules[0].then[0].amount: this number is too large"),
    ("amount: event.amount * commission_rate", "amount: 1e400",
     ":21:17: rules[0].then[0].amount: this number is too large"),
    ("amount: event.amount * commission_rate", "amount: .inf",
     ":21:17: rules[0].then[0].amount: this number is too large"),
    ("amount: event.amount * commission_rate", "amount: .nan",
     ":21:17: rules[0].then[0].amount: NaN is not a number a rule can use"),
    ("when: event.amount > 0", "when: event.amount > 1" + "0" * 400 + "%",
     ":17:26: rules[0].when: this number is too large"),
    ("value: 5%", "value: 1e400",
     ":10:12: parameters.commission_rate.value: '1e400': this number is too large"),
    ("when: event.amount > 0", "when: 1e3",
     ":17:11: rules[0].when: '1000.0' is a number, but a true/false condition is needed here"),
])
def test_numbers_past_a_floats_range_are_refused_wherever_they_are_written(
        old: str, new: str, message: str) -> None:
    """In an effect's literal argument, in an expression with a unit, in a parameter in
    exponent form (YAML leaves 1e400 as text rather than make it infinite)."""
    assert old in GOOD
    [msg] = errors_of(GOOD.replace(old, new))
    assert msg.endswith(message)


def test_counts_cannot_be_negative() -> None:
    text = GOOD.replace("value: 5%\n    unit: fraction", "value: -1\n    unit: count")
    assert text != GOOD
    [msg] = errors_of(text)
    assert "count cannot be negative" in msg and "parameters.commission_rate.value" in msg


def test_nothing_is_half_loaded_from_a_set(tmp_path: Path) -> None:
    good_dir = tmp_path / "set"
    good_dir.mkdir()
    (good_dir / "commission.yaml").write_text(GOOD)
    (good_dir / "refund.yaml").write_text((FIXTURES / "broken_refund.yaml").read_text())
    with pytest.raises(SourceError) as info:
        load_set(good_dir)
    assert [Path(v.file).name for v in info.value.violations] == ["refund.yaml"]


@pytest.mark.parametrize("name", ["lowprice-2024", "reformed-2025"])
def test_bundled_sets_load_with_all_five_families(name: str) -> None:
    rs = load_set(BOOKS / name)
    assert sorted(rs.rulebooks) == ["appeal", "auto_follow", "commission", "ranking", "refund"]
    for rb in rs.rulebooks.values():
        for spec in rb.parameter_specs.values():
            assert spec.source.strip()
        for rule in rb.rules:
            assert rule.source.strip()


def test_lowprice_encodes_the_field_research_figures() -> None:
    rs = load_set(BOOKS / "lowprice-2024")
    p = {f: rb.parameters for f, rb in rs.rulebooks.items()}
    assert p["refund"]["response_window"] == 36 * 3600
    assert p["refund"]["price_protection_line"] == 100
    assert p["refund"]["recall_fee"] == pytest.approx(0.17)
    assert p["auto_follow"]["prompt_pressure_window"] == 12 * 3600
    assert p["auto_follow"]["reprompt_after"] == 72 * 3600
    assert p["auto_follow"]["opt_in_steps"] == 1 and p["auto_follow"]["opt_out_verification"]
    assert p["appeal"]["appeal_quota_month"] == 30
    assert p["appeal"]["failed_appeals_month_limit"] == 3
    assert p["appeal"]["failed_appeals_year_limit"] == 10
    assert p["commission"]["commission_rate"] == pytest.approx(0.05)
    assert p["commission"]["cost_per_click"] == pytest.approx(2.17)
    assert p["ranking"]["channel_price_line"] == pytest.approx(9.9)
    assert p["ranking"]["channel_price_bar"] == pytest.approx(0.7)
    assert p["ranking"]["todays_picks_impressions"] == 1_000_000


def test_published_schema_is_current_and_lists_every_effect() -> None:
    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == json.loads(json.dumps(rulebook_schema()))
    effects = {alt["title"] for alt in committed["$defs"]["EffectCall"]["oneOf"]}
    assert {"grant_refund", "set_price", "block_appeals", "charge_fee"} <= effects


def test_a_set_sent_as_texts_is_checked_like_a_directory() -> None:
    from rules.loader import load_set_from_texts

    rs = load_set_from_texts("sent", {"commission.yaml": GOOD})
    assert rs.id == "sent" and list(rs.rulebooks) == ["commission"]
    with pytest.raises(SourceError) as info:
        load_set_from_texts("sent", {"../commission.yaml": GOOD})
    assert "file names are <family>.yaml" in info.value.violations[0].message
    with pytest.raises(SourceError) as info:
        load_set_from_texts("sent", {"commission.yaml": GOOD.replace("when: event.amount > 0",
                                                                     "when: event.amount")})
    assert info.value.violations[0].file == "commission.yaml"
