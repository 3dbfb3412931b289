"""The daily model, vectorised: whole merchant populations per step, driven by compiled rulebooks.

This is `simulator.reference` (read its docstring for the day's steps) written over numpy arrays:
every rule decision comes from the rulebook's vectorised compile target
(`rules.targets.vectorised`) evaluated on event-shaped columnar scopes, never from rules written
here. Merchants' claims, orders and appeals of one day are interchangeable within a merchant, so
each event shape is evaluated once per merchant and its effects multiplied by the count; only
appeals, which change the counters the next appeal reads, go round by round (at most
``appeals.max_per_day`` rounds, each over the merchants that still have one to file).

State is flat arrays over (replication x product group x seller slot), replication-major, in the
scenario's float dtype (float32 by default: prices, costs, cash and quality need ~7 digits);
event times and deadlines stay float64 (epoch seconds), counts are integers. Each replication's
random numbers come from its own Generator and its own merchants' lanes, all made from its
seed, in the order `simulator.population` documents, so a replication gives the same numbers
whether it runs alone or beside others.

Rule arithmetic runs in float64 whatever the state dtype (the vectorised target's numbers are
float64). In float32 mode ranking scores are compared at float32 precision (see
`Model._position_weight`); in float64 mode every step matches the reference to rounding.

Speed (none of this changes a result; `tests/simulator/test_model.py` pins that the block size
does not change a bit):
  - every stage where a merchant's day does not depend on other merchants (ranking scores,
    orders, refunds, appeals, accounts) runs over contiguous blocks of `_BLOCK` merchants, so
    its few dozen whole-array passes work on arrays that stay in the CPU cache instead of
    streaming the population from memory each time; blocks skip the padding slots of smaller
    product groups. Commission and ad fees, a few passes whose decisions cost more per call
    than per merchant, are decided and charged for all merchants at once: in one compiled
    pass where the commission rules allow (`simulator.charge_rules`, both bundled sets),
    else through the numpy target;
  - a decision that no per-merchant field decides (`Decisions.uniform`: say, every claim of a
    class goes to the merchant first) is booked over all rows at once, and a refund event
    whose rules never read the evidence is decided once for both evidence classes;
  - a claim decision or due deadline whose rules read only the claim's literal fields (its
    kind, status, the merchant's answer: `_CLAIM_LITERALS`) is decided once per block size
    and reused by every block and every day (`Model._claim_constants`), instead of being
    decided again over each block; the literal arguments of effects are broadcast once per
    row count (`rules.targets.vectorised`);
  - claim bookings are a count times a cost per claim, so merchants with no claims of a kind
    are booked zero in whole-column arithmetic rather than gathered out and scattered back;
  - the stages that decide nothing (ranking positions and exposure, orders, end-of-day
    accounts, claim counts and rounding offsets, the arithmetic of an appeal round, fee
    bookings) run as compiled kernels (`simulator.kernels`, numba): one pass per merchant
    instead of a few dozen numpy passes, with numpy's rounding and summation order, so the
    numbers are the ones the numpy code gave, bit for bit. In the refund routing a grant's
    cost per claim is computed inside its booking pass (no cost arrays), a rule's share of a
    stage's claims is selected there too (no masked copies), and the merchant's answers to
    both evidence classes, and the platform's review grants with the day's close, take one
    pass each. When every claim request awaits the merchant, both classes' claims are
    counted and split between the platform and the merchant in one pass, and a grant that
    one decision makes for both classes (an intervention whose rules do not read the
    evidence, a response deadline falling due) books both classes' claims in one pass.
    When, moreover, each routing stage's rules book at most one grant at literal arguments
    and add claims to the stage's tables at most once each (both bundled sets do), a
    block's whole refund day is one compiled pass (`kernels.refund_day`): each stage's
    decision becomes its rule per row (or one rule for all) and bit masks of the effects
    of each rule (`_Claims.plan`), and no intermediate count is ever written. The pass is
    compiled for the stages' tables and single positions (`simulator.fixed`), once for
    each combination and state dtype (one for each bundled set over a year);
  - a claim or order decision (the latter on the numpy path of the fees) that reads state
    fields (say, the refund amount against a protection line) is kept from day to day over
    all merchants (`_KeptDecisions`): once a day only the merchants whose fields changed,
    in every block, are decided again, in one decision, and patched in; each block reads
    its rows through a view. The fields are compared once a day for all the kept decisions
    that read them (`_Changes`), and the claim columns at the merchants that changed are
    gathered once for all of them;
  - a day's appeals run in one compiled call (`simulator.appeal_rounds`) over every round of
    every appellant, booking straight into the state and the day's flows: the appeal rules'
    conditions go through the numba compile target (`rules.expression.numba_target`) on
    inputs encoded once a day, and their effects, whose arguments are literal words, become
    tables (the numpy path, which tells the same story, serves sets without appeal rules and
    the tests that compare);
  - a listing none of whose fields the ranking rules read (`VectorisedRulebook.reads`)
    changed since yesterday keeps yesterday's ranking decision (`_Inputs`): only the
    listings whose price, cost, quality or promotion price moved are decided again, their
    ranking keys computed again (and, whole, those of a group where a merchant died or
    entered), and merged into each group's ranking keys, kept in rank order from day to day;
  - in the auto-follow part of the day, a toggle of auto-follow whose rules read only the
    event's literal fields (whether it joins, whether the code was entered) is decided once
    per run and its effects reused (`Model._decide_alike`); the day's accidental enrolments,
    attempts to leave and repricing are picked in one compiled walk (`kernels.toggle_codes`),
    parted and repriced in two more over the few picked (`Model._toggles`);
    the groups' least live prices come from the prices' bits in one pass
    (`kernels.live_minima`); the merchants that see a lower web price are looked for only in
    the groups where it fell (a group is a range of slots); the deadlines due and the prompts
    open are looked for only among the merchants recorded as given one (`_Selections`), not
    over every merchant; the follow probability is computed once per count of prompts seen,
    and the prompts' answers, the deadlines taken, armed and cancelled and the prompts
    opened take one compiled pass each instead of numpy's gathers, masks and scatters;
  - the day's working arrays that are not returned (scores, claims wanted, ad clicks) are
    kept from day to day instead of being allocated (and faulted in) again, and so are the
    day's flows when the caller hands them back zeroed (`Model.recycle_flows`, as
    `simulator.run` does after aggregating them); the command-line
    runs, sweep workers and benchmarks also ask the C allocator to keep freed memory for the
    next day's arrays (`simulator.memory`; not the long-running service, which gives memory
    back after a run).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import sys
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from rules.expression.numpy_target import Column, as_columns
from rules.rulebook import RulebookSet
from rules.targets.vectorised import Decisions, VectorEffect, VectorisedRulebook, compile_set
from simulator import charge_rules, kernels
from simulator.aggregates import DayFlows
from simulator.appeal_rounds import AppealRounds, appellants
from simulator.charge_rules import CompiledCharges
from simulator.draws import APPEAL_STREAM, MerchantLanes
from simulator.fixed import Fixed
from simulator.memory import mapped_zeros
from simulator.population import (
    DAY,
    GOLDEN,
    REJECTED,
    U_ADAPT,
    U_CLAIMS,
    U_ORDERS,
    U_PROMPT,
    U_REFUND,
    U_TOGGLE,
    UPHELD,
    Calendar,
    Layout,
    appeal_draws,
    day_draws,
    position_weights,
    start_state,
    web_start,
)
from simulator.ranking_rules import CompiledRanking
from simulator.reference import BURDEN_MEMORY
from simulator.scenario import TIERS, Scenario

FAMILIES = ("ranking", "auto_follow", "refund", "appeal", "commission")
TIER_NAMES = np.array(TIERS)

Scope = dict[str, Any]


class _Lazy:
    """A field computed the first time a rule reads it, then kept (say, the text label of
    every merchant's tier, which most rulebooks never ask for)."""

    def __init__(self, make: Callable[[], Any]):
        self._make: Callable[[], Any] | None = make
        self._value: Any = None

    def get(self) -> Any:
        if self._make is not None:
            self._value, self._make = self._make(), None
        return self._value


class _View(Mapping[str, Any]):
    """A namespace for the rows `idx` of n rows (indices or a slice; None: all of them), read
    lazily: a rule
    that never asks for a field costs nothing. Arrays and `Column`s of length n are read at
    `idx` (as they are when `idx` has all n rows); arrays already of the subset's length and
    scalars pass through; `_Lazy` fields are computed on first use."""

    def __init__(self, fields: dict[str, Any], idx: np.ndarray | slice | None, n: int):
        self.fields = fields
        self.idx = idx
        self.n = n
        if isinstance(idx, slice):
            self.size = len(range(*idx.indices(n)))
        else:
            self.size = n if idx is None else idx.size

    def __getitem__(self, key: str) -> Any:
        value = self.fields[key]
        if isinstance(value, _Lazy):
            value = value.get()
        idx = self.idx
        if idx is None or (not isinstance(idx, slice) and idx.size == self.n):
            return value  # every row: no copy needed
        if isinstance(value, np.ndarray) and value.ndim == 1 and value.shape[0] == self.n:
            return value[idx]
        if isinstance(value, Column) and np.ndim(value.values) == 1 \
                and value.values.shape[0] == self.n:
            known = value.known[idx] if np.ndim(value.known) else value.known
            return Column(value.values[idx], known)
        return value

    def column(self, key: str) -> np.ndarray:
        """The field over the subset as an array (scalars broadcast)."""
        return np.broadcast_to(np.asarray(self[key]), (self.size,))

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)


class _Selections:
    """What the auto-follow day keeps beyond the state: each product group's seller range
    (the padding slots after it never live), the toggles' codes, the effects of the
    decisions made once for the run (`Model._decide_alike`), and the merchants given a
    deadline or a prompt, recorded as they are given one."""

    def __init__(self, n: int, layout: Layout, replications: int):
        groups = replications * len(layout.groups)
        self.starts = np.arange(groups, dtype=np.int64) * layout.slots
        self.stops = self.starts + np.tile(np.array(layout.sizes, dtype=np.int64),
                                           replications)
        self.code = np.zeros(n, dtype=np.uint8)  # (`kernels.toggle_codes`)
        #: The merchants given a deadline (`kernels.set_deadlines`, the only place a finite
        #: `dl_due` is written), in batches in increasing order, each with its earliest due:
        #: the due deadlines are looked for there, not over every merchant
        #: (`Model._due_rows`).
        self.deadlines: list[tuple[float, np.ndarray]] = []
        #: The merchants whose prompt was opened (`kernels.prompt_price_change`, the only
        #: place `prompt_open` is set) since the open prompts were last looked at, in
        #: batches in increasing order (`Model._open_rows`).
        self.opened: list[np.ndarray] = []
        #: The effects of decisions that read only literal event fields, by event type and
        #: the values of the fields read (`Model._decide_alike`).
        self.alike: dict[tuple[Any, ...], list[list[tuple[str, dict[str, Any]]]]] = {}
        #: By (rulebook id, event type, the event's field names): whether its rules read
        #: only those literal fields, and which of them they read, in order.
        self.alike_reads: dict[tuple[Any, ...], tuple[bool, tuple[str, ...]]] = {}


class _Deferred(Mapping[str, Any]):
    """A model's scope built the first time it is read, by `make(model)`. It refers to the
    model weakly: what keeps it from day to day (a kept decision, which the model keeps) must
    not keep the model alive after its run."""

    def __init__(self, model: Model, make: Callable[[Model], Scope]):
        self._model = weakref.ref(model)
        self._make = make
        self._scope: Scope | None = None

    def _get(self) -> Scope:
        if self._scope is None:
            model = self._model()
            assert model is not None, "the model is gone"
            self._scope = self._make(model)
        return self._scope

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def _known(a: np.ndarray) -> np.ndarray:
    return ~np.isnan(a) if a.dtype.kind == "f" else np.ones(a.shape, dtype=bool)


def _put_known(target: np.ndarray, values: Any, mask: np.ndarray) -> None:
    """``np.copyto(target, values, where=mask & _known(values))``: in one compiled pass
    (`kernels.put_known`) for float64 values of the target's rows, by numpy otherwise."""
    if (isinstance(values, np.ndarray) and values.dtype == np.float64
            and values.shape == target.shape and target.dtype == np.float64):
        kernels.put_known(target, values, mask.view(np.uint8))
    else:
        np.copyto(target, values, where=mask & _known(values))


def _union(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The merchants in `parts` (each recorded in increasing order), increasing, once each
    (`kernels.union_sorted`; numpy's unique should a part not be increasing)."""
    rows = _NO_ROWS
    for part in parts:
        out = np.empty(rows.size + part.size, dtype=np.int64)
        k = kernels.union_sorted(rows, part, out)
        rows = out[:k] if k >= 0 else np.unique(np.concatenate((rows, part)))
    return rows


class _NoRules:
    """Stands in for a family the set does not have: no rule ever fires."""

    rule_ids: tuple[str, ...] = ()

    def rules_for(self, event_type: str) -> tuple[str, ...]:
        return ()

    def reads(self, event_type: str) -> frozenset[str]:
        return frozenset()

    def decide(self, event_type: str, scope: Any, n: int) -> _NoDecisions:
        return _NoDecisions(event_type, np.full(n, -1, dtype=np.int32))


class _NoDecisions:
    #: No rule decided any row (as `Decisions.uniform` says it).
    uniform = -1

    def __init__(self, event_type: str, rule: np.ndarray):
        self.event_type, self.rule = event_type, rule


#: Per-merchant state behind the scope fields rules read (see `Model._scope`).
_STATE_FIELDS = {
    "event.price": "price", "listing.price": "price",
    "event.unit_cost": "unit_cost", "listing.unit_cost": "unit_cost",
    "event.quality": "quality", "listing.quality": "quality",
    "event.promo_signup_price": "promo", "listing.promo_signup_price": "promo",
    "listing.prompt_pending": "prompt_open", "listing.prompt_target": "prompt_target",
    "listing.prompt_silenced_until": "silenced_until",
    "listing.competitor_price": "competitor_price",
    "merchant.auto_follow_enrolled": "enrolled",
    "merchant.appeals_filed_month": "appeals_filed_month",
    "merchant.appeals_filed_year": "appeals_filed_year",
    "merchant.appeals_failed_month": "appeals_failed_month",
    "merchant.appeals_failed_year": "appeals_failed_year",
    "merchant.appeals_refused_month": "appeals_refused_month",
    "merchant.appeal_blocked_until": "appeal_blocked_until",
}
#: Scope fields that never change for a merchant (its group and tier, fixed identifiers).
_FIXED_FIELDS = frozenset({"event.product_group", "listing.product_group", "event.listing_id",
                           "merchant.size_tier"})
#: State fields no stage writes after the initial state (the promotion sign-up price: set by
#: `simulator.population.initial_state`, read by rules, changed by no effect, entry or exit;
#: a test pins it): a decision that reads one needs no comparison of it from day to day.
_UNWRITTEN_STATE = frozenset({"promo"})
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


class _Inputs:
    """The state fields a rulebook's decisions on an event read (`VectorisedRulebook.reads`),
    as they were at the last decision: two scopes that agree on these fields get the same
    decisions and effects, so a merchant none of whose fields changed keeps its decision.
    Rules that read anything else (the event's time, say) are decided afresh every time."""

    def __init__(self, book: Any, event_type: str):
        keys: set[str] | None = set()
        for name in book.reads(event_type):
            if name in _FIXED_FIELDS:
                continue
            key = _STATE_FIELDS.get(name)
            if key is None or keys is None:
                keys = None
                continue
            if key not in _UNWRITTEN_STATE:
                keys.add(key)
        self.keys = None if keys is None else sorted(keys)
        self.previous: dict[str, np.ndarray] | None = None
        self._changed = np.zeros(0, dtype=bool)

    def changed(self, s: Mapping[str, np.ndarray], starts: np.ndarray,
                stops: np.ndarray) -> np.ndarray | None:
        """Merchants whose fields changed (bit for bit) since the last call, which takes
        today's values as the new reference, within the blocks [starts, stops) (False
        elsewhere); None: decide every merchant (the first call, or rules that read more
        than state)."""
        if self.keys is None:
            return None
        if self.previous is None:
            self.previous = {k: s[k].copy() for k in self.keys}
            self._changed = np.zeros(len(s["alive"]), dtype=bool)
            return None
        changed = self._changed
        if not self.keys:
            return changed
        for f, k in enumerate(self.keys):
            current, previous = s[k], self.previous[k]
            as_bits = _UNSIGNED[current.dtype.itemsize]
            kernels.mark_changed_in(current.view(as_bits), previous.view(as_bits), starts, stops,
                                    changed, f == 0)
        return changed


class _Changes:
    """Which merchants' state fields `keys` changed (bit for bit), day by day, for every kept
    decision that reads those fields (`_KeptDecisions`): found once a day (one pass over the
    fields) however many decisions ask, and kept until every one of them has caught up.

    Its users are held weakly: a kept decision refers to its change history, not the other
    way round, so a finished model's kept decisions and histories (and the full-population
    arrays they hold: tens of megabytes at 200,000 merchants) are freed by reference counting
    as soon as the model is dropped, not by the cyclic garbage collector, which runs rarely
    on long-lived objects; until then the next model's arrays would take fresh pages from
    the kernel (a page fault per 4 KiB page touched)."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        self.previous: dict[str, np.ndarray] | None = None
        #: The last day the fields were compared.
        self.day: int | None = None
        #: (day, merchants whose fields changed since the comparison before), oldest first.
        self.history: list[tuple[int, np.ndarray]] = []
        #: The first day from which the history is complete (a decision that has not
        #: caught up for `_CHANGES_KEPT` comparisons is decided afresh).
        self.complete_from: int | None = None
        self.users: weakref.WeakSet[_KeptDecisions] = weakref.WeakSet()
        #: Room for the changed rows of one comparison, kept from day to day (`refresh`
        #: hands out a copy of the rows it found).
        self._found: np.ndarray | None = None

    def refresh(self, s: Mapping[str, np.ndarray], day: int) -> None:
        """Compare the fields with the last comparison's (once a day)."""
        if self.day == day:
            return
        self.day = day
        if self.previous is None:
            self.previous = {k: s[k].copy() for k in self.keys}
            self.complete_from = day
            return
        n = len(s["alive"])
        if len(self.keys) == 1:  # the usual case: the changed rows found in one pass
            (k,) = self.keys
            current, previous = s[k], self.previous[k]
            as_bits = _UNSIGNED[current.dtype.itemsize]
            found = self._found
            if found is None or found.shape[0] != n:
                found = self._found = np.empty(n, dtype=np.int64)
            rows = found[:kernels.changed_rows(current.view(as_bits), previous.view(as_bits),
                                               found)].copy()
        else:
            changed = np.zeros(n, dtype=bool)
            for k in self.keys:
                current, previous = s[k], self.previous[k]
                as_bits = _UNSIGNED[current.dtype.itemsize]
                kernels.mark_changed(current.view(as_bits), previous.view(as_bits), changed)
            rows = np.flatnonzero(changed)
        caught_up = self._caught_up(day)
        self.history = [(d, r) for d, r in self.history if d > caught_up]
        rows.flags.writeable = False  # `since` hands it out as it is, to every user
        self.history.append((day, rows))
        if len(self.history) > _CHANGES_KEPT:
            self.complete_from = self.history.pop(0)[0]

    def _caught_up(self, day: int) -> int:
        """The earliest day a living user was brought up to (`day` when none was). Read
        from the weak set's references themselves (copied first: a user freed meanwhile
        drops its own), not through the set's iteration, whose guard (a Python generator
        and context manager) cost about 30 microseconds a day on a cold cache."""
        caught_up: int | None = None
        for ref in tuple(self.users.data):
            user = ref()
            if user is not None and user.day is not None and (caught_up is None
                                                               or user.day < caught_up):
                caught_up = user.day
        return day if caught_up is None else caught_up

    def since(self, day: int) -> np.ndarray | None:
        """The merchants whose fields changed after the comparison of `day` (a day they were
        compared), in order; None when that is too long ago to tell."""
        assert self.complete_from is not None
        if day < self.complete_from:
            return None
        parts = [rows for d, rows in self.history if d > day]
        if len(parts) == 1:
            return parts[0]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


class _KeptDecisions:
    """A rulebook's decisions on one event shape over all the model's n merchants, kept from
    day to day: a merchant none of whose state fields the rules read changed (bit for bit)
    since the last decision gets the same rule and the same effect arguments (decisions are
    row by row), so only the merchants whose fields changed are decided again and patched in.

    They are brought up to date once a day, when the first block asks (no stage that asks
    changes the fields they read), in one decision over the changed merchants of every block,
    instead of one per block; each block then reads its rows through a view
    (`Decisions` whose rule and arguments are slices of these, kept while the decisions are
    patched in place). Which merchants changed comes from `changes`, shared by the kept
    decisions that read the same fields.

    `of` gives one when the rules for the event read nothing but `literals` (fields one
    value for every row and day of this event shape) and state fields (`fields` maps scope
    names to state keys); None otherwise (the event's time, say)."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        self.decisions: Any = None
        #: The merchants whose fields changed, shared with the kept decisions that read the
        #: same fields (`Model._kept_decisions`).
        self.changes = _Changes(keys)
        self.changes.users.add(self)
        #: The day (the model's count of days stepped) they were last brought up to date.
        self.day: int | None = None
        #: Each block's view, by its (start, stop), with the decisions it was cut from.
        self._views: dict[tuple[int, int], tuple[Any, Decisions]] = {}

    @classmethod
    def of(cls, reads: frozenset[str], literals: frozenset[str],
           fields: Mapping[str, str]) -> _KeptDecisions | None:
        keys: set[str] = set()
        for name in reads - literals - _FIXED_FIELDS:
            key = fields.get(name)
            if key is None:
                return None
            if key not in _UNWRITTEN_STATE:
                keys.add(key)
        return cls(sorted(keys))

    def decide(self, book: Any, event_type: str, s: Mapping[str, np.ndarray], day: int,
               block: slice, scope_of: Callable[[np.ndarray | None], Scope],
               block_scope: _Deferred) -> Any:
        """The decisions over the block's rows on `day` (the model's count of days stepped);
        `scope_of(rows)` is the event's scope over those rows of all n (None: all of them),
        `block_scope` over the block (built if read)."""
        if self.day != day:
            self._update(book, event_type, s, day, scope_of)
            self.day = day
        dec = self.decisions
        found = self._views.get((block.start, block.stop))
        if found is None or found[0] is not dec:
            effects = {rid: [VectorEffect(e.name, e.spec,
                                          {k: v[block] for k, v in e.args.items()},
                                          {k: v[block] for k, v in e.known.items()})
                             for e in calls]
                       for rid, calls in dec._effects.items()}
            view = Decisions(book, event_type, dec.columns, dec.rule[block], effects)
            found = self._views[(block.start, block.stop)] = (dec, view)
        view = found[1]
        view.uniform = dec.uniform
        # Any rule's effects evaluated later are the block's, today (the scope is built only
        # if they are: every rule that fired is evaluated already).
        view.columns = as_columns(block_scope, block.stop - block.start)
        return view

    def _update(self, book: Any, event_type: str, s: Mapping[str, np.ndarray], day: int,
                scope_of: Callable[[np.ndarray | None], Scope]) -> None:
        kept = self.decisions
        self.changes.refresh(s, day)
        if kept is not None:
            assert self.day is not None
            rows = self.changes.since(self.day)
            if rows is not None and (
                    not rows.size or self._patch(book, event_type, kept, rows, scope_of(rows))):
                return
        n = len(s["alive"])
        dec = book.decide(event_type, scope_of(None), n)
        # Own every per-row argument (a decision may hand out views of its scope's columns,
        # which are state), so that later days can patch them in place.
        for effects in dec._effects.values():
            for effect in effects:
                for table in (effect.args, effect.known):
                    for name, values in table.items():
                        if not _is_constant(values):
                            table[name] = np.array(values)
        self.decisions = dec

    @staticmethod
    def _patch(book: Any, event_type: str, kept: Any, rows: np.ndarray, scope: Scope) -> bool:
        """Decide the block's `rows` again and write them into `kept`; False (kept left as it
        was) when a rule fires there that fired nowhere before (its arguments were never
        evaluated) or an argument that was one value for every row takes another. The
        effects of rules whose arguments are all literals are neither evaluated again nor
        compared: those already held are the same values (`literal_effects`)."""
        fresh = book.decide(event_type, scope, rows.size, literal_effects=False)
        if any(rid not in kept._effects for rid in fresh.fired_rules):
            return False
        patches = []
        for rid, effects in fresh._effects.items():
            for old, new in zip(kept._effects[rid], effects, strict=True):
                for table, update in ((old.args, new.args), (old.known, new.known)):
                    for name, values in update.items():
                        current = table[name]
                        if _is_constant(current):
                            if not (_is_constant(values) and values[:1].tobytes()
                                    == current[:1].tobytes()):
                                return False
                            continue
                        patches.append((current, values))
        for current, values in patches:
            current[rows] = values
        if kept.uniform is not None and fresh.uniform == kept.uniform:
            return True  # every row has that rule already
        kept.rule[rows] = fresh.rule
        if kept.uniform is not None:
            kept.uniform = None
        return True


class Model:
    """R replications of the daily model, advanced together one day at a time."""

    def __init__(self, rulebook_set: RulebookSet, scenario: Scenario,
                 seeds: Sequence[np.random.SeedSequence], dtype: Any = np.float32):
        self.scenario = scenario
        self.sc = scenario.model
        self.dtype = np.dtype(dtype)
        self.layout = lay = Layout.of(scenario)
        self.R = len(seeds)
        self.n1 = lay.n
        self.G = len(lay.groups)
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.lanes = [MerchantLanes(s) for s in seeds]
        self.appeal_lanes = [MerchantLanes(s, APPEAL_STREAM) for s in seeds]
        f = self.dtype
        # The floats come in the model's dtype already (`start_state`); web_start reads the
        # float64 prices.
        starts = [start_state(scenario, rng, f) for rng in self.rngs]
        states = [st for st, _ in starts]
        webs = [web_start(scenario, {"price": price64}) for _, price64 in starts]
        self.web = np.concatenate([w[0] for w in webs])
        self.web_cap = np.concatenate([w[1] for w in webs])
        self.web_floor = np.concatenate([w[2] for w in webs])
        cat = states[0] if len(states) == 1 else {
            k: np.concatenate([st[k] for st in states]) for k in states[0]}
        floats = ("full_cost", "unit_cost", "shipping", "quality", "quality0", "price", "promo",
                  "cash", "scale", "fixed_cost", "capacity", "burden_ema", "last_revenue")
        s: dict[str, np.ndarray] = {k: cat[k].astype(f, copy=False) for k in floats}
        s["exists"], s["alive"], s["enrolled"] = cat["exists"], cat["alive"].copy(), cat["enrolled"]
        s["tier"] = cat["tier"]
        n = self.n = self.R * self.n1
        if self.R == 1:  # the replication's groups are the model's
            s["group"] = cat["group"].astype(np.int64)
        else:
            rep = np.repeat(np.arange(self.R), self.n1)
            s["group"] = (rep * self.G + cat["group"]).astype(np.int64)
        s["price0"], s["cash0"] = s["price"].copy(), s["cash"].copy()
        # Zeros written, not calloc's untouched pages: no stage writes the padding slots, and
        # a kernel's masked loads over unmapped pages are slow (`simulator.memory.mapped_zeros`).
        s["loss_days"] = mapped_zeros(n, dtype=np.int32)
        s["prompt_open"] = mapped_zeros(n, dtype=bool)
        s["prompt_target"] = np.full(n, np.nan)
        s["prompt_rule"] = np.full(n, -1, dtype=np.int16)
        s["prompt_event_price"] = np.full(n, np.nan)
        s["prompts_seen"] = mapped_zeros(n, dtype=np.int32)
        s["silenced_until"] = mapped_zeros(n)
        s["competitor_price"] = np.full(n, np.nan)
        s["dl_due"] = np.full(n, np.inf)
        s["dl_rule"] = np.full(n, -1, dtype=np.int16)
        s["dl_event_time"] = np.full(n, np.nan)
        s["dl_event_price"] = np.full(n, np.nan)
        for k in ("appeals_filed_month", "appeals_filed_year", "appeals_failed_month",
                  "appeals_failed_year", "appeals_refused_month"):
            s[k] = mapped_zeros(n, dtype=np.int32)
        s["appeal_blocked_until"] = mapped_zeros(n)
        s["margin"] = _start_margin(s)
        self.s = s
        # Made on first use, then kept (`_ns_fields`, `_live_minima`).
        self._ns: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._minima_bits: tuple[Any, ...] | None = None
        self._spare_flows: DayFlows | None = None  # handed back (`recycle_flows`)
        self.tier_names = _Lazy(lambda: TIER_NAMES[s["tier"]])
        group_of = cat["group"]
        self.group_names = _Lazy(lambda: np.array(lay.groups)[group_of])
        compiled = compile_set(rulebook_set)
        self.books: dict[str, Any] = {fam: compiled.get(fam, _NoRules()) for fam in FAMILIES}
        self.calendar = Calendar(scenario.start, rulebook_set.timezone)
        self.weights = position_weights(lay.slots, self.sc.demand.position_bias_exponent.value)
        # The ranking kept from day to day in float32 mode (`_position_weight`).
        self._ranked: np.ndarray | None = None
        self._key: np.ndarray | None = None
        self._seen_alive: np.ndarray | None = None
        self._weight: np.ndarray | None = None
        self.period: tuple[Any, Any] | None = None
        af = self.books["auto_follow"]
        self._af_cancels = {
            etype: np.array([_cancels(af, rid, etype) for rid in af.rule_ids] + [False])
            for etype in ("listing_updated", "prompt_dismissed")
        }
        self.blocks = _blocks(self.R, lay)
        self._starts = np.array([b.start for b in self.blocks], dtype=np.int64)
        self._block_rows = sum(b.stop - b.start for b in self.blocks)
        self._stops = np.array([b.stop for b in self.blocks], dtype=np.int64)
        # Per-merchant working arrays of a day, kept from day to day: the blocks overwrite
        # every row a stage reads (padding slots, outside every block, keep their start
        # values: a score of -inf, nothing else). Zeros are written, not left to calloc's
        # untouched pages: the padding is never written, and a kernel's masked loads over
        # unmapped pages are slow on every call (`simulator.memory.mapped_zeros`).
        self._scratch = {"wrongful": mapped_zeros(n), "wrongful_burden": mapped_zeros(n),
                         "want": mapped_zeros(n, dtype=np.int64), "ad_clicks": mapped_zeros(n),
                         "score": np.full(n, -np.inf), "channel": mapped_zeros(n),
                         "group_weight": mapped_zeros(lay.slots)}
        self._rank_inputs = _Inputs(self.books["ranking"], "listing_updated")
        # Whether some listing's channel may be positive (admitted): set by `_rank` when a
        # rule admits one, cleared by `kernels.group_exposure` when it finds none; while it
        # is False no channel is written or read (the channels start at zero).
        self._channels = False
        #: The ranking rules for one compiled pass, in a 1-tuple once made (`_ranking_rules`).
        self._ranking: tuple[CompiledRanking | None] | None = None
        #: The commission's fees for one compiled pass, likewise (`_charge_rules`).
        self._charges: tuple[CompiledCharges | None] | None = None
        # The day's appeals in one compiled pass (a set without appeal rules, or tests with
        # `_fused_appeals` False, take the numpy path, which tells the same story).
        self._appeal_rounds = AppealRounds.of(self.books["appeal"])
        self._fused_appeals = True
        # Both evidence classes' claims counted and split, intervened on and let lapse in
        # shared passes where the decisions allow it (`_refunds`); False: one class at a
        # time (tests compare). Either way both classes' requests are decided before either
        # is routed: a claim's scope reads no booking of the day, so the order is free.
        self._fused_claims = True
        # When every claim request awaits the merchant and each routing stage books at most
        # one grant at literal arguments, a block's whole refund day takes one compiled pass
        # (`_Claims.plan`, `kernels.refund_day`); False: the stages one at a time (tests
        # compare).
        self._fused_day = True
        # Where a whole refund day takes one compiled pass, the blocks are routed together:
        # their claims decided over one span (from the first block's first row to the last
        # block's last) and the pass run over each stretch of adjoining blocks (`_refund_day`);
        # None: block by block (tests compare).
        self._refund_span: tuple[slice, tuple[slice, ...]] | None = (
            _refund_span(self.blocks) if len(self.blocks) > 1 else None)
        # Claim decisions and due deadlines that read only a claim scope's literal fields
        # (`_CLAIM_LITERALS`): alike for every block of one size and every day (`_Claims`).
        self._claim_constants: dict[tuple[Any, ...], Any] = {}
        # Per-row decisions on claims and orders (where the numpy target charges the fees)
        # over all merchants, by event shape, kept from day to day (`_KeptDecisions`); None
        # where the rules read more than state.
        self._kept: dict[tuple[Any, ...], _KeptDecisions | None] = {}
        self._keep_decisions = True  # False: decide every block afresh (tests compare)
        # Days stepped: kept decisions are brought up to date once in each.
        self._stepped = 0
        # (id of the ad clicks, the day) when `_orders` found none of the blocks' clicks NaN:
        # `_demand` then tells the rulebook they are all known.
        self._clicks_known: tuple[int, int] | None = None
        self._follow_selections: _Selections | None = None  # (`_selections`)
        # Found once and kept: the calendar periods of the current month (`_periods`), the
        # rules' positions by book and event (`_rule_positions`), the last span (`_span`).
        self._month_periods: tuple[Any, Any] | None = None
        self._positions: dict[tuple[int, str], tuple[tuple[str, int], ...]] = {}
        self._spans: tuple[tuple[int, int], slice | None] | None = None
        # The refund day's stage masks (`_Claims.plan`) by decision, each kept as long as its
        # decision lives: the decisions made once for the run and the kept ones for good,
        # those of one block and day with it.
        self._stage_masks: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = (
            weakref.WeakKeyDictionary())
        # What changed in the state fields kept decisions read, by fields (`_Changes`).
        self._changes: dict[tuple[str, ...], _Changes] = {}
        # The claim columns last gathered at changed merchants (`_columns_at`), with the day
        # and the merchants: the kept order and claim decisions that share a change history
        # decide the same merchants again on a day, from the same columns.
        self._claim_columns_at: tuple[int, np.ndarray, dict[str, _Lazy]] | None = None
        # The slots outside every block (padding only): 0 to the first block, between blocks,
        # after the last.
        bounds = [0, *(x for b in self.blocks for x in (b.start, b.stop)), n]
        self._gaps = [slice(a, b) for a, b in zip(bounds[0::2], bounds[1::2], strict=True)
                      if b > a]
        self.impressions = np.tile(np.array([g.daily_impressions.value for g in self.sc.groups]),
                                   self.R)
        self.channel_share = np.tile(
            np.array([g.channel_impressions_share.value for g in self.sc.groups]), self.R)

    # -- scopes -----------------------------------------------------------------------------
    def _margin(self, idx: np.ndarray) -> np.ndarray:
        s = self.s
        p = s["price"][idx]
        return (p - s["unit_cost"][idx] - s["shipping"][idx]) / p - s["burden_ema"][idx]

    def _merchant_ns(self, idx: np.ndarray | slice) -> _View:
        return _View(self._ns_fields()[0], idx, self.n)

    def _listing_ns(self, idx: np.ndarray | slice, **override: Any) -> _View:
        fields = self._ns_fields()[1]
        return _View({**fields, **override} if override else fields, idx, self.n)

    def _ns_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The merchant and listing namespaces' fields, made once: the state arrays are the
        model's for good (stages write into them, never replace them), so a scope needs no
        dict of its own (a `_View` only reads its fields)."""
        found = self._ns
        if found is None:
            s = self.s
            merchant = {
                "size_tier": self.tier_names,
                "auto_follow_enrolled": s["enrolled"],
                "appeals_filed_month": s["appeals_filed_month"],
                "appeals_filed_year": s["appeals_filed_year"],
                "appeals_failed_month": s["appeals_failed_month"],
                "appeals_failed_year": s["appeals_failed_year"],
                "appeals_refused_month": s["appeals_refused_month"],
                "appeal_blocked_until": s["appeal_blocked_until"],
            }
            listing = {
                "product_group": self.group_names,
                "price": s["price"], "unit_cost": s["unit_cost"], "quality": s["quality"],
                "promo_signup_price": s["promo"], "prompt_pending": s["prompt_open"],
                "prompt_target": s["prompt_target"], "prompt_silenced_until": s["silenced_until"],
                "competitor_price": s["competitor_price"],
            }
            found = self._ns = (merchant, listing)
        return found

    def _order_ns(self, idx: np.ndarray, **extra: Any) -> _View:
        return _View(self._order_fields(**extra), idx, self.n)

    def _order_fields(self, **extra: Any) -> dict[str, Any]:
        s = self.s
        fields: dict[str, Any] = {
            "amount": s["price"], "quantity": 1, "shipping_cost": s["shipping"],
            "product_cost": s["unit_cost"], "shipped": True,
        }
        fields.update(extra)
        return fields

    def _scope(self, idx: np.ndarray | slice, event: dict[str, Any],
               order: _View | None = None, **listing: Any) -> Scope:
        return {"event": _View(event, idx, self.n), "merchant": self._merchant_ns(idx),
                "listing": self._listing_ns(idx, **listing), "order": order}

    # -- effects on state -------------------------------------------------------------------
    def _apply_listing(self, idx: np.ndarray, effects: Sequence[tuple[str, dict[str, Any]]],
                       rows: np.ndarray | None, time: float, flows: DayFlows) -> None:
        """State changes of auto-follow effects on merchants idx[rows] (rules.effects; rows
        None: all of idx). The merchants idx are distinct."""
        s = self.s
        at: np.ndarray | None = None  # idx[rows], once for all the effects that need it
        for name, args in effects:
            if name == "prompt_price_change":  # one compiled pass over idx
                target = np.asarray(args["target"])
                opened = np.empty(idx.size, dtype=np.int64)
                k = kernels.prompt_price_change(
                    idx, _EVERY_ONE if rows is None else rows.view(np.uint8),
                    np.broadcast_to(target, idx.shape) if target.ndim == 0 else target,
                    s["prompt_open"], s["prompt_target"], s["prompts_seen"], flows.prompts,
                    opened)
                if k:
                    self._selections().opened.append(opened[:k])
                continue
            if name in ("set_price", "silence_prompt"):  # (the same, and no selection)
                values = np.asarray(args["price" if name == "set_price" else "duration"])
                fired = _EVERY_ONE if rows is None else rows.view(np.uint8)
                if values.ndim == 0:
                    values = np.broadcast_to(values, idx.shape)
                if name == "set_price":
                    kernels.set_price(idx, fired, values, s["price"], s["prompt_open"],
                                      s["prompts_seen"], flows.forced_follows)
                else:
                    kernels.silence_prompts(idx, fired, values, float(time), s["prompt_open"],
                                            s["silenced_until"])
                continue
            if at is None:
                at = idx if rows is None else idx[rows]
            if not at.size:
                return
            if name == "close_prompt":
                s["prompt_open"][at] = False
            elif name == "enrol_auto_follow":
                s["enrolled"][at] = True
            elif name == "unenrol_auto_follow":
                s["enrolled"][at] = False

    def _fired_effects(self, book: Any, decisions: Any) -> Iterator[tuple[str, np.ndarray,
                                                                         list[tuple[str, dict]]]]:
        """(rule id, rows it decided, its effects as (name, args)) for each rule that fired.
        When every row got one rule (`uniform`), the others are passed over without a
        mask of no rows to make and search."""
        uniform = decisions.uniform
        for rid, position in self._rule_positions(book, decisions.event_type):
            if uniform is not None and uniform != position:
                continue
            mask = decisions.fired(rid)
            if mask.any():
                yield rid, mask, [(e.name, e.args) for e in decisions.effects(rid)]

    def _decide_apply(self, book: Any, etype: str, idx: np.ndarray, scope: Scope, time: float,
                      flows: DayFlows) -> Any:
        dec = book.decide(etype, scope, idx.size)
        for _rid, mask, effects in self._fired_effects(book, dec):
            self._apply_listing(idx, effects, mask, time, flows)
        return dec

    #: False: decide the events that read only literal fields afresh each time (tests compare).
    _decide_once = True

    def _decide_alike(self, book: Any, etype: str, idx: np.ndarray, event: dict[str, Any],
                      time: float, flows: DayFlows) -> bool:
        """Decide `etype` for the merchants idx and apply the effects, once for all of them
        and once per run, when its rules (conditions and effect arguments) read nothing but
        the event's literal fields `event` (say, an accidental enrolment: every one is decided
        alike, every day); False, having done nothing, when they read more."""
        if not self._decide_once:
            return False
        only, read = self._event_reads(book, etype, tuple(event))
        if not only:
            return False
        key = (id(book), etype, *((k, event[k]) for k in read))
        alike = self._selections().alike
        found = alike.get(key)
        if found is None:
            scope = self._scope(idx[:1], {"time": time, **event})
            dec = book.decide(etype, scope, 1)
            # Each argument as one value for every merchant (0-d).
            found = alike[key] = [[(name, {k: np.asarray(v).reshape(()) for k, v in args.items()})
                                   for name, args in effects]
                                  for _rid, _mask, effects in self._fired_effects(book, dec)]
        for effects in found:
            self._apply_listing(idx, effects, None, time, flows)
        return True

    def _event_reads(self, book: Any, etype: str,
                     names: tuple[str, ...]) -> tuple[bool, tuple[str, ...]]:
        """Whether the rules for `etype` read nothing but the event fields `names`, and which
        of them they read, in name order: found once per event shape for the run (the rules
        never change), not on each day's toggles."""
        shapes = self._selections().alike_reads
        shape = (id(book), etype, names)
        found = shapes.get(shape)
        if found is None:
            reads = book.reads(etype)
            found = shapes[shape] = (reads <= {f"event.{k}" for k in names},
                                     tuple(sorted(k for k in names if f"event.{k}" in reads)))
        return found

    def _cancel(self, idx: np.ndarray, etype: str) -> None:
        """An event cancels the pending deadlines that wait for it."""
        s = self.s
        kernels.cancel_deadlines(idx, self._af_cancels[etype], s["prompt_rule"], s["dl_rule"],
                                 s["dl_due"], s["dl_event_time"], s["dl_event_price"])

    #: False: the observers' fields gathered even when they are one group's whole range
    #: (`_observers`; tests compare).
    _observer_views = True

    def _observers(self, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                         np.ndarray | slice]:
        """The live merchants of the groups whose web price fell (`observed`, by group), in
        slot order, that price for each, and the rows a scope reads them at: a group is a
        range of slots, so its live sellers are found in that range alone, and on most days,
        when no group's price fell, nowhere. When they are the whole range of one group (no
        seller of it has left), the rows are that range as a slice, which a scope reads as
        views of the state instead of gathering every field it reads."""
        sel = self._selections()
        groups = np.flatnonzero(observed)
        if not groups.size:
            return _NO_ROWS, np.empty(0), _NO_ROWS
        alive = self.s["alive"]
        starts, stops = sel.starts[groups].tolist(), sel.stops[groups].tolist()
        if self._observer_views and groups.size == 1 and alive[starts[0]:stops[0]].all():
            a, b = starts[0], stops[0]
            return np.arange(a, b, dtype=np.int64), np.full(b - a, self.web[groups[0]]), \
                slice(a, b)
        rows = [a + np.flatnonzero(alive[a:b]) for a, b in zip(starts, stops, strict=True)]
        obs = np.concatenate(rows)
        return obs, np.repeat(self.web[groups], [r.size for r in rows]), obs

    def _selections(self) -> _Selections:
        """What the auto-follow day keeps (`_Selections`), made on the first day (a model
        that is never stepped allocates none)."""
        found = self._follow_selections
        if found is None:
            found = self._follow_selections = _Selections(self.n, self.layout, self.R)
        return found

    def _live_minima(self) -> np.ndarray:
        """Each product group's least price among its live sellers (inf if none), in the
        state dtype (exact: the minima are widened, not every price): from the prices' bits
        in one pass (`kernels.live_minima`), or by numpy where a live price is negative,
        -0.0 or NaN. The dead are left out rather than priced at inf."""
        s, slots = self.s, self.layout.slots
        price = s["price"]
        found = self._minima_bits
        if found is None:  # (the same every day: made once)
            unsigned = _UNSIGNED[price.dtype.itemsize]
            found = self._minima_bits = (
                unsigned, unsigned(np.array(np.inf, dtype=price.dtype).view(unsigned)),
                unsigned(np.iinfo(unsigned).max), price.dtype.type(np.inf))
        unsigned, top, none, inf = found
        bits = np.empty(price.size // slots, dtype=unsigned)
        if kernels.live_minima(price.view(unsigned), s["alive"].view(np.uint8), slots, top, none,
                               bits):
            return np.where(bits == none, inf, bits.view(price.dtype))
        return np.min(price.reshape(-1, slots), axis=1, initial=np.inf,
                      where=s["alive"].reshape(-1, slots))

    # -- the auto-follow day's prompts ----------------------------------------------------
    def _due_deadlines(self, T: float, fl: DayFlows) -> None:
        """The auto-follow deadlines that fall due today (of live merchants): cleared, and
        their rules' effects applied where their `when` holds."""
        s, af = self.s, self.books["auto_follow"]
        due = self._due_rows(T)
        if not due.size:
            return
        rules = np.empty(due.size, dtype=s["dl_rule"].dtype)
        ev_time, ev_price = np.empty(due.size), np.empty(due.size)
        one = kernels.take_deadlines(due, s["dl_rule"], s["dl_due"], s["dl_event_time"],
                                     s["dl_event_price"], rules, ev_time, ev_price)
        for pos in (rules[:1] if one else _distinct(rules)):
            if one:
                sub, at, price_at = due, ev_time, ev_price
            else:
                rows = rules == pos
                sub, at, price_at = due[rows], ev_time[rows], ev_price[rows]
            rid = af.rule_ids[pos]
            # One set of columns for the deadline's `when` and its effects (nothing changes
            # the state in between): a field both read is gathered once.
            columns = as_columns(self._scope(sub, {"time": at, "competitor_price": price_at,
                                                   "listing_id": "L"}), sub.size)
            when = af.deadline_when(rid, columns, sub.size)
            effects = [(e.name, e.args) for e in af.deadline_effects(rid, columns, sub.size)]
            self._apply_listing(sub, effects, when, T, fl)

    def _observations(self, T: float, observed: np.ndarray, fl: DayFlows,
                      armed: list[np.ndarray]) -> None:
        """The live merchants of the groups whose web price fell see it: their rules' effects,
        and the deadlines the rules set. A deadline within the day arms `prompt_rule` (and
        the price) on its rows, which are added to `armed` for the caller to reset; a later
        one is kept in the `dl_` fields."""
        s, af = self.s, self.books["auto_follow"]
        obs, comp, where = self._observers(observed)
        if not obs.size:
            return
        s["competitor_price"][where] = comp
        scope = self._scope(where, {"time": T, "listing_id": "L", "competitor_price": comp})
        dec = af.decide("competitor_price_observed", scope, obs.size)
        for rid, mask, effects in self._fired_effects(af, dec):
            self._apply_listing(obs, effects, mask, T, fl)
            if af.rulebook.rule(rid).deadline is None:
                continue
            after = af.deadline_after(rid, scope, obs.size)
            pos = af.rule_ids.index(rid)
            j = np.empty(obs.size, dtype=obs.dtype)
            k, later = kernels.arm_prompts(obs, mask.view(np.uint8), after, comp, float(DAY),
                                           pos, s["prompt_rule"], s["prompt_event_price"], j)
            armed.append(j[:k])
            if later:  # (a deadline within the day, as usual, arms none)
                self._set_deadlines(obs, mask, after, float(DAY), pos, T, comp)

    def _open_prompts(self, T: float, u_prompt: np.ndarray, fl: DayFlows) -> None:
        """Each live merchant with a price prompt open follows it, dismisses it or ignores it
        (by its draw `u_prompt`), with the effects and deadlines of each; every open prompt
        is closed."""
        open_, counts = self._open_rows()
        if not open_.size:
            return
        try:
            self._answer_prompts(open_, T, u_prompt, fl, counts)
        except BaseException:
            # (a decision raised: the prompts still open are looked at again next time, as
            # a pass over every merchant would find them)
            self._selections().opened.append(open_)
            raise

    def _answer_prompts(self, open_: np.ndarray, T: float, u_prompt: np.ndarray,
                        fl: DayFlows, counts: tuple[int, int] | None = None) -> None:
        """The answers to the prompts open on the live merchants `open_` (`_open_prompts`;
        `counts`: the least and greatest of their counts of prompts seen, if known)."""
        s, af = self.s, self.books["auto_follow"]
        fi, di, ig = self._answers(open_, u_prompt, counts)
        if fi.size:
            old_price = np.empty(fi.size, dtype=s["price"].dtype)
            kernels.follow_prompts(fi, s["prompt_target"], s["price"], old_price)
            self._cancel(fi, "listing_updated")
            scope = self._scope(fi, self._listing_event(T), previous_price=old_price)
            self._decide_apply(af, "listing_updated", fi, scope, T, fl)
            kernels.close_prompts(fi, s["prompt_open"], s["prompts_seen"], True)
        if di.size:
            self._cancel(di, "prompt_dismissed")
            scope = self._scope(di, {"time": T, "listing_id": "L"})
            dec = af.decide("prompt_dismissed", scope, di.size)
            for rid, mask, effects in self._fired_effects(af, dec):
                self._apply_listing(di, effects, mask, T, fl)
                if af.rulebook.rule(rid).deadline is None:
                    continue
                after = af.deadline_after(rid, scope, di.size)
                # (every known deadline: no event price)
                self._set_deadlines(di, mask, after, -np.inf, af.rule_ids.index(rid), T,
                                    np.broadcast_to(np.nan, di.shape))
            kernels.close_prompts(di, s["prompt_open"], s["prompts_seen"], False)
        if ig.size:
            rules = s["prompt_rule"][ig]
            positions, every = _positions(rules, len(af.rule_ids))
            for pos in positions:
                sub = ig if every else ig[rules == pos]
                rid = af.rule_ids[pos]
                columns = as_columns(self._scope(sub, {
                    "time": T, "listing_id": "L",
                    "competitor_price": s["prompt_event_price"][sub]}), sub.size)
                when = af.deadline_when(rid, columns, sub.size)  # (see `_due_deadlines`)
                effects = [(e.name, e.args)
                           for e in af.deadline_effects(rid, columns, sub.size)]
                self._apply_listing(sub, effects, when, T, fl)
            kernels.close_prompts(ig, s["prompt_open"], s["prompts_seen"], False)

    #: False: the merchants with a deadline due or a prompt open found by a pass over every
    #: merchant, not among those recorded as given one (tests compare). Set before the first
    #: day: the pass drops the records, and what was given while it ran is not recorded.
    _track_rows = True

    def _set_deadlines(self, idx: np.ndarray, fired: np.ndarray, after: np.ndarray,
                       at_least: float, position: int, T: float, price: np.ndarray) -> None:
        """Arm rule `position`'s deadline on the merchants idx (increasing) where it fired
        and is at least `at_least` after T (`kernels.set_deadlines`), and record them."""
        s = self.s
        armed = np.empty(idx.size, dtype=np.int64)
        k, earliest = kernels.set_deadlines(idx, fired.view(np.uint8), after, at_least,
                                            position, T, price, s["dl_rule"], s["dl_due"],
                                            s["dl_event_time"], s["dl_event_price"], armed)
        if k:
            self._selections().deadlines.append((float(earliest), armed[:k]))

    def _due_rows(self, T: float) -> np.ndarray:
        """The live merchants whose deadline falls due by T, increasing: looked for among the
        batches of merchants given a deadline whose earliest due has come (a merchant given
        a later one since is in a later batch too; one whose deadline was cleared has it at
        inf), which are then dropped, but for the dead, kept for when they live again, and
        those whose deadline is still to come, recorded again."""
        s, sel = self.s, self._selections()
        if not self._track_rows:
            sel.deadlines.clear()
            due = np.flatnonzero(s["dl_due"] <= T)
            return due[s["alive"][due]]  # (alive read at those rows only, not over all)
        ready = [rows for at, rows in sel.deadlines if at <= T]
        if not ready:
            return _NO_ROWS
        sel.deadlines = [(at, rows) for at, rows in sel.deadlines if at > T]
        due = _union(ready)
        # A batch's merchants share one due time as rulebooks are written (a deadline's
        # `after` reads parameters only), but nothing here relies on it: those of a ready
        # batch whose deadline is still to come are recorded again, with their earliest
        # (`kernels.split_due` parts them in one pass).
        now, later, dead = np.empty((3, due.size), dtype=np.int64)
        n_now, n_later, n_dead, earliest = kernels.split_due(
            due, s["dl_due"], s["alive"].view(np.uint8), float(T), now, later, dead)
        if n_later:
            sel.deadlines.append((float(earliest), later[:n_later]))
        if n_dead:
            sel.deadlines.append((-np.inf, dead[:n_dead]))
        return now[:n_now]

    def _open_rows(self) -> tuple[np.ndarray, tuple[int, int] | None]:
        """The live merchants with a prompt open, increasing, and the least and greatest of
        their counts of prompts seen (None: not found): looked for among those whose prompt
        was opened since the last look, in one pass (`kernels.open_prompts`); an open prompt
        of the dead is kept for when they live again."""
        s, sel = self.s, self._selections()
        if not self._track_rows:
            sel.opened.clear()
            open_ = np.flatnonzero(s["prompt_open"])
            return open_[s["alive"][open_]], None
        rows = _union(sel.opened)
        sel.opened.clear()
        found = np.empty((2, rows.size), dtype=np.int64)
        n_live, n_dead, k_lo, k_hi = kernels.open_prompts(
            rows, s["prompt_open"].view(np.uint8), s["alive"].view(np.uint8),
            s["prompts_seen"], *found)
        if n_dead:
            sel.opened.append(found[1, :n_dead])
        return found[0, :n_live], (int(k_lo), int(k_hi))

    #: False: the prompts' answers by numpy, not `kernels.prompt_answers` (tests compare).
    _compiled_answers = True

    def _answers(self, open_: np.ndarray, u_prompt: np.ndarray,
                 counts: tuple[int, int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The merchants `open_` that follow, dismiss and ignore their prompt (in order), by
        their draws `u_prompt`. The follow probability of each count of prompts seen is
        computed once per count (numpy's power gives each element the bits it gives it in
        any longer array), then each merchant's answer in one pass
        (`kernels.prompt_answers`); by numpy over the merchants when the counts spread wider
        than the merchants. `counts` is the least and greatest count, if already known
        (`_open_rows` finds them as it finds the merchants)."""
        afp = self.sc.auto_follow
        seen = self.s["prompts_seen"]
        if self._compiled_answers:
            k_lo, k_hi = counts or (int(x) for x in kernels.count_range(open_, seen))
            if k_hi - k_lo < open_.size:
                k = np.arange(k_lo, k_hi + 1, dtype=np.float64)
                p = 1.0 - (1.0 - afp.follow_probability.value) * (
                    1.0 - afp.follow_probability_step.value) ** (k - 1.0)
                out = np.empty((3, open_.size), dtype=open_.dtype)
                nf, nd, ni = kernels.prompt_answers(open_, seen, u_prompt, p, k_lo,
                                                    float(afp.dismiss_probability.value), out)
                return out[0, :nf], out[1, :nd], out[2, :ni]
        r = u_prompt[open_]
        p = 1.0 - (1.0 - afp.follow_probability.value) * (
            1.0 - afp.follow_probability_step.value) ** (seen[open_].astype(np.float64) - 1.0)
        follow = r < p
        dismiss = ~follow & (r < p + (1.0 - p) * afp.dismiss_probability.value)
        ignore = ~follow & ~dismiss
        return open_[follow], open_[dismiss], open_[ignore]

    # -- the day ----------------------------------------------------------------------------
    def step(self, day: int) -> DayFlows:
        sc, s, lay = self.sc, self.s, self.layout
        T = self.calendar.time(day)
        month, year, next_month, next_year = self._periods(day)
        if self.period is None or self.period[0] != month:
            for k in ("appeals_filed_month", "appeals_failed_month", "appeals_refused_month"):
                s[k][:] = 0
        if self.period is None or self.period[1] != year:
            s["appeals_filed_year"][:] = 0
            s["appeals_failed_year"][:] = 0
        self.period = (month, year)
        draws = [day_draws(rng, lanes, lay)
                 for rng, lanes in zip(self.rngs, self.lanes, strict=True)]
        if len(draws) == 1:  # one replication: its draws as they are, no copy
            gu, u = draws[0].group, draws[0].merchant
        else:
            gu = np.concatenate([d.group for d in draws], axis=1)
            u = np.concatenate([d.merchant for d in draws], axis=1)
        fl = self._new_flows()
        alive = s["alive"]

        # 1. whole-web price
        observed = self._web_price(gu)

        # 2. auto-follow
        afp = sc.auto_follow
        # prompt_rule is -1 everywhere between days: the observations arm it where a prompt's
        # deadline falls within the day (for the ignored prompts to read), and it is reset
        # there however the prompts end (a decision that raises included).
        armed: list[np.ndarray] = []
        try:
            self._due_deadlines(T, fl)
            self._observations(T, observed, fl, armed)
            self._open_prompts(T, u[U_PROMPT], fl)
        finally:
            for rows in armed:
                s["prompt_rule"][rows] = -1
        r = u[U_TOGGLE]
        ad = sc.adaptation
        # One walk codes the toggles and repricing (`kernels.toggle_codes`); numpy compared
        # the float32 draws and the state-dtype margins with the thresholds rounded to those
        # dtypes (NEP 50).
        m_type = s["margin"].dtype.type
        codes = self._selections().code
        kernels.toggle_codes(alive.view(np.uint8), s["enrolled"].view(np.uint8), s["margin"], r,
                             np.float32(afp.accidental_enrol_probability.value),
                             np.float32(afp.leave_attempt_probability.value),
                             m_type(afp.leave_margin_threshold.value),
                             m_type(ad.reprice_below.value),
                             np.float32(_with_code_below(afp)), codes)
        coded = np.flatnonzero(codes != 0)  # (numpy's nonzero is slow on uint8 itself)
        code = codes[coded]
        # the toggles' decisions, then 3. repricing outside auto-follow
        if self._compiled_toggles:
            self._toggles(coded, code, r, T, fl)
        else:
            self._toggles_by_numpy(coded, code, r, T, fl)

        # 4. ranking and exposure
        self.exposure(T, out=fl.exposure)

        # 5. demand, commission, ads, 6. refunds: each merchant on its own. Orders, then
        # commission and ads, for everyone at once (a few passes each, whose decisions cost
        # less made once than once per block); refunds, whose few dozen passes need the
        # cache, block by block (see _BLOCK), unless the day takes one compiled pass: then
        # over all the blocks at once (`_refund_day`).
        scratch = self._scratch
        wrongful, wrongful_burden = scratch["wrongful"], scratch["wrongful_burden"]
        want = scratch["want"]
        self._stepped += 1
        ad_clicks = self._orders(u, fl)
        self._demand(slice(0, self.n), T, fl, ad_clicks)
        self._refund_day(T, u, fl, wrongful, wrongful_burden, want)

        # 7. appeals
        self._appeals(want, wrongful, wrongful_burden, T, next_month, next_year, fl)

        # 8. accounts and exit, 9. adaptation: each merchant on its own, block by block
        dead_before = ~alive  # a copy: s["alive"] changes below
        self._accounts(u, fl, dead_before)
        entry_p = sc.exit.entry_probability.value
        if entry_p > 0:
            new = np.flatnonzero(dead_before & s["exists"] & (u[U_ADAPT] < entry_p))
            if new.size:
                self._enter(new)
        return fl

    #: False: the toggles parted and the repricing done by numpy's selections, not by
    #: `kernels.toggle_parts` and `kernels.reprice` (tests compare).
    _compiled_toggles = True

    def _toggles(self, coded: np.ndarray, code: np.ndarray, r: np.ndarray, T: float,
                 fl: DayFlows) -> None:
        """2. the day's enrolments and attempts to leave, and 3. repricing outside
        auto-follow, of the merchants `coded` (increasing) with their `toggle_codes` `code`:
        parted in one compiled pass, repriced in another (numpy's version:
        `_toggles_by_numpy`, which says why repricing may follow the toggles' decisions)."""
        if not coded.size:
            return
        s = self.s
        parts = np.empty((4, coded.size), dtype=coded.dtype)
        ne, nu, nv = kernels.toggle_parts(coded, code, parts)
        if ne:
            self._enrol(parts[0, :ne], T, fl)
        if nu or nv:
            self._leave(coded, code, parts[1, :nu], parts[2, :nv], r, T, fl)
        ad = self.sc.adaptation
        m_type = s["margin"].dtype.type
        price = s["price"]
        raised = np.empty(coded.size, dtype=coded.dtype)
        k = kernels.reprice(coded, code, s["enrolled"].view(np.uint8), s["margin"],
                            m_type(ad.reprice_below.value), s["unit_cost"], s["shipping"],
                            s["burden_ema"], price.dtype.type(1.0 - ad.reprice_to.value),
                            price, raised)
        if k:
            self._cancel(raised[:k], "listing_updated")

    def _enrol(self, enrol: np.ndarray, T: float, fl: DayFlows) -> None:
        """The accidental enrolments of the merchants `enrol`, decided and applied."""
        af = self.books["auto_follow"]
        event = {"listing_id": "L", "enrolled": True, "steps": 1, "verified": False,
                 "via": "popup"}
        if not self._decide_alike(af, "auto_follow_toggled", enrol, event, T, fl):
            scope = self._scope(enrol, {"time": T, **event})
            self._decide_apply(af, "auto_follow_toggled", enrol, scope, T, fl)

    def _leave(self, coded: np.ndarray, code: np.ndarray, without: np.ndarray,
               with_code: np.ndarray, r: np.ndarray, T: float, fl: DayFlows) -> None:
        """The attempts to leave among the merchants `coded` (bit 1 of their `toggle_codes`
        `code`), parted into those `without` the code and those `with_code` by their draws
        `r`, decided and applied: each part decided alike when the rules read only the
        event's literal fields (each merchant's effects are its own, so the order of the two
        parts changes nothing), else all of them at once."""
        af, afp = self.books["auto_follow"], self.sc.auto_follow
        event = {"listing_id": "L", "enrolled": False, "steps": 1, "via": "settings"}
        if self._decide_once and self._event_reads(af, "auto_follow_toggled",
                                                    (*event, "verified"))[0]:
            for code_ok, part in ((False, without), (True, with_code)):
                if part.size:
                    self._decide_alike(af, "auto_follow_toggled", part,
                                       {**event, "verified": code_ok}, T, fl)
            return
        leave = coded[(code & 2) != 0]
        verified = r[leave] < _with_code_below(afp)
        scope = self._scope(leave, {"time": T, **event, "verified": verified})
        self._decide_apply(af, "auto_follow_toggled", leave, scope, T, fl)

    def _toggles_by_numpy(self, coded: np.ndarray, code: np.ndarray, r: np.ndarray, T: float,
                          fl: DayFlows) -> None:
        """`_toggles` by numpy's selections."""
        s, afp = self.s, self.sc.auto_follow
        ad = self.sc.adaptation
        enrol, leave = coded[(code & 1) != 0], coded[(code & 2) != 0]
        if enrol.size:
            self._enrol(enrol, T, fl)
        if leave.size:
            verified = r[leave] < _with_code_below(afp)
            self._leave(coded, code, leave[~verified], leave[verified], r, T, fl)

        # 3. repricing outside auto-follow
        # The walk above found the merchants to reprice among those whose enrolment the toggles
        # could not change; the toggled are looked at again now (nothing else changed one).
        rp = coded[(code & 5) == 4]
        if enrol.size or leave.size:
            toggled = np.concatenate((enrol, leave))
            back = toggled[~s["enrolled"][toggled]
                           & (s["margin"][toggled] < ad.reprice_below.value)]
            if back.size:
                rp = np.sort(np.concatenate((rp, back)))
        if rp.size:
            target = (s["unit_cost"][rp] + s["shipping"][rp]) / (
                1.0 - ad.reprice_to.value - s["burden_ema"][rp])
            up = target > s["price"][rp]
            if up.any():
                s["price"][rp[up]] = target[up]
                self._cancel(rp[up], "listing_updated")

    #: False: the whole-web price by numpy, not `kernels.web_prices` (tests compare).
    _compiled_web_price = True

    def _web_price(self, gu: np.ndarray) -> np.ndarray:
        """1. the day's whole-web price of each group (`self.web`, a new array) from the
        groups' draws `gu`; returns whether it fell, by group."""
        wp = self.sc.web_price
        minima = self._live_minima()
        if self._compiled_web_price:
            f = gu.dtype.type  # (numpy rounded the Python numbers to the draws' dtype)
            web = np.empty_like(self.web)
            observed = np.empty(web.size, dtype=bool)
            kernels.web_prices(self.web, minima, self.web_floor, self.web_cap, gu[0], gu[1],
                               f(wp.cut_probability.value), f(wp.cut_depth_low.value),
                               f(wp.cut_depth_high.value - wp.cut_depth_low.value), f(1.0),
                               1.0 + wp.rebound.value, web, observed)
            self.web = web
            return observed
        lowest = np.minimum(self.web, minima.astype(np.float64))
        old = self.web.copy()
        cut = gu[0] < wp.cut_probability.value
        depth = wp.cut_depth_low.value + (wp.cut_depth_high.value - wp.cut_depth_low.value) * gu[1]
        self.web = np.where(cut, np.maximum(self.web_floor, lowest * (1.0 - depth)),
                            np.minimum(self.web_cap, old * (1.0 + wp.rebound.value)))
        return self.web < old

    def _periods(self, day: int) -> tuple[tuple[int, int], int, float, float]:
        """`Calendar.periods` of the day: the same for every day of a month, so worked out
        (in the rulebooks' time zone) once a month instead of every day."""
        calendar = self.calendar
        date = calendar.start + dt.timedelta(days=day)
        month = (calendar, date.year, date.month)  # (equal calendars: equal periods)
        found = self._month_periods
        if found is None or found[0] != month:
            found = self._month_periods = (month, calendar.periods(day))
        return found[1]

    def _orders(self, u: np.ndarray, fl: DayFlows) -> np.ndarray:
        """Orders, revenue and units sold below cost of every merchant in the blocks (one
        compiled pass, `kernels.demand`); returns every merchant's ad clicks. Every merchant
        is computed; the dead get no orders."""
        s, d = self.s, self.sc.demand
        ads = self.sc.ads
        elasticity = d.quality_conversion_elasticity.value
        # x ** 1.0 is x exactly: the kernel then multiplies; any other power is numpy's.
        power = elasticity != 1.0
        conv = (d.conversion.value * s["quality"].astype(np.float64) ** elasticity if power
                else np.empty(0))
        ad_clicks = self._scratch["ad_clicks"]
        unknown = kernels.demand(
            self._starts, self._stops, s["alive"], s["price"], s["last_revenue"], s["quality"],
            s["unit_cost"], fl.exposure, u[U_ORDERS], float(ads.budget_share.value),
            float(ads.cost_per_click.value), float(d.conversion.value),
            float(d.click_through_rate.value), power, float(elasticity), conv, ad_clicks,
            fl.orders, fl.revenue, fl.below_cost_units)
        # The blocks' clicks have no NaN (as a rule; the padding's are never written, zero):
        # `_demand` says so to the rulebook.
        self._clicks_known = (id(ad_clicks), self._stepped) if unknown == 0 else None
        return ad_clicks

    def _new_flows(self) -> DayFlows:
        """Today's flows, zero. The flows a stage writes in full over the blocks (rather than
        adding to) start unset there: only the slots outside every block are zeroed. Flows
        handed back by `recycle_flows` are today's arrays again (their added-to flows zeroed
        by whoever handed them back), instead of a dozen new arrays to allocate and zero;
        their written flows' slots outside the blocks are still the zeros written here (no
        stage writes there but the exposure's, which writes +0.0 for every slot that is not
        alive, and the caller only reads them), so they are not written again: at 200,000
        merchants that was 0.1 ms a day."""
        spare, self._spare_flows = self._spare_flows, None
        if spare is not None:
            return spare
        n = self.n
        arrays = {}
        for k in DayFlows.__dataclass_fields__:
            if k in _WRITTEN_FLOWS:
                a = np.empty(n)
                for gap in self._gaps:
                    a[gap] = 0.0
            else:
                a = mapped_zeros(n)  # the padding is only ever read: see `mapped_zeros`
            arrays[k] = a
        return DayFlows(**arrays)

    def recycle_flows(self, flows: DayFlows, zeroed: Collection[str]) -> None:
        """Take back the flows `step` returned, for the next step to fill again: for a caller
        that reads a day's flows before the next step and keeps none, and that has zeroed
        (`zeroed`, which it names) every flow of `ADDED_FLOWS` to +0.0 (`simulator.aggregates.
        aggregate` with that `clear` does, each right after reading it): tomorrow's stages add
        to those (`simulator.charge_rules` counts on +0.0, not -0.0). Not recycled, each
        day's flows are new arrays, which a caller can keep."""
        missing = ADDED_FLOWS.difference(zeroed)
        if missing:
            raise ValueError(f"flows {', '.join(sorted(missing))} are not zeroed: the next "
                             "day would add to today's")
        self._spare_flows = flows

    #: The fewest slots for which the commission's decisions on orders are kept from day
    #: to day (`_demand`'s numpy path; its compiled pass, `simulator.charge_rules`, decides
    #: every merchant each day, for less than keeping them costs). Finding the merchants
    #: whose fields changed, deciding them and patching them in costs a dozen small passes
    #: and their bookkeeping, whatever their number; deciding every merchant's order afresh
    #: costs less in a small model. (The claims' decisions are kept at any size: a decision
    #: made afresh also has its stage masks found afresh, `_Claims.plan`.) Tests set 0 to
    #: keep them at any size.
    _keep_from = 1 << 13

    def _kept_decisions(self, book: Any, event_type: str, key: tuple[Any, ...],
                        literals: frozenset[str]) -> _KeptDecisions | None:
        """The kept decisions on an event shape (`key`, which names the event type first), if
        its rules allow it."""
        if not self._keep_decisions:
            return None
        found = self._kept.get(key, False)
        if found is False:
            found = self._kept[key] = None if isinstance(book, _NoRules) else _KeptDecisions.of(
                book.reads(event_type), literals, _SCOPE_STATE_FIELDS)
            if found is not None:
                # Kept decisions that read the same fields learn what changed from one pass.
                shared = self._changes.setdefault(tuple(found.keys), found.changes)
                if shared is not found.changes:
                    found.changes = shared
                    shared.users.add(found)
        return found

    def _masks_of(self, dec: Any) -> dict[Any, Any]:
        """The refund day's stage masks kept for the decision `dec` (`_stage_masks`), made
        empty on first use. Looked up before one is added: a weak dictionary's `setdefault`
        makes a weak reference on every call, found or not."""
        masks = self._stage_masks
        found = masks.get(dec)
        if found is None:
            found = masks[dec] = {}
        return found

    def _review_key(self) -> tuple[bool, bool, float]:
        """The cost key (`_cost_key`) of the claims the platform's review grants: the
        merchant pays, with a return as the scenario says, no recall fee."""
        with_return = self.sc.refunds.review_grants_with_return.value
        found = self._claim_constants.get(("review", with_return))
        if found is None:
            found = _cost_key({"payer": "merchant", "with_return": with_return,
                               "recall_fee": 0.0})
            assert found is not None  # the review's arguments are single numbers
            self._claim_constants[("review", with_return)] = found
        return found

    def _claim_rules(self, event_type: str) -> tuple[tuple[str, int], ...]:
        """(id, position) of the refund rules that listen to a claim event, in rule order."""
        key = ("rules", event_type)
        found = self._claim_constants.get(key)
        if found is None:
            book = self.books["refund"]
            found = self._claim_constants[key] = tuple(
                (rid, book.rule_ids.index(rid)) for rid in book.rules_for(event_type))
        return found

    def _demand(self, rows: slice, T: float, fl: DayFlows, ad_clicks: np.ndarray) -> None:
        """Commission and ad spend of the merchants in `rows` (all n in a day), whose orders are
        counted (`_orders`): the commission rulebook decides the merchants from the first
        block's within `rows` to the last's (`_span`: the padding slots outside the blocks are
        never alive, have no orders and are charged nothing, so those beyond them are left
        out); charges are kept only where the merchant is alive. Over every merchant, in one
        compiled pass where the rules allow (`simulator.charge_rules`), else through the
        numpy target."""
        span = self._span(rows)
        if span is None:
            return
        cm = self.books["commission"]
        if rows.indices(self.n) == (0, self.n, 1):
            scopes = self._commission_scopes(T, ad_clicks)
            compiled = self._charge_rules(cm, scopes)
            if compiled is not None:
                compiled.charge(self._starts, self._stops, self.s["alive"], fl.orders, scopes,
                                [getattr(fl, flow) for flow in charge_rules.FLOWS])
                return
        clicks: Any = ad_clicks  # (read at `rows` by the scope)
        if self._clicks_known == (id(ad_clicks), self._stepped):
            clicks = Column(ad_clicks, np.asarray(True))  # (spares the rulebook a NaN scan)
        rows = span
        s = self.s
        alive = s["alive"][rows]
        orders = fl.orders[rows]
        size = orders.size
        events = self._commission_events(T, clicks)
        for etype, event, times in (("order_placed", events["order_placed"], orders),
                                    ("ad_click_charged", events["ad_click_charged"], 1.0)):
            kept = (self._kept_decisions(cm, etype, (etype,), _ORDER_LITERALS)
                    if etype == "order_placed" and self.n >= self._keep_from else None)
            if kept is not None:
                def scope_of(where: Any, event: dict[str, Any] = event) -> Scope:
                    if where is None:
                        return self._scope(where, event, self._order_ns(where, listing_id="L"))
                    # The changed merchants: their amount and costs gathered once for the
                    # day's kept decisions on orders and on claims (`_columns_at`).
                    at = self._columns_at(where)
                    amount, shipping = at["amount"], at["shipping_cost"]
                    return self._scope(where, {**event, "amount": amount,
                                               "shipping_cost": shipping},
                                       self._order_ns(where, listing_id="L", amount=amount,
                                                      shipping_cost=shipping,
                                                      product_cost=at["product_cost"]))

                dec = kept.decide(cm, etype, s, self._stepped, rows, scope_of, _Deferred(
                    self, lambda model, event=event: model._scope(
                        rows, event, model._order_ns(rows, listing_id="L"))))
            else:
                scope = self._scope(rows, event, self._order_ns(rows, listing_id="L"))
                dec = cm.decide(etype, scope, size)
            for rid, position in self._rule_positions(cm, etype):
                # A rule that decided every row selects them all without a mask.
                every = dec.uniform == position
                mask: Any = True if every else dec.rule == position
                if not (every or mask.any()):
                    continue
                for effect in dec.effects(rid):
                    if effect.name != "charge_fee":
                        continue
                    args = effect.args
                    amount = args["amount"]
                    kind_arg = args.get("kind", "fees")
                    one = _constant(kind_arg)
                    if one is not None and amount.dtype == np.float64:
                        # A literal kind: no per-row text comparison; one compiled pass.
                        cat = charge_rules.fee_flow(str(one))
                        kernels.charge(getattr(fl, cat)[rows], _EVERY_ROW if every else mask,
                                       np.ascontiguousarray(amount), alive,
                                       times if isinstance(times, np.ndarray) else _ONCE)
                        continue
                    ok = mask & _known(amount) & alive
                    if one is not None:
                        cat = charge_rules.fee_flow(str(one))
                        getattr(fl, cat)[rows] += np.where(ok, amount * times, 0.0)
                        continue
                    kind = np.broadcast_to(kind_arg, amount.shape)
                    for cat, sel in (("commission", kind == "commission"),
                                     ("ads", kind == "ad_click"),
                                     ("fees", (kind != "commission") & (kind != "ad_click"))):
                        hit = ok & sel
                        if hit.any():
                            t = times[hit] if isinstance(times, np.ndarray) else times
                            getattr(fl, cat)[rows.start + np.flatnonzero(hit)] += amount[hit] * t

    def _commission_events(self, T: float, clicks: Any) -> dict[str, dict[str, Any]]:
        """The commission rulebook's events of every merchant at time T: an order (of one
        unit at the merchant's price) and the day's ad clicks (`clicks`)."""
        s = self.s
        return {"order_placed": {"time": T, "order_id": "O", "listing_id": "L", "quantity": 1,
                                 "amount": s["price"], "shipping_cost": s["shipping"]},
                "ad_click_charged": {"time": T, "listing_id": "L", "clicks": clicks}}

    def _commission_scopes(self, T: float, clicks: np.ndarray
                           ) -> dict[str, dict[str, Mapping[str, Any]]]:
        """Each commission event's scope over every merchant, as `charge_rules` reads it."""
        merchant, listing = self._ns_fields()
        order = self._order_fields(listing_id="L")
        return {etype: {"event": event, "order": order, "merchant": merchant,
                        "listing": listing}
                for etype, event in self._commission_events(T, clicks).items()}

    #: False: the commission rulebook charges through the numpy target, never in one
    #: compiled pass (`simulator.charge_rules`; tests compare).
    _compiled_charges = True

    def _charge_rules(self, cm: Any, scopes: Mapping[str, Mapping[str, Mapping[str, Any]]]
                      ) -> CompiledCharges | None:
        """The commission rulebook's rules prepared for one compiled pass (made on the first
        day, from the day's `scopes`: the arrays the events read are the model's for good),
        or None: the numpy target decides (`CompiledCharges.of`)."""
        if not self._compiled_charges:
            return None
        found = self._charges
        if found is None:
            found = self._charges = (CompiledCharges.of(cm, scopes),)
        return found[0]

    def _columns_at(self, where: np.ndarray) -> dict[str, _Lazy]:
        """The orders' amount and costs (`_CLAIM_COLUMNS`) at the merchants `where` only, as
        the claim columns over all rows read there give them (but for a known mask that says
        "all known" once), each gathered and widened when a rule first reads it. Gathered
        once a day for the same merchants (the same array: the kept decisions on orders, on
        the numpy path of the fees, and on claims, which share their changes, are handed
        one), since no stage between two such decisions changes the orders' amount and
        costs; decisions only read them (their number arguments are new arrays)."""
        found = self._claim_columns_at
        if found is not None and found[0] == self._stepped and found[1] is where:
            return found[2]
        s = self.s
        columns = {name: _Lazy(functools.partial(_column_at, s[key], where))
                   for name, key in _CLAIM_COLUMNS}
        self._claim_columns_at = (self._stepped, where, columns)
        return columns

    def _rule_positions(self, book: Any, event_type: str) -> tuple[tuple[str, int], ...]:
        """(id, position) of the rules of `book` that listen to `event_type`, in rule order:
        found once per run, not on every day's decision."""
        found = self._positions
        key = (id(book), event_type)
        positions = found.get(key)
        if positions is None:
            positions = found[key] = tuple((rid, book.rule_ids.index(rid))
                                           for rid in book.rules_for(event_type))
        return positions

    def _span(self, rows: slice) -> slice | None:
        """The rows of `rows` from its first block row to its last (None: no block row). One
        stretch rather than one per run of adjoining blocks: a decision's fixed cost (on a
        cold cache, about a tenth of a millisecond) outweighs the few padding slots between
        the blocks. The day's span (of all n rows) is worked out once."""
        lo, hi, _ = rows.indices(self.n)
        found = self._spans
        if found is not None and found[0] == (lo, hi):
            return found[1]
        self._spans = ((lo, hi), self._block_span(lo, hi))
        return self._spans[1]

    def _block_span(self, lo: int, hi: int) -> slice | None:
        inside = [(max(lo, b.start), min(hi, b.stop)) for b in self.blocks
                  if max(lo, b.start) < min(hi, b.stop)]
        return slice(inside[0][0], inside[-1][1]) if inside else None

    def _accounts(self, u: np.ndarray, fl: DayFlows, dead_before: np.ndarray) -> None:
        """The day's accounts of the merchants in the blocks, each on its own
        (`kernels.accounts`): profit, cash, the run of loss days, the burden average, exit,
        and cutting quality under a squeezed margin."""
        s, sc = self.s, self.sc
        ad = sc.adaptation
        f = self.dtype.type
        kernels.accounts(
            self._starts, self._stops, dead_before, fl.commission, fl.ads, fl.fees, fl.refund,
            fl.revenue, fl.orders, s["unit_cost"], s["shipping"], s["fixed_cost"], s["cash"],
            s["loss_days"], s["burden_ema"], s["last_revenue"], s["alive"], s["dl_rule"],
            s["dl_due"], s["dl_event_time"], s["dl_event_price"], s["price"], s["margin"],
            s["quality"], s["full_cost"], u[U_ADAPT],
            # Python numbers numpy combined with state arrays round in the state dtype.
            f(1.0 - BURDEN_MEMORY), float(BURDEN_MEMORY), int(sc.exit.loss_days.value),
            f(ad.margin_threshold.value), f(ad.quality_floor.value),
            np.float32(ad.probability.value), float(ad.quality_floor.value),
            float(ad.quality_step.value), float(ad.cost_share_of_quality.value))

    def _position_weight(self, score: np.ndarray, alive: np.ndarray,
                         rows: np.ndarray | None = None) -> np.ndarray:
        """Each listing's position weight after ranking its group by score, best first, the
        dead last (a score of -inf); ties go to the lower seller slot (as a stable sort of the
        slots gives). `rows`: the listings (sorted) whose score may have changed since the
        last call, None: any may have.

        In float64 mode (the reference's precision) this is a stable argsort per group. In
        float32 mode scores are compared at float32 precision and each listing gets one unique
        uint64 key (order-preserving float32 bits, then the slot), so any sort gives the order a
        stable sort would (`kernels.rank_float32`). Keys are computed again only at `rows`
        and in groups where a listing died or entered; groups whose keys did not change keep
        yesterday's weights; in the others only the listings whose key changed are sorted,
        then merged into yesterday's order of the rest (still sorted).
        """
        slots = self.layout.slots
        if self.dtype == np.float64:
            score = np.where(alive, score, -np.inf)
            order = np.argsort(-score.reshape(-1, slots), axis=1, kind="stable")
            weight = np.empty(order.shape)
            np.put_along_axis(weight, order, self.weights[None, :], axis=1)
            return weight.ravel()
        first = self._key is None
        if first:
            self._key = np.empty(self.n, dtype=np.uint32)
            self._seen_alive = np.empty(self.n, dtype=np.uint8)
            self._ranked = np.empty(self.n, dtype=np.uint64)
            self._weight = np.empty(self.n)
        kernels.rank_float32(score, alive.view(np.uint8), slots, self.weights, self._key,
                             self._seen_alive, self._ranked, self._weight,
                             _NO_ROWS if rows is None else rows, rows is None, first)
        return self._weight

    def exposure(self, T: float, out: np.ndarray | None = None) -> np.ndarray:
        """Impressions of every listing today: ranking rulebook score, rank within the group,
        position weight x store scale over the group's impressions, plus an equal share of the
        group's channel impressions for listings the rulebook admits to a channel."""
        s = self.s
        rk = self.books["ranking"]
        score, channel = self._scratch["score"], self._scratch["channel"]
        event = self._listing_event(T)
        # Scores are per listing: decided block by block (see _BLOCK), the dead included
        # (the kernels rank them last and give them no exposure, whatever their score and
        # channel); only the ranking itself needs the whole group. A listing none of whose
        # fields the rules read changed since yesterday keeps yesterday's score and channel;
        # when few changed, they are decided together.
        changed = self._rank_inputs.changed(s, self._starts, self._stops)
        if changed is not None:
            # Padding is never decided (nothing there changes anyway): `changed` is False
            # outside the blocks.
            few = np.flatnonzero(changed)
            if few.size * 4 < self._block_rows:
                # Few listings changed: decided in one call, whatever their block (the
                # decisions are row by row), instead of a call per block.
                if few.size:
                    self._rank(rk, few, event, score, channel)
                return self._exposure(score, channel, out, few)
        for rows in self.blocks:
            sub: np.ndarray | slice = rows
            if changed is not None:
                idx = np.flatnonzero(changed[rows])
                if not idx.size:
                    continue
                if idx.size * 4 < rows.stop - rows.start:  # few: decide only those
                    sub = rows.start + idx
            self._rank(rk, sub, event, score, channel)
        return self._exposure(score, channel, out)

    def _listing_event(self, T: float) -> dict[str, Any]:
        """The `listing_updated` event of every listing at time T (the ranking's, and the
        auto-follow rules' after a merchant follows a prompt)."""
        s = self.s
        return {"time": T, "listing_id": "L", "product_group": self.group_names,
                "price": s["price"], "unit_cost": s["unit_cost"], "quality": s["quality"],
                "promo_signup_price": s["promo"]}

    def _rank(self, rk: Any, sub: np.ndarray | slice, event: dict[str, Any],
              score: np.ndarray, channel: np.ndarray) -> None:
        """The ranking rulebook's score and channel of the listings `sub` (a block, decided in
        place, or indices): in one compiled pass where the rules allow
        (`simulator.ranking_rules`), else through the numpy target.

        A channel is read only for whether it is positive (`kernels.group_exposure`): while
        none is (`_channels` False) and no rule admits a listing to one today, the channels
        of `sub` are left as they are (zero, negative or NaN, all alike to the exposure)
        instead of written with zeros."""
        compiled = self._ranking_rules(rk, event)
        if compiled is not None:
            rows = np.arange(sub.start, sub.stop) if isinstance(sub, slice) else sub
            channels = np.empty(rows.size)
            admits = compiled.decide(rows, event, score, channels)
            if admits or self._channels:
                channel[sub] = channels
            self._channels |= admits
            return
        dec = rk.decide("listing_updated", self._scope(sub, event),
                        sub.stop - sub.start if isinstance(sub, slice) else sub.size)
        fired = list(self._fired_effects(rk, dec))
        admits = any(name == "admit_to_channel" for _rid, _mask, effects in fired
                     for name, _args in effects)
        block_score = self._ranked_rows(score, sub)
        block_channel = self._ranked_rows(channel, sub) if admits or self._channels else None
        self._channels |= admits
        for _rid, mask, effects in fired:
            for name, args in effects:
                if name == "assign_ranking_score":
                    target, v = block_score, args["score"]
                elif name == "admit_to_channel":
                    assert block_channel is not None
                    target, v = block_channel, args["impressions"]
                else:
                    continue
                _put_known(target, v, mask)
        if not isinstance(sub, slice):
            score[sub] = block_score
            if block_channel is not None:
                channel[sub] = block_channel

    #: False: the ranking rulebook decides through the numpy target, never in one compiled
    #: pass (`simulator.ranking_rules`; tests compare).
    _compiled_ranking = True

    def _ranking_rules(self, rk: Any, event: dict[str, Any]) -> CompiledRanking | None:
        """The ranking rulebook's rules prepared for one compiled pass (made on the first
        day: the event's arrays are the state's for good), or None: the numpy target decides
        (`CompiledRanking.of`)."""
        if not self._compiled_ranking:
            return None
        found = self._ranking
        if found is None:
            merchant, listing = self._ns_fields()
            found = self._ranking = (CompiledRanking.of(
                rk, event, {"merchant": merchant, "listing": listing}, self.dtype),)
        return found[0]

    @staticmethod
    def _ranked_rows(values: np.ndarray, sub: np.ndarray | slice) -> np.ndarray:
        """Zeros for the listings `sub`: a block's own rows of `values` zeroed in place, or a
        new array for indices (written back by the caller)."""
        if isinstance(sub, slice):
            rows = values[sub]
            rows.fill(0.0)
            return rows
        return np.zeros(sub.size)

    def _exposure(self, score: np.ndarray, channel: np.ndarray, out: np.ndarray | None,
                  rows: np.ndarray | None = None) -> np.ndarray:
        """Impressions from today's scores and channels (see `exposure`); `rows`: the
        listings whose score may have changed (None: any)."""
        s = self.s
        weight = self._position_weight(score, s["alive"], rows)
        # Exposure needs each group's totals (summed as numpy sums a row): one compiled pass
        # per group, which reads the channels only while some may be positive.
        out = np.empty(self.n) if out is None else out
        positive = kernels.group_exposure(weight, s["alive"], s["scale"], channel,
                                          self.impressions, self.channel_share,
                                          self.layout.slots, self._scratch["group_weight"], out,
                                          self._channels)
        self._channels = positive > 0
        return out


    # -- refunds ----------------------------------------------------------------------------
    def _refund_day(self, T: float, u: np.ndarray, fl: DayFlows, wrongful: np.ndarray,
                    wrongful_burden: np.ndarray, want: np.ndarray) -> None:
        """The day's refunds of every block (`_refunds`). When the day of all the blocks
        together takes the compiled pass (`_Claims.plan` over their span), it runs over each
        stretch of adjoining blocks, the decisions made and their tables found once instead
        of once per block (about 0.08 ms a block at 200,000 merchants); else block by block.
        A merchant's day depends on nothing but its own row, so either way books the same."""
        span = self._refund_span
        if span is not None and self._refunds(span[0], T, u, fl, wrongful, wrongful_burden,
                                              want, span[1]):
            return
        for rows in self.blocks:
            self._refunds(rows, T, u, fl, wrongful, wrongful_burden, want)

    def _refunds(self, rows: slice, T: float, u: np.ndarray, fl: DayFlows,
                 wrongful: np.ndarray, wrongful_burden: np.ndarray, want: np.ndarray,
                 runs: Sequence[slice] | None = None) -> bool:
        """Route the day's refund-only claims of the merchants in `rows` (a block, see
        `_Claims`); record per merchant the refunds granted without evidence, their burden,
        and the appeals it wants to file. Given `runs` (the stretches of blocks within
        `rows`, which then spans several blocks and the padding between them), only the
        day in one compiled pass is taken, over those stretches: False, having booked
        nothing, when it does not apply (the caller routes block by block). True when
        booked.

        Every merchant of the block is routed: one without orders (or not alive, which has
        none) has no claims, and every booking is a count times a cost, so it books zero, as
        if it had been left out.
        """
        s, rf = self.s, self.sc.refunds
        m = rows.stop - rows.start
        share = float(rf.intervention_share.value)

        def floor_share(count: np.ndarray, share: float, k: int) -> np.ndarray:
            """floor(count x share + offset(ur, k)) in one pass."""
            return kernels.floor_share(count, float(share), ur, k * GOLDEN, np.empty(m))

        book = _Claims(self, rows, T)
        requested = {valid: book.decide("refund_requested", valid, "requested")
                     for valid in (True, False)}
        key = self._review_key()
        fused = self._fused_claims and all(book.asks_merchant(dec) for dec in requested.values())
        if fused:
            book.requested.update(requested)
            plan = book.plan(key) if self._fused_day else None
            if plan is not None:
                # The whole day of the block (or of each stretch of blocks) in one pass.
                for part in (rows,) if runs is None else runs:
                    self._book_refund_day(part, _plan_rows(plan, part.start - rows.start,
                                                           part.stop - part.start),
                                          u, fl, wrongful, wrongful_burden, want)
                return True
        if runs is not None:
            return False
        ur = np.empty(m)
        claim_args = self._claim_args(rows, u, fl)
        if fused:
            # Every claim of both classes awaits the merchant (routing them books nothing
            # else): the claims are counted and split between the platform and the merchant
            # in one pass, and the classes' counts are never written.
            inter = {True: np.empty(m), False: np.empty(m)}
            book.left[True], book.left[False] = np.empty(m), np.empty(m)
            positives = kernels.claims_split(*claim_args, share, GOLDEN, 2 * GOLDEN, ur,
                                             inter[True], book.left[True], inter[False],
                                             book.left[False])
            book.intervene_both(inter, "awaiting_merchant", dict(zip((True, False), positives,
                                                                     strict=True)))
        else:
            with_evidence, lacking = np.empty(m), np.empty(m)
            kernels.claim_counts(*claim_args, ur, with_evidence, lacking)
            counts = {True: with_evidence, False: lacking}
            for c, valid in enumerate((True, False)):
                dec = book.requested[valid] = requested[valid]
                awaiting = book.route(dec, counts[valid], valid)
                if awaiting is None:
                    continue
                # The claims the buyer asks the platform to step in on, and the rest left to
                # the merchant, in one pass.
                inter_c, book.left[valid] = np.empty(m), np.empty(m)
                positive = kernels.split_share(awaiting, share, ur, (1 + c) * GOLDEN, inter_c,
                                               book.left[valid])
                book.intervene(inter_c, valid, "awaiting_merchant", positive)
        # The merchant answers claims without evidence first (to reject them), then the rest,
        # from its capacity (read from the state). A merchant's answers depend on nothing the
        # routing of its answers changes: with claims of both classes left, both are answered
        # in one pass before either is routed.
        capacity: np.ndarray = s["capacity"][rows]
        answered: dict[bool, np.ndarray] = {}
        unanswered: dict[bool, np.ndarray | None] = {True: None, False: None}
        if book.left[False] is not None and book.left[True] is not None:
            for valid in (False, True):
                answered[valid], unanswered[valid] = np.empty(m), np.empty(m)
            kernels.answer_both(book.left[False], book.left[True], capacity, answered[False],
                                unanswered[False], answered[True], unanswered[True])
        else:
            for valid in (False, True):
                left = book.left[valid]
                if left is not None:
                    answered[valid], unanswered[valid] = np.empty(m), np.empty(m)
                    kernels.answer(left, capacity, np.empty(m), answered[valid],
                                   unanswered[valid])
        for valid, decision in ((False, "reject"), (True, "accept")):
            if valid in answered:
                dec = book.decide("merchant_responded", valid, "awaiting_merchant", decision)
                book.route(dec, answered[valid], valid)
        book.deadlines_both(unanswered)
        for c, valid in enumerate((True, False)):
            rejected = book.rejected[valid]
            if rejected is not None:
                esc = floor_share(rejected, rf.escalation_after_rejection.value, 3 + c)
                book.intervene(esc, valid, "rejected")

        def claims(table: np.ndarray | None) -> np.ndarray:
            return _NO_CLAIMS if table is None else table

        # Human reviews grant claims with valid evidence; automated ones a share (floor(0 x
        # share + offset) is 0: rows without automated reviews grant none). Then the day's
        # burden, and appeals against the refunds granted without evidence: in one pass.
        kernels.review_close(
            claims(book.review_auto[True]), claims(book.review_human[True]),
            claims(book.review_auto[False]), float(rf.automated_review_grant_share.value), ur,
            5 * GOLDEN, 6 * GOLDEN, s["unit_cost"][rows], s["shipping"][rows], key[0], key[1],
            key[2], book.burden, book.wrongful, book.wrongful_burden, s["alive"][rows],
            7 * GOLDEN, float(self.sc.appeals.propensity.value), fl.refund[rows],
            wrongful[rows], wrongful_burden[rows], want[rows])
        return True

    def _book_refund_day(self, rows: slice, plan: _DayPlan, u: np.ndarray, fl: DayFlows,
                         wrongful: np.ndarray, wrongful_burden: np.ndarray,
                         want: np.ndarray) -> None:
        """The whole refund day of the merchants in `rows` in one pass (`kernels.refund_day`),
        by `plan` (its rules over those rows)."""
        s, rf = self.s, self.sc.refunds
        kernels.refund_day(
            plan.stages, *self._claim_args(rows, u, fl), float(rf.intervention_share.value),
            float(rf.escalation_after_rejection.value),
            float(rf.automated_review_grant_share.value),
            float(self.sc.appeals.propensity.value), _SHIFTS, *plan[:6], plan.fees,
            s["capacity"][rows], s["unit_cost"][rows], s["shipping"][rows],
            s["alive"][rows], fl.refund[rows], wrongful[rows], wrongful_burden[rows],
            want[rows])

    def _claim_args(self, rows: slice, u: np.ndarray, fl: DayFlows) -> tuple[Any, ...]:
        """The leading arguments of the kernels that count the claims of the merchants in
        `rows` (`claim_counts`, `claims_split`, `refund_day`): their orders, quality and two
        draws, the claim rate, the quality's elasticity, the share lacking evidence."""
        s, rf = self.s, self.sc.refunds
        return (fl.orders[rows], s["quality"][rows], u[U_CLAIMS, rows], u[U_REFUND, rows],
                float(rf.claim_rate.value), float(rf.quality_complaint_elasticity.value),
                float(rf.lacking_evidence_share.value))

    # -- appeals ----------------------------------------------------------------------------
    def _appeals(self, want: np.ndarray, wrongful: np.ndarray, wrongful_burden: np.ndarray,
                 T: float, next_month: float, next_year: float, fl: DayFlows) -> None:
        per_day = self.sc.appeals.max_per_day.value
        active = appellants(want)  # np.flatnonzero(want > 0), compiled
        if not active.size:  # (no appellant draws anything)
            return
        if self.R == 1:  # one replication: its draws as they are, no copy
            au = appeal_draws(self.appeal_lanes[0], active.size, per_day)
        else:
            bounds = np.searchsorted(active, np.arange(self.R + 1) * self.n1)
            au = np.concatenate([appeal_draws(lanes, int(bounds[r + 1] - bounds[r]), per_day)
                                 for r, lanes in enumerate(self.appeal_lanes)], axis=1)
        rounds = self._appeal_rounds
        if rounds is not None and self._fused_appeals:
            # Every round of every appellant in one compiled pass (`simulator.appeal_rounds`),
            # reading and booking the state and the day's flows in place.
            sc = self.sc.appeals
            constants = rounds.constants({
                "appeal_filed": {"time": T, "appeal_id": "A", "order_id": "O"},
                "appeal_decided": {"time": T, "appeal_id": "A"}})
            static = rounds.static(self._appellants(active) if rounds.per_row else None,
                                   active.size)
            rounds.run(active, want, au, constants, static, self.s, per_day, GOLDEN,
                       float(sc.human_review_request_share.value),
                       float(sc.human_success.value), float(sc.automated_success.value),
                       next_month, next_year, wrongful, wrongful_burden, fl.refund,
                       fl.appeals_attempted, fl.appeals_won)
            return
        # Merchants appeal independently: go block by block (_BLOCK appellants) so that each
        # round's gathers and scatters stay within a cache-sized range of merchants.
        cuts = [*range(0, active.size, _BLOCK), active.size]
        for lo, hi in itertools.pairwise(cuts):
            self._appeal_block(active[lo:hi], au[:, lo:hi], want, wrongful, wrongful_burden,
                               T, next_month, next_year, fl)

    def _appellants(self, active: np.ndarray) -> Scope:
        """The merchant and listing namespaces of the appellants `active` (the fields no
        appeal round changes; the counters come from the state as the rounds go)."""
        merchant: dict[str, Any] = {
            "size_tier": _Lazy(lambda: self.tier_names.get()[active]),
            "auto_follow_enrolled": _Lazy(lambda: self.s["enrolled"][active]),
        }
        return {"merchant": _View(merchant, None, active.size),
                "listing": self._listing_ns(active), "order": None}

    def _appeal_block(self, active: np.ndarray, au: np.ndarray, want: np.ndarray,
                      wrongful: np.ndarray, wrongful_burden: np.ndarray, T: float,
                      next_month: float, next_year: float, fl: DayFlows) -> None:
        """The day's appeals of the merchants `active` (their draws `au`), round by round,
        through the numpy target: the path of a set without appeal rules and of the tests
        that compare (`_appeals` otherwise runs every round in one compiled pass,
        `simulator.appeal_rounds`). The counters the appeal rules read and the rounds change
        are copied out for these merchants once, updated in place round after round (in the
        order the reference updates them), and written back at the end."""
        sc, s = self.sc.appeals, self.s
        per_day = sc.max_per_day.value
        book = self.books["appeal"]
        m = active.size
        refund, recovered_each = np.empty(m), np.empty(m)
        wants = np.empty(m, dtype=want.dtype)
        kernels.appeal_gather(active, fl.refund, wrongful, wrongful_burden, want, refund,
                              recovered_each, wants)
        attempted = np.zeros(m)
        won = np.zeros(m)
        merchant: dict[str, Any] = {
            "size_tier": _Lazy(lambda: self.tier_names.get()[active]),
            "auto_follow_enrolled": _Lazy(lambda: s["enrolled"][active]),
        }
        local = {k: kernels.take(s[k], active, np.empty(m, dtype=s[k].dtype))
                 for k in _APPEAL_COUNTERS}
        merchant.update(local)
        decided = np.empty(m, dtype=np.int64)
        starts = np.empty(5, dtype=np.int64)

        def scope(rows: np.ndarray, event: dict[str, Any]) -> Scope:
            return {"event": _View(event, rows, m), "merchant": _View(merchant, rows, m),
                    "listing": self._listing_ns(active[rows]), "order": None}

        def bump(counter: np.ndarray, rows: np.ndarray, mask: np.ndarray) -> None:
            """counter[rows[mask]] += 1; without index arithmetic when rows are all m."""
            if rows.size == m:
                counter += mask
            else:
                counter[rows[mask]] += 1

        for a in range(per_day):
            rows = np.flatnonzero(wants > a)
            if not rows.size:
                break
            every = rows.size == m  # the first round: every appellant of the block
            r, human = np.empty(rows.size), np.empty(rows.size, dtype=bool)
            kernels.appeal_draw(au[a], rows, every, GOLDEN,
                                float(sc.human_review_request_share.value), r, human)
            dec = book.decide("appeal_filed", scope(rows, {
                "time": T, "appeal_id": "A", "order_id": "O", "human_review_requested": human,
            }), rows.size)
            accepted = np.zeros(rows.size, dtype=bool)
            review_human = np.zeros(rows.size, dtype=bool)
            for _rid, mask, effects in self._fired_effects(book, dec):
                for name, args in effects:
                    if name == "accept_appeal":
                        bump(local["appeals_filed_month"], rows, mask)
                        bump(local["appeals_filed_year"], rows, mask)
                        accepted |= mask
                        # The last acceptance's reviewer hears it (`simulator.reference`).
                        review = args.get("review", "automated")
                        one = _constant(review)
                        if one is None:
                            np.copyto(review_human, np.broadcast_to(review, mask.shape)
                                      == "human", where=mask)
                        elif one == "human":
                            review_human |= mask
                        else:
                            review_human &= ~mask
                    elif name == "refuse_appeal":
                        bump(local["appeals_refused_month"], rows, mask)
            kernels.appeal_outcomes(rows, r, accepted, review_human,
                                    float(sc.human_success.value),
                                    float(sc.automated_success.value), attempted,
                                    local["appeals_failed_month"], local["appeals_failed_year"],
                                    won, refund, recovered_each, decided, starts)
            # One decision per (outcome, reviewer): the event's text fields are then single
            # values, not a text column compared row by row.
            for g, (outcome, reviewer) in enumerate(_APPEAL_GROUPS):
                if starts[g + 1] > starts[g]:
                    self._appeal_decided(book, decided[starts[g]:starts[g + 1]], scope, T,
                                         outcome, reviewer, next_month, next_year,
                                         local["appeal_blocked_until"])
        for k, values in local.items():
            kernels.put(s[k], active, values)
        kernels.appeal_scatter(active, refund, attempted, won, fl.refund, fl.appeals_attempted,
                               fl.appeals_won)

    def _appeal_decided(self, book: Any, decided: np.ndarray,
                        scope: Callable[[np.ndarray, dict[str, Any]], Scope], T: float,
                        outcome: str, reviewer: str, next_month: float, next_year: float,
                        blocked: np.ndarray) -> None:
        """The `appeal_decided` event for the appeals at `decided` (rows of the block), all
        with this outcome and reviewer: blocks it imposes raise `blocked`."""
        dec = book.decide("appeal_decided", scope(decided, {
            "time": T, "appeal_id": "A", "outcome": outcome, "reviewer": reviewer,
        }), decided.size)
        for _rid, mask, effects in self._fired_effects(book, dec):
            for name, args in effects:
                if name != "block_appeals":
                    continue
                j = decided[mask]
                one = _constant(args.get("scope", ""))
                if one is not None:  # a literal scope: no per-row text comparison
                    until = (next_month if one == "month" else next_year if one == "year"
                             else -np.inf)
                    blocked[j] = np.maximum(blocked[j], until)
                    continue
                span = np.broadcast_to(args.get("scope", ""), mask.shape)
                until = np.where(span == "month", next_month,
                                 np.where(span == "year", next_year, -np.inf))
                blocked[j] = np.maximum(blocked[j], until[mask])

    def _enter(self, idx: np.ndarray) -> None:
        """New sellers like the ones that left take the free slots, at the starting values."""
        s, ad = self.s, self.sc.adaptation
        s["alive"][idx] = True
        s["cash"][idx] = s["cash0"][idx]
        s["price"][idx] = s["price0"][idx]
        s["quality"][idx] = s["quality0"][idx]
        s["enrolled"][idx] = False
        s["loss_days"][idx] = 0
        s["prompts_seen"][idx] = 0
        s["silenced_until"][idx] = 0.0
        s["burden_ema"][idx] = self.sc.population.initial_burden_ratio.value
        s["unit_cost"][idx] = s["full_cost"][idx].astype(np.float64) * (
            1.0 - ad.cost_share_of_quality.value * (1.0 - s["quality"][idx].astype(np.float64)))
        s["margin"][idx] = self._margin(idx)


#: The merchant fields appeals read and change.
_APPEAL_COUNTERS = ("appeals_filed_month", "appeals_filed_year", "appeals_failed_month",
                    "appeals_failed_year", "appeals_refused_month", "appeal_blocked_until")

#: Flows a stage writes whole over every block (`kernels.group_exposure`, `kernels.demand`,
#: `kernels.review_close`) instead of adding to them: see `Model._new_flows`.
_WRITTEN_FLOWS = frozenset({"exposure", "orders", "revenue", "below_cost_units", "refund"})
#: Flows the day's stages add to: they start the day at zero (see `Model.recycle_flows`).
ADDED_FLOWS = frozenset(DayFlows.__dataclass_fields__) - _WRITTEN_FLOWS

#: The groups of decided appeals, in the order their `appeal_decided` events are decided.
_APPEAL_GROUPS = ((UPHELD, "human"), (UPHELD, "automated"), (REJECTED, "human"),
                  (REJECTED, "automated"))

#: Merchants per block where a stage runs block by block (see the module docstring): a stage's
#: few dozen float64 arrays of a block then fit in a CPU's last-level cache.
_BLOCK = 1 << 16


def _blocks(replications: int, layout: Layout) -> list[slice]:
    """Contiguous blocks of at most _BLOCK merchant slots covering every seller that exists
    (padding slots, which never live, are left out where they fill a stretch of their own:
    a per-merchant stage does nothing there); neighbouring small groups share a block."""
    spans = [(start, start + size)
             for r in range(replications)
             for g, size in enumerate(layout.sizes) if size
             for start in [(r * len(layout.sizes) + g) * layout.slots]]
    out: list[slice] = []
    lo: int | None = None
    hi = 0
    for start, stop in spans:
        if lo is not None and stop - lo <= _BLOCK:
            hi = stop
            continue
        if lo is not None:
            out.append(slice(lo, hi))
        while stop - start > _BLOCK:
            out.append(slice(start, start + _BLOCK))
            start += _BLOCK
        lo, hi = start, stop
    if lo is not None:
        out.append(slice(lo, hi))
    return out


def _refund_span(blocks: Sequence[slice]) -> tuple[slice, tuple[slice, ...]]:
    """The span of the blocks (from the first one's first row to the last one's last) and
    its stretches of adjoining blocks, in order (the padding between them left out)."""
    runs: list[slice] = []
    for b in blocks:
        if runs and runs[-1].stop == b.start:
            runs[-1] = slice(runs[-1].start, b.stop)
        else:
            runs.append(slice(b.start, b.stop))
    return slice(blocks[0].start, blocks[-1].stop), tuple(runs)


def _plan_rows(plan: _DayPlan, offset: int, size: int) -> _DayPlan:
    """`plan` over `size` of its rows from `offset` on: each stage's rules per row cut to
    them (a stage with one rule for every row, and the tables, as they are). A stage's rules
    are one position (an int) or an int32 array over the rows (`_Claims._stage`): told
    apart by type, in one loop, since this runs for every stretch of blocks every day."""
    rules = list(plan[:6])
    cut = False
    for i, rule in enumerate(rules):
        if isinstance(rule, np.ndarray) and rule.ndim and (offset or len(rule) != size):
            rules[i] = rule[offset:offset + size]
            cut = True
    return _DayPlan(*rules, *plan[6:]) if cut else plan


#: `kernels.prompt_price_change`'s rows where every merchant is affected.
_EVERY_ONE = np.empty(0, dtype=np.uint8)
#: No listing's score changed (`kernels.rank_float32`'s rows when it computes every key).
_NO_ROWS = np.empty(0, dtype=np.int64)

#: `kernels.charge`'s arguments for a rule that decided every row, and for one fee per row.
_EVERY_ROW = np.empty(0, dtype=bool)
_ONCE = np.empty(0)


def _with_code_below(afp: Any) -> float:
    """The draw below which a merchant's attempt to leave auto-follow has the code it needs
    (`verified`): of the draws that attempt (below the attempt's probability), the code's
    success share. Compared with the float32 draws, it rounds to float32 (NEP 50)."""
    return afp.leave_attempt_probability.value * afp.leave_code_success.value


def _constant(values: Any) -> Any:
    """The single value of a broadcast (stride-0) argument array, else None."""
    a = np.asarray(values)
    if a.ndim == 0:
        return a.item()
    if a.ndim == 1 and a.size and a.strides[0] == 0:
        return a[0].item()
    return None


def _cancels(book: VectorisedRulebook, rule_id: str, event_type: str) -> bool:
    rule = book.rulebook.rule(rule_id)
    return rule.deadline is not None and event_type in rule.deadline.unless


#: The fields of a claim's scope (`_Claims.scope`) that are one literal for every row: the
#: event's and the order's text, flags and identifiers, which `_Claims.decide` keys by. Every
#: other field (amounts, costs, the event's time, merchant and listing fields) may vary.
_CLAIM_LITERALS = frozenset({
    "event.order_id", "event.kind", "event.evidence_valid", "event.decision",
    "event.requested_by", "order.listing_id", "order.quantity", "order.shipped",
    "order.refund_kind", "order.evidence_valid", "order.refund_status", "order.intervened",
    "order.merchant_decision",
})
_EVIDENCE = frozenset({"order.evidence_valid", "event.evidence_valid"})
#: The literal fields of an order's scope in `Model._demand`.
_ORDER_LITERALS = frozenset({"event.order_id", "event.listing_id", "event.quantity",
                             "order.listing_id", "order.quantity", "order.shipped"})
#: The state behind the claim and order scopes' fields (`_Claims.scope`, `Model._order_ns`).
_SCOPE_STATE_FIELDS = {**_STATE_FIELDS, "event.amount": "price", "order.amount": "price",
                       "order.refund_amount": "price", "order.product_cost": "unit_cost",
                       "order.shipping_cost": "shipping", "event.shipping_cost": "shipping"}

_GRANT_ARGS = (("payer", "merchant"), ("with_return", False), ("recall_fee", 0.0))
#: No rule selection: a booking kernel counts every row's claims.
_ALL_ROWS = np.empty(0, dtype=np.int32)
#: No claims of a kind (`kernels.review_close`).
_NO_CLAIMS = np.empty(0)
#: The offsets' shifts k x GOLDEN (`population.offset`) of the refund day's draws, by k.
_SHIFTS = np.array([k * GOLDEN for k in range(8)])
#: A stage that books nothing (`_Claims._effect_masks`).
_NO_EFFECTS: tuple[int, int, int, int, tuple[bool, bool, float]] = (0, 0, 0, 0,
                                                                     (False, False, 0.0))
#: How many combinations of the stages' effects `_Claims.plan` keeps the kernel's tables of.
_STAGE_TABLES_KEPT = 256
#: The refund day's routing stages in `_Claims.plan` (and in `kernels.refund_day`'s tables).
(_INTERVENE_VALID, _INTERVENE_LACKING, _ANSWER_LACKING, _ANSWER_VALID, _DEADLINE_VALID,
 _DEADLINE_LACKING, _ESCALATE_VALID, _ESCALATE_LACKING) = range(8)


class _DayPlan(NamedTuple):
    """`kernels.refund_day`'s rule arguments: each stage's rule per row (an int32 array over
    the block) or one rule for every row, in its order, then its `stages` and `fees`
    (`kernels.refund_stages`: the stages' effect masks, their grants' cost keys, the
    review's last, which reviews and escalations happen, the stages' single positions)."""

    intervene_valid: Any
    intervene_lacking: Any
    answer_lacking: Any  # (the merchant rejects claims lacking evidence)
    answer_valid: Any  # (and accepts the valid ones)
    escalate_valid: Any
    escalate_lacking: Any
    stages: Fixed
    fees: np.ndarray


def _column(values: np.ndarray) -> Column:
    """Numbers as a rule column, NaN unknown; known everywhere is said once (0-d). Whether
    any is NaN is one reduction (the least number is NaN if any is): the known mask, two
    passes and a test of it, is made only when some is."""
    if values.dtype.kind != "f" or not values.size or not math.isnan(values.min()):
        return Column(values, np.asarray(True))
    return Column(values, ~np.isnan(values))


def _column_at(values: np.ndarray, where: np.ndarray) -> Column:
    """`_column` of the numbers at `where`, widened to float64."""
    return _column(values[where].astype(np.float64))


def _finite(x: float) -> float:
    """`np.nan_to_num` of one number: NaN is 0, infinities the largest finite floats."""
    if math.isnan(x):
        return 0.0
    if math.isinf(x):
        return math.copysign(sys.float_info.max, x)
    return x


def _cost_key(args: Mapping[str, Any]) -> tuple[bool, bool, float] | None:
    """See `_Claims.cost_key`."""
    present = {k: args[k] for k, _ in _GRANT_ARGS if args.get(k) is not None}
    if not all(_is_constant(v) for v in present.values()):
        return None
    one = {k: np.asarray(present[k]).flat[0] if k in present else d
           for k, d in _GRANT_ARGS}
    with_return = one["with_return"]
    if isinstance(with_return, float | np.floating):
        with_return = _finite(float(with_return)) != 0
    recall = one["recall_fee"]
    return (bool(one["payer"] == "merchant"), bool(with_return),
            _finite(float("nan") if recall is None else float(recall)))


def _distinct(values: np.ndarray) -> Sequence[Any]:
    """`np.unique(values)` (rule positions, in increasing order): a few values by Python's
    set, which costs a fraction of numpy's sort and its wrappers' on a handful of rows."""
    if values.size > 64:
        return np.unique(values)
    return sorted(set(values.tolist()))


def _positions(rules: np.ndarray, count: int) -> tuple[Sequence[Any], bool]:
    """The rule positions (below `count`) in `rules`, increasing, once each, as
    `_distinct(rules[rules >= 0])` finds them (one compiled pass, `kernels.mark_positions`),
    and whether every one of `rules` has the one position found."""
    present = np.zeros(count, dtype=np.uint8)
    k = kernels.mark_positions(rules, present)
    if k < 0:
        return _distinct(rules[rules >= 0]), False
    positions = np.flatnonzero(present)
    return positions, positions.size == 1 and k == rules.size


def _is_constant(values: Any) -> bool:
    a = np.asarray(values)
    return a.ndim == 0 or (a.ndim == 1 and a.size > 0 and a.strides[0] == 0)


#: Days of changes `_Changes` keeps for a kept decision that has not caught up.
_CHANGES_KEPT = 32

#: The claim columns (`_ClaimColumns`): scope name and state key.
_CLAIM_COLUMNS = (("amount", "price"), ("product_cost", "unit_cost"), ("shipping_cost", "shipping"))


class _ClaimColumns:
    """The claim columns of one block (the orders' amount and costs, widened to float64),
    normalised the first time a decision reads them, then kept for the day's scopes. It
    refers to nothing of the claim book, so a scope built on it (a kept decision keeps one
    from day to day) keeps no book and none of its arrays alive."""

    def __init__(self, s: Mapping[str, np.ndarray], block: slice):
        self.s, self.block = s, block
        self._widened: dict[str, np.ndarray] = {}
        self._columns: dict[str, Column] = {}

    def widen(self, key: str) -> np.ndarray:
        found = self._widened.get(key)
        if found is None:
            found = self._widened[key] = self.s[key][self.block].astype(np.float64)
        return found

    def column(self, name: str) -> Column:
        found = self._columns.get(name)
        if found is None:
            found = self._columns[name] = _column(self.widen(dict(_CLAIM_COLUMNS)[name]))
        return found

    def lazy(self) -> dict[str, _Lazy]:
        """The columns as scope fields read on first use."""
        return {name: _Lazy(functools.partial(self.column, name)) for name, _ in _CLAIM_COLUMNS}


def _claim_scope(model: Model, T: float, columns: Mapping[str, Any], rows: np.ndarray | None,
                 size: int, where: Any, event_type: str, valid: bool, status: str,
                 decision: str | None, intervened: bool) -> dict[str, Any]:
    """A claim event's scope: the claim fields (`columns` over `size` rows, read at `rows`),
    the merchants `where` of the model's n."""
    if event_type == "refund_requested":
        event: dict[str, Any] = {"time": T, "order_id": "O", "kind": "refund_only",
                                 "evidence_valid": valid, "amount": columns["amount"]}
    elif event_type == "merchant_responded":
        event = {"time": T, "order_id": "O", "decision": decision}
    else:
        event = {"time": T, "order_id": "O", "requested_by": "buyer"}
    order = {"listing_id": "L", "amount": columns["amount"], "quantity": 1,
             "shipping_cost": columns["shipping_cost"], "product_cost": columns["product_cost"],
             "shipped": True, "refund_kind": "refund_only", "refund_amount": columns["amount"],
             "evidence_valid": valid, "refund_status": status, "intervened": intervened,
             "merchant_decision": decision}
    return {"event": _View(event, rows, size), "merchant": model._merchant_ns(where),
            "listing": model._listing_ns(where), "order": _View(order, rows, size)}


def _block_claim_scope(model: Model, T: float, block: slice, event_type: str, valid: bool,
                       status: str, decision: str | None, intervened: bool) -> dict[str, Any]:
    """A claim event's scope over a block, its columns read from the state on first use."""
    return _claim_scope(model, T, _ClaimColumns(model.s, block).lazy(), None,
                        block.stop - block.start, block, event_type, valid, status, decision,
                        intervened)


class _Claims:
    """One day's refund claims of a block of m contiguous merchants, routed through the refund
    rulebook one evidence class at a time; each event shape is decided once per merchant and
    its effects are multiplied by the number of claims it concerns (`simulator.reference`
    tells the same story merchant by merchant, in the same order, so sums round alike).

    Counts are float64 arrays over the m rows, None where a stage has none anywhere. A
    decision every row got alike (`Decisions.uniform`) is booked over all rows at once: a row
    without claims adds zero. The merchant's loss per granted claim depends only on the
    grant's arguments and the order's costs, so when the arguments are literals it is computed
    in the booking's own compiled pass (`kernels.claim_grants`), from the state, instead of in
    arrays. Every claim's order is shipped.

    The claim columns (the order's amount and costs, widened to float64) are normalised only
    when a decision reads them: over all m rows once for the day's scopes, or over the few rows
    a kept decision decides again (`_KeptDecisions`), which then costs no pass over the block.
    """

    def __init__(self, model: Model, block: slice, T: float):
        self.model, self.block, self.T = model, block, T
        self.m = len(range(*block.indices(model.n)))
        self.book = model.books["refund"]
        self.claim_columns = _ClaimColumns(model.s, block)
        self._costs: dict[tuple[bool, bool, float], np.ndarray] = {}
        self.requested: dict[bool, Any] = {True: None, False: None}
        self.left: dict[bool, np.ndarray | None] = {True: None, False: None}
        self.rejected: dict[bool, np.ndarray | None] = {True: None, False: None}
        self.review_human: dict[bool, np.ndarray | None] = {True: None, False: None}
        self.review_auto: dict[bool, np.ndarray | None] = {True: None, False: None}
        self._awaiting: np.ndarray | None = None
        self._decisions: dict[tuple[Any, ...], Any] = {}
        # Whether a rule decided any row of a decision, by (decision, rule position); the
        # decision is kept alongside, so its id cannot be reused meanwhile.
        self._fires: dict[tuple[int, int], tuple[Any, bool]] = {}

    # The day's burden of granted claims over the m rows, and of those granted without valid
    # evidence, with their count: made when the first booking needs them (a day routed in one
    # pass, `plan`, books none here).
    @functools.cached_property
    def burden(self) -> np.ndarray:
        return np.zeros(self.m)

    @functools.cached_property
    def wrongful(self) -> np.ndarray:
        return np.zeros(self.m)

    @functools.cached_property
    def wrongful_burden(self) -> np.ndarray:
        return np.zeros(self.m)

    # -- scopes -----------------------------------------------------------------------------
    @property
    def product(self) -> np.ndarray:
        """The orders' product cost over the m rows, float64."""
        return self.claim_columns.widen("unit_cost")

    @property
    def shipping(self) -> np.ndarray:
        """The orders' shipping cost over the m rows, float64."""
        return self.claim_columns.widen("shipping")

    def _columns_at(self, where: np.ndarray) -> dict[str, _Lazy]:
        """The claim columns at the merchants `where` only (`Model._columns_at`)."""
        return self.model._columns_at(where)

    def scope(self, event_type: str, valid: bool, status: str, decision: str | None = None,
              rows: np.ndarray | None = None, intervened: bool = False,
              where: Any = False) -> dict[str, Any]:
        """The claim event's scope over all m rows, or over `rows` of them; or, given `where`,
        over the merchants `where` of all the model's n (None: all of them)."""
        model = self.model
        size = self.m
        cols: Mapping[str, Any]
        if where is not False:
            # Rows of the whole population (kept decisions): `where` indices or all n.
            rows, size = None, (model.n if where is None else where.size)
            cols = self._columns_at(where) if where is not None else (
                _ClaimColumns(model.s, slice(0, model.n)).lazy())
        else:
            where = self.block if rows is None else rows + self.block.start
            cols = self.claim_columns.lazy() if rows is None else self._columns_at(where)
        return _claim_scope(model, self.T, cols, rows, size, where, event_type, valid, status,
                            decision, intervened)

    def decide(self, event_type: str, valid: bool, status: str, decision: str | None = None,
               rows: np.ndarray | None = None, intervened: bool = False) -> Any:
        """The rulebook's decisions on the claim event. Over all m rows, a decision is made
        once for both evidence classes when the rules for the event never read the evidence
        (`VectorisedRulebook.reads`): the scopes then differ in nothing the rules can see.
        When they read nothing but the claim's literal fields (`_CLAIM_LITERALS`), it is made
        once per block size for the whole run (`Model._claim_constants`)."""
        key, literal = self._shape(event_type, valid, status, decision, intervened)
        if literal:
            # Every row of every block is decided alike (`uniform`), and the effects'
            # arguments are single values: one decision over m rows serves any block of m
            # rows, any day, and any subset of rows (`route` reads it at `rows`).
            constants = self.model._claim_constants
            found = constants.get((*key, self.m))
            if found is None:
                found = constants[(*key, self.m)] = self.book.decide(
                    event_type, self.scope(event_type, valid, status, decision, None,
                                           intervened), self.m)
            if found.uniform is not None or rows is None:
                return found
        if rows is None:
            found = self._decisions.get(key)
            if found is not None:
                return found
            kept = self.model._kept_decisions(self.book, event_type, key, _CLAIM_LITERALS)
            if kept is not None:
                # The block's scope, should a rule's effects be evaluated later, is built
                # afresh from the state: the view keeps it, and must not keep this book.
                dec = self._decisions[key] = kept.decide(
                    self.book, event_type, self.model.s, self.model._stepped, self.block,
                    lambda where: self.scope(event_type, valid, status, decision,
                                             intervened=intervened, where=where),
                    _Deferred(self.model, functools.partial(
                        _block_claim_scope, T=self.T, block=self.block, event_type=event_type,
                        valid=valid, status=status, decision=decision,
                        intervened=intervened)))
                return dec
        scope = self.scope(event_type, valid, status, decision, rows, intervened)
        dec = self.book.decide(event_type, scope, self.m if rows is None else rows.size)
        if rows is None:
            self._decisions[key] = dec
        return dec

    def _shape(self, event_type: str, valid: bool, status: str, decision: str | None,
               intervened: bool) -> tuple[tuple[Any, ...], bool]:
        """The key `decide` keeps a claim event's decisions by, and whether its rules read
        nothing but the claim's literal fields: found once per event shape for the run (the
        rules, and so what they read and which statuses they tell apart, never change),
        not on each of the day's several decisions of every block."""
        constants = self.model._claim_constants
        shape = ("shape", event_type, valid, status, decision, intervened)
        found = constants.get(shape)
        if found is None:
            reads = self.book.reads(event_type)
            sees_evidence = "order.evidence_valid" in reads or "event.evidence_valid" in reads
            alike = self._status_alike(event_type, status)
            found = constants[shape] = (
                (event_type, valid if sees_evidence else None, alike, decision, intervened),
                reads <= _CLAIM_LITERALS)
        return found

    def _status_alike(self, event_type: str, status: str) -> str:
        """The claim status decided in place of `status`: the first one met for the event
        type that its rules cannot tell from it (`VectorisedRulebook.alike`: say, both in
        the list of statuses an intervention accepts), so that one decision, kept or made
        once, serves both (with the bundled sets, the intervention on a claim awaiting the
        merchant and on one the merchant rejected)."""
        seen = self.model._claim_constants.setdefault(("statuses", event_type), {})
        found = seen.get(status)
        if found is None:
            found = next((other for other in dict.fromkeys(seen.values())
                          if self.book.alike(event_type, "order.refund_status", status, other)),
                         status)
            seen[status] = found
        return found

    def asks_merchant(self, dec: Any) -> bool:
        """Whether routing `dec` (over all m rows) only asks the merchant to answer every
        claim: one rule decided every row, and its one effect is
        `request_merchant_response`, so the claims then awaiting the merchant are the claims
        routed, and nothing else is booked."""
        position = dec.uniform
        if position is None or position < 0:
            return False
        rid = self.book.rule_ids[position]
        if (rid, position) not in self.model._claim_rules(dec.event_type):
            return False
        effects = dec.effects(rid)
        return len(effects) == 1 and effects[0].name == "request_merchant_response"

    # -- costs ------------------------------------------------------------------------------
    def cost(self, args: Mapping[str, Any], hit: np.ndarray | None = None,
             at: np.ndarray | None = None) -> np.ndarray:
        """Merchant's loss per granted claim (rules.effects `_refund_burden`) at rows `at` of
        the m rows (None: all); the arguments' rows are `hit` (None: aligned with `at`)."""
        key = self.cost_key(args)
        if key is not None:
            found = self._costs.get(key)
            if found is None:
                found = self._costs[key] = self._cost(*key)
            return found if at is None else found[at]
        size = self.m if at is None else at.size

        def arg(name: str, default: Any) -> np.ndarray:
            v = args.get(name)
            if v is None:
                return np.full(size, default)
            a = np.broadcast_to(np.asarray(v), (np.shape(v)[0] if np.ndim(v) else size,))
            return a if hit is None else a[hit]

        payer = arg("payer", "merchant")
        with_return = arg("with_return", False)
        if with_return.dtype.kind == "f":
            with_return = np.nan_to_num(with_return) != 0
        with_return = with_return.astype(bool)
        recall = np.nan_to_num(arg("recall_fee", 0.0).astype(np.float64))
        product = self.product if at is None else self.product[at]
        shipping = self.shipping if at is None else self.shipping[at]
        total = np.where(~with_return, product, 0.0) + shipping + recall
        return np.where((payer == "merchant") & (total > 0), total, 0.0)

    def cost_key(self, args: Mapping[str, Any]) -> tuple[bool, bool, float] | None:
        """(merchant pays, with return, recall fee) of a grant whose arguments are one value
        on every row, which is all its cost per claim depends on besides the order's costs;
        None when an argument varies by row. Kept by the arguments' identity (with them, so
        it cannot be reused): a decision shared by blocks and days books with the same ones.
        (A kept decision's arguments that are one value stay so while it is patched.)"""
        keys = self.model._claim_constants.setdefault(("cost keys",), {})
        found = keys.get(id(args))
        if found is None:
            key = _cost_key(args)
            if key is None:  # not kept: the per-row arguments would be kept with it
                return None
            if len(keys) >= 256:
                keys.clear()
            found = keys[id(args)] = (args, key)
        return found[1]

    def _cost(self, merchant_pays: bool, with_return: bool, recall: float) -> np.ndarray:
        if not merchant_pays:
            return np.zeros(self.m)
        # product + shipping + recall in that order (a zero product adds nothing exactly).
        total = self.shipping + recall if with_return else self.product + self.shipping + recall
        if not total.min(initial=np.inf) > 0:
            total = np.where(total > 0, total, 0.0)
        return total

    # -- booking ----------------------------------------------------------------------------
    def grant(self, per: np.ndarray, count: np.ndarray, valid: bool,
              at: np.ndarray | None = None, grants: int = 1) -> None:
        """Book granted claims at rows `at` (None: all m rows); `per` is already the loss of
        the `count` claims there, `grants` the number of grant effects that booked them."""
        wrongful = count if grants == 1 else count * grants
        if at is None:
            self.burden += per
            if not valid:
                self.wrongful += wrongful
                self.wrongful_burden += per
            return
        self.burden[at] += per
        if not valid:
            self.wrongful[at] += wrongful
            self.wrongful_burden[at] += per

    def book_grants(self, cost: np.ndarray, count: np.ndarray, valid: bool) -> None:
        """`grant(cost * count, count, valid)` over all m rows, in one compiled pass."""
        kernels.book_grants(cost, np.ascontiguousarray(count, dtype=np.float64), self.burden,
                            self.wrongful, self.wrongful_burden, valid)

    def claim_grants(self, key: tuple[bool, bool, float], count: np.ndarray, valid: bool,
                     rule: np.ndarray = _ALL_ROWS, position: int = 0) -> None:
        """`book_grants(_cost(*key), count)` over all m rows (with `rule`: only the rows rule
        `position` decided), the cost per claim computed in the same compiled pass."""
        s, block = self.model.s, self.block
        kernels.claim_grants(s["unit_cost"][block], s["shipping"][block], key[0], key[1],
                             key[2], np.ascontiguousarray(count, dtype=np.float64), rule,
                             position, self.burden, self.wrongful, self.wrongful_burden, valid)

    def _add(self, table: dict[bool, np.ndarray | None], valid: bool, count: np.ndarray,
             at: np.ndarray | None, rule: np.ndarray = _ALL_ROWS, position: int = 0) -> None:
        """Add `count` claims at rows `at` (None: all m rows, where `rule` selects the rows
        rule `position` decided, as `claim_grants` does). The tables own their arrays, so
        they are added to in place."""
        acc = table[valid]
        if at is None:
            fresh = acc is None
            if acc is None:
                acc = table[valid] = np.empty(self.m)
            kernels.add_claims(acc, fresh, np.ascontiguousarray(count, dtype=np.float64), rule,
                               position)
            return
        if acc is None:
            acc = table[valid] = np.zeros(self.m)
        acc[at] += count

    def _rule_fires(self, dec: Any, position: int) -> bool:
        """Whether the rule at `position` decided any row of `dec`: scanned once per decision,
        since both evidence classes may route the same one (the decision is kept with the
        answer, so its id is not reused while the answer is)."""
        found = self._fires.get((id(dec), position))
        if found is None:
            found = self._fires[(id(dec), position)] = (dec, kernels.fires(dec.rule, position))
        return bool(found[1])

    def route(self, dec: Any, count: np.ndarray, valid: bool, final: bool = False,
              rows: np.ndarray | None = None) -> np.ndarray | None:
        """Book `count` claims per row (over all m rows) through the effects of the rules
        that decided them; `dec` decided all m rows, or `rows` of them. Returns the claims now
        awaiting the merchant's answer (None: none)."""
        self._awaiting = None
        for rid, position in self.model._claim_rules(dec.event_type):
            if dec.uniform is not None:
                if dec.uniform != position:
                    continue
                # A decision over all m rows routed at `rows` (see `decide`): its arguments'
                # rows are the block's.
                hit = rows if rows is not None and dec.n == self.m else None
                at = rows
                c = count if rows is None else count[rows]
            elif rows is None:
                # Rows another rule decided book zero claims here: whole-column arithmetic is
                # cheaper than gathering and scattering this rule's rows. The claims (count x
                # mask) are selected inside the booking kernels, made an array only for
                # effects that need one. Both evidence classes may route the same decision:
                # look for the rule once.
                if not self._rule_fires(dec, position):
                    continue
                self._book(dec.effects(rid), None, None, None, valid, final, count, dec.rule,
                           position)
                continue
            else:
                hit = np.flatnonzero((dec.rule == position) & (count[rows] > 0))
                if not hit.size:
                    continue
                at = rows[hit]
                c = count[at]
            self._book(dec.effects(rid), hit, at, c, valid, final)
        return self._awaiting

    def _book(self, effects: Sequence[Any], hit: np.ndarray | None, at: np.ndarray | None,
              c: np.ndarray | None, valid: bool, final: bool, count: np.ndarray | None = None,
              rule: np.ndarray = _ALL_ROWS, position: int = 0) -> None:
        """Apply one rule's effects to the claims `c` at rows `at` (None: all m rows); `hit`
        selects the arguments' rows (None: aligned with `at`). `c` None: the claims are
        `count` on the rows rule `position` decided (`rule`), 0 elsewhere (all m rows)."""
        burden: np.ndarray | None = None
        grants = 0
        n_grants = sum(1 for effect in effects if effect.name == "grant_refund")
        if c is None:
            assert count is not None
            selected = count
        else:
            selected, rule, position = c, _ALL_ROWS, 0

        def claims() -> np.ndarray:
            nonlocal c
            if c is None:
                c = selected * (rule == position)
            return c

        for effect in effects:
            name, args = effect.name, effect.args
            if name == "grant_refund":
                if n_grants == 1 and at is None:  # the usual case: one compiled pass
                    key = self.cost_key(args)
                    if key is not None:
                        self.claim_grants(key, selected, valid, rule, position)
                    else:
                        self.book_grants(self.cost(args), claims(), valid)
                    continue
                per = self.cost(args, hit, at) * claims()
                burden = per if burden is None else burden + per
                grants += 1
            elif name == "reject_refund" and not final:
                if at is None:
                    self._add(self.rejected, valid, selected, None, rule, position)
                else:
                    self._add(self.rejected, valid, claims(), at)
            elif name == "request_merchant_response":
                if at is None:
                    # No copy: what a route returns is only read (the next route starts anew).
                    self._awaiting = (claims() if self._awaiting is None
                                      else self._awaiting + claims())
                else:
                    if self._awaiting is None:
                        self._awaiting = np.zeros(self.m)
                    self._awaiting[at] += claims()
            elif name == "platform_review":
                review = args.get("review")
                if review is None or _is_constant(review):
                    one = "human" if review is None else np.asarray(review).flat[0]
                    table = self.review_auto if one == "automated" else self.review_human
                    if at is None:
                        self._add(table, valid, selected, None, rule, position)
                    else:
                        self._add(table, valid, claims(), at)
                    continue
                kind = np.asarray(review) if hit is None else np.asarray(review)[hit]
                human = kind != "automated"
                where = np.arange(self.m) if at is None else at
                self._add(self.review_human, valid, claims()[human], where[human])
                self._add(self.review_auto, valid, claims()[~human], where[~human])
        if burden is not None:
            self.grant(burden, claims(), valid, at, grants)

    def intervene(self, count: np.ndarray, valid: bool, status: str,
                  positive: int | None = None) -> None:
        """The buyer asks the platform to step in on `count` claims per row (`positive` of
        the rows have some, when the caller counted them)."""
        if positive is None:
            positive = kernels.count_positive(count)
        if not positive:
            return
        # Deciding every row and booking zero claims on most costs less than gathering the
        # rows with claims, unless they are few.
        sub = np.flatnonzero(count > 0) if positive * 4 < self.m else None
        dec = self.decide("platform_intervened", valid, status, rows=sub, intervened=True)
        self.route(dec, count, valid, final=True, rows=sub)

    def intervene_both(self, counts: Mapping[bool, np.ndarray], status: str,
                       positives: Mapping[bool, int]) -> None:
        """`intervene` on the claims with valid evidence (`counts[True]`), then on those
        lacking it. When one decision over all m rows serves both classes (the rules do not
        read the evidence: `decide`) and one rule's one grant is all it books into the
        burden, that grant books both classes' claims in one pass
        (`kernels.claim_grants_both`): every other effect adds to a class's own table, so
        each row's burden receives the same additions in the same order."""
        if self.model._fused_claims and all(p * 4 >= self.m for p in positives.values()):
            dec = self.decide("platform_intervened", True, status, intervened=True)
            if (dec is self.decide("platform_intervened", False, status, intervened=True)
                    and self._route_both(dec, counts, final=True)):
                return
        for valid in (True, False):
            self.intervene(counts[valid], valid, status, positives[valid])

    def _route_both(self, dec: Any, counts: Mapping[bool, np.ndarray], final: bool) -> bool:
        """`route` of `counts[True]` then `counts[False]` through `dec` (over all m rows),
        their one grant booked in one pass; False (nothing booked) when a rule that decided
        some row grants at per-row arguments or more than once, or two such rules grant."""
        plan: list[tuple[int, list[Any], np.ndarray]] = []
        grant: tuple[int, tuple[bool, bool, float], np.ndarray] | None = None
        for rid, position in self.model._claim_rules(dec.event_type):
            if dec.uniform is not None:
                if dec.uniform != position:
                    continue
                rule = _ALL_ROWS
            else:
                if not self._rule_fires(dec, position):
                    continue
                rule = dec.rule
            effects = dec.effects(rid)
            grants = [e for e in effects if e.name == "grant_refund"]
            if grants:
                key = self.cost_key(grants[0].args) if len(grants) == 1 else None
                if key is None or grant is not None:
                    return False
                grant = (position, key, rule)
                effects = [e for e in effects if e.name != "grant_refund"]
            plan.append((position, effects, rule))
        for valid in (True, False):
            count = counts[valid]
            self._awaiting = None
            for position, effects, rule in plan:
                if not effects:
                    continue
                if rule is _ALL_ROWS:
                    self._book(effects, None, None, count, valid, final)
                else:
                    self._book(effects, None, None, None, valid, final, count, rule, position)
        if grant is None:  # nothing granted: each class's effects are booked already
            return True
        position, key, rule = grant
        s, block = self.model.s, self.block
        kernels.claim_grants_both(s["unit_cost"][block], s["shipping"][block], key[0], key[1],
                                  key[2], np.ascontiguousarray(counts[True], dtype=np.float64),
                                  np.ascontiguousarray(counts[False], dtype=np.float64), rule,
                                  position, self.burden, self.wrongful, self.wrongful_burden)
        return True

    # -- the day in one pass -----------------------------------------------------------------
    def plan(self, review_key: tuple[bool, bool, float]) -> _DayPlan | None:
        """The rule arguments of `kernels.refund_day` for this block's day, whose requests
        (`requested`, each asking the merchant to answer every claim) are decided; None when
        a stage books what its tables cannot say (a grant at per-row arguments, two grants
        of one rule or at different arguments in one stage, an effect twice, a deadline that
        applies on some rows only, a rule position past 61), and the stages run one at a
        time.

        Each stage's decision is over all m rows, whatever the number of rows with claims:
        a rule's effects on a row depend on nothing but that row, and a row without claims
        of a stage books zero claims. The kernel books the same additions in the same order
        as the stages one at a time, skipping only the additions of zero (a rule's share of
        a stage's claims on the rows of other rules), which change no sum."""
        stages: list[tuple[Any, tuple[Any, ...] | None] | None] = [
            self._stage(self.decide("platform_intervened", valid, "awaiting_merchant",
                                    intervened=True), final=True)
            for valid in (True, False)]
        stages += [self._stage(self.decide("merchant_responded", valid, "awaiting_merchant",
                                           decision), final=False)
                   for valid, decision in ((False, "reject"), (True, "accept"))]
        stages += [self._deadline_stage(valid) for valid in (True, False)]
        if any(stage is None or stage[1] is None for stage in stages):
            return None
        # Claims rejected (by the merchant's answer or a lapsed deadline) escalate.
        reject = 1  # (the masks' second entry)
        escalate = (bool(stages[_ANSWER_VALID][1][reject] | stages[_DEADLINE_VALID][1][reject]),
                    bool(stages[_ANSWER_LACKING][1][reject]
                         | stages[_DEADLINE_LACKING][1][reject]))
        for valid, rejected in zip((True, False), escalate, strict=True):
            stages.append(self._stage(self.decide("platform_intervened", valid, "rejected",
                                                  intervened=True), final=True)
                          if rejected else (0, _NO_EFFECTS))
        if any(stage is None or stage[1] is None for stage in stages):
            return None
        # The kernel's tables, made once for each combination of the stages' effects and the
        # positions of the stages that decide every row alike.
        shape = tuple(stage[1] for stage in stages)
        rules = tuple(stages[s][0] for s in (_INTERVENE_VALID, _INTERVENE_LACKING,
                                             _ANSWER_LACKING, _ANSWER_VALID, _ESCALATE_VALID,
                                             _ESCALATE_LACKING))
        positions = kernels.refund_positions(rules)
        tables = self.model._claim_constants.setdefault(("day tables",), {})
        found = tables.get((shape, escalate, review_key, positions))
        if found is None:
            if len(tables) >= _STAGE_TABLES_KEPT:
                tables.clear()
            masks = np.array([m[:4] for m in shape], dtype=np.int64)
            # The stages of each class: intervention, answer, deadline, escalation.
            valid_tables = masks[[_INTERVENE_VALID, _ANSWER_VALID, _DEADLINE_VALID,
                                  _ESCALATE_VALID]]
            lacking_tables = masks[[_INTERVENE_LACKING, _ANSWER_LACKING, _DEADLINE_LACKING,
                                    _ESCALATE_LACKING]]
            found = tables[(shape, escalate, review_key, positions)] = kernels.refund_stages(
                masks, np.array([m[4] for m in shape] + [review_key], dtype=np.float64),
                np.array([valid_tables[:, 2].any(), valid_tables[:, 3].any(),
                          lacking_tables[:, 2].any(), *escalate]), rules)
        return _DayPlan(*rules, *found)

    def _deadline_stage(self, valid: bool) -> tuple[int, tuple[Any, ...] | None] | None:
        """The stage of `plan` that books the claims of a class nobody answered, when the
        response deadline of the request's rule falls due: one rule (position 0) for every
        row. None when the deadline applies on some rows only."""
        dec = self.requested[valid]
        tables = self.model._masks_of(dec)
        found = tables.get(("deadline", valid, dec.uniform))
        if found is None:
            due = self._deadlines(dec, valid, [dec.uniform])
            masks = (None if len(due) > 1 or (due and not due[0][2]) else
                     self._effect_masks(due[0][0], False, 0) if due else _NO_EFFECTS)
            # A deadline that reads more than the claim's literal fields is found afresh
            # each time (`_deadlines`): its masks are not kept.
            rid = self.book.rule_ids[dec.uniform]
            if (self.book.rulebook.rule(rid).deadline is None
                    or self._deadline_reads(rid) <= _CLAIM_LITERALS):
                tables[("deadline", valid, dec.uniform)] = (masks,)
            found = (masks,)
        return None if found[0] is None else (0, found[0])

    def _stage(self, dec: Any, final: bool) -> tuple[Any, tuple[int, ...] | None] | None:
        """A routing stage of `plan`: the rule of each row (one position for every row, or
        an int32 array over the m rows) and the effects' masks (`_effect_masks`) of the rules
        that fired, found once per decision (`Model._stage_masks`).

        The masks are of the rules whose effects the decision holds (`_effects`), which are
        the rules that decided some row. A kept decision's block view (`_KeptDecisions`)
        lives from day to day while its rows are patched: it holds the effects of every rule
        that decided a row of any block, and a patch in which another rule fires, or in
        which one value for every row changes, is refused and the decision made afresh (a
        new object), so the masks found once stay those of the view's rules."""
        rule = dec.uniform
        if rule is None:
            rule = dec.rule
            if rule.dtype != np.int32 or not rule.flags.c_contiguous:
                return None
        tables = self.model._masks_of(dec)
        found = tables.get(final)
        if found is None:
            masks: tuple[int, ...] | None = _NO_EFFECTS
            for rid, position in self.model._claim_rules(dec.event_type):
                effects = dec._effects.get(rid)  # rules that decided no row have none
                if effects is not None:
                    masks = self._effect_masks(effects, final, position, masks)
                    if masks is None:
                        break
            found = tables[final] = (masks,)
        return rule, found[0]

    def _effect_masks(self, effects: Sequence[Any], final: bool, position: int,
                      masks: tuple[Any, ...] | None = None) -> tuple[Any, ...] | None:
        """`masks` (grant, reject, automated review, human review, grant's cost key) with
        the effects of the rule at `position` added (bit position + 1), as `_book` books
        them (a final stage rejects nothing; asking for the merchant's answer books
        nothing); None when they cannot be said so."""
        if not 0 <= position < 62:
            return None
        grant, reject, auto, human, key = _NO_EFFECTS if masks is None else masks
        bit = 1 << (position + 1)
        for effect in effects:
            name = effect.name
            if name == "grant_refund":
                found = self.cost_key(effect.args)
                if found is None or grant & bit or (grant and found != key):
                    return None
                grant, key = grant | bit, found
            elif name == "reject_refund" and not final:
                if reject & bit:
                    return None
                reject |= bit
            elif name == "platform_review":
                review = effect.args.get("review")
                if review is not None and not _is_constant(review):
                    return None
                one = "human" if review is None else np.asarray(review).flat[0]
                if one == "automated":
                    if auto & bit:
                        return None
                    auto |= bit
                else:
                    if human & bit:
                        return None
                    human |= bit
        return grant, reject, auto, human, key

    def deadlines(self, count: np.ndarray, valid: bool) -> None:
        """Claims nobody answered: the response deadline armed by the request's rule falls
        due (booked on the claim's day)."""
        for effects, claims in self._deadline_bookings(count, valid):
            self._book(effects, None, None, claims, valid, False)

    def deadlines_both(self, counts: Mapping[bool, np.ndarray | None]) -> None:
        """`deadlines` of the claims with valid evidence, then of those lacking it; when each
        class books one grant alone at the same literal arguments, both in one pass
        (`kernels.claim_grants_both`: the same additions in the same order)."""
        bookings = {valid: ([] if count is None else self._deadline_bookings(count, valid))
                    for valid, count in counts.items()}
        alone = [b[0] for b in bookings.values() if len(b) == 1 and len(b[0][0]) == 1
                 and b[0][0][0].name == "grant_refund"]
        if len(alone) == 2 and self.model._fused_claims:
            keys = {self.cost_key(effects[0].args) for effects, _ in alone}
            if len(keys) == 1 and None not in keys:
                (key,) = keys
                s, block = self.model.s, self.block
                kernels.claim_grants_both(
                    s["unit_cost"][block], s["shipping"][block], key[0], key[1], key[2],
                    np.ascontiguousarray(bookings[True][0][1], dtype=np.float64),
                    np.ascontiguousarray(bookings[False][0][1], dtype=np.float64), _ALL_ROWS,
                    0, self.burden, self.wrongful, self.wrongful_burden)
                return
        for valid in (True, False):
            for effects, claims in bookings[valid]:
                self._book(effects, None, None, claims, valid, False)

    def _deadline_bookings(self, count: np.ndarray,
                           valid: bool) -> list[tuple[list[Any], np.ndarray]]:
        """The due deadlines' effects and the claims they book (all m rows), in order."""
        dec = self.requested[valid]
        if dec is None:
            return []
        if dec.uniform is not None:
            positions = [dec.uniform]
        else:
            positions = np.unique(dec.rule[(count > 0) & (dec.rule >= 0)]).tolist()
        return [(effects, count if everywhere else count * when)
                for effects, when, everywhere in self._deadlines(dec, valid, positions)]

    def _deadline_reads(self, rule_id: str) -> frozenset[str]:
        """The fields a rule's response deadline reads when it falls due (its `when` and
        its effects' arguments)."""
        key = ("deadline reads", rule_id)
        found = self.model._claim_constants.get(key)
        if found is None:
            deadline = self.book.rulebook.rule(rule_id).deadline
            reads = set(deadline.when.names) if deadline.when is not None else set()
            for call in deadline.then:
                for expr in call.expressions.values():
                    reads |= expr.names
            found = self.model._claim_constants[key] = frozenset(reads)
        return found

    def _deadlines(self, dec: Any, valid: bool,
                   positions: list[int]) -> list[tuple[list[Any], np.ndarray, bool]]:
        """The due response deadlines of the request decision `dec`'s rules at `positions`:
        each one's effects, where they apply (over all m rows) and whether that is every
        row."""
        book = self.book
        out: list[tuple[list[Any], np.ndarray, bool]] = []
        for pos in positions:
            if pos < 0:
                continue
            rid = book.rule_ids[pos]
            deadline = book.rulebook.rule(rid).deadline
            if deadline is None:
                continue
            reads = self._deadline_reads(rid)
            if reads <= _CLAIM_LITERALS:  # alike for every block of m rows and every day
                key = ("deadline", rid, valid if reads & _EVIDENCE else None, self.m)
                found = self.model._claim_constants.get(key)
                if found is None:
                    scope = self.scope("refund_requested", valid, "awaiting_merchant")
                    when = book.deadline_when(rid, scope, self.m)
                    found = self.model._claim_constants[key] = (
                        when, book.deadline_effects(rid, scope, self.m), bool(when.all()))
                when, effects, everywhere = found
            else:
                scope = self.scope("refund_requested", valid, "awaiting_merchant")
                when = book.deadline_when(rid, scope, self.m)
                effects = book.deadline_effects(rid, scope, self.m)
                everywhere = None
            if dec.uniform is None:
                when = when & (dec.rule == pos)
                everywhere = None
            if everywhere is None:
                everywhere = bool(when.all())
            out.append((effects, when, everywhere))
        return out


def _start_margin(s: Mapping[str, np.ndarray]) -> np.ndarray:
    """`Model._margin` of every merchant that exists and 0 in the padding slots: the same
    operations on the same numbers, over all slots at once instead of gathered at the ones
    that exist (padding slots have prices and costs too, never read)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = s["price"] - s["unit_cost"]
        margin -= s["shipping"]
        margin /= s["price"]
        margin -= s["burden_ema"]
    margin[~s["exists"]] = 0.0
    return margin
