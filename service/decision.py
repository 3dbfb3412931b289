"""What the engine answers for an event: which rule decided what, at whose cost, and why.

A decision names the rulebook *revision* (a content hash) so that anyone can tell exactly which
text produced it, and its id is derived from the revision, the event and the rule, so replaying a
stream yields the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from rules.effects import PARTIES

#: A hasher that has read "<revision>|", per revision: copying it is cheaper than starting anew
#: (every decision needs an id). They are never updated, only copied, so threads may share them.
_PREFIXES: dict[str | None, Any] = {}


def decision_id(revision: str, event_id: str, rule: str | None, trigger: str) -> str:
    """blake2b (10 bytes) of "<revision>|<event_id>|<rule>|<trigger>", in hex, after "d-"."""
    prefix = _PREFIXES.get(revision)
    if prefix is None:
        if len(_PREFIXES) > 256:
            _PREFIXES.clear()
        prefix = _PREFIXES[revision] = hashlib.blake2b(f"{revision}|".encode(), digest_size=10)
    h = prefix.copy()
    h.update(f"{event_id}|{rule}|{trigger}".encode())
    return f"d-{h.hexdigest()}"


@dataclass(slots=True)
class EffectOutcome:
    effect: str
    args: dict[str, Any]
    amounts: dict[str, Any]
    burden: list[dict[str, Any]]
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"effect": self.effect, "args": self.args, "amounts": self.amounts,
                               "burden": self.burden}
        if self.skipped:
            out["skipped"] = self.skipped
        return out


@dataclass(slots=True)
class Decision:
    decision_id: str
    event_id: str
    event_type: str
    merchant_id: str
    event_time: str
    rulebook: str | None
    revision: str | None
    rule: str | None
    trigger: str  # "event" or "deadline"
    outcome: str  # "applied" or "no_rule_applied"
    effects: list[EffectOutcome] = field(default_factory=list)
    explanation: dict[str, Any] = field(default_factory=dict)
    deadline: dict[str, Any] | None = None
    cancelled_deadlines: list[str] = field(default_factory=list)
    set_id: str | None = None

    @property
    def burden(self) -> dict[str, float]:
        totals = dict.fromkeys(PARTIES, 0.0)
        for eff in self.effects:
            for b in eff.burden:
                totals[b["party"]] += b["amount"]
        return {k: round(v, 6) for k, v in totals.items()}

    @property
    def effect_names(self) -> list[str]:
        return [e.effect for e in self.effects]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision_id": self.decision_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "merchant_id": self.merchant_id,
            "event_time": self.event_time,
            "set": self.set_id,
            "rulebook": self.rulebook,
            "revision": self.revision,
            "rule": self.rule,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "effects": [e.to_dict() for e in self.effects],
            "burden": self.burden,
            "explanation": self.explanation,
        }
        if self.deadline is not None:
            out["deadline"] = self.deadline
        if self.cancelled_deadlines:
            out["cancelled_deadlines"] = self.cancelled_deadlines
        return out
