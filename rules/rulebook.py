"""A checked rulebook: the intermediate form every compile target starts from.

The loader turns a YAML file into these objects only when the whole file is valid, so a target
(durable_rules for the engine, numpy for the simulator) never sees a half-checked rule. Each
expression is kept as text, resolved AST and a ready Python evaluator, because the engine needs the
evaluator for effect arguments and the audit needs the AST.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rules.effects import EffectSpec
from rules.model import Metadata, Parameter


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class CompiledExpr:
    """An expression in all the forms its users need."""

    text: str
    node: Any
    evaluate: Callable[[Mapping[str, Mapping[str, Any]]], Any]
    names: frozenset[str]
    params: frozenset[str]


@dataclass(frozen=True)
class EffectCallIR:
    name: str
    spec: EffectSpec
    literals: Mapping[str, Any]
    expressions: Mapping[str, CompiledExpr]
    location: Location


@dataclass(frozen=True)
class DeadlineIR:
    after: CompiledExpr
    unless: tuple[str, ...]
    key: str
    when: CompiledExpr | None
    then: tuple[EffectCallIR, ...]


@dataclass(frozen=True)
class RuleIR:
    id: str
    index: int
    description: str
    on: tuple[str, ...]
    when: CompiledExpr
    then: tuple[EffectCallIR, ...]
    deadline: DeadlineIR | None
    source: str
    location: Location


@dataclass(frozen=True)
class Rulebook:
    """One family's rules for one platform, checked and ready to compile."""

    set_id: str
    family: str
    file: str
    text: str
    metadata: Metadata
    parameters: Mapping[str, Any]
    parameter_specs: Mapping[str, Parameter]
    rules: tuple[RuleIR, ...]

    @property
    def id(self) -> str:
        return f"{self.set_id}/{self.family}"

    @cached_property
    def revision(self) -> str:
        """Content hash: a decision names the exact text that produced it."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    @cached_property
    def event_types(self) -> tuple[str, ...]:
        """Event types this rulebook must see: those its rules listen to or deadlines wait for."""
        seen: dict[str, None] = {}
        for rule in self.rules:
            for t in rule.on:
                seen[t] = None
            if rule.deadline:
                for t in rule.deadline.unless:
                    seen[t] = None
        return tuple(seen)

    def rule(self, rule_id: str) -> RuleIR:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


@dataclass(frozen=True)
class RulebookSet:
    """The rulebooks of one platform version (one directory), evaluated together."""

    id: str
    path: str
    rulebooks: Mapping[str, Rulebook] = field(default_factory=dict)

    @property
    def timezone(self) -> str:
        zones = {rb.metadata.timezone for rb in self.rulebooks.values()}
        return next(iter(zones)) if zones else "UTC"

    @cached_property
    def revision(self) -> str:
        """Hash over the set's rulebook revisions: names the exact texts of the whole set."""
        h = hashlib.sha256()
        for family in sorted(self.rulebooks):
            h.update(family.encode())
            h.update(self.rulebooks[family].revision.encode())
        return h.hexdigest()[:16]
