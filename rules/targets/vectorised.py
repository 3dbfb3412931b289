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
    float_values,
    known_truth,
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
        self._evaluate = tuple((name, evaluator.unguarded, call.spec.args[name].kind,
                                evaluator.fresh)
                               for name, evaluator in self.expressions.items())
        # The literals broadcast to n rows (read-only views), by n: a decision repeated over
        # blocks of one size broadcasts them once, not once per call. Other sizes (index sets
        # of every size) slice views of at least as many rows, made once.
        self._literal_rows: dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}
        self._literal_views: tuple[int, list[tuple[str, np.ndarray, np.ndarray]]] = (-1, [])

    def _literals_over(self, n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        found = self._literal_rows.get(n)
        if found is None:
            rows, views = self._literal_views
            if rows < n:
                rows = max(n, 2 * rows, 1024)
                views = [(name, broadcast_rows(literal, rows), broadcast_rows(is_known, rows))
                         for name, (literal, is_known) in self._literals.items()]
                self._literal_views = (rows, views)
            found = ({name: literal[:n] for name, literal, _ in views},
                     {name: is_known[:n] for name, _, is_known in views})
            if len(self._literal_rows) >= 16:
                self._literal_rows.clear()
            self._literal_rows[n] = found
        return found

    def evaluate(self, columns: Columns) -> VectorEffect:
        with np.errstate(all="ignore"):
            return self.evaluate_unguarded(columns)

    def evaluate_unguarded(self, columns: Columns) -> VectorEffect:
        """`evaluate` inside the caller's own `np.errstate(all="ignore")` (one guard for a
        whole decision rather than one per argument)."""
        n = columns.n
        literal_args, literal_known = self._literals_over(n)
        # Fresh dicts (callers may add to them); the arrays are shared, read-only views.
        args: dict[str, np.ndarray] = dict(literal_args)
        known: dict[str, np.ndarray] = dict(literal_known)
        for name, evaluate, kind, fresh in self._evaluate:
            # Converted before broadcasting: an argument no per-row field decides stays one
            # value (a stride-0 view) instead of a converted copy per row.
            values, is_known = evaluate(columns)
            args[name] = broadcast_rows(_plain(values, is_known, kind, fresh), n)
            known[name] = broadcast_rows(is_known, n)
        return VectorEffect(self.call.name, self.call.spec, args, known)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plain(values: np.ndarray, known: np.ndarray, kind: str, fresh: bool) -> np.ndarray:
    """The argument in the dtype its kind promises, whatever the data held: numbers float64
    with NaN for unknown, flags bool with False there (`VectorEffect.known` tells an unknown
    flag from a known False). A field missing from the scope reads as unknown numbers, which
    must not turn a flag argument into floats. Numbers are never a view of the scope's data
    (applying one effect must not move another's arguments); an argument the evaluator made
    afresh (`fresh`) is that already."""
    if kind in ("number", "duration"):
        return float_values(values, known, fresh=fresh)
    if kind == "bool":
        truth = values if values.dtype.kind == "b" else values.astype(bool)
        return truth & known
    return values


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
        # The rule of each row is summed up as position + 1 over the rows each rule decided
        # (they never overlap), then less one: whole-array arithmetic, where writing each
        # rule's rows through a mask costs a branch per row. None while every row is decided
        # alike (`uniform`): the rows' rule array is then made only if someone asks for it.
        rule: np.ndarray | None = None
        # None while no row is decided: a condition that holds for every row (its value did
        # not depend on any per-row field) then decides them all without a per-row pass.
        undecided: np.ndarray | None = None
        uniform: int | None = NO_RULE
        fired: list[_CompiledRule] = []
        with np.errstate(all="ignore"):
            for compiled in self._by_type.get(event_type, ()) if n else ():
                values, known = compiled.when.unguarded(columns)
                if values.ndim == 0 and known.ndim == 0:
                    if not known_truth(values, known):
                        continue
                    if undecided is None:
                        uniform = compiled.position
                    else:
                        assert rule is not None
                        rule += undecided * np.int32(compiled.position + 1)
                    fired.append(compiled)
                    break
                truth = known_truth(values, known)  # n rows: one side is per row
                if undecided is None:
                    if not truth.any():
                        continue
                    fired.append(compiled)
                    if truth.all():
                        uniform = compiled.position
                        break
                    rule = truth * np.int32(compiled.position + 1)
                    undecided = ~truth
                    uniform = None
                    continue
                hit = truth & undecided
                if not hit.any():
                    continue
                assert rule is not None
                rule += hit * np.int32(compiled.position + 1)
                fired.append(compiled)
                undecided ^= hit  # the rows decided so far, less those it decided
                if not undecided.any():
                    break
            effects = {c.rule.id: [e.evaluate_unguarded(columns) for e in c.then]
                       for c in fired}
        if rule is not None:
            rule -= 1
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
        values, known = after.raw(as_columns(scope, n))
        seconds = float_values(values, known, fresh=after.fresh)
        if np.ndim(seconds) == 0:  # alike on every row (a parameter, as usual)
            return np.full(n, seconds, dtype=seconds.dtype)
        return seconds

    def deadline_when(self, rule_id: str, scope: ColumnarScope | Columns, n: int) -> np.ndarray:
        """Where the due deadline's effects apply: its `when` is known-True (no `when`: all)."""
        compiled = self._with_deadline(rule_id)
        if compiled.deadline_when is None:
            return np.ones(n, dtype=bool)
        when = compiled.deadline_when
        values, known = when.raw(as_columns(scope, n))
        truth = known_truth(values, known)
        if np.ndim(truth) == 0:  # alike on every row
            return np.full(n, bool(truth))
        # n rows: one side is per row. A flag the scope holds is not handed out as it is.
        return truth.copy() if truth is values and not when.fresh else truth

    def deadline_effects(self, rule_id: str, scope: ColumnarScope | Columns,
                         n: int) -> list[VectorEffect]:
        """The deadline's effects evaluated over n rows (meaningful where `deadline_when`)."""
        columns = as_columns(scope, n)
        then = self._with_deadline(rule_id).deadline_then
        with np.errstate(all="ignore"):
            return [e.evaluate_unguarded(columns) for e in then]

    def effects(self, rule_id: str, scope: ColumnarScope | Columns, n: int) -> list[VectorEffect]:
        """A rule's own effects evaluated over n rows, whether or not it fired there."""
        columns = as_columns(scope, n)
        then = self._compiled(rule_id).then
        with np.errstate(all="ignore"):
            return [e.evaluate_unguarded(columns) for e in then]


class Decisions:
    """What a rulebook decided for n events of one type."""

    def __init__(self, book: VectorisedRulebook, event_type: str, columns: Columns,
                 rule: np.ndarray | None, _effects: dict[str, list[VectorEffect]] | None = None,
                 uniform: int | None = None) -> None:
        if rule is None and uniform is None:
            raise ValueError("decisions need each row's rule, or the one every row got")
        self.book = book
        self.event_type = event_type
        self.columns = columns
        self._rule = rule
        self._n = columns.n if rule is None else int(rule.shape[0])
        self._effects: dict[str, list[VectorEffect]] = {} if _effects is None else _effects
        self._uniform = uniform

    @property
    def rule(self) -> np.ndarray:
        """Per row, the index into `rule_ids` of the rule that fired, or NO_RULE (-1).

        Made on first use when every row was decided alike: most callers of such decisions
        ask `uniform` instead, and a block's worth of one repeated number is then never
        written."""
        if self._rule is None:
            assert self._uniform is not None
            self._rule = np.full(self._n, self._uniform, dtype=np.int32)
        return self._rule

    @property
    def uniform(self) -> int | None:
        """The rule position every row got (NO_RULE: no rule fired anywhere) when `decide`
        saw the rows decided alike; None when they differ or it could not tell cheaply."""
        return self._uniform

    @uniform.setter
    def uniform(self, value: int | None) -> None:
        # A caller that patches rows into `rule` says so by dropping the uniform mark; the
        # rows' rule array must exist before the mark that stands for it goes.
        self.rule  # noqa: B018 - made now, while `uniform` still says what it holds
        self._uniform = value

    def __repr__(self) -> str:
        return (f"Decisions(book={self.book!r}, event_type={self.event_type!r}, "
                f"rule={self.rule!r}, uniform={self._uniform!r})")

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return self.book.rule_ids

    @property
    def n(self) -> int:
        return self._n

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
