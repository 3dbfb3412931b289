"""A day's appeals of every appellant in one compiled pass, the rules run as data.

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
round, with the same arithmetic, so the results are bit for bit the ones the numpy path gives
(`tests/simulator/test_appeal_rounds.py` runs both). The numba target agrees with the numpy
target row by row except where a NaN is computed from known infinities, which no appeal field
holds.

What it saves besides the numpy passes: the kernel reads the appellants' counters, refunds
and wrongful burdens where the state and the day's flows keep them and books there (no
gathering into per-appellant arrays and scattering back); the event's payload, one value for
every appellant, is encoded once a day, not broadcast over the appellants; and the outcomes,
random, are booked without branches that would be mispredicted. At 200,000 merchants the
stage took about 4.5 ms of CPU a day before, about 3.5 ms with this (shared machine).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.expression.numba_target import (
    Program,
    Vocabulary,
    compile_program,
    first_hit_block,
    run_block,
)
from simulator.kernels import _kernel

#: Where a row of the rounds' input matrix comes from (`AppealRounds.sources`): a value of the
#: day's event that is one for every appellant, a row of the appellants' static matrix (their
#: merchant's or listing's fields, which no round changes), a counter the rounds change (read
#: from the state as it stands), or a field each round sets anew.
CONSTANT, ROW, FILED_MONTH, FILED_YEAR, FAILED_MONTH, FAILED_YEAR, REFUSED_MONTH, BLOCKED, \
    HUMAN_REQUESTED, OUTCOME, REVIEWER = range(11)

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
_EVENT_TYPES = ("appeal_filed", "appeal_decided")
#: Appellants per chunk of a round (the width of the interpreter's registers): wider than the
#: numba target's default, since each chunk costs a dozen calls whose array arguments are
#: reference-counted (1,024 made the rounds about a tenth faster than 256).
CHUNK = 1024
#: Appellants whose rounds run together before the next ones' (`appeal_day`): their state rows
#: stay in the nearer caches from round to round (4,096 made the day's rounds about an eighth
#: faster than 65,536; 2,048 to 8,192 measured alike).
BLOCK = 4096


@dataclass(frozen=True)
class _EventProgram:
    """One event type's rule conditions as one program, its loads bound to rows of the
    rounds' shared input matrix."""

    program: Program
    ops: np.ndarray  # `program.ops` with LOADs reading the shared matrix's rows
    conditions: np.ndarray  # result registers, in rule order
    rows: dict[str, int]  # the shared matrix's row of each of the program's fields


class AppealRounds:
    """The appeal rulebook prepared for `appeal_day` (`of` says None for a set without one).
    The effects' arguments (review, scope) are choices, which rulebooks give as literal words
    (`rules.effects`), so every rule's effects are the same on every row: a table entry.

    Both programs read one input matrix, one row per field: a merchant's or listing's field
    is one row for both (the two events' scopes share those namespaces), an event's field one
    row per event type (their payloads differ). The event's payload is one value for every
    appellant (`constants`), so only the merchants' own fields that no round changes, if the
    rules read any, are gathered over the appellants once a day (`static`)."""

    def __init__(self, filed: _EventProgram, decided: _EventProgram, sources: np.ndarray,
                 vocabulary: Vocabulary, tables: Mapping[str, np.ndarray]):
        self.filed, self.decided, self.vocabulary = filed, decided, vocabulary
        self.sources = sources
        self.accepts, self.refuses = tables["accepts"], tables["refuses"]
        self.human_review = tables["human_review"]
        self.block_month, self.block_year = tables["block_month"], tables["block_year"]
        # The kernel's tables end with an entry for "no rule fired": no effect.
        self._padded = [np.append(tables[k], np.zeros(1, dtype=tables[k].dtype))
                        for k in ("accepts", "refuses", "human_review", "block_month",
                                  "block_year")]
        self.codes = np.array([vocabulary.code(t) for t in ("upheld", "rejected", "human",
                                                              "automated")], dtype=np.float64)
        size = max(filed.program.n_registers, decided.program.n_registers, 1)
        self.registers = np.empty((size, CHUNK))
        self.per_row = bool(np.any(sources == ROW))
        self._no_static = np.empty((0, 0))

    @classmethod
    def of(cls, book: Any) -> AppealRounds | None:
        rulebook = getattr(book, "rulebook", None)
        if rulebook is None:
            return None
        vocabulary = Vocabulary()
        rules = {et: [rulebook.rule(rid) for rid in book.rules_for(et)] for et in _EVENT_TYPES}
        programs = {et: compile_program([r.when.node for r in rules[et]], vocabulary)
                    for et in _EVENT_TYPES}
        shared: dict[Any, int] = {}
        sources: list[int] = []
        bound = {}
        for et in _EVENT_TYPES:
            rows = {}
            for field in programs[et].fields:
                key: Any = (et, field) if field.startswith("event.") else field
                if key not in shared:
                    shared[key] = len(sources)
                    if field.startswith("event."):
                        sources.append(_EVENT_SOURCES[et].get(field, CONSTANT))
                    else:
                        sources.append(_COUNTER_SOURCES.get(field, ROW))
                rows[field] = shared[key]
            program = programs[et]
            bound[et] = _EventProgram(program, program.bind(rows),
                                      np.array(program.results, dtype=np.int64), rows)
        filed, decided = rules["appeal_filed"], rules["appeal_decided"]
        accepts = np.zeros(len(filed), dtype=np.int32)
        refuses = np.zeros(len(filed), dtype=np.int32)
        human = np.zeros(len(filed), dtype=np.bool_)
        for p, rule in enumerate(filed):
            for call in rule.then:
                if call.name == "accept_appeal":
                    accepts[p] += 1
                    # The last acceptance's reviewer hears it, as in `simulator.reference`.
                    human[p] = call.literals.get("review", "automated") == "human"
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
        return cls(bound["appeal_filed"], bound["appeal_decided"],
                   np.array(sources, dtype=np.int64), vocabulary,
                   {"accepts": accepts, "refuses": refuses, "human_review": human,
                    "block_month": month, "block_year": year})

    def constants(self, events: Mapping[str, Mapping[str, Any]]) -> np.ndarray:
        """The value of each `CONSTANT` row (NaN elsewhere): the fields of each event type's
        payload (`events[event_type]`, one value for every appellant) the rules read, as the
        numba target encodes them."""
        out = np.full(len(self.sources), np.nan)
        for et, ep in ((_EVENT_TYPES[0], self.filed), (_EVENT_TYPES[1], self.decided)):
            wanted = {f for f, row in ep.rows.items() if self.sources[row] == CONSTANT}
            if not wanted:
                continue
            matrix = ep.program.inputs({"event": events[et]}, 1, self.vocabulary,
                                       skip=set(ep.program.fields) - wanted)[0]
            for f in wanted:
                out[ep.rows[f]] = matrix[ep.program.fields.index(f), 0]
        return out

    def static(self, scope: Mapping[str, Any] | None, m: int) -> np.ndarray:
        """The `ROW` rows over the m appellants, from `scope` (their merchant and listing
        namespaces); an empty matrix when the rules read no such field (`per_row` False)."""
        if not self.per_row or scope is None:
            return self._no_static
        out = np.full((len(self.sources), m), np.nan)
        done: set[int] = set()
        for ep in (self.filed, self.decided):
            wanted = {f for f, row in ep.rows.items()
                      if self.sources[row] == ROW and row not in done}
            if not wanted:
                continue
            matrix = ep.program.inputs(scope, m, self.vocabulary,
                                       skip=set(ep.program.fields) - wanted)[0]
            for f in wanted:
                out[ep.rows[f]] = matrix[ep.program.fields.index(f)]
                done.add(ep.rows[f])
        return out

    def run(self, active: np.ndarray, want: np.ndarray, au: np.ndarray, constants: np.ndarray,
            static: np.ndarray, counters: Mapping[str, np.ndarray], per_day: int, shift: float,
            human_share: float, human_success: float, automated_success: float,
            next_month: float, next_year: float, wrongful: np.ndarray,
            wrongful_burden: np.ndarray, day_refund: np.ndarray, day_attempted: np.ndarray,
            day_won: np.ndarray) -> None:
        """Every round of the day's appeals; see `appeal_day`."""
        f, d = self.filed, self.decided
        appeal_day(per_day, BLOCK, active, want, au, shift, human_share, human_success,
                   automated_success, next_month, next_year, self.sources, constants, static,
                   f.ops, f.program.consts, f.conditions, d.ops, d.program.consts,
                   d.conditions, *self._padded, self.codes, self.registers,
                   counters["appeals_filed_month"], counters["appeals_filed_year"],
                   counters["appeals_failed_month"], counters["appeals_failed_year"],
                   counters["appeals_refused_month"], counters["appeal_blocked_until"],
                   wrongful, wrongful_burden, day_refund, day_attempted, day_won)


@_kernel
def _gather(sources, static, ci, cj, c, scratch, filed_m, filed_y, failed_m, failed_y,
            refused_m, blocked, human):  # pragma: no cover - compiled
    """Rows 0..c of the input matrix for the chunk's appellants (numbers `cj`, merchants
    `ci`): their static fields and the counters as they stand. `CONSTANT` rows were filled
    once; `OUTCOME` and `REVIEWER` rows are written as appeals are decided."""
    for f in range(sources.shape[0]):
        src = sources[f]
        out = scratch[f]
        # One loop per source (the branch is taken once per field, not once per row).
        if src == ROW:
            row = static[f]
            for t in range(c):
                out[t] = row[cj[t]]
        elif src == FILED_MONTH:
            _gather_counter(filed_m, ci, c, out)
        elif src == FILED_YEAR:
            _gather_counter(filed_y, ci, c, out)
        elif src == FAILED_MONTH:
            _gather_counter(failed_m, ci, c, out)
        elif src == FAILED_YEAR:
            _gather_counter(failed_y, ci, c, out)
        elif src == REFUSED_MONTH:
            _gather_counter(refused_m, ci, c, out)
        elif src == BLOCKED:
            _gather_counter(blocked, ci, c, out)
        elif src == HUMAN_REQUESTED:
            for t in range(c):
                out[t] = 1.0 if human[t] else 0.0


@_kernel
def _regather_counters(sources, ci, c, scratch, filed_m, filed_y, failed_m, failed_y,
                       refused_m):  # pragma: no cover - compiled
    """The rows of the counters filing changes, read again after the chunk's filings."""
    for f in range(sources.shape[0]):
        src = sources[f]
        out = scratch[f]
        if src == FILED_MONTH:
            _gather_counter(filed_m, ci, c, out)
        elif src == FILED_YEAR:
            _gather_counter(filed_y, ci, c, out)
        elif src == FAILED_MONTH:
            _gather_counter(failed_m, ci, c, out)
        elif src == FAILED_YEAR:
            _gather_counter(failed_y, ci, c, out)
        elif src == REFUSED_MONTH:
            _gather_counter(refused_m, ci, c, out)


@_kernel
def _gather_counter(counter, ci, c, out):  # pragma: no cover - compiled
    """out[t] = counter[ci[t]] as float64, for t < c."""
    for t in range(c):
        out[t] = counter[ci[t]]


@_kernel
def appeal_day(per_day, block, active, want, au, shift, human_share, human_success,
               automated_success, next_month, next_year, sources, constants, static,
               ops_f, consts_f, cond_f, ops_d, consts_d, cond_d, accepts, refuses,
               human_review, block_month, block_year, codes, regs, filed_m, filed_y,
               failed_m, failed_y, refused_m, blocked, wrongful, wrongful_burden, day_refund,
               day_attempted, day_won):  # pragma: no cover - compiled
    """The day's appeals of the appellants `active` (merchant numbers, ascending), each
    filing min(want, per_day) appeals, one per round, `block` appellants at a time (all
    their rounds, then the next block: the merchants' rows stay in the cache).

    Round a files one appeal for every appellant j with want > a: its draw au[a, j] (float64)
    and whether it asks for a human review (the draw's offset by `shift` under
    `human_share`); the first `appeal_filed` rule whose condition is known True decides it
    (counters as the round found them); its effects count the appeal filed or refused; an
    accepted appeal is upheld when the draw is under the reviewer's success rate (the
    merchant's burden per wrongful refund is taken off its day's refund) or failed
    (counted); then the first `appeal_decided` rule (counters as updated) may block appeals
    until the next month or year. This is the story `Model._appeal_block` tells, merchant by
    merchant with the same arithmetic; the order across merchants differs (block by block),
    which changes nothing: appellants never read one another's state, so only each one's
    own rounds must keep their order.

    The rules run over chunks of the round's appellants (`regs.shape[1]` at a time), the
    `appeal_decided` program over the whole chunk, its result used only where an appeal was
    accepted (conditions are pure: evaluating them on other rows has no effect), which
    saves compacting the chunk again. `codes` are the vocabulary codes of "upheld", "rejected",
    "human" and "automated".
    """
    n_all = active.shape[0]
    width = regs.shape[1]
    n_fields = sources.shape[0]
    span = min(block, n_all)
    # Positions are unsigned: numba does not test them for counting from the end.
    rows = np.empty(span, dtype=np.uint64)
    later = np.empty(span, dtype=np.uint64)
    ci = np.empty(width, dtype=np.uint64)
    cj = np.empty(width, dtype=np.uint64)
    r = np.empty(width)
    human = np.empty(width, dtype=np.bool_)
    hit = np.empty(width, dtype=np.int64)
    hit_d = np.empty(width, dtype=np.int64)
    decided = np.empty(width, dtype=np.bool_)
    outcome = np.empty(width)
    reviewer = np.empty(width)
    none_f = accepts.shape[0] - 1  # the tables' last entry: no rule, no effect
    scratch = np.empty((max(n_fields, 1), width))
    for f in range(n_fields):
        row = scratch[f]
        v = constants[f] if sources[f] == CONSTANT else np.nan
        for t in range(width):
            row[t] = v
    outcome_row = -1
    reviewer_row = -1
    for f in range(n_fields):
        if sources[f] == OUTCOME:
            outcome_row = f
        elif sources[f] == REVIEWER:
            reviewer_row = f
    for lo in range(0, n_all, block):
        k = min(block, n_all - lo)
        for t in range(k):
            rows[t] = lo + t
        for a in range(per_day):
            if k == 0:
                break
            draws = au[a]
            n_later = 0
            for low in range(0, k, width):
                c = min(width, k - low)
                for t in range(c):
                    j = rows[low + t]
                    i = np.uint64(active[j])
                    cj[t] = j
                    ci[t] = i
                    x = np.float64(draws[j])
                    r[t] = x
                    v = x + shift
                    v -= np.floor(v)
                    human[t] = v < human_share
                    wants = want[i]
                    if a == 0:  # every round files one appeal
                        day_attempted[i] = day_attempted[i] + np.float64(min(wants, per_day))
                    later[n_later] = j  # kept if it files again (no branch to mispredict)
                    n_later += wants > a + 1
                _gather(sources, static, ci, cj, c, scratch, filed_m, filed_y, failed_m,
                        failed_y, refused_m, blocked, human)
                if cond_f.shape[0]:
                    run_block(ops_f, consts_f, scratch, 0, c, regs)
                    first_hit_block(regs, cond_f, c, hit, 0)
                else:
                    hit[:c] = -1
                # Booked without branches on the data (the outcomes are random, branches on
                # them mispredicted): no rule (the tables' last entry) and a refusal add
                # zeros, a failure recovers 0.0 (x - 0.0 is x, bit for bit).
                n_decided = 0
                for t in range(c):
                    p = np.uint64(none_f if hit[t] < 0 else hit[t])
                    i = ci[t]
                    accepted = accepts[p]
                    filed_m[i] += accepted
                    filed_y[i] += accepted
                    if refuses[p]:  # seldom: no store (and no dirty cache line) otherwise
                        refused_m[i] += refuses[p]
                    by_human = human_review[p]
                    success = human_success if by_human else automated_success
                    upheld = (accepted > 0) & (r[t] < success)
                    failed = np.int32(accepted > 0) - np.int32(upheld)
                    failed_m[i] += failed
                    failed_y[i] += failed
                    w = wrongful[i]
                    recovered = wrongful_burden[i] / w if w > 0 else 0.0
                    day_won[i] = day_won[i] + (1.0 if upheld else 0.0)
                    day_refund[i] = day_refund[i] - (recovered if upheld else 0.0)
                    outcome[t] = codes[0] if upheld else codes[1]
                    reviewer[t] = codes[2] if by_human else codes[3]
                    decided[t] = accepted > 0
                    n_decided += accepted > 0
                if n_decided == 0 or cond_d.shape[0] == 0:
                    continue
                if outcome_row >= 0:
                    scratch[outcome_row, :c] = outcome[:c]
                if reviewer_row >= 0:
                    scratch[reviewer_row, :c] = reviewer[:c]
                _regather_counters(sources, ci, c, scratch, filed_m, filed_y, failed_m,
                                   failed_y, refused_m)
                run_block(ops_d, consts_d, scratch, 0, c, regs)
                first_hit_block(regs, cond_d, c, hit_d, 0)
                for t in range(c):
                    q = hit_d[t]
                    if q < 0 or not decided[t]:  # most appeals: a branch seldom taken
                        continue
                    i = ci[t]
                    if block_month[q] and next_month > blocked[i]:
                        blocked[i] = next_month
                    if block_year[q] and next_year > blocked[i]:
                        blocked[i] = next_year
            rows, later = later, rows
            k = n_later
