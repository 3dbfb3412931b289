"""Decisions kept from day to day (`simulator.model._KeptDecisions`) against deciding afresh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set_from_texts
from simulator.model import Model, _KeptDecisions
from simulator.scenario import load_scenario
from tests.simulator.model_runs import Run, assert_identical, run_days

ROOT = Path(__file__).resolve().parents[2]
LOWPRICE = ROOT / "rules" / "books" / "lowprice-2024"
TINY = ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml"

#: A commission that depends on the order's amount: two rules, each with a per-row argument.
#: No price starts under the line; auto-follow cuts some below it, so the first rule starts
#: firing on a later day.
TIERED_COMMISSION = """
rulebook:
  platform: lowprice
  family: commission
  version: "test"
  published: 2024-07-01
  effective: 2024-07-01
  timezone: Asia/Shanghai
  description: Test rules; not a platform's.
parameters:
  line:
    value: 11
    unit: yuan
    source: "assumption: test value"
rules:
  - id: cheap_orders
    description: Orders under the line pay 5 % and a fixed yuan.
    on: [order_placed]
    when: event.amount < line
    then:
      - effect: charge_fee
        kind: commission
        amount: event.amount * 0.05 + 1
    source: "assumption: test rule"
  - id: other_orders
    description: Other orders pay 1 %.
    on: [order_placed]
    when: event.amount > 0
    then:
      - effect: charge_fee
        kind: commission
        amount: event.amount * 0.01
    source: "assumption: test rule"
  - id: clicks
    description: Every click costs 2 yuan.
    on: [ad_click_charged]
    when: true
    then:
      - effect: charge_fee
        kind: ad_click
        amount: event.clicks * 2
    source: "assumption: test rule"
"""


def _set(protection_line: float):
    files = {p.name: p.read_text() for p in LOWPRICE.glob("*.yaml")}
    refund = files["refund.yaml"]
    files["refund.yaml"] = refund.replace("value: 100\n", f"value: {protection_line}\n", 1)
    assert files["refund.yaml"] != refund
    files["commission.yaml"] = TIERED_COMMISSION
    return load_set_from_texts("kept", files)


def _run(rulebook_set, days: int, keep: bool, dtype) -> Run:
    sc = load_scenario(TINY).with_values({"auto_follow.enrolled_share": 0.8})

    def prepare(model: Model) -> None:
        model._keep_decisions = keep

    return run_days(rulebook_set, sc, days, dtype, seed=9, prepare=prepare)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kept_decisions_give_the_bits_of_deciding_afresh(dtype: type, monkeypatch) -> None:
    # The price protection line sits in the noodles' price range, the commission line under
    # every starting price: merchants cross both as prices fall, so kept decisions are
    # patched day after day, and decided afresh when a rule starts firing.
    seen = {"patched": 0, "rules_changed": 0, "decided_afresh": 0}
    patch = _KeptDecisions._patch

    def counting(book, event_type, kept, rows, scope):
        before = kept.rule[rows].copy()
        patched = patch(book, event_type, kept, rows, scope)
        seen["patched" if patched else "decided_afresh"] += 1
        if patched:
            seen["rules_changed"] += int((kept.rule[rows] != before).sum())
        return patched

    monkeypatch.setattr(_KeptDecisions, "_patch", staticmethod(counting))
    rulebook_set = _set(17.5)
    kept = _run(rulebook_set, 90, True, dtype)
    assert min(seen.values()) > 0, seen
    assert_identical(kept, _run(rulebook_set, 90, False, dtype))


def test_what_can_be_kept() -> None:
    fields = {"order.refund_amount": "price", "merchant.appeals_filed_month": "appeals"}
    literals = frozenset({"order.refund_status"})
    kept = _KeptDecisions.of(frozenset({"order.refund_amount", "order.refund_status",
                                        "merchant.size_tier"}), literals, fields)
    assert kept is not None and kept.keys == ["price"]
    # The event's time changes every day: nothing can be kept.
    assert _KeptDecisions.of(frozenset({"event.time", "order.refund_amount"}), literals,
                             fields) is None
