"""A day's appeals of every appellant in one compiled pass, the rules run as data.

`Model._appeal_block` files each appellant's appeals round by round (a round's outcomes
change the counters the next round's rules read). Deciding every round through the numpy
target costs a handful of whole-column passes and a few dozen Python calls per round. Here the
whole day runs in one kernel instead: the rules' conditions are compiled by the numba target
(`rules.expression.numba_target`) into programs, which the kernel runs as data (the filing
rules compiled into the kernel's loop, `simulator.fixed_programs`; the others through the
target's interpreter; no rule text becomes code), and the effects the model knows for
appeals, whose arguments are literal words, become small tables indexed by the rule that
fired:

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
random, are booked without branches that would be mispredicted.

How a chunk of a round's appellants goes (`appeal_day`), each step a pass over the chunk or
over the appeals it concerns:

  - the filing rules are compiled into the pass that files the chunk's appeals
    (`simulator.fixed_programs`: `appeal_day` is compiled once for the program): each appeal
    is read, decided and its refusals booked in one loop, the fields read where the state
    keeps them (`_field_value`). A program past `fixed_programs.MAX_OPS` runs through the
    interpreter instead, as the decided rules always do: in place over one matrix
    (`Program.flatten`), whose fields, constants and registers are rows of it, so a program
    costs only its computing ops, and only the fields a program reads and that change from
    appeal to appeal are written per chunk (the payload's, once a day);
  - the booking is split by what an appeal changes: refusals over the chunk, which packs the
    accepted appeals to the front; outcomes and counters over those, which packs the upheld
    ones; the refunds they recover over those. The counters accepted appeals book are written
    straight where the `appeal_decided` program reads them, and that program runs over the
    accepted appeals only;
  - an appeal that is not accepted changes no field the `appeal_filed` rules read (unless
    they read the refusals or the request for a human review): the appellant's further
    rounds that day would be decided alike, so they are booked with it (`repeats`). Most
    appellants who file more than once a day are blocked ones;
  - where the filing rules run through the interpreter, the first round asks for the
    counters' cache lines as it reads the appellants (`kernels.prefetch`), so that the passes
    after it find them in the cache (the compiled pass, which reads them at once, gains
    nothing from it).

At 200,000 merchants (about 90,000 appellants and 113,000 appeals a day) this took the
kernel from about 2.9 to about 1.6 ms of CPU a day in the same process (shared machine).
Compiling the filing rules into the pass that files the appeals took a day's call (day 30,
91,769 appellants, captured) to 0.85-0.89 of its time, timed alone in one process
(bench/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from rules.expression.errors import ExpressionError
from rules.expression.numba_target import (
    FlatProgram,
    Program,
    Vocabulary,
    compile_program,
    first_hit_block,
    run_block,
)
from simulator.fixed_programs import FixedProgram, first_rule_reading
from simulator.kernels import _OPTIONS, _kernel, prefetch

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
#: The sources the kernel reads for each chunk (the others are written once a day, or as
#: appeals are booked).
_GATHERED = (ROW, FILED_MONTH, FILED_YEAR, FAILED_MONTH, FAILED_YEAR, REFUSED_MONTH, BLOCKED,
             HUMAN_REQUESTED)
#: The counters filing changes, in the order `appeal_day` takes their rows.
_BOOKED = (FILED_MONTH, FILED_YEAR, FAILED_MONTH, FAILED_YEAR, REFUSED_MONTH)
#: Event fields each round sets anew, per event type.
_EVENT_SOURCES = {
    "appeal_filed": {"event.human_review_requested": HUMAN_REQUESTED},
    "appeal_decided": {"event.outcome": OUTCOME, "event.reviewer": REVIEWER},
}
_EVENT_TYPES = ("appeal_filed", "appeal_decided")
_U0 = np.uint64(0)
#: Appellants per chunk of a round (the width of the programs' matrix): wider than the numba
#: target's default, since each chunk costs a few calls whose array arguments are
#: reference-counted (1,024 made the rounds about a tenth faster than 256; 512 to 4,096
#: measured alike once the programs ran in place).
CHUNK = 1024
#: How many appellants ahead of the one it books the interpreter's first round asks for its
#: merchant's `want` and day's attempts (`kernels.prefetch`): far enough that they arrive in
#: time.
AHEAD = 32
#: Appellants whose rounds run together before the next ones' (`appeal_day`): their state rows
#: stay in the nearer caches from round to round (4,096 made the day's rounds about an eighth
#: faster than 65,536; 2,048 to 8,192 measured alike).
BLOCK = 4096


@dataclass(frozen=True)
class _EventProgram:
    """One event type's rule conditions as one program, run in place over the rounds' shared
    matrix (`AppealRounds`): its fields are rows of the matrix, and its constants and
    registers rows of its own there (`Program.flatten`)."""

    program: Program
    flat: FlatProgram
    conditions: np.ndarray  # the rows holding each rule's condition, in rule order
    rows: dict[str, int]  # the shared matrix's row of each of the program's fields
    gathered: np.ndarray  # the rows of its fields the kernel reads from the state or the day


class AppealRounds:
    """The appeal rulebook prepared for `appeal_day` (`of` says None for a set without one).
    The effects' arguments (review, scope) are choices, which rulebooks give as literal words
    (`rules.effects`), so every rule's effects are the same on every row: a table entry.

    Both programs run over one matrix (`matrix`, CHUNK columns): one row per field, then each
    program's constants and registers, then a row the kernel writes what no program reads
    to. A merchant's or listing's field is one row for both programs (the two events' scopes
    share those namespaces), an event's field one row per event type (their payloads differ).
    The event's payload is one value for every appellant (`constants`), written into its rows
    once a day like the programs' constants, so only the fields that change from appeal to
    appeal are written per chunk: counters and merchants' own fields (the latter, if the rules
    read any, gathered over the appellants once a day: `static`), the draw's request for a
    human review, the outcome and the reviewer."""

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
        self.repeats = self._repeats(filed, sources, self._padded[0], self._padded[1])
        self.codes = np.array([vocabulary.code(t) for t in ("upheld", "rejected", "human",
                                                              "automated")], dtype=np.float64)
        self.spare = decided.flat.stop  # the row for values no program reads
        self.matrix = np.full((self.spare + 1, CHUNK), np.nan)
        for ep in (filed, decided):
            for row, value in ep.flat.fills:
                self.matrix[row] = value
        self._constant_rows = np.flatnonzero(sources == CONSTANT)
        #: (row, event type, payload key) of each `CONSTANT` row.
        self._payload = [(row, et, field.split(".", 1)[1])
                         for et, ep in zip(_EVENT_TYPES, (filed, decided), strict=True)
                         for field, row in ep.rows.items() if sources[row] == CONSTANT]
        found = [np.flatnonzero(sources == k) for k in (OUTCOME, REVIEWER)]
        self._outcome_row, self._reviewer_row = (int(f[0]) if f.size else self.spare
                                                 for f in found)
        # Where the kernel writes each counter that filing changes as it books accepted
        # appeals: the decided program's row of it, or the spare row.
        read = {sources[row]: row for row in decided.rows.values()}
        self._booked_rows = np.array([read.get(k, self.spare) for k in _BOOKED],
                                     dtype=np.int64)
        self.per_row = bool(np.any(sources == ROW))
        self._no_static = np.empty((0, 0))
        #: The filing program as `appeal_day` is compiled for it (None: it runs through the
        #: interpreter, a block at a time: a program past `fixed_programs.MAX_OPS`, or
        #: `compile_filed` False).
        program = FixedProgram.of(filed.flat, filed.conditions.tolist(),
                                  {row: int(sources[row]) for row in filed.rows.values()})
        self.filed_program = program.fixed if program is not None and self.compile_filed \
            else None

    #: False: the filing rules run through the interpreter (`run_block`) whatever their size
    #: (tests compare).
    compile_filed = True

    @staticmethod
    def _repeats(filed: _EventProgram, sources: np.ndarray, accepts: np.ndarray,
                 refuses: np.ndarray) -> np.ndarray:
        """Per entry of the padded tables: whether an appeal it decides leaves the next
        round's `appeal_filed` inputs as they were, so that the appellant's further rounds
        that day are decided alike. An appeal that is not accepted changes no counter but
        the refusals (and no decided event follows), the payload is the same every round,
        and the request for a human review is the one input drawn anew."""
        reads = {int(sources[row]) for row in filed.rows.values()}
        if HUMAN_REQUESTED in reads:
            return np.zeros(accepts.shape, dtype=np.int32)
        counted = REFUSED_MONTH in reads
        return ((accepts == 0) & ((refuses == 0) | (not counted))).astype(np.int32)

    @classmethod
    def of(cls, book: Any) -> AppealRounds | None:
        """The appeal rulebook `book` prepared for `appeal_day`; None for a set without
        one, or where the numba target refuses a rule's condition (a rounding to 30 digits,
        say), whose appeals then take the numpy path, which tells the same story."""
        rulebook = getattr(book, "rulebook", None)
        if rulebook is None:
            return None
        vocabulary = Vocabulary()
        rules = {et: [rulebook.rule(rid) for rid in book.rules_for(et)] for et in _EVENT_TYPES}
        try:
            programs = {et: compile_program([r.when.node for r in rules[et]], vocabulary)
                        for et in _EVENT_TYPES}
        except ExpressionError:
            return None
        shared: dict[Any, int] = {}
        sources: list[int] = []
        bound = {}
        field_rows: dict[str, dict[str, int]] = {}
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
            field_rows[et] = rows
        first = len(sources)
        for et in _EVENT_TYPES:
            program, rows = programs[et], field_rows[et]
            flat = program.flatten(rows, first)
            first = flat.stop
            # The decided program reads the counters filing changes where the kernel
            # wrote them as it booked the appeals (`_BOOKED`).
            skip = _BOOKED if et == "appeal_decided" else ()
            gathered = sorted({r for r in rows.values()
                               if sources[r] in _GATHERED and sources[r] not in skip})
            bound[et] = _EventProgram(program, flat,
                                      np.array(flat.results, dtype=np.int64), rows,
                                      np.array(gathered, dtype=np.int64))
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
        numba target encodes them (`encode_constants`). Plain numbers, flags, words and
        None are encoded here directly, as that does (its columnar reading costs about a
        tenth of a millisecond a day in the model's run)."""
        out = np.full(len(self.sources), np.nan)
        for row, et, key in self._payload:
            code = _scalar_code(events[et].get(key), self.vocabulary)
            if code is None:  # any other kind of value: the numba target's own reading
                return self.encode_constants(events)
            out[row] = code
        return out

    def encode_constants(self, events: Mapping[str, Mapping[str, Any]]) -> np.ndarray:
        """`constants` through the numba target's reading of a columnar scope."""
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
        self.matrix[self._constant_rows] = constants[self._constant_rows, None]
        appeal_day(per_day, BLOCK, active, want, au, shift, human_share, human_success,
                   automated_success, next_month, next_year, self.sources, static, self.matrix,
                   self.filed_program, f.gathered, f.flat.ops, f.flat.consts, f.conditions,
                   d.gathered, d.flat.ops, d.flat.consts, d.conditions, self._outcome_row,
                   self._reviewer_row, self._booked_rows,
                   *self._padded, self.repeats, self.codes,
                   counters["appeals_filed_month"], counters["appeals_filed_year"],
                   counters["appeals_failed_month"], counters["appeals_failed_year"],
                   counters["appeals_refused_month"], counters["appeal_blocked_until"],
                   wrongful, wrongful_burden, day_refund, day_attempted, day_won)


def _scalar_code(value: Any, vocabulary: Vocabulary) -> float | None:
    """A payload value as the numba target encodes one value for every row (None, a flag, a
    number of float64's range or a word); None for any other kind of value."""
    if value is None:
        return math.nan  # unknown
    if isinstance(value, bool | np.bool_):
        return 1.0 if value else 0.0
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        return None  # numpy would not hold it as an integer
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)  # NaN stays NaN: unknown
    if isinstance(value, str):
        return float(vocabulary.code(value))
    return None


@_kernel
def appellants(want):  # pragma: no cover - compiled
    """np.flatnonzero(want > 0), packed without branches (the merchants who appeal are
    about a third, at random: a branch on each would be mispredicted)."""
    out = np.empty(want.shape[0], dtype=np.int64)
    k = 0
    for x in range(want.shape[0]):
        out[k] = x
        k += want[x] > 0
    return out[:k]


@njit(inline="always", **_OPTIONS)
def _human_requested(rt, shift, share):  # pragma: no cover - compiled
    """Whether the appeal whose draw is rt asks for a human review: the draw's offset by
    `shift` is under `share` (1.0 or 0.0)."""
    v = np.float64(rt) + shift
    v -= np.floor(v)
    return 1.0 if v < share else 0.0


@njit(inline="always", **_OPTIONS)
def _field_value(src, f, i, j, rt, static, matrix, filed_m, filed_y, failed_m, failed_y,
                 refused_m, blocked, shift, share):  # pragma: no cover - compiled
    """The value of field row `f` (of source `src`) for appeal j, of merchant i, whose draw is
    rt, as `_gather` reads it: a static field of the appellant, a counter as it stands, the
    request for a human review the draw makes, or the day's payload (its row of the matrix,
    filled once a day)."""
    if src == ROW:
        return static[f, j]
    if src == FILED_MONTH:
        return np.float64(filed_m[i])
    if src == FILED_YEAR:
        return np.float64(filed_y[i])
    if src == FAILED_MONTH:
        return np.float64(failed_m[i])
    if src == FAILED_YEAR:
        return np.float64(failed_y[i])
    if src == REFUSED_MONTH:
        return np.float64(refused_m[i])
    if src == BLOCKED:
        return blocked[i]
    if src == HUMAN_REQUESTED:
        return _human_requested(rt, shift, share)
    return matrix[f, 0]  # CONSTANT


@njit(inline="always", **_OPTIONS)
def _read_field(src, f, env):  # pragma: no cover - compiled
    """`_field_value` for `first_filed_rule`: env is (i, j, rt, static, matrix, the six
    counters, shift, share)."""
    return _field_value(src, f, env[0], env[1], env[2], env[3], env[4], env[5], env[6], env[7],
                        env[8], env[9], env[10], env[11], env[12])


#: ``first_filed_rule(filed, env)``: the first `appeal_filed` rule known True for the appeal
#: `env` describes (`_read_field`), compiled for the program `filed` (`FixedProgram`).
first_filed_rule = first_rule_reading(_read_field)


@_kernel
def _gather(sources, gathered, static, ci, cj, c, matrix, filed_m, filed_y, failed_m,
            failed_y, refused_m, blocked, r, shift, share):  # pragma: no cover - compiled
    """The `gathered` rows of the matrix for the c appellants (numbers `cj`, merchants `ci`):
    their static fields, the counters as they stand and the request for a human review
    that their draws `r` (by position) make."""
    for k in range(gathered.shape[0]):
        f = gathered[k]
        src = sources[f]
        out = matrix[f]
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
                out[t] = _human_requested(r[t], shift, share)


@_kernel
def _gather_counter(counter, ci, c, out):  # pragma: no cover - compiled
    """out[t] = counter[ci[t]] as float64, for t < c."""
    for t in range(c):
        out[t] = counter[ci[t]]


@_kernel
def _first_rules(ops, consts, conditions, matrix, c, hit):  # pragma: no cover - compiled
    """hit[t] = the first rule whose condition is known True for column t < c (-1: none)."""
    if conditions.shape[0] == 0:
        hit[:c] = -1
        return
    run_block(ops, consts, matrix, 0, c, matrix)
    first_hit_block(matrix, conditions, c, hit, 0)


@njit(inline="always", **_OPTIONS)
def _book_filed(p, t, i, j, left, refuses, repeats, accepts, refused_m, later, n_later, taken,
                n_decided):  # pragma: no cover - compiled
    """Book appeal t (merchant i, number j, `left` rounds after this one) decided by table
    entry p: its refusals, and an appeal the next rounds would decide alike for them too
    (arithmetic, not a choice: LLVM would branch on it); j kept in `later` if it files
    again, t in `taken` if accepted, each without a branch to mispredict. Returns the new
    counts of `later` and `taken`."""
    again = repeats[p]  # 0 or 1
    refused_m[i] += refuses[p] * (np.int32(1) + np.int32(left) * again)
    later[n_later] = j
    n_later += np.uint64(left > 0) * np.uint64(1 - again)
    taken[n_decided] = t
    n_decided += np.uint64(accepts[p] > 0)
    return n_later, n_decided


@njit(inline="always", **_OPTIONS)
def _file(filed, t, i, j, left, draws, cj, ci, r, hit, static, matrix, filed_m, filed_y,
          failed_m, failed_y, refused_m, blocked, shift, share, none_f, refuses, repeats,
          accepts, later, n_later, taken, n_decided):  # pragma: no cover - compiled
    """Appeal t of a chunk (merchant i, number j, `left` rounds after this one) filed: its
    numbers kept by position, the filing rules' decision (`first_filed_rule`, compiled for
    `filed`) and its booking (`_book_filed`). Returns the new counts of `later` and `taken`."""
    rt = np.float64(draws[j])
    cj[t] = j
    ci[t] = i
    r[t] = rt
    h = first_filed_rule(filed, (i, j, rt, static, matrix, filed_m, filed_y, failed_m, failed_y,
                                 refused_m, blocked, shift, share))
    hit[t] = h
    return _book_filed(np.uint64(none_f if h < 0 else h), t, i, j, left, refuses, repeats,
                       accepts, refused_m, later, n_later, taken, n_decided)


@_kernel
def _file_chunk(filed, a, first, base, cu, per_day, active, want, rows, draws, day_attempted,
                cj, ci, r, hit, static, matrix, filed_m, filed_y, failed_m, failed_y, refused_m,
                blocked, shift, share, none_f, refuses, repeats, accepts, later, n_later,
                taken):  # pragma: no cover - compiled
    """Round a's appeals of a chunk of cu appellants, in one pass (`appeal_day`'s first
    passes with the filing rules compiled for `filed`): in the first round the block's
    appellants from number `first` on (each files, its attempts counted), later the numbers
    `rows[base:]`; each appeal's numbers kept by position, the filing rules' decision
    (`first_filed_rule`) and its booking (`_book_filed`). Its own function: the kernel's
    registers are then this pass's. Returns the counts of `later` and of the accepted
    appeals (`taken`)."""
    n_decided = _U0
    if a == 0:  # every appellant of the block, in order
        for t in range(cu):
            j = first + t
            i = np.uint64(active[j])
            wants = min(want[i], per_day)
            day_attempted[i] = day_attempted[i] + np.float64(wants)
            n_later, n_decided = _file(filed, t, i, j, wants - 1, draws, cj, ci, r, hit,
                                       static, matrix, filed_m, filed_y, failed_m, failed_y,
                                       refused_m, blocked, shift, share, none_f, refuses,
                                       repeats, accepts, later, n_later, taken, n_decided)
    else:
        for t in range(cu):
            j = rows[base + t]
            i = np.uint64(active[j])
            n_later, n_decided = _file(filed, t, i, j, min(want[i], per_day) - 1 - a, draws,
                                       cj, ci, r, hit, static, matrix, filed_m, filed_y,
                                       failed_m, failed_y, refused_m, blocked, shift, share,
                                       none_f, refuses, repeats, accepts, later, n_later,
                                       taken, n_decided)
    return n_later, n_decided


@_kernel
def appeal_day(per_day, block, active, want, au, shift, human_share, human_success,
               automated_success, next_month, next_year, sources, static, matrix, filed,
               gathered_f, ops_f, consts_f, cond_f, gathered_d, ops_d, consts_d, cond_d,
               outcome_row, reviewer_row, booked_rows, accepts, refuses, human_review, block_month,
               block_year, repeats, codes, filed_m, filed_y, failed_m, failed_y, refused_m, blocked,
               wrongful, wrongful_burden, day_refund, day_attempted, day_won
               ):  # pragma: no cover - compiled
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

    A chunk of the round's appellants (`matrix.shape[1]`) at a time: the `appeal_filed`
    rules decide the chunk, compiled into the pass that files it (`_file_chunk`) when
    `filed` is their `FixedProgram.fixed`, else (None) run by the interpreter in place over
    `matrix` (`AppealRounds`); the `appeal_decided` program runs in place over the chunk's
    accepted appeals only, packed to the front of the matrix as they are booked. Each
    interpreted program's fields that change from appeal to appeal and that the booking does
    not write (`gathered_f`, `gathered_d`) are read from the state just before it runs; the
    outcome, the reviewer and the counters filing changes are written as accepted appeals
    are booked, to the decided program's rows of them (`outcome_row`,
    `reviewer_row`, `booked_rows`: the counters in `_BOOKED`'s order) or to the spare row.
    An appeal decided by an entry whose `repeats` is 1 (`AppealRounds._repeats`) is booked
    for the appellant's further rounds too, which it then leaves. `codes` are the vocabulary
    codes of "upheld", "rejected", "human" and "automated".
    """
    n_all = active.shape[0]
    last = np.uint64(max(n_all - 1, 0))
    width = matrix.shape[1]
    span = min(block, n_all)
    # Positions are unsigned: numba does not test them for counting from the end.
    rows = np.empty(span, dtype=np.uint64)
    later = np.empty(span, dtype=np.uint64)
    ci = np.empty(width, dtype=np.uint64)
    cj = np.empty(width, dtype=np.uint64)
    taken = np.empty(width, dtype=np.uint64)
    rest = np.empty(width, dtype=np.int64)
    won = np.empty(width, dtype=np.uint64)
    di = np.empty(width, dtype=np.uint64)
    dj = np.empty(width, dtype=np.uint64)
    r = np.empty(width)
    hit = np.empty(width, dtype=np.int64)
    hit_d = np.empty(width, dtype=np.int64)
    none_f = accepts.shape[0] - 1  # the tables' last entry: no rule, no effect
    outcome = matrix[outcome_row]
    reviewer = matrix[reviewer_row]
    new_filed_m = matrix[booked_rows[0]]
    new_filed_y = matrix[booked_rows[1]]
    new_failed_m = matrix[booked_rows[2]]
    new_failed_y = matrix[booked_rows[3]]
    new_refused_m = matrix[booked_rows[4]]
    for lo in range(0, n_all, block):
        k = min(block, n_all - lo)
        for a in range(per_day):
            if k == 0:
                break
            draws = au[a]
            n_later = _U0
            for low in range(0, k, width):
                c = min(width, k - low)
                cu = np.uint64(c)
                if filed is not None:
                    # The filing rules compiled into one pass over the chunk (`FixedProgram`).
                    n_later, n_decided = _file_chunk(
                        filed, a, np.uint64(lo + low), np.uint64(low), cu, per_day, active,
                        want, rows, draws, day_attempted, cj, ci, r, hit, static, matrix,
                        filed_m, filed_y, failed_m, failed_y, refused_m, blocked, shift,
                        human_share, none_f, refuses, repeats, accepts, later, n_later, taken)
                else:
                    if a == 0:  # every appellant of the block, in order: each files one appeal
                        first = np.uint64(lo + low)
                        for t in range(cu):
                            j = first + t
                            i = np.uint64(active[j])
                            cj[t] = j
                            ci[t] = i
                            r[t] = draws[j]
                            ahead = np.uint64(active[min(j + np.uint64(AHEAD), last)])
                            prefetch(want, ahead)
                            prefetch(day_attempted, ahead)
                            wants = want[i]
                            day_attempted[i] = day_attempted[i] + np.float64(min(wants, per_day))
                            # The counters the chunk's next passes read and book.
                            prefetch(blocked, i)
                            prefetch(filed_m, i)
                            prefetch(refused_m, i)
                            prefetch(filed_y, i)
                            prefetch(failed_m, i)
                            prefetch(failed_y, i)
                            rest[t] = min(wants, per_day) - 1
                    else:
                        base = np.uint64(low)
                        for t in range(cu):
                            j = rows[base + t]
                            i = np.uint64(active[j])
                            cj[t] = j
                            ci[t] = i
                            r[t] = draws[j]
                            rest[t] = min(want[i], per_day) - 1 - a
                    _gather(sources, gathered_f, static, ci, cj, c, matrix, filed_m, filed_y,
                            failed_m, failed_y, refused_m, blocked, r, shift, human_share)
                    _first_rules(ops_f, consts_f, cond_f, matrix, c, hit)
                    # Booked in three passes, each over the appeals it changes anything for, with
                    # no branch on the data (the outcomes are random, branches on them
                    # mispredicted): refusals (no rule is the tables' last entry, which adds
                    # zeros) over the chunk, packing the accepted appeals to the front; their
                    # outcomes over those, packing the upheld ones; the refunds they recover.
                    n_decided = _U0
                    for t in range(cu):
                        n_later, n_decided = _book_filed(
                            np.uint64(none_f if hit[t] < 0 else hit[t]), t, ci[t], cj[t], rest[t],
                            refuses, repeats, accepts, refused_m, later, n_later, taken, n_decided)
                n_upheld = _U0
                for u in range(n_decided):
                    t = taken[u]
                    p = np.uint64(hit[t])
                    i = ci[t]
                    accepted = accepts[p]
                    by_human = human_review[p]
                    success = human_success if by_human else automated_success
                    upheld = r[t] < success
                    failed = np.int32(1) - np.int32(upheld)
                    # Booked, and written where the decided program reads them (or spare).
                    v = filed_m[i] + accepted
                    filed_m[i] = v
                    new_filed_m[u] = v
                    v = filed_y[i] + accepted
                    filed_y[i] = v
                    new_filed_y[u] = v
                    v = failed_m[i] + failed
                    failed_m[i] = v
                    new_failed_m[u] = v
                    v = failed_y[i] + failed
                    failed_y[i] = v
                    new_failed_y[u] = v
                    new_refused_m[u] = refused_m[i]
                    outcome[u] = codes[0] if upheld else codes[1]
                    reviewer[u] = codes[2] if by_human else codes[3]
                    di[u] = i
                    dj[u] = cj[t]
                    won[n_upheld] = i
                    n_upheld += np.uint64(upheld)
                for u in range(n_upheld):
                    i = won[u]
                    w = wrongful[i]
                    day_won[i] = day_won[i] + 1.0
                    day_refund[i] = day_refund[i] - (wrongful_burden[i] / w if w > 0 else 0.0)
                if n_decided == 0 or cond_d.shape[0] == 0:
                    continue
                n = np.int64(n_decided)
                _gather(sources, gathered_d, static, di, dj, n, matrix, filed_m,
                        filed_y, failed_m, failed_y, refused_m, blocked, r, shift, human_share)
                _first_rules(ops_d, consts_d, cond_d, matrix, n, hit_d)
                for t in range(n_decided):
                    q = hit_d[t]
                    if q < 0:  # most appeals: a branch seldom taken
                        continue
                    i = di[t]
                    if block_month[q] and next_month > blocked[i]:
                        blocked[i] = next_month
                    if block_year[q] and next_year > blocked[i]:
                        blocked[i] = next_year
            rows, later = later, rows
            k = np.int64(n_later)
