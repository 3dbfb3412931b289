"""A day's appeals of a block of merchants in one compiled pass, the rules run as data.

`Model._appeal_block` files each appellant's appeals round by round (a round's outcomes
change the counters the next round's rules read). Deciding every round through the numpy
target costs a handful of whole-column passes and a few dozen Python calls per round. Here the
whole day runs in one kernel instead: the rules' conditions are compiled by the numba target
(`rules.expression.numba_target`, a bytecode interpreter compiled once; no rule text becomes
code), and the effects the model knows for appeals, whose arguments are literal words, become
small tables indexed by the rule that fired:

  - `accept_appeal` (review: "human" or not) counts the appeal as filed this month and year;
  - `refuse_appeal` counts it as refused this month;
  - `block_appeals` (scope: "month" or "year") blocks appeals until the next month or year.

The kernel tells the story `Model._appeal_block` tells, merchant by merchant and round by
round in the same order, with the same arithmetic, so the results are bit for bit the ones
the numpy path gives (`tests/simulator/test_appeal_rounds.py` runs both). The numba target
agrees with the numpy target row by row except where a NaN is computed from known infinities,
which no appeal field holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.expression.numba_target import (
    DEFAULT_BLOCK,
    Program,
    Vocabulary,
    compile_program,
    first_hit_block,
    run_block,
)
from simulator.kernels import _kernel

#: Where a field of a program's input matrix comes from while the rounds run (`_SOURCES`):
#: the block's input matrix as `Program.inputs` filled it, or a value the rounds change.
STATIC, FILED_MONTH, FILED_YEAR, FAILED_MONTH, FAILED_YEAR, REFUSED_MONTH, BLOCKED, \
    HUMAN_REQUESTED, OUTCOME, REVIEWER = range(10)

#: The merchant counters the rounds change, by the scope field rules read them as.
_COUNTER_SOURCES = {
    "merchant.appeals_filed_month": FILED_MONTH,
    "merchant.appeals_filed_year": FILED_YEAR,
    "merchant.appeals_failed_month": FAILED_MONTH,
    "merchant.appeals_failed_year": FAILED_YEAR,
    "merchant.appeals_refused_month": REFUSED_MONTH,
    "merchant.appeal_blocked_until": BLOCKED,
}
#: Event fields each round sets anew, per event type.
_EVENT_SOURCES = {
    "appeal_filed": {"event.human_review_requested": HUMAN_REQUESTED},
    "appeal_decided": {"event.outcome": OUTCOME, "event.reviewer": REVIEWER},
}


@dataclass(frozen=True)
class _EventProgram:
    """One event type's rule conditions as one program, and where each field comes from."""

    program: Program
    conditions: np.ndarray  # result registers, in rule order
    sources: np.ndarray  # per field of `program.fields`, one of the source codes above
    dynamic: frozenset[str]  # the fields the rounds set (not read from the block's scope)

    @classmethod
    def of(cls, nodes: Sequence[Any], event_type: str, vocabulary: Vocabulary) -> _EventProgram:
        program = compile_program(nodes, vocabulary)
        dynamic = {**_COUNTER_SOURCES, **_EVENT_SOURCES[event_type]}
        sources = np.array([dynamic.get(f, STATIC) for f in program.fields], dtype=np.int64)
        return cls(program, np.array(program.results, dtype=np.int64), sources,
                   frozenset(f for f in program.fields if f in dynamic))

    def inputs(self, scope: Mapping[str, Any], m: int, vocabulary: Vocabulary) -> np.ndarray:
        """The block's input matrix of the fields no round changes (`_gather` reads the
        others as the rounds go)."""
        return self.program.inputs(scope, m, vocabulary, skip=self.dynamic)[0]


class AppealRounds:
    """The appeal rulebook prepared for `appeal_day` (`of` says None for a set without one).
    The effects' arguments (review, scope) are choices, which rulebooks give as literal words
    (`rules.effects`), so every rule's effects are the same on every row: a table entry."""

    def __init__(self, filed: _EventProgram, decided: _EventProgram, vocabulary: Vocabulary,
                 tables: Mapping[str, np.ndarray]):
        self.filed, self.decided, self.vocabulary = filed, decided, vocabulary
        self.accepts, self.refuses = tables["accepts"], tables["refuses"]
        self.human_review = tables["human_review"]
        self.block_month, self.block_year = tables["block_month"], tables["block_year"]
        self.codes = np.array([vocabulary.code(t) for t in ("upheld", "rejected", "human",
                                                              "automated")], dtype=np.float64)
        size = max(filed.program.n_registers, decided.program.n_registers, 1)
        self.registers = np.empty((size, DEFAULT_BLOCK))

    @classmethod
    def of(cls, book: Any) -> AppealRounds | None:
        rulebook = getattr(book, "rulebook", None)
        if rulebook is None:
            return None
        vocabulary = Vocabulary()
        programs, rules = {}, {}
        for event_type in ("appeal_filed", "appeal_decided"):
            rules[event_type] = [rulebook.rule(rid) for rid in book.rules_for(event_type)]
            programs[event_type] = _EventProgram.of([r.when.node for r in rules[event_type]],
                                                    event_type, vocabulary)
        filed, decided = rules["appeal_filed"], rules["appeal_decided"]
        accepts = np.zeros(len(filed), dtype=np.int32)
        refuses = np.zeros(len(filed), dtype=np.int32)
        human = np.zeros(len(filed), dtype=np.bool_)
        for p, rule in enumerate(filed):
            for call in rule.then:
                if call.name == "accept_appeal":
                    accepts[p] += 1
                    human[p] |= call.literals.get("review", "automated") == "human"
                elif call.name == "refuse_appeal":
                    refuses[p] += 1
        month = np.zeros(len(decided), dtype=np.bool_)
        year = np.zeros(len(decided), dtype=np.bool_)
        for q, rule in enumerate(decided):
            for call in rule.then:
                if call.name == "block_appeals":
                    span = call.literals.get("scope", "")
                    month[q] |= span == "month"
                    year[q] |= span == "year"
        return cls(programs["appeal_filed"], programs["appeal_decided"], vocabulary,
                   {"accepts": accepts, "refuses": refuses, "human_review": human,
                    "block_month": month, "block_year": year})

    def run(self, filed_inputs: np.ndarray, decided_inputs: np.ndarray, active: np.ndarray,
            wants: np.ndarray,
            au: np.ndarray, counters: Mapping[str, np.ndarray], per_day: int, shift: float,
            human_share: float, human_success: float, automated_success: float,
            next_month: float, next_year: float, attempted: np.ndarray, won: np.ndarray,
            refund: np.ndarray, recovered: np.ndarray) -> None:
        """Every round of the block's appeals; see `appeal_day`."""
        f, d = self.filed, self.decided
        appeal_day(per_day, active, wants, au, shift, human_share, human_success, automated_success,
                   next_month, next_year,
                   f.program.ops, f.program.consts, f.conditions, f.sources, filed_inputs,
                   d.program.ops, d.program.consts, d.conditions, d.sources, decided_inputs,
                   self.accepts, self.refuses, self.human_review, self.block_month,
                   self.block_year, self.codes, self.registers,
                   counters["appeals_filed_month"], counters["appeals_filed_year"],
                   counters["appeals_failed_month"], counters["appeals_failed_year"],
                   counters["appeals_refused_month"], counters["appeal_blocked_until"],
                   attempted, won, refund, recovered)


@_kernel
def _gather(sources, inputs, active, rows, k, scratch, filed_m, filed_y, failed_m, failed_y,
            refused_m, blocked, human, outcome, reviewer):  # pragma: no cover - compiled
    """The input matrix of k rows (block rows `rows[:k]`, merchants `active[rows[:k]]`):
    static fields from `inputs`, the fields the rounds change from their current values."""
    for f in range(sources.shape[0]):
        src = sources[f]
        out = scratch[f]
        # One loop per source (the branch is taken once per field, not once per row).
        if src == STATIC:
            static = inputs[f]
            for t in range(k):
                out[t] = static[rows[t]]
        elif src == FILED_MONTH:
            _gather_counter(filed_m, active, rows, k, out)
        elif src == FILED_YEAR:
            _gather_counter(filed_y, active, rows, k, out)
        elif src == FAILED_MONTH:
            _gather_counter(failed_m, active, rows, k, out)
        elif src == FAILED_YEAR:
            _gather_counter(failed_y, active, rows, k, out)
        elif src == REFUSED_MONTH:
            _gather_counter(refused_m, active, rows, k, out)
        elif src == BLOCKED:
            _gather_counter(blocked, active, rows, k, out)
        elif src == HUMAN_REQUESTED:
            for t in range(k):
                out[t] = 1.0 if human[t] else 0.0
        elif src == OUTCOME:
            for t in range(k):
                out[t] = outcome[t]
        else:
            for t in range(k):
                out[t] = reviewer[t]


@_kernel
def _gather_counter(counter, active, rows, k, out):  # pragma: no cover - compiled
    """out[t] = counter[active[rows[t]]] as float64, for t < k."""
    for t in range(k):
        out[t] = counter[active[rows[t]]]


@_kernel
def appeal_day(per_day, active, wants, au, shift, human_share, human_success, automated_success,
               next_month, next_year, ops_f, consts_f, cond_f, sources_f, inputs_f,
               ops_d, consts_d, cond_d, sources_d, inputs_d, accepts, refuses, human_review,
               block_month, block_year, codes, regs, filed_m, filed_y, failed_m, failed_y,
               refused_m, blocked, attempted, won, refund,
               recovered):  # pragma: no cover - compiled
    """The day's appeals of a block of m appellants (`wants[j]` each, at most `per_day`).

    Round a files one appeal for every appellant with wants[j] > a, in block order, as
    `Model._appeal_block` does: its draw au[a, j] (float64) and whether it asks for a human
    review (the draw's offset by `shift` under `human_share`); the first `appeal_filed` rule
    whose condition is known True decides it (counters as the round found them); its
    effects count the appeal filed or refused; an accepted appeal is upheld when the draw is
    under the reviewer's success rate (its share of the refund burden is recovered) or
    failed (counted); then the first `appeal_decided` rule (counters as updated) may block
    appeals until the next month or year. `codes` are the vocabulary codes of "upheld",
    "rejected", "human" and "automated".
    """
    m = wants.shape[0]
    block = regs.shape[1]
    rows = np.empty(m, dtype=np.int64)
    chunk = np.empty(block, dtype=np.int64)
    r = np.empty(block)
    human = np.empty(block, dtype=np.bool_)
    hit = np.empty(block, dtype=np.int64)
    decided = np.empty(block, dtype=np.int64)
    outcome = np.empty(block)
    reviewer = np.empty(block)
    scratch_f = np.empty((max(sources_f.shape[0], 1), block))
    scratch_d = np.empty((max(sources_d.shape[0], 1), block))
    for a in range(per_day):
        k = 0
        for j in range(m):
            if wants[j] > a:
                rows[k] = j
                k += 1
        if k == 0:
            break
        for low in range(0, k, block):
            c = min(block, k - low)
            for t in range(c):
                j = rows[low + t]
                chunk[t] = j
                x = np.float64(au[a, j])
                r[t] = x
                v = x + shift
                v -= np.floor(v)
                human[t] = v < human_share
            _gather(sources_f, inputs_f, active, chunk, c, scratch_f, filed_m, filed_y, failed_m,
                    failed_y, refused_m, blocked, human, outcome, reviewer)
            if cond_f.shape[0]:
                run_block(ops_f, consts_f, scratch_f, 0, c, regs)
                first_hit_block(regs, cond_f, c, hit, 0)
            else:
                hit[:c] = -1
            n_decided = 0
            for t in range(c):
                j = chunk[t]
                attempted[j] += 1.0
                p = hit[t]
                if p < 0:
                    continue
                i = active[j]
                filed_m[i] += accepts[p]
                filed_y[i] += accepts[p]
                refused_m[i] += refuses[p]
                if accepts[p] == 0:
                    continue
                by_human = human_review[p]
                success = human_success if by_human else automated_success
                if r[t] < success:
                    won[j] += 1.0
                    refund[j] -= recovered[j]
                    outcome[n_decided] = codes[0]
                else:
                    failed_m[i] += 1
                    failed_y[i] += 1
                    outcome[n_decided] = codes[1]
                reviewer[n_decided] = codes[2] if by_human else codes[3]
                decided[n_decided] = j
                n_decided += 1
            if n_decided == 0 or cond_d.shape[0] == 0:
                continue
            _gather(sources_d, inputs_d, active, decided, n_decided, scratch_d, filed_m, filed_y,
                    failed_m, failed_y, refused_m, blocked, human, outcome, reviewer)
            run_block(ops_d, consts_d, scratch_d, 0, n_decided, regs)
            first_hit_block(regs, cond_d, n_decided, hit, 0)
            for t in range(n_decided):
                q = hit[t]
                if q < 0:
                    continue
                i = active[decided[t]]
                if block_month[q] and next_month > blocked[i]:
                    blocked[i] = next_month
                if block_year[q] and next_year > blocked[i]:
                    blocked[i] = next_year
