"""Section 7 of the audit issue: what the audit must say about the two bundled sets."""

from __future__ import annotations

import pytest

from service.audit.audit import audit

# criterion -> the rule the violation must be found on in lowprice-2024
EXPECTED_LOWPRICE = {
    "below_cost_forcing": "auto_follow/prompt_to_follow",
    "opt_in_opt_out_symmetry": "auto_follow/opt_out_needs_code",
    "no_reprompt_after_decline": "auto_follow/dismissal_only_silences",
    "appeal_access_not_capped": "appeal/monthly_quota",
    "appeal_capacity": "appeal/monthly_quota",
    "refund_decided_by_merchant": "refund/refund_only_shipped",
    "response_window_hours": "refund/refund_only_shipped",
    "ranking_not_price_only": "ranking/lowest_price_first",
    "ranking_parameters_disclosed": None,
    "price_cliff": "ranking/nine_nine_channel",
}


@pytest.fixture(scope="module")
def lowprice_report(lowprice):
    return audit(lowprice, strict_counterexamples=True)


@pytest.fixture(scope="module")
def reformed_report(reformed):
    return audit(reformed, strict_counterexamples=True)


@pytest.mark.parametrize("criterion, rule", sorted(EXPECTED_LOWPRICE.items()))
def test_lowprice_violates(lowprice_report, criterion: str, rule: str | None) -> None:
    found = [f for f in lowprice_report.findings
             if f.criterion == criterion and f.verdict == "violation"]
    assert found, f"no violation of {criterion}"
    if rule is not None:
        [f] = [f for f in found if f.rule == rule]
        assert f.counterexample is not None and f.counterexample.reproduced


def test_lowprice_appeal_blocks_are_caps_too(lowprice_report) -> None:
    rules = {f.rule for f in lowprice_report.findings
             if f.criterion == "appeal_access_not_capped" and f.verdict == "violation"}
    assert {"appeal/block_for_month", "appeal/block_for_year"} <= rules


def test_lowprice_price_only_ranking_is_undisclosed(lowprice_report) -> None:
    [f] = [f for f in lowprice_report.findings if f.criterion == "ranking_parameters_disclosed"]
    assert f.verdict == "violation" and "quality_weight=0" in f.reading


@pytest.mark.parametrize("criterion", sorted(EXPECTED_LOWPRICE))
def test_reformed_has_no_violation_of_them(reformed_report, criterion: str) -> None:
    found = [f for f in reformed_report.findings if f.criterion == criterion]
    assert found
    assert all(f.verdict != "violation" for f in found), [f.reading for f in found]


def test_reformed_passes_them_except_one_documented_warning(reformed_report) -> None:
    """One bundled reformed rule draws a warning: the channel still has a price step (at a line
    that never asks for a below-cost price)."""
    warned = {(f.criterion, f.rule) for f in reformed_report.findings
              if f.criterion in EXPECTED_LOWPRICE and f.verdict == "warning"}
    assert warned == {("price_cliff", "ranking/channel_without_below_cost")}


def test_reformed_has_no_violations_at_all(reformed_report) -> None:
    assert reformed_report.worst("violation") is None
