"""The auto-follow part of the model's day (`Model.step`, sections 1-3): its shortcuts must give
the state and flows the plain numpy path gives, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set
from simulator.model import Model
from simulator.run import replication_seed
from simulator.scenario import load_scenario
from tests.simulator.model_runs import assert_identical, run_days

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "rules" / "books"
TINY = ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml"

#: Many toggles a day, and an exit and entry now and then, so that every selection of the
#: day has merchants in it (and dead merchants among the slots).
BUSY = {"auto_follow.accidental_enrol_probability": 0.3,
        "auto_follow.leave_attempt_probability": 0.5,
        "auto_follow.leave_margin_threshold": 0.5,
        "auto_follow.leave_code_success": 0.5,
        "exit.entry_probability": 0.1}


@pytest.fixture(scope="module", params=["lowprice-2024", "reformed-2025"])
def rulebook_set(request):
    return load_set(BOOKS / request.param)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_toggles_decided_once_change_no_bit(rulebook_set, dtype) -> None:
    """Enrolments and attempts to leave read only the event's literal fields in both bundled
    sets, so each kind is decided once for the run (`Model._decide_alike`); deciding every
    toggle afresh each day must give the same state and flows."""
    sc = load_scenario(TINY).with_values(BUSY)
    once = run_days(rulebook_set, sc, 40, dtype, 5)
    afresh = run_days(rulebook_set, sc, 40, dtype, 5,
                      prepare=lambda model: setattr(model, "_decide_once", False))
    assert_identical(once, afresh)
    # the toggles did happen: merchants both joined and left on some day
    joined = left = False
    model = Model(rulebook_set, sc, [replication_seed(5, 0)], dtype=dtype)
    for day in range(10):
        before = model.s["enrolled"].copy()
        model.step(day)
        joined |= bool((~before & model.s["enrolled"]).any())
        left |= bool((before & ~model.s["enrolled"] & model.s["alive"]).any())
    assert joined and left
    assert model._selections().alike  # the decisions were kept


def test_toggles_that_read_state_are_decided_every_day(rulebook_set, monkeypatch) -> None:
    """A toggle rule that reads more than the event's literal fields (here, as if it read the
    listing's price) is decided over the merchants each day, not once."""
    sc = load_scenario(TINY).with_values(BUSY)
    model = Model(rulebook_set, sc, [replication_seed(5, 0)])
    book = model.books["auto_follow"]
    reads = book.reads
    monkeypatch.setattr(book, "reads", lambda event_type: reads(event_type) | {"listing.price"}
                        if event_type == "auto_follow_toggled" else reads(event_type))
    calls = []
    decide = book.decide
    monkeypatch.setattr(book, "decide", lambda event_type, scope, n: (
        calls.append((event_type, n)), decide(event_type, scope, n))[1])
    for day in range(5):
        model.step(day)
    toggled = [n for event_type, n in calls if event_type == "auto_follow_toggled"]
    assert len(toggled) >= 5 and max(toggled) > 1
    assert not model._selections().alike


def test_prompt_rule_is_clear_between_days(rulebook_set) -> None:
    """Only the day's prompts arm `prompt_rule` (then reset where they armed it): the next
    day starts with no prompt deadline pending, whatever happened."""
    sc = load_scenario(TINY).with_values(BUSY)
    model = Model(rulebook_set, sc, [replication_seed(2, 0), replication_seed(2, 1)])
    prompts = 0.0
    for day in range(60):
        prompts += float(model.step(day).prompts.sum())
        assert (model.s["prompt_rule"] == -1).all()
    assert prompts > 0


@pytest.mark.parametrize("seed", range(6))
def test_observers_are_the_live_merchants_of_the_observed_groups(rulebook_set, seed) -> None:
    """`Model._observers` walks the observed groups' seller ranges only; it must find what
    `flatnonzero(alive & observed[group])` finds, in the same order, with each one's group
    price, whichever groups fell (none, some, all) and whoever is dead."""
    sc = load_scenario(TINY)
    model = Model(rulebook_set, sc, [replication_seed(seed, i) for i in range(3)])
    rng = np.random.default_rng(seed)
    s = model.s
    groups = model.web.size
    model.web = rng.uniform(1.0, 100.0, groups)
    for share_dead in (0.0, 0.4, 1.0):
        s["alive"][:] = s["exists"] & (rng.random(model.n) >= share_dead)
        for observed in (np.zeros(groups, dtype=bool), np.ones(groups, dtype=bool),
                         rng.random(groups) < 0.5, np.eye(groups, dtype=bool)[-1]):
            obs, comp = model._observers(observed)
            expected = np.flatnonzero(s["alive"] & observed[s["group"]])
            np.testing.assert_array_equal(obs, expected)
            np.testing.assert_array_equal(comp, model.web[s["group"][expected]])
            assert obs.dtype == expected.dtype and comp.dtype == np.float64


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000, 4097, 45_000])
def test_follow_probability_by_count_has_the_bits_of_the_whole_array(size: int) -> None:
    """The follow probability is computed once per count of prompts seen and looked up: numpy's
    power must give an element the same bits in the short array of counts as in the long
    array of merchants (whatever its length and the element's place in it)."""
    rng = np.random.default_rng(size)
    for low, high in ((0, 1), (0, 12), (3, 40), (0, 400)):
        seen = rng.integers(low, high + 1, size).astype(np.int32)
        first, step = rng.uniform(0.0, 1.0, 2)
        k = seen.astype(np.float64)
        whole = 1.0 - (1.0 - first) * (1.0 - step) ** (k - 1.0)
        lo = int(seen.min())
        counts = np.arange(lo, int(seen.max()) + 1, dtype=np.float64)
        by_count = (1.0 - (1.0 - first) * (1.0 - step) ** (counts - 1.0))[seen - lo]
        np.testing.assert_array_equal(by_count.view(np.uint64), whole.view(np.uint64))
