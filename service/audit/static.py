"""Static checks: fairness criteria held against the rule text of a rulebook set.

Every verdict here is derived from the structure of the rules and their parameters, never from
rule ids or file names: which effects a rule has and with which arguments, what its condition
and its deadline read, and what its expressions give on concrete probe values. Probing means
evaluating a rule's own compiled expressions (the reference semantics of the rule language) on a
scope built from the criterion's example figures, e.g. "with a unit cost of 560 and a competitor
at 549, does the price this effect sets fall below cost?". Where the rulebook does not carry what
a criterion needs (no notice dates, no disclosure flag), the verdict says so (not_applicable or
warning with the reason) instead of guessing.

Rule-level violations carry in `evidence["scenario"]` what `service.audit.counterexample` needs to
build and replay an event sequence that shows the harm.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules import expression as ex
from rules.effects import EFFECTS
from rules.rulebook import CompiledExpr, EffectCallIR, Rulebook, RulebookSet, RuleIR
from rules.yamlsource import read_text
from service.audit.criteria import Criterion, render_reading
from service.audit.finding import Finding
from service.state import new_listing, new_merchant, new_order

PROBE_TIME = dt.datetime(2024, 7, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()

Scope = dict[str, dict[str, Any]]


# -- probing ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Site:
    """Effects that one rule applies at one moment: at once on its event, or at its deadline."""

    rulebook: Rulebook
    rule: RuleIR
    trigger: str                         # "event" or "deadline"
    calls: tuple[EffectCallIR, ...]
    guards: tuple[CompiledExpr, ...]     # conditions that must hold for the effects to apply

    @property
    def ref(self) -> str:
        return f"{self.rulebook.family}/{self.rule.id}"


def sites(rs: RulebookSet, families: Sequence[str] | None = None) -> Iterator[Site]:
    for family in sorted(rs.rulebooks):
        if families is not None and family not in families:
            continue
        rb = rs.rulebooks[family]
        for rule in rb.rules:
            yield Site(rb, rule, "event", rule.then, (rule.when,))
            if rule.deadline is not None:
                guards = (rule.when,) + ((rule.deadline.when,) if rule.deadline.when else ())
                yield Site(rb, rule, "deadline", rule.deadline.then, guards)


def probe_scope(event: Mapping[str, Any] | None = None, merchant: Mapping[str, Any] | None = None,
                listing: Mapping[str, Any] | None = None,
                order: Mapping[str, Any] | None = None) -> Scope:
    """A scope as the engine builds it: default state records with the given values on top."""
    m = new_merchant("probe-merchant")
    m.update(merchant or {})
    li = new_listing("probe-merchant", "probe-listing")
    li.update(listing or {})
    o = new_order("probe-merchant", "probe-order")
    o.update(order or {})
    ev = {"time": PROBE_TIME}
    ev.update(event or {})
    return {"event": ev, "merchant": m, "listing": li, "order": o}


def holds(guards: Sequence[CompiledExpr], scope: Scope) -> bool:
    """True when every guard is definitely true (unknown does not fire a rule)."""
    return all(g.evaluate(scope) is True for g in guards)


def arg(call: EffectCallIR, name: str, scope: Scope) -> Any:
    if name in call.expressions:
        return call.expressions[name].evaluate(scope)
    return call.literals.get(name)


def arg_text(call: EffectCallIR, name: str) -> str:
    if name in call.expressions:
        return call.expressions[name].text
    return repr(call.literals.get(name))


def describe_price(call: EffectCallIR, name: str) -> str:
    """An effect's price argument in words: "the competitor's price" rather than the field."""
    expr = call.expressions.get(name)
    if expr is not None and isinstance(expr.node, ex.Name) \
            and expr.node.path[-1] == "competitor_price":
        return "the competitor's price, with no floor at unit cost"
    return arg_text(call, name)


def first_match(rb: Rulebook, event_type: str, scope: Scope) -> RuleIR | None:
    """The rule that decides an event: the first, in file order, whose condition holds."""
    for rule in rb.rules:
        if event_type in rule.on and rule.when.evaluate(scope) is True:
            return rule
    return None


def price_lines(expr: CompiledExpr, scope: Scope,
                price_names: tuple[str, ...] = ("event.price", "listing.price")) -> list[float]:
    """Values a price is compared against in a condition (the "lines" of price cliffs)."""
    out: list[float] = []
    for node in ex.walk(expr.node):
        if not isinstance(node, ex.Compare) or node.op not in ("<", "<=", ">", ">="):
            continue
        for side, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(side, ex.Name) and side.dotted in price_names \
                    and not (ex.names(other) & set(price_names)):
                value = ex.compile_python(other)(scope)
                if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                    out.append(float(value))
    return sorted(set(out))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _fmt(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"


def hours(seconds: Any) -> float | None:
    n = _num(seconds)
    return None if n is None else n / 3600.0


# -- findings ---------------------------------------------------------------------------------

def make_finding(crit: Criterion, rs: RulebookSet, verdict: str, evidence: dict[str, Any], *,
                 kind: str = "static", rule: RuleIR | None = None, rulebook: Rulebook | None = None,
                 location: str | None = None, template: str | None = None) -> Finding:
    """A finding with its reading filled from the evidence and the criterion's thresholds."""
    values = {**{k: v for k, v in crit.parameters.items()}, **evidence}
    if len(crit.citations) > 1:
        # The finding cites the criterion's first source; the others travel with the evidence.
        evidence.setdefault("other_citations", [
            {"law": c.law, "article": c.article, "verified": c.verified}
            for c in crit.citations[1:]])
    text = template if template is not None else crit.template(verdict, kind)
    ref = f"{rulebook.family}/{rule.id}" if rule is not None and rulebook is not None else None
    where = location or (str(rule.location) if rule is not None else None)
    return Finding(
        criterion=crit.id, title=crit.title, kind=kind, verdict=verdict,  # type: ignore[arg-type]
        severity=crit.severity, rulebook_set=rs.id, rule=ref,  # type: ignore[arg-type]
        location=where, evidence=evidence, reading=render_reading(text, values),
        citation=crit.citation,
    )


_KEY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")


def block_keys(text: str, section: str) -> dict[str, int] | None:
    """Line numbers of the keys of a top-level block mapping (`rulebook:`, `parameters:`).

    Reading positions this way costs a scan of the lines instead of a YAML parse (the audit of a
    set must stay well under a second); None when the section is not a block mapping, and the
    caller then asks the YAML parser.
    """
    lines = text.splitlines()
    head = re.compile(rf"^{section}:\s*(#.*)?$")
    for i, line in enumerate(lines):
        if not head.match(line):
            continue
        out: dict[str, int] = {}
        indent = None
        for j in range(i + 1, len(lines)):
            current = lines[j]
            if not current.strip() or current.lstrip().startswith("#"):
                continue
            depth = len(current) - len(current.lstrip(" "))
            if depth == 0:
                break
            indent = depth if indent is None else indent
            m = _KEY.match(current)
            if depth == indent and m:
                out[m.group(1)] = j + 1
        return out
    return None


def key_line(rb: Rulebook, section: str, key: str) -> int | None:
    """The line of `section.key` in the rulebook's text, or None when it is not there."""
    keys = block_keys(rb.text, section)
    if keys is not None:
        return keys.get(key)
    doc = read_text(rb.text, rb.file)
    data = doc.data.get(section) if isinstance(doc.data, dict) else None
    return doc.mark((section, key)).line if isinstance(data, dict) and key in data else None


def metadata_location(rb: Rulebook, key: str) -> str:
    return f"{rb.file}:{key_line(rb, 'rulebook', key) or key_line(rb, 'rulebook', 'version') or 1}"


def _rulebooks(rs: RulebookSet, crit: Criterion) -> list[Rulebook]:
    return [rs.rulebooks[f] for f in sorted(rs.rulebooks) if f in crit.families]


def _checked(found: list[str]) -> str:
    return ", ".join(found) if found else "none"


# -- pricing ----------------------------------------------------------------------------------

def check_below_cost_forcing(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    ex_ = crit.example
    cost = float(ex_.get("unit_cost", 560))
    price = float(ex_.get("price", 599))
    rival = float(ex_.get("competitor_price", 549))
    tol = float(crit.param("tolerance_yuan"))
    scope = probe_scope(
        event={"competitor_price": rival, "price": rival, "unit_cost": cost, "listing_id": "l"},
        merchant={"auto_follow_enrolled": True},
        listing={"price": price, "unit_cost": cost, "competitor_price": rival,
                 "prompt_pending": True, "prompt_target": rival, "product_group": "g"},
    )
    hits: dict[str, Finding] = {}
    checked: list[str] = []
    rank = {"set_price": 0, "prompt_price_change": 1, "admit_to_channel": 2}
    best: dict[str, int] = {}
    for site in sites(rs, crit.families):
        for call in site.calls:
            if call.name not in rank:
                continue
            checked.append(site.ref)
            evidence = _below_cost_witness(site, call, scope, cost, price, rival, tol)
            if evidence is None or best.get(site.ref, 9) <= rank[call.name]:
                continue
            best[site.ref] = rank[call.name]
            hits[site.ref] = make_finding(crit, rs, "violation", evidence, rule=site.rule,
                                          rulebook=site.rulebook)
    if hits:
        return list(hits.values())
    if not checked:
        return [make_finding(crit, rs, "not_applicable", {})]
    return [make_finding(crit, rs, "pass", {"checked": _checked(sorted(set(checked)))})]


def _below_cost_witness(site: Site, call: EffectCallIR, scope: Scope, cost: float, price: float,
                        rival: float, tol: float) -> dict[str, Any] | None:
    if call.name in ("set_price", "prompt_price_change"):
        if not holds(site.guards, scope):
            return None
        name = "price" if call.name == "set_price" else "target"
        value = _num(arg(call, name, scope))
        if value is None or value >= cost - tol:
            return None
        if call.name == "set_price":
            after = hours(site.rule.deadline.after.evaluate(scope)) \
                if site.trigger == "deadline" and site.rule.deadline else None
            how = ("the platform sets the price itself" +
                   (f" {after:g} hours after a lower price is seen" if after else "") +
                   f", to {describe_price(call, name)}")
        else:
            how = f"a prompt presses the merchant to follow to {describe_price(call, name)}"
        return {"unit_cost": cost, "listing_price": price, "competitor_price": rival,
                "price": round(value, 2), "gap": round(cost - value, 2), "how": how,
                "effect": call.name, "trigger": site.trigger,
                "scenario": {"kind": "follow", "effect": call.name, "trigger": site.trigger,
                             "event_type": site.rule.on[0]}}
    # A channel admission: can its condition hold for a price below the seller's unit cost?
    for line in price_lines(site.rule.when, probe_scope(
            event={"promo_signup_price": 30.0, "unit_cost": 10.0},
            listing={"promo_signup_price": 30.0, "unit_cost": 10.0})):
        unit_cost = round(line * 1.05 + 0.05, 2)
        promo = max(30.0, round(line * 3, 2))
        s = probe_scope(
            event={"price": line, "unit_cost": unit_cost, "quality": 0.8, "listing_id": "l",
                   "product_group": "g", "promo_signup_price": promo},
            listing={"price": line, "unit_cost": unit_cost, "promo_signup_price": promo,
                     "quality": 0.8, "product_group": "g"})
        if not holds(site.guards, s):
            continue
        impressions = _num(arg(call, "impressions", s)) or 0
        channel = arg(call, "channel", s)
        return {"unit_cost": unit_cost, "price": line, "gap": round(unit_cost - line, 2),
                "promo_signup_price": promo, "effect": call.name, "trigger": site.trigger,
                "how": f"only at that price is it admitted to the channel '{channel}' worth "
                       f"{_fmt(impressions)} impressions a day",
                "scenario": {"kind": "channel", "effect": call.name, "trigger": site.trigger,
                             "event_type": "listing_updated", "channel": channel}}
    return None


def _exposure(rb: Rulebook, scope: Scope) -> tuple[RuleIR | None, float, float | None, bool]:
    """(deciding rule, channel impressions, ranking score, excluded from a channel)."""
    rule = first_match(rb, "listing_updated", scope)
    if rule is None:
        return None, 0.0, None, False
    impressions, score, excluded = 0.0, None, False
    for call in rule.then:
        if call.name == "admit_to_channel":
            impressions += _num(arg(call, "impressions", scope)) or 0.0
        elif call.name == "assign_ranking_score":
            score = _num(arg(call, "score", scope))
        elif call.name == "exclude_from_channel":
            excluded = True
    return rule, impressions, score, excluded


def _ordinary_score(rb: Rulebook, scope: Scope) -> tuple[RuleIR | None, float | None]:
    """The score the ordinary ranking gives: the last scoring rule with no channel effect."""
    for rule in reversed(rb.rules):
        if "listing_updated" not in rule.on:
            continue
        names = {c.name for c in rule.then}
        if "assign_ranking_score" in names and not names & {"admit_to_channel",
                                                            "exclude_from_channel"}:
            call = next(c for c in rule.then if c.name == "assign_ranking_score")
            return rule, _num(arg(call, "score", scope))
    return None, None


def _listing_scope(price: float, cost: float, promo: float, quality: float = 0.8) -> Scope:
    return probe_scope(
        event={"price": price, "unit_cost": cost, "quality": quality, "listing_id": "l",
               "product_group": "g", "promo_signup_price": promo},
        listing={"price": price, "unit_cost": cost, "promo_signup_price": promo,
                 "quality": quality, "product_group": "g"})


def _describe_exposure(impressions: float, score: float | None, channel_rule: bool) -> str:
    parts = []
    if impressions:
        parts.append(f"a channel slot worth {_fmt(impressions)} impressions a day")
    else:
        parts.append("no channel slot")
    if score is not None:
        parts.append(f"ranking score {_fmt(round(score, 2))}")
    return " and ".join(parts)


def check_price_cliff(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    step = float(crit.param("price_step_fraction"))
    max_jump = float(crit.param("max_exposure_jump"))
    base_cost = float(crit.example.get("unit_cost", 10.0))
    promo = float(crit.example.get("promo_signup_price", 30.0))
    out: dict[str, Finding] = {}
    reads_price = False
    for rb in _rulebooks(rs, crit):
        for rule in rb.rules:
            if "listing_updated" not in rule.on:
                continue
            lines = price_lines(rule.when, _listing_scope(base_cost, base_cost, promo))
            reads_price = reads_price or bool(lines) or any(
                n in ("event.price", "listing.price") for c in rule.then
                for e in c.expressions.values() for n in e.names)
            for line in lines:
                low, high = round(line, 2), round(line * (1 + step / 2), 2)
                if low <= 0:  # no listing is priced at a line of 0 yuan or below
                    continue
                if high <= low:
                    high = round(low + 0.01, 2)
                cost = min(base_cost, round(low * 0.5, 2))
                r_low, imp_low, s_low, _ = _exposure(rb, _listing_scope(low, cost, promo))
                r_high, imp_high, s_high, excl_high = _exposure(rb, _listing_scope(high, cost,
                                                                                   promo))
                if r_low is None or r_high is None or r_low is r_high:
                    continue
                jump = (imp_low - imp_high) / imp_low if imp_low > 0 else 0.0
                _, ordinary_high = _ordinary_score(rb, _listing_scope(high, cost, promo))
                demoted = excl_high or (s_high is not None and ordinary_high is not None
                                        and s_high < ordinary_high - 1e-9)
                if jump <= max_jump and not demoted:
                    continue
                # Could the rewarded side of the line lie below the seller's unit cost?
                above_cost = round(low * 1.05 + 0.05, 2)
                r_below, imp_below, _, _ = _exposure(rb, _listing_scope(low, above_cost, promo))
                below_cost = r_below is r_low and imp_below > 0
                reasons = []
                if below_cost:
                    reasons.append(f"a seller whose unit cost is {_fmt(above_cost)} can only "
                                   f"get the reward by selling below cost")
                if demoted:
                    reasons.append("the listing just above the line is demoted in the ordinary "
                                   "ranking")
                verdict = "violation" if (below_cost or demoted) else "warning"
                target = r_high if demoted and not imp_low else r_low
                evidence = {
                    "price_in": low, "price_out": high, "step": (high - low) / low,
                    "line": line, "exposure_in": _describe_exposure(imp_low, s_low, True),
                    "exposure_out": _describe_exposure(imp_high, s_high, False),
                    "impressions_in": imp_low, "impressions_out": imp_high,
                    "score_in": s_low, "score_out": s_high, "demoted": demoted,
                    "below_cost_possible": below_cost, "why": "; ".join(reasons),
                    "rule_in": r_low.id, "rule_out": r_high.id,
                    "scenario": {"kind": "cliff", "price_in": low, "price_out": high,
                                 "unit_cost": cost, "promo_signup_price": promo,
                                 "rule_in": r_low.id, "rule_out": r_high.id},
                }
                key = f"{rb.family}/{target.id}"
                prev = out.get(key)
                if prev is None or (prev.verdict == "warning" and verdict == "violation"):
                    out[key] = make_finding(crit, rs, verdict, evidence, rule=target,
                                            rulebook=rb)
    if out:
        return list(out.values())
    return [make_finding(crit, rs, "pass" if reads_price else "not_applicable", {})]


# -- auto-follow ------------------------------------------------------------------------------

_TOGGLE_PROBES = [
    {"enrolled": e, "steps": 1, "verified": v, "via": via, "listing_id": "l"}
    for e in (False, True) for v in (False, True) for via in ("popup", "settings")
]


def check_auto_follow_default_off(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    findings: list[Finding] = []
    asked: list[str] = []
    for site in sites(rs, crit.families):
        if not any(c.name == "enrol_auto_follow" for c in site.calls):
            continue
        others = [t for t in site.rule.on if t != "auto_follow_toggled"]
        if others or site.trigger == "deadline":
            how = (f"on its own deadline after a {site.rule.on[0]} event"
                   if site.trigger == "deadline" else f"when a {others[0]} event arrives")
            findings.append(make_finding(
                crit, rs, "violation", {"how": how, "event_type": site.rule.on[0],
                                        "scenario": {"kind": "enrol_without_request",
                                                     "event_type": site.rule.on[0]}},
                rule=site.rule, rulebook=site.rulebook))
            continue
        leaving = [p for p in _TOGGLE_PROBES if not p["enrolled"]
                   and holds(site.guards, probe_scope(event=p))]
        if leaving:
            findings.append(make_finding(
                crit, rs, "violation",
                {"how": "even when it asked to leave (enrolled: false)",
                 "scenario": {"kind": "enrol_on_leave", "probe": leaving[0]}},
                rule=site.rule, rulebook=site.rulebook))
        else:
            asked.append(site.ref)
    if findings:
        return findings
    if not asked:
        return [make_finding(crit, rs, "not_applicable", {})]
    return [make_finding(crit, rs, "pass", {"rules": _checked(asked)})]


def _code(flag: Any) -> str:
    return "with a verification code" if flag is True else "without a code"


def check_opt_in_opt_out_symmetry(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    joins: list[tuple[Site, float, bool]] = []
    leaves: list[tuple[Site, EffectCallIR, float, bool]] = []
    for site in sites(rs, crit.families):
        for call in site.calls:
            if call.name not in ("enrol_auto_follow", "unenrol_auto_follow", "refuse_unenrol"):
                continue
            probe = probe_scope(event={"enrolled": call.name == "enrol_auto_follow", "steps": 1,
                                       "verified": False, "via": "settings"})
            steps = _num(arg(call, "steps", probe))
            code = arg(call, "verification", probe) is True
            if call.name == "enrol_auto_follow":
                joins.append((site, steps or 1.0, code))
            else:
                leaves.append((site, call, steps or 1.0, code))
    if not joins and not leaves:
        return [make_finding(crit, rs, "not_applicable", {})]
    if not joins or not leaves:
        return [make_finding(crit, rs, "warning", {"in_steps": "?", "out_steps": "?",
                                                   "in_code": "", "out_code": "",
                                                   "refused": ""},
                             template="The rules handle only one direction of enrolment: "
                                      "whether leaving is as easy as joining cannot be read.")]
    in_steps = min(s for _, s, _ in joins)
    in_code = all(c for _, _, c in joins)
    out_steps = max(s for _, _, s, _ in leaves)
    out_code = any(c for _, _, _, c in leaves)
    # A request to leave made the way joining is made (same steps, no code): is it refused?
    same_way = probe_scope(event={"enrolled": False, "steps": int(in_steps),
                                  "verified": in_code, "via": "settings"},
                           merchant={"auto_follow_enrolled": True})
    refusers = [(site, call) for site, call, _, _ in leaves if call.name == "refuse_unenrol"
                and holds(site.guards, same_way)
                and first_match(site.rulebook, "auto_follow_toggled", same_way) is site.rule]
    asymmetric = (out_steps > in_steps + float(crit.param("max_extra_steps"))
                  or (out_code and not in_code) or bool(refusers))
    worst = refusers[0][0] if refusers else max(leaves, key=lambda x: (x[3], x[2]))[0]
    evidence = {"in_steps": _fmt(in_steps), "out_steps": _fmt(out_steps),
                "in_code": _code(in_code), "out_code": _code(out_code),
                "refused": (f"; a request to leave in {_fmt(in_steps)} step(s) "
                            f"{_code(in_code)} is refused") if refusers else "",
                "join_rules": sorted({s.ref for s, _, _ in joins}),
                "leave_rules": sorted({s.ref for s, _, _, _ in leaves})}
    if asymmetric:
        evidence["scenario"] = {"kind": "opt_out", "in_steps": int(in_steps),
                                "in_code": in_code, "refused": bool(refusers)}
        return [make_finding(crit, rs, "violation", evidence, rule=worst.rule,
                             rulebook=worst.rulebook)]
    return [make_finding(crit, rs, "pass", evidence)]


def check_no_reprompt_after_decline(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    findings: list[Finding] = []
    handled: list[str] = []
    any_prompt = False
    scope = probe_scope(event={"listing_id": "l"}, merchant={"auto_follow_enrolled": True},
                        listing={"prompt_pending": True, "price": 599.0, "unit_cost": 560.0,
                                 "competitor_price": 549.0})
    for site in sites(rs, crit.families):
        names = {c.name for c in site.calls}
        any_prompt = any_prompt or "prompt_price_change" in names
        if "prompt_dismissed" not in site.rule.on or site.trigger != "event":
            continue
        handled.append(site.ref)
        dl = site.rule.deadline
        reprompt = dl is not None and any(c.name == "prompt_price_change" for c in dl.then)
        silence = next((c for c in site.calls if c.name == "silence_prompt"), None)
        if not reprompt and silence is None:
            continue
        if reprompt and dl is not None:
            after = hours(dl.after.evaluate(scope))
            call = next(c for c in dl.then if c.name == "prompt_price_change")
            target = f", asking again to follow {describe_price(call, 'target')}"
        else:
            assert silence is not None
            after = hours(arg(silence, "duration", scope))
            target = ""
            # A silence long enough to count as final respects the decline.
            if after is not None and after >= float(crit.param("min_quiet_days")) * 24:
                continue
        findings.append(make_finding(
            crit, rs, "violation",
            {"hours": after or 0.0, "target": target, "silences": silence is not None,
             "deadline_reprompt": reprompt,
             "scenario": {"kind": "reprompt", "hours": after or 0.0, "deadline": reprompt}},
            rule=site.rule, rulebook=site.rulebook))
    findings.extend(_prompt_without_memory(rs, crit))
    if findings:
        return findings
    if not handled and not any_prompt:
        return [make_finding(crit, rs, "not_applicable", {})]
    return [make_finding(crit, rs, "pass", {"rules": _checked(handled)})]


def _prompt_without_memory(rs: RulebookSet, crit: Criterion) -> list[Finding]:
    """Prompt rules that ask again, an hour after a dismissal, for the very offer declined.

    The listing's state after the dismissal is what the set's own dismissal rule leaves (a
    silenced or a closed prompt); the competitor's price has not changed. Asking again then is
    not the platform's timer but a rule with no memory of the decline: a warning.
    """
    out = []
    rival, price, cost = 558.0, 599.0, 560.0
    for rb in _rulebooks(rs, crit):
        state = {"price": price, "unit_cost": cost, "competitor_price": rival,
                 "prompt_pending": True, "prompt_target": rival, "product_group": "g"}
        dismissal = probe_scope(event={"listing_id": "l"},
                                merchant={"auto_follow_enrolled": True}, listing=state)
        rule = first_match(rb, "prompt_dismissed", dismissal)
        if rule is None:
            continue
        for call in rule.then:
            if call.name == "silence_prompt":
                state["prompt_pending"] = False
                state["prompt_silenced_until"] = PROBE_TIME + float(
                    _num(arg(call, "duration", dismissal)) or 0.0)
            elif call.name == "close_prompt":
                state["prompt_pending"] = False
        later = probe_scope(event={"listing_id": "l", "competitor_price": rival,
                                   "time": PROBE_TIME + 3600},
                            merchant={"auto_follow_enrolled": True}, listing=state)
        again = first_match(rb, "competitor_price_observed", later)
        if again is not None and any(c.name == "prompt_price_change" for c in again.then):
            out.append(make_finding(
                crit, rs, "warning", {"hours": 1.0, "declined_rule": rule.id},
                template=f"Under this rule, a merchant who dismissed a prompt to follow "
                         f"{_fmt(rival)} yuan is prompted again an hour later when the same "
                         f"competitor price is seen again: the rule does not remember the "
                         f"decline (it could compare with listing.prompt_target).",
                rule=again, rulebook=rb))
    return out


def check_exposure_penalty_on_decline(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    findings: list[Finding] = []
    max_demotion = float(crit.param("max_demotion"))
    scoring = False
    for site in sites(rs, crit.families):
        names = {c.name for c in site.calls}
        scoring = scoring or "assign_ranking_score" in names
        if set(site.rule.on) & {"prompt_dismissed", "auto_follow_toggled"} and names & {
                "assign_ranking_score", "exclude_from_channel"}:
            findings.append(make_finding(
                crit, rs, "violation",
                {"on": list(site.rule.on),
                 "scenario": {"kind": "decline_penalty", "event_type": site.rule.on[0]}},
                template=f"Under this rule, declining ({', '.join(site.rule.on)}) changes the "
                         "listing's ranking or channel placement.",
                rule=site.rule, rulebook=site.rulebook))
    for rb in _rulebooks(rs, crit):
        for rule in rb.rules:
            names = {c.name for c in rule.then}
            if "listing_updated" not in rule.on or "exclude_from_channel" not in names \
                    or "assign_ranking_score" not in names:
                continue
            base = _listing_scope(20.0, 10.0, 30.0)
            for line in price_lines(rule.when, base):
                price = round(line * 1.1, 2)
                s = _listing_scope(price, round(price * 0.8, 2), 30.0)
                if rule.when.evaluate(s) is not True:
                    continue
                call = next(c for c in rule.then if c.name == "assign_ranking_score")
                penalised = _num(arg(call, "score", s))
                ordinary_rule, ordinary = _ordinary_score(rb, s)
                if penalised is None or ordinary is None or \
                        ordinary - penalised <= max_demotion + 1e-9:
                    continue
                findings.append(make_finding(
                    crit, rs, "violation",
                    {"price": price, "bar": line, "penalised": round(penalised, 2),
                     "ordinary": round(ordinary, 2), "demotion": round(ordinary - penalised, 2),
                     "ordinary_rule": ordinary_rule.id if ordinary_rule else None,
                     "scenario": {"kind": "demotion", "price": price,
                                  "unit_cost": round(price * 0.8, 2),
                                  "promo_signup_price": 30.0}},
                    rule=rule, rulebook=rb))
                break
    if findings:
        return findings
    return [make_finding(crit, rs, "pass" if scoring or rs.rulebooks.get("auto_follow")
                         else "not_applicable", {})]


# -- ranking ----------------------------------------------------------------------------------

def _weights(rb: Rulebook) -> str:
    parts = [f"{k}={v}" for k, v in sorted(rb.parameters.items())
             if rb.parameter_specs[k].unit in ("score", "fraction")]
    return ", ".join(parts) or "none named"


def _flag_check(rs: RulebookSet, crit: Criterion, family: str, flag_param: str,
                what: str) -> list[Finding]:
    rb = rs.rulebooks.get(family)
    if rb is None:
        return [make_finding(crit, rs, "not_applicable", {})]
    flag = crit.param(flag_param)
    evidence = {"flag": flag, what: _weights(rb) if family == "ranking" else _fees(rb)}
    if flag not in rb.parameters:
        return [make_finding(crit, rs, "warning", evidence, location=f"{rb.file}:1")]
    spec_line = key_line(rb, "parameters", flag) or 1
    value = rb.parameters[flag]
    evidence["value"] = value
    verdict = "pass" if value is True else "violation"
    return [make_finding(crit, rs, verdict, evidence, location=f"{rb.file}:{spec_line}")]


def check_ranking_parameters_disclosed(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    return _flag_check(rs, crit, "ranking", "disclosure_flag", "weights")


def check_ranking_not_price_only(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    e = crit.example
    findings: list[Finding] = []
    scoring = False
    for site in sites(rs, crit.families):
        for call in site.calls:
            if call.name != "assign_ranking_score":
                continue
            scoring = True
            witness = _price_only_witness(site.rulebook, site.rule, e)
            price = witness["price"] if witness else float(e.get("price", 599))
            scores = []
            for quality in (0.2, 0.9):
                s = _listing_scope(price, price * 0.9, price * 2, quality)
                s["event"]["competitor_price"] = price
                scores.append(_num(arg(call, "score", s)))
            if None in scores or scores[0] != scores[1]:
                continue
            expr = call.expressions.get("score")
            reads = sorted(expr.names | expr.params) if expr else []
            quality_read = [n for n in reads if n.endswith(".quality")]
            weights = [p for p in (expr.params if expr else ()) if "quality" in p]
            if quality_read:
                note = (f"it reads {', '.join(quality_read)}, but with "
                        + ", ".join(f"{w} = {site.rulebook.parameters[w]}" for w in weights)
                        + " quality counts for nothing") if weights else \
                    "quality has no weight in it"
            else:
                note = f"it reads {', '.join(reads) or 'nothing'} and nothing about quality"
            findings.append(make_finding(
                crit, rs, "violation",
                {"score_text": arg_text(call, "score"), "reads": ", ".join(reads) or "nothing",
                 "quality_note": note,
                 "price": price,
                 "cheaper_price": witness["cheaper_price"] if witness else price - 1,
                 "quality": float(e.get("quality", 0.9)),
                 "cheaper_quality": float(e.get("cheaper_quality", 0.2)),
                 "basis": call.literals.get("basis", ""),
                 **({"scenario": {"kind": "price_only", **witness}} if witness else {})},
                rule=site.rule, rulebook=site.rulebook))
            break
    if findings:
        return findings
    return [make_finding(crit, rs, "pass" if scoring else "not_applicable", {})]


def _promo_scope(price: float, quality: float, promo: float | None) -> Scope:
    """A listing scope with or without a promotion sign-up price."""
    s = _listing_scope(price, round(price * 0.5, 2), promo or 0.0, quality)
    if promo is None:
        s["event"].pop("promo_signup_price")
        s["listing"]["promo_signup_price"] = None
    return s


def _price_only_witness(rb: Rulebook, rule: RuleIR, example: Mapping[str, Any]) \
        -> dict[str, Any] | None:
    """Two listings, the dearer one of better quality, that this rule decides both of."""
    if "listing_updated" not in rule.on:
        return None
    hi_q, lo_q = float(example.get("quality", 0.9)), float(example.get("cheaper_quality", 0.2))
    base = float(example.get("price", 599))
    lines = price_lines(rule.when, _listing_scope(20.0, 10.0, 30.0))
    candidates = [base, *lines, *(round(v * 1.1, 2) for v in lines)]
    for price in candidates:
        cheaper = round(price * (1 - 1 / 600), 2) if price >= 60 else round(price - 0.1, 2)
        for promo in (None, 30.0, round(price * 2, 2)):
            if first_match(rb, "listing_updated", _promo_scope(price, hi_q, promo)) is rule and \
                    first_match(rb, "listing_updated",
                                _promo_scope(cheaper, lo_q, promo)) is rule:
                return {"price": price, "cheaper_price": cheaper, "promo_signup_price": promo,
                        "unit_cost": round(cheaper * 0.5, 2)}
    return None


# -- appeals ----------------------------------------------------------------------------------

def _first_count(guards: Sequence[CompiledExpr], make: Callable[[int], Scope],
                 limit: int = 5000) -> int | None:
    """The smallest count at which the guards hold (counts the rule reads from state)."""
    for n in range(limit + 1):
        if holds(guards, make(n)):
            return n
    return None


def _appeal_scope(filed: int = 0, failed: int = 0, blocked_until: float = 0.0,
                  outcome: str = "rejected", human: bool = False) -> Scope:
    return probe_scope(
        event={"appeal_id": "a", "outcome": outcome, "reviewer": "automated",
               "human_review_requested": human},
        merchant={"appeals_filed_month": filed, "appeals_filed_year": filed,
                  "appeals_failed_month": failed, "appeals_failed_year": failed,
                  "appeal_blocked_until": blocked_until})


def appeal_limits(rs: RulebookSet) -> dict[str, Any]:
    """What the appeal rules allow: the monthly quota and the failures that block, by rule."""
    out: dict[str, Any] = {"quota": None, "quota_rule": None, "blocks": [], "blocked_rule": None}
    for site in sites(rs, ("appeal",)):
        for call in site.calls:
            if call.name == "refuse_appeal" and call.literals.get("reason") == "quota":
                n = _first_count(site.guards, lambda k: _appeal_scope(filed=k))
                if n is not None and (out["quota"] is None or n < out["quota"]):
                    out["quota"], out["quota_rule"] = n, site
            elif call.name == "refuse_appeal" and call.literals.get("reason") == "blocked":
                blocked = _appeal_scope(blocked_until=PROBE_TIME + 86400)
                if holds(site.guards, blocked):
                    out["blocked_rule"] = site
            elif call.name == "block_appeals":
                scope_word = call.literals.get("scope")
                # Failures counted in the month only, or in the year only, whichever it reads.
                reads = site.rule.when.names
                if scope_word == "year" or ("merchant.appeals_failed_year" in reads and \
                        "merchant.appeals_failed_month" not in reads):
                    n = _first_count(site.guards, lambda k: probe_scope(
                        event={"appeal_id": "a", "outcome": "rejected", "reviewer": "automated"},
                        merchant={"appeals_failed_year": k, "appeals_failed_month": min(k, 3)}))
                else:
                    n = _first_count(site.guards, lambda k: _appeal_scope(failed=k))
                if n is not None:
                    out["blocks"].append({"site": site, "failures": n, "scope": scope_word})
    return out


def check_appeal_access_not_capped(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    if "appeal" not in rs.rulebooks:
        return [make_finding(crit, rs, "not_applicable", {})]
    limits = appeal_limits(rs)
    findings = []
    if limits["quota_rule"] is not None:
        q = limits["quota"]
        site = limits["quota_rule"]
        findings.append(make_finding(
            crit, rs, "violation",
            {"how": f"appeal number {q + 1} of a month is refused: a store gets {q} appeals a "
                    f"month", "quota": q,
             "scenario": {"kind": "appeal_quota", "quota": q}},
            rule=site.rule, rulebook=site.rulebook))
    for block in limits["blocks"]:
        n, scope_word, site = block["failures"], block["scope"], block["site"]
        findings.append(make_finding(
            crit, rs, "violation",
            {"how": f"after {n} failed appeals in a {scope_word} the store cannot appeal again "
                    f"that {scope_word}", "failures": n, "scope": scope_word,
             "scenario": {"kind": "appeal_block", "failures": n, "scope": scope_word}},
            rule=site.rule, rulebook=site.rulebook))
    if limits["blocked_rule"] is not None and not limits["blocks"]:
        site = limits["blocked_rule"]
        findings.append(make_finding(
            crit, rs, "violation", {"how": "a blocked store's appeals are refused"},
            rule=site.rule, rulebook=site.rulebook))
    return findings or [make_finding(crit, rs, "pass", {})]


def check_appeal_capacity(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    if "appeal" not in rs.rulebooks:
        return [make_finding(crit, rs, "not_applicable", {})]
    needed = round(float(crit.param("orders_per_day")) * float(crit.param("refund_only_rate"))
                   * float(crit.param("share_without_evidence"))
                   * float(crit.param("days_per_month")))
    limits = appeal_limits(rs)
    monthly = [b for b in limits["blocks"] if b["scope"] == "month"]
    allowed = limits["quota"]
    blocked = ""
    if monthly:
        f = min(b["failures"] for b in monthly)
        blocked = f" (and only {f} if they fail: the store is then blocked for the month)"
    evidence = {"allowed": allowed if allowed is not None else "unlimited", "needed": needed,
                "blocked": blocked, "orders_per_day": crit.param("orders_per_day")}
    if allowed is not None and allowed < needed:
        site = limits["quota_rule"]
        evidence["scenario"] = {"kind": "appeal_quota", "quota": allowed}
        return [make_finding(crit, rs, "violation", evidence, rule=site.rule,
                             rulebook=site.rulebook)]
    if monthly and min(b["failures"] for b in monthly) < needed:
        site = monthly[0]["site"]
        evidence["allowed"] = min(b["failures"] for b in monthly)
        evidence["scenario"] = {"kind": "appeal_block", "failures": evidence["allowed"],
                                "scope": "month"}
        return [make_finding(crit, rs, "violation", evidence, rule=site.rule,
                             rulebook=site.rulebook)]
    return [make_finding(crit, rs, "pass", evidence)]


def check_appeal_human_review(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    findings = []
    rb = rs.rulebooks.get("appeal")
    human_rules: list[str] = []
    if rb is not None:
        scope = _appeal_scope(human=True)
        # The rule that hears an appeal (refusals are judged by appeal_access_not_capped).
        rule = next((r for r in rb.rules if "appeal_filed" in r.on
                     and any(c.name == "accept_appeal" for c in r.then)
                     and r.when.evaluate(scope) is True), None)
        review = None
        if rule is not None:
            # The last acceptance's reviewer hears the appeal (as the simulator reads it).
            review = next((c.literals.get("review") for c in reversed(rule.then)
                           if c.name == "accept_appeal"), None)
        if rule is not None and review == "automated":
            findings.append(make_finding(
                crit, rs, "violation",
                {"review": review, "scenario": {"kind": "appeal_review"}},
                rule=rule, rulebook=rb))
        elif review == "human":
            human_rules.append(f"appeal/{rule.id}")  # type: ignore[union-attr]
    for site in sites(rs, ("refund",)):
        for call in site.calls:
            if call.name == "platform_review" and call.literals.get("review") == "automated":
                witness = next((sc for sc in (refund_scope(a, c, 4.0) for a, c in
                                              ((39.9, 30.0), (599.0, 560.0)))
                                if holds(site.guards, sc)), None)
                evidence: dict[str, Any] = {"review": "automated"}
                if witness is not None and site.trigger == "event" \
                        and site.rule.on == ("platform_intervened",):
                    evidence["scenario"] = {
                        "kind": "refund_review", "amount": witness["order"]["amount"],
                        "unit_cost": witness["order"]["product_cost"], "shipping_cost": 4.0}
                findings.append(make_finding(
                    crit, rs, "violation", evidence,
                    template="Under this rule, a disputed refund claim goes to automated review "
                             "only; no human reviewer decides it.",
                    rule=site.rule, rulebook=site.rulebook))
            elif call.name == "platform_review":
                human_rules.append(site.ref)
    if findings:
        return findings
    if rb is None and not human_rules:
        return [make_finding(crit, rs, "not_applicable", {})]
    return [make_finding(crit, rs, "pass", {"rules": _checked(sorted(set(human_rules)))})]


def _duration_params(expr: CompiledExpr, rb: Rulebook) -> list[tuple[str, float]]:
    return [(p, float(rb.parameters[p])) for p in sorted(expr.params)
            if rb.parameter_specs.get(p) is not None and rb.parameter_specs[p].unit == "duration"]


def check_appeal_window_days(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    rb = rs.rulebooks.get("appeal")
    if rb is None:
        return [make_finding(crit, rs, "not_applicable", {})]
    findings = []
    for site in sites(rs, ("appeal",)):
        for call in site.calls:
            if call.name == "refuse_appeal" and call.literals.get("reason") == "out_of_window":
                windows = _duration_params(site.rule.when, rb)
                if not windows:
                    findings.append(make_finding(
                        crit, rs, "warning", {"days": 0.0},
                        template="Under this rule, appeals out of a window are refused, but the "
                                 "window is not a named duration parameter, so it cannot be read.",
                        rule=site.rule, rulebook=rb))
                    continue
                days = min(v for _, v in windows) / 86400
                verdict = "violation" if days < float(crit.param("min_days")) else "pass"
                refused_at = PROBE_TIME if holds(site.guards, _appeal_scope()) else None
                findings.append(make_finding(
                    crit, rs, verdict,
                    {"days": days, "parameter": windows[0][0],
                     "why": f"An appeal may be filed within {days:g} days.",
                     **({"scenario": {"kind": "appeal_window", "time": refused_at}}
                        if refused_at is not None else {})},
                    rule=site.rule, rulebook=rb))
    return findings or [make_finding(crit, rs, "pass", {
        "why": "No rule refuses an appeal for being late: there is no filing window."})]


def check_appeal_deadline_published(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    rb = rs.rulebooks.get("appeal")
    if rb is None:
        return [make_finding(crit, rs, "not_applicable", {})]
    names = list(crit.param("deadline_parameters"))
    for name in names:
        if name in rb.parameters and rb.parameter_specs[name].unit == "duration":
            days = float(rb.parameters[name]) / 86400
            line = key_line(rb, "parameters", name) or 1
            verdict = "violation" if days > float(crit.param("max_days")) else "pass"
            return [make_finding(crit, rs, verdict, {"days": days, "parameter": name},
                                 location=f"{rb.file}:{line}")]
    return [make_finding(crit, rs, "warning", {"names": " or ".join(names)},
                         location=f"{rb.file}:1")]


# -- refunds ----------------------------------------------------------------------------------

def refund_scope(amount: float, unit_cost: float, shipping: float, *, evidence: bool = False,
                 shipped: bool = True, kind: str = "refund_only") -> Scope:
    return probe_scope(
        event={"order_id": "o", "kind": kind, "evidence_valid": evidence,
               "amount": amount, "requested_by": "buyer"},
        order={"amount": amount, "quantity": 1, "shipping_cost": shipping,
               "product_cost": unit_cost, "shipped": shipped, "refund_status": "awaiting_merchant",
               "refund_kind": kind, "refund_amount": amount,
               "evidence_valid": evidence, "listing_id": "l"},
        listing={"price": amount, "unit_cost": unit_cost, "product_group": "g"})


def _grant_sites(rs: RulebookSet, crit: Criterion) -> Iterator[tuple[Site, EffectCallIR]]:
    for site in sites(rs, ("refund",)):
        for call in site.calls:
            if call.name == "grant_refund":
                yield site, call


def _grants_charged_to_merchant(rs: RulebookSet, crit: Criterion) \
        -> tuple[bool, list[tuple[Site, EffectCallIR, Any]]]:
    """Whether the set grants refunds at all, and the grants the merchant pays for without
    having decided them, with who decided: what both refund-burden criteria judge."""
    grants = list(_grant_sites(rs, crit))
    charged = [(site, call, call.literals.get("decided_by")) for site, call in grants
               if call.literals.get("decided_by") != "merchant"
               and call.literals.get("payer", "merchant") == "merchant"]
    return bool(grants), charged


def _per_site_or_overall(rs: RulebookSet, crit: Criterion, findings: dict[str, Finding],
                         any_grant: bool) -> list[Finding]:
    if findings:
        return list(findings.values())
    return [make_finding(crit, rs, "pass" if any_grant else "not_applicable", {})]


def _refund_example(crit: Criterion) -> tuple[float, float, float]:
    e = crit.example
    return float(e.get("amount", 39.9)), float(e.get("unit_cost", 30)), \
        float(e.get("shipping_cost", 4))


def _grant_loss(call: EffectCallIR, scope: Scope) -> float:
    args = dict(call.literals)
    for name, expr in call.expressions.items():
        args[name] = expr.evaluate(scope)
    burdens, _ = EFFECTS["grant_refund"].burden(args, scope)
    return round(sum(b.amount for b in burdens if b.party == "merchant"), 2)


def _how_granted(site: Site, decided_by: str, scope: Scope) -> str:
    if decided_by == "timeout" and site.rule.deadline is not None:
        after = hours(site.rule.deadline.after.evaluate(scope))
        return f"automatically when the merchant has not answered within {after:g} hours"
    if decided_by == "platform":
        return "at once by platform customer service when the buyer asks for it"
    return f"by the rule itself as soon as the claim arrives ({' or '.join(site.rule.on)})"


def _refund_probes(amount: float, cost: float, shipping: float) -> list[Scope]:
    return [refund_scope(a, c, shipping, shipped=shipped)
            for a, c in ((amount, cost), (599.0, 560.0)) for shipped in (True, False)]


def check_refund_decided_by_merchant(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    amount, cost, shipping = _refund_example(crit)
    findings: dict[str, Finding] = {}
    any_grant, charged = _grants_charged_to_merchant(rs, crit)
    for site, call, decided_by in charged:
        scope = next((s for s in _refund_probes(amount, cost, shipping)
                      if holds(site.guards, s)), None)
        if scope is None:
            continue
        verdict = "warning" if decided_by == "rule" else "violation"
        if site.ref in findings and findings[site.ref].verdict == "violation":
            continue
        findings[site.ref] = make_finding(
            crit, rs, verdict,
            {"how": _how_granted(site, decided_by, scope), "decided_by": decided_by,
             "loss": _grant_loss(call, scope), "trigger": site.trigger,
             "amount": scope["order"]["amount"],
             "scenario": {"kind": "refund_grant", "decided_by": decided_by,
                          "trigger": site.trigger, "amount": scope["order"]["amount"],
                          "shipped": scope["order"]["shipped"],
                          "unit_cost": scope["order"]["product_cost"],
                          "shipping_cost": shipping}},
            rule=site.rule, rulebook=site.rulebook)
    return _per_site_or_overall(rs, crit, findings, any_grant)


_ADVERSE = {"grant_refund", "reject_refund"}


def check_response_window_hours(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    amount, cost, shipping = 39.9, 30.0, 4.0
    scope = refund_scope(amount, cost, shipping)
    findings = []
    asks = []
    for site in sites(rs, ("refund",)):
        if site.trigger != "event" or not any(c.name == "request_merchant_response"
                                              for c in site.calls):
            continue
        asks.append(site)
        dl = site.rule.deadline
        if dl is None:
            continue
        after = hours(dl.after.evaluate(scope)) or 0.0
        kind = next((k for k in ("refund_only", "return_and_refund")
                     if site.rule.when.evaluate(refund_scope(amount, cost, shipping, kind=k))
                     is True), "refund_only")
        adverse = [c for c in dl.then if c.name in _ADVERSE
                   and c.literals.get("payer", "merchant") == "merchant"]
        if adverse:
            verdict = "violation" if after < float(crit.param("min_hours")) else "pass"
            findings.append(make_finding(
                crit, rs, verdict,
                {"hours": after, "why": f"The merchant has {after:g} hours to answer before the "
                                        "claim is decided against it automatically.",
                 "scenario": {"kind": "refund_grant", "decided_by": "timeout",
                              "trigger": "deadline", "amount": amount, "shipped": True,
                              "unit_cost": cost, "shipping_cost": shipping,
                              "claim_kind": kind}},
                rule=site.rule, rulebook=site.rulebook))
        else:
            what = ", ".join(f"{c.name} ({c.literals.get('review', '')})".replace(" ()", "")
                             for c in dl.then)
            findings.append(make_finding(
                crit, rs, "pass",
                {"hours": after, "why": f"An unanswered claim is not decided automatically: "
                                        f"after {after:g} hours it goes to {what}."},
                rule=site.rule, rulebook=site.rulebook))
    if findings:
        violations = [f for f in findings if f.verdict == "violation"]
        return violations or findings[:1]
    if not asks:
        return [make_finding(crit, rs, "not_applicable", {})]
    return [make_finding(crit, rs, "pass", {"why": "No deadline decides an unanswered claim."})]


def check_burden_shift(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    amount, cost, shipping = _refund_example(crit)
    findings: dict[str, Finding] = {}
    any_grant, charged = _grants_charged_to_merchant(rs, crit)
    for site, call, decided_by in charged:
        for scope in (refund_scope(amount, cost, shipping, evidence=False),
                      refund_scope(599.0, 560.0, shipping, evidence=False)):
            if not holds(site.guards, scope):
                continue
            loss = _grant_loss(call, scope)
            if loss <= 0 or site.ref in findings:
                continue
            findings[site.ref] = make_finding(
                crit, rs, "violation",
                {"how": _how_granted(site, decided_by, scope), "loss": loss,
                 "decided_by": decided_by,
                 "scenario": {"kind": "refund_grant", "decided_by": decided_by,
                              "trigger": site.trigger, "amount": scope["order"]["amount"],
                              "shipped": True, "unit_cost": scope["order"]["product_cost"],
                              "shipping_cost": shipping}},
                rule=site.rule, rulebook=site.rulebook)
    return _per_site_or_overall(rs, crit, findings, any_grant)


def check_price_protection_floor(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    amount, cost, shipping = _refund_example(crit)
    findings = []
    any_grant = False
    amount_names = ("order.refund_amount", "order.amount", "event.amount")
    for site, call in _grant_sites(rs, crit):
        any_grant = True
        if call.literals.get("decided_by") == "merchant":
            continue
        base = refund_scope(amount, cost, shipping)
        for guard in site.guards:
            for line in price_lines(guard, base, amount_names):
                below = refund_scope(min(amount, line), min(cost, line * 0.75), shipping)
                above = refund_scope(round(line * 1.5, 2), line, shipping)
                if holds(site.guards, below) and not holds(site.guards, above):
                    findings.append(make_finding(
                        crit, rs, "violation",
                        {"line": line, "amount": _fmt(line),
                         "example_amount": below["order"]["amount"],
                         "scenario": {"kind": "refund_grant",
                                      "decided_by": call.literals.get("decided_by"),
                                      "trigger": site.trigger,
                                      "amount": below["order"]["amount"], "shipped": True,
                                      "unit_cost": below["order"]["product_cost"],
                                      "shipping_cost": shipping}},
                        rule=site.rule, rulebook=site.rulebook))
                    break
            else:
                continue
            break
    if findings:
        return findings
    return [make_finding(crit, rs, "pass" if any_grant else "not_applicable", {})]


# -- governance -------------------------------------------------------------------------------

def _consulted_key(rb: Rulebook) -> bool | None:
    """The `consulted` flag as written, or None when the file does not say."""
    return rb.metadata.consulted if key_line(rb, "rulebook", "consulted") else None


def check_rule_change_notice_days(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    out = []
    for rb in _rulebooks(rs, crit):
        days = (rb.metadata.effective - rb.metadata.published).days
        if days < float(crit.param("min_days_china")):
            verdict = "violation"
        elif days < float(crit.param("min_days_eu")):
            verdict = "warning"
        else:
            verdict = "pass"
        out.append(make_finding(
            crit, rs, verdict,
            {"family": rb.family, "days": days, "published": rb.metadata.published.isoformat(),
             "effective": rb.metadata.effective.isoformat()},
            location=metadata_location(rb, "effective")))
    return out or [make_finding(crit, rs, "not_applicable", {"family": "-"})]


def check_rule_change_consultation(rs: RulebookSet, crit: Criterion, ctx: Context) \
        -> list[Finding]:
    out = []
    for rb in _rulebooks(rs, crit):
        said = _consulted_key(rb)
        verdict = "pass" if said else ("warning" if said is None else "violation")
        where = metadata_location(rb, "consulted" if said is not None else "version")
        out.append(make_finding(crit, rs, verdict, {"family": rb.family, "consulted": said},
                                location=where))
    return out or [make_finding(crit, rs, "not_applicable", {"family": "-"})]


def _fees(rb: Rulebook) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(rb.parameters.items())
                     if rb.parameter_specs[k].unit in ("fraction", "yuan", "yuan_per_click")) \
        or "none named"


def check_fee_itemised(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    return _flag_check(rs, crit, "commission", "itemised_flag", "fees")


def _fee_changes(rs: RulebookSet, history: Sequence[RulebookSet]) -> list[str]:
    """Fee parameters of the commission rulebook that differ from the latest earlier version."""
    rb = rs.rulebooks.get("commission")
    earlier = [h.rulebooks["commission"] for h in history if "commission" in h.rulebooks
               and h.rulebooks["commission"].metadata.effective < rb.metadata.effective] \
        if rb else []
    if not rb or not earlier:
        return []
    prev = max(earlier, key=lambda b: b.metadata.effective)
    return [f"{k} {prev.parameters[k]} -> {v}" for k, v in sorted(rb.parameters.items())
            if k in prev.parameters and prev.parameters[k] != v
            and rb.parameter_specs[k].unit in ("fraction", "yuan", "yuan_per_click")]


def check_fee_change_consulted(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    rb = rs.rulebooks.get("commission")
    if rb is None:
        return [make_finding(crit, rs, "not_applicable", {})]
    said = _consulted_key(rb)
    changes = _fee_changes(rs, ctx.history)
    evidence = {"fees": _fees(rb), "consulted": said, "changes": changes,
                "changed": f", after changing {', '.join(changes)}" if changes else ""}
    verdict = "pass" if said else ("warning" if said is None else "violation")
    where = metadata_location(rb, "consulted" if said is not None else "version")
    return [make_finding(crit, rs, verdict, evidence, location=where)]


def check_take_rate(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    amount = 100.0
    scope = probe_scope(event={"order_id": "o", "listing_id": "l", "quantity": 1,
                               "amount": amount, "shipping_cost": 5.0},
                        order={"amount": amount, "quantity": 1, "shipping_cost": 5.0})
    charged = 0.0
    rules: list[Site] = []
    for site in sites(rs, ("commission",)):
        if site.trigger != "event" or "order_placed" not in site.rule.on \
                or not holds(site.guards, scope):
            continue
        for call in site.calls:
            if call.name == "charge_fee" and call.literals.get("kind") in ("commission",
                                                                          "service"):
                charged += _num(arg(call, "amount", scope)) or 0.0
                rules.append(site)
    if not rules:
        return [make_finding(crit, rs, "not_applicable", {})]
    rate = charged / amount
    margin = float(crit.param("merchant_margin"))
    verdict = "violation" if rate > margin else ("warning" if rate >= margin / 2 else "pass")
    return [make_finding(crit, rs, verdict,
                         {"rate": rate, "of_margin": rate / margin if margin else 0.0,
                          "per_order": charged, "order_amount": amount,
                          "scenario": {"kind": "fee", "amount": amount, "charged": charged}},
                         rule=rules[0].rule, rulebook=rules[0].rulebook)]


def check_rule_stability(rs: RulebookSet, crit: Criterion, ctx: Context) -> list[Finding]:
    if not ctx.history:
        return [make_finding(crit, rs, "not_applicable", {"versions": 1})]
    versions = [*ctx.history, rs]
    max_per_year = float(crit.param("max_changes_per_year"))
    max_fee = float(crit.param("max_fee_change"))
    problems: list[str] = []
    notes: list[str] = []
    per_family: dict[str, Any] = {}
    for family in sorted({f for v in versions for f in v.rulebooks}):
        books = sorted((v.rulebooks[family] for v in versions if family in v.rulebooks),
                       key=lambda b: b.metadata.effective)
        if len(books) < 2:
            continue
        changes = 0
        fee_moves = []
        for prev, cur in itertools.pairwise(books):
            diff = diff_rulebooks(prev, cur)
            if diff["parameters"] or diff["rules"]:
                changes += 1
            for name, (old, new) in diff["parameters"].items():
                unit = cur.parameter_specs[name].unit
                if unit in ("fraction", "yuan_per_click", "yuan") and _num(old) and _num(new):
                    move = abs(float(new) - float(old)) / abs(float(old))
                    fee_moves.append((name, old, new, move, cur.metadata.version))
        span_days = (books[-1].metadata.effective - books[0].metadata.effective).days
        years = max(span_days / 365.25, 1.0)
        rate = changes / years
        per_family[family] = {"versions": len(books), "changes": changes,
                              "changes_per_year": round(rate, 2),
                              "fee_changes": [f"{n} {o} -> {w} ({m:.0%}, {v})"
                                              for n, o, w, m, v in fee_moves]}
        notes.append(f"{family}: {changes} changed version(s) in {span_days} days "
                     f"({rate:.1f} a year)")
        if rate > max_per_year:
            problems.append(f"the {family} rules changed {rate:.1f} times a year, more than "
                            f"{max_per_year:g}")
        for n, o, w, m, v in fee_moves:
            if m > max_fee:
                problems.append(f"{family} parameter {n} went from {o} to {w} in version {v} "
                                f"({m:.0%}, more than {max_fee:.0%})")
    if not per_family:
        return [make_finding(crit, rs, "not_applicable", {"versions": len(versions)})]
    details = ("Across the history: " + "; ".join(problems) + ".") if problems else \
        ("Across the history the rules were stable: " + "; ".join(notes) + ".")
    return [make_finding(crit, rs, "violation" if problems else "pass",
                         {"details": details, "families": per_family,
                          "versions": [v.id for v in versions]})]


def diff_rulebooks(old: Rulebook, new: Rulebook) -> dict[str, Any]:
    """Parameters and rules that differ between two versions of one family."""
    params = {k: (old.parameters.get(k), new.parameters.get(k))
              for k in sorted(set(old.parameters) | set(new.parameters))
              if old.parameters.get(k) != new.parameters.get(k)}

    def shape(rule: RuleIR) -> tuple[Any, ...]:
        def calls(cs: Sequence[EffectCallIR]) -> tuple[Any, ...]:
            return tuple((c.name, tuple(sorted((k, repr(v)) for k, v in c.literals.items())),
                          tuple(sorted((k, e.text) for k, e in c.expressions.items())))
                         for c in cs)
        dl = rule.deadline
        return (rule.on, rule.when.text, calls(rule.then),
                (dl.after.text, dl.unless, dl.key, dl.when.text if dl.when else None,
                 calls(dl.then)) if dl else None)

    old_rules = {r.id: shape(r) for r in old.rules}
    new_rules = {r.id: shape(r) for r in new.rules}
    rules = sorted(k for k in set(old_rules) | set(new_rules)
                   if old_rules.get(k) != new_rules.get(k))
    return {"parameters": params, "rules": rules}


# -- registry ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Context:
    """What a static check may need beyond the set: earlier versions for stability checks."""

    history: tuple[RulebookSet, ...] = ()


StaticCheck = Callable[[RulebookSet, Criterion, Context], list[Finding]]

STATIC_CHECKS: dict[str, StaticCheck] = {
    "below_cost_forcing": check_below_cost_forcing,
    "price_cliff": check_price_cliff,
    "auto_follow_default_off": check_auto_follow_default_off,
    "opt_in_opt_out_symmetry": check_opt_in_opt_out_symmetry,
    "no_reprompt_after_decline": check_no_reprompt_after_decline,
    "exposure_penalty_on_decline": check_exposure_penalty_on_decline,
    "ranking_parameters_disclosed": check_ranking_parameters_disclosed,
    "ranking_not_price_only": check_ranking_not_price_only,
    "appeal_access_not_capped": check_appeal_access_not_capped,
    "appeal_capacity": check_appeal_capacity,
    "appeal_human_review": check_appeal_human_review,
    "appeal_window_days": check_appeal_window_days,
    "appeal_deadline_published": check_appeal_deadline_published,
    "refund_decided_by_merchant": check_refund_decided_by_merchant,
    "response_window_hours": check_response_window_hours,
    "burden_shift": check_burden_shift,
    "price_protection_floor": check_price_protection_floor,
    "rule_stability": check_rule_stability,
    "rule_change_notice_days": check_rule_change_notice_days,
    "rule_change_consultation": check_rule_change_consultation,
    "fee_itemised": check_fee_itemised,
    "fee_change_consulted": check_fee_change_consulted,
    "take_rate": check_take_rate,
}


def run_static(rs: RulebookSet, criteria: Sequence[Criterion],
               history: Sequence[RulebookSet] = ()) -> list[Finding]:
    """Every static check of the given criteria; a criterion with `static` in its checks but no
    check function here is an error in the catalogue, reported rather than skipped."""
    ctx = Context(tuple(history))
    out: list[Finding] = []
    for crit in criteria:
        if "static" not in crit.checks:
            continue
        check = STATIC_CHECKS.get(crit.id)
        if check is None:
            raise ValueError(f"{crit.location}: criterion {crit.id} lists a static check, but "
                             f"none is implemented for it")
        out.extend(check(rs, crit, ctx))
    return out
