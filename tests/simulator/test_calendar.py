"""The run's calendar (`simulator.population.Calendar`): how far it reaches, and runs at its end.

Python's dates end with 9999-12-31, and each day's step reads the first day of the next month
and year (appeal blocks run to them), so the last day of a run must fall in 9998 at the latest.
A run that would go further is refused before it starts, with the reason
(`calendar_problem`), not left to fail on the day it gets there.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from rules.loader import load_set
from simulator.population import Calendar, calendar_problem
from simulator.run import project
from simulator.scenario import load_scenario_text
from tests.simulator.model_runs import BOOKS, TINY


@pytest.mark.parametrize(("start", "days", "fits"), [
    (dt.date(2024, 7, 1), 365, True),
    (dt.date(1, 1, 1), 10, True),
    (dt.date(9998, 12, 31), 1, True),
    (dt.date(9998, 12, 25), 7, True),
    (dt.date(9998, 12, 31), 2, False),
    (dt.date(9999, 12, 31), 10, False),
    (dt.date(2024, 7, 1), 10**9, False),  # past what a date can hold at all
])
def test_a_run_must_end_in_the_calendars_last_whole_year(start: dt.date, days: int,
                                                        fits: bool) -> None:
    problem = calendar_problem(start, days)
    assert (problem is None) == fits
    if not fits:
        assert problem is not None and start.isoformat() in problem and "9998" in problem
    else:  # every day of it is a date the model can step, the next year's start included
        calendar = Calendar(start, "Asia/Shanghai")
        last = min(days, 400) - 1
        day = start + dt.timedelta(days=last)
        month, year, next_month, next_year = calendar.periods(last)
        assert (month, year) == ((day.year, day.month), day.year)
        assert calendar.time(last) < next_month <= next_year


def test_a_run_to_the_last_day_the_calendar_holds_gives_every_series() -> None:
    """Seven days up to 9998-12-31: over a month's and a year's end, to the last day."""
    text = TINY.read_text()
    assert 'start: "2024-07-01"' in text
    scenario = load_scenario_text(text.replace('start: "2024-07-01"', 'start: "9998-12-25"'))
    projection = project(load_set(BOOKS / "lowprice-2024"), scenario, 7, 1, 3)
    assert projection.series["gmv"].shape == (1, 7)
    assert np.isfinite(projection.series["gmv"]).all()
