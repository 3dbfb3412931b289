"""One criterion held against one rule (or one rulebook set): the unit every report is made of.

Reports (JSON, Markdown, HTML), the gRPC AuditService, `rulebook diff` and the exit code of
`rulebook audit --fail-on` all read findings in this shape, so it is kept plain and serialisable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["violation", "warning", "pass", "not_applicable"]
Severity = Literal["info", "low", "medium", "high", "critical"]
CheckKind = Literal["static", "dynamic", "projected"]

SEVERITY_ORDER: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
VERDICT_ORDER: tuple[str, ...] = ("violation", "warning", "pass", "not_applicable")


@dataclass
class Citation:
    """The law or norm a criterion rests on; ``verified`` is False where the article is unsure."""

    law: str
    article: str
    text: str = ""
    verified: bool = True


@dataclass
class Counterexample:
    """A minimal event sequence showing the harm, confirmed by replaying it through the engine.

    ``events_jsonl`` can be saved to a file and replayed with `rulebook replay`; ``observed`` is
    what the replay produced (e.g. the final price and the below-cost gap) and ``reproduced`` is
    True only if the replay showed the harm.
    """

    events_jsonl: str
    expected: dict[str, Any]
    observed: dict[str, Any]
    reproduced: bool
    replay_command: str = ""


@dataclass
class Finding:
    criterion: str
    title: str
    kind: CheckKind
    verdict: Verdict
    severity: Severity
    rulebook_set: str
    rule: str | None            # "family/rule_id", or None for set-wide findings
    location: str | None        # "rules/books/x/auto_follow.yaml:87", or None
    evidence: dict[str, Any]
    reading: str                # plain-language sentence for policy staff
    citation: Citation
    counterexample: Counterexample | None = None
    series: dict[str, list[float]] = field(default_factory=dict)  # projected checks: values/day

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def severity_at_least(severity: str, threshold: str) -> bool:
    return SEVERITY_ORDER.index(severity) >= SEVERITY_ORDER.index(threshold)


@dataclass
class AuditReport:
    """Everything one audit found about one rulebook set; the JSON report is ``to_dict()``."""

    rulebook_set: str
    revision: str
    path: str
    generated_at: str            # RFC 3339, UTC
    catalogue_revision: str      # hash of the criteria catalogue used
    findings: list[Finding]
    inputs: dict[str, Any] = field(default_factory=dict)   # events file, scenario, parameters

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def worst(self, verdict: str = "violation") -> str | None:
        """The highest severity among findings with this verdict, or None."""
        found = [f.severity for f in self.findings if f.verdict == verdict]
        return max(found, key=SEVERITY_ORDER.index) if found else None
