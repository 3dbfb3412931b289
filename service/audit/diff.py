"""`rulebook diff A B`: what a proposed rulebook set changes, before anyone adopts it.

A reviewer of a rule change wants three answers, in this order: what changed in the text (rule by
rule: conditions, effects and their arguments, deadlines, the parameters with old and new values,
and the order of rules, because the first matching rule wins); which fairness criteria change
verdict (the audit run on both sets); and, when asked with ``--project``, what the change does to
merchants (the simulator's what-if on the same population and seeds: median margin, exit share and
burden ratios, each with its confidence band).

Rules are matched by family and id; a rule whose id changed shows as removed and added. Expressions
are compared in a normal written form (parameters by name), so re-wrapping a line is not a change,
while a parameter's new value shows both under the parameter and under every rule that reads it.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rules.loader import load_set
from rules.rulebook import EffectCallIR, Rulebook, RulebookSet, RuleIR
from service.audit.finding import SEVERITY_ORDER, AuditReport, Finding
from service.audit.lint import unparse
from service.audit.report import md_code, md_text

DIFF_FORMATS = ("text", "json", "md")

#: The outcomes a reviewer reads first, as (series, cohort, how to read the sign).
HEADLINE_OUTCOMES: tuple[tuple[str, str], ...] = (
    ("median_margin", "Median margin (last day)"),
    ("share_alive", "Exit share: merchants gone by the last day (minus share still trading)"),
    ("refund_burden_ratio", "Refund burden over GMV"),
    ("fee_burden_ratio", "Fee burden over GMV"),
    ("ad_burden_ratio", "Ad burden over GMV"),
    ("take_rate", "Platform take rate"),
    ("refund_burden_ratio_by_cohort", "Refund burden over GMV, by size tier"),
    ("share_alive_by_cohort", "Exit share by size tier (minus share still trading)"),
)


class DiffError(ValueError):
    """A diff that cannot be made: a set that does not load, a projection that cannot run."""


# -- values as people write them ----------------------------------------------------------------
def format_value(value: Any, unit: str | None = None) -> str:
    """A parameter value the way a rulebook writes it: 36h, 5%, 9.9, true."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if unit == "duration" and isinstance(value, int | float):
        # Hours up to a week (36h, 72h, as rulebooks write them), days beyond.
        for size, suffix in ((86400, "d"), (3600, "h"), (60, "m")):
            if value and value % size == 0 and (suffix != "d" or value >= 7 * 86400):
                return f"{int(value // size)}{suffix}"
        return f"{value}s"
    if unit == "fraction" and isinstance(value, int | float):
        return f"{value * 100:g}%"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


# -- the structure of a diff -------------------------------------------------------------------
@dataclass
class Change:
    """One field of a rule or rulebook that differs: what, before, after."""

    what: str
    old: str
    new: str


@dataclass
class ParameterChange:
    family: str
    name: str
    unit: str
    old: str | None      # None: added in B
    new: str | None      # None: removed in B
    location: str        # file:line in B (in A for a removed parameter)


@dataclass
class RuleChange:
    family: str
    rule: str
    status: str            # added, removed, changed
    location: str          # file:line in B (in A for removed rules)
    changes: list[Change] = field(default_factory=list)
    description: str = ""


@dataclass
class VerdictChange:
    """One criterion whose verdict on the set (its worst finding) differs between A and B.

    `old_rules`/`new_rules` are the rules with that worst verdict ("" for the whole set), so a
    violation that moves from one rule to another also shows, as "changed".
    """

    criterion: str
    title: str
    old_verdict: str | None   # None: the criterion was not checked on A
    old_severity: str | None
    old_rules: list[str]
    new_verdict: str | None
    new_severity: str | None
    new_rules: list[str]
    reading: str = ""

    @property
    def direction(self) -> str:
        """better, worse or changed, judged by verdict first, then severity."""
        rank = {"violation": 0, "warning": 1, "not_applicable": 2, "pass": 3, None: 2}
        old, new = rank[self.old_verdict], rank[self.new_verdict]
        if old != new:
            return "better" if new > old else "worse"
        if self.old_verdict in ("violation", "warning") and self.old_severity \
                and self.new_severity:
            o, n = (SEVERITY_ORDER.index(s) for s in (self.old_severity, self.new_severity))
            return "better" if n < o else "worse" if n > o else "changed"
        return "changed"


@dataclass
class OutcomeDelta:
    """B - A for one projected outcome, with its confidence band (paired replications)."""

    outcome: str
    label: str
    cohort: str | None
    unit: str
    a: float | None
    b: float | None
    difference: float | None
    low: float | None
    high: float | None
    significant: bool


@dataclass
class SetDiff:
    a: dict[str, str]
    b: dict[str, str]
    metadata: list[RuleChange] = field(default_factory=list)   # per rulebook: version, dates
    parameters: list[ParameterChange] = field(default_factory=list)
    rules: list[RuleChange] = field(default_factory=list)
    verdicts: list[VerdictChange] | None = None
    verdicts_note: str = ""
    projection: dict[str, Any] | None = None
    outcomes: list[OutcomeDelta] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return not (self.metadata or self.parameters or self.rules)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.verdicts is not None:
            for item, v in zip(data["verdicts"], self.verdicts, strict=True):
                item["direction"] = v.direction
        return _finite(data)


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- comparing texts ----------------------------------------------------------------------------
def _effect_args(e: EffectCallIR) -> dict[str, str]:
    """Arguments as written; one naming only parameters also shows its value (recall_fee = 0.17)."""
    args = {k: format_value(v) for k, v in e.literals.items()}
    for k, v in e.expressions.items():
        text = unparse(v.node)
        if not v.names and v.params:
            unit = "duration" if e.spec.args[k].kind == "duration" else None
            text += f" = {format_value(v.evaluate({}), unit)}"
        args[k] = text
    return args


def _effects_changes(where: str, old: Sequence[EffectCallIR], new: Sequence[EffectCallIR]) \
        -> list[Change]:
    out: list[Change] = []
    old_names, new_names = [e.name for e in old], [e.name for e in new]
    if old_names != new_names:
        out.append(Change(f"{where} effects", ", ".join(old_names) or "(none)",
                          ", ".join(new_names) or "(none)"))
    new_by_name = {e.name: e for e in new}
    for e in old:
        other = new_by_name.get(e.name)
        if other is None:
            continue
        a, b = _effect_args(e), _effect_args(other)
        for arg in sorted(a.keys() | b.keys()):
            if a.get(arg) != b.get(arg):
                out.append(Change(f"{where} {e.name}.{arg}", a.get(arg, "(default)"),
                                  b.get(arg, "(default)")))
    return out


def _param_reads(rule: RuleIR) -> set[str]:
    from service.audit.lint import _params_of

    return _params_of(rule)


def _rule_changes(a: RuleIR, b: RuleIR, pa: Rulebook, pb: Rulebook) -> list[Change]:
    out: list[Change] = []
    if a.on != b.on:
        out.append(Change("on", ", ".join(a.on), ", ".join(b.on)))
    if unparse(a.when.node) != unparse(b.when.node):
        out.append(Change("when", a.when.text.strip(), b.when.text.strip()))
    out += _effects_changes("then", a.then, b.then)
    da, db = a.deadline, b.deadline
    if da is None and db is not None:
        out.append(Change("deadline", "(none)", f"after {db.after.text}, unless "
                                                f"{', '.join(db.unless)}"))
    elif da is not None and db is None:
        out.append(Change("deadline", f"after {da.after.text}, unless {', '.join(da.unless)}",
                          "(none)"))
    elif da is not None and db is not None:
        after_a, after_b = _constant_after(da.after), _constant_after(db.after)
        if unparse(da.after.node) != unparse(db.after.node) or after_a != after_b:
            out.append(Change("deadline.after", f"{da.after.text} ({after_a})",
                              f"{db.after.text} ({after_b})"))
        if da.unless != db.unless:
            out.append(Change("deadline.unless", ", ".join(da.unless), ", ".join(db.unless)))
        if da.key != db.key:
            out.append(Change("deadline.key", da.key, db.key))
        wa = unparse(da.when.node) if da.when else "(always)"
        wb = unparse(db.when.node) if db.when else "(always)"
        if wa != wb:
            out.append(Change("deadline.when", da.when.text if da.when else "(always)",
                              db.when.text if db.when else "(always)"))
        out += _effects_changes("deadline.then", da.then, db.then)
    for name in sorted(_param_reads(a) & _param_reads(b)):
        old, new = pa.parameters.get(name), pb.parameters.get(name)
        if old != new:
            unit = (pb.parameter_specs.get(name) or pa.parameter_specs[name]).unit
            out.append(Change(f"parameter {name} (read by this rule)", format_value(old, unit),
                              format_value(new, unit)))
    if " ".join(a.description.split()) != " ".join(b.description.split()):
        out.append(Change("description", a.description.strip(), b.description.strip()))
    if a.source != b.source:
        out.append(Change("source", a.source, b.source))
    return out


def _constant_after(expr: Any) -> str:
    try:
        value = expr.evaluate({})
    except Exception:  # an `after` reading the event has no single value
        return "depends on the event"
    return format_value(value, "duration") if value is not None else "depends on the event"


def _parameter_location(rb: Rulebook, name: str) -> str:
    """file:line of a parameter's declaration (the text is parsed again: the IR keeps no marks)."""
    from rules.yamlsource import read_text

    line = read_text(rb.text, rb.file).mark(("parameters", name), key=True).line
    return f"{rb.file}:{line}"


def _order_change(a: Rulebook, b: Rulebook) -> Change | None:
    """The relative order of the rules both versions have (first matching rule wins)."""
    common = {r.id for r in a.rules} & {r.id for r in b.rules}
    old = [r.id for r in a.rules if r.id in common]
    new = [r.id for r in b.rules if r.id in common]
    return Change("rule order", ", ".join(old), ", ".join(new)) if old != new else None


def diff_rulebooks(a: Rulebook | None, b: Rulebook | None, family: str) \
        -> tuple[list[RuleChange], list[ParameterChange], list[RuleChange]]:
    """(metadata changes, parameter changes, rule changes) of one family."""
    meta: list[RuleChange] = []
    params: list[ParameterChange] = []
    rules: list[RuleChange] = []
    if a is None or b is None:
        present = b or a
        assert present is not None
        status = "added" if a is None else "removed"
        meta.append(RuleChange(family, "", status, f"{present.file}:1",
                               [Change("rulebook", "(none)" if a is None else present.file,
                                       present.file if a is None else "(none)")]))
        for r in present.rules:
            rules.append(RuleChange(family, r.id, status, str(r.location),
                                    description=r.description.strip()))
        return meta, params, rules
    m = [Change(k, format_value(getattr(a.metadata, k)), format_value(getattr(b.metadata, k)))
         for k in ("version", "published", "effective", "consulted", "timezone")
         if getattr(a.metadata, k) != getattr(b.metadata, k)]
    order = _order_change(a, b)
    if order:
        m.append(order)
    if m:
        meta.append(RuleChange(family, "", "changed", f"{b.file}:1", m))
    for name in sorted(a.parameter_specs.keys() | b.parameter_specs.keys()):
        sa, sb = a.parameter_specs.get(name), b.parameter_specs.get(name)
        unit = (sb or sa).unit  # type: ignore[union-attr]
        old = format_value(a.parameters[name], sa.unit) if sa else None
        new = format_value(b.parameters[name], sb.unit) if sb else None
        if old != new or (sa and sb and sa.unit != sb.unit):
            params.append(ParameterChange(family, name, unit, old, new,
                                          _parameter_location(b if sb else a, name)))
    ra, rb = {r.id: r for r in a.rules}, {r.id: r for r in b.rules}
    for r in b.rules:
        if r.id not in ra:
            rules.append(RuleChange(family, r.id, "added", str(r.location),
                                    description=r.description.strip()))
            continue
        changes = _rule_changes(ra[r.id], r, a, b)
        if changes:
            rules.append(RuleChange(family, r.id, "changed", str(r.location), changes))
    for r in a.rules:
        if r.id not in rb:
            rules.append(RuleChange(family, r.id, "removed", str(r.location),
                                    description=r.description.strip()))
    return meta, params, rules


def diff_sets(a: RulebookSet, b: RulebookSet) -> SetDiff:
    """The text changes from set A to set B, family by family."""
    out = SetDiff(a={"set": a.id, "revision": a.revision, "path": a.path},
                  b={"set": b.id, "revision": b.revision, "path": b.path})
    for family in sorted(a.rulebooks.keys() | b.rulebooks.keys()):
        meta, params, rules = diff_rulebooks(a.rulebooks.get(family), b.rulebooks.get(family),
                                             family)
        out.metadata += meta
        out.parameters += params
        out.rules += rules
    return out


# -- verdicts -----------------------------------------------------------------------------------
_VERDICT_RANK = {"violation": 0, "warning": 1, "pass": 2, "not_applicable": 3}


def criterion_verdicts(report: AuditReport) -> dict[str, tuple[str, str, list[str], Finding]]:
    """Per criterion: its worst verdict, that verdict's highest severity, the rules with it, and
    the worst finding (for its reading)."""
    by: dict[str, list[Finding]] = {}
    for f in report.findings:
        by.setdefault(f.criterion, []).append(f)
    out = {}
    for criterion, fs in by.items():
        worst = min(fs, key=lambda f: (_VERDICT_RANK.get(f.verdict, 9),
                                       -SEVERITY_ORDER.index(f.severity)))
        # The rules to look at: those a violation or warning falls on (passes need no pointer).
        rules = sorted({f.rule or "" for f in fs if f.verdict == worst.verdict}) \
            if worst.verdict in ("violation", "warning") else []
        out[criterion] = (worst.verdict, worst.severity, rules, worst)
    return out


def verdict_changes(a: AuditReport, b: AuditReport) -> list[VerdictChange]:
    """Criteria whose verdict on the set, its severity, or the rules it falls on differ."""
    va, vb = criterion_verdicts(a), criterion_verdicts(b)
    out = []
    for criterion in sorted(va.keys() | vb.keys()):
        x, y = va.get(criterion), vb.get(criterion)
        if x and y and x[:2] == y[:2] and (x[0] not in ("violation", "warning") or x[2] == y[2]):
            continue
        shown = (y or x)[3]  # type: ignore[index]
        out.append(VerdictChange(
            criterion=criterion, title=shown.title,
            old_verdict=x[0] if x else None, old_severity=x[1] if x else None,
            old_rules=x[2] if x else [],
            new_verdict=y[0] if y else None, new_severity=y[1] if y else None,
            new_rules=y[2] if y else [], reading=shown.reading))
    return out


def _audit_runner() -> Any:
    """The audit runner, or None when this build has none (the diff then omits verdicts)."""
    try:
        module = importlib.import_module("service.audit.audit")
    except ModuleNotFoundError as exc:
        if exc.name in ("service.audit.audit",):
            return None
        raise
    return getattr(module, "audit", None)


def add_verdicts(d: SetDiff, a: RulebookSet, b: RulebookSet,
                 runner: Callable[[RulebookSet], AuditReport] | None = None) -> None:
    """Audit both sets and record the verdict changes (or why they could not be compared)."""
    runner = runner or _audit_runner()
    if runner is None:
        d.verdicts_note = "the audit runner (service.audit.audit) is not available"
        return
    d.verdicts = verdict_changes(runner(a), runner(b))


# -- projection ---------------------------------------------------------------------------------
def _outcome_deltas(comparison: Any) -> list[OutcomeDelta]:
    out = []
    for series, label in HEADLINE_OUTCOMES:
        for d in comparison.differences:
            if d.series != series or d.statistic != "final":
                continue
            sign = -1.0 if series.startswith("share_alive") else 1.0   # alive -> exit share
            name = "exit_share" + series[len("share_alive"):] if sign < 0 else series
            vals = [None if v is None or not math.isfinite(v) else v
                    for v in (d.a, d.b, d.difference, d.low, d.high)]
            a_, b_, diff, low, high = vals
            if sign < 0:  # (+ 0.0 turns -0.0 into 0.0, so "no change" never reads "-0.00")
                a_ = None if a_ is None else 1.0 - a_
                b_ = None if b_ is None else 1.0 - b_
                diff = None if diff is None else -diff + 0.0
                low, high = (None if high is None else -high + 0.0), \
                    (None if low is None else -low + 0.0)
            out.append(OutcomeDelta(name, label, d.cohort, d.unit, a_, b_, diff, low, high,
                                    d.significant))
    return out


def add_projection(d: SetDiff, a: RulebookSet, b: RulebookSet, scenario: str, *, days: int,
                   replications: int, seed: int) -> None:
    """Project both sets on the same scenario and seeds and record the headline deltas."""
    try:
        whatif = importlib.import_module("simulator.whatif")
        run = importlib.import_module("simulator.run")
        scenarios = importlib.import_module("simulator.scenario")
    except ModuleNotFoundError as exc:
        raise DiffError(f"--project needs the simulator's what-if ({exc.name} is not "
                        f"available in this build)") from None
    sc = _load_scenario(scenarios, scenario)
    problem = run.run_problem(sc, days, replications, projections=2)
    if problem is not None:
        raise DiffError(f"{sc.file}: {problem}")
    pa = run.project(a, sc, days, replications, seed)
    pb = run.project(b, sc, days, replications, seed)
    comparison = whatif.compare(pa, pb)
    d.projection = comparison.to_dict()
    d.outcomes = _outcome_deltas(comparison)


def _load_scenario(scenarios: Any, name: str) -> Any:
    from rules.yamlsource import SourceError

    path = Path(name)
    if not path.is_file():
        bundled = Path(scenarios.__file__).resolve().parent / "scenarios" / f"{name}.yaml"
        if name != "default" and not bundled.is_file():
            raise DiffError(f"{name}: no such scenario file (nor a bundled scenario of that "
                            f"name)")
        path = bundled
    try:
        return scenarios.load_scenario(path)
    except SourceError as exc:
        raise DiffError("\n".join(str(v) for v in exc.violations)) from None


# -- entry point --------------------------------------------------------------------------------
def diff(a: str | Path | RulebookSet, b: str | Path | RulebookSet, *, verdicts: bool = True,
         project: str | None = None, days: int = 60, replications: int = 5, seed: int = 1) \
        -> SetDiff:
    """Everything `rulebook diff` reports: text changes, verdict changes, projected deltas."""
    from rules.yamlsource import SourceError

    sets = []
    for side in (a, b):
        if isinstance(side, RulebookSet):
            sets.append(side)
            continue
        try:
            sets.append(load_set(side))
        except SourceError as exc:
            raise DiffError("\n".join(str(v) for v in exc.violations)) from None
    set_a, set_b = sets
    d = diff_sets(set_a, set_b)
    if verdicts:
        add_verdicts(d, set_a, set_b)
    if project:
        add_projection(d, set_a, set_b, project, days=days, replications=replications,
                       seed=seed)
    return d


# -- rendering ----------------------------------------------------------------------------------
def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("fraction", "share"):
        return f"{value * 100:+.2f} pp"
    return f"{value:+,.4g}"


def _level(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.2f}%" if unit in ("fraction", "share") else f"{value:,.4g}"


def _verdict_text(verdict: str | None, severity: str | None) -> str:
    """A verdict with its severity where severity means harm (violations and warnings)."""
    if verdict is None:
        return "(not checked)"
    return f"{verdict} ({severity})" if verdict in ("violation", "warning") else verdict


def render_text(d: SetDiff) -> str:
    lines = [f"diff {d.a['set']} ({d.a['revision']}) -> {d.b['set']} ({d.b['revision']})"]
    if d.unchanged:
        lines.append("no changes in the rule text")
    for m in d.metadata:
        lines.append(f"{m.family}: rulebook {m.status}")
        lines += [f"  {c.what}: {c.old} -> {c.new}" for c in m.changes]
    if d.parameters:
        lines.append("parameters:")
        for p in d.parameters:
            lines.append(f"  {p.family}.{p.name}: {p.old or '(none)'} -> {p.new or '(none)'}")
    for r in d.rules:
        lines.append(f"{r.status:8} {r.family}/{r.rule}  ({r.location})")
        if r.description:
            lines.append(f"  {r.description}")
        lines += [f"  {c.what}: {c.old} -> {c.new}" for c in r.changes]
    lines += _verdict_lines(d)
    if d.outcomes:
        lines.append(f"projected on {d.projection['scenario'] if d.projection else '?'} "
                     f"(B - A, {int((d.projection or {}).get('confidence', 0.95) * 100)}% band):")
        for o in d.outcomes:
            who = o.cohort or "all merchants"
            band = f"[{_num(o.low, o.unit)}, {_num(o.high, o.unit)}]"
            mark = " *" if o.significant else ""
            lines.append(f"  {o.outcome} ({who}): {_level(o.a, o.unit)} -> {_level(o.b, o.unit)}"
                         f", change {_num(o.difference, o.unit)} {band}{mark}")
        lines.append("  * the band excludes zero")
    return "\n".join(lines) + "\n"


def _verdict_lines(d: SetDiff) -> list[str]:
    if d.verdicts is None:
        return [f"criteria: not compared ({d.verdicts_note})"] if d.verdicts_note else []
    if not d.verdicts:
        return ["criteria: no verdict changes"]
    out = ["criteria whose verdict changes:"]
    for v in d.verdicts:
        out.append(f"  {v.direction:7} {v.criterion}: "
                   f"{_verdict_text(v.old_verdict, v.old_severity)}{_rules_text(v.old_rules)}"
                   f" -> {_verdict_text(v.new_verdict, v.new_severity)}"
                   f"{_rules_text(v.new_rules)}")
    return out


def _rules_text(rules: Sequence[str]) -> str:
    named = [r for r in rules if r]
    return f" [{', '.join(named)}]" if named else ""


def _md_rules(rules: Sequence[str]) -> str:
    named = [r for r in rules if r]
    return (" on " + ", ".join(md_code(r) for r in named)) if named else ""


def render_md(d: SetDiff) -> str:
    lines = [f"# Rule change: {md_code(d.a['set'])} → {md_code(d.b['set'])}", "",
             f"Revisions {md_code(d.a['revision'])} → {md_code(d.b['revision'])}.", ""]
    if d.verdicts is not None:
        lines += ["## Criteria whose verdict changes", ""]
        if d.verdicts:
            lines += ["| Criterion | Before | After | Direction |", "|---|---|---|---|"]
            for v in d.verdicts:
                lines.append(f"| {md_text(v.title)} ({md_code(v.criterion)}) | "
                             f"{md_text(_verdict_text(v.old_verdict, v.old_severity))}"
                             f"{_md_rules(v.old_rules)} | "
                             f"{md_text(_verdict_text(v.new_verdict, v.new_severity))}"
                             f"{_md_rules(v.new_rules)} | {v.direction} |")
        else:
            lines.append("No verdict changes.")
        lines.append("")
    elif d.verdicts_note:
        lines += [f"Criteria were not compared: {md_text(d.verdicts_note)}.", ""]
    if d.outcomes and d.projection:
        lines += [f"## Projected outcomes ({md_text(d.projection['scenario'])}, "
                  f"{d.projection['days']} days, {d.projection['replications']} paired "
                  f"replications)", "",
                  "| Outcome | Who | A | B | B − A | Band |", "|---|---|---:|---:|---:|---|"]
        for o in d.outcomes:
            lines.append(f"| {md_text(o.label)} | {md_text(o.cohort or 'all merchants')} | "
                         f"{_level(o.a, o.unit)} | {_level(o.b, o.unit)} | "
                         f"{_num(o.difference, o.unit)}{' **' if o.significant else ''} | "
                         f"{_num(o.low, o.unit)} … {_num(o.high, o.unit)} |")
        lines += ["", "** the band excludes zero.", ""]
    lines += ["## Text changes", ""]
    if d.unchanged:
        lines.append("No changes in the rule text.")
    if d.parameters:
        lines += ["| Parameter | Before | After |", "|---|---|---|"]
        for p in d.parameters:
            lines.append(f"| {md_code(p.family + '.' + p.name)} | {md_text(p.old or '(none)')} "
                         f"| {md_text(p.new or '(none)')} |")
        lines.append("")
    for r in [*d.metadata, *d.rules]:
        title = f"{r.family}/{r.rule}" if r.rule else f"{r.family} rulebook"
        lines.append(f"### {md_text(r.status.capitalize())}: {md_code(title)} "
                     f"({md_code(r.location)})")
        lines.append("")
        if r.description:
            lines += [md_text(r.description), ""]
        for c in r.changes:
            lines.append(f"- **{md_text(c.what)}**: {md_code(c.old)} → {md_code(c.new)}")
        if r.changes:
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def render(d: SetDiff, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(d.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "md":
        return render_md(d)
    if fmt == "text":
        return render_text(d)
    raise DiffError(f"unknown diff format '{fmt}': use one of {', '.join(DIFF_FORMATS)}")


def worsened(d: SetDiff, threshold: str) -> list[VerdictChange]:
    """Verdict changes that make a violation at or above `threshold` severity appear or worsen."""
    if not d.verdicts:
        return []
    return [v for v in d.verdicts if v.direction == "worse" and v.new_verdict == "violation"
            and v.new_severity is not None
            and SEVERITY_ORDER.index(v.new_severity) >= SEVERITY_ORDER.index(threshold)]

