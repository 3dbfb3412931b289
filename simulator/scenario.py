"""The population a projection runs on, as policy staff write it: a YAML scenario file.

Every number carries its `source`: the DOMAIN figure it comes from, or "assumption: ..." with the
reason, so a reader can tell the field evidence from the modeller's choices and change either.
A scenario file is checked whole (structure, types, ranges) and every error names
``file:line:column`` and the key, in the way rulebook files are checked (`rules.yamlsource`).

A leaf value is written ``{value: 0.1, source: "..."}``. Sections:
  scenario     name, description, start date of the simulated calendar
  groups       product groups: sellers, unit cost, shipping, daily search impressions
  tiers        small / medium / large: share, scale, cost advantage, cash buffer, fixed cost,
               refund-claim response capacity per day
  population   initial margin band, quality band, cost spread, initial burden estimate
  demand       click-through rate, conversion, quality effect, position bias
  ads          ad budget share of revenue and the CPC the merchant budgets with
  web_price    the competitors' (whole-web) lowest price process
  auto_follow  enrolment, follow and dismissal probabilities, leaving attempts
  refunds      refund-only claim rate, evidence, intervention, review and escalation
  appeals      appeal propensity, daily appeal cap, human-review requests, success rates
  adaptation   quality and cost cuts when margins are squeezed
  exit         loss run that ends a merchant; entry rate
  output       sample size for percentile and Gini estimates
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from rules.yamlsource import Document, SourceError, Violation, format_path, read_file, read_text

DEFAULT_SCENARIO = Path(__file__).parent / "scenarios" / "default.yaml"
TIERS = ("small", "medium", "large")

T = TypeVar("T")
Source = Annotated[str, StringConstraints(min_length=3, max_length=2000)]


class _Strict(BaseModel):
    # .inf and .nan are YAML floats; no scenario value means them, and the model would run on
    # and report NaN series
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Sourced(_Strict, Generic[T]):
    """A value and where it comes from."""

    value: T
    source: Source


Frac = Annotated[float, Field(ge=0.0, le=1.0)]
Pos = Annotated[float, Field(gt=0.0)]
NonNeg = Annotated[float, Field(ge=0.0)]
Count = Annotated[int, Field(ge=1, le=10_000_000)]


def _float(v: Any) -> Any:
    """Integers are fine where a number is asked for (YAML writes 12 for 12.0); one past
    float64's range becomes an infinity, which the field's check refuses as it refuses
    `.inf` (no float is that large)."""
    if isinstance(v, int) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    return v


class FracV(Sourced[Frac]):
    pass


class PosV(Sourced[Pos]):
    pass


class NonNegV(Sourced[NonNeg]):
    pass


class CountV(Sourced[Count]):
    pass


class NonNegCountV(Sourced[Annotated[int, Field(ge=0, le=10_000)]]):
    pass


class Meta(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
    description: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    start: str = Field(description="first simulated day, ISO date, in the rulebooks' time zone")


class Group(_Strict):
    """One product group: sellers of the same item, ranked against each other."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    sellers: CountV
    unit_cost: PosV
    shipping_cost: NonNegV
    daily_impressions: PosV
    channel_impressions_share: FracV


class Tier(_Strict):
    share: FracV
    scale: PosV
    cost_factor: PosV
    cash_buffer_days: NonNegV
    fixed_cost_share: NonNegV
    response_capacity: NonNegCountV


class Tiers(_Strict):
    small: Tier
    medium: Tier
    large: Tier


class Population(_Strict):
    initial_margin_low: FracV
    initial_margin_high: FracV
    initial_burden_ratio: FracV
    quality_low: FracV
    quality_high: FracV
    cost_spread: NonNegV
    promo_signup_markup: NonNegV


class Demand(_Strict):
    click_through_rate: FracV
    conversion: FracV
    quality_conversion_elasticity: NonNegV
    position_bias_exponent: NonNegV


class Ads(_Strict):
    budget_share: FracV
    cost_per_click: PosV


class WebPrice(_Strict):
    start_ratio: PosV
    cut_probability: FracV
    cut_depth_low: FracV
    cut_depth_high: FracV
    rebound: NonNegV
    floor_ratio: PosV


class AutoFollow(_Strict):
    enrolled_share: FracV
    accidental_enrol_probability: FracV
    follow_probability: FracV
    follow_probability_step: FracV
    dismiss_probability: FracV
    leave_attempt_probability: FracV
    leave_code_success: FracV
    leave_margin_threshold: Sourced[float]


class Refunds(_Strict):
    claim_rate: FracV
    lacking_evidence_share: FracV
    quality_complaint_elasticity: NonNegV
    intervention_share: FracV
    escalation_after_rejection: FracV
    automated_review_grant_share: FracV
    review_grants_with_return: Sourced[bool]


class Appeals(_Strict):
    propensity: FracV
    max_per_day: NonNegCountV
    human_review_request_share: FracV
    automated_success: FracV
    human_success: FracV


class Adaptation(_Strict):
    margin_threshold: Sourced[float]
    probability: FracV
    quality_step: FracV
    quality_floor: FracV
    cost_share_of_quality: FracV
    reprice_below: Sourced[float]
    reprice_to: FracV


class Exit(_Strict):
    loss_days: CountV
    entry_probability: FracV


class Output(_Strict):
    percentile_sample: CountV


class ScenarioFile(_Strict):
    scenario: Meta
    groups: list[Group] = Field(min_length=1, max_length=10_000)
    tiers: Tiers
    population: Population
    demand: Demand
    ads: Ads
    web_price: WebPrice
    auto_follow: AutoFollow
    refunds: Refunds
    appeals: Appeals
    adaptation: Adaptation
    exit: Exit
    output: Output


#: Fields that must stay integers even when written as e.g. `40.0` is refused: counts.
_INT_FIELDS = {"sellers", "response_capacity", "max_per_day", "loss_days", "percentile_sample"}


def _coerce(data: Any) -> Any:
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            if k in _INT_FIELDS:
                out[k] = v
            elif k == "value":
                out[k] = _float(v)
            else:
                out[k] = _coerce(v)
        return out
    if isinstance(data, list):
        return [_coerce(v) for v in data]
    return data


@dataclass(frozen=True)
class Scenario:
    """A checked scenario: plain values for the model, the sources for the report."""

    name: str
    file: str
    model: ScenarioFile

    @property
    def start(self) -> dt.date:
        """The first simulated day (midnight in the rulebooks' time zone)."""
        return dt.date.fromisoformat(self.model.scenario.start)

    @property
    def tiers(self) -> tuple[str, ...]:
        return TIERS

    def value(self, dotted: str) -> Any:
        """The value at a dotted path, e.g. ``refunds.claim_rate`` or ``groups.0.unit_cost``."""
        node: Any = self.model
        for part in dotted.split("."):
            node = node[int(part)] if part.isdigit() else getattr(node, part)
        return node.value if isinstance(node, Sourced) else node

    def sources(self) -> dict[str, str]:
        """Every value's dotted path and source, for reports and sensitivity tables."""
        out: dict[str, str] = {}

        def walk(node: Any, prefix: str) -> None:
            if isinstance(node, Sourced):
                out[prefix] = node.source
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(getattr(node, name), f"{prefix}.{name}" if prefix else name)
            elif isinstance(node, list):
                for i, item in enumerate(node):
                    walk(item, f"{prefix}.{i}")

        walk(self.model, "")
        return out

    def with_values(self, overrides: Mapping[str, Any]) -> Scenario:
        """A copy with some values replaced (calibration and sensitivity), checked again."""
        data = self.model.model_dump()
        for dotted, new in overrides.items():
            node: Any = data
            parts = dotted.split(".")
            try:
                for part in parts:
                    node = node[int(part)] if part.isdigit() else node[part]
            except (KeyError, IndexError, ValueError):
                raise KeyError(f"scenario {self.name!r} has no value {dotted!r}") from None
            if not (isinstance(node, dict) and "value" in node):
                raise KeyError(f"{dotted!r} is a section, not a value")
            node["value"] = new
            if "source" in node and not str(node["source"]).startswith("override"):
                node["source"] = f"override of {node['source']}"
        try:
            model = ScenarioFile.model_validate(_coerce(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: "
                f"{e['ctx']['error'] if e['type'] == 'value_error' else e['msg']}"
                for e in exc.errors(include_url=False))
            raise ValueError(f"override makes scenario {self.name!r} invalid: {problems}"
                             ) from None
        _check_semantics(model, None)
        return Scenario(self.name, self.file, model)


def _check_semantics(model: ScenarioFile, doc: Document | None) -> None:
    errors: list[tuple[tuple[str | int, ...], str]] = []
    shares = [getattr(model.tiers, t).share.value for t in TIERS]
    if not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        errors.append((("tiers", "small", "share", "value"),
                       f"tier shares add up to {sum(shares):g}, not 1"))
    pairs = [
        (("population", "initial_margin_low"), ("population", "initial_margin_high")),
        (("population", "quality_low"), ("population", "quality_high")),
        (("web_price", "cut_depth_low"), ("web_price", "cut_depth_high")),
    ]
    for lo, hi in pairs:
        a = getattr(getattr(model, lo[0]), lo[1]).value
        b = getattr(getattr(model, hi[0]), hi[1]).value
        if a > b:
            errors.append(((*lo, "value"), f"{lo[1]} ({a:g}) is above {hi[1]} ({b:g})"))
    p = model.population
    if p.initial_margin_high.value + p.initial_burden_ratio.value >= 1.0:
        errors.append((("population", "initial_margin_high", "value"),
                       "initial margin plus burdens must stay below 1"))
    names = [g.name for g in model.groups]
    for i, name in enumerate(names):
        if name in names[:i]:
            errors.append((("groups", i, "name"), f"duplicate product group '{name}'"))
    try:
        dt.date.fromisoformat(model.scenario.start)
    except ValueError:
        errors.append((("scenario", "start"), f"'{model.scenario.start}' is not a date like "
                                              "2024-07-01"))
    if not errors:
        return
    if doc is None:
        raise ValueError("; ".join(f"{format_path(p)}: {m}" for p, m in errors))
    raise SourceError([doc.violation(p, m) for p, m in errors])


def _violations(doc: Document, exc: ValidationError) -> list[Violation]:
    out: list[Violation] = []
    seen: set[tuple[int, int, str]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        kind = err["type"]
        if kind == "extra_forbidden":
            v = doc.violation(loc, f"unknown key '{loc[-1]}'", key=True)
        elif kind == "missing":
            v = doc.violation(loc[:-1], f"missing key '{loc[-1]}'", key=True)
        else:
            v = doc.violation(loc, err["msg"])
        k = (v.line, v.column, v.path)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def load_document(doc: Document) -> Scenario:
    """Check a located document and build the Scenario, or raise SourceError with every error."""
    if not isinstance(doc.data, dict):
        raise SourceError([doc.violation((), "a scenario file is a mapping with keys "
                                             + ", ".join(ScenarioFile.model_fields))])
    try:
        model = ScenarioFile.model_validate(_coerce(doc.data))
    except ValidationError as exc:
        raise SourceError(_violations(doc, exc)) from None
    _check_semantics(model, doc)
    return Scenario(model.scenario.name, doc.file, model)


def load_scenario_text(text: str, file: str = "<scenario>") -> Scenario:
    return load_document(read_text(text, file))


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Load a scenario file; without a path, the bundled default scenario."""
    p = Path(path) if path is not None else DEFAULT_SCENARIO
    return load_document(read_file(p, str(path) if path is not None else "default.yaml"))


__all__ = ["DEFAULT_SCENARIO", "TIERS", "Scenario", "SourceError", "load_scenario",
           "load_scenario_text"]
