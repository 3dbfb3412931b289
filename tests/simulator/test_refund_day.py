"""A block's refund day in one pass (`kernels.refund_day`, `_Claims.plan`) against the stages
one kernel at a time, and the model's day with and without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rules.loader import load_set, load_set_from_texts
from simulator import kernels
from simulator.model import Model
from simulator.population import GOLDEN
from simulator.run import replication_seed
from simulator.scenario import load_scenario
from tests.simulator.model_runs import assert_same_bits, run_days

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "rules" / "books"
TINY = ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml"
SHIFTS = np.array([k * GOLDEN for k in range(8)])
#: Stages whose decisions may differ by row, by their index in `refund_day`'s rule arguments.
PER_ROW = (0, 1, 2, 3, 6, 7)
NONE = np.empty(0)


def _inputs(dtype: Any, n: int, seed: int) -> dict[str, Any]:
    """A block's orders, quality, draws, capacity, costs (zero, negative and NaN costs among
    them: each costs nothing) and who is alive."""
    rng = np.random.default_rng(seed)
    unit_cost = (rng.random(n) * 40).astype(dtype)
    shipping = (rng.random(n) * 5 - 0.5).astype(dtype)
    if n >= 6:
        unit_cost[:3] = [np.nan, -50.0, 0.0]
        shipping[3:6] = [np.nan, -0.0, -3.0]
    orders = np.floor(rng.random(n) * 14) * (rng.random(n) < 0.8)
    return {"orders": orders, "quality": rng.random(n, dtype=np.float32).astype(dtype),
            "u_claims": rng.random(n, dtype=np.float32).astype(dtype),
            "u_refund": rng.random(n, dtype=np.float32).astype(dtype),
            "capacity": np.floor(rng.random(n) * 4).astype(dtype), "unit_cost": unit_cost,
            "shipping": shipping, "alive": rng.random(n) < 0.9}


#: Which stages decide row by row (the others one rule for every row), by test case: a few
#: mixes, each compiled once.
PER_ROW_MIXES = [set(PER_ROW), {0, 1, 7}, set()]


def _stage_plan(rng: np.random.Generator, n: int, final: bool,
                per_row: bool) -> tuple[Any, list[int], list]:
    """A stage's rule (one position, or an array over the rows of positions -1 to 2) and its
    masks: each position's effects drawn at random, one cost key for its grants."""
    rule: Any = (rng.integers(-1, 3, n).astype(np.int32) if per_row
                 else int(rng.integers(-1, 3)))
    masks = [0, 0, 0, 0]
    for position in range(3):
        bit = 1 << (position + 1)
        for kind in range(4):
            if kind == 1 and final:
                continue
            if rng.random() < 0.4:
                masks[kind] |= bit
    key = [bool(rng.random() < 0.8), bool(rng.random() < 0.5),
           float(rng.choice([0.0, 0.17, 2.5]))]
    return rule, masks, key


def _stages(inputs: dict[str, Any], rules: list[Any], masks: np.ndarray, keys: np.ndarray,
            present: np.ndarray, share: float, escalation: float, review: float,
            propensity: float) -> list[np.ndarray]:
    """The day as `Model._refunds` books it one kernel at a time (each stage's grants and
    tables through `claim_grants` and `add_claims` for every rule position that decided a
    row)."""
    x = inputs
    n = x["orders"].size
    ur, part_valid, left_valid, part_lacking, left_lacking = (np.empty(n) for _ in range(5))
    kernels.claims_split(x["orders"], x["quality"], x["u_claims"], x["u_refund"], 0.3, 0.8,
                         0.35, share, GOLDEN, 2 * GOLDEN, ur, part_valid, left_valid,
                         part_lacking, left_lacking)
    burden, wrongful, wrongful_burden = np.zeros(n), np.zeros(n), np.zeros(n)
    tables: dict[tuple[bool, int], np.ndarray | None] = {
        (valid, kind): None for valid in (True, False) for kind in (1, 2, 3)}

    def book(s: int, count: np.ndarray, valid: bool) -> None:
        rule = rules[s]
        array = rule if isinstance(rule, np.ndarray) else np.full(n, rule, dtype=np.int32)
        for position in range(-1, 3):
            bit = 1 << (position + 1)
            if not (array == position).any():
                continue
            if masks[s, 0] & bit:
                kernels.claim_grants(x["unit_cost"], x["shipping"], bool(keys[s, 0]),
                                     bool(keys[s, 1]), keys[s, 2], count, array, position,
                                     burden, wrongful, wrongful_burden, valid)
            for kind in (1, 2, 3):
                if masks[s, kind] & bit:
                    acc = tables[(valid, kind)]
                    fresh = acc is None
                    if fresh:
                        acc = tables[(valid, kind)] = np.empty(n)
                    kernels.add_claims(acc, fresh, count, array, position)

    book(0, part_valid, True)
    book(1, part_lacking, False)
    answered_lacking, unanswered_lacking, answered_valid, unanswered_valid = (
        np.empty(n) for _ in range(4))
    kernels.answer_both(left_lacking, left_valid, x["capacity"], answered_lacking,
                        unanswered_lacking, answered_valid, unanswered_valid)
    book(2, answered_lacking, False)
    book(3, answered_valid, True)
    book(4, unanswered_valid, True)
    book(5, unanswered_lacking, False)
    for s, valid, k in ((6, True, 3), (7, False, 4)):
        if present[k]:
            rejected = tables[(valid, 1)]
            count = np.zeros(n) if rejected is None else rejected
            book(s, kernels.floor_share(count, escalation, ur, k * GOLDEN, np.empty(n)), valid)
    out = [np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)]

    def table(valid: bool, kind: int, there: bool) -> np.ndarray:
        found = tables[(valid, kind)]
        return NONE if not there else np.zeros(n) if found is None else found

    kernels.review_close(table(True, 2, present[0]), table(True, 3, present[1]),
                         table(False, 2, present[2]), review, ur, 5 * GOLDEN, 6 * GOLDEN,
                         x["unit_cost"], x["shipping"], bool(keys[8, 0]), bool(keys[8, 1]),
                         keys[8, 2], burden, wrongful, wrongful_burden, x["alive"],
                         7 * GOLDEN, propensity, *out)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(12))
def test_refund_day_books_what_the_stages_book_one_at_a_time(dtype: type, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3_001
    x = _inputs(dtype, n, seed)
    mix = PER_ROW_MIXES[seed % len(PER_ROW_MIXES)]
    stages = [_stage_plan(rng, n, s in (0, 1, 6, 7), s in mix) for s in range(8)]
    for s in (4, 5):  # the deadlines' stages: one position, 0, for every row
        stages[s] = (0, [m & 2 for m in stages[s][1]], stages[s][2])
    rules = [rule for rule, _, _ in stages]
    masks = np.array([m for _, m, _ in stages], dtype=np.int64)
    keys = np.array([k for _, _, k in stages] + [[True, seed % 2 == 0, 0.0]], dtype=np.float64)
    escalate = [bool((masks[3, 1] | masks[4, 1]) != 0), bool((masks[2, 1] | masks[5, 1]) != 0)]
    if seed % 4 == 0:
        escalate = [False, False]  # no rejections to escalate
    present = np.array([masks[[0, 3, 4, 6], 2].any(), masks[[0, 3, 4, 6], 3].any(),
                        masks[[1, 2, 5, 7], 2].any(), *escalate])
    args = (0.37, 0.45, 0.55, 0.7)
    want = _stages(x, rules, masks, keys, present, *args)
    got = [np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)]
    plan = [rules[s] for s in PER_ROW]
    stages, fees = kernels.refund_stages(masks, keys, present, plan)
    kernels.refund_day(stages, x["orders"], x["quality"], x["u_claims"], x["u_refund"], 0.3, 0.8,
                       0.35, *args, SHIFTS, *plan, fees, x["capacity"], x["unit_cost"],
                       x["shipping"], x["alive"], *got)
    for a, b in zip(want, got, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert got[0].sum() > 0


def test_refund_day_of_an_empty_block() -> None:
    """No row: nothing is written, not even just past the (empty) outputs, which here are
    the first zero rows of larger arrays (numba checks no index)."""
    x = _inputs(np.float64, 0, 1)
    masks = np.zeros((8, 4), dtype=np.int64)
    under = [np.full(4, 7.0), np.full(4, 7.0), np.full(4, 7.0), np.full(4, 7, dtype=np.int64)]
    stages, fees = kernels.refund_stages(masks, np.zeros((9, 3)), np.zeros(5, dtype=bool),
                                         [0] * len(PER_ROW))
    kernels.refund_day(stages, x["orders"], x["quality"], x["u_claims"], x["u_refund"], 0.3, 0.8,
                       0.35, 0.37, 0.45, 0.55, 0.7, SHIFTS, *(0 for _ in PER_ROW), fees,
                       x["capacity"], x["unit_cost"], x["shipping"], x["alive"],
                       *(a[:0] for a in under))
    assert all((a == 7).all() for a in under)


@pytest.fixture(scope="module")
def lowprice():
    return load_set(BOOKS / "lowprice-2024")


@pytest.fixture(scope="module")
def reformed():
    return load_set(BOOKS / "reformed-2025")


def _evidence_intervention_set():
    files = {p.name: p.read_text() for p in (BOOKS / "lowprice-2024").glob("*.yaml")}
    files["refund.yaml"] = (ROOT / "tests" / "fixtures" / "rulebooks"
                            / "refund_evidence_intervention.yaml").read_text()
    return load_set_from_texts("evidence-intervention", files)


def _per_row_recall_fee_set():
    """lowprice-2024 with an intervention grant whose recall fee varies by order: its cost is
    not one number for every row, which the one pass cannot say."""
    files = {p.name: p.read_text() for p in (BOOKS / "lowprice-2024").glob("*.yaml")}
    refund = files["refund.yaml"]
    old = """        decided_by: platform
        payer: merchant
        recall_fee: recall_fee"""
    assert refund.count(old) == 1
    files["refund.yaml"] = refund.replace(old, """        decided_by: platform
        payer: merchant
        recall_fee: order.refund_amount * 0.01""")
    return load_set_from_texts("per-row-recall-fee", files)


@pytest.mark.parametrize("book", ["lowprice", "reformed", "evidence", "per-row fee"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_day_in_one_pass_changes_no_bit(book: str, dtype: type, request,
                                            monkeypatch) -> None:
    """The model's state and flows, day after day, are the same whether each block's refund
    day takes one pass or the stages run one at a time; the one pass is taken where the
    stages' effects allow it (not with a grant at per-row arguments)."""
    from simulator import model as model_module

    rulebook_set = (_evidence_intervention_set() if book == "evidence"
                    else _per_row_recall_fee_set() if book == "per-row fee"
                    else request.getfixturevalue(book))
    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3, "appeals.propensity": 1.0,
                                          "refunds.intervention_share": 0.5})
    passes = {"one": 0}
    refund_day = kernels.refund_day

    def counting(*args: Any) -> None:
        passes["one"] += 1
        refund_day(*args)

    monkeypatch.setattr(model_module.kernels, "refund_day", counting)
    runs = [run_days(rulebook_set, sc, 40, dtype, 4,
                     prepare=lambda model, fused=fused: setattr(model, "_fused_day", fused))
            for fused in (True, False)]
    assert_same_bits(*runs)
    fa = runs[0][1]
    assert sum(f["refund"].tobytes() != bytes(f["refund"].nbytes) for f in fa) > 0
    if book == "per-row fee":
        assert passes["one"] == 0
    else:
        assert passes["one"] >= 40


def test_stage_masks_live_as_long_as_their_decisions(monkeypatch) -> None:
    """An intervention rule that reads the event's time is decided afresh for every block
    and day: the masks found for those decisions go with them, and the model keeps only
    those of the decisions it keeps (the count stops growing), while the day is still
    taken in one pass."""
    files = {p.name: p.read_text() for p in (BOOKS / "lowprice-2024").glob("*.yaml")}
    old = "      order.refund_amount <= price_protection_line\n"
    assert files["refund.yaml"].count(old) == 1
    files["refund.yaml"] = files["refund.yaml"].replace(
        old, "      order.refund_amount <= price_protection_line and event.time > 0\n")
    rulebook_set = load_set_from_texts("time-reading", files)
    sc = load_scenario(TINY).with_values({"refunds.claim_rate": 0.3,
                                          "refunds.intervention_share": 0.5})
    model = Model(rulebook_set, sc, [replication_seed(4, 0), replication_seed(4, 1)])
    planned = []
    plan = kernels.refund_day
    monkeypatch.setattr(kernels, "refund_day", lambda *args: planned.append(1) or plan(*args))
    counts = []
    for day in range(12):
        model.step(day)
        counts.append(len(model._stage_masks))
    assert len(planned) >= 12
    assert max(counts[4:]) <= counts[3] <= 8


def test_stage_masks_refuse_what_the_one_pass_cannot_book(lowprice) -> None:
    """`_Claims._effect_masks` gives up (None: the stages run one at a time) on an effect
    twice in one rule, two grants at different costs in one stage, a grant at per-row
    arguments and a rule position past the masks' bits; it adds one bit per rule."""
    from types import SimpleNamespace

    from simulator.model import _Claims

    model = Model(lowprice, load_scenario(TINY), [replication_seed(1, 0)])
    claims = _Claims(model, model.blocks[0], model.calendar.time(0))
    m = claims.m

    def grant(recall_fee: Any) -> SimpleNamespace:
        args = {"payer": np.broadcast_to(np.array("merchant"), (m,)),
                "recall_fee": recall_fee}
        return SimpleNamespace(name="grant_refund", args=args)

    one, other = grant(np.broadcast_to(1.0, (m,))), grant(np.broadcast_to(2.0, (m,)))
    reject = SimpleNamespace(name="reject_refund", args={})
    masks = claims._effect_masks([one, reject], False, 0)
    assert masks is not None and masks[:4] == (0b10, 0b10, 0, 0)
    masks = claims._effect_masks([one], False, 1, masks)
    assert masks is not None and masks[:4] == (0b110, 0b10, 0, 0)
    assert claims._effect_masks([reject, reject], False, 0) is None
    assert claims._effect_masks([one, one], False, 0) is None
    assert claims._effect_masks([other], False, 1, claims._effect_masks([one], False, 0)) is None
    assert claims._effect_masks([grant(np.arange(m, dtype=float))], False, 0) is None
    assert claims._effect_masks([one], False, 61) is not None
    assert claims._effect_masks([one], False, 62) is None


def test_statuses_the_rules_cannot_tell_apart_share_one_decision(lowprice) -> None:
    """The intervention on a claim awaiting the merchant and on one the merchant rejected is
    one decision when the rules only test the status for membership in a list holding both
    (lowprice-2024), and two when a rule tells them apart."""
    from simulator.model import _Claims

    files = {p.name: p.read_text() for p in (BOOKS / "lowprice-2024").glob("*.yaml")}
    old = 'order.refund_status in ["requested", "awaiting_merchant", "rejected"]'
    assert old in files["refund.yaml"]
    files["refund.yaml"] = files["refund.yaml"].replace(
        old, 'order.refund_status in ["requested", "awaiting_merchant"]', 1)
    apart = load_set_from_texts("status-apart", files)
    for rulebook_set, shared in ((lowprice, True), (apart, False)):
        model = Model(rulebook_set, load_scenario(TINY), [replication_seed(1, 0)])
        model.step(0)
        claims = _Claims(model, model.blocks[0], model.calendar.time(1))
        waiting, rejected = (claims.decide("platform_intervened", True, status,
                                           intervened=True)
                             for status in ("awaiting_merchant", "rejected"))
        assert (waiting is rejected) == shared
