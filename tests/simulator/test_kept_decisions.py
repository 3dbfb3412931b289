"""Decisions kept from day to day (`simulator.model._KeptDecisions`) against deciding afresh."""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set_from_texts
from simulator.model import Model, _Changes, _KeptDecisions
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
        model._keep_from = 0  # (kept at the tiny scenario's size too)
        model._compiled_charges = False  # (the orders' decisions: the numpy path's)

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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_kept_decision_serves_every_block(dtype: type, monkeypatch) -> None:
    # Blocks of a few merchants: each event shape's kept decisions are brought up to date
    # once a day for every block (one decision over the merchants whose fields changed), and
    # each block reads its own rows of them, with the bits of deciding every block afresh.
    import simulator.model as model_module

    monkeypatch.setattr(model_module, "_BLOCK", 7)
    patched: list[str] = []
    patch = _KeptDecisions._patch

    def counting(book, event_type, kept, rows, scope):
        patched.append(event_type)
        return patch(book, event_type, kept, rows, scope)

    monkeypatch.setattr(_KeptDecisions, "_patch", staticmethod(counting))
    rulebook_set = _set(17.5)
    days = 60
    kept = _run(rulebook_set, days, True, dtype)
    shapes = {"order_placed": 1, "platform_intervened": 2}  # two claim statuses
    assert set(patched) == set(shapes)
    for event_type, count in shapes.items():
        assert days // 2 < patched.count(event_type) <= count * days
    assert_identical(kept, _run(rulebook_set, days, False, dtype))


def test_what_changed_is_found_once_a_day_and_kept_until_every_reader_caught_up() -> None:
    s = {"alive": np.ones(6, dtype=bool), "price": np.arange(6, dtype=np.float32)}
    changes = _Changes(["price"])
    daily, rarely = _KeptDecisions(["price"]), _KeptDecisions(["price"])
    for kept in (daily, rarely):
        kept.changes = changes
    changes.users = weakref.WeakSet([daily, rarely])
    changes.refresh(s, 1)
    daily.day = rarely.day = 1
    s["price"][2] += 1
    changes.refresh(s, 2)
    assert changes.since(1).tolist() == [2]
    daily.day = 2
    s["price"][[4, 2]] += 1
    changes.refresh(s, 3)
    s["price"][5] += 1
    changes.refresh(s, 3)  # compared once a day: today's later change waits for tomorrow
    assert changes.since(2).tolist() == [2, 4]
    assert changes.since(1).tolist() == [2, 4]  # the days it missed, each merchant once
    daily.day = rarely.day = 3
    changes.refresh(s, 4)
    assert changes.since(3).tolist() == [5]
    assert [day for day, _ in changes.history] == [4]  # every reader caught up to day 3
    daily.day = 4
    for day in range(5, 5 + 40):  # `rarely` does not ask for 40 days: too long to keep
        s["price"][day % 6] += 1
        changes.refresh(s, day)
        daily.day = day
    assert changes.since(3) is None and changes.since(41).tolist() == [42 % 6, 43 % 6, 44 % 6]


def test_kept_decisions_on_the_same_fields_share_what_changed() -> None:
    model = Model(_set(17.5), load_scenario(TINY), [np.random.SeedSequence(1)])
    model._keep_from = 0  # (kept at the tiny scenario's size too)
    model._compiled_charges = False  # (the numpy path decides the orders)
    for day in range(5):
        model.step(day)
    # The commission's orders and the intervention (one decision for claims awaiting the
    # merchant and rejected ones, which its rules cannot tell apart).
    kept = [k for k in model._kept.values() if k is not None]
    assert len(kept) == 2 and {tuple(k.keys) for k in kept} == {("price",)}
    assert len(model._changes) == 1 and len(model._changes[("price",)].users) == 2
    assert all(k.changes is model._changes[("price",)] for k in kept)


def test_order_decisions_are_kept_from_a_models_size() -> None:
    # A small model decides every merchant's order afresh (cheaper than finding and patching
    # the changed ones); from `_keep_from` slots those decisions are kept. The claims'
    # decisions are kept at any size.
    small = Model(_set(17.5), load_scenario(TINY), [np.random.SeedSequence(1)])
    assert small.n < small._keep_from
    kept = Model(_set(17.5), load_scenario(TINY), [np.random.SeedSequence(1)])
    kept._keep_from = kept.n
    for model in (small, kept):
        model._compiled_charges = False  # (the numpy path decides the orders)
    for day in range(3):
        small.step(day)
        kept.step(day)
    assert {key[0] for key, k in small._kept.items() if k is not None} == {
        "platform_intervened"}
    assert {key[0] for key, k in kept._kept.items() if k is not None} == {
        "platform_intervened", "order_placed"}
