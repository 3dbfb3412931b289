"""The auto-follow part of the model's day (`Model.step`, sections 1-3): its shortcuts must give
the state and flows the plain numpy path gives, bit for bit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set
from simulator import kernels
from simulator.model import Model, _distinct, _positions
from simulator.run import replication_seed
from simulator.scenario import load_scenario
from tests.simulator.model_runs import assert_identical, assert_same_bits, run_days

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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prompt_answers_compiled_change_no_bit(rulebook_set, dtype) -> None:
    """The prompts' answers picked in one compiled pass (`kernels.prompt_answers`) give the
    state and flows numpy's selections give."""
    sc = load_scenario(TINY).with_values(BUSY)
    compiled = run_days(rulebook_set, sc, 60, dtype, 2)
    plain = run_days(rulebook_set, sc, 60, dtype, 2,
                     prepare=lambda model: setattr(model, "_compiled_answers", False))
    assert_identical(compiled, plain)
    assert sum(float(day["prompts"].sum()) for day in compiled[1]) > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_web_price_compiled_changes_no_bit(rulebook_set, dtype) -> None:
    """The whole-web price in one compiled loop (`kernels.web_prices`) gives the state and
    flows numpy's expression gives, cuts, rebounds and falls included (with a floor low
    enough that the cuts' depths, not the floor, set the price)."""
    # (the kernel's arithmetic against numpy's, bit by bit: test_kernels.py)
    sc = load_scenario(TINY).with_values({**BUSY, "web_price.floor_ratio": 0.2,
                                          "web_price.cut_probability": 0.3})
    compiled = run_days(rulebook_set, sc, 60, dtype, 8)
    plain = run_days(rulebook_set, sc, 60, dtype, 8,
                     prepare=lambda model: setattr(model, "_compiled_web_price", False))
    assert_same_bits(compiled, plain)
    assert sum(float(day["prompts"].sum()) for day in compiled[1]) > 0  # prices fell


@pytest.mark.parametrize("decide_once", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_toggles_compiled_change_no_bit(rulebook_set, dtype, decide_once, monkeypatch) -> None:
    """The toggles parted and the repricing done in compiled passes (`Model._toggles`) give
    the state and flows numpy's selections give (`Model._toggles_by_numpy`), with the
    attempts to leave decided alike or over all of them."""
    sc = load_scenario(TINY).with_values({**BUSY, "adaptation.reprice_below": 0.3})
    raised = []
    reprice = kernels.reprice
    monkeypatch.setattr(kernels, "reprice", lambda *args: raised.append(reprice(*args))
                        or raised[-1])

    def prepare(compiled: bool) -> Callable[[Model], None]:
        def set_up(model: Model) -> None:
            model._compiled_toggles = compiled
            model._decide_once = decide_once
        return set_up

    compiled = run_days(rulebook_set, sc, 60, dtype, 6, prepare=prepare(True))
    plain = run_days(rulebook_set, sc, 60, dtype, 6, prepare=prepare(False))
    assert_same_bits(compiled, plain)
    assert sum(raised) > 0  # the repricing did happen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recorded_deadlines_and_prompts_change_no_bit(rulebook_set, dtype) -> None:
    """The due deadlines and open prompts looked for among the merchants recorded as given
    one (`Model._due_rows`, `Model._open_rows`) are those a pass over every merchant finds,
    with merchants dying and entering: same state and flows, day after day."""
    sc = load_scenario(TINY).with_values(BUSY)
    recorded = run_days(rulebook_set, sc, 80, dtype, 3)
    scanned = run_days(rulebook_set, sc, 80, dtype, 3,
                       prepare=lambda model: setattr(model, "_track_rows", False))
    assert_identical(recorded, scanned)
    assert any(day["prompts"].sum() for day in recorded[1])
    assert any(day["forced_follows"].sum() for day in recorded[1])


def test_recorded_rows_cover_every_deadline_and_prompt(rulebook_set) -> None:
    """Between days, every merchant with a finite deadline is in a recorded batch whose
    earliest due is no later than its own, and every merchant with a prompt open (the dead
    only, after the day's prompts) is recorded. (The 2025 set arms no deadline longer than
    a day.)"""
    sc = load_scenario(TINY).with_values(BUSY)
    model = Model(rulebook_set, sc, [replication_seed(4, 0), replication_seed(4, 1)])
    s = model.s
    armed = 0
    for day in range(80):
        model.step(day)
        sel = model._selections()
        for i in np.flatnonzero(np.isfinite(s["dl_due"])):
            assert any(at <= s["dl_due"][i] and i in rows for at, rows in sel.deadlines)
            armed += 1
        opened = set(np.concatenate(sel.opened).tolist()) if sel.opened else set()
        assert set(np.flatnonzero(s["prompt_open"]).tolist()) <= opened
    assert armed or "reformed" in str(rulebook_set.id)


def _three_days_on(rulebook_set, track: bool,
                   seed: int) -> tuple[Model, np.ndarray, float, int]:
    """A model on the tiny scenario after three days (deadlines and prompts recorded or
    scanned for, as `track` says), two of its live merchants, the fourth day's time, and
    the position of an auto-follow rule with a deadline."""
    model = Model(rulebook_set, load_scenario(TINY), [replication_seed(seed, 0)])
    model._track_rows = track
    for day in range(3):
        model.step(day)
    af = model.books["auto_follow"]
    pos = next(i for i, rid in enumerate(af.rule_ids)
               if af.rulebook.rule(rid).deadline is not None)
    return model, np.flatnonzero(model.s["alive"])[:2], model.calendar.time(3), pos


def test_a_dead_merchants_prompt_and_deadline_wait_for_it(rulebook_set) -> None:
    """A prompt open and a deadline due on a merchant that is dead stay until it lives
    again, then are dealt with, whether they are looked for among the recorded merchants
    or over every merchant."""
    runs = []
    for track in (True, False):
        model, m, T, pos = _three_days_on(rulebook_set, track, seed=1)
        s = model.s
        model._apply_listing(m[:1], [("prompt_price_change", {"target": np.array([1.0])})],
                             None, T, model._new_flows())
        model._set_deadlines(m[1:], np.ones(1, dtype=bool), np.array([0.5 * 86400.0]),
                             -np.inf, pos, T, np.array([2.0]))
        s["alive"][m] = False
        for day in range(3, 6):
            model.step(day)
        assert s["prompt_open"][m[0]] and np.isfinite(s["dl_due"][m[1]])
        s["alive"][m] = True
        flows = [model.step(day) for day in range(6, 8)]
        assert not s["prompt_open"][m[0]] and not np.isfinite(s["dl_due"][m[1]])
        runs.append((s, [{k: getattr(f, k).copy() for k in f.__dataclass_fields__}
                         for f in flows]))
    assert_identical(*runs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_live_minima_are_numpys(dtype) -> None:
    """`Model._live_minima` gives numpy's masked group minima bit for bit, by the compiled
    pass or, when a live price is negative, -0.0 or NaN, by numpy itself; a group with
    nobody live has inf."""
    rulebook_set = load_set(BOOKS / "lowprice-2024")
    model = Model(rulebook_set, load_scenario(TINY), [replication_seed(7, i) for i in range(2)],
                  dtype=dtype)
    s, slots = model.s, model.layout.slots
    rng = np.random.default_rng(7)
    live = np.flatnonzero(s["alive"])
    for bad in (None, np.nan, -0.0, -2.0):
        if bad is not None:
            s["price"][rng.choice(live)] = bad
        s["alive"][:slots] = False  # the first group: nobody live
        want = np.min(s["price"].reshape(-1, slots), axis=1, initial=np.inf,
                      where=s["alive"].reshape(-1, slots))
        got = model._live_minima()
        assert got.dtype == want.dtype and np.isinf(got[0])
        np.testing.assert_array_equal(got, want)


class _Raised(Exception):
    pass


def test_prompt_rule_is_clear_after_a_day_that_raised(rulebook_set, monkeypatch) -> None:
    """The rows the observations armed are reset even when a later decision of the prompts
    raises (say, a rulebook error), not only when the day ends as usual."""
    sc = load_scenario(TINY).with_values(BUSY)
    model = Model(rulebook_set, sc, [replication_seed(2, 0), replication_seed(2, 1)])
    book = model.books["auto_follow"]
    decide = book.decide

    def failing(event_type, scope, n):
        if event_type in ("listing_updated", "prompt_dismissed") and (
                model.s["prompt_rule"] != -1).any():
            raise _Raised(event_type)
        return decide(event_type, scope, n)

    monkeypatch.setattr(book, "decide", failing)
    raised = 0
    for day in range(60):
        try:
            model.step(day)
        except _Raised:
            raised += 1
        assert (model.s["prompt_rule"] == -1).all()
    assert raised


def test_prompts_left_open_by_a_day_that_raised_are_found_again(rulebook_set,
                                                                monkeypatch) -> None:
    """When a decision on the open prompts raises, the prompts left open are looked at the
    next day as a pass over every merchant would find them: the runs that record the
    merchants and that scan them go on alike."""
    sc = load_scenario(TINY).with_values(BUSY)
    runs = []
    for track in (True, False):
        model = Model(rulebook_set, sc, [replication_seed(2, 0)])
        model._track_rows = track
        book = model.books["auto_follow"]
        calls = [0]

        def failing(event_type, scope, n, decide=book.decide, calls=calls):
            if event_type == "prompt_dismissed":  # the 2nd and the 5th day's dismissals
                calls[0] += 1
                if calls[0] in (2, 5):
                    raise _Raised(event_type)
            return decide(event_type, scope, n)

        monkeypatch.setattr(book, "decide", failing)
        flows, raised = [], 0
        for day in range(30):
            try:
                fl = model.step(day)
            except _Raised:
                raised += 1
                continue
            flows.append({k: getattr(fl, k).copy() for k in fl.__dataclass_fields__})
        assert raised == 2
        runs.append((model.s, flows))
    assert_identical(*runs)


@pytest.mark.parametrize("seed", range(6))
def test_observers_are_the_live_merchants_of_the_observed_groups(rulebook_set, seed) -> None:
    """`Model._observers` walks the observed groups' seller ranges only; it must find what
    `flatnonzero(alive & observed[group])` finds, in the same order, with each one's group
    price, whichever groups fell (none, some, all) and whoever is dead; the rows a scope
    reads them at are a slice of the same rows when they are one group's whole range."""
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
            obs, comp, where = model._observers(observed)
            expected = np.flatnonzero(s["alive"] & observed[s["group"]])
            np.testing.assert_array_equal(obs, expected)
            np.testing.assert_array_equal(comp, model.web[s["group"][expected]])
            assert obs.dtype == expected.dtype and comp.dtype == np.float64
            if isinstance(where, slice):
                np.testing.assert_array_equal(np.arange(model.n)[where], expected)
            else:
                assert where is obs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_observers_read_as_views_change_no_bit(rulebook_set, dtype) -> None:
    """Observers that are one group's whole range of sellers read through views of the state
    (`Model._observers`' slice) give the state and flows the gathered rows give, with
    merchants dying and entering (most days' observers are then a gathered group)."""
    for values in ({}, BUSY):
        sc = load_scenario(TINY).with_values(values)
        views = run_days(rulebook_set, sc, 60, dtype, 2)
        gathered = run_days(rulebook_set, sc, 60, dtype, 2,
                            prepare=lambda model: setattr(model, "_observer_views", False))
        assert_identical(views, gathered)
        assert any(day["prompts"].sum() for day in views[1])


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


def test_a_later_deadline_in_a_batch_that_came_due_still_falls_due(rulebook_set) -> None:
    """Two merchants armed in one batch, due half a day and two and a half days on: the
    second's deadline falls due on its own day (as the pass over every merchant finds it),
    not lost when the batch's earliest came due."""
    runs = []
    for track in (True, False):
        model, _, T, pos = _three_days_on(rulebook_set, track, seed=2)
        s = model.s
        # Two merchants outside auto-follow: nothing arms them again on days 3-4, whatever
        # the draws (an enrolled one may be given a deadline of its own meanwhile).
        m = np.flatnonzero(s["alive"] & ~s["enrolled"])[:2]
        assert m.size == 2
        model._set_deadlines(m, np.ones(2, dtype=bool), np.array([0.5, 2.5]) * 86400.0,
                             -np.inf, pos, T, np.array([2.0, 2.0]))
        model.step(3)
        model.step(4)
        assert not np.isfinite(s["dl_due"][m[0]]) and s["dl_due"][m[1]] == T + 2.5 * 86400.0
        flows = [model.step(day) for day in range(5, 8)]
        assert not np.isfinite(s["dl_due"][m[1]]) or s["dl_due"][m[1]] > T + 2.5 * 86400.0
        runs.append((s, [{k: getattr(f, k).copy() for k in f.__dataclass_fields__}
                         for f in flows]))
    assert_identical(*runs)


def test_positions_are_distincts_positions() -> None:
    """`_positions` gives the rule positions `_distinct` finds among those that are not -1
    (a position beyond the rules by `_distinct` too), and says when every rule has the one
    position found."""
    rng = np.random.default_rng(7)
    for values, count in (([-1, 0, 2, 4], 5), ([3], 5), ([-1, 3], 5), ([-1, 1, 7], 5)):
        for size in (0, 1, 50, 500):
            rules = np.array(values, dtype=np.int16)[rng.integers(0, len(values), size)]
            positions, every = _positions(rules, count)
            assert list(positions) == list(_distinct(rules[rules >= 0]))
            assert every == (len(positions) == 1 and bool((rules == positions[0]).all()))
