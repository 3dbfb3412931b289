"""Compile a checked rulebook into a durable_rules ruleset definition.

One ruleset per rulebook. Each rule becomes a durable_rules rule whose condition matches the event
type and the rule's `when`; rule order becomes salience (`pri`), so the first matching rule wins,
like a decision table with a FIRST hit policy (durable_rules consumes an event with the first rule
that matches it). Each deadline becomes one more rule that matches a synthetic
``$deadline:<rule id>`` message, so the deadline's own `when` is also evaluated by durable_rules.

Conditions only read the message: the engine enriches each event with the state and derived values
the rules read (see `Ruleset.message_fields`) before posting, because durable_rules does not
evaluate conditions that mix session state and the message reliably.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rules import expression as ex
from rules.rulebook import CompiledExpr, Rulebook, RuleIR

Action = Callable[[Any], None]


#: The last rule of every ruleset: matches what no rulebook rule matched (see compile_ruleset).
NO_RULE = "zzz_no_rule_applied"
NO_RULE_SALIENCE = 1_000_000


def deadline_type(rule_id: str) -> str:
    return f"$deadline:{rule_id}"


@dataclass(frozen=True)
class Hoisted:
    """A sub-expression durable_rules cannot compute, evaluated in Python into `derived`."""

    name: str
    evaluate: Callable[[Any], Any]


@dataclass
class Ruleset:
    """A durable_rules ruleset plus what the engine needs to post messages to it."""

    name: str
    rulebook: Rulebook
    definition: dict[str, dict[str, Any]]
    #: For each message type: the dotted names its rules' conditions read.
    message_fields: dict[str, set[str]] = field(default_factory=dict)
    #: For each message type: sub-expressions to compute into `derived` before posting.
    hoisted: dict[str, list[Hoisted]] = field(default_factory=dict)
    #: durable_rules rule name -> (rule, is_deadline)
    rule_by_name: dict[str, tuple[RuleIR, bool]] = field(default_factory=dict)


def _condition(
    expr: CompiledExpr | None, prefix: str
) -> tuple[dict[str, Any] | bool | None, list[tuple[str, Any]]]:
    """The durable_rules condition of an expression; None when it always holds."""
    if expr is None:
        return None, []
    if isinstance(expr.node, ex.Const) and isinstance(expr.node.value, bool):
        return (None if expr.node.value else False), []
    cond, hoisted = ex.compile_condition(expr.node, prefix)
    return cond, list(hoisted.items())


def _type_match(types: tuple[str, ...]) -> dict[str, Any]:
    if len(types) == 1:
        return {"type": types[0]}
    return {"$or": [{"type": t} for t in types]}


def _all_names(items: list[tuple[str, Any]]) -> set[str]:
    out: set[str] = set()
    for _, node in items:
        out |= set(ex.names(node))
    return out


def compile_ruleset(rulebook: Rulebook, action_for: Callable[[str], Action],
                    name: str | None = None) -> Ruleset:
    """Build the ruleset definition; `action_for(rule_name)` supplies each rule's action."""
    rs_name = name or rulebook.id.replace("/", ".")
    rs = Ruleset(name=rs_name, rulebook=rulebook, definition={})
    for rule in rulebook.rules:
        # Durable_rules is given the rule's condition; a constant true condition is just the type.
        cond, hoisted = _condition(rule.when, f"{rule.id}__")
        if cond is False:
            continue  # a rule that can never fire: the audit's lint reports it
        parts = [_type_match(rule.on)]
        if cond is not None:
            parts.append(cond)
        rule_name = f"{rule.index:03d}_{rule.id}"
        rs.definition[rule_name] = {
            "pri": rule.index + 1,
            "all": [{"m": parts[0] if len(parts) == 1 else {"$and": parts}}],
            "run": action_for(rule_name),
        }
        rs.rule_by_name[rule_name] = (rule, False)
        hoisted_fns = [Hoisted(n, ex.compile_python(node)) for n, node in hoisted]
        for t in rule.on:
            rs.message_fields.setdefault(t, set()).update(rule.when.names | _all_names(hoisted))
            rs.hoisted.setdefault(t, []).extend(hoisted_fns)
        if rule.deadline is not None:
            dtype = deadline_type(rule.id)
            dcond, dhoisted = _condition(rule.deadline.when, f"{rule.id}__d")
            dparts: list[Any] = [{"type": dtype}]
            if dcond is False:
                dcond = {"$nex": {"type": 1}}  # never holds: the deadline lapses
            if dcond is not None:
                dparts.append(dcond)
            dname = f"{rule.index:03d}_{rule.id}__deadline"
            rs.definition[dname] = {
                "pri": rule.index + 1,
                "all": [{"m": dparts[0] if len(dparts) == 1 else {"$and": dparts}}],
                "run": action_for(dname),
            }
            rs.rule_by_name[dname] = (rule, True)
            names = set(rule.deadline.when.names) if rule.deadline.when else set()
            rs.message_fields[dtype] = names | _all_names(dhoisted)
            rs.hoisted[dtype] = [Hoisted(n, ex.compile_python(node)) for n, node in dhoisted]
    # A catch-all with the lowest salience turns "no rule matched" into a match of its own, so
    # every post ends in an action and consumes its message. The engine relies on that: it posts
    # every message of a ruleset into one long-lived durable_rules session, which must be empty
    # between posts (durable_rules 2.0.28 also crashes when deleting a session whose only
    # message went unmatched).
    handled = sorted(rs.message_fields)
    if handled:
        rs.definition[NO_RULE] = {
            "pri": NO_RULE_SALIENCE,
            "all": [{"m": _type_match(tuple(handled))}],
            "run": action_for(NO_RULE),
        }
    return rs
