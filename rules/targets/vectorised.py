"""Compile a checked rulebook into vectorised numpy decisions: the simulator's compile target.

The engine (durable_rules) decides one event at a time; the simulator decides one event type for
a whole population of merchants at once. Both start from the same `Rulebook` IR and must decide
alike, so this module copies the engine's policy, not just its expressions:

* For an event of type T, the rules whose `on` lists T are tried in rule order and the first
  whose `when` is known-True decides (a FIRST hit policy, as durable_rules' salience gives the
  engine); a row where no rule's condition is known-True gets no rule. Unknown never fires.
* Effect arguments are the call's literals plus its expressions evaluated on the same scope the
  condition saw (the engine evaluates all of a decision's effects on one snapshot too).
* A deadline is armed by the rule that fired when its `after` is known; when it falls due its
  own `when` (none means always) decides whether its effects apply.

Scopes are columnar (see `rules.expression.numpy_target`): namespace -> field -> column, where
the engine's per-event scope is {"event": payload + time, "merchant": ..., "listing": ...,
"order": ...}. Arguments come back as arrays of length n: numbers as float64 with NaN where
unknown, flags as bool, text as numpy text; `VectorEffect.known` says which rows are known.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rules.effects import EffectSpec
from rules.expression.numpy_target import (
    Column,
    ColumnarScope,
    Columns,
    VectorEvaluator,
    as_columns,
    broadcast_rows,
    compile_numpy,
    shared_subexpressions,
)
from rules.rulebook import CompiledExpr, EffectCallIR, Rulebook, RulebookSet, RuleIR

#: `Decisions.rule` on rows where no rule fired.
NO_RULE = -1


@dataclass(frozen=True)
class VectorEffect:
    """One effect call evaluated over n rows.

    `args[name]` has length n (literals are broadcast, read-only views); numbers are float64
    with NaN where unknown, flags bool (False where unknown), text a numpy text array (text
    arguments are always literals). `known[name]` is True where the argument's value is known.
    Rows where the rule did not fire carry values nobody asked for.
    """

    name: str
    spec: EffectSpec = field(repr=False)
    args: dict[str, np.ndarray]
    known: dict[str, np.ndarray]

    def missing_required(self) -> np.ndarray:
        """Rows where a required argument is unknown: the engine skips the effect there."""
        missing = np.zeros(_length(self.known), dtype=bool)
        for name, arg in self.spec.args.items():
            if arg.required:
                known = self.known.get(name)
                missing = missing | (True if known is None else ~known)
        return missing


def _length(known: Mapping[str, np.ndarray]) -> int:
    for mask in known.values():
        return int(mask.shape[0])
    return 0


class _CompiledEffect:
    """An effect call with its expression arguments compiled for columns."""

    def __init__(self, call: EffectCallIR, shared: frozenset[Hashable]) -> None:
        self.call = call
        self.literals = dict(call.literals)
        self._literals = {
            name: (np.asarray(float(value) if _is_number(value) else value),
                   np.asarray(value is not None))
            for name, value in self.literals.items()
        }
        self.expressions: dict[str, VectorEvaluator] = {
            name: compile_numpy(expr.node, shared) for name, expr in call.expressions.items()
        }
        # The literals broadcast to n rows (read-only views), by n: a decision repeated over
        # blocks of one size broadcasts them once, not once per call.
        self._literal_rows: dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}

    def _literals_over(self, n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        found = self._literal_rows.get(n)
        if found is None:
            found = ({name: broadcast_rows(literal, n)
                      for name, (literal, _) in self._literals.items()},
                     {name: broadcast_rows(is_known, n)
                      for name, (_, is_known) in self._literals.items()})
            if len(self._literal_rows) >= 16:
                self._literal_rows.clear()
            self._literal_rows[n] = found
        return found

    def evaluate(self, columns: Columns) -> VectorEffect:
        n = columns.n
        literal_args, literal_known = self._literals_over(n)
        # Fresh dicts (callers may add to them); the arrays are shared, read-only views.
        args: dict[str, np.ndarray] = dict(literal_args)
        known: dict[str, np.ndarray] = dict(literal_known)
        for name, evaluator in self.expressions.items():
            # Converted before broadcasting: an argument no per-row field decides stays one
            # value (a stride-0 view) instead of a converted copy per row.
            values, is_known = evaluator.raw(columns)
            plain = _plain(Column(values, is_known), self.call.spec.args[name].kind)
            args[name] = broadcast_rows(plain, n)
            known[name] = broadcast_rows(is_known, n)
        return VectorEffect(self.call.name, self.call.spec, args, known)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plain(column: Column, kind: str) -> np.ndarray:
    """The argument in the dtype its kind promises, whatever the data held: numbers float64
    with NaN for unknown, flags bool with False there (`VectorEffect.known` tells an unknown
    flag from a known False). A field missing from the scope reads as unknown numbers, which
    must not turn a flag argument into floats."""
    if kind in ("number", "duration"):
        return column.to_float()
    if kind == "bool":
        values = column.values
        truth = values if values.dtype.kind == "b" else values.astype(bool)
        return truth & column.known
    return column.values


@dataclass
class _CompiledRule:
    rule: RuleIR
    position: int
    when: VectorEvaluator
    then: tuple[_CompiledEffect, ...]
    deadline_after: VectorEvaluator | None = None
    deadline_when: VectorEvaluator | None = None
    deadline_then: tuple[_CompiledEffect, ...] = ()


def _expressions(rulebook: Rulebook) -> list[CompiledExpr]:
    """Every expression of the rulebook: conditions, effect arguments, deadlines."""
    out: list[CompiledExpr] = []
    for rule in rulebook.rules:
        calls = list(rule.then)
        out.append(rule.when)
        if rule.deadline is not None:
            out.append(rule.deadline.after)
            if rule.deadline.when is not None:
                out.append(rule.deadline.when)
            calls += rule.deadline.then
        for call in calls:
            out.extend(call.expressions.values())
    return out


class VectorisedRulebook:
    """One rulebook compiled for columns; compiled closures are built once and reused."""

    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook
        ordered = sorted(rulebook.rules, key=lambda r: r.index)
        # Computed once per scope when repeated (a deadline re-checking its rule's condition).
        shared = shared_subexpressions(e.node for e in _expressions(rulebook))

        def compile_expr(expr: CompiledExpr) -> VectorEvaluator:
            return compile_numpy(expr.node, shared)

        #: Rule ids in rule order; `Decisions.rule` indexes into this tuple.
        self.rule_ids: tuple[str, ...] = tuple(r.id for r in ordered)
        self._rules: dict[str, _CompiledRule] = {}
        by_type: dict[str, list[_CompiledRule]] = {}
        for position, rule in enumerate(ordered):
            compiled = _CompiledRule(
                rule=rule,
                position=position,
                when=compile_expr(rule.when),
                then=tuple(_CompiledEffect(c, shared) for c in rule.then),
            )
            if rule.deadline is not None:
                compiled.deadline_after = compile_expr(rule.deadline.after)
                if rule.deadline.when is not None:
                    compiled.deadline_when = compile_expr(rule.deadline.when)
                compiled.deadline_then = tuple(_CompiledEffect(c, shared)
                                               for c in rule.deadline.then)
            self._rules[rule.id] = compiled
            for t in rule.on:
                by_type.setdefault(t, []).append(compiled)
        self._by_type = {t: tuple(rules) for t, rules in by_type.items()}
        self._reads: dict[str, frozenset[str]] = {}
        #: Event types some rule listens to (`on`), in first-seen order; `decide` handles these.
        #: `rulebook.event_types` also lists the types that only cancel deadlines.
        self.event_types: tuple[str, ...] = tuple(by_type)

    @property
    def family(self) -> str:
        return self.rulebook.family

    def reads(self, event_type: str) -> frozenset[str]:
        """Dotted names of the fields that deciding `event_type` can read: the conditions and
        effect arguments of the rules that listen to it. Two scopes that agree on these fields
        get the same decisions and effects (callers use this to decide once for both)."""
        found = self._reads.get(event_type)
        if found is None:
            names: set[str] = set()
            for compiled in self._by_type.get(event_type, ()):
                names |= compiled.rule.when.names
                for call in compiled.rule.then:
                    for expr in call.expressions.values():
                        names |= expr.names
            found = self._reads[event_type] = frozenset(names)
        return found

    def rules_for(self, event_type: str) -> tuple[str, ...]:
        """Ids of the rules that listen to `event_type`, in the order they are tried."""
        return tuple(c.rule.id for c in self._by_type.get(event_type, ()))

    def _compiled(self, rule_id: str) -> _CompiledRule:
        try:
            return self._rules[rule_id]
        except KeyError:
            raise KeyError(
                f"rulebook {self.rulebook.id} has no rule '{rule_id}'; "
                f"its rules are {', '.join(self.rule_ids)}"
            ) from None

    def condition(self, rule_id: str, scope: ColumnarScope | Columns, n: int) -> Column:
        """A rule's `when` over n rows, unknowns included (for audits and explanations)."""
        return self._compiled(rule_id).when(scope, n)

    def decide(self, event_type: str, scope: ColumnarScope | Columns, n: int) -> Decisions:
        """For each of n events of `event_type`: the first rule whose `when` is known-True.

        Conditions are evaluated on whole columns, one rule after another, and stop early once
        every row is decided. An event type no rule listens to decides nothing. The effects of
        every rule that fired are evaluated here too, on the same scope, so that changing state
        while applying one rule's effects cannot change another's arguments (the engine also
        evaluates a decision's effects on one snapshot).
        """
        columns = as_columns(scope, n)
        rule = np.full(n, NO_RULE, dtype=np.int32)
        # None while no row is decided: a condition that holds for every row (its value did
        # not depend on any per-row field) then decides them all without a per-row pass.
        undecided: np.ndarray | None = None
        uniform: int | None = NO_RULE
        fired: list[_CompiledRule] = []
        for compiled in self._by_type.get(event_type, ()) if n else ():
            values, known = compiled.when.raw(columns)
            if np.ndim(values) == 0 and np.ndim(known) == 0:
                if not Column(values, known).is_true():
                    continue
                if undecided is None:
                    rule.fill(compiled.position)
                    uniform = compiled.position
                else:
                    np.copyto(rule, np.int32(compiled.position), where=undecided)
                fired.append(compiled)
                break
            truth = Column(values, known).is_true()  # n rows: one side is per row
            hit = truth if undecided is None else truth & undecided
            if not hit.any():
                continue
            np.copyto(rule, np.int32(compiled.position), where=hit)
            fired.append(compiled)
            first = undecided is None
            undecided = ~hit if first else undecided & ~hit
            if not undecided.any():
                uniform = compiled.position if first else None
                break
            uniform = None
        effects = {c.rule.id: [e.evaluate(columns) for e in c.then] for c in fired}
        return Decisions(self, event_type, columns, rule, effects, uniform=uniform)

    # -- deadlines --------------------------------------------------------------------------
    def _with_deadline(self, rule_id: str) -> _CompiledRule:
        compiled = self._compiled(rule_id)
        if compiled.deadline_after is None:
            raise ValueError(f"rule '{rule_id}' of {self.rulebook.id} has no deadline")
        return compiled

    def deadline_after(self, rule_id: str, scope: ColumnarScope | Columns, n: int) -> np.ndarray:
        """Seconds from the rule's event until its deadline falls due; NaN where unknown
        (the engine arms no deadline there)."""
        after = self._with_deadline(rule_id).deadline_after
        assert after is not None
        return after(scope, n).to_float()

    def deadline_when(self, rule_id: str, scope: ColumnarScope | Columns, n: int) -> np.ndarray:
        """Where the due deadline's effects apply: its `when` is known-True (no `when`: all)."""
        compiled = self._with_deadline(rule_id)
        if compiled.deadline_when is None:
            return np.ones(n, dtype=bool)
        values, known = compiled.deadline_when.raw(as_columns(scope, n))
        if np.ndim(values) == 0 and np.ndim(known) == 0:  # alike on every row
            return np.full(n, bool(Column(values, known).is_true()))
        return Column(values, known).is_true()  # n rows: one side is per row

    def deadline_effects(self, rule_id: str, scope: ColumnarScope | Columns,
                         n: int) -> list[VectorEffect]:
        """The deadline's effects evaluated over n rows (meaningful where `deadline_when`)."""
        columns = as_columns(scope, n)
        return [e.evaluate(columns) for e in self._with_deadline(rule_id).deadline_then]

    def effects(self, rule_id: str, scope: ColumnarScope | Columns, n: int) -> list[VectorEffect]:
        """A rule's own effects evaluated over n rows, whether or not it fired there."""
        columns = as_columns(scope, n)
        return [e.evaluate(columns) for e in self._compiled(rule_id).then]


@dataclass
class Decisions:
    """What a rulebook decided for n events of one type."""

    book: VectorisedRulebook
    event_type: str
    columns: Columns
    #: Per row, the index into `rule_ids` of the rule that fired, or NO_RULE (-1).
    rule: np.ndarray
    _effects: dict[str, list[VectorEffect]] = field(default_factory=dict, repr=False)
    #: The rule position every row got (NO_RULE: no rule fired anywhere) when `decide` saw the
    #: rows decided alike; None when they differ or it could not tell cheaply.
    uniform: int | None = None

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return self.book.rule_ids

    @property
    def n(self) -> int:
        return int(self.rule.shape[0])

    def fired(self, rule_id: str) -> np.ndarray:
        """Rows where `rule_id` decided."""
        position = self.book._compiled(rule_id).position
        if self.uniform is not None:
            return np.full(self.n, self.uniform == position)
        return self.rule == position

    def any_fired(self) -> np.ndarray:
        """Rows where some rule decided."""
        return self.rule != NO_RULE

    def rule_id_at(self, row: int) -> str | None:
        position = int(self.rule[row])
        return None if position == NO_RULE else self.rule_ids[position]

    def counts(self) -> dict[str, int]:
        """How many rows each rule decided (rules that decided none are left out)."""
        found = np.bincount(self.rule[self.rule != NO_RULE], minlength=len(self.rule_ids))
        return {self.rule_ids[i]: int(c) for i, c in enumerate(found) if c}

    def effects(self, rule_id: str) -> list[VectorEffect]:
        """The rule's effects over all n rows (for rules that fired, evaluated by `decide`)."""
        found = self._effects.get(rule_id)
        if found is None:
            found = self.book.effects(rule_id, self.columns, self.n)
            self._effects[rule_id] = found
        return found

    def by_effect(self, name: str) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Every call of effect `name` by a rule that fired somewhere: (rows fired, its args).

        One entry per call, in rule order; the masks of different rules never overlap. Use
        `effects(rule_id)` for the known masks of flag and text arguments.
        """
        out: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        for rule_id in self.book.rules_for(self.event_type):
            compiled = self.book._compiled(rule_id)
            if not any(e.call.name == name for e in compiled.then):
                continue
            mask = self.fired(rule_id)
            if not mask.any():
                continue
            out.extend((mask, e.args) for e in self.effects(rule_id) if e.name == name)
        return out


_CACHE: dict[int, tuple[Rulebook, VectorisedRulebook]] = {}
_CACHE_SIZE = 64


def compile_rulebook(rulebook: Rulebook) -> VectorisedRulebook:
    """The vectorised form of `rulebook`; compiling the same object again reuses the result."""
    cached = _CACHE.get(id(rulebook))
    if cached is not None and cached[0] is rulebook:
        return cached[1]
    compiled = VectorisedRulebook(rulebook)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(rulebook)] = (rulebook, compiled)
    return compiled


def compile_set(rulebook_set: RulebookSet) -> dict[str, VectorisedRulebook]:
    """Every rulebook of a set, by family."""
    return {family: compile_rulebook(rb) for family, rb in sorted(rulebook_set.rulebooks.items())}
