"""The starting population's compiled paths against the plain numpy they replace, bit for bit:
the tier orders (`permuted`), the uniforms (`_uniforms`), the day-0 figures (`start_state`, in
float64 and float32) and the model's starting margins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rules.loader import load_set
from simulator import population
from simulator.model import Model
from simulator.population import (
    COMPILED_MIN,
    Layout,
    initial_state,
    permuted,
    start_state,
    web_start,
)
from simulator.run import replication_seed
from simulator.scenario import TIERS, Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml"


def _numpy_initial_state(scenario: Scenario, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`initial_state` as plain numpy expressions (what the compiled passes must match)."""
    m = scenario.model
    lay = Layout.of(scenario)
    n, slots = lay.n, lay.slots
    exists = lay.exists()
    group = lay.group_of()
    tier = np.zeros(n, dtype=np.int8)
    shares = np.array([getattr(m.tiers, t).share.value for t in TIERS])
    for g, size in enumerate(lay.sizes):
        counts = np.floor(shares * size + 1e-9).astype(int)
        counts[0] += size - counts.sum()
        labels = np.repeat(np.arange(len(TIERS), dtype=np.int8), counts)
        tier[g * slots: g * slots + size] = rng.permutation(labels)
    tiers = [getattr(m.tiers, t) for t in TIERS]

    def pick(attr: str) -> np.ndarray:
        return np.array([getattr(t, attr).value for t in tiers], dtype=np.float64)[tier]

    unit_cost_group = np.array([gr.unit_cost.value for gr in m.groups])[group]
    shipping = np.array([gr.shipping_cost.value for gr in m.groups])[group]
    p = m.population
    spread = rng.standard_normal(n)
    full_cost = unit_cost_group * pick("cost_factor") * np.exp(p.cost_spread.value * spread)
    quality = rng.uniform(p.quality_low.value, p.quality_high.value, n)
    share = m.adaptation.cost_share_of_quality.value
    unit_cost = full_cost * (1.0 - share * (1.0 - quality))
    margin0 = rng.uniform(p.initial_margin_low.value, p.initial_margin_high.value, n)
    burden0 = p.initial_burden_ratio.value
    price = np.round((unit_cost + shipping) / (1.0 - margin0 - burden0), 1)
    promo = price * (1.0 + p.promo_signup_markup.value)
    enrolled = rng.random(n) < m.auto_follow.enrolled_share.value
    scale = pick("scale")
    d = m.demand
    impressions = np.array([gr.daily_impressions.value for gr in m.groups])
    scale_in_group = np.bincount(group, weights=np.where(exists, scale, 0.0),
                                 minlength=len(lay.groups))
    expected_revenue = (impressions[group] * scale / scale_in_group[group]
                        * d.click_through_rate.value * d.conversion.value
                        * quality ** d.quality_conversion_elasticity.value * price)
    return {
        "exists": exists, "alive": exists.copy(), "group": group, "tier": tier,
        "full_cost": full_cost, "unit_cost": unit_cost, "shipping": shipping,
        "quality": quality, "quality0": quality.copy(), "price": price, "promo": promo,
        "enrolled": enrolled & exists, "scale": np.where(exists, scale, 0.0),
        "fixed_cost": pick("fixed_cost_share") * expected_revenue,
        "cash": pick("cash_buffer_days") * expected_revenue,
        "capacity": pick("response_capacity"),
        "burden_ema": np.full(n, burden0), "last_revenue": expected_revenue,
    }


def _scenario(sellers: tuple[int, ...], **values: Any) -> Scenario:
    """The tiny scenario with these sellers per group (and any other values)."""
    overrides = {f"groups.{g}.sellers": k for g, k in enumerate(sellers)}
    return load_scenario(TINY).with_values({**overrides, **values})


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _buffered(seed: int, half: bool) -> np.random.Generator:
    """A Generator, with numpy's buffered 32-bit half filled if `half`."""
    rng = np.random.default_rng(seed)
    if half:
        rng.random(dtype=np.float32)
    return rng


@pytest.mark.parametrize("size", [0, 1, 2, 5, COMPILED_MIN - 1, COMPILED_MIN, 3 * COMPILED_MIN + 7])
@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("dtype", [np.int8, np.int64])
def test_permuted_is_numpys_permutation_and_state(size: int, half: bool, dtype: Any) -> None:
    labels = np.repeat(np.arange(len(TIERS), dtype=dtype), size // len(TIERS) + 1)[:size]
    for seed in range(4):
        want, got = _buffered(seed, half), _buffered(seed, half)
        expected = want.permutation(labels)
        assert _same(permuted(got, labels), expected)
        assert got.bit_generator.state == want.bit_generator.state
        assert got.random(dtype=np.float32) == want.random(dtype=np.float32)


def test_permuted_takes_the_compiled_path_only_for_pcg64_and_large(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    kernel = population._shuffle_pcg64

    def counted(x: np.ndarray, *args: Any) -> Any:
        calls.append(x.size)
        return kernel(x, *args)

    monkeypatch.setattr(population, "_shuffle_pcg64", counted)
    labels = np.arange(2 * COMPILED_MIN, dtype=np.int8)
    permuted(np.random.default_rng(1), labels)
    permuted(np.random.default_rng(1), labels[:COMPILED_MIN - 1])
    mt, mt_ref = (np.random.Generator(np.random.MT19937(5)) for _ in range(2))
    assert _same(permuted(mt, labels), mt_ref.permutation(labels))
    assert calls == [2 * COMPILED_MIN]


@pytest.mark.parametrize("n", [1, COMPILED_MIN - 1, COMPILED_MIN, 50_001])
@pytest.mark.parametrize("half", [False, True])
def test_uniforms_are_numpys_and_leave_the_same_state(n: int, half: bool) -> None:
    for seed in range(3):
        want, got = _buffered(seed, half), _buffered(seed, half)
        expected = (want.uniform(0.35, 0.95, n), want.uniform(-0.2, 0.3, n),
                    want.random(n) < 0.4)
        found = population._uniforms(got, n, (0.35, 0.95), (-0.2, 0.3), 0.4)
        assert all(_same(a, b) for a, b in zip(found, expected, strict=True))
        assert got.bit_generator.state == want.bit_generator.state
        assert got.random(dtype=np.float32) == want.random(dtype=np.float32)


@pytest.mark.parametrize("sellers, values", [
    ((6, 6, 6), {}),
    ((COMPILED_MIN + 3, 1, 2 * COMPILED_MIN), {}),
    ((3 * COMPILED_MIN, COMPILED_MIN, 5), {"demand.quality_conversion_elasticity": 0.7,
                                          "population.cost_spread": 0.3}),
])
def test_start_state_is_the_numpy_state_in_either_dtype(sellers: tuple[int, ...],
                                                        values: dict[str, Any]) -> None:
    sc = _scenario(sellers, **values)
    for seed in range(3):
        want, got, got32 = (np.random.default_rng(seed) for _ in range(3))
        expected = _numpy_initial_state(sc, want)
        found = initial_state(sc, got)
        assert list(found) == list(expected)
        assert all(_same(found[k], expected[k]) for k in expected), [
            k for k in expected if not _same(found[k], expected[k])]
        assert got.bit_generator.state == want.bit_generator.state
        state32, price64 = start_state(sc, got32, np.float32)
        assert got32.bit_generator.state == want.bit_generator.state
        assert _same(price64, expected["price"])
        for k, v in expected.items():
            assert _same(state32[k], v.astype(np.float32) if v.dtype == np.float64 else v), k
        for a, b in zip(web_start(sc, {"price": price64}), web_start(sc, expected),
                        strict=True):
            assert _same(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("replications", [1, 2])
def test_the_models_start_is_the_numpy_state(dtype: Any, replications: int) -> None:
    """The model's state arrays are the numpy state's, cast (and stacked), its starting
    margins `Model._margin` at the merchants that exist and 0 in the padding slots."""
    sc = _scenario((COMPILED_MIN + 1, 7, 2 * COMPILED_MIN))
    seeds = [replication_seed(4, i) for i in range(replications)]
    model = Model(load_set(ROOT / "rules" / "books" / "lowprice-2024"), sc, seeds, dtype=dtype)
    states = [_numpy_initial_state(sc, np.random.default_rng(s)) for s in seeds]
    s = model.s
    for k in ("full_cost", "unit_cost", "shipping", "quality", "quality0", "price", "promo",
              "cash", "scale", "fixed_cost", "capacity", "burden_ema", "last_revenue"):
        assert _same(s[k], np.concatenate([st[k] for st in states]).astype(dtype)), k
    for k in ("exists", "alive", "enrolled", "tier"):
        assert _same(s[k], np.concatenate([st[k] for st in states])), k
    n1 = model.n1
    group = np.concatenate([st["group"] + r * len(sc.model.groups)
                            for r, st in enumerate(states)]).astype(np.int64)
    assert _same(s["group"], group) and model.R * n1 == s["group"].size
    ex = np.flatnonzero(s["exists"])
    margin = np.zeros(model.n, dtype=dtype)
    margin[ex] = model._margin(ex)
    assert _same(s["margin"], margin)
    assert (~s["exists"]).any()  # the padding is there, and zero
    webs = [web_start(sc, st) for st in states]
    assert _same(model.web, np.concatenate([w[0] for w in webs]))


def test_uniforms_take_the_compiled_path_only_for_pcg64_and_large(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    kernel = population._raw_uniforms

    def counted(raw: np.ndarray, *args: Any) -> Any:
        calls.append(raw.size)
        return kernel(raw, *args)

    monkeypatch.setattr(population, "_raw_uniforms", counted)
    population._uniforms(np.random.default_rng(1), COMPILED_MIN, (0.0, 1.0), (0.0, 1.0), 0.5)
    population._uniforms(np.random.default_rng(1), COMPILED_MIN - 1, (0.0, 1.0), (0.0, 1.0), 0.5)
    mt, mt_ref = (np.random.Generator(np.random.MT19937(5)) for _ in range(2))
    n = 2 * COMPILED_MIN
    found = population._uniforms(mt, n, (0.2, 0.9), (0.1, 0.3), 0.5)
    expected = (mt_ref.uniform(0.2, 0.9, n), mt_ref.uniform(0.1, 0.3, n), mt_ref.random(n) < 0.5)
    assert all(_same(a, b) for a, b in zip(found, expected, strict=True))
    assert calls == [3 * COMPILED_MIN]
