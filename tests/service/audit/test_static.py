"""Static checks: every criterion with a static check fails on one crafted or bundled set and
passes on another; verdicts come from rule structure, readings from the rulebook's numbers."""

from __future__ import annotations

import pytest

from rules.loader import load_set, load_set_from_texts
from service.audit.static import run_static

from .conftest import BOOKS, FIXTURES


def judge(rs, catalogue, criterion: str, history=()) -> list:
    return run_static(rs, [catalogue[criterion]], history)


def verdicts(findings) -> set[str]:
    return {f.verdict for f in findings}


# (criterion, set that violates it, set that passes it)
CASES = [
    ("below_cost_forcing", "lowprice", "reformed"),
    ("price_cliff", "lowprice", "fair"),
    ("auto_follow_default_off", "pushy", "lowprice"),
    ("opt_in_opt_out_symmetry", "lowprice", "reformed"),
    ("no_reprompt_after_decline", "lowprice", "fair"),
    ("exposure_penalty_on_decline", "lowprice", "reformed"),
    ("exposure_penalty_on_decline", "pushy", "fair"),
    ("ranking_parameters_disclosed", "lowprice", "reformed"),
    ("ranking_not_price_only", "lowprice", "reformed"),
    ("appeal_access_not_capped", "lowprice", "reformed"),
    ("appeal_capacity", "lowprice", "reformed"),
    ("appeal_human_review", "lowprice", "reformed"),
    ("appeal_window_days", "pushy", "fair"),
    ("appeal_deadline_published", "pushy", "fair"),
    ("refund_decided_by_merchant", "lowprice", "reformed"),
    ("response_window_hours", "lowprice", "reformed"),
    ("burden_shift", "lowprice", "reformed"),
    ("price_protection_floor", "lowprice", "reformed"),
    ("rule_change_notice_days", "lowprice", "reformed"),
    ("rule_change_consultation", "pushy", "reformed"),
    ("fee_itemised", "lowprice", "reformed"),
    ("fee_change_consulted", "pushy", "reformed"),
    ("take_rate", "pushy", "fair"),
]


@pytest.mark.parametrize("criterion, bad, good", CASES)
def test_violated_by_one_set_and_passed_by_another(request, catalogue, criterion: str, bad: str,
                                                   good: str) -> None:
    failing = judge(request.getfixturevalue(bad), catalogue, criterion)
    passing = judge(request.getfixturevalue(good), catalogue, criterion)
    assert "violation" in verdicts(failing), [f.reading for f in failing]
    assert verdicts(passing) == {"pass"}, [f.reading for f in passing]
    for f in failing + passing:
        assert f.criterion == criterion and f.kind == "static"
        assert "{" not in f.reading, f.reading
        assert f.citation.law


def test_rule_level_findings_name_the_rule_and_its_line(lowprice, catalogue) -> None:
    [f] = [f for f in judge(lowprice, catalogue, "opt_in_opt_out_symmetry")]
    assert f.rule == "auto_follow/opt_out_needs_code"
    assert f.location.endswith("lowprice-2024/auto_follow.yaml:52")
    assert f.evidence["in_steps"] == "1" and f.evidence["out_steps"] == "3"
    assert "joining takes 1 step(s) without a code but leaving takes 3 step(s) with a " \
           "verification code" in f.reading


def test_below_cost_reading_uses_the_sofa(lowprice, catalogue) -> None:
    found = {f.rule: f for f in judge(lowprice, catalogue, "below_cost_forcing")}
    sofa = found["auto_follow/prompt_to_follow"]
    assert sofa.reading.startswith("Under this rule, a merchant whose unit cost is 560 yuan can "
                                   "be pushed to sell at 549 yuan, 11 yuan below cost")
    assert "12 hours" in sofa.reading
    channel = found["ranking/nine_nine_channel"]
    assert channel.evidence["price"] == 9.9 and channel.evidence["unit_cost"] > 9.9


def test_verdicts_follow_the_structure_not_the_names(lowprice, catalogue) -> None:
    """The same rules under other ids and file order give the same verdicts."""
    rb = lowprice.rulebooks["auto_follow"]
    text = rb.text.replace("prompt_to_follow", "rule_a").replace("opt_out_needs_code", "rule_b")
    renamed = load_set_from_texts("renamed", {"auto_follow.yaml": text})
    for criterion in ("below_cost_forcing", "opt_in_opt_out_symmetry"):
        assert "violation" in verdicts(judge(renamed, catalogue, criterion))
    # Flooring the follow at unit cost is what makes it pass, whatever the rule is called.
    floored = text.replace("price: event.competitor_price",
                           "price: max(event.competitor_price, listing.unit_cost)")
    floored = floored.replace("target: event.competitor_price",
                              "target: max(event.competitor_price, listing.unit_cost)")
    floored = floored.replace("target: listing.competitor_price",
                              "target: max(listing.competitor_price, listing.unit_cost)")
    fixed = load_set_from_texts("floored", {"auto_follow.yaml": floored})
    assert verdicts(judge(fixed, catalogue, "below_cost_forcing")) == {"pass"}


def test_reformed_channel_is_a_warning_not_a_violation(reformed, catalogue) -> None:
    [f] = judge(reformed, catalogue, "price_cliff")
    assert f.verdict == "warning" and f.rule == "ranking/channel_without_below_cost"
    assert f.evidence["below_cost_possible"] is False and f.evidence["demoted"] is False


def test_cliff_names_the_line_and_the_jump(lowprice, catalogue) -> None:
    found = {f.rule: f for f in judge(lowprice, catalogue, "price_cliff")}
    nine = found["ranking/nine_nine_channel"]
    assert nine.evidence["price_in"] == 9.9 and nine.evidence["price_out"] == 10.0
    assert nine.evidence["impressions_in"] == 1_000_000 and nine.evidence["impressions_out"] == 0
    assert found["ranking/lesser_slot_above_bar"].evidence["demoted"] is True


def test_a_price_line_that_rounds_to_zero_yuan_is_not_a_cliff(lowprice, catalogue) -> None:
    """An inline set whose line is 0.0000001 yuan: no listing price to test, no crash."""
    text = lowprice.rulebooks["ranking"].text
    odd = text.replace("    value: 9.9\n", "    value: 0.0000001\n", 1)
    assert odd != text
    found = judge(load_set_from_texts("odd", {"ranking.yaml": odd}), catalogue, "price_cliff")
    assert "ranking/nine_nine_channel" not in {f.rule for f in found}


def test_a_set_without_the_family_is_not_applicable(fair, catalogue) -> None:
    for criterion in ("refund_decided_by_merchant", "burden_shift", "price_protection_floor",
                      "response_window_hours"):
        assert verdicts(judge(fair, catalogue, criterion)) == {"not_applicable"}


def test_missing_flags_and_consultation_are_warnings_not_guesses(lowprice, pushy,
                                                                  catalogue) -> None:
    assert verdicts(judge(pushy, catalogue, "ranking_parameters_disclosed")) == {"warning"}
    assert verdicts(judge(pushy, catalogue, "fee_itemised")) == {"warning"}
    assert verdicts(judge(lowprice, catalogue, "rule_change_consultation")) == {"warning"}
    assert verdicts(judge(lowprice, catalogue, "appeal_deadline_published")) == {"warning"}
    assert verdicts(judge(pushy, catalogue, "rule_change_notice_days")) == {"warning"}


def test_reprompt_without_memory_is_a_warning(reformed, catalogue) -> None:
    """The bundled reformed prompt checks the decline's silence; without that check a closed
    prompt comes back with the next price observation."""
    assert verdicts(judge(reformed, catalogue, "no_reprompt_after_decline")) == {"pass"}
    text = reformed.rulebooks["auto_follow"].text
    forgetful_text = text.replace("\n      and event.time >= listing.prompt_silenced_until", "")
    forgetful_text = forgetful_text.replace(
        "      - effect: silence_prompt\n        duration: decline_holds",
        "      - effect: close_prompt")
    assert forgetful_text != text
    forgetful = load_set_from_texts("forgetful", {"auto_follow.yaml": forgetful_text})
    [f] = judge(forgetful, catalogue, "no_reprompt_after_decline")
    assert f.verdict == "warning" and f.rule == "auto_follow/prompt_to_follow_above_cost"


def test_appeal_capacity_threshold_is_a_parameter(lowprice, catalogue) -> None:
    [f] = judge(lowprice, catalogue, "appeal_capacity")
    assert f.evidence["allowed"] == 30 and f.evidence["needed"] == 375
    relaxed = catalogue.with_parameters({"appeal_capacity.orders_per_day": 10})
    [g] = run_static(lowprice, [relaxed["appeal_capacity"]])
    assert g.verdict == "pass" and g.evidence["needed"] == 4


def test_rule_stability_needs_history_and_judges_fee_moves(lowprice, catalogue) -> None:
    assert verdicts(judge(lowprice, catalogue, "rule_stability")) == {"not_applicable"}
    h2019 = load_set(FIXTURES / "history" / "lowprice-2019")
    h2023 = load_set(FIXTURES / "history" / "lowprice-2023")
    [bad] = judge(lowprice, catalogue, "rule_stability", [h2019, h2023])
    assert bad.verdict == "violation"
    assert "commission_rate went from 0.01 to 0.05" in bad.reading
    [good] = judge(lowprice, catalogue, "rule_stability", [h2023])
    assert good.verdict == "pass"
    assert good.evidence["families"]["commission"]["changes"] == 0


@pytest.mark.parametrize("reviews, verdict", [(("automated", "human"), "pass"),
                                              (("human", "automated"), "violation")])
def test_the_last_acceptance_names_the_appeal_reviewer(catalogue, reviews, verdict) -> None:
    """A rule that accepts an appeal twice is heard by the reviewer its last acceptance names,
    as the simulator reads it."""
    files = {p.name: p.read_text() for p in (BOOKS / "reformed-2025").glob("*.yaml")}
    heard = "      - effect: accept_appeal\n        review: human\n"
    assert heard in files["appeal.yaml"]
    twice = "".join(f"      - effect: accept_appeal\n        review: {r}\n" for r in reviews)
    files["appeal.yaml"] = files["appeal.yaml"].replace(heard, twice)
    rs = load_set_from_texts("reformed-2025-twice", files)
    assert verdicts(judge(rs, catalogue, "appeal_human_review")) == {verdict}
