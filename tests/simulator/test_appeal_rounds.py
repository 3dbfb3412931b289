"""The fused appeal rounds (`simulator.appeal_rounds`) against the numpy path they replace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set_from_texts
from simulator import appeal_rounds, fixed_programs
from simulator.appeal_rounds import AppealRounds
from simulator.model import Model
from simulator.run import replication_seed
from simulator.scenario import load_scenario
from tests.simulator.model_runs import (
    BOOKS,
    FIXTURE_BOOKS,
    TINY,
    Run,
    assert_identical,
    run_days,
    with_rulebook,
)

MIXED = FIXTURE_BOOKS / "appeal_mixed.yaml"


def _with_appeals(base: str, appeal_yaml: str):
    return with_rulebook(base, "appeal", appeal_yaml)


def _run(rulebook_set, scenario, days: int, fused: bool, dtype, compiled: bool = True) -> Run:
    def prepare(model: Model) -> None:
        rounds = model._appeal_rounds
        assert rounds is not None
        model._fused_appeals = fused
        if not compiled:
            rounds.filed_program = None
        elif fused:
            assert rounds.filed_program is not None

    return run_days(rulebook_set, scenario, days, dtype, seed=5, prepare=prepare)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("appeals", ["lowprice-2024", "reformed-2025"])
def test_fused_rounds_give_the_numpy_paths_bits(appeals: str, dtype: type) -> None:
    # reformed-2025 grants no refund without evidence, so nobody there appeals: its appeal
    # rules (human review on request) run beside lowprice-2024's refund rules.
    rulebook_set = _with_appeals("lowprice-2024", (BOOKS / appeals / "appeal.yaml").read_text())
    # More wrongful refunds than the calibrated scenario, so that quotas and blocks bite
    # within the run.
    sc = load_scenario(TINY).with_values({"refunds.lacking_evidence_share": 0.6,
                                          "appeals.propensity": 0.8})
    fused = _run(rulebook_set, sc, 75, True, dtype)
    assert_identical(fused, _run(rulebook_set, sc, 75, False, dtype))
    assert sum(f["appeals_attempted"].sum() for f in fused[1]) > 100
    assert sum(f["appeals_won"].sum() for f in fused[1]) > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_table_entry_and_field_source_agrees(dtype: type) -> None:
    """Refusals counted twice, double acceptances, human reviews on request for one tier,
    blocks for the month and the year, conditions on the event's draw, outcome and
    reviewer, on counters and on the merchant's tier."""
    rulebook_set = _with_appeals("lowprice-2024", MIXED.read_text())
    sc = load_scenario(TINY).with_values({"refunds.lacking_evidence_share": 0.6,
                                          "appeals.propensity": 0.8,
                                          "appeals.human_review_request_share": 0.5})
    fused = _run(rulebook_set, sc, 75, True, dtype)
    assert_identical(fused, _run(rulebook_set, sc, 75, False, dtype))
    s, flows = fused
    assert sum(f["appeals_won"].sum() for f in flows) > 0
    assert s["appeals_refused_month"].sum() > 0
    assert (s["appeal_blocked_until"] > 0).any()
    # Two acceptances per automated appeal: filed counts run ahead of attempts.
    assert s["appeals_filed_year"].sum() > 0


@pytest.mark.parametrize("book", [MIXED, FIXTURE_BOOKS / "appeal_in_place.yaml",
                                  BOOKS / "lowprice-2024" / "appeal.yaml"],
                         ids=lambda p: p.parent.name + "/" + p.name)
def test_filing_rules_compiled_into_the_rounds_give_the_interpreters_bits(book: Path) -> None:
    """The filing rules compiled into `appeal_day`'s pass (`FixedProgram`) against the
    same rules run by the interpreter a block at a time, both in the fused rounds."""
    rulebook_set = _with_appeals("lowprice-2024", book.read_text())
    _compiled_against_interpreter(rulebook_set)


#: The mixed rulebook's quota rule reading every counter besides: with it, the filing rules
#: read a field of every source (`appeal_rounds._field_value`).
EVERY_SOURCE = MIXED.read_text().replace(
    "when: merchant.appeals_filed_month + merchant.appeals_refused_month >= quota",
    "when: merchant.appeals_filed_month + merchant.appeals_refused_month >= quota"
    " or (merchant.appeals_failed_month >= failed_limit"
    " and merchant.appeals_filed_year > quota)")


def test_filing_rules_reading_every_source_give_the_interpreters_bits() -> None:
    rulebook_set = _with_appeals("lowprice-2024", EVERY_SOURCE)
    rounds = _rounds(EVERY_SOURCE)
    read = {int(rounds.sources[row]) for row in rounds.filed.rows.values()}
    assert read == {appeal_rounds.CONSTANT, appeal_rounds.ROW, appeal_rounds.FILED_MONTH,
                    appeal_rounds.FILED_YEAR, appeal_rounds.FAILED_MONTH,
                    appeal_rounds.FAILED_YEAR, appeal_rounds.REFUSED_MONTH,
                    appeal_rounds.BLOCKED, appeal_rounds.HUMAN_REQUESTED}
    _compiled_against_interpreter(rulebook_set)


def _compiled_against_interpreter(rulebook_set) -> None:
    sc = load_scenario(TINY).with_values({"refunds.lacking_evidence_share": 0.6,
                                          "appeals.propensity": 0.8,
                                          "appeals.human_review_request_share": 0.5})
    compiled = _run(rulebook_set, sc, 60, True, np.float32)
    assert_identical(compiled, _run(rulebook_set, sc, 60, True, np.float32, compiled=False))
    assert sum(f["appeals_won"].sum() for f in compiled[1]) > 0


def test_a_filing_program_past_the_limit_runs_through_the_interpreter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixed_programs, "MAX_OPS", 1)
    assert _rounds(MIXED.read_text()).filed_program is None
    monkeypatch.setattr(AppealRounds, "compile_filed", False)
    assert _rounds((BOOKS / "lowprice-2024" / "appeal.yaml").read_text()).filed_program is None


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
@pytest.mark.parametrize("book", ["appeal_mixed.yaml", "appeal_in_place.yaml"])
@pytest.mark.parametrize(("block", "chunk"), [(1, 1), (5, 3), (64, 16)])
def test_blocks_and_chunks_of_any_size_give_the_same_bits(block: int, chunk: int, book: str,
                                                          compiled: bool,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Appellants go block by block and each round chunk by chunk: with blocks and chunks
    far smaller than the day's appellants (rounds that end mid-chunk, appellants whose next
    round falls into another chunk, or whose further rounds are booked at once), still the
    numpy path's bits."""
    monkeypatch.setattr(appeal_rounds, "BLOCK", block)
    monkeypatch.setattr(appeal_rounds, "CHUNK", chunk)
    rulebook_set = _with_appeals("lowprice-2024", (MIXED.parent / book).read_text())
    sc = load_scenario(TINY).with_values({"refunds.lacking_evidence_share": 0.6,
                                          "appeals.propensity": 0.8,
                                          "appeals.human_review_request_share": 0.5})
    fused = _run(rulebook_set, sc, 40, True, np.float32, compiled=compiled)
    assert_identical(fused, _run(rulebook_set, sc, 40, False, np.float32))
    assert sum(f["appeals_attempted"].sum() for f in fused[1]) > 10 * block


def test_tables_follow_the_rules_effects() -> None:
    rounds = AppealRounds.of(Model(_with_appeals("lowprice-2024", MIXED.read_text()),
                                   load_scenario(TINY), [replication_seed(1, 0)])
                             .books["appeal"])
    assert rounds is not None
    assert rounds.refuses.tolist() == [1, 2, 0, 0]
    assert rounds.accepts.tolist() == [0, 0, 1, 2]
    assert rounds.human_review.tolist() == [False, False, True, False]
    assert rounds.block_year.tolist() == [True, False]
    assert rounds.block_month.tolist() == [False, True]


def test_a_set_without_appeal_rules_keeps_the_numpy_path() -> None:
    files = {"ranking.yaml": (BOOKS / "lowprice-2024" / "ranking.yaml").read_text()}
    model = Model(load_set_from_texts("ranking-only", files), load_scenario(TINY),
                  [replication_seed(1, 0)])
    assert model._appeal_rounds is None
    for day in range(5):
        model.step(day)


def test_a_condition_the_numba_target_refuses_keeps_the_numpy_path() -> None:
    """A rounding to 30 digits is beyond the numba target (not beyond the rule language):
    the model takes the numpy path instead of failing, and as the rounding of a counter to
    30 digits changes nothing, its run is the plain rulebook's (compiled) run."""
    plain = (BOOKS / "lowprice-2024" / "appeal.yaml").read_text()
    condition = "when: merchant.appeals_filed_month >= appeal_quota_month"
    assert condition in plain
    rounded = plain.replace(condition, "when: round(merchant.appeals_filed_month, 30) >= "
                                       "appeal_quota_month")
    sc = load_scenario(TINY).with_values({"refunds.lacking_evidence_share": 0.6,
                                          "appeals.propensity": 0.8})
    refused = Model(_with_appeals("lowprice-2024", rounded), sc, [replication_seed(1, 0)])
    assert refused._appeal_rounds is None
    paths = {}

    def prepare(expected: bool):
        def check(model: Model) -> None:
            paths[expected] = model._appeal_rounds is not None

        return check

    runs = [run_days(_with_appeals("lowprice-2024", text), sc, 40, np.float32, seed=5,
                     prepare=prepare(compiled))
            for text, compiled in ((rounded, False), (plain, True))]
    assert paths == {False: False, True: True}
    assert_identical(*runs)
    assert sum(f["appeals_attempted"].sum() for f in runs[0][1]) > 100


IN_PLACE = FIXTURE_BOOKS / "appeal_in_place.yaml"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_programs_and_rounds_decided_alike_agree(dtype: type) -> None:
    """Conditions that are a bare field or a constant; decided rules on the counters filing
    books, on the block and on the merchant's tier, which only they read; refusals (counted
    twice) and unmatched appeals, which decide the appellant's further rounds that day alike
    and are booked at once."""
    rulebook_set = _with_appeals("lowprice-2024", IN_PLACE.read_text())
    sc = load_scenario(TINY).with_values({"refunds.lacking_evidence_share": 0.6,
                                          "appeals.propensity": 0.8})
    fused = _run(rulebook_set, sc, 75, True, dtype)
    assert_identical(fused, _run(rulebook_set, sc, 75, False, dtype))
    s, flows = fused
    assert sum(f["appeals_won"].sum() for f in flows) > 0
    assert s["appeals_refused_month"].sum() > 0
    assert (s["appeal_blocked_until"] > 0).any()
    assert (s["appeals_failed_year"] >= 5).any()  # appeals no rule takes


def _rounds(appeal_yaml: str) -> AppealRounds:
    rounds = AppealRounds.of(Model(_with_appeals("lowprice-2024", appeal_yaml),
                                   load_scenario(TINY), [replication_seed(1, 0)])
                             .books["appeal"])
    assert rounds is not None
    return rounds


def test_rounds_decided_alike_follow_what_the_filed_rules_read() -> None:
    """An appeal that is not accepted changes only the refusals: its further rounds are
    decided alike unless the filed rules read the refusals (for a refusing rule) or the
    draw's request for a human review (for every rule). The last entry: no rule."""
    lowprice = _rounds((BOOKS / "lowprice-2024" / "appeal.yaml").read_text())
    assert lowprice.repeats.tolist() == [1, 1, 0, 1]
    assert _rounds(MIXED.read_text()).repeats.tolist() == [0, 0, 0, 0, 0]
    assert _rounds(IN_PLACE.read_text()).repeats.tolist() == [1, 1, 0, 0, 1]


def test_payload_constants_are_encoded_as_the_numba_target_reads_them() -> None:
    rounds = _rounds(MIXED.read_text())
    values: list[object] = [None, True, False, np.bool_(True), 3, -5, 1.5, float("nan"),
                            float("inf"), -0.0, np.float32(2.5), np.int64(7), np.uint8(3), "x",
                            np.str_("y"), b"z", 2**63, -2**63, 2**53 + 1, 1.7e9]
    for value in values:
        events = {"appeal_filed": {"time": value, "appeal_id": "A", "order_id": "O"},
                  "appeal_decided": {"time": 1.0, "appeal_id": "A"}}
        fast, slow = rounds.constants(events), rounds.encode_constants(events)
        assert np.array_equal(fast.view(np.int64), slow.view(np.int64)) or \
            np.array_equal(fast, slow, equal_nan=True), value
        assert np.signbit(fast).tolist() == np.signbit(slow).tolist(), value
    # a payload without the field: unknown
    events = {"appeal_filed": {}, "appeal_decided": {}}
    assert np.isnan(rounds.constants(events)).all()


@pytest.mark.parametrize("want", [[], [0, 0, 0], [1, 0, 2, 0, 0, 5], [3, 3], [-1, 0, 1]])
def test_appellants_are_the_merchants_who_want_to_appeal(want: list[int]) -> None:
    values = np.array(want, dtype=np.int64)
    got = appeal_rounds.appellants(values)
    assert got.dtype == np.int64
    assert got.tolist() == np.flatnonzero(values > 0).tolist()
