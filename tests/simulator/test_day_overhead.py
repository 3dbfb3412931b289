"""The day's bookkeeping found once (per run or per month) gives what working it out each
day gave: the month's periods, the rule positions, the claim events' keys, distinct rule
positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set
from simulator import kernels
from simulator import model as model_module
from simulator.model import Model, _Claims, _distinct
from simulator.run import replication_seed
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "rules" / "books"
TINY = ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml"


@pytest.fixture(scope="module", params=["lowprice-2024", "reformed-2025"])
def model(request: pytest.FixtureRequest) -> Model:
    return Model(load_set(BOOKS / request.param), load_scenario(TINY),
                 [replication_seed(5, 0)])


@pytest.mark.parametrize("values", [
    np.array([], dtype=np.int16),
    np.array([2], dtype=np.int16),
    np.array([3, 1, 3, 0, 1], dtype=np.int16),
    np.arange(200, dtype=np.int16) % 7,  # (past the few values Python's set takes)
    np.array([5, -1, 5], dtype=np.int32),
])
def test_distinct_positions_are_numpys_unique(values: np.ndarray) -> None:
    assert [int(v) for v in _distinct(values)] == np.unique(values).tolist()


def test_periods_kept_for_a_month_are_the_calendars(model: Model) -> None:
    # Across month and year ends, asked in order, out of order and again (the same month
    # of two years in a row included).
    days = [*range(0, 400), 31, 5, 399, 0, 364, 365, 0, 365, 366, 1]
    for day in days:
        assert model._periods(day) == model.calendar.periods(day)


def test_periods_follow_a_new_calendar(model: Model) -> None:
    model._periods(3)
    old = model.calendar
    try:
        model.calendar = type(old)(old.start.replace(year=old.start.year + 1), "UTC")
        assert model._periods(3) == model.calendar.periods(3)
    finally:
        model.calendar = old
    assert model._periods(3) == old.periods(3)


def test_rule_positions_are_the_rule_order(model: Model) -> None:
    for family, book in model.books.items():
        for event_type in getattr(book, "event_types", ()):
            positions = model._rule_positions(book, event_type)
            assert positions == tuple((rid, book.rule_ids.index(rid))
                                      for rid in book.rules_for(event_type)), family
            assert model._rule_positions(book, event_type) is positions  # kept


def test_event_reads_say_which_literal_fields_are_read(model: Model) -> None:
    book = model.books["auto_follow"]
    reads = book.reads("auto_follow_toggled")
    names = ("listing_id", "enrolled", "steps", "verified", "via")
    only, read = model._event_reads(book, "auto_follow_toggled", names)
    assert only == (reads <= {f"event.{k}" for k in names})
    assert read == tuple(sorted(k for k in names if f"event.{k}" in reads))
    # A shape missing a field the rules read is not one they read alone.
    assert model._event_reads(book, "auto_follow_toggled", ("listing_id",))[0] == (
        reads <= {"event.listing_id"})


def test_claim_shapes_are_the_keys_worked_out_afresh(model: Model) -> None:
    model.step(0)
    book = _Claims(model, model.blocks[0], model.calendar.time(1))
    for event_type, status, decision in (
            ("refund_requested", "requested", None),
            ("merchant_responded", "awaiting_merchant", "reject"),
            ("platform_intervened", "awaiting_merchant", None),
            ("platform_intervened", "rejected", None)):
        for valid in (True, False):
            for intervened in (True, False):
                reads = book.book.reads(event_type)
                sees = "order.evidence_valid" in reads or "event.evidence_valid" in reads
                alike = book._status_alike(event_type, status)
                want = ((event_type, valid if sees else None, alike, decision, intervened),
                        reads <= model_module._CLAIM_LITERALS)
                assert book._shape(event_type, valid, status, decision, intervened) == want


@pytest.mark.parametrize("values", [
    np.array([]),
    np.array([2.5, 0.0, -0.0, 1e300]),
    np.array([np.inf, -np.inf, 3.0]),
    np.array([1.0, np.nan, 2.0]),
    np.array([np.nan, np.nan]),
    np.arange(300.0) / 7,
])
def test_claim_columns_say_what_is_known_as_the_mask_did(values: np.ndarray) -> None:
    """`_column` finds NaN by one reduction: the known mask (or the one 0-d True) of
    ``~np.isnan``, tested whole, as before."""
    known = ~np.isnan(values)
    column = model_module._column(values)
    assert column.values is values
    if known.all():
        assert np.ndim(column.known) == 0 and bool(column.known)
    else:
        assert np.array_equal(column.known, known)


@pytest.mark.parametrize(("offset", "size"), [(0, 6), (0, 4), (2, 4), (5, 1)])
def test_plan_rows_cut_each_stage_as_before(offset: int, size: int) -> None:
    """`_plan_rows` cuts the stages' per-row rules (int32 arrays over the span) to the stretch
    and leaves one rule for every row (an int) and the tables as they are."""
    rules = (np.arange(6, dtype=np.int32), 3, np.arange(6, dtype=np.int32)[::-1].copy(), -1,
             np.full(6, 2, dtype=np.int32), 0)
    plan = model_module._DayPlan(*rules, *kernels.refund_stages(
        np.zeros((8, 4), dtype=np.int64), np.zeros((9, 3)), np.zeros(5, dtype=bool), rules))
    got = model_module._plan_rows(plan, offset, size)
    for rule, cut in zip(rules, got[:6], strict=True):
        if np.ndim(rule) == 0:
            assert cut is rule
        else:
            assert np.array_equal(cut, rule[offset:offset + size])
    assert all(a is b for a, b in zip(got[6:], plan[6:], strict=True))
    single = (3, 0, 1, 2, 0, 0)
    uniform = model_module._DayPlan(*single, *kernels.refund_stages(
        np.zeros((8, 4), dtype=np.int64), np.zeros((9, 3)), np.zeros(5, dtype=bool), single))
    assert model_module._plan_rows(uniform, offset, size) is uniform


def test_changes_trim_to_the_earliest_living_reader() -> None:
    """`_Changes._caught_up` reads the weak set's references: the least day of the readers
    alive and brought up to date once; the day itself without any."""
    changes = model_module._Changes(["price"])

    class Reader:
        def __init__(self, day: int | None) -> None:
            self.day = day

    assert changes._caught_up(9) == 9
    readers = [Reader(4), Reader(None), Reader(6)]
    for reader in readers:
        changes.users.add(reader)
    assert changes._caught_up(9) == 4
    del readers[0]  # the earliest reader is freed: it drops out
    assert changes._caught_up(9) == 6
