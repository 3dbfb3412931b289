"""The daily aggregates give what their plain numpy expressions give.

`simulator.aggregates.aggregate` takes every sum in one compiled pass
(`simulator.aggregation_kernels.day_sums`) and reads the fixed samples' percentiles, median
and Gini with compiled selection and sorting; `_numpy_aggregate` below is the same day written
with numpy masks, sums, row sums, counts, ``np.quantile``, ``np.median`` and ``np.sort``. The
figures from order statistics and counts must have numpy's bits; those from sums of fractions,
which the pass adds in another order, must agree to 1e-12. On populations with dead merchants,
padding slots, empty cohorts and both state dtypes, and on samples with ties, zeros of both
signs and NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set
from simulator.aggregates import (
    QUANTILES,
    ChunkSamples,
    DayFlows,
    Samples,
    _numpy_gini,
    _sorted_union,
    aggregate,
    aggregate_chunk,
    empty_series,
)
from simulator.model import ADDED_FLOWS, Model
from simulator.run import replication_seed
from simulator.scenario import TIERS, load_scenario

ROOT = Path(__file__).resolve().parents[2]


def _numpy_aggregate(out: dict[str, np.ndarray], state: dict[str, np.ndarray], flows: DayFlows,
                     n_groups: int, samples: Samples) -> None:
    """The sum-based series, percentiles, median margin and exposure Gini of day 0 of
    replication 0, in plain numpy."""
    alive = state["alive"]
    cohorts = [samples.label == c for c in range(len(TIERS))]
    n_c = np.array([np.count_nonzero(alive & c) for c in cohorts])

    def by(x: np.ndarray) -> np.ndarray:
        return np.array([np.sum(x[alive & c], dtype=np.float64) for c in cohorts])

    def flow(x: np.ndarray) -> np.ndarray:
        return np.array([np.sum(x[c], dtype=np.float64) for c in cohorts])

    def total(x: np.ndarray) -> float:
        return float(np.sum(x, dtype=np.float64))

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("nan")

    price, quality, margin = state["price"], state["quality"], state["margin"]
    n_alive = int(n_c.sum())
    revenue_c, refund_c, exposure_c, quality_c = (by(flows.revenue), by(flows.refund),
                                                  by(flows.exposure), by(quality))
    commission, ads, fees = total(flows.commission), total(flows.ads), total(flows.fees)
    gmv = total(flows.revenue)
    out["take_rate"][0, 0] = ratio(commission + ads + fees, gmv)
    out["refund_burden_ratio"][0, 0] = ratio(total(flows.refund), gmv)
    out["below_cost_sales_share"][0, 0] = ratio(total(flows.below_cost_units),
                                                total(flows.orders))
    exposure = flows.exposure.reshape(n_groups, -1)
    by_group = exposure.sum(axis=1)
    exposure_total = float(by_group.sum())
    if exposure_total > 0:
        squares = np.square(exposure).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            hhi_g = np.where(by_group > 0, squares / by_group ** 2, 0.0)
        out["exposure_hhi"][0, 0] = float((hhi_g * by_group).sum() / exposure_total)
    else:
        out["exposure_hhi"][0, 0] = float("nan")
    out["auto_follow_share"][0, 0] = ratio(int(np.count_nonzero(state["enrolled"] & alive)),
                                           n_alive)
    out["below_cost_listing_share"][0, 0] = ratio(
        int(np.count_nonzero(alive & (price < state["unit_cost"]))), n_alive)
    sum_q = float(quality_c.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        price_rel = by(price / state["price0"])
        out["price_index"][0, 0] = ratio(float(price_rel.sum()), n_alive)
        alive_c = np.where(n_c > 0, n_c, np.nan)
        out["price_mean"][0, 0, :] = by(price) / alive_c
        out["margin_mean"][0, 0, :] = by(margin) / alive_c
        out["quality_mean"][0, 0, :] = quality_c / alive_c
        out["refund_burden_ratio_by_cohort"][0, 0, :] = np.where(
            (n_c > 0) & (revenue_c > 0), refund_c / revenue_c, np.nan)
        exposure_share = exposure_c / exposure_total if exposure_total > 0 else np.nan
        quality_share = quality_c / sum_q if sum_q > 0 else np.nan
        out["exposure_per_quality_by_cohort"][0, 0, :] = np.where(
            n_c > 0, exposure_share / quality_share, np.nan)
        attempted, won = flow(flows.appeals_attempted), flow(flows.appeals_won)
        out["appeal_success_by_cohort"][0, 0, :] = np.where(attempted > 0, won / attempted,
                                                            np.nan)
    for c in range(len(TIERS)):
        idx = samples.by_cohort[c]
        idx = idx[alive[idx]]
        for name, arr in (("price_pct", price), ("margin_pct", margin),
                          ("quality_pct", quality)):
            out[name][0, 0, c, :] = (np.quantile(arr[idx].astype(np.float64), QUANTILES)
                                     if n_c[c] and idx.size else np.nan)
    pooled = samples.population[alive[samples.population]]
    out["median_margin"][0, 0] = (float(np.median(margin[pooled].astype(np.float64)))
                                  if pooled.size else np.nan)
    out["exposure_gini"][0, 0] = _numpy_gini(flows.exposure[pooled].astype(np.float64))


#: Figures of sums of fractions: within 1e-12 of numpy's.
_SUMMED = ("take_rate", "refund_burden_ratio", "exposure_hhi", "price_index", "price_mean",
           "margin_mean", "quality_mean", "refund_burden_ratio_by_cohort",
           "exposure_per_quality_by_cohort")
#: Figures of counts, whole numbers and order statistics: numpy's bits.
_EXACT = ("below_cost_sales_share", "auto_follow_share", "below_cost_listing_share",
          "appeal_success_by_cohort", "price_pct", "margin_pct", "quality_pct", "median_margin",
          "exposure_gini")


def _assert_same_day(got: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                     what: object = None) -> None:
    for name in _EXACT:
        assert got[name].tobytes() == expected[name].tobytes(), (what, name)
    for name in _SUMMED:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-15,
                                   equal_nan=True, err_msg=f"{what} {name}")


def _day(rng: np.random.Generator, groups: int, slots: int, dtype: type, empty_cohort: bool,
         all_dead: bool, sample: int = 4096) -> tuple[dict[str, np.ndarray], DayFlows, Samples]:
    n = groups * slots
    tier = rng.integers(0, len(TIERS), n).astype(np.int8)
    if empty_cohort:
        tier[tier == 1] = 2
    exists = rng.random(n) < 0.9  # padding slots
    alive = exists & (rng.random(n) < (0.0 if all_dead else 0.8))

    def spread() -> np.ndarray:
        return np.abs(rng.standard_normal(n)) * rng.random(n) ** 4 * 1e4 * exists

    state = {"alive": alive, "exists": exists, "tier": tier,
             "price": rng.uniform(1, 40, n).astype(dtype),
             "price0": rng.uniform(1, 40, n).astype(dtype),
             "unit_cost": rng.uniform(1, 40, n).astype(dtype),
             "quality": rng.uniform(0, 1, n).astype(dtype),
             "margin": rng.uniform(-0.5, 0.5, n).astype(dtype),
             "enrolled": rng.random(n) < 0.3}
    counts = {k: np.floor(rng.random(n) ** 8 * 4) * exists
              for k in ("orders", "below_cost_units", "appeals_attempted", "prompts",
                        "forced_follows")}
    counts["appeals_won"] = np.minimum(counts["appeals_attempted"],
                                       np.floor(rng.random(n) * 2))
    flows = DayFlows(exposure=spread() * alive, revenue=spread(), commission=spread(),
                     ads=spread(), fees=spread(), refund=spread(), **counts)
    return state, flows, Samples.of(tier, exists, sample)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("groups", "slots", "empty_cohort", "all_dead"), [
    (1, 1, False, False), (2, 7, False, False), (3, 129, True, False), (4, 50, False, True),
    (5, 4_000, False, False), (2, 150_001, False, False)])
def test_aggregate_gives_the_numpy_expressions(dtype: type, groups: int, slots: int,
                                               empty_cohort: bool, all_dead: bool) -> None:
    rng = np.random.default_rng(groups * slots)
    state, flows, samples = _day(rng, groups, slots, dtype, empty_cohort, all_dead)
    got, expected = empty_series(1, 1), empty_series(1, 1)
    aggregate(got, 0, 0, state, flows, groups, samples)
    _numpy_aggregate(expected, state, flows, groups, samples)
    _assert_same_day(got, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sample", [1, 2, 7, 129, 4096])
def test_sample_statistics_have_numpys_bits_on_ties_zeros_and_nan(dtype: type,
                                                                   sample: int) -> None:
    """Rounded prices (many ties), margins with zeros of both signs and a NaN, exposures
    with zeros, a negative one and -0.0: the compiled order statistics and Gini give numpy's
    bits, or hand the figure to numpy."""
    rng = np.random.default_rng(sample)
    for trial in range(6):
        state, flows, samples = _day(rng, 3, 700, dtype, trial == 1, trial == 2, sample)
        n = state["alive"].size
        state["price"] = np.round(state["price"]).astype(dtype)
        margin = state["margin"]
        margin[rng.random(n) < 0.4] = 0.0
        margin[rng.random(n) < 0.2] = -0.0
        if trial == 3:
            margin[rng.integers(0, n, 2)] = np.nan
        existing = np.flatnonzero(state["exists"])  # (padding slots hold no flows)
        if trial == 4:
            flows.exposure[rng.choice(existing, 3)] = -0.0
        if trial == 5:
            flows.exposure[rng.choice(existing, 3)] = -1.0
        got, expected = empty_series(1, 1), empty_series(1, 1)
        with np.errstate(invalid="ignore"):
            aggregate(got, 0, 0, state, flows, 3, samples)
            _numpy_aggregate(expected, state, flows, 3, samples)
        _assert_same_day(got, expected, trial)


def _chunk(days: list[tuple[dict[str, np.ndarray], DayFlows, Samples]]
           ) -> tuple[dict[str, np.ndarray], DayFlows, ChunkSamples]:
    """Replications' days as the arrays of one chunk (replication k's slots after k - 1's)."""
    state = {key: np.concatenate([d[0][key] for d in days]) for key in days[0][0]}
    flows = DayFlows(**{name: np.concatenate([getattr(d[1], name) for d in days])
                        for name in DayFlows.__dataclass_fields__})
    return state, flows, ChunkSamples.of([d[2] for d in days])


#: The cases of `test_replications_aggregated_together_have_each_ones_bits_alone`, in order.
_CASES = ("plain", "all dead", "no sales", "empty cohort", "overflowed", "numpy's",
          "a group unseen", "no merchants", "plain")


@pytest.mark.parametrize("sample", [3, 4096])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_replications_aggregated_together_have_each_ones_bits_alone(dtype: type,
                                                                    sample: int) -> None:
    """`aggregate_chunk` takes the sums and order statistics of all the replications of a
    chunk in one compiled call each, and computes the figures in arrays over them; each
    replication's row has the bits `aggregate` gives it alone, and the numpy expressions'
    figures, on days where the denominators are zero (all dead, no exposure nor sales, no
    merchant at all), a cohort is empty, a group has no exposure, the sums have overflowed
    (infinite revenue and fees), or the samples hold ties, zeros of both signs and a NaN
    (figures numpy computes), next to ordinary days; with samples of every merchant and of
    a few (the replications' samples then differ in size), and the flows asked zeroed."""
    rng = np.random.default_rng(31)
    days = []
    for case in _CASES:
        state, flows, samples = _day(rng, 3, 401, dtype, case == "empty cohort",
                                     case == "all dead", sample)
        existing = np.flatnonzero(state["exists"])
        if case == "no sales":
            for name in DayFlows.__dataclass_fields__:
                getattr(flows, name)[:] = 0.0
        if case == "overflowed":
            flows.revenue[existing[:2]] = np.inf
            flows.fees[existing[:1]] = np.inf
            flows.exposure[existing[3]] = np.inf
        if case == "numpy's":  # (the compiled order statistics and Gini hand these over)
            state["margin"][existing[::3]] = 0.0
            state["margin"][existing[1::3]] = -0.0
            for sampled in (samples.population, samples.by_cohort[0]):  # (live, sampled)
                state["margin"][sampled[state["alive"][sampled]][:1]] = np.nan
            state["price"] = np.round(state["price"]).astype(dtype)
            flows.exposure[existing[:3]] = -1.0
        if case == "a group unseen":
            flows.exposure[401:802] = 0.0
        if case == "no merchants":
            state["exists"][:] = state["alive"][:] = False
            for name in DayFlows.__dataclass_fields__:
                getattr(flows, name)[:] = 0.0
            samples = Samples.of(state["tier"], state["exists"], sample)
        days.append((state, flows, samples))
    alone, together = empty_series(len(days) + 1, 2), empty_series(len(days) + 1, 2)
    state, flows, chunk = _chunk(days)
    with np.errstate(invalid="ignore", over="ignore"):
        for k, (one_state, one_flows, samples) in enumerate(days):
            aggregate(alone, k + 1, 1, one_state, one_flows, 3, samples)
            expected = empty_series(1, 1)
            _numpy_aggregate(expected, one_state, one_flows, 3, samples)
            if _CASES[k] not in ("overflowed", "numpy's"):  # (NaN's sign aside, below)
                _assert_same_day({n: alone[n][k + 1:k + 2, 1:2] for n in alone}, expected,
                                 _CASES[k])
        aggregate_chunk(together, 1, 1, state, flows, 3, chunk, ADDED_FLOWS)
        first = _chunk(days[:1])
        aggregate_chunk(together, 0, 0, *first[:2], 3, first[2])
        aggregate(alone, 0, 0, days[0][0], days[0][1], 3, days[0][2])
    for name in alone:
        assert together[name].tobytes() == alone[name].tobytes(), name
    # The cases do reach the figures they are for.
    row = {case: k + 1 for k, case in enumerate(_CASES)}
    assert np.isnan(alone["take_rate"][row["no sales"], 1])
    assert np.isnan(alone["auto_follow_share"][row["all dead"], 1])
    assert np.isnan(alone["take_rate"][row["overflowed"], 1])  # inf / inf
    assert np.isnan(alone["price_mean"][row["empty cohort"], 1, 1])
    assert np.isnan(alone["median_margin"][row["numpy's"], 1])
    assert np.isnan(alone["margin_pct"][row["numpy's"], 1]).any()
    assert 0 < alone["exposure_hhi"][row["a group unseen"], 1] < 1
    assert alone["share_alive"][row["no merchants"], 1] == 0.0
    assert alone["share_alive"][row["plain"], 1] == pytest.approx(0.8, abs=0.05)
    for name in ADDED_FLOWS:
        assert not getattr(flows, name).any(), name
    # Replications of different sizes are no chunk.
    other = _day(rng, 3, 400, dtype, False, False)[2]
    with pytest.raises(ValueError, match=r"the same number of slots, not \[1200, 1203\]"):
        ChunkSamples.of([days[0][2], other])


def test_cleared_flows_are_zero_after_the_same_figures() -> None:
    """Flows named in `clear` are zeroed once read, every figure as without clearing; the
    other flows are left as they were."""
    rng = np.random.default_rng(22)
    state, flows, samples = _day(rng, 2, 3_001, np.float64, False, False)
    kept = {k: getattr(flows, k).copy() for k in DayFlows.__dataclass_fields__}
    plain, cleared = empty_series(1, 1), empty_series(1, 1)
    aggregate(plain, 0, 0, state, flows, 2, samples)
    aggregate(cleared, 0, 0, state, flows, 2, samples, ADDED_FLOWS)
    for name in plain:
        assert plain[name].tobytes() == cleared[name].tobytes(), name
    for k, before in kept.items():
        after = getattr(flows, k)
        if k in ADDED_FLOWS:
            assert after.tobytes() == np.zeros_like(before).tobytes(), k
        else:
            assert after.tobytes() == before.tobytes(), k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recycled_flows_give_the_days_of_new_flows(dtype: type) -> None:
    """Handing the day's flows back (`Model.recycle_flows`, zeroed by the aggregation) gives
    every later day the flows and state that new arrays give."""
    book = load_set(ROOT / "rules" / "books" / "lowprice-2024")
    sc = load_scenario(ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml")
    seeds = [replication_seed(5, i) for i in range(2)]
    fresh = Model(book, sc, seeds, dtype=dtype)
    recycled = Model(book, sc, seeds, dtype=dtype)
    n1 = recycled.n1
    samples = [Samples.of(recycled.s["tier"][k * n1:(k + 1) * n1],
                          recycled.s["exists"][k * n1:(k + 1) * n1], 4096) for k in range(2)]
    out = empty_series(2, 40)
    arrays: list[np.ndarray] = []
    for day in range(40):
        want = fresh.step(day)
        got = recycled.step(day)
        for k in DayFlows.__dataclass_fields__:
            assert getattr(got, k).tobytes() == getattr(want, k).tobytes(), (day, k)
        for key, value in fresh.s.items():
            if isinstance(value, np.ndarray):
                assert value.tobytes() == recycled.s[key].tobytes(), (day, key)
        arrays.append(got.commission)
        for k in range(2):
            sl = slice(k * n1, (k + 1) * n1)
            state = {key: recycled.s[key][sl] for key in ("alive", "price", "quality", "margin",
                                                          "unit_cost", "enrolled", "price0")}
            flows = DayFlows(**{f: getattr(got, f)[sl] for f in DayFlows.__dataclass_fields__})
            aggregate(out, k, day, state, flows, recycled.G, samples[k], ADDED_FLOWS)
        recycled.recycle_flows(got, ADDED_FLOWS)
    assert all(a is arrays[0] for a in arrays)  # the same arrays every day
    # Flows handed back without zeroing what the day adds to are refused.
    with pytest.raises(ValueError, match="commission"):
        recycled.recycle_flows(recycled.step(40), ADDED_FLOWS - {"commission"})


def test_samples_label_each_slot_and_run_the_slots_that_exist() -> None:
    """Each slot is labelled with its cohort, -1 where it does not exist; the runs of slots
    that exist are cut where a group ends, and name their group."""
    rng = np.random.default_rng(23)
    tier = rng.integers(0, len(TIERS), 500).astype(np.int8)
    exists = rng.random(500) < 0.8
    exists[99:101] = True  # a run across the end of the first group of 100
    samples = Samples.of(tier, exists, 64)
    assert samples.label.dtype == np.int8
    assert np.array_equal(samples.label, np.where(exists, tier, -1))
    for groups in (1, 5, 100):
        starts, stops, group = samples.runs(groups)
        covered = np.zeros(500, dtype=bool)
        for lo, hi, g in zip(starts, stops, group, strict=True):
            assert lo < hi and exists[lo:hi].all() and not covered[lo:hi].any()
            assert lo // (500 // groups) == (hi - 1) // (500 // groups) == g
            covered[lo:hi] = True
        assert np.array_equal(covered, exists)
        # Runs end where a slot does not exist or a group ends, nowhere else.
        ends = set(stops) - {500}
        assert all(not exists[e] or e % (500 // groups) == 0 for e in ends)
    with pytest.raises(ValueError, match="groups of equal size"):
        samples.runs(3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("groups", "slots"), [(1, 1), (3, 129), (4, 9_000)])
def test_compiled_and_numpy_zeroing_give_the_same_day(dtype: type, groups: int,
                                                      slots: int) -> None:
    """Flows in flat arrays (summed and zeroed in the compiled pass) and the same flows as
    strided views (summed from flat copies, then zeroed by ``fill``) give the same figures
    and the same zeroed flows, byte for byte, with a NaN, -0.0 and an all -0.0 flow among
    them."""
    rng = np.random.default_rng(groups + slots)
    state, flows, samples = _day(rng, groups, slots, dtype, False, False)
    existing = np.flatnonzero(state["exists"])  # (padding slots hold no flows)
    flows.ads[rng.choice(existing)] = np.nan
    flows.commission[rng.choice(existing, 3)] = -0.0
    flows.fees[existing] = -0.0
    results = []
    for flat in (True, False):
        copies = {}
        for k in DayFlows.__dataclass_fields__:
            wide = np.zeros((getattr(flows, k).size, 1 if flat else 2))
            wide[:, 0] = getattr(flows, k)
            copies[k] = wide[:, 0]
        assert copies["orders"].flags.c_contiguous == (flat or groups * slots < 2)
        day = DayFlows(**copies)
        got = empty_series(1, 1)
        with np.errstate(invalid="ignore"):
            aggregate(got, 0, 0, state, day, groups, samples, ADDED_FLOWS)
        results.append((got, day))
    (flat_out, flat_flows), (strided_out, strided_flows) = results
    for name in flat_out:
        assert flat_out[name].tobytes() == strided_out[name].tobytes(), name
    for k in DayFlows.__dataclass_fields__:
        got_flat, got_strided = getattr(flat_flows, k), getattr(strided_flows, k)
        assert got_flat.tobytes() == got_strided.tobytes(), k
        if k in ADDED_FLOWS:
            assert got_flat.tobytes() == np.zeros(got_flat.size).tobytes(), k


@pytest.mark.parametrize(("n_a", "n_b"), [(0, 0), (0, 1), (1, 0), (1, 1), (5, 3), (4000, 6000)])
def test_sorted_union_is_numpys_union1d(n_a: int, n_b: int) -> None:
    """The samples' union: numpy's ``union1d`` as int64, shared slots and repeats once."""
    rng = np.random.default_rng(n_a + 7 * n_b)
    for _ in range(3):
        a = rng.integers(0, 3 * (n_a + n_b) + 1, n_a)
        b = np.concatenate([rng.choice(a, min(n_a, n_b // 2)) if n_a else a[:0],
                            rng.integers(0, 3 * (n_a + n_b) + 1, n_b - min(n_a, n_b // 2))])
        got = _sorted_union(a.astype(np.int64), b.astype(np.int32))
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.union1d(a, b))
