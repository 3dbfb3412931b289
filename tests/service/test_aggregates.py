"""Pure aggregates: concentration indices, distributions, snapshots and stream criteria."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.aggregates import (
    COHORTS,
    CRITERION_MEASURES,
    MerchantRow,
    SetSnapshot,
    blocked_counts,
    burden_ratios,
    cohort_label,
    distribution,
    evaluate_criteria,
    exposure_concentration,
    gini,
    hhi,
    load_stream_criteria,
    merchant_counts,
    ratio_distributions,
    snapshot_from_store,
)
from service.state import SQLiteStateStore

ROOT = Path(__file__).resolve().parents[2]

amounts = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_subnormal=False),
                   min_size=1, max_size=40).filter(lambda xs: sum(xs) > 1e-3)


# -- Gini -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 4, 10, 97])
def test_gini_of_equal_shares_is_zero(n):
    assert gini([7.5] * n) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 10, 97])
def test_gini_of_one_takes_all_is_n_minus_one_over_n(n):
    values = [0.0] * (n - 1) + [1234.0]
    assert gini(values) == pytest.approx((n - 1) / n)
    # The order of the listings does not matter.
    assert gini(list(reversed(values))) == pytest.approx((n - 1) / n)


def test_gini_of_a_known_case():
    # Pairwise |xi - xj| over (1, 2, 3, 4): 2 * (1+2+3+1+2+1) = 20; 2 n^2 mean = 2*16*2.5 = 80.
    assert gini([3, 1, 4, 2]) == pytest.approx(0.25)


@given(amounts)
def test_gini_matches_the_pairwise_definition(xs):
    n, mean = len(xs), sum(xs) / len(xs)
    pairwise = sum(abs(a - b) for a, b in itertools.product(xs, xs)) / (2 * n * n * mean)
    assert gini(xs) == pytest.approx(pairwise, abs=1e-9)
    assert 0.0 <= gini(xs) <= (n - 1) / n + 1e-12


@given(amounts, st.floats(min_value=0.001, max_value=1000))
def test_gini_and_hhi_do_not_depend_on_the_unit(xs, k):
    assert gini([k * x for x in xs]) == pytest.approx(gini(xs), abs=1e-9)
    assert hhi([k * x for x in xs]) == pytest.approx(hhi(xs), rel=1e-9)


# -- HHI --------------------------------------------------------------------------------------

def test_hhi_of_a_monopoly_is_ten_thousand():
    assert hhi([500.0]) == pytest.approx(10_000)
    assert hhi([0.0, 0.0, 42.0, 0.0]) == pytest.approx(10_000)


def test_hhi_of_four_equal_sellers_is_2500():
    assert hhi([25, 25, 25, 25]) == pytest.approx(2_500)
    assert hhi([1e6] * 4) == pytest.approx(2_500)


def test_hhi_of_a_known_case():
    # Shares 50 %, 30 %, 20 %: 2500 + 900 + 400.
    assert hhi([50, 30, 20]) == pytest.approx(3_800)


@given(amounts)
def test_hhi_lies_between_equal_shares_and_monopoly(xs):
    assert 10_000 / len(xs) - 1e-6 <= hhi(xs) <= 10_000 + 1e-6


@pytest.mark.parametrize("bad", [[], [0, 0], [1, -1], [float("nan"), 1], [float("inf")]])
def test_concentration_is_undefined_without_positive_finite_values(bad):
    with pytest.raises(ValueError):
        gini(bad)
    with pytest.raises(ValueError):
        hhi(bad)


# -- distributions ----------------------------------------------------------------------------

def test_distribution_is_cumulative_and_inclusive():
    d = distribution([0.005, 0.01, 0.02, 0.5, 3.0], [0.01, 0.1, 1.0])
    assert d.buckets == ((0.01, 2), (0.1, 3), (1.0, 4), (math.inf, 5))
    assert d.count == 5
    assert d.sum == pytest.approx(3.535)


def test_distribution_of_nothing():
    d = distribution([], [1, 2])
    assert d.buckets == ((1.0, 0), (2.0, 0), (math.inf, 0)) and d.count == 0 and d.sum == 0


# -- snapshot ---------------------------------------------------------------------------------

def _store() -> SQLiteStateStore:
    store = SQLiteStateStore()
    data = [
        # id, tier, gmv, burden, stats, blocked until
        ("m1", "small", 1000.0, {"merchant.refund": 50.0, "merchant.commission": 10.0,
                                 "merchant.fees": 5.0, "merchant.ads": 35.0,
                                 "merchant.below_cost": 11.0, "platform.refund": 7.0},
         {"forced_price_changes": 2, "below_cost_price_changes": 1, "appeals_accepted": 8,
          "appeals_refused_quota": 1, "appeals_refused_blocked": 1}, 2000.0),
        ("m2", "small", 3000.0, {"merchant.refund": 30.0, "merchant.commission": 30.0},
         {"forced_price_changes": 2, "appeals_accepted": 10}, 500.0),
        ("m3", "large", 6000.0, {"merchant.ads": 600.0}, {}, 0.0),
        ("m4", None, 0.0, {"merchant.refund": 5.0}, {}, 0.0),  # never registered, no GMV
        ("m5", "tiny", 100.0, {}, {}, 0.0),  # not a known tier
    ]
    for mid, tier, gmv, burden, stats, until in data:
        m = store.merchant(mid)
        m.update(size_tier=tier, gmv=gmv, _burden=dict(burden), _stats=dict(stats),
                 appeal_blocked_until=until)
        store.touch("merchant", m)
    listings = [
        ("m1", "l1", "sofa", 900), ("m2", "l2", "sofa", 100),      # 90/10
        ("m1", "l3", "noodles", 10), ("m3", "l4", "noodles", 10),  # equal
        ("m3", "l5", "noodles", 10), ("m2", "l6", "noodles", 10),
        ("m3", "l7", "lamp", 5000),                                # a group of one
        ("m2", "l8", "millet", 0), ("m3", "l9", "millet", 0),      # no impressions yet
        ("m1", "l10", None, 70),                                   # no group yet
    ]
    for mid, lid, group, impressions in listings:
        listing = store.listing(mid, lid, create=True)
        listing.update(product_group=group, impressions=impressions)
        store.touch("listing", listing)
    store.flush()
    return store


def test_snapshot_keeps_no_ids_and_is_a_copy():
    store = _store()
    snap = snapshot_from_store(store, watermark=1000.0)
    assert len(snap.merchants) == 5
    assert not any(hasattr(m, "merchant_id") for m in snap.merchants)
    assert sorted(snap.exposure) == ["lamp", "millet", "noodles", "sofa"]
    assert sorted(snap.exposure["sofa"]) == [100.0, 900.0]
    # Changing the store afterwards does not change the snapshot.
    store.merchant("m1")["_burden"]["merchant.refund"] = 1e9
    store.merchant("m1")["gmv"] = 1.0
    m1 = next(m for m in snap.merchants if m.gmv == 1000.0)
    assert m1.burden["merchant.refund"] == 50.0


def test_snapshot_after_reopening_the_store(tmp_path):
    path = tmp_path / "state.db"
    store = SQLiteStateStore(path)
    m = store.merchant("m1")
    m.update(size_tier="medium", gmv=200.0, _burden={"merchant.refund": 10.0})
    store.touch("merchant", m)
    store.flush()
    store.close()
    again = SQLiteStateStore(path)
    snap = snapshot_from_store(again, 0.0)
    assert snap.merchants == (MerchantRow("medium", 200.0, {"merchant.refund": 10.0}, {}, 0.0),)
    again.close()


def test_cohorts_are_bounded():
    assert [cohort_label(t) for t in ("small", "medium", "large", "unknown")] == list(COHORTS)
    for other in (None, "tiny", "m1", 3, "SMALL"):
        assert cohort_label(other) == "unknown"
    snap = snapshot_from_store(_store(), 0.0)
    assert merchant_counts(snap) == {"small": 2, "large": 1, "unknown": 2}


def test_burden_ratios_by_cohort_and_category():
    snap = snapshot_from_store(_store(), 0.0)
    r = burden_ratios(snap)
    assert sorted(r[("small", "refund")]) == pytest.approx([0.01, 0.05])
    assert sorted(r[("small", "commission_fees")]) == pytest.approx([0.01, 0.015])
    assert sorted(r[("small", "ads")]) == pytest.approx([0.0, 0.035])
    # total: refund + commission + fees + ads, not below_cost (a price gap, not money paid).
    assert sorted(r[("small", "total")]) == pytest.approx([0.02, 0.1])
    assert r[("large", "ads")] == pytest.approx([0.1])
    # m4 has no GMV: no ratio; m5 (unknown tier) has GMV and no burden.
    assert r[("unknown", "total")] == [0.0]
    d = ratio_distributions(snap)[("small", "total")]
    assert d.count == 2 and d.sum == pytest.approx(0.12)
    assert dict(d.buckets)[0.03] == 1 and dict(d.buckets)[0.1] == 2


def test_blocked_from_appealing_depends_on_the_watermark():
    store = _store()
    assert blocked_counts(snapshot_from_store(store, 400.0)) == \
        {"small": 2, "large": 0, "unknown": 0}
    assert blocked_counts(snapshot_from_store(store, 1000.0)) == \
        {"small": 1, "large": 0, "unknown": 0}
    assert blocked_counts(snapshot_from_store(store, 2000.0)) == \
        {"small": 0, "large": 0, "unknown": 0}
    # Before any event (watermark -inf) only real blocks count, not the 0.0 of "never blocked".
    assert blocked_counts(snapshot_from_store(store, float("-inf")))["large"] == 0


def test_exposure_concentration_by_group():
    snap = snapshot_from_store(_store(), 0.0)
    groups = sorted(exposure_concentration(snap), key=lambda g: g.hhi)
    # noodles (4 equal), sofa (90/10); the one-listing lamp group and the group without
    # impressions are left out.
    assert [g.listings for g in groups] == [4, 2]
    assert groups[0].hhi == pytest.approx(2_500) and groups[0].gini == pytest.approx(0.0)
    assert groups[1].hhi == pytest.approx(90**2 + 10**2)
    assert groups[1].gini == pytest.approx(0.4)  # |900-100| * 2 / (2 * 4 * 500)


# -- criteria ---------------------------------------------------------------------------------

def test_stream_criteria_table():
    criteria = load_stream_criteria()
    by_id = {c.id: c for c in criteria}
    assert list(by_id) == list(CRITERION_MEASURES)
    assert by_id["refund_burden_over_margin"].threshold == 0.03
    assert by_id["take_rate"].threshold == 0.05
    assert by_id["below_cost_share"].threshold == 0
    assert by_id["exposure_hhi"].threshold == 1800
    assert by_id["appeal_refusal_share"].threshold == 0.05
    for c in criteria:
        assert c.direction == "above"
        assert "Art." in c.standard or "Law" in c.standard, c.id
        assert c.threshold_source and c.description and c.measure


def test_stream_criteria_values():
    snap = snapshot_from_store(_store(), 0.0)
    results = {r.criterion.id: r for r in evaluate_criteria(snap, load_stream_criteria())}
    # Mean refund / GMV over merchants with GMV: (0.05 + 0.01 + 0 + 0) / 4.
    assert results["refund_burden_over_margin"].value == pytest.approx(0.015)
    assert not results["refund_burden_over_margin"].outside
    # (100 + 60 + 600 + 0) / (1000 + 3000 + 6000 + 100); m4's burden has no GMV to go with.
    assert results["take_rate"].value == pytest.approx(760 / 10_100)
    assert results["take_rate"].outside
    assert results["below_cost_share"].value == pytest.approx(0.25)
    assert results["below_cost_share"].outside
    assert results["exposure_hhi"].value == pytest.approx(8_200)
    assert results["exposure_hhi"].outside
    assert results["appeal_refusal_share"].value == pytest.approx(2 / 20)
    assert results["appeal_refusal_share"].outside


def test_criteria_with_nothing_to_measure_are_none_and_within_bounds():
    empty = SetSnapshot(watermark=0.0)
    for r in evaluate_criteria(empty, load_stream_criteria()):
        assert r.value is None and not r.outside


def test_below_cost_share_zero_is_within_bounds():
    snap = SetSnapshot(0.0, (MerchantRow("small", 10.0, {}, {"forced_price_changes": 3}, 0.0),))
    (r,) = [r for r in evaluate_criteria(snap, load_stream_criteria())
            if r.criterion.id == "below_cost_share"]
    assert r.value == 0 and not r.outside


def test_the_criteria_file_is_checked(tmp_path):
    good = (ROOT / "rules" / "criteria" / "stream.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.replace("id: take_rate", "id: take_rates"))
    with pytest.raises(ValueError, match="no measure for 'take_rates'"):
        load_stream_criteria(bad)
    bad.write_text(good.replace("    direction: above\n", "", 1))
    with pytest.raises(ValueError, match="exactly the keys"):
        load_stream_criteria(bad)
    bad.write_text("criteria: 3\n")
    with pytest.raises(ValueError, match="criteria"):
        load_stream_criteria(bad)
