"""`day_sums`: every sum of a day's figures in one pass, in the order it documents.

Each sum is checked bit for bit against the same order written in numpy (`_lane_sums`: slot i
of a run in lane (i - start) % 8, the lanes carried from run to run, added pairwise at the
end), and against numpy's own sums: exactly for whole numbers, to 1e-13 for fractions. The
flows asked for are zeroed (+0.0, from -0.0 and NaN too), the others left as they were, and
the slots outside the runs are neither read nor written.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.aggregation_kernels import COHORT_SUMS, FLOWS, TOTALS, day_sums

LANES = 8


def _runs(exists: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of slots that exist, cut at every `width` slots (as `Samples.runs`)."""
    starts, stops = [], []
    for i, there in enumerate(exists):
        if there and (i == 0 or not exists[i - 1] or i % width == 0):
            starts.append(i)
        if there and (i + 1 == exists.size or not exists[i + 1] or (i + 1) % width == 0):
            stops.append(i + 1)
    starts_a, stops_a = np.array(starts, np.int64), np.array(stops, np.int64)
    return starts_a, stops_a, starts_a // width


def _lane_sums(x: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The eight lanes of x's sum over the runs, in `day_sums`' order: each run's slots in
    steps of eight (a short last step reads zeros), lanes carried from run to run."""
    lanes = np.zeros(LANES)
    for lo, hi in zip(starts, stops, strict=True):
        for i in range(lo, hi, LANES):
            step = np.zeros(LANES)
            step[:min(LANES, hi - i)] = x[i:min(i + LANES, hi)]
            lanes = lanes + step
    return lanes


def _pairwise(lanes: np.ndarray) -> float:
    return float(((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
                 + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])))


def _case(rng: np.random.Generator, n: int, dtype: type) -> dict[str, np.ndarray]:
    exists = rng.random(n) < 0.85
    alive = exists & (rng.random(n) < 0.8)

    def spread() -> np.ndarray:
        return np.abs(rng.standard_normal(n)) * rng.random(n) ** 3 * 1e4 * exists

    def counts(dense: float) -> np.ndarray:
        return np.floor(rng.random(n) * 6) * (rng.random(n) < dense) * exists

    case = {
        "label": np.where(exists, rng.integers(0, 3, n), -1).astype(np.int8),
        "alive": alive, "enrolled": rng.random(n) < 0.3,
        "price": rng.uniform(1, 40, n).astype(dtype),
        "price0": rng.uniform(1, 40, n).astype(dtype),
        "margin": rng.uniform(-0.5, 0.5, n).astype(dtype),
        "quality": rng.uniform(0, 1, n).astype(dtype),
        "unit_cost": rng.uniform(1, 40, n).astype(dtype),
    }
    for name in FLOWS:
        whole = name in ("below_cost_units", "orders", "prompts", "forced_follows",
                         "appeals_attempted", "appeals_won")
        case[name] = counts(0.02 if name in ("prompts", "forced_follows") else 0.6) \
            if whole else spread()
    case["fees"][:] = 0.0  # a flow all +0.0, as the bundled rulebooks' fees
    case["commission"][np.flatnonzero(exists)[:3]] = -0.0
    return case


def _call(case: dict[str, np.ndarray], runs: tuple[np.ndarray, ...], clear: int,
          groups: int) -> tuple[np.ndarray, ...]:
    totals, cohort = np.empty(len(TOTALS)), np.empty((len(COHORT_SUMS), 3))
    counts, by_group = np.empty(2), np.zeros((2, groups))
    day_sums(*runs, case["label"], case["alive"].view(np.uint8),
             case["enrolled"].view(np.uint8),
             *(case[k] for k in ("price", "price0", "margin", "quality", "unit_cost")),
             *(case[k] for k in FLOWS), clear, totals, cohort, counts, by_group)
    return totals, cohort, counts, by_group


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("groups", "width"), [(1, 1), (1, 7), (2, 8), (3, 129), (4, 2_001)])
def test_day_sums_add_in_the_order_they_document(dtype: type, groups: int, width: int) -> None:
    rng = np.random.default_rng(groups * width)
    n = groups * width
    case = _case(rng, n, dtype)
    runs = _runs(case["label"] >= 0, width)
    totals, cohort, counts, by_group = _call(case, runs, 0, groups)
    starts, stops, run_group = runs
    live = case["alive"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (case["price"] / case["price0"]).astype(np.float64)
    for j, name in enumerate(TOTALS):
        x = case[name]
        assert totals[j] == _pairwise(_lane_sums(x, starts, stops)), name
        np.testing.assert_allclose(totals[j], x.sum(), rtol=1e-13, err_msg=name)
        if name in ("orders", "prompts", "below_cost_units"):
            assert totals[j] == x.sum(), name  # whole numbers: exact in any order
    for c in range(3):
        cohort_c = case["label"] == c
        live_c = cohort_c & live
        quantities = {"revenue": case["revenue"], "refund": case["refund"],
                      "exposure": case["exposure"], "quality": case["quality"],
                      "price": case["price"], "margin": case["margin"],
                      "price_index": ratio, "live": np.ones(n),
                      "appeals_attempted": case["appeals_attempted"],
                      "appeals_won": case["appeals_won"]}
        for q, name in enumerate(COHORT_SUMS):
            where = cohort_c if name.startswith("appeals") else live_c
            x = np.where(where, quantities[name].astype(np.float64), 0.0)
            assert cohort[q, c] == _pairwise(_lane_sums(x, starts, stops)), (name, c)
            np.testing.assert_allclose(cohort[q, c], x.sum(), rtol=1e-13, atol=1e-9,
                                       err_msg=f"{name} {c}")
        assert cohort[COHORT_SUMS.index("live"), c] == np.count_nonzero(live_c)
    assert counts[0] == np.count_nonzero(live & case["enrolled"])
    assert counts[1] == np.count_nonzero(live & (case["price"] < case["unit_cost"]))
    exposure = case["exposure"].reshape(groups, width)
    for g in range(groups):
        mine = run_group == g
        x = case["exposure"]
        assert by_group[0, g] == sum(_pairwise(_lane_sums(x, [lo], [hi]))
                                     for lo, hi in zip(starts[mine], stops[mine], strict=True))
        np.testing.assert_allclose(by_group[0, g], exposure[g].sum(), rtol=1e-13)
        np.testing.assert_allclose(by_group[1, g], np.square(exposure[g]).sum(), rtol=1e-13)


@pytest.mark.parametrize("width", [1, 9, 1_000])
def test_day_sums_zero_the_flows_asked_for_and_nothing_outside_the_runs(width: int) -> None:
    """Flows with their bit of `clear` end +0.0 (-0.0 and NaN included) in every run, with
    the same sums as without clearing; the other flows, and every slot outside the runs,
    are left as they were."""
    rng = np.random.default_rng(width)
    n = 3 * width
    case = _case(rng, n, np.float32)
    existing = np.flatnonzero(case["label"] >= 0)
    case["ads"][rng.choice(existing)] = np.nan
    case["fees"][existing[::2]] = -0.0
    outside = case["label"] < 0
    for name in FLOWS:
        case[name][outside] = 5.0  # numbers a pass over the runs must not read or write
    runs = _runs(~outside, width)
    plain = _call({k: v.copy() for k, v in case.items()}, runs, 0, 3)
    clear = sum(1 << j for j, name in enumerate(FLOWS) if j % 2 == 0 or name == "fees")
    before = {name: case[name].copy() for name in FLOWS}
    cleared = _call(case, runs, clear, 3)
    for a, b in zip(plain, cleared, strict=True):
        assert a.tobytes() == b.tobytes()
    for j, name in enumerate(FLOWS):
        x = case[name]
        assert x[outside].tobytes() == before[name][outside].tobytes(), name
        if (clear >> j) & 1:
            assert x[~outside].tobytes() == bytes(8 * np.count_nonzero(~outside)), name
        else:
            assert x.tobytes() == before[name].tobytes(), name
