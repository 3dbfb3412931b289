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


def test_literal_arguments_stay_one_value_over_rows_of_every_count(lowprice) -> None:
    book = lowprice["refund"]
    for n in (2, 1500, 3, 0, 5000):  # a count above any seen before, and back below it
        scope = {"order": {"refund_amount": np.full(n, 5.0), "refund_status": "rejected"}}
        (grant,) = book.decide("platform_intervened", scope, n).effects(
            "intervention_grants_small_orders")
        for table in (grant.args, grant.known):
            for values in table.values():
                assert values.shape == (n,) and values.strides == (0,)
                assert not values.flags.writeable
        assert grant.args["recall_fee"].tolist() == [0.17] * n
        assert grant.args["payer"].tolist() == ["merchant"] * n
        assert grant.known["recall_fee"].tolist() == [True] * n


# -- decisions against a row-by-row reading of the same rules ------------------------------------
FEES = """\
rulebook:
  platform: test
  family: commission
  version: "1"
  published: 2024-07-01
  effective: 2024-07-08
  description: Rules that overlap, share sub-expressions and hand fields on as arguments.
parameters:
  rate:
    value: 5%
    unit: fraction
    source: "test"
rules:
  - id: large_multiple
    description: Large orders of several items.
    on: [order_placed]
    when: event.amount > 50 and event.quantity >= 2
    then:
      - effect: charge_fee
        kind: commission
        amount: event.amount * rate
    source: "test"
  - id: mid
    description: Middle orders; the same product as above, and the amount as it is.
    on: [order_placed]
    when: event.amount > 20 or event.quantity > 5
    then:
      - effect: charge_fee
        kind: commission
        amount: event.amount * rate
      - effect: charge_fee
        kind: service
        amount: event.amount
      - effect: charge_fee
        kind: penalty
        amount: -event.shipping_cost
    source: "test"
  - id: rest
    description: The rest of the known orders.
    on: [order_placed]
    when: event.quantity > 0
    then:
      - effect: charge_fee
        kind: service
        amount: event.shipping_cost + 1
    source: "test"
"""

ORDER_FIELDS = ("amount", "quantity", "shipping_cost")


@pytest.fixture(scope="module")
def fees():
    from rules.loader import load_rulebook_text

    return compile_rulebook(load_rulebook_text(FEES, "commission.yaml"))


def _order_columns(rng: np.random.Generator, n: int, form: str) -> dict[str, object]:
    """The order event's fields in one of the forms the simulator and tests give them."""
    event: dict[str, object] = {"time": 0.0}
    for name, high in zip(ORDER_FIELDS, (100.0, 8.0, 10.0), strict=True):
        values = np.floor(rng.uniform(0.0, high, n))
        if form == "gaps":
            values[rng.random(n) < 0.3] = np.nan
        elif form == "float32":
            values = values.astype(np.float32)
        elif form == "column":
            known = rng.random(n) < 0.7
            event[name] = Column(values, known)
            continue
        elif form == "scalar":
            event[name] = float(values[0])
            continue
        event[name] = values
    return event


def _row(event: dict[str, object], i: int) -> dict[str, object]:
    """Row i of the columns as the engine's per-event scope (None: unknown)."""
    out: dict[str, object] = {}
    for name, value in event.items():
        if isinstance(value, Column):
            out[name] = float(value.values[i]) if value.known[i] else None
        elif isinstance(value, np.ndarray):
            out[name] = None if np.isnan(value[i]) else float(value[i])
        else:
            out[name] = value
    return out


@pytest.mark.parametrize("form", ["plain", "gaps", "float32", "column", "scalar"])
def test_decisions_and_arguments_agree_with_the_rules_read_row_by_row(fees, form) -> None:
    from rules.expression import compile_python

    rng = np.random.default_rng(11)
    rules = [fees.rulebook.rule(rid) for rid in fees.rule_ids]
    for n in (1, 7, 300):
        event = _order_columns(rng, n, form)
        decided = fees.decide("order_placed", {"event": event}, n)
        for i in range(n):
            scope = {"event": _row(event, i)}
            expected = next((r.id for r in rules if compile_python(r.when.node)(scope)), None)
            assert decided.rule_id_at(i) == expected, (form, n, i, scope)
            if expected is None:
                continue
            rule = fees.rulebook.rule(expected)
            for call, effect in zip(rule.then, decided.effects(expected), strict=True):
                for name, expr in call.expressions.items():
                    want = compile_python(expr.node)(scope)
                    got = effect.args[name][i]
                    assert bool(effect.known[name][i]) == (want is not None)
                    assert (np.isnan(got) if want is None else got == want), (name, i)
        if decided.uniform is not None:
            assert (decided.rule == decided.uniform).all()
        else:
            assert len(set(decided.rule.tolist())) > 1


def test_number_arguments_are_never_views_of_the_scope_or_of_each_other(fees) -> None:
    amount, shipping = np.array([30.0, 60.0, 25.0]), np.array([4.0, 5.0, 6.0])
    event = {"amount": amount, "quantity": np.array([1.0, 1.0, 1.0]), "shipping_cost": shipping}
    decided = fees.decide("order_placed", {"event": event}, 3)
    assert decided.uniform == fees.rule_ids.index("mid")
    commission, service, penalty = decided.effects("mid")
    arrays = [commission.args["amount"], service.args["amount"], penalty.args["amount"]]
    for i, a in enumerate(arrays):
        assert not np.shares_memory(a, amount) and not np.shares_memory(a, shipping)
        assert not any(np.shares_memory(a, b) for b in arrays[i + 1:])
    amount[:] = 0.0  # the caller applies effects and changes the state behind the scope
    shipping[:] = 0.0
    assert commission.args["amount"].tolist() == pytest.approx([1.5, 3.0, 1.25])
    assert service.args["amount"].tolist() == [30.0, 60.0, 25.0]
    assert penalty.args["amount"].tolist() == [-4.0, -5.0, -6.0]


def test_rows_decided_alike_give_their_rule_array_on_demand(fees) -> None:
    event = {"amount": np.array([30.0, 60.0]), "quantity": 1.0, "shipping_cost": 1.0}
    decided = fees.decide("order_placed", {"event": event}, 2)
    mid = fees.rule_ids.index("mid")
    assert decided.uniform == mid and decided.n == 2
    assert decided.fired("mid").tolist() == [True, True]
    # A caller that patches rows in drops the uniform mark: the rows keep what they held.
    decided.uniform = None
    decided.rule[1] = NO_RULE
    assert decided.rule.tolist() == [mid, NO_RULE]
    assert decided.fired("mid").tolist() == [True, False]
    assert decided.counts() == {"mid": 1}
    # Nothing fires on rows that are all unknown.
    unknown = {"amount": np.full(3, np.nan), "quantity": np.full(3, np.nan),
               "shipping_cost": 1.0}
    decided = fees.decide("order_placed", {"event": unknown}, 3)
    assert decided.uniform == NO_RULE and decided.rule.tolist() == [NO_RULE] * 3


def test_deadline_helpers_hand_out_arrays_of_their_own(lowprice) -> None:
    book = lowprice["auto_follow"]
    after = book.deadline_after("prompt_to_follow", {}, 4)
    assert after.tolist() == [12 * HOUR] * 4 and after.flags.writeable
    after[0] = 0.0  # the caller's to change: the next call is not affected
    assert book.deadline_after("prompt_to_follow", {}, 2).tolist() == [12 * HOUR] * 2
    enrolled = np.array([True, False, True])
    scope = {"merchant": {"auto_follow_enrolled": enrolled},
             "listing": {"competitor_price": np.array([1.0, 1.0, np.nan]),
                         "price": np.array([2.0, 2.0, 2.0])}}
    when = book.deadline_when("dismissal_only_silences", scope, 3)
    assert when.tolist() == [True, False, False]
    when[:] = False
    assert enrolled.tolist() == [True, False, True]


FOLLOW = """\
rulebook:
  platform: test
  family: auto_follow
  version: "1"
  published: 2024-07-01
  effective: 2024-07-08
  description: A deadline whose condition is a flag field as it stands.
parameters:
  window:
    value: 12h
    unit: duration
    source: "test"
rules:
  - id: prompt
    description: Prompt, then follow while enrolled.
    on: [competitor_price_observed]
    when: merchant.auto_follow_enrolled
    then:
      - effect: prompt_price_change
        target: event.competitor_price
    deadline:
      after: window
      unless: [listing_updated]
      key: listing
      when: merchant.auto_follow_enrolled
      then:
        - effect: set_price
          price: event.competitor_price
    source: "test"
"""


def test_a_deadline_condition_that_is_a_flag_field_is_handed_out_as_a_copy() -> None:
    from rules.loader import load_rulebook_text

    book = compile_rulebook(load_rulebook_text(FOLLOW, "auto_follow.yaml"))
    enrolled = np.array([True, False, True])
    scope = {"merchant": {"auto_follow_enrolled": enrolled},
             "event": {"competitor_price": np.array([5.0, 6.0, 7.0])}}
    when = book.deadline_when("prompt", scope, 3)
    assert when.tolist() == [True, False, True] and not np.shares_memory(when, enrolled)
    when[:] = False
    assert enrolled.tolist() == [True, False, True]
    decided = book.decide("competitor_price_observed", scope, 3)
    assert decided.rule.tolist() == [0, NO_RULE, 0] and decided.uniform is None
    (prompt,) = decided.effects("prompt")
    (follow,) = book.deadline_effects("prompt", scope, 3)
    for effect, name in ((prompt, "target"), (follow, "price")):
        assert effect.args[name].tolist() == [5.0, 6.0, 7.0]
        assert not np.shares_memory(effect.args[name], scope["event"]["competitor_price"])


@pytest.mark.parametrize(("family", "event_type", "scope", "n"), [
    ("refund", "platform_intervened",
     {"order": {"refund_amount": np.array([100.0, 100.01, 99.0, 100.0, np.nan]),
                "refund_status": texts("awaiting_merchant", "requested", "rejected",
                                       "granted", "requested")}}, 5),
    ("ranking", "listing_updated",
     {"event": {"price": np.array([9.9, 10.0, 9.9, 9.0]), "quality": 4.0},
      "listing": {"promo_signup_price": np.array([15.0, 20.0, 13.0, np.nan])}}, 4),
])
def test_literal_effects_left_out_are_those_an_earlier_decision_holds(
        lowprice, family, event_type, scope, n) -> None:
    book = lowprice[family]
    full = book.decide(event_type, scope, n)
    lean = book.decide(event_type, scope, n, literal_effects=False)
    assert lean.rule.tolist() == full.rule.tolist() and lean.uniform == full.uniform
    assert lean.fired_rules == tuple(full._effects) == full.fired_rules
    left_out = [rid for rid in lean.fired_rules if rid not in lean._effects]
    # (the intervention's grant and review take literals; every ranking rule assigns a
    # score by the price)
    assert left_out == (list(lean.fired_rules) if family == "refund" else [])
    assert len(lean.fired_rules) >= 2
    for rid in lean.fired_rules:
        for ours, theirs in zip(lean.effects(rid), full.effects(rid), strict=True):
            assert ours.name == theirs.name and set(ours.args) == set(theirs.args)
            for name in ours.args:
                assert ours.args[name].tobytes() == theirs.args[name].tobytes()
                assert ours.known[name].tobytes() == theirs.known[name].tobytes()
            if rid in left_out:  # the same literals as any earlier decision's
                assert all(e.literal for e in book._compiled(rid).then)
