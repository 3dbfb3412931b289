"""Rule tests: given these events, expect these decisions and burdens (in the spirit of `opa test`).

A rulebook set keeps its tests in `<set>/tests/*.yaml`. Each case is a short story told in event
time offsets from a start, so policy staff can write one without computing timestamps:

    cases:
      - name: no answer by 36 h, the refund is granted automatically
        start: 2024-07-01T09:00:00+08:00
        merchant: m1
        events:
          - {at: 0h, type: order_placed, order_id: o1, listing_id: l1, quantity: 1,
             amount: 9.9, shipping_cost: 3}
          - {at: 2h, type: order_shipped, order_id: o1}
          - {at: 3h, type: refund_requested, order_id: o1, kind: refund_only,
             evidence_valid: false}
        until: 40h
        expect:
          - {event: 2, rule: refund/refund_only_shipped, trigger: deadline,
             effects: [grant_refund], burden: {merchant: 9.17}}
        totals: {merchant.refund: 9.17}

Keys of an event other than `at`, `id`, `type`, `merchant`, `repeat` and `every` go into its
payload. `repeat: 31, every: 1m` writes 31 such events a minute apart, with ids `<id>-1` to
`<id>-31` and `{n}` in text fields replaced by the number. An expectation's `event` is an event's
index in the list or its id.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rules import expression as ex
from rules.rulebook import RulebookSet
from rules.yamlsource import Document, SourceError, Violation, read_file
from service.decision import Decision
from service.engine import Engine
from service.events import EventError, parse_event


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expectation(_Strict):
    event: int | str
    rule: str | None = None
    trigger: Literal["event", "deadline"] | None = None
    effects: list[str] | None = None
    amounts: dict[str, float | str | bool] | None = None
    burden: dict[Literal["merchant", "platform", "buyer"], float] | None = None
    absent: bool = False


class Case(_Strict):
    name: str
    start: str = "2024-07-01T00:00:00+08:00"
    merchant: str = "m1"
    events: list[dict[str, Any]] = Field(min_length=1)
    until: str | None = None
    expect: list[Expectation] = Field(default_factory=list)
    totals: dict[str, float] = Field(default_factory=dict)
    state: dict[str, Any] = Field(default_factory=dict)


class TestFile(_Strict):
    description: str | None = None
    cases: list[Case] = Field(min_length=1)


@dataclass
class CaseResult:
    file: str
    line: int
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


_COMPOUND = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _duration(text: str | int | float, where: str) -> float:
    """Seconds from `36h`, or a compound like `35h59m` (tests often sit just inside a window)."""
    if isinstance(text, int | float):
        return float(text)
    parts = _COMPOUND.findall(str(text))
    if parts and "".join(a + u for a, u in parts) == str(text).strip():
        return float(sum(float(a) * _UNIT_SECONDS[u] for a, u in parts))
    node = ex.parse(str(text))
    if not isinstance(node, ex.Const) or not isinstance(node.value, int | float):
        raise ValueError(f"{where}: '{text}' is not a duration like 36h")
    return float(node.value)


def _iso(start: dt.datetime, offset: float) -> str:
    return (start + dt.timedelta(seconds=offset)).isoformat()


def build_events(case: Case) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Turn a case's compact events into full event objects.

    Also returns, for each entry of the case's list, the id an expectation's index refers to
    (None for a repeated entry, whose events are named by id).
    """
    start = dt.datetime.fromisoformat(case.start)
    out = []
    index_ids: list[str | None] = []
    for i, raw in enumerate(case.events):
        item = dict(raw)
        at = _duration(item.pop("at", 0), f"events[{i}].at")
        event_id = str(item.pop("id", f"e{i}"))
        etype = item.pop("type", None)
        merchant = str(item.pop("merchant", case.merchant))
        repeat = item.pop("repeat", None)
        every = _duration(item.pop("every", 60), f"events[{i}].every")
        if repeat is None:
            out.append(_event(event_id, etype, merchant, _iso(start, at), item))
            index_ids.append(event_id)
            continue
        index_ids.append(None)
        # `repeat: N` writes N events `every` apart; ids get -1..-N and "{n}" in text fields.
        for n in range(1, int(repeat) + 1):
            payload = {k: v.replace("{n}", str(n)) if isinstance(v, str) else v
                       for k, v in item.items()}
            out.append(_event(f"{event_id}-{n}", etype, merchant,
                              _iso(start, at + (n - 1) * every), payload))
    return out, index_ids


def _event(event_id: str, etype: Any, merchant: str, when: str,
           payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "type": etype, "merchant_id": merchant, "event_time": when,
            "payload": payload}


def _matches(d: Decision, exp: Expectation) -> list[str]:
    """Reasons `d` does not meet `exp` (empty when it does)."""
    why = []
    if exp.rule is not None:
        if exp.rule == "none":
            if d.outcome != "no_rule_applied":
                why.append(f"rule {d.rulebook}:{d.rule}")
        else:
            family_rule = f"{d.rulebook.split('/', 1)[1]}/{d.rule}" if d.rulebook else None
            if exp.rule not in (d.rule, family_rule):
                why.append(f"rule {family_rule}")
    if exp.trigger is not None and d.trigger != exp.trigger:
        why.append(f"trigger {d.trigger}")
    if exp.effects is not None and d.effect_names != exp.effects:
        why.append(f"effects {d.effect_names}")
    if exp.amounts:
        for key, want in exp.amounts.items():
            eff_name, _, field_name = key.partition(".")
            got = None
            for e in d.effects:
                if e.effect == eff_name:
                    got = e.amounts.get(field_name, e.args.get(field_name))
            if not _close(got, want):
                why.append(f"{key} = {got}")
    if exp.burden:
        totals = d.burden
        for party, want in exp.burden.items():
            if not _close(totals.get(party), want):
                why.append(f"burden {party} = {totals.get(party)}")
    return why


def _close(got: Any, want: Any) -> bool:
    if isinstance(want, bool | str) or not isinstance(want, int | float):
        return got == want
    if isinstance(got, int | float) and not isinstance(got, bool):
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-6)
    return False


def run_case(rulebook_set: RulebookSet, case: Case) -> list[str]:
    engine = Engine(rulebook_set)
    try:
        return _run_case(engine, case)
    finally:
        engine.close()


def _run_case(engine: Engine, case: Case) -> list[str]:
    failures: list[str] = []
    raw_events, ids = build_events(case)
    events = []
    for i, raw in enumerate(raw_events):
        try:
            events.append(parse_event(raw))
        except EventError as exc:
            failures.append(f"events[{i}] is not a valid event: {exc}")
    if failures:
        return failures
    decisions = engine.process(events)
    if case.until is not None:
        start = dt.datetime.fromisoformat(case.start)
        decisions += engine.advance_to(start.timestamp() + _duration(case.until, "until"))
        engine.store.flush()
    for exp in case.expect:
        ref = exp.event
        if isinstance(ref, int):
            if not 0 <= ref < len(ids) or ids[ref] is None:
                failures.append(f"expect: event {ref} is not a single event of this case; "
                                "name repeated events by id")
                continue
            event_id = str(ids[ref])
        else:
            event_id = ref
        candidates = [d for d in decisions if d.event_id == event_id]
        reasons = {d.decision_id: _matches(d, exp) for d in candidates}
        hit = [d for d in candidates if not reasons[d.decision_id]]
        label = _describe(exp)
        if exp.absent and hit:
            failures.append(f"event {ref}: expected no decision {label}, got {hit[0].rulebook}:"
                            f"{hit[0].rule}")
        elif not exp.absent and not hit:
            seen = "; ".join(
                f"{d.rulebook or 'no rulebook'}:{d.rule or '-'} ({d.trigger}) differs in "
                f"{', '.join(reasons[d.decision_id])}" for d in candidates
            ) or "no decisions"
            failures.append(f"event {ref}: expected {label}; got {seen}")
    if case.totals:
        merchant = engine.store.merchant(case.merchant)
        burden = merchant.get("_burden") or {}
        for key, want in case.totals.items():
            got = burden.get(key, 0.0)
            if not _close(got, want):
                failures.append(f"total {key}: expected {want}, got {round(got, 6)}")
    if case.state:
        merchant = engine.store.merchant(case.merchant)
        for key, want in case.state.items():
            ns, _, name = key.partition(".")
            if ns != "merchant":
                failures.append(f"state {key}: only merchant.* state can be checked")
                continue
            got = merchant.get(name)
            if not _close(got, want):
                failures.append(f"state {key}: expected {want}, got {got}")
    return failures


def _describe(exp: Expectation) -> str:
    parts = [f"{k}={v}" for k, v in exp.model_dump(exclude_none=True).items()
             if k not in ("event", "absent")]
    return ", ".join(parts) or "a decision"


def load_test_file(path: Path) -> tuple[Document, TestFile]:
    doc = read_file(path)
    try:
        model = TestFile.model_validate(doc.data)
    except ValidationError as exc:
        violations = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            violations.append(doc.violation(loc, err["msg"]))
        raise SourceError(violations) from None
    return doc, model


def find_test_files(path: Path) -> list[tuple[Path, Path]]:
    """(set directory, test file) pairs under a path: a test file, a set, or a tree of sets."""
    if path.is_file():
        return [(path.parent.parent, path)]
    out = []
    for f in sorted(path.rglob("tests/*.yaml")):
        out.append((f.parent.parent, f))
    return out


def run_file(rulebook_set: RulebookSet, path: Path) -> list[CaseResult]:
    doc, model = load_test_file(path)
    results = []
    for i, case in enumerate(model.cases):
        mark = doc.mark(("cases", i))
        result = CaseResult(str(path), mark.line, case.name)
        try:
            result.failures = run_case(rulebook_set, case)
        except (ValueError, ex.ExpressionError) as exc:
            result.failures = [f"bad case: {exc}"]
        results.append(result)
    return results


__all__ = ["CaseResult", "SourceError", "Violation", "find_test_files", "run_file"]
