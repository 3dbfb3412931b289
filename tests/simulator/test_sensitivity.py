"""One-at-a-time sensitivity with common random numbers: known effects come out ranked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from simulator import sensitivity, sweep
from simulator.projection import Projection
from tests.simulator.projection_factory import synthetic_projection

WEIGHTS = {"claim_rate": 0.5, "exit_after_days": -0.01, "cpc": 0.0}


def linear_runner(task: sweep.SweepTask) -> Projection:
    """Every outcome = pattern(seed) + sum of weight x parameter: known effects."""
    params = dict(task.overrides)
    level = sum(WEIGHTS[k] * params.get(k, 0.0) for k in WEIGHTS)
    return synthetic_projection(replications=task.replications, days=task.days, seed=task.seed,
                                level=level)


def test_perturbed_values() -> None:
    assert sensitivity.perturbed_values(10.0, 0.2) == pytest.approx((8.0, 12.0))
    assert sensitivity.perturbed_values(0.0, 0.1) == (-0.1, 0.1)


def test_parameters_are_ranked_by_the_size_of_their_effect() -> None:
    base = {"claim_rate": 0.1, "exit_after_days": 30.0, "cpc": 2.17}
    table = sensitivity.sensitivity("books/x", None, base, days=5, replications=3, seed=11,
                                    step=0.2, runner=linear_runner)
    ranked = table.for_outcome("share_alive")
    # effects: claim_rate 0.5 x 0.04 = 0.02; exit_after_days -0.01 x 12 = -0.12; cpc 0
    assert [e.parameter for e in ranked] == ["exit_after_days", "claim_rate", "cpc"]
    assert [e.rank for e in ranked] == [1, 2, 3]
    exit_, claim, cpc = ranked
    assert (exit_.low_value, exit_.high_value) == pytest.approx((24.0, 36.0))
    assert exit_.effect == pytest.approx(-0.12)
    assert claim.effect == pytest.approx(0.02)
    assert cpc.effect == pytest.approx(0.0, abs=1e-12)
    # common random numbers: the noise cancels exactly, so the band has no width
    assert exit_.effect_high - exit_.effect_low == pytest.approx(0.0, abs=1e-9)
    assert claim.elasticity == pytest.approx(0.02 / claim.outcome_base / 0.4)
    assert claim.outcome_high - claim.outcome_low == pytest.approx(0.02)
    # cohort outcomes are ranked too
    assert table.for_outcome("margin_mean[small]")[0].parameter == "exit_after_days"


def test_sensitivity_keeps_other_overrides_fixed() -> None:
    seen: list[dict[str, float]] = []

    def runner(task: sweep.SweepTask) -> Projection:
        seen.append(dict(task.overrides))
        return linear_runner(task)

    template = sweep.SweepTask("books/x", None, (("cpc", 1.0),), 3, 2, 5)
    sensitivity.analyse({"claim_rate": 0.1}, lambda ts: [runner(t) for t in ts], template)
    assert seen == [{"cpc": 1.0}, {"cpc": 1.0, "claim_rate": pytest.approx(0.08)},
                    {"cpc": 1.0, "claim_rate": pytest.approx(0.12)}]


def test_a_value_the_scenario_does_not_take_is_replaced_by_the_base_value() -> None:
    """A markup of 0 cannot go 20 % down to -0.2: that side is run at 0 (one-sided); a
    parameter neither of whose values the scenario takes is refused by name."""
    seen: list[dict[str, float]] = []

    def runner(task: sweep.SweepTask) -> Projection:
        seen.append(dict(task.overrides))
        return linear_runner(task)

    template = sweep.SweepTask("books/x", None, (), 3, 2, 5)
    table = sensitivity.analyse({"claim_rate": 0.0}, lambda ts: [runner(t) for t in ts],
                                template, admits=lambda name, value: value >= 0.0)
    assert seen == [{}, {"claim_rate": 0.0}, {"claim_rate": pytest.approx(0.2)}]
    [effect] = table.for_outcome("share_alive")
    assert (effect.low_value, effect.high_value) == (0.0, pytest.approx(0.2))
    assert effect.effect == pytest.approx(0.5 * 0.2)
    with pytest.raises(ValueError, match="'claim_rate': the scenario takes neither"):
        sensitivity.analyse({"claim_rate": 0.0}, lambda ts: [], template,
                            admits=lambda name, value: False)


def test_sensitivity_asks_the_scenario_which_values_it_takes() -> None:
    """End to end on the default scenario: its promotion markup is 0 and may not go below,
    so the low run is at 0; the claim rate goes both ways."""
    seen: list[dict[str, float]] = []

    def runner(task: sweep.SweepTask) -> Projection:
        seen.append(dict(task.overrides))
        return linear_runner(task)

    sensitivity.sensitivity("books/x", None, {"population.promo_signup_markup": 0.0,
                                              "refunds.claim_rate": 0.075},
                            days=3, replications=2, seed=1, runner=runner)
    assert seen[1:3] == [{"population.promo_signup_markup": 0.0},
                         {"population.promo_signup_markup": pytest.approx(0.2)}]
    assert seen[3:] == [{"refunds.claim_rate": pytest.approx(0.06)},
                        {"refunds.claim_rate": pytest.approx(0.09)}]


def test_bad_step_and_empty_parameter_list_are_refused() -> None:
    template = sweep.SweepTask("books/x", None, (), 3, 2, 5)
    with pytest.raises(ValueError, match="step"):
        sensitivity.analyse({"a": 1.0}, lambda ts: [], template, step=1.5)
    with pytest.raises(ValueError, match="no parameters"):
        sensitivity.analyse({}, lambda ts: [], template)


@pytest.mark.parametrize("base", [0.1, 2.5e300])
def test_a_step_too_small_to_move_a_value_is_refused_by_name(base: float) -> None:
    """0.1 x (1 -/+ 1e-17) is 0.1 in float64: low and high would be the same run, and the
    elasticity a division by zero."""
    template = sweep.SweepTask("books/x", None, (), 3, 2, 5)
    message = f"'claim_rate': a step of 1e-17 does not move its value {base!r} (low and " \
              f"high are both {base!r})"
    with pytest.raises(ValueError, match=re.escape(message)):
        sensitivity.analyse({"claim_rate": base}, lambda ts: [], template, step=1e-17)


def test_a_one_sided_value_the_step_leaves_in_place_is_refused() -> None:
    """A count of 0 cannot go below 0 (its low side is 0 itself) and the scenario does not
    take its high side: the message says which side is left, not that the step is small."""
    template = sweep.SweepTask("books/x", None, (), 3, 2, 5)
    with pytest.raises(ValueError, match=re.escape(
            "'loss_days': the scenario takes only one side of its value 0 -/+ the step, and a "
            "step of 0.2 does not move that side")):
        sensitivity.analyse({"loss_days": 0}, lambda ts: [], template, step=0.2,
                            admits=lambda name, value: value <= 0)


def test_json_table(tmp_path: Path) -> None:
    table = sensitivity.sensitivity("books/x", None, {"claim_rate": 0.1, "cpc": 2.0}, days=3,
                                    replications=2, seed=1, runner=linear_runner)
    data = json.loads(table.write_json(tmp_path / "sensitivity.json").read_text())
    assert data["step"] == 0.2 and "common random numbers" in data["method"]
    rows = data["outcomes"]["share_alive"]
    assert [r["parameter"] for r in rows] == ["claim_rate", "cpc"]
    assert rows[0]["rank"] == 1


def test_counts_move_by_whole_numbers() -> None:
    assert sensitivity.perturbed_values(30, 0.2) == (24, 36)
    assert sensitivity.perturbed_values(2, 0.2) == (1, 3)
    assert sensitivity.perturbed_values(0, 0.2) == (0, 1)


def test_the_declared_parameters_exist_in_the_default_scenario_and_are_numbers() -> None:
    from simulator.scenario import load_scenario

    scenario = load_scenario()
    known = scenario.sources()
    for name in sensitivity.DEFAULT_PARAMETERS:
        assert name in known, name
        value = scenario.value(name)
        assert isinstance(value, int | float) and not isinstance(value, bool), name
