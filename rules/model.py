"""The shape of a rulebook file, as policy staff write it.

These pydantic models are the structural half of validation (keys, types, required fields) and
the source of the published JSON Schema; the semantic half (expressions, effects, names) lives in
`rules.loader`. Unknown keys are errors, because a misspelt key silently ignored is a rule that
silently does not apply.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from rules.expression.parser import finite_number

FAMILIES = ("ranking", "auto_follow", "refund", "appeal", "commission")
Family = Literal["ranking", "auto_follow", "refund", "appeal", "commission"]

UNITS = (
    "yuan",
    "yuan_per_click",
    "fraction",
    "duration",
    "count",
    "impressions",
    "score",
    "flag",
    "label",
)
Unit = Literal[
    "yuan", "yuan_per_click", "fraction", "duration", "count", "impressions", "score", "flag",
    "label",
]

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Source = Annotated[str, StringConstraints(min_length=3, max_length=2000)]
Expression = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
ParamValue = bool | int | float | str | list[int | float | str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Metadata(_Strict):
    """Who publishes the rulebook, for which family, and when it was announced and took effect.

    `published` and `effective` matter to the audit: the law asks for notice between them.
    """

    platform: Identifier
    family: Family
    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    published: dt.date
    effective: dt.date
    timezone: str = "Asia/Shanghai"
    description: Text
    consulted: bool = Field(
        default=False, description="whether the change was published for comment beforehand"
    )

    @field_validator("published", "effective", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"'{value}' is not a date like 2024-07-01") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value


class Parameter(_Strict):
    """A named number with its unit and where it comes from.

    Durations may be written `36h`, fractions `5%`; every parameter must say its `source`.
    """

    value: ParamValue
    unit: Unit
    source: Source
    description: Text | None = None

    @field_validator("value")
    @classmethod
    def _within_float(cls, value: ParamValue) -> ParamValue:
        # Rules compute in float64: a whole number past its range (1 and 400 zeros) would
        # fail every target (the expression parser refuses such a literal the same way).
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int) and not isinstance(item, bool) and not finite_number(item):
                raise ValueError("this number is too large")
        return value


class EffectCall(BaseModel):
    """One effect: `effect` names it, the other keys are its arguments (see rules.effects)."""

    model_config = ConfigDict(extra="allow", strict=True)

    effect: Identifier


def _number_as_expression(value: Any) -> Any:
    """A plain number where an expression goes (YAML reads `when: 5` as a number): its text,
    which the expression checker then reads (and says, for a condition, that a number is
    not true or false) instead of a type error from both alternatives of the field."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class Deadline(_Strict):
    """Effects that apply on event time after `after`, unless a named event arrives first."""

    after: Expression
    unless: list[Identifier] = Field(min_length=1)
    key: Literal["order", "listing", "appeal", "merchant"]
    when: Expression | None = None
    then: list[EffectCall] = Field(min_length=1)

    @field_validator("after", "when", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        return _number_as_expression(value)


class Rule(_Strict):
    """A rule: on these events, when this holds, do these effects (first matching rule wins)."""

    id: Identifier
    description: Text
    on: list[Identifier] = Field(min_length=1)
    when: Expression | bool = True
    then: list[EffectCall] = Field(min_length=1)
    deadline: Deadline | None = None
    source: Source

    @field_validator("when", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        return _number_as_expression(value)


class RulebookFile(_Strict):
    """A whole rulebook file."""

    rulebook: Metadata
    parameters: dict[Identifier, Parameter] = Field(default_factory=dict)
    rules: list[Rule] = Field(min_length=1)
