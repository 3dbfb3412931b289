"""The ranking rules decided in one compiled pass (`simulator.ranking_rules`) against the numpy
target's decisions they replace (`Model._rank`), bit for bit."""

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

MIXED = FIXTURE_BOOKS / "ranking_mixed.yaml"


def _with_ranking(base: str, ranking_yaml: str):
    return with_rulebook(base, "ranking", ranking_yaml)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ranking", [BOOKS / "lowprice-2024" / "ranking.yaml",
                                     BOOKS / "reformed-2025" / "ranking.yaml", MIXED],
                         ids=lambda p: p.parent.name + "/" + p.name)
def test_compiled_ranking_gives_the_numpy_paths_bits(ranking: Path, dtype: type) -> None:
    rulebook_set = _with_ranking("lowprice-2024", ranking.read_text())
    assert prepared_on_first_day(rulebook_set, "_ranking") is not None
    compiled = run_switched(rulebook_set, 40, dtype, "_compiled_ranking", True)
    assert_same_bits(compiled, run_switched(rulebook_set, 40, dtype, "_compiled_ranking", False))


def test_the_mixed_rules_reach_every_kind_of_row() -> None:
    """The test rulebook admits some listings to its channel, leaves some unscored and some
    at a score that is unknown (a division by zero), so the comparison above covers them."""
    rulebook_set = _with_ranking("lowprice-2024", MIXED.read_text())
    model = Model(rulebook_set, load_scenario(TINY), [replication_seed(7, 0)])
    model._compiled_ranking = False
    seen = {"admitted": False, "zero": False, "demoted": False}
    for day in range(40):
        model.step(day)
        score, channel = model._scratch["score"], model._scratch["channel"]
        alive = model.s["alive"]
        seen["admitted"] |= bool((channel[alive] > 0).any())
        seen["zero"] |= bool((score[alive] == 0).any())
        seen["demoted"] |= bool((score[alive] == -1000).any())
    assert all(seen.values()), seen


@pytest.mark.parametrize(("rule", "why"), [
    ("when: listing.product_group == 'sofa'", "a text field"),
    ("when: listing.prompt_pending", "a flag field"),
    ("when: merchant.appeals_filed_month > 1", "an integer counter"),
    ("when: round(event.price, 30) > 1", "a rounding the numba target does not take"),
    ("when: listing.competitor_price < event.price",
     "an array of another dtype (float64 in a float32 model): `rank_rows` loops over its "
     "arrays, which numba does over a tuple of one type only"),
])
def test_rules_reading_other_fields_are_left_to_numpy(rule: str, why: str) -> None:
    text = MIXED.read_text().replace("when: event.price > event.unit_cost * 1.35", rule)
    assert prepared_on_first_day(_with_ranking("lowprice-2024", text), "_ranking") is None, why


def test_a_rule_with_two_scores_is_left_to_numpy() -> None:
    text = MIXED.read_text().replace("""      - effect: assign_ranking_score
        score: -1000
""", """      - effect: assign_ranking_score
        score: -1000
      - effect: assign_ranking_score
        score: event.price
""")
    assert prepared_on_first_day(_with_ranking("lowprice-2024", text), "_ranking") is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_decision_gives_the_numpy_scores_and_channels(dtype: type) -> None:
    """Crafted listings (unknown prices, promotion prices equal to the price, which the test
    rules divide by, quality at 1): the compiled pass writes the scores and channels the numpy
    path writes, bit for bit, at the rows decided and nowhere else."""
    rulebook_set = _with_ranking("lowprice-2024", MIXED.read_text())
    model = Model(rulebook_set, load_scenario(TINY), [replication_seed(1, 0)], dtype=dtype)
    model.step(0)
    s, n = model.s, model.n
    rng = np.random.default_rng(3)
    s["price"][:] = rng.choice([19.9, 25.0, 30.0, 600.0, np.nan, 0.0], n)
    s["promo"][:] = np.where(rng.random(n) < 0.4, s["price"], s["price"] * 1.2)
    s["quality"][:] = rng.choice([1.0, 0.96, 0.92, 0.5, np.nan], n)
    s["unit_cost"][:] = rng.choice([5.0, 20.0, 400.0, np.nan], n)
    rows = np.flatnonzero(rng.random(n) < 0.6)
    got = {}
    for compiled in (True, False):
        model._compiled_ranking = compiled
        model._channels = True  # (the channels written either way)
        score, channel = np.full(n, -7.0), np.full(n, -7.0)
        model._rank(model.books["ranking"], rows, model._listing_event(1.75e9), score, channel)
        got[compiled] = (score, channel)
    for a, b in zip(got[True], got[False], strict=True):
        assert a.tobytes() == b.tobytes()
    score, channel = got[True]
    others = np.setdiff1d(np.arange(n), rows)
    assert (score[others] == -7.0).all() and (channel[others] == -7.0).all()
    assert (score[rows] == 0).any() and (channel[rows] > 0).any() and (score[rows] > 0).any()


def test_rules_that_read_no_listings_field_are_left_to_numpy() -> None:
    """Rules on the event's time alone, or on nothing, read no state array: the numpy path,
    and the model still steps."""
    for when in ("event.time > 1720000000", "true"):
        text = f"""rulebook:
  platform: lowprice
  family: ranking
  version: "test"
  published: 2024-07-01
  effective: 2024-07-01
  timezone: Asia/Shanghai
  description: Test rules; not a platform's.
rules:
  - id: only
    description: One score for everyone.
    on: [listing_updated]
    when: {when}
    then:
      - effect: assign_ranking_score
        score: 5
    source: "assumption: test rule"
"""
        rulebook_set = _with_ranking("lowprice-2024", text)
        assert prepared_on_first_day(rulebook_set, "_ranking") is None, when


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channels_written_while_some_may_be_positive_though_none_is_admitted(
        dtype: type) -> None:
    """A decision that admits no listing still zeroes the channels of its rows while some
    channel may be positive (`Model._channels`), as the numpy path does."""
    rulebook_set = _with_ranking("lowprice-2024", MIXED.read_text())
    model = Model(rulebook_set, load_scenario(TINY), [replication_seed(1, 0)], dtype=dtype)
    model.step(0)
    s, n = model.s, model.n
    s["price"][:] = 600.0  # above the channel's line: nobody admitted
    rows = np.arange(0, n, 3)
    got = {}
    for compiled in (True, False):
        model._compiled_ranking = compiled
        model._channels = True
        score, channel = np.full(n, -7.0), np.full(n, -7.0)
        model._rank(model.books["ranking"], rows, model._listing_event(1.75e9), score, channel)
        got[compiled] = (score, channel, model._channels)
    assert got[True][2] and got[False][2]
    for a, b in zip(got[True][:2], got[False][:2], strict=True):
        assert a.tobytes() == b.tobytes()
    assert (got[True][1][rows] == 0).all()
