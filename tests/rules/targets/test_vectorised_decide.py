"""How `VectorisedRulebook.decide` builds a decision: the rows' rule array from per-rule sums
kept in bytes, and effect arguments that no field decides evaluated once and then kept.

Each is checked against the plain reading it replaces: the first rule whose condition is
known-True on the row, and the argument evaluated afresh on every call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_rulebook_text, load_set
from rules.targets.vectorised import (
    NO_RULE,
    _code_dtype,
    _rule_rows,
    compile_rulebook,
    compile_set,
)

BOOKS = Path(__file__).resolve().parents[3] / "rules" / "books"


@pytest.fixture(scope="module")
def lowprice():
    return compile_set(load_set(BOOKS / "lowprice-2024"))


def _first_true(book, event_type: str, scope, n: int) -> np.ndarray:
    """Each row's rule read rule by rule: the first known-True condition, or NO_RULE."""
    out = np.full(n, NO_RULE, dtype=np.int32)
    for rule_id in reversed(book.rules_for(event_type)):
        holds = book.condition(rule_id, scope, n).is_true()
        out[holds] = book.rule_ids.index(rule_id)
    return out


def _ladder(rules: int) -> str:
    """A rulebook of `rules` rules on one event whose conditions overlap: rule k holds from
    amount `rules - k` on (unless the quantity is k % 3), so rows of every amount are decided
    by rules all along the ladder, the last ones included."""
    lines = [
        "rulebook:",
        "  platform: test",
        "  family: commission",
        '  version: "1"',
        "  published: 2024-07-01",
        "  effective: 2024-07-08",
        "  description: A ladder of amount thresholds.",
        "rules:",
    ]
    for k in range(rules):
        lines += [
            f"  - id: step_{k:03d}",
            "    description: A threshold.",
            "    on: [order_placed]",
            f"    when: event.amount >= {rules - k} and event.quantity != {k % 3}",
            "    then:",
            "      - effect: charge_fee",
            "        kind: commission",
            f"        amount: event.amount * {k + 1}",
            '    source: "test"',
        ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("rules", [3, 126, 127, 128, 140])
def test_the_rule_array_is_the_first_rule_that_holds_however_many_rules(rules) -> None:
    book = compile_rulebook(load_rulebook_text(_ladder(rules), "commission.yaml"))
    assert book._code_dtype == (np.uint8 if rules <= 127 else np.int32)
    rng = np.random.default_rng(rules)
    for n in (1, 5, 257, 4000):
        amount = np.floor(rng.uniform(-2.0, rules + 2.0, n))
        amount[rng.random(n) < 0.1] = np.nan  # unknown: no rule fires there
        quantity = np.floor(rng.uniform(0.0, 3.0, n)).astype(np.float32)
        scope = {"event": {"amount": amount, "quantity": quantity}}
        decided = book.decide("order_placed", scope, n)
        want = _first_true(book, "order_placed", scope, n)
        assert decided.rule.dtype == np.int32
        assert decided.rule.tolist() == want.tolist()
        if decided.uniform is not None:
            assert (want == decided.uniform).all()


def test_rule_rows_read_a_byte_sum_of_zero_as_no_rule() -> None:
    code = np.array([0, 1, 2, 127, 128, 0], dtype=np.uint8)
    rows = _rule_rows(code)
    assert rows.dtype == np.int32
    assert rows.tolist() == [NO_RULE, 0, 1, 126, 127, NO_RULE]
    wide = np.array([0, 1, 300], dtype=np.int32)
    assert _rule_rows(wide).tolist() == [NO_RULE, 0, 299]
    assert _code_dtype(127) == np.uint8 and _code_dtype(128) == np.int32


def test_a_flag_field_that_decides_is_neither_changed_nor_handed_out(lowprice) -> None:
    book = lowprice["auto_follow"]
    pending = np.array([True, False, True, True, False])
    before = pending.copy()
    scope = {"event": {"price": np.array([5.0, 5.0, 9.0, 5.0, 5.0]),
                       "unit_cost": np.array([8.0, 8.0, 8.0, 8.0, 8.0])},
             "listing": {"prompt_pending": pending}}
    decided = book.decide("listing_updated", scope, 5)
    below, made = (book.rule_ids.index(r) for r in ("follow_below_cost", "follow_made"))
    assert decided.rule.tolist() == [below, NO_RULE, made, below, NO_RULE]
    assert (pending == before).all()
    assert not np.shares_memory(decided.rule, pending)
    # The second decision over the same flags is a rule array of its own.
    again = book.decide("listing_updated", scope, 5)
    assert not np.shares_memory(again.rule, decided.rule)
    decided.rule[:] = NO_RULE
    assert again.rule.tolist() == [below, NO_RULE, made, below, NO_RULE]


def test_an_argument_no_field_decides_is_the_same_value_every_call(lowprice) -> None:
    book = lowprice["ranking"]
    (compiled,) = [c for c in book._by_type["listing_updated"]
                   if c.rule.id == "nine_nine_channel"]
    admit = compiled.then[0]
    assert admit.call.name == "admit_to_channel" and "impressions" in admit.expressions
    for n in (3, 1, 2000, 3):
        scope = {"event": {"price": np.full(n, 5.0), "quality": np.full(n, 0.5)},
                 "listing": {"promo_signup_price": np.full(n, 20.0)}}
        decided = book.decide("listing_updated", scope, n)
        (effect, _score) = decided.effects("nine_nine_channel")
        impressions = effect.args["impressions"]
        assert impressions.tolist() == [1_000_000.0] * n
        assert impressions.dtype == np.float64
        assert effect.known["impressions"].tolist() == [True] * n
        for table in (effect.args, effect.known):
            assert table["impressions"].strides == (0,)
            assert not table["impressions"].flags.writeable
    assert "impressions" not in {name for name, *_ in admit._plan.evaluate}  # now a literal


def test_an_argument_that_fails_to_evaluate_fails_on_every_call(lowprice) -> None:
    book = lowprice["ranking"]
    (compiled,) = [c for c in book._by_type["listing_updated"]
                   if c.rule.id == "nine_nine_channel"]
    from rules.targets.vectorised import _CompiledEffect

    admit = _CompiledEffect(compiled.then[0].call, frozenset())

    def broken(columns):
        raise ArithmeticError("no value")

    admit._plan.evaluate = tuple((name, broken, kind, fresh)
                                 for name, _, kind, fresh in admit._plan.evaluate)
    from rules.expression.numpy_target import Columns

    for _ in range(2):
        with pytest.raises(ArithmeticError):
            admit.evaluate(Columns({}, 4))


# -- values a decision cannot tell apart ---------------------------------------------------------
STATUSES = ("requested", "awaiting_merchant", "rejected", "granted", "")


@pytest.mark.parametrize("book_set", ["lowprice-2024", "reformed-2025"])
def test_values_said_alike_decide_alike(book_set) -> None:
    """`alike` against deciding both: whenever it says two statuses are alike, the
    decisions and every effect argument agree on every row."""
    books = compile_set(load_set(BOOKS / book_set))
    book = books["refund"]
    rng = np.random.default_rng(5)
    n = 64
    amount = np.floor(rng.uniform(50.0, 150.0, n))
    said = 0
    for event_type in book.event_types:
        for a in STATUSES:
            for b in STATUSES:
                if not book.alike(event_type, "order.refund_status", a, b):
                    continue
                said += a != b

                def scope(status: str) -> dict[str, dict[str, object]]:
                    return {"order": {"refund_status": status, "refund_amount": amount,
                                      "refund_kind": "refund_only", "shipped": True},
                            "event": {"kind": "refund_only", "decision": "accept",
                                      "time": 0.0}}

                first = book.decide(event_type, scope(a), n)
                second = book.decide(event_type, scope(b), n)
                assert first.rule.tolist() == second.rule.tolist()
                for rule_id in first._effects:
                    for x, y in zip(first.effects(rule_id), second.effects(rule_id),
                                    strict=True):
                        for name in x.args:
                            assert x.args[name].tolist() == y.args[name].tolist()
                            assert x.known[name].tolist() == y.known[name].tolist()
    assert said  # the claim events' statuses are told apart by membership only


def test_values_are_not_alike_when_the_field_is_read_any_other_way() -> None:
    text = """\
rulebook:
  platform: test
  family: refund
  version: "1"
  published: 2024-07-01
  effective: 2024-07-08
  description: A status tested against a list, and a kind handed on as it is.
rules:
  - id: listed
    description: A listed status.
    on: [platform_intervened]
    when: order.refund_status in ["requested", "rejected"] and order.refund_amount > 5
    then:
      - effect: grant_refund
        decided_by: platform
        payer: merchant
        with_return: order.refund_kind == "return_and_refund"
    source: "test"
"""
    book = compile_rulebook(load_rulebook_text(text, "refund.yaml"))
    et = "platform_intervened"
    assert book.alike(et, "order.refund_status", "requested", "rejected")
    assert not book.alike(et, "order.refund_status", "requested", "granted")
    assert book.alike(et, "order.refund_kind", "refund_only", "other")  # both unequal
    assert not book.alike(et, "order.refund_kind", "refund_only", "return_and_refund")
    assert not book.alike(et, "order.refund_amount", 1.0, 2.0)  # compared by size
    assert not book.alike(et, "order.refund_status", "requested", None)
    assert not book.alike(et, "order.refund_status", "requested", 1)
    assert book.alike(et, "order.shipped", True, False)  # never read here
    assert book.alike("no_such_event", "order.refund_status", "requested", "granted")


# -- the floating-point error guard --------------------------------------------------------------
GUARDED = """\
rulebook:
  platform: test
  family: commission
  version: "1"
  published: 2024-07-01
  effective: 2024-07-08
  description: Comparisons only on one event, arithmetic that meets every error on another.
rules:
  - id: compare_only
    description: Comparisons, membership and logic on numbers with gaps and infinities.
    on: [order_placed]
    when: >-
      (event.amount > 5 or not event.quantity <= 1) and event.amount != 7
      and event.quantity in [1, 2, 3] and (-event.amount if event.amount > 9 else 1) < 0
    then:
      - effect: charge_fee
        kind: commission
        amount: -event.amount
    source: "test"
  - id: arithmetic
    description: Division by zero, infinity less infinity, overflow.
    on: [ad_click_charged]
    when: event.clicks / event.clicks > 0 or event.clicks * 1e308 * 10 > 0
    then:
      - effect: charge_fee
        kind: ad_click
        amount: event.clicks - event.clicks
    source: "test"
"""


def _awkward(n: int) -> np.ndarray:
    values = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, 2.0, 7.0, 10.0, -3.0, 1e308])
    return np.resize(values, n)


def test_decisions_without_arithmetic_need_no_guard_and_raise_nothing() -> None:
    book = compile_rulebook(load_rulebook_text(GUARDED, "commission.yaml"))
    assert book._guard_for("order_placed") is not np.errstate
    assert book._guard_for("ad_click_charged") is np.errstate
    n = 40
    scope = {"event": {"amount": _awkward(n), "quantity": np.resize(_awkward(7), n),
                       "clicks": _awkward(n)}}
    with np.errstate(all="ignore"):
        expected = {et: book.decide(et, scope, n) for et in ("order_placed", "ad_click_charged")}
    # A caller that turns every floating-point error into an exception sees none: the
    # comparisons never set one, and the arithmetic is still guarded.
    with np.errstate(all="raise"):
        for event_type, want in expected.items():
            got = book.decide(event_type, scope, n)
            assert got.rule.tolist() == want.rule.tolist()
            for rule_id in want._effects:
                for x, y in zip(want.effects(rule_id), got.effects(rule_id), strict=True):
                    assert np.array_equal(x.args["amount"], y.args["amount"], equal_nan=True)
                    assert x.known["amount"].tolist() == y.known["amount"].tolist()
    assert set(expected["order_placed"].rule.tolist()) == {NO_RULE, 0}


@pytest.mark.parametrize("book_set", ["lowprice-2024", "reformed-2025"])
def test_a_deadline_that_reads_the_field_counts(book_set) -> None:
    """A field read in a rule's deadline (its `when` here: the request rules of both bundled
    sets grant at the deadline only while the claim awaits the merchant, and read the
    status nowhere else) tells the values apart as the rule's own condition would."""
    book = compile_set(load_set(BOOKS / book_set))["refund"]
    assert not book.alike("refund_requested", "order.refund_status", "awaiting_merchant",
                          "rejected")
    assert book.alike("refund_requested", "order.refund_status", "rejected", "granted")
