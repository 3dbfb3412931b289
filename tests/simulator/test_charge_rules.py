"""The commission's fees charged in one compiled pass (`simulator.charge_rules`) against the
numpy target's decisions they replace (`Model._demand`), bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.model import Model
from simulator.run import replication_seed
from simulator.scenario import load_scenario
from tests.simulator.model_runs import (
    BOOKS,
    FIXTURE_BOOKS,
    TINY,
    assert_same_bits,
    prepared_on_first_day,
    run_switched,
    with_rulebook,
)

MIXED = FIXTURE_BOOKS / "commission_mixed.yaml"


def _with_commission(text: str):
    return with_rulebook("lowprice-2024", "commission", text)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("commission", [BOOKS / "lowprice-2024" / "commission.yaml",
                                        BOOKS / "reformed-2025" / "commission.yaml", MIXED],
                         ids=lambda p: p.parent.name + "/" + p.name)
def test_compiled_charges_give_the_numpy_paths_bits(commission: Path, dtype: type) -> None:
    rulebook_set = _with_commission(commission.read_text())
    assert prepared_on_first_day(rulebook_set, "_charges") is not None
    compiled = run_switched(rulebook_set, 30, dtype, "_compiled_charges", True)
    assert_same_bits(compiled, run_switched(rulebook_set, 30, dtype, "_compiled_charges", False))


def test_the_mixed_rules_reach_every_kind_of_order() -> None:
    """Under the test rulebook (numpy path) some merchants pay the near-cost rule's service
    fee, some the quality rule's full commission and no fee (its penalty is unknown: a
    division by zero), so the comparison above covers each; no flow is unknown or
    infinite. (The click rules: `test_one_day_...`.)"""
    rulebook_set = _with_commission(MIXED.read_text())
    _state, flows = run_switched(rulebook_set, 30, np.float32, "_compiled_charges", False)
    seen = {"service": False, "full": False}
    for day in flows:
        ordered = day["orders"] > 0
        seen["service"] |= bool((ordered & (day["fees"] > 0)).any())
        seen["full"] |= bool((ordered & (day["fees"] == 0) & (day["commission"] > 0)).any())
    assert all(seen.values()), seen
    assert all(np.isfinite(day[k]).all() for day in flows for k in ("commission", "ads", "fees"))


@pytest.mark.parametrize(("old", "new", "why"), [
    ("when: event.clicks > 2 and event.time > 0", "when: event.listing_id == 'L'",
     "a text field"),
    ("when: listing.quality > 0.9 and event.quantity == 1", "when: order.shipped",
     "a flag"),
    ("when: true", "when: merchant.appeals_filed_month > 1", "an integer counter"),
    ("amount: 0.35", "amount: round(event.amount, 30)",
     "a rounding the numba target does not take"),
])
def test_rules_reading_other_fields_are_left_to_numpy(old: str, new: str, why: str) -> None:
    text = MIXED.read_text()
    assert old in text
    assert prepared_on_first_day(_with_commission(text.replace(old, new)), "_charges") is None, why


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_day_gives_the_numpy_fees_where_some_flows_hold_fees_already(dtype: type) -> None:
    """Crafted merchants (unknown and zero prices, costs above the price, low qualities,
    dead ones) with flows that hold numbers already: each fee is added to what is there, as
    the numpy path adds it, and nothing is written for the dead."""
    rulebook_set = _with_commission(MIXED.read_text())
    model = Model(rulebook_set, load_scenario(TINY), [replication_seed(1, 0)], dtype=dtype)
    model.step(0)
    s, n = model.s, model.n
    rng = np.random.default_rng(5)
    s["price"][:] = rng.choice([19.9, 25.0, 30.0, np.nan, 0.0], n)
    s["unit_cost"][:] = rng.choice([5.0, 20.0, 40.0, np.nan], n)
    s["quality"][:] = rng.choice([1.0, 0.95, 0.5, np.nan], n)
    s["alive"][:] &= rng.random(n) < 0.8
    clicks = model._scratch["ad_clicks"]
    clicks[:] = rng.choice([0.0, 1.0, 2.5, 7.0, np.nan], n)
    model._clicks_known = None  # (the numpy path must not take them for known)
    T = model.calendar.time(1)
    got = {}
    for compiled in (True, False):
        model._compiled_charges = compiled
        fl = model._new_flows()
        fl.orders[:] = rng.choice([0.0, 1.0, 3.0], n) if compiled else got[True][0]
        for k in ("commission", "ads", "fees"):
            getattr(fl, k)[:] = 0.0
        fl.commission[::7] = 1.25  # (fees already booked: added to, not overwritten)
        model._demand(slice(0, n), T, fl, clicks)
        got[compiled] = (fl.orders.copy(), fl.commission.copy(), fl.ads.copy(), fl.fees.copy())
    for a, b in zip(got[True], got[False], strict=True):
        assert a.tobytes() == b.tobytes()
    dead = ~s["alive"]
    _orders, commission, ads, fees = got[True]
    assert (ads[dead] == 0).all() and (fees[dead] == 0).all()
    assert (commission[dead] == np.where(np.arange(n) % 7 == 0, 1.25, 0.0)[dead]).all()
    assert (fees > 0).any()
    # The first order rule charges nothing, and shadows the near-cost rule's fees.
    low = s["alive"] & (s["quality"] == dtype(0.5))
    assert (fees[low] == 0).all()
    assert (low & (s["unit_cost"] + s["shipping"] > s["price"] * dtype(0.8))
            & (_orders > 0)).any()
    # The click rules: many clicks at the rulebook's rate, the others at 1.5 a click,
    # unknown clicks at neither (the first rule's condition and the second's amount unknown).
    live = s["alive"] & ~np.isnan(clicks)
    assert ads.tobytes() == np.where(live, np.where(clicks > 2, clicks * 2.17, clicks * 1.5),
                                     0.0).tobytes()
