"""The vectorised model agrees with the plain-Python reference on small populations.

Both read the same random draws (see simulator.population), so merchant by merchant the state
must match: exactly for flags and counters, to float rounding for money (the model is run in
float64 here; its default float32 only rounds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set, load_set_from_texts
from simulator.model import Model
from simulator.reference import ReferenceReplication, reference_replications
from simulator.run import replication_seed, run_replications
from simulator.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml"
MIXED = ROOT / "tests" / "fixtures" / "rulebooks" / "appeal_mixed.yaml"
SETS = ("lowprice-2024", "reformed-2025")

EXACT = ("alive", "enrolled", "loss_days", "appeals_filed_month", "appeals_failed_month",
         "appeals_failed_year", "prompts_seen")
CLOSE = ("price", "unit_cost", "quality", "cash", "burden_ema", "margin",
         "appeal_blocked_until", "silenced_until")
FLOWS = ("exposure", "orders", "revenue", "commission", "ads", "refund", "below_cost_units",
         "appeals_attempted", "appeals_won", "prompts", "forced_follows")


@pytest.fixture(scope="module")
def books() -> dict[str, object]:
    return {name: load_set(ROOT / "rules" / "books" / name) for name in SETS}


def _compare(sc: Scenario, rulebook_set: object, days: int, seed: int = 5,
             replications: int = 2, fused_appeals: bool = True) -> dict[str, float]:
    seeds = [replication_seed(seed, i) for i in range(replications)]
    model = Model(rulebook_set, sc, seeds, dtype=np.float64)
    model._fused_appeals = fused_appeals
    refs = [ReferenceReplication(rulebook_set, sc, s) for s in seeds]
    n1 = model.n1
    seen = {k: 0.0 for k in FLOWS}
    for day in range(days):
        flows = model.step(day)
        for k, ref in enumerate(refs):
            sl = slice(k * n1, (k + 1) * n1)
            want = ref.step(day)
            for name in FLOWS:
                got = getattr(flows, name)[sl]
                np.testing.assert_allclose(got, getattr(want, name), rtol=1e-9, atol=1e-7,
                                           err_msg=f"day {day} replication {k} flow {name}")
                seen[name] += float(np.abs(got).sum())
            state = ref.arrays()
            for name in EXACT:
                np.testing.assert_array_equal(model.s[name][sl], state[name],
                                              err_msg=f"day {day} replication {k} {name}")
            for name in CLOSE:
                np.testing.assert_allclose(model.s[name][sl], state[name], rtol=1e-9,
                                           atol=1e-9, err_msg=f"day {day} replication {k} {name}")
    return seen


@pytest.mark.parametrize("set_name", SETS)
def test_model_matches_reference_merchant_by_merchant(books: dict, set_name: str) -> None:
    sc = load_scenario(TINY)
    seen = _compare(sc, books[set_name], days=75)
    # The run exercised the mechanisms being compared, not an idle population.
    for name in ("orders", "refund", "commission", "ads", "prompts"):
        assert seen[name] > 0, name
    if set_name == "lowprice-2024":
        assert seen["forced_follows"] > 0 and seen["appeals_attempted"] > 0


def test_model_matches_reference_with_entry_and_heavy_claims(books: dict) -> None:
    sc = load_scenario(TINY).with_values({
        "exit.entry_probability": 0.2, "exit.loss_days": 5, "refunds.claim_rate": 0.3,
        "appeals.propensity": 1.0, "tiers.small.fixed_cost_share": 0.3,
    })
    seen = _compare(sc, books["lowprice-2024"], days=40, seed=9)
    assert seen["appeals_won"] > 0


def test_model_matches_reference_on_a_rulebook_with_every_appeal_effect(books: dict) -> None:
    """Refusals counted twice, two acceptances of which the last names the reviewer, blocks
    for the month and the year: the fused rounds and the numpy path both agree with the
    reference."""
    files = {p.name: p.read_text() for p in (ROOT / "rules" / "books" / "lowprice-2024").glob(
        "*.yaml")}
    files["appeal.yaml"] = MIXED.read_text()
    rulebook_set = load_set_from_texts("lowprice-2024-mixed-appeals", files)
    sc = load_scenario(TINY).with_values({"refunds.lacking_evidence_share": 0.6,
                                          "appeals.propensity": 0.8,
                                          "appeals.human_review_request_share": 0.5})
    for fused in (True, False):
        seen = _compare(sc, rulebook_set, days=60, fused_appeals=fused)
        assert seen["appeals_won"] > 0 and seen["appeals_attempted"] > seen["appeals_won"]


def test_projection_series_match_the_reference(books: dict) -> None:
    sc = load_scenario(TINY)
    got = run_replications(books["lowprice-2024"], sc, 30, 3, [0, 1], dtype=np.float64)
    want = reference_replications(books["lowprice-2024"], sc, 30, 3, [0, 1])
    assert set(got) == set(want)
    for name in got:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-7, atol=1e-9, equal_nan=True,
                                   err_msg=name)
