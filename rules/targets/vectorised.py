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

import contextlib
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rules.effects import EffectSpec
from rules.expression.errors import ExpressionError
from rules.expression.nodes import (
    BoolOp,
    Compare,
    Const,
    IfExp,
    ListLit,
    Name,
    Node,
    Param,
    Unary,
    children,
    walk,
)
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
    list_items,
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


_Rows = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
_Evaluate = tuple[tuple[str, Any, str, bool], ...]


class _Plan:
    """What an effect call evaluates per call: its literal arguments (broadcast to n rows as
    read-only views, kept by n) and the expression arguments evaluated afresh. Replaced as a
    whole, never changed in place but for its caches, so that a call running meanwhile in
    another thread uses one plan throughout."""

    def __init__(self, literals: dict[str, tuple[np.ndarray, np.ndarray]],
                 evaluate: _Evaluate) -> None:
        self.literals = literals
        self.evaluate = evaluate
        # The literals broadcast to n rows, by n: a decision repeated over blocks of one size
        # broadcasts them once, not once per call. Other sizes (index sets of every size)
        # slice views of at least as many rows, made once.
        self.rows: dict[int, _Rows] = {}
        self.views: tuple[int, list[tuple[str, np.ndarray, np.ndarray]]] = (-1, [])

    def over(self, n: int) -> _Rows:
        found = self.rows.get(n)
        if found is None:
            rows, views = self.views
            if rows < n:
                rows = max(n, 2 * rows, 1024)
                views = [(name, broadcast_rows(literal, rows), broadcast_rows(is_known, rows))
                         for name, (literal, is_known) in self.literals.items()]
                self.views = (rows, views)
            found = ({name: literal[:n] for name, literal, _ in views},
                     {name: is_known[:n] for name, _, is_known in views})
            if len(self.rows) >= 16:
                self.rows.clear()
            self.rows[n] = found
        return found


class _CompiledEffect:
    """An effect call with its expression arguments compiled for columns."""

    def __init__(self, call: EffectCallIR, shared: frozenset[Hashable]) -> None:
        self.call = call
        self.literals = dict(call.literals)
        self.expressions: dict[str, VectorEvaluator] = {
            name: compile_numpy(expr.node, shared) for name, expr in call.expressions.items()
        }
        self._plan = _Plan(
            {name: (np.asarray(float(value) if _is_number(value) else value),
                    np.asarray(value is not None))
             for name, value in self.literals.items()},
            tuple((name, evaluator.unguarded, call.spec.args[name].kind, evaluator.fresh)
                  for name, evaluator in self.expressions.items()))
        #: Arguments whose expression reads no field (a parameter, or arithmetic on them):
        #: one value for every row and every scope, so the first evaluation that succeeds
        #: makes them literals (`_settle_constants`) instead of being evaluated per call.
        self._constant = frozenset(name for name, expr in call.expressions.items()
                                   if not any(isinstance(node, Name) for node in walk(expr.node)))

    @property
    def literal(self) -> bool:
        """Whether every argument is a literal now (parameters settled included): its
        arguments are then the same values on every call, whatever the scope."""
        return not self._constant and not self._plan.evaluate

    def _settle_constants(self, columns: Columns) -> None:
        """Evaluate the arguments no field decides once and keep them with the literals (as
        the same 0-d values their evaluation gives, broadcast as read-only views). An
        evaluation that raises stays with the per-call ones, to raise there as before."""
        plan = self._plan
        settled: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, evaluate, kind, fresh in plan.evaluate:
            if name in self._constant:
                try:
                    values, is_known = evaluate(columns)
                    plain = _plain(values, is_known, kind, fresh)
                except Exception:  # raised again, in order, by the per-call pass
                    continue
                if plain.ndim or np.ndim(is_known):  # not one value after all: keep evaluating
                    continue
                settled[name] = (np.array(plain), np.array(is_known, dtype=bool))
        if settled:
            self._plan = _Plan({**plan.literals, **settled},
                               tuple(e for e in plan.evaluate if e[0] not in settled))
        self._constant = frozenset()

    def evaluate(self, columns: Columns) -> VectorEffect:
        with np.errstate(all="ignore"):
            return self.evaluate_unguarded(columns)

    def evaluate_unguarded(self, columns: Columns) -> VectorEffect:
        """`evaluate` inside the caller's own `np.errstate(all="ignore")` (one guard for a
        whole decision rather than one per argument)."""
        n = columns.n
        if self._constant:
            self._settle_constants(columns)
        plan = self._plan
        found = plan.rows.get(n)
        literal_args, literal_known = plan.over(n) if found is None else found
        # Fresh dicts (callers may add to them); the arrays are shared, read-only views.
        args: dict[str, np.ndarray] = dict(literal_args)
        known: dict[str, np.ndarray] = dict(literal_known)
        for name, evaluate, kind, fresh in plan.evaluate:
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


def _constant_tests(node: Node, path: tuple[str, ...]) -> list[tuple[str, tuple[Any, ...]]] | None:
    """The ``==``/``!=``/``in``/``not in`` tests of the field `path` against constants in
    `node`, as (op, the constants); None when the field is read any other way."""
    if isinstance(node, Compare) and node.op in ("==", "!=", "in", "not in"):
        left, right = node.left, node.right
        for field_side, other in ((left, right), (right, left)):
            if isinstance(field_side, Name) and field_side.path == path:
                if node.op in ("in", "not in"):
                    if other is not right:
                        return None
                    try:
                        return [(node.op, list_items(other))]
                    except ExpressionError:
                        return None
                if isinstance(other, Const | Param) and not isinstance(other.value, tuple):
                    return [(node.op, (other.value,))]
                return None
    if isinstance(node, Name):
        return None if node.path == path else []
    found: list[tuple[str, tuple[Any, ...]]] = []
    for child in children(node):
        tests = _constant_tests(child, path)
        if tests is None:
            return None
        found += tests
    return found


def _passes(op: str, value: Any, constants: tuple[Any, ...]) -> bool:
    """Python's outcome of the test (the reference semantics the targets agree with)."""
    if op in ("in", "not in"):
        return value in constants
    return bool(value == constants[0])


#: Expression nodes whose evaluation never sets a floating-point error flag (`_guard_for`).
_QUIET_NODES = (Const, Param, Name, ListLit, Compare, BoolOp, Unary, IfExp)


def _no_guard(**_: str) -> contextlib.nullcontext[None]:
    """Stands for `np.errstate` where no floating-point error can arise."""
    return _NULL_CONTEXT


_NULL_CONTEXT: contextlib.nullcontext[None] = contextlib.nullcontext()
_NO_GUARD = _no_guard


def _code_dtype(rules: int) -> np.dtype:
    """The dtype `decide` sums rule positions + 1 in: bytes while every position + 1, less
    one, fits a signed byte (`_rule_rows` reads 0 - 1 as -1 there), else int32."""
    return np.dtype(np.uint8) if rules <= 127 else np.dtype(np.int32)


def _as_codes(mask: np.ndarray, step: type) -> np.ndarray:
    """A boolean mask as 0/1 numbers of the code dtype: a byte view (no pass) for bytes."""
    return mask.view(np.uint8) if step is np.uint8 else mask.astype(step)


def _rule_rows(code: np.ndarray) -> np.ndarray:
    """`Decisions.rule` from the summed positions + 1: a new int32 array, less one."""
    if code.dtype == np.uint8:
        code -= np.uint8(1)  # 0 wraps to 255, which a signed byte reads as -1 (NO_RULE)
        return code.view(np.int8).astype(np.int32)
    code -= 1
    return code


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
        self._code_dtype = _code_dtype(len(ordered))
        self._reads: dict[str, frozenset[str]] = {}
        #: Per event type, the floating-point error guard `decide` needs (`_guard_for`).
        self._guards: dict[str, Any] = {}
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

    def alike(self, event_type: str, name: str, a: Any, b: Any) -> bool:
        """Whether the field `name` (dotted) holding `a` on every row or `b` on every row
        cannot change what deciding `event_type` gives: the rules that listen to it (their
        conditions and effect arguments) read the field only in ``==``, ``!=``, ``in`` and
        ``not in`` tests against constants, and `a` and `b` pass or fail each test alike
        (their deadlines' `after`, `when` and effect arguments included).
        False whenever that cannot be told this way (a field read any other way, values of
        different types, an unknown value). A caller may then decide once for both values:
        say, a claim event's status that every rule only tests for membership in a list
        both statuses are in."""
        if a is None or b is None or type(a) is not type(b):
            return False
        path = tuple(name.split("."))
        for compiled in self._by_type.get(event_type, ()):
            rule = compiled.rule
            trees = [rule.when.node]
            trees += [e.node for call in rule.then for e in call.expressions.values()]
            if rule.deadline is not None:  # (its `when` and effects read the event's scope)
                deadline = rule.deadline
                trees.append(deadline.after.node)
                if deadline.when is not None:
                    trees.append(deadline.when.node)
                trees += [e.node for call in deadline.then for e in call.expressions.values()]
            for tree in trees:
                tests = _constant_tests(tree, path)
                if tests is None:
                    return False
                if any(_passes(op, a, values) != _passes(op, b, values)
                       for op, values in tests):
                    return False
        return True

    def _guard_for(self, event_type: str) -> Any:
        """`np.errstate(all="ignore")` when deciding `event_type` can meet a floating-point
        error (arithmetic or a function call in a condition or an effect argument); else a
        context that does nothing. Comparisons, membership, `and`/`or`/`not`, negation,
        `if` and reading columns never set numpy's error flags, whatever the values (NaN,
        infinities), so a decision of those alone needs no guard, which costs about as much
        as a small decision's other bookkeeping. Made afresh for each call when needed (a
        guard is not reentrant)."""
        found = self._guards.get(event_type)
        if found is None:
            trees = []
            for compiled in self._by_type.get(event_type, ()):
                trees.append(compiled.rule.when.node)
                trees += [e.node for call in compiled.rule.then
                          for e in call.expressions.values()]
            quiet = all(isinstance(node, _QUIET_NODES) for tree in trees for node in walk(tree))
            found = self._guards[event_type] = _NO_GUARD if quiet else np.errstate
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

    def decide(self, event_type: str, scope: ColumnarScope | Columns, n: int, *,
               literal_effects: bool = True) -> Decisions:
        """For each of n events of `event_type`: the first rule whose `when` is known-True.

        Conditions are evaluated on whole columns, one rule after another, and stop early once
        every row is decided. An event type no rule listens to decides nothing. The effects of
        every rule that fired are evaluated here too, on the same scope, so that changing state
        while applying one rule's effects cannot change another's arguments (the engine also
        evaluates a decision's effects on one snapshot).

        `literal_effects` False leaves out of the evaluated effects the rules whose every
        effect argument is a literal (the same values on every call): for a caller that
        holds them from an earlier decision (`Decisions.fired_rules` still names every rule
        that fired; `Decisions.effects` evaluates a left-out rule's on demand).
        """
        columns = as_columns(scope, n)
        # Each row's rule is summed up as position + 1 over the rows each rule decided (they
        # never overlap), then less one: whole-array arithmetic, where writing each rule's
        # rows through a mask costs a branch per row. The sum is kept in bytes when positions
        # fit (`_code_dtype`): a byte's arithmetic costs a fraction of int32's, and one
        # widening at the end gives the int32 rows. None while every row is decided alike
        # (`uniform`): the rows' rule array is then made only if someone asks for it.
        code: np.ndarray | None = None
        # None while no row is decided: a condition that holds for every row (its value did
        # not depend on any per-row field) then decides them all without a per-row pass.
        undecided: np.ndarray | None = None
        left = n  # rows not decided yet
        uniform: int | None = NO_RULE
        fired: list[_CompiledRule] = []
        step = self._code_dtype.type
        rules = self._by_type.get(event_type, ()) if n else ()
        last = rules[-1] if rules else None  # after it, nobody needs the rows left undecided
        with self._guard_for(event_type)(all="ignore"):
            for compiled in rules:
                values, known = compiled.when.unguarded(columns)
                if values.ndim == 0 and known.ndim == 0:
                    if not known_truth(values, known):
                        continue
                    if undecided is None:
                        uniform = compiled.position
                    else:
                        assert code is not None
                        code += _as_codes(undecided, step) * step(compiled.position + 1)
                    fired.append(compiled)
                    break
                truth = known_truth(values, known)  # n rows: one side is per row
                if undecided is None:
                    hits = np.count_nonzero(truth)  # (cheaper than any() and all() both)
                    if not hits:
                        continue
                    fired.append(compiled)
                    if hits == n:
                        uniform = compiled.position
                        break
                    code = _as_codes(truth, step) * step(compiled.position + 1)
                    uniform = None
                    if compiled is last:
                        break
                    undecided = ~truth
                    left = n - hits
                    continue
                hit = truth & undecided
                hits = np.count_nonzero(hit)
                if not hits:
                    continue
                assert code is not None
                code += _as_codes(hit, step) * step(compiled.position + 1)
                fired.append(compiled)
                left -= hits
                if not left or compiled is last:
                    break
                undecided ^= hit  # the rows decided so far, less those it decided
            effects = {c.rule.id: [e.evaluate_unguarded(columns) for e in c.then]
                       for c in fired
                       if literal_effects or not all(e.literal for e in c.then)}
        rule = None if code is None else _rule_rows(code)
        return Decisions(self, event_type, columns, rule, effects, uniform=uniform,
                         fired_rules=tuple(c.rule.id for c in fired))

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
                 uniform: int | None = None, fired_rules: tuple[str, ...] | None = None) -> None:
        if rule is None and uniform is None:
            raise ValueError("decisions need each row's rule, or the one every row got")
        self.book = book
        self.event_type = event_type
        self.columns = columns
        self._rule = rule
        self._n = columns.n if rule is None else int(rule.shape[0])
        self._effects: dict[str, list[VectorEffect]] = {} if _effects is None else _effects
        self._uniform = uniform
        #: Ids of the rules that decided some row, in rule order, as `decide` found them
        #: (None when not told: the rules whose effects are held).
        self.fired_rules = fired_rules

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
