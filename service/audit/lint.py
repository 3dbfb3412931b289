"""Decision-table lint of rulebooks: overlaps, gaps, unreachable rules, unused/undefined parameters.

The engine runs each rulebook with a FIRST hit policy: of the rules listening to an event type,
the first (by position in the file) whose `when` holds decides, and an event no rule matches gets
no decision at all (see rules/targets/durable.py). Under that policy the questions a reviewer asks
of a rule table are: can two rules with different effects both match one event (the order then
decides silently)? Is there an event, or a value such as a refund of exactly the protection line,
that no rule decides? Is a rule dead because earlier rules always match first, or because its
condition contradicts itself? Is a parameter declared but never read, or read but never declared?

How it works: each condition is put in negation normal form and its leaves are sorted into
*variables*: a numeric field compared with a constant or parameter (`order.refund_amount <= 100`)
becomes an interval variable whose domain is cut at every such constant into cells (below, at,
between and above the thresholds); a text field compared with literals becomes a variable over
those literals plus "any other value"; a bare true/false field is a boolean variable; any other
comparison (field against field, arithmetic on fields) is an *opaque* boolean atom, normalised so
that `a < b` and `a >= b` are one atom with opposite signs. The lint then evaluates every rule on
every combination of cells (one representative value per cell), which decides exactly, for these
leaf kinds, which rule decides each cell.

What it proves and what it does not:
- An *unreachable* rule is proved dead: the cells over-approximate every real event, so a rule that
  is never first in any cell is never first for any event.
- A *gap* or *overlap* witness built only from interval, text and boolean variables is a real event
  (the fields are independent inputs). A witness that sets an opaque atom may not be realisable,
  because the atom can depend on fields the other variables also constrain (`event.price < 9.9`
  with `event.price < listing.unit_cost`); such messages say "assuming" and name the atoms.
- Missing fields are not modelled: the engine treats a comparison with a missing field as no match
  (Kleene logic), so events lacking a field can fall into gaps this lint does not report.
- Arithmetic over one field (`event.price * 2 < 10`), functions and `if ... else` are opaque atoms,
  not intervals; rules across different rulebooks are not compared (each rulebook is its own table).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rules import expression as ex
from rules.effects import EFFECTS
from rules.expression.normal_form import to_nnf
from rules.loader import load_document, rulebook_files
from rules.rulebook import CompiledExpr, Rulebook, RuleIR
from rules.yamlsource import Document, SourceError, read_file

LintSeverity = Literal["error", "warning", "info"]
LINT_SEVERITIES: tuple[str, ...] = ("info", "warning", "error")

#: Event types each family's rules are expected to decide. An event type of its family that no
#: rule of a rulebook listens to is reported as a gap: the platform's rules say nothing about it.
FAMILY_EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "ranking": ("listing_updated",),
    "auto_follow": ("auto_follow_toggled", "competitor_price_observed", "prompt_dismissed",
                    "listing_updated"),
    "refund": ("refund_requested", "merchant_responded", "platform_intervened"),
    "appeal": ("appeal_filed", "appeal_decided"),
    "commission": ("order_placed", "ad_click_charged"),
}

#: Effects that decide the opposite of each other: two overlapping rules with one each are a
#: conflict whose outcome hangs on rule order alone.
OPPOSED_EFFECTS: tuple[frozenset[str], ...] = (
    frozenset({"grant_refund", "reject_refund"}),
    frozenset({"unenrol_auto_follow", "refuse_unenrol"}),
    frozenset({"admit_to_channel", "exclude_from_channel"}),
    frozenset({"accept_appeal", "refuse_appeal"}),
)

#: Above this many cells for one event type, gaps are not searched and overlaps are checked pair
#: by pair (each pair over its own variables only, up to MAX_PAIR_CELLS; larger pairs are skipped
#: and said to be skipped).
MAX_CELLS = 20_000
MAX_PAIR_CELLS = 100_000

LIMITS = (
    "Unreachable rules are proved; gap and overlap witnesses are exact unless they mention an "
    "assumed comparison (then the comparison may not be realisable together with the other "
    "values). Missing fields, arithmetic on one field, functions and if-else are not analysed "
    "as intervals; rules in different rulebooks are not compared."
)


@dataclass
class LintMessage:
    """One thing a reviewer should look at, with a concrete event where there is one."""

    kind: str                    # overlap, value_gap, boundary_gap, unhandled_event_type, ...
    severity: LintSeverity
    rules: list[str]             # "family/rule_id", in rule order
    location: str                # "file:line"
    message: str                 # plain explanation
    event_type: str | None = None
    witness: dict[str, Any] | None = None
    assumed: list[str] = field(default_factory=list)   # opaque comparisons the witness sets

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        rules = f" [{', '.join(self.rules)}]" if self.rules else ""
        text = f"{self.location}: {self.severity} {self.kind}{rules}: {self.message}"
        if self.witness is not None:
            text += f"\n    witness: {json.dumps(self.witness, ensure_ascii=False)}"
        return text


@dataclass
class LintResult:
    """Every message for the files linted, plus which files were read."""

    files: list[str]
    messages: list[LintMessage]

    def count(self, severity: str) -> int:
        return sum(1 for m in self.messages if m.severity == severity)

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "limits": LIMITS,
                "summary": {s: self.count(s) for s in reversed(LINT_SEVERITIES)},
                "messages": [m.to_dict() for m in self.messages]}


# -- printing expressions -----------------------------------------------------------------------
def unparse(node: ex.Node) -> str:
    """Expression text in the rule language, for messages and atom keys (parameters by name)."""
    match node:
        case ex.Const(value=value):
            return _literal(value)
        case ex.Param(name=name):
            return name
        case ex.Name():
            return node.dotted
        case ex.Unary(op="not", operand=operand):
            return f"not {_wrap(operand)}"
        case ex.Unary(operand=operand):
            return f"-{_wrap(operand)}"
        case ex.Binary(op=op, left=left, right=right) | ex.Compare(op=op, left=left, right=right):
            return f"{_wrap(left)} {op} {_wrap(right)}"
        case ex.BoolOp(op=op, operands=operands):
            return f" {op} ".join(_wrap(o) for o in operands)
        case ex.Call(func=func, args=args):
            return f"{func}({', '.join(unparse(a) for a in args)})"
        case ex.ListLit(items=items):
            return "[" + ", ".join(unparse(i) for i in items) + "]"
        case ex.IfExp(test=test, body=body, orelse=orelse):
            return f"{_wrap(body)} if {_wrap(test)} else {_wrap(orelse)}"
    return "?"


def _wrap(node: ex.Node) -> str:
    text = unparse(node)
    atomic = isinstance(node, ex.Const | ex.Param | ex.Name | ex.Call | ex.ListLit)
    return text if atomic else f"({text})"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- variables and cells ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Var:
    """One input dimension of a decision table; `key` is a field name or an opaque atom's text."""

    kind: Literal["number", "text", "bool", "opaque"]
    key: str


def _constant(node: ex.Node) -> Any:
    """The value of an expression that reads no field, or None when it has none."""
    if not ex.nodes.is_constant(node):
        return None
    try:
        value = ex.compile_python(node)({})
    except ex.ExpressionError:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _field_vs_constant(node: ex.Compare) -> tuple[str, str, Any] | None:
    """(field, op, constant) with the field on the left, if the comparison has that shape."""
    if isinstance(node.left, ex.Name) and len(node.left.path) > 1:
        value = _constant(node.right) if not isinstance(node.right, ex.ListLit) else \
            tuple(_constant(i) for i in node.right.items)
        if value is not None:
            return node.left.dotted, node.op, value
    if isinstance(node.right, ex.Name) and len(node.right.path) > 1 and node.op in _FLIP:
        value = _constant(node.left)
        if value is not None:
            return node.right.dotted, _FLIP[node.op], value
    return None


def _opaque(node: ex.Compare) -> tuple[str, bool]:
    """A canonical atom text and sign: `a > b` is `b < a`; `a >= b` is `not (a < b)`."""
    left, right = unparse(node.left), unparse(node.right)
    match node.op:
        case "<":
            return f"{left} < {right}", True
        case ">":
            return f"{right} < {left}", True
        case "<=":
            return f"{right} < {left}", False
        case ">=":
            return f"{left} < {right}", False
        case "==" | "!=":
            a, b = sorted((left, right))
            return f"{a} == {b}", node.op == "=="
        case _:
            return f"{left} {node.op.replace('not in', 'in')} {right}", node.op == "in"


@dataclass(frozen=True)
class _Leaf:
    """How one leaf of a condition reads the table: a field against constants, or an atom."""

    key: str
    kind: Literal["number", "text", "bool", "opaque"]
    op: str = "=="
    values: tuple[Any, ...] = ()
    sign: bool = True


def _classify(leaf: ex.Node) -> _Leaf:
    """Sort a leaf (no `not` above it) into the variable it reads; same leaf, same answer."""
    if isinstance(leaf, ex.Name) and len(leaf.path) > 1:
        return _Leaf(leaf.dotted, "bool", "==", (True,))
    if isinstance(leaf, ex.Compare):
        shaped = _field_vs_constant(leaf)
        if shaped is not None:
            name, op, value = shaped
            values = value if isinstance(value, tuple) else (value,)
            if op in ("==", "!=") and all(isinstance(v, bool) for v in values):
                return _Leaf(name, "bool", op, values)
            if values and all(_is_number(v) for v in values):
                return _Leaf(name, "number", op, values)
            if all(isinstance(v, str) for v in values) and op in ("==", "!=", "in", "not in"):
                return _Leaf(name, "text", op, values)
        key, sign = _opaque(leaf)
        return _Leaf(key, "opaque", sign=sign)
    return _Leaf(unparse(leaf), "opaque")


class _Table:
    """Variables, their representative values, and an evaluator of conditions over them."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}
        self.points: dict[str, set[Any]] = {}

    def collect(self, node: ex.Node) -> None:
        for leaf in _leaves(to_nnf(node)):
            if isinstance(leaf, ex.Unary) and leaf.op == "not":
                leaf = leaf.operand
            if ex.nodes.is_constant(leaf):
                continue  # decided without any event: no variable
            c = _classify(leaf)
            # Fields are type-checked, so one key is never used as two kinds of variable.
            self.kinds.setdefault(c.key, c.kind)
            self.points.setdefault(c.key, set())
            if c.kind in ("number", "text"):
                self.points[c.key].update(c.values)

    def domain(self, key: str) -> list[Any]:
        """One representative value per cell of the variable's domain."""
        kind = self.kinds[key]
        if kind in ("bool", "opaque"):
            return [True, False]
        if kind == "text":
            known = sorted(self.points[key])
            other = "other"
            while other in known:
                other += "_"
            return [*known, _Other(other)]
        ts = sorted(self.points[key])
        reps: list[Any] = [ts[0] - 1]
        for a, b in itertools.pairwise(ts):
            reps += [a, (a + b) / 2]
        reps += [ts[-1], ts[-1] + 1]
        return [int(r) if isinstance(r, float) and r.is_integer() else r for r in reps]

    def size(self, keys: Sequence[str]) -> int:
        return math.prod(len(self.domain(k)) for k in keys)


class _Other(str):
    """A text value none of the rules name: "any other value" in a witness."""


def _leaves(node: ex.Node) -> Iterable[ex.Node]:
    if isinstance(node, ex.BoolOp):
        for o in node.operands:
            yield from _leaves(o)
    else:
        yield node


Condition = Callable[[Mapping[str, Any]], bool]


def compile_condition(node: ex.Node) -> Condition:
    """A condition (in NNF) as a function of a cell; every leaf is decided by the cell.

    Compiled once per rule, because the table evaluates every rule on every cell.
    """
    if isinstance(node, ex.BoolOp):
        parts = tuple(compile_condition(o) for o in node.operands)
        if node.op == "and":
            return lambda cell: all(p(cell) for p in parts)
        return lambda cell: any(p(cell) for p in parts)
    if isinstance(node, ex.Unary) and node.op == "not":
        inner = compile_condition(node.operand)
        return lambda cell: not inner(cell)
    if ex.nodes.is_constant(node):  # `true`, a flag parameter, `recall_fee > 0`
        value = _constant(node) is True
        return lambda cell: value
    c = _classify(node)
    key = c.key
    if c.kind == "opaque":
        sign = c.sign
        return lambda cell: bool(cell[key]) is sign
    if c.kind == "bool":
        wanted, equal = c.values[0], c.op == "=="
        return lambda cell: (cell[key] == wanted) is equal
    op, values = c.op, c.values
    return lambda cell: _compare(cell[key], op, values)


def _compare(value: Any, op: str, constants: tuple[Any, ...]) -> bool:
    other = isinstance(value, _Other)
    if op in ("in", "not in"):
        inside = not other and value in constants
        return inside if op == "in" else not inside
    if other:
        return op == "!="
    constant = constants[0]
    match op:
        case "<":
            return bool(value < constant)
        case "<=":
            return bool(value <= constant)
        case ">":
            return bool(value > constant)
        case ">=":
            return bool(value >= constant)
        case "==":
            return bool(value == constant)
        case _:
            return bool(value != constant)


def _witness(cell: Mapping[str, Any], keys: Iterable[str], table: _Table) \
        -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    assumed: list[str] = []
    for k in keys:
        value = cell[k]
        if table.kinds[k] == "opaque":
            assumed.append(k if value else f"not ({k})")
            out[k] = value
        elif isinstance(value, _Other):
            out[k] = f"any value other than {', '.join(sorted(map(str, table.points[k])))}"
        else:
            out[k] = value
    return out, assumed


# -- the analysis -------------------------------------------------------------------------------
def _effect_signature(rule: RuleIR) -> tuple[Any, ...]:
    def one(e: Any) -> tuple[Any, ...]:
        args = sorted([(k, repr(v)) for k, v in e.literals.items()]
                      + [(k, unparse(v.node)) for k, v in e.expressions.items()])
        return e.name, tuple(args)

    return tuple(one(e) for e in rule.then)


def _effects_text(rule: RuleIR, other: RuleIR | None = None) -> str:
    """The rule's effects; with arguments where `other` has the same effect names."""
    names = [e.name for e in rule.then]
    if other is None or names != [e.name for e in other.then]:
        return ", ".join(names)
    return ", ".join(f"{name}({', '.join(f'{k}={v}' for k, v in args)})"
                     for name, args in _effect_signature(rule))


def _opposed(a: RuleIR, b: RuleIR) -> bool:
    names = {e.name for e in a.then}, {e.name for e in b.then}
    return any(len(pair & names[0]) == 1 and len(pair & names[1]) == 1
               and pair & names[0] != pair & names[1] for pair in OPPOSED_EFFECTS)


class _RulebookLint:
    def __init__(self, rulebook: Rulebook, doc: Document | None) -> None:
        self.rb = rulebook
        self.doc = doc
        self.messages: list[LintMessage] = []

    def rid(self, rule: RuleIR) -> str:
        return f"{self.rb.family}/{rule.id}"

    def add(self, kind: str, severity: LintSeverity, rules: Sequence[RuleIR], message: str,
            location: str | None = None, **extra: Any) -> None:
        where = location or (str(rules[0].location) if rules else f"{self.rb.file}:1")
        self.messages.append(LintMessage(kind, severity, [self.rid(r) for r in rules], where,
                                         message, **extra))

    def run(self) -> list[LintMessage]:
        handled = set(self.rb.event_types)
        for event_type in FAMILY_EVENT_TYPES.get(self.rb.family, ()):
            if event_type not in handled:
                self.add("unhandled_event_type", "info", [],
                         f"no rule of the {self.rb.family} rulebook listens to {event_type}: "
                         f"the rules say nothing about what happens on it",
                         event_type=event_type)
        dead_on: dict[str, set[str]] = {r.id: set() for r in self.rb.rules}
        for event_type in self.rb.event_types:
            rules = [r for r in self.rb.rules if event_type in r.on]
            if rules:
                self.table(event_type, rules, dead_on)
        for rule in self.rb.rules:
            dead = dead_on[rule.id]
            if dead and dead != set(rule.on):
                alive = ", ".join(sorted(set(rule.on) - dead))
                self.add("partly_unreachable", "warning", [rule],
                         f"rule {rule.id} never decides {', '.join(sorted(dead))} events "
                         f"(earlier rules always match first), only {alive}")
        for rule in self.rb.rules:
            self.deadline(rule)
        self.parameters()
        return self.messages

    # -- one event type's table ------------------------------------------------------------
    def table(self, event_type: str, rules: list[RuleIR], dead_on: dict[str, set[str]]) -> None:
        table = _Table()
        conditions = {r.id: compile_condition(to_nnf(r.when.node)) for r in rules}
        for r in rules:
            table.collect(r.when.node)
        keys = sorted(table.kinds)
        if table.size(keys) > MAX_CELLS:
            self.add("analysis_limit", "info", rules,
                     f"{event_type}: {table.size(keys)} combinations of conditions is more than "
                     f"{MAX_CELLS}; gaps were not searched and overlaps were checked pair by pair",
                     event_type=event_type)
            self.pairwise(event_type, rules, table, conditions, dead_on)
            return
        first_cells: dict[str, Any] = {}
        true_somewhere: set[str] = set()
        covered_by: dict[str, set[str]] = {r.id: set() for r in rules}
        both: dict[tuple[int, int], dict[str, Any]] = {}
        without: set[tuple[int, int]] = set()   # (i, j): i holds where j does not
        gaps: list[dict[str, Any]] = []
        cells = [dict(zip(keys, combo, strict=True))
                 for combo in itertools.product(*(table.domain(k) for k in keys))]
        for cell in cells:
            truth = [conditions[r.id](cell) for r in rules]
            winners = [i for i, t in enumerate(truth) if t]
            if not winners:
                gaps.append(cell)
                continue
            first = winners[0]
            first_cells.setdefault(rules[first].id, cell)
            for i in winners:
                true_somewhere.add(rules[i].id)
                if i != first:
                    covered_by[rules[i].id].add(rules[first].id)
            for a, b in itertools.combinations(winners, 2):
                both.setdefault((a, b), cell)
            for i, t in enumerate(truth):
                if t:
                    for j, u in enumerate(truth):
                        if not u:
                            without.add((i, j))
        for r in rules:
            if r.id in first_cells:
                continue
            dead_on[r.id].add(event_type)
            if len(r.on) > 1 and dead_on[r.id] != set(r.on):
                continue
            if r.id not in true_somewhere:
                self.add("unreachable", "error", [r],
                         f"rule {r.id} can never fire: its condition '{r.when.text}' cannot "
                         f"hold for any {event_type}", event_type=event_type)
            elif len(r.on) == 1 or dead_on[r.id] == set(r.on):
                earlier = [x for x in rules if x.id in covered_by[r.id]]
                self.add("unreachable", "error", [r, *earlier],
                         f"rule {r.id} can never fire: whenever its condition holds, earlier "
                         f"rule(s) {', '.join(x.id for x in earlier)} match first "
                         f"(first matching rule wins)", event_type=event_type)
        self.overlaps(event_type, rules, table, both, without, first_cells)
        self.gaps(event_type, rules, table, keys, gaps, len(cells))

    def overlaps(self, event_type: str, rules: list[RuleIR], table: _Table,
                 both: Mapping[tuple[int, int], dict[str, Any]], without: set[tuple[int, int]],
                 first_cells: Mapping[str, Any]) -> None:
        for (i, j), cell in sorted(both.items()):
            a, b = rules[i], rules[j]
            if b.id not in first_cells or _effect_signature(a) == _effect_signature(b):
                continue  # dead rules are reported as such; identical effects do not conflict
            opposed = _opposed(a, b)
            same_kind = [e.name for e in a.then] == [e.name for e in b.then]
            special_case = (i, j) not in without   # a holds only where b holds too
            keys = sorted(set(table.kinds) & _vars_of(a, b, table))
            witness, assumed = _witness(cell, keys, table)
            opposite = ", with the opposite outcome" if opposed else ""
            if special_case:
                # An exception written before the general rule: the usual decision-table idiom.
                severity: LintSeverity = "info"
                how = (f"{a.id} is a special case of {b.id}; where both match, {a.id} wins "
                       f"and {b.id}'s effects ({_effects_text(b)}) do not apply{opposite}")
            else:
                severity = "info" if same_kind else "warning"
                how = (f"both match some {event_type} events and decide differently "
                       f"({_effects_text(a, b)} vs {_effects_text(b, a)}); only the rule order "
                       f"makes {a.id} win{opposite}")
            self.add("overlap", severity, [a, b], how, event_type=event_type,
                     witness=witness, assumed=assumed)

    def gaps(self, event_type: str, rules: list[RuleIR], table: _Table, keys: list[str],
             gaps: list[dict[str, Any]], total: int) -> None:
        if not gaps:
            return
        gap_keys = {tuple(sorted((k, _hashable(v)) for k, v in c.items())) for c in gaps}
        boundary_seen: set[tuple[str, Any]] = set()
        boundary_cells = 0
        for cell in gaps:
            for k in keys:
                if table.kinds[k] != "number" or cell[k] not in table.points[k]:
                    continue
                dom = table.domain(k)
                pos = dom.index(cell[k])
                neighbours = [dom[pos - 1], dom[pos + 1]]
                covered = all(
                    tuple(sorted((kk, _hashable(n if kk == k else vv))
                                 for kk, vv in cell.items())) not in gap_keys
                    for n in neighbours)
                if not covered:
                    continue
                boundary_cells += 1
                if (k, cell[k]) in boundary_seen:
                    continue
                boundary_seen.add((k, cell[k]))
                witness, assumed = _witness(cell, keys, table)
                self.add("boundary_gap", "warning", rules,
                         f"no rule decides a {event_type} with {k} exactly {_literal(cell[k])}, "
                         f"although {_literal(neighbours[0])} and {_literal(neighbours[1])} are "
                         f"decided: the rules' comparisons leave the line itself out",
                         location=str(rules[0].location), event_type=event_type,
                         witness=witness, assumed=assumed)
        if len(gaps) > boundary_cells:
            rest = [c for c in gaps if not any(
                table.kinds[k] == "number" and (k, c[k]) in boundary_seen for k in keys)]
            if not rest:
                return
            witness, assumed = _witness(rest[0], keys, table)
            self.add("value_gap", "info", rules,
                     f"{len(rest)} of {total} combinations of the conditions' values on "
                     f"{event_type} match no rule, so such events get no decision; for example "
                     f"the witness below", location=str(rules[0].location),
                     event_type=event_type, witness=witness, assumed=assumed)

    def pairwise(self, event_type: str, rules: list[RuleIR], table: _Table,
                 conditions: Mapping[str, Condition], dead_on: dict[str, set[str]]) -> None:
        never: set[str] = set()
        for r in rules:
            keys = sorted(_vars_of(r, r, table))
            if table.size(keys) <= MAX_PAIR_CELLS and not any(
                    conditions[r.id](dict(zip(keys, combo, strict=True)))
                    for combo in itertools.product(*(table.domain(k) for k in keys))):
                never.add(r.id)
                dead_on[r.id].add(event_type)
                self.add("unreachable", "error", [r],
                         f"rule {r.id} can never fire: its condition '{r.when.text}' cannot "
                         f"hold for any {event_type}", event_type=event_type)
        for i, j in itertools.combinations(range(len(rules)), 2):
            a, b = rules[i], rules[j]
            if a.id in never or b.id in never:
                continue
            keys = sorted(_vars_of(a, b, table))
            if table.size(keys) > MAX_PAIR_CELLS:
                self.add("analysis_limit", "info", [a, b],
                         f"{event_type}: rules {a.id} and {b.id} were not compared "
                         f"({table.size(keys)} combinations)", event_type=event_type)
                continue
            both: dict[tuple[int, int], dict[str, Any]] = {}
            without: set[tuple[int, int]] = set()
            b_alone = False
            for combo in itertools.product(*(table.domain(k) for k in keys)):
                cell = dict(zip(keys, combo, strict=True))
                ta, tb = conditions[a.id](cell), conditions[b.id](cell)
                if ta and tb:
                    both.setdefault((0, 1), cell)
                if ta and not tb:
                    without.add((0, 1))
                b_alone = b_alone or (tb and not ta)
            if both and not b_alone:
                dead_on[b.id].add(event_type)
                self.add("unreachable", "error", [b, a],
                         f"rule {b.id} can never fire: whenever its condition holds, earlier "
                         f"rule {a.id} matches first", event_type=event_type)
            elif both:
                self.overlaps(event_type, [a, b], table, both, without, {b.id: True})

    # -- deadlines and parameters ---------------------------------------------------------
    def deadline(self, rule: RuleIR) -> None:
        d = rule.deadline
        if d is None or d.when is None:
            return
        table = _Table()
        table.collect(d.when.node)
        keys = sorted(table.kinds)
        if table.size(keys) > MAX_CELLS:
            return
        holds = compile_condition(to_nnf(d.when.node))
        if not any(holds(dict(zip(keys, combo, strict=True)))
                   for combo in itertools.product(*(table.domain(k) for k in keys))):
            self.add("unreachable_deadline", "error", [rule],
                     f"the deadline of rule {rule.id} can never apply: its condition "
                     f"'{d.when.text}' cannot hold",
                     location=self._location(("rules", rule.index, "deadline", "when"),
                                             str(d.then[0].location)))

    def parameters(self) -> None:
        used: set[str] = set()
        for rule in self.rb.rules:
            used |= _params_of(rule)
        for name, spec in self.rb.parameter_specs.items():
            if name in used:
                continue
            declaration = spec.unit in ("flag", "label")
            where = self._param_location(name)
            self.add("unused_parameter", "info" if declaration else "warning", [],
                     f"parameter {name} is declared but no rule reads it"
                     + ("; as a flag or label it may be a declaration for readers and the audit"
                        if declaration else "; a change to it changes nothing"),
                     location=where)

    def _param_location(self, name: str) -> str:
        return self._location(("parameters", name), f"{self.rb.file}:1", key=True)

    def _location(self, path: tuple[Any, ...], fallback: str, *, key: bool = False) -> str:
        """file:line of a data path in the source, when the source document is at hand."""
        if self.doc is None:
            return fallback
        return f"{self.rb.file}:{self.doc.mark(path, key=key).line}"


def _hashable(value: Any) -> Any:
    return ("other", str(value)) if isinstance(value, _Other) else value


def _vars_of(a: RuleIR, b: RuleIR, table: _Table) -> set[str]:
    sub = _Table()
    sub.collect(a.when.node)
    sub.collect(b.when.node)
    return set(sub.kinds) & set(table.kinds)


def _exprs_of(rule: RuleIR) -> Iterable[CompiledExpr]:
    yield rule.when
    for e in rule.then:
        yield from e.expressions.values()
    if rule.deadline:
        yield rule.deadline.after
        if rule.deadline.when:
            yield rule.deadline.when
        for e in rule.deadline.then:
            yield from e.expressions.values()


def _params_of(rule: RuleIR) -> set[str]:
    out: set[str] = set()
    for e in _exprs_of(rule):
        out |= set(e.params)
    return out


# -- undefined parameters (on the raw file: the loader rejects them) ---------------------------
def undefined_parameters(doc: Document) -> list[LintMessage]:
    """Names used like parameters in a rulebook file that its `parameters` do not define."""
    data = doc.data if isinstance(doc.data, dict) else {}
    defined = set((data.get("parameters") or {}).keys()) if isinstance(
        data.get("parameters"), dict) else set()
    out: list[LintMessage] = []
    rules = data.get("rules") if isinstance(data.get("rules"), list) else []
    family = (data.get("rulebook") or {}).get("family", "?") if isinstance(
        data.get("rulebook"), dict) else "?"
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        rid = f"{family}/{rule.get('id', i)}"
        for path, text in _expression_texts(rule, ("rules", i)):
            try:
                node = ex.parse(text)
            except ex.ExpressionError:
                continue
            for n in ex.walk(node):
                if isinstance(n, ex.Name) and len(n.path) == 1 and n.path[0] not in defined:
                    m = doc.text_mark(path, n.start)
                    out.append(LintMessage(
                        "undefined_parameter", "error", [rid], f"{doc.file}:{m.line}",
                        f"'{n.path[0]}' is read as a parameter but the file's parameters do "
                        f"not define it (defined: {', '.join(sorted(defined)) or 'none'})"))
    return out


def _expression_texts(rule: Mapping[str, Any], base: tuple[Any, ...]) \
        -> Iterable[tuple[tuple[Any, ...], str]]:
    if isinstance(rule.get("when"), str):
        yield (*base, "when"), rule["when"]
    yield from _effect_texts(rule.get("then"), (*base, "then"))
    deadline = rule.get("deadline")
    if isinstance(deadline, dict):
        for key in ("after", "when"):
            if isinstance(deadline.get(key), str):
                yield (*base, "deadline", key), deadline[key]
        yield from _effect_texts(deadline.get("then"), (*base, "deadline", "then"))


def _effect_texts(calls: Any, base: tuple[Any, ...]) -> Iterable[tuple[tuple[Any, ...], str]]:
    if not isinstance(calls, list):
        return
    for k, call in enumerate(calls):
        if not isinstance(call, dict):
            continue
        spec = EFFECTS.get(call.get("effect", ""))
        if spec is None:
            continue
        for name, value in call.items():
            arg = spec.args.get(name)
            if arg is not None and arg.kind in ("number", "duration", "bool") \
                    and isinstance(value, str):
                yield (*base, k, name), value


# -- entry points -------------------------------------------------------------------------------
def lint_rulebook(rulebook: Rulebook, doc: Document | None = None) -> list[LintMessage]:
    """Every lint message for one loaded rulebook."""
    return _RulebookLint(rulebook, doc).run()


def lint_file(path: str | Path, set_id: str | None = None) -> list[LintMessage]:
    """Lint one rulebook file; a file that does not load yields its errors as messages."""
    p = Path(path)
    try:
        doc = read_file(p)
    except SourceError as exc:
        return [LintMessage("load_error", "error", [], f"{v.file}:{v.line}", v.message)
                for v in exc.violations]
    undefined = undefined_parameters(doc)
    try:
        rulebook = load_document(doc, set_id or p.parent.name)
    except SourceError as exc:
        said = {m.location for m in undefined}
        return undefined + [
            LintMessage("load_error", "error", [], f"{v.file}:{v.line}",
                        f"{v.path + ': ' if v.path else ''}{v.message}")
            for v in exc.violations
            if not (f"{v.file}:{v.line}" in said and v.message.startswith("unknown name"))]
    return undefined + lint_rulebook(rulebook, doc)


def lint_paths(paths: Sequence[str | Path]) -> LintResult:
    """Lint rulebook sets (directories), directories of sets, or single files."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            found = rulebook_files(p)
            if not found:
                found = [f for sub in sorted(q for q in p.iterdir() if q.is_dir())
                         for f in rulebook_files(sub)]
            if not found:
                raise FileNotFoundError(f"{p}: no rulebook files (*.yaml) here or in its "
                                        f"sub-directories")
            files.extend(found)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    messages: list[LintMessage] = []
    for f in files:
        messages.extend(lint_file(f))
    return LintResult([str(f) for f in files], messages)
