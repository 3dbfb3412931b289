"""Which scenario parameters move each outcome most: one-at-a-time perturbation.

For each declared parameter the scenario is run at its base value lowered and raised by a
relative step (default ±20 %), every run with the same seed, so the runs share their random
draws (common random numbers) and the difference between the two is the parameter's effect, not
chance. Per outcome the parameters are ranked by the size of that effect, with a paired
confidence band across replications and an elasticity (relative change of the outcome per
relative change of the parameter) so effects on different outcomes can be read side by side.

One-at-a-time says nothing about interactions between parameters; it answers "which assumption
should we be most careful about", which is what policy staff ask first. The runs are a sweep, so
they can go to a Dask cluster like any other sweep.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator import outputs
from simulator.projection import Projection
from simulator.sweep import INPROCESS, Runner, SweepTask, run_sweep, run_task
from simulator.whatif import DEFAULT_CONFIDENCE, paired_interval

DEFAULT_STEP = 0.2

#: The scenario parameters perturbed by default: the assumptions the field evidence pins down
#: least, and the rule-facing behaviours (claims, following prompts, ads) the outcomes hinge on.
DEFAULT_PARAMETERS = (
    "refunds.claim_rate",
    "refunds.lacking_evidence_share",
    "refunds.intervention_share",
    "auto_follow.enrolled_share",
    "auto_follow.follow_probability",
    "ads.cost_per_click",
    "ads.budget_share",
    "demand.position_bias_exponent",
    "demand.quality_conversion_elasticity",
    "web_price.cut_probability",
    "adaptation.probability",
    "exit.loss_days",
)

#: (series, cohort or None): the outcomes ranked, on the last day of the run.
OUTCOMES: tuple[tuple[str, str | None], ...] = (
    ("share_alive", None),
    ("share_alive_by_cohort", "small"),
    ("share_alive_by_cohort", "large"),
    ("median_margin", None),
    ("margin_mean", "small"),
    ("exposure_gini", None),
    ("take_rate", None),
    ("refund_burden_ratio", None),
    ("below_cost_sales_share", None),
    ("quality_mean", "small"),
)


@dataclass(frozen=True)
class Effect:
    """What moving one parameter from low to high did to one outcome."""

    outcome: str  # "series" or "series[cohort]"
    parameter: str
    rank: int  # 1 = moves this outcome most
    base_value: float
    low_value: float
    high_value: float
    outcome_low: float
    outcome_base: float
    outcome_high: float
    effect: float  # outcome at high minus outcome at low (mean of paired replications)
    effect_low: float
    effect_high: float
    elasticity: float  # (effect / outcome_base) / (relative parameter change); NaN if undefined

    def to_dict(self) -> dict[str, Any]:
        return {k: (outputs._finite_or_none(v) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


@dataclass
class SensitivityTable:
    """Every (outcome, parameter) effect, ranked within each outcome."""

    step: float
    seed: int
    days: int
    replications: int
    confidence: float
    effects: list[Effect] = field(default_factory=list)

    def for_outcome(self, outcome: str) -> list[Effect]:
        return sorted((e for e in self.effects if e.outcome == outcome), key=lambda e: e.rank)

    def outcomes(self) -> list[str]:
        return list(dict.fromkeys(e.outcome for e in self.effects))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": f"one at a time: each parameter at its base value -{self.step:.0%} and "
                      f"+{self.step:.0%} (or at its base value where the scenario does not "
                      "take the other: one-sided), same seed (common random numbers); effect = "
                      "outcome at high - outcome at low on the last day, paired across "
                      "replications",
            "step": self.step, "seed": self.seed, "days": self.days,
            "replications": self.replications, "confidence": self.confidence,
            "outcomes": {o: [e.to_dict() for e in self.for_outcome(o)] for o in self.outcomes()},
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def perturbed_values(base: float, step: float) -> tuple[float, float]:
    """The low and high values of a parameter: ±step relative, or ±step absolute at zero.

    A count (an int, e.g. the days of losses before exit) moves by whole numbers, at least one.
    """
    if isinstance(base, int) and not isinstance(base, bool):
        lo = min(base - 1, round(base * (1.0 - step)))
        hi = max(base + 1, round(base * (1.0 + step)))
        return max(lo, 0), hi
    if base == 0.0:
        return -step, step
    return base * (1.0 - step), base * (1.0 + step)


def _outcome_values(p: Projection, series: str, cohort: str | None) -> np.ndarray | None:
    """Last-day value per replication, or None if the projection lacks the outcome."""
    if series not in p.series:
        return None
    final = outputs.final_values(p.series[series])
    if cohort is None:
        return final if final.ndim == 1 else None
    if cohort not in p.cohorts or final.ndim != 2:
        return None
    return final[:, p.cohorts.index(cohort)]


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def analyse(base_values: Mapping[str, float], run: Callable[[Sequence[SweepTask]],
            Sequence[Projection]], template: SweepTask, *, step: float = DEFAULT_STEP,
            outcomes: Sequence[tuple[str, str | None]] = OUTCOMES,
            confidence: float = DEFAULT_CONFIDENCE,
            admits: Callable[[str, float], bool] | None = None) -> SensitivityTable:
    """Run the base scenario and each parameter low and high; rank effects per outcome.

    ``template`` gives the rulebooks, scenario, days, replications and seed every run shares;
    ``run`` executes a list of tasks and returns their projections in order (in process or on a
    cluster). ``admits(name, value)`` says whether the scenario takes a value: a low or high
    value it does not (below zero for a markup of 0, say) is replaced by the base value, so
    that parameter's effect is one-sided (its `low` or `high` says so); a parameter neither of
    whose values it takes is a ValueError naming it.
    """
    if not 0.0 < step < 1.0:
        raise ValueError("step must be a fraction between 0 and 1, e.g. 0.2 for ±20 %")
    if not base_values:
        raise ValueError("no parameters to perturb")
    names = list(base_values)
    fixed = dict(template.overrides)

    def task(overrides: Mapping[str, float]) -> SweepTask:
        merged = {**fixed, **overrides}
        return SweepTask(template.rulebooks, template.scenario, tuple(sorted(merged.items())),
                         template.days, template.replications, template.seed)

    tasks = [task({})]
    bounds: dict[str, tuple[float, float]] = {}
    for name in names:
        lo, hi = perturbed_values(base_values[name], step)
        if admits is not None:
            lo_ok, hi_ok = admits(name, lo), admits(name, hi)
            if not (lo_ok or hi_ok):
                raise ValueError(f"parameter {name!r}: the scenario takes neither {lo:g} nor "
                                 f"{hi:g} (its value {base_values[name]:g} -/+ the step)")
            if lo_ok != hi_ok and (hi if hi_ok else lo) == base_values[name]:
                raise ValueError(f"parameter {name!r}: the scenario takes only one side of its "
                                 f"value {base_values[name]!r} -/+ the step, and a step of "
                                 f"{step:g} does not move that side")
            lo, hi = (lo if lo_ok else base_values[name]), (hi if hi_ok else base_values[name])
        if lo == hi:  # a step too small to move the value: no effect to measure
            raise ValueError(f"parameter {name!r}: a step of {step:g} does not move its value "
                             f"{base_values[name]!r} (low and high are both {lo!r})")
        bounds[name] = (lo, hi)
        tasks += [task({name: lo}), task({name: hi})]
    projections = list(run(tasks))
    base = projections[0]
    table = SensitivityTable(step=step, seed=template.seed, days=template.days,
                             replications=template.replications, confidence=confidence)
    for series, cohort in outcomes:
        y0 = _outcome_values(base, series, cohort)
        if y0 is None:
            continue
        label = series if cohort is None else f"{series}[{cohort}]"
        rows = []
        for i, name in enumerate(names):
            y_lo = _outcome_values(projections[1 + 2 * i], series, cohort)
            y_hi = _outcome_values(projections[2 + 2 * i], series, cohort)
            assert y_lo is not None and y_hi is not None
            effect, e_lo, e_hi, _ = paired_interval(y_hi - y_lo, confidence)
            base_out = _mean(y0)
            lo, hi = bounds[name]
            b = float(base_values[name])
            rel_change = (hi - lo) / b if b != 0 else math.nan
            elasticity = (effect / base_out / rel_change
                          if base_out and math.isfinite(base_out) and math.isfinite(rel_change)
                          else math.nan)
            rows.append((name, b, lo, hi, _mean(y_lo), base_out, _mean(y_hi), effect, e_lo,
                         e_hi, elasticity))
        rows.sort(key=lambda r: (-abs(r[7]) if math.isfinite(r[7]) else math.inf, r[0]))
        for rank, r in enumerate(rows, start=1):
            table.effects.append(Effect(label, r[0], rank, *r[1:]))
    return table


def sensitivity(rulebooks: str | Path, scenario: str | Path | None,
                base_values: Mapping[str, float], *, days: int, replications: int, seed: int,
                step: float = DEFAULT_STEP, scheduler: str | None = INPROCESS, workers: int = 2,
                runner: Runner = run_task, confidence: float = DEFAULT_CONFIDENCE,
                progress: Callable[[int, int], None] | None = None) -> SensitivityTable:
    """Sensitivity of the default outcomes to ``base_values``' parameters, run as a sweep
    (in this process by default; ``scheduler=None`` for a LocalCluster or an address)."""
    from simulator.scenario import load_scenario

    template = SweepTask(str(rulebooks), None if scenario is None else str(scenario), (), days,
                         replications, seed)
    loaded = load_scenario(scenario)

    def run(tasks: Sequence[SweepTask]) -> list[Projection]:
        return run_sweep(tasks, scheduler=scheduler, workers=workers, runner=runner,
                         progress=progress).projections

    def admits(name: str, value: float) -> bool:
        try:
            loaded.with_values({name: value})
        except KeyError:  # (not the scenario's: the runs themselves will say so)
            return True
        except ValueError:
            return False
        return True

    return analyse(base_values, run, template, step=step, confidence=confidence,
                   admits=admits)
