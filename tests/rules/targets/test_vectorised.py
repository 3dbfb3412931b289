"""Vectorised decisions over hand-built columns for both bundled rulebook sets.

Each scope is a handful of rows told as the field research tells the cases: the sofa whose price
follows a competitor, the refund at exactly the 100-yuan protection line, the 9.9-yuan channel's
price bar. Rows vary one fact at a time so each assertion names the fact that decides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.expression.numpy_target import Column
from rules.loader import load_set
from rules.targets.vectorised import NO_RULE, compile_rulebook, compile_set

BOOKS = Path(__file__).resolve().parents[3] / "rules" / "books"
HOUR = 3600.0


@pytest.fixture(scope="module")
def lowprice():
    return compile_set(load_set(BOOKS / "lowprice-2024"))


@pytest.fixture(scope="module")
def reformed():
    return compile_set(load_set(BOOKS / "reformed-2025"))


def ids(decisions) -> list[str | None]:
    return [decisions.rule_id_at(i) for i in range(decisions.n)]


def bools(*values: bool | None) -> Column:
    """A flag column where None is unknown."""
    return Column(np.array([bool(v) for v in values]), np.array([v is not None for v in values]))


def texts(*values: str | None) -> Column:
    return Column(np.array([v or "" for v in values]), np.array([v is not None for v in values]))


# -- auto-follow: the sofa ---------------------------------------------------------------------
SOFA = {
    # rows: the sofa (enrolled, 599 vs 558); not enrolled; competitor dearer; prompt silenced;
    # enrolment unknown
    "event": {"competitor_price": np.array([558.0, 558.0, 620.0, 558.0, 558.0]),
              "time": 1000 * HOUR},
    "merchant": {"auto_follow_enrolled": bools(True, False, True, True, None)},
    "listing": {"price": 599.0, "unit_cost": 560.0,
                "prompt_silenced_until": np.array([0.0, 0.0, 0.0, 1010 * HOUR, 0.0])},
}


def test_the_sofa_is_prompted_to_follow_to_558(lowprice) -> None:
    book = lowprice["auto_follow"]
    decided = book.decide("competitor_price_observed", SOFA, 5)
    assert ids(decided) == ["prompt_to_follow", None, None, None, None]
    assert decided.fired("prompt_to_follow").tolist() == [True, False, False, False, False]
    (prompt,) = decided.effects("prompt_to_follow")
    assert prompt.name == "prompt_price_change"
    assert prompt.args["target"][0] == 558.0
    assert decided.counts() == {"prompt_to_follow": 1}
    ((mask, args),) = decided.by_effect("prompt_price_change")
    assert mask.tolist() == [True, False, False, False, False]
    assert args["target"][mask].tolist() == [558.0]


def test_the_sofa_follows_after_12_hours_even_below_cost(lowprice) -> None:
    book = lowprice["auto_follow"]
    assert book.deadline_after("prompt_to_follow", SOFA, 5).tolist() == [12 * HOUR] * 5
    # The deadline re-checks enrolment and the price gap when it falls due.
    assert book.deadline_when("prompt_to_follow", SOFA, 5).tolist() == \
        [True, False, False, True, False]
    (set_price,) = book.deadline_effects("prompt_to_follow", SOFA, 5)
    assert set_price.name == "set_price"
    assert set_price.args["price"][0] == 558.0  # below the unit cost of 560
    assert set_price.args["reason"][0] == "automatic price following"
    assert not set_price.missing_required()[0]


def test_the_reformed_follow_is_floored_at_unit_cost(reformed) -> None:
    book = reformed["auto_follow"]
    decided = book.decide("competitor_price_observed", SOFA, 5)
    # The reformed book honours a decline's silence too: the fourth row is not prompted.
    assert ids(decided) == ["prompt_to_follow_above_cost", None, None, None, None]
    (prompt,) = decided.effects("prompt_to_follow_above_cost")
    assert prompt.args["target"][0] == 560.0
    (set_price,) = book.deadline_effects("prompt_to_follow_above_cost", SOFA, 5)
    assert set_price.args["price"][0] == 560.0


def test_opting_out_needs_a_code_only_on_the_low_price_platform(lowprice, reformed) -> None:
    scope = {"event": {"enrolled": bools(True, False, False, None),
                       "verified": bools(False, False, True, True)}}
    assert ids(lowprice["auto_follow"].decide("auto_follow_toggled", scope, 4)) == \
        ["enrol_one_tap", "opt_out_needs_code", "opt_out_with_code", None]
    refused = lowprice["auto_follow"].decide("auto_follow_toggled", scope, 4)
    (refusal,) = refused.effects("opt_out_needs_code")
    assert refusal.args["steps"][1] == 3.0 and bool(refusal.args["verification"][1])
    assert refusal.known["verification"].all()
    assert ids(reformed["auto_follow"].decide("auto_follow_toggled", scope, 4)) == \
        ["enrol_one_tap", "leave_one_tap", "leave_one_tap", None]


def test_a_listing_update_with_a_prompt_open_below_cost_is_flagged(lowprice) -> None:
    scope = {"event": {"price": np.array([549.0, 570.0, 549.0]), "unit_cost": 560.0},
             "listing": {"prompt_pending": bools(True, True, False)}}
    decided = lowprice["auto_follow"].decide("listing_updated", scope, 3)
    assert ids(decided) == ["follow_below_cost", "follow_made", None]
    flag, close = decided.effects("follow_below_cost")
    assert (flag.name, close.name) == ("flag", "close_prompt")
    assert flag.args["amount"][0] == pytest.approx(11.0)
    assert flag.args["finding"][0] == "below_cost_follow"


# -- refunds: the 100-yuan protection line ------------------------------------------------------
def test_intervention_grants_a_refund_of_exactly_100_yuan_at_once(lowprice, reformed) -> None:
    scope = {"order": {"refund_amount": np.array([100.0, 100.01, 99.0, 100.0, np.nan]),
                       "refund_status": texts("awaiting_merchant", "requested", "rejected",
                                              "granted", "requested")}}
    decided = lowprice["refund"].decide("platform_intervened", scope, 5)
    assert ids(decided) == ["intervention_grants_small_orders",
                            "intervention_reviews_large_orders",
                            "intervention_grants_small_orders", None, None]
    (grant,) = decided.effects("intervention_grants_small_orders")
    assert grant.args["recall_fee"][0] == pytest.approx(0.17)
    assert grant.args["decided_by"][0] == "platform"
    assert ids(reformed["refund"].decide("platform_intervened", scope, 5)) == \
        ["intervention_means_review"] * 3 + [None, "intervention_means_review"]


def test_a_refund_only_claim_on_a_shipped_order_waits_36_hours(lowprice) -> None:
    scope = {"event": {"kind": texts("refund_only", "refund_only", "return_and_refund", None)},
             "order": {"shipped": bools(True, False, True, True),
                       "refund_status": "awaiting_merchant"}}
    book = lowprice["refund"]
    decided = book.decide("refund_requested", scope, 4)
    assert ids(decided) == ["refund_only_shipped", "refund_only_unshipped", "return_and_refund",
                            None]
    assert book.deadline_after("refund_only_shipped", scope, 4)[0] == 36 * HOUR
    assert book.deadline_when("refund_only_shipped", scope, 4).all()
    (grant,) = book.deadline_effects("refund_only_shipped", scope, 4)
    assert grant.args["decided_by"][0] == "timeout"
    (with_return,) = book.deadline_effects("return_and_refund", scope, 4)
    assert bool(with_return.args["with_return"][0])


def test_the_merchants_acceptance_carries_the_claims_kind(lowprice) -> None:
    scope = {"event": {"decision": texts("accept", "accept", "reject")},
             "order": {"refund_status": "awaiting_merchant",
                       "refund_kind": texts("return_and_refund", None, "refund_only")}}
    decided = lowprice["refund"].decide("merchant_responded", scope, 3)
    assert ids(decided) == ["merchant_accepts", "merchant_accepts", "merchant_rejects"]
    (grant,) = decided.effects("merchant_accepts")
    assert grant.args["with_return"][0] and grant.known["with_return"].tolist() == \
        [True, False, True]


def test_a_deadline_without_when_always_applies_and_rules_without_one_are_refused(
        lowprice) -> None:
    book = lowprice["refund"]
    with pytest.raises(ValueError, match="has no deadline"):
        book.deadline_when("merchant_accepts", {}, 2)
    with pytest.raises(KeyError, match="no rule 'nope'"):
        book.deadline_when("nope", {}, 2)


# -- ranking: the 9.9 channel bar ---------------------------------------------------------------
def test_the_nine_nine_channel_bar_and_its_cliff(lowprice) -> None:
    scope = {"event": {"price": np.array([9.9, 10.0, 9.9, 9.0]), "quality": 4.0},
             "listing": {"promo_signup_price": np.array([15.0, 20.0, 13.0, np.nan])}}
    decided = lowprice["ranking"].decide("listing_updated", scope, 4)
    # 9.9 <= 0.7 * 15; 10.0 misses the price line by 0.1; 9.9 > 0.7 * 13; signup price unknown.
    assert ids(decided) == ["nine_nine_channel", "lowest_price_first", "lesser_slot_above_bar",
                            "lowest_price_first"]
    admit, score = decided.effects("nine_nine_channel")
    assert admit.args["impressions"][0] == 1_000_000
    assert score.args["score"][0] == -9.9
    _, demoted = decided.effects("lesser_slot_above_bar")
    assert demoted.args["score"][2] == pytest.approx(-1009.9)
    scores = decided.by_effect("assign_ranking_score")
    assert [mask.tolist() for mask, _ in scores] == [
        [True, False, False, False], [False, False, True, False], [False, True, False, True]]


def test_reformed_ranking_weighs_quality(reformed) -> None:
    scope = {"event": {"price": np.array([9.0, 12.0]), "unit_cost": 10.0,
                       "quality": np.array([4.0, 5.0])},
             "listing": {"promo_signup_price": 20.0}}
    decided = reformed["ranking"].decide("listing_updated", scope, 2)
    assert ids(decided) == ["quality_and_price", "channel_without_below_cost"]
    (score,) = decided.effects("quality_and_price")
    assert score.args["score"][0] == pytest.approx(60 * 4.0 - 0.4 * 9.0)


# -- the API itself ------------------------------------------------------------------------------
def test_an_event_type_nobody_listens_to_decides_nothing(lowprice) -> None:
    decided = lowprice["commission"].decide("appeal_filed", {}, 3)
    assert decided.rule.tolist() == [NO_RULE] * 3
    assert decided.counts() == {}


def test_compiling_a_rulebook_twice_reuses_the_closures(lowprice) -> None:
    book = lowprice["commission"]
    assert compile_rulebook(book.rulebook) is book
    assert book.event_types == ("order_placed", "ad_click_charged")
    assert book.rules_for("order_placed") == ("commission_on_paid_amount",)


def test_a_million_rows_decide_in_whole_array_passes(lowprice) -> None:
    n = 1_000_000
    rng = np.random.default_rng(7)
    price = rng.uniform(1, 20, n)
    price[rng.random(n) < 0.1] = np.nan
    scope = {"event": {"price": price, "quality": 3.0},
             "listing": {"promo_signup_price": rng.uniform(5, 30, n)}}
    decided = lowprice["ranking"].decide("listing_updated", scope, n)
    counts = decided.counts()
    assert sum(counts.values()) + int((decided.rule == NO_RULE).sum()) == n
    # Unknown prices still reach the catch-all rule, whose condition is simply true.
    assert counts["lowest_price_first"] >= int(np.isnan(price).sum())


def test_effects_are_taken_on_the_scope_the_decision_saw(lowprice) -> None:
    competitor = np.array([558.0, 700.0])
    scope = {"event": {"competitor_price": competitor, "time": 0.0},
             "merchant": {"auto_follow_enrolled": True},
             "listing": {"price": 599.0, "prompt_silenced_until": 0.0}}
    decided = lowprice["auto_follow"].decide("competitor_price_observed", scope, 2)
    competitor[:] = 1.0  # the simulator applies effects and moves on
    (prompt,) = decided.effects("prompt_to_follow")
    assert prompt.args["target"].tolist() == [558.0, 700.0]


def test_no_rows_decide_nothing(lowprice) -> None:
    decided = lowprice["refund"].decide("refund_requested", {"event": {"kind": np.array([])}}, 0)
    assert decided.rule.shape == (0,) and decided.counts() == {}
    assert lowprice["refund"].deadline_after("refund_only_shipped", {}, 0).shape == (0,)


def test_a_decision_no_row_field_decides_is_marked_uniform(lowprice) -> None:
    book = lowprice["refund"]
    # Every row is a shipped refund-only claim: the first rule decides all, whatever the price.
    scope = {"event": {"kind": "refund_only", "amount": np.array([5.0, 150.0, 80.0])},
             "order": {"shipped": True}}
    decided = book.decide("refund_requested", scope, 3)
    assert decided.uniform == book.rule_ids.index("refund_only_shipped")
    assert ids(decided) == ["refund_only_shipped"] * 3
    assert decided.fired("refund_only_shipped").tolist() == [True] * 3
    # The protection line splits rows by price: not uniform.
    scope = {"order": {"refund_amount": np.array([5.0, 150.0, 80.0]),
                       "refund_status": "awaiting_merchant"}}
    decided = book.decide("platform_intervened", scope, 3)
    assert decided.uniform is None
    assert ids(decided) == ["intervention_grants_small_orders", "intervention_reviews_large_orders",
                            "intervention_grants_small_orders"]
    # Nothing fires anywhere: uniformly no rule.
    decided = book.decide("refund_requested", {"event": {"kind": "exchange"}}, 2)
    assert decided.uniform == NO_RULE and decided.rule.tolist() == [NO_RULE] * 2


def test_reads_lists_the_fields_an_event_type_can_see(lowprice) -> None:
    refund = lowprice["refund"]
    assert refund.reads("platform_intervened") == {"order.refund_amount", "order.refund_status"}
    assert "order.evidence_valid" not in refund.reads("refund_requested")
    assert refund.reads("no_such_event") == frozenset()
    # Effect arguments count too: the score reads the price and the quality.
    assert {"event.price", "event.quality"} <= lowprice["ranking"].reads("listing_updated")


def test_a_literal_argument_stays_one_value(lowprice) -> None:
    scope = {"order": {"refund_amount": np.array([5.0, 80.0]), "refund_status": "rejected"}}
    decided = lowprice["refund"].decide("platform_intervened", scope, 2)
    (grant,) = decided.effects("intervention_grants_small_orders")
    assert grant.args["recall_fee"].tolist() == [0.17, 0.17]
    assert grant.args["recall_fee"].strides == (0,)  # a parameter: no per-row copy
