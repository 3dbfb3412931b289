"""Behaviours of the daily model that follow from the rulebooks and the scenario."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set, load_set_from_texts
from simulator.model import Model
from simulator.run import project, replication_seed
from simulator.scenario import load_scenario
from tests.simulator.model_runs import assert_same_bits, run_days

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "rules" / "books"
TINY = ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml"


@pytest.fixture(scope="module")
def lowprice():
    return load_set(BOOKS / "lowprice-2024")


@pytest.fixture(scope="module")
def reformed():
    return load_set(BOOKS / "reformed-2025")


def _min_price_over_cost(rulebook_set, sc, days: int, seed: int = 3) -> float:
    """The lowest price / unit cost any live listing had at the end of any day."""
    model = Model(rulebook_set, sc, [replication_seed(seed, 0), replication_seed(seed, 1)])
    lowest = np.inf
    for day in range(days):
        model.step(day)
        a = model.s["alive"]
        if a.any():
            lowest = min(lowest, float((model.s["price"][a] / model.s["unit_cost"][a]).min()))
    return lowest


def test_prices_go_below_cost_only_through_auto_follow(lowprice) -> None:
    sc = load_scenario(TINY)
    assert _min_price_over_cost(lowprice, sc, 120) < 1.0  # followed below unit cost
    nobody_enrolled = sc.with_values({"auto_follow.enrolled_share": 0.0,
                                      "auto_follow.accidental_enrol_probability": 0.0})
    assert _min_price_over_cost(lowprice, nobody_enrolled, 120) >= 1.0
    p = project(lowprice, nobody_enrolled, 60, 2, seed=3)
    assert np.nansum(p.series["below_cost_sales_share"]) == 0.0
    assert np.nansum(p.series["prompts_per_merchant"]) == 0.0


def test_reformed_auto_follow_never_forces_a_price_below_cost(reformed) -> None:
    sc = load_scenario(TINY).with_values({"auto_follow.enrolled_share": 1.0,
                                          "auto_follow.follow_probability": 0.0,
                                          "auto_follow.follow_probability_step": 0.0,
                                          "auto_follow.dismiss_probability": 0.0})
    model = Model(reformed, sc, [replication_seed(4, 0)])
    forced = 0.0
    for day in range(90):
        flows = model.step(day)
        forced += flows.forced_follows.sum()
        a = model.s["alive"]
        assert (model.s["price"][a] >= model.s["unit_cost"][a] * (1 - 1e-6)).all()
    assert forced > 0  # the deadline did move prices, to cost at the lowest


def test_the_price_cliff_shows_in_exposure(lowprice) -> None:
    """9.9 yuan at most 70 % of the sign-up price gets the channel; 10.0 yuan does not."""
    sc = load_scenario(TINY)
    model = Model(lowprice, sc, [replication_seed(1, 0)], dtype=np.float64)
    s = model.s
    millet = model.layout.groups.index("millet")
    sl = slice(millet * model.layout.slots, millet * model.layout.slots + 6)
    s["scale"][sl] = 1.0
    s["promo"][sl] = 15.0
    s["price"][sl] = [9.9, 10.0, 12.0, 12.5, 13.0, 13.5]
    T = model.calendar.time(0)
    exposure = model.exposure(T)[sl]
    share = sc.model.groups[millet].channel_impressions_share.value
    organic_top = exposure[1]  # the best ranked without the channel
    assert exposure[0] > organic_top + 0.9 * 1_000_000 * share
    s["price"][sl] = [10.0, 9.9, 12.0, 12.5, 13.0, 13.5]
    swapped = model.exposure(T)[sl]
    assert swapped[1] > swapped[0] + 0.9 * 1_000_000 * share
    # The rest of the group is ranked by price: exposure falls with rank.
    assert (np.diff(exposure[1:]) < 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channels_are_skipped_only_while_none_is_positive(lowprice, dtype: type) -> None:
    """Exposure reads and writes the channels only while some listing may be admitted
    (`Model._channels`): as a listing is admitted to the 9.9 channel, dropped from it and
    admitted again, the exposure is bit for bit the one of a model that handles the
    channels every time, and the skipping starts again once no channel is positive."""
    sc = load_scenario(TINY)
    models = [Model(lowprice, sc, [replication_seed(1, 0)], dtype=dtype) for _ in range(2)]
    millet = models[0].layout.groups.index("millet")
    sl = slice(millet * models[0].layout.slots, millet * models[0].layout.slots + 6)
    T = models[0].calendar.time(0)
    seen = []
    for prices in ([12.0, 10.0, 12.0, 12.5, 13.0, 13.5], [9.9, 10.0, 12.0, 12.5, 13.0, 13.5],
                   [10.0, 10.0, 12.0, 12.5, 13.0, 13.5], [10.0, 10.0, 12.0, 12.5, 13.0, 13.5],
                   [10.0, 9.9, 12.0, 12.5, 13.0, 13.5]):
        got = []
        for always, model in zip((False, True), models, strict=True):
            model.s["promo"][sl] = 15.0
            model.s["price"][sl] = prices
            if always:
                model._channels = True  # the channels written and read every time
            got.append(model.exposure(T).copy())
        assert np.array_equal(got[0].view(np.uint64), got[1].view(np.uint64))
        seen.append(models[0]._channels)
    assert seen == [False, True, False, False, True]


def test_exit_after_a_run_of_loss_days(lowprice) -> None:
    """With fixed costs far above revenue and ample cash, everyone leaves on the Nth loss day."""
    n_days = 6
    sc = load_scenario(TINY).with_values({
        "exit.loss_days": n_days,
        **{f"tiers.{t}.fixed_cost_share": 5.0 for t in ("small", "medium", "large")},
        **{f"tiers.{t}.cash_buffer_days": 1000.0 for t in ("small", "medium", "large")},
    })
    p = project(lowprice, sc, 10, 1, seed=2)
    alive = p.series["share_alive"][0]
    assert (alive[: n_days - 1] == 1.0).all()
    assert (alive[n_days - 1:] == 0.0).all()


def test_quality_cuts_raise_claims_and_cut_conversion(lowprice) -> None:
    sc = load_scenario(TINY).with_values({"adaptation.probability": 0.0,
                                          "auto_follow.enrolled_share": 0.0,
                                          "auto_follow.accidental_enrol_probability": 0.0})
    full = Model(lowprice, sc, [replication_seed(8, 0)], dtype=np.float64)
    cut = Model(lowprice, sc, [replication_seed(8, 0)], dtype=np.float64)
    cut.s["quality"][:] = 0.5
    orders = {"full": 0.0, "cut": 0.0}
    refunds = {"full": 0.0, "cut": 0.0}
    for day in range(20):
        for name, model in (("full", full), ("cut", cut)):
            flows = model.step(day)
            orders[name] += flows.orders.sum()
            refunds[name] += flows.refund.sum()
    assert orders["cut"] < 0.7 * orders["full"]
    # Fewer orders, yet at least as much refund burden: claims per order rose.
    assert refunds["cut"] / orders["cut"] > 1.3 * refunds["full"] / orders["full"]


def test_a_set_without_some_families_still_runs(lowprice) -> None:
    ranking_only = load_set_from_texts("ranking-only", {
        "ranking.yaml": (BOOKS / "lowprice-2024" / "ranking.yaml").read_text()})
    p = project(ranking_only, load_scenario(TINY), 20, 1, seed=1)
    assert np.nansum(p.series["take_rate"]) == 0.0  # no commission rulebook, no fees
    assert np.nansum(p.series["refund_burden_ratio"]) == 0.0  # no refund rules: nothing granted
    assert np.nansum(p.series["prompts_per_merchant"]) == 0.0
    assert p.series["gmv"].min() > 0


def test_float32_default_tracks_float64_closely(lowprice) -> None:
    sc = load_scenario(TINY)
    a = project(lowprice, sc, 30, 1, seed=6)
    b = project(lowprice, sc, 30, 1, seed=6, dtype=np.float64)
    np.testing.assert_allclose(a.series["gmv"], b.series["gmv"], rtol=0.05)
    assert a.meta["dtype"] == "float32" and b.meta["dtype"] == "float64"


def test_appeals_are_blocked_after_failures_under_lowprice_only(lowprice, reformed) -> None:
    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3, "appeals.propensity": 1.0,
                                          "appeals.automated_success": 0.0})
    for rulebook_set, blocked_expected in ((lowprice, True), (reformed, False)):
        model = Model(rulebook_set, sc, [replication_seed(2, 0)])
        attempted = won = 0.0
        for day in range(20):
            flows = model.step(day)
            attempted += flows.appeals_attempted.sum()
            won += flows.appeals_won.sum()
            s = model.s
            # Accepted appeals never exceed the quota; failures past 3 block until next month.
            assert (s["appeals_filed_month"] <= 30).all()
        _, _, next_month, _ = model.calendar.periods(19)
        blocked = model.s["appeal_blocked_until"] == next_month
        if blocked_expected:
            assert attempted > 0 and won == 0.0  # automated review upholds none
            assert blocked.any()
            assert (model.s["appeals_failed_month"][blocked] > 3).all()
        else:
            assert not blocked.any()


@pytest.mark.parametrize("book", ["lowprice", "reformed"])
def test_no_stage_writes_the_promotion_price(book, request) -> None:
    """The kept decisions and the ranking's changed listings leave `promo` out of their day
    to day comparisons (`simulator.model._UNWRITTEN_STATE`): no stage may write it, through
    prompts, deadlines, repricing, exit or entry."""
    import simulator.model as model_module

    assert frozenset({"promo"}) == model_module._UNWRITTEN_STATE
    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3, "appeals.propensity": 1.0,
                                          "exit.entry_probability": 0.2})
    model = Model(request.getfixturevalue(book), sc,
                  [replication_seed(6, 0), replication_seed(6, 1)])
    promo = model.s["promo"].copy()
    entered = forced = 0.0
    for day in range(120):
        alive = model.s["alive"].copy()
        forced += float(model.step(day).forced_follows.sum())
        entered += float((model.s["alive"] & ~alive).sum())
        assert model.s["promo"].tobytes() == promo.tobytes(), day
    assert entered > 0  # entry ran
    if book == "lowprice":
        assert forced > 0  # auto-follow moved prices


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_size_does_not_change_a_single_bit(lowprice, monkeypatch, dtype) -> None:
    """Per-merchant stages run block by block for the CPU cache; blocks of 5 merchants (most
    blocks then hold parts of several product groups and of both replications) must give the
    state and flows of one block holding everyone."""
    import simulator.model as model_module

    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3, "appeals.propensity": 1.0,
                                          "exit.entry_probability": 0.1})
    seeds = [replication_seed(4, 0), replication_seed(4, 1)]
    runs = []
    for block in (1 << 20, 5):
        monkeypatch.setattr(model_module, "_BLOCK", block)
        model = Model(lowprice, sc, seeds, dtype=dtype)
        flows = [model.step(day) for day in range(40)]
        runs.append((model, flows))
    (a, fa), (b, fb) = runs
    for name in a.s:
        np.testing.assert_array_equal(a.s[name], b.s[name], err_msg=name)
    for x, y in zip(fa, fb, strict=True):
        for name in x.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
    assert sum(float(f.appeals_attempted.sum()) for f in fa) > 0


@pytest.mark.parametrize("book", ["lowprice", "reformed"])
def test_shared_claim_decisions_change_no_bit(book, request, monkeypatch) -> None:
    """Claim decisions and due deadlines that read only a claim's literal fields are made
    once per block size and reused by every block and day: a model that decides them again
    over every block must give the same state and flows, bit for bit."""
    import simulator.model as model_module

    rulebook_set = request.getfixturevalue(book)
    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3, "appeals.propensity": 1.0,
                                          "exit.entry_probability": 0.1})
    seeds = [replication_seed(6, 0), replication_seed(6, 1)]
    runs = []
    for shared in (True, False):
        if not shared:
            monkeypatch.setattr(model_module, "_CLAIM_LITERALS", frozenset())
        model = Model(rulebook_set, sc, seeds, dtype=np.float64)
        flows = [model.step(day) for day in range(40)]
        runs.append((model, flows))
    (a, fa), (b, fb) = runs
    assert len(b._claim_constants) < len(a._claim_constants)  # fewer shared: nothing read
    for name in a.s:
        np.testing.assert_array_equal(a.s[name], b.s[name], err_msg=name)
    for x, y in zip(fa, fb, strict=True):
        for name in x.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
    assert sum(float(f.refund.sum()) for f in fa) > 0


#: A refund rulebook whose intervention rules read the evidence (the classes' intervention
#: decisions then differ: each class is routed on its own).
EVIDENCE_INTERVENTION = (ROOT / "tests" / "fixtures" / "rulebooks"
                         / "refund_evidence_intervention.yaml")


def _evidence_intervention_set():
    files = {p.name: p.read_text() for p in (BOOKS / "lowprice-2024").glob("*.yaml")}
    files["refund.yaml"] = EVIDENCE_INTERVENTION.read_text()
    return load_set_from_texts("evidence-intervention", files)


@pytest.mark.parametrize("book", ["lowprice", "reformed", "evidence"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_evidence_classes_in_shared_passes_change_no_bit(book, dtype, request,
                                                              monkeypatch) -> None:
    """Both evidence classes' claims are counted and split in one pass, and intervened on
    and let lapse in shared grant passes, where their decisions allow it (one decision for
    both classes, one grant at literal arguments): routing one class at a time must give the
    same state and flows, bit for bit. With intervention rules that read the evidence, the
    classes are routed one at a time."""
    from simulator import model as model_module

    rulebook_set = (_evidence_intervention_set() if book == "evidence"
                    else request.getfixturevalue(book))
    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3, "appeals.propensity": 1.0,
                                          "refunds.intervention_share": 0.5})
    shared = {True: 0, False: 0}
    route_both = model_module._Claims._route_both

    def counting(self, dec, counts, final):
        done = route_both(self, dec, counts, final)
        shared[done] += 1
        return done

    monkeypatch.setattr(model_module._Claims, "_route_both", counting)

    def path(fused: bool) -> Callable[[Model], None]:
        def prepare(model: Model) -> None:
            model._fused_claims = fused
            model._fused_day = False  # the stages one at a time (the day in one pass: see there)
        return prepare

    assert_same_bits(*(run_days(rulebook_set, sc, 40, dtype, 8, prepare=path(fused))
                       for fused in (True, False)))
    if book == "lowprice":
        assert shared[True] > 0  # both classes' interventions booked in one pass
    if book == "evidence":
        assert shared == {True: 0, False: 0}  # the classes' decisions differ


@pytest.mark.parametrize("book", ["lowprice", "reformed", "evidence"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_refund_day_over_the_span_of_the_blocks_is_the_day_block_by_block(
        book, dtype, request, monkeypatch) -> None:
    """The refund day decided once over the span of all the blocks (the padding between
    them included) and booked in one compiled pass per stretch of adjoining blocks gives
    the state and flows of the blocks routed one by one, bit for bit; where the span's
    day cannot take that pass, the blocks are routed one by one."""
    import simulator.model as model_module

    monkeypatch.setattr(model_module, "_BLOCK", 6)
    rulebook_set = (_evidence_intervention_set() if book == "evidence"
                    else request.getfixturevalue(book))
    sc = load_scenario(TINY).with_values({
        "refunds.claim_rate": 0.3, "appeals.propensity": 1.0,
        "refunds.intervention_share": 0.5, "groups.0.sellers": 3, "groups.2.sellers": 4})
    booked: list[tuple[int, int]] = []
    book_day = model_module.Model._book_refund_day

    def counting(self, rows, *args):
        booked.append((rows.start, rows.stop))
        return book_day(self, rows, *args)

    monkeypatch.setattr(model_module.Model, "_book_refund_day", counting)

    def by_blocks(model: Model) -> None:
        assert model._refund_span is not None and len(model._refund_span[1]) > 1
        model._refund_span = None

    together = run_days(rulebook_set, sc, 40, dtype, 8)
    spans = set(booked)
    booked.clear()
    alone = run_days(rulebook_set, sc, 40, dtype, 8, prepare=by_blocks)
    assert_same_bits(together, alone)
    blocks = set(booked)
    if book != "evidence":  # (its classes' interventions differ: no day in one pass)
        assert spans and blocks and spans != blocks
        assert any(hi - lo > 6 for lo, hi in spans)  # stretches of several blocks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_commission_for_everyone_at_once_is_commission_block_by_block(lowprice, monkeypatch,
                                                                        dtype) -> None:
    """Commission and ads are decided and charged over all the blocks at once (in one
    compiled pass, `simulator.charge_rules`, over the blocks; through the numpy target over
    the span, the padding slots between them included, never alive, charged nothing): block
    by block, through the numpy target, they come out the same."""
    import simulator.model as model_module

    monkeypatch.setattr(model_module, "_BLOCK", 6)
    sc = load_scenario(TINY).with_values({"auto_follow.enrolled_share": 0.8,
                                          "groups.0.sellers": 3, "groups.2.sellers": 4})
    model = Model(lowprice, sc, [replication_seed(5, 0), replication_seed(5, 1)], dtype=dtype)
    assert len(model.blocks) > 2 and model._gaps  # padding between the blocks
    for day in range(30):
        fl = model.step(day)
        T = model.calendar.time(day)
        whole = (fl.commission.copy(), fl.ads.copy(), fl.fees.copy())
        fl.commission[:], fl.ads[:], fl.fees[:] = 0.0, 0.0, 0.0
        for rows in model.blocks:
            model._demand(rows, T, fl, model._scratch["ad_clicks"])
        for a, b in zip(whole, (fl.commission, fl.ads, fl.fees), strict=True):
            assert a.tobytes() == b.tobytes(), day
        assert whole[0].sum() > 0 and whole[1].sum() > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recycled_flows_keep_zeros_outside_the_blocks(lowprice, monkeypatch, dtype) -> None:
    """Flows handed back are not zeroed again outside the blocks: no stage writes anything
    but +0.0 there, so every later day's flows and state are those new arrays give, and the
    padding slots between the blocks hold +0.0 in every flow."""
    import simulator.model as model_module
    from simulator.model import ADDED_FLOWS, DayFlows

    monkeypatch.setattr(model_module, "_BLOCK", 6)
    sc = load_scenario(TINY).with_values({"auto_follow.enrolled_share": 0.8,
                                          "groups.0.sellers": 3, "groups.2.sellers": 4})
    seeds = [replication_seed(5, 0), replication_seed(5, 1)]
    fresh, recycled = (Model(lowprice, sc, seeds, dtype=dtype) for _ in range(2))
    assert len(recycled.blocks) > 2 and recycled._gaps  # padding between the blocks
    outside = np.ones(recycled.n, dtype=bool)
    for b in recycled.blocks:
        outside[b] = False
    first = None
    for day in range(30):
        want, got = fresh.step(day), recycled.step(day)
        first = got if first is None else first
        assert got is first  # the same arrays every day
        for k in DayFlows.__dataclass_fields__:
            assert getattr(got, k).tobytes() == getattr(want, k).tobytes(), (day, k)
            assert getattr(got, k)[outside].tobytes() == bytes(8 * outside.sum()), (day, k)
        for key, value in fresh.s.items():
            if isinstance(value, np.ndarray):
                assert value.tobytes() == recycled.s[key].tobytes(), (day, key)
        for k in ADDED_FLOWS:
            getattr(got, k).fill(0.0)
        recycled.recycle_flows(got, ADDED_FLOWS)


def test_demand_spans_the_rows_from_the_first_block_row_to_the_last(lowprice,
                                                                    monkeypatch) -> None:
    import simulator.model as model_module

    monkeypatch.setattr(model_module, "_BLOCK", 6)
    sc = load_scenario(TINY).with_values({"groups.0.sellers": 3, "groups.2.sellers": 4})
    model = Model(lowprice, sc, [replication_seed(5, 0), replication_seed(5, 1)])
    in_block = np.zeros(model.n, dtype=bool)
    for b in model.blocks:
        in_block[b] = True
    assert not in_block.all()  # padding slots between the blocks
    for lo, hi in itertools.combinations(range(model.n + 1), 2):
        rows = np.flatnonzero(in_block[lo:hi]) + lo
        span = model._span(slice(lo, hi))
        if not rows.size:
            assert span is None
        else:
            assert (span.start, span.stop) == (rows[0], rows[-1] + 1)


def test_ad_clicks_said_known_charge_as_the_clicks_themselves(lowprice) -> None:
    """`_orders` tells `_demand` when the blocks' ad clicks have no NaN (the rulebook then
    skips its scan): the charges are those of the plain clicks; a NaN click (a NaN revenue,
    which stays) withdraws the word."""
    sc = load_scenario(TINY).with_values({"groups.0.sellers": 3, "groups.2.sellers": 4})
    model = Model(lowprice, sc, [replication_seed(6, 0)])
    model._compiled_charges = False  # (the numpy path, which the word spares a scan)
    for day in range(12):
        if day == 7:
            model.s["last_revenue"][model.blocks[0].start] = np.nan
        fl = model.step(day)
        clicks = np.concatenate([model._scratch["ad_clicks"][b] for b in model.blocks])
        assert (model._clicks_known is None) == (day >= 7) == np.isnan(clicks).any()
        T = model.calendar.time(day)
        told = (fl.commission.copy(), fl.ads.copy(), fl.fees.copy())
        fl.commission[:], fl.ads[:], fl.fees[:] = 0.0, 0.0, 0.0
        model._clicks_known = None
        model._demand(slice(0, model.n), T, fl, model._scratch["ad_clicks"])
        for a, b in zip(told, (fl.commission, fl.ads, fl.fees), strict=True):
            assert a.tobytes() == b.tobytes(), day
        assert told[1].sum() > 0


def test_a_days_claim_books_and_a_finished_model_are_freed_without_the_collector(
        lowprice) -> None:
    """Nothing the model keeps from day to day (kept decisions and their views) refers back
    to a day's claim book or to the model, and the book refers to itself nowhere: their
    arrays are freed as soon as they are done with, not when the garbage collector runs
    (until then every day's arrays would take fresh memory)."""
    import gc
    import weakref

    from simulator.model import _Claims

    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3})
    gc.collect()
    gc.disable()
    try:
        model = Model(lowprice, sc, [replication_seed(2, 0), replication_seed(2, 1)])
        model._keep_from = 0  # (kept at the tiny scenario's size too)
        for day in range(10):
            model.step(day)
        assert model._kept and any(k is not None for k in model._kept.values())
        # type(), not isinstance(): a weak proxy whose object is gone (numba keeps some)
        # raises ReferenceError when isinstance() asks it for its class.
        assert not [o for o in gc.get_objects() if type(o) is _Claims]
        gone = weakref.ref(model)
        del model
        assert gone() is None
    finally:
        gc.enable()


def test_a_run_in_chunks_builds_each_chunks_model_after_the_last_is_freed(
        lowprice, monkeypatch) -> None:
    """Replications run in chunks (`project(..., chunk=1)`): when a chunk's model is built,
    the previous chunk's is gone already (freed by reference counting, the collector off),
    so a run's peak holds one chunk's model, not two."""
    import gc
    import weakref

    from simulator import run

    built: list[weakref.ref[Model]] = []
    alive_when_built: list[int] = []

    class Tracked(Model):
        def __init__(self, *args: object, **kwargs: object) -> None:
            alive_when_built.append(sum(ref() is not None for ref in built))
            super().__init__(*args, **kwargs)
            built.append(weakref.ref(self))

    monkeypatch.setattr(run, "Model", Tracked)
    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3})
    gc.collect()
    gc.disable()
    try:
        project(lowprice, sc, 4, 3, 5, chunk=1)
    finally:
        gc.enable()
    assert alive_when_built == [0, 0, 0]
    assert all(ref() is None for ref in built)


def test_a_dropped_model_frees_its_kept_decisions_without_the_collector(lowprice) -> None:
    """Kept decisions refer to the change history they share, which holds them only weakly:
    dropping the model frees their full-population arrays at once (not at the collector's
    next full pass), and a run leaves none of them behind for the next run's arrays to work
    around."""
    import gc
    import weakref

    from simulator.model import _Changes, _KeptDecisions

    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3})
    gc.collect()
    gc.disable()
    try:
        model = Model(lowprice, sc, [replication_seed(2, 0), replication_seed(2, 1)])
        for day in range(10):
            model.step(day)
        kept = [weakref.ref(k) for k in model._kept.values() if k is not None]
        changes = [weakref.ref(k.changes) for k in model._kept.values() if k is not None]
        assert kept and all(k() in k().changes.users for k in kept)
        del model
        assert all(k() is None for k in kept) and all(c() is None for c in changes)
        project(lowprice, sc, 5, 2, 3)
        project(lowprice, sc, 5, 2, 3, chunk=1)
        assert not [o for o in gc.get_objects() if type(o) in (_KeptDecisions, _Changes)]
    finally:
        gc.enable()


def test_two_rulebook_sets_on_one_seed_draw_the_same_numbers_each_day(lowprice, reformed,
                                                                      monkeypatch) -> None:
    """What a what-if's pairs rest on: on the same seeds, the two sets' merchants draw the same
    numbers every day, however differently many of them appeal (their draws have their own
    lanes) or leave."""
    from simulator import model as model_module

    seen: dict[int, list[np.ndarray]] = {}
    day_draws = model_module.day_draws

    def recorded(rng, lanes, layout):
        got = day_draws(rng, lanes, layout)
        seen.setdefault(id(lanes), []).append(got.merchant.copy())
        return got

    monkeypatch.setattr(model_module, "day_draws", recorded)
    sc = load_scenario(TINY).with_values({"appeals.propensity": 1.0})
    attempted = []
    for rulebook_set in (lowprice, reformed):
        model = Model(rulebook_set, sc, [replication_seed(6, 0)])
        attempted.append(sum(float(model.step(day).appeals_attempted.sum()) for day in range(40)))
    a, b = seen.values()
    assert attempted[0] != attempted[1]  # the appeals differed
    assert len(a) == len(b) == 40
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.view(np.uint32), y.view(np.uint32))
