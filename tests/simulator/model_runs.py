"""Running the model day by day and comparing two runs bit for bit, for tests that check an
alternative path of the model (a compiled pass, kept decisions) against the one it replaces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rules.loader import load_set_from_texts
from simulator.model import Model
from simulator.run import replication_seed
from simulator.scenario import load_scenario

Run = tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "rules" / "books"
TINY = ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml"
FIXTURE_BOOKS = ROOT / "tests" / "fixtures" / "rulebooks"


def with_rulebook(base: str, family: str, text: str) -> Any:
    """The bundled set `base` with its `family` rulebook replaced by the YAML `text`."""
    files = {p.name: p.read_text() for p in (BOOKS / base).glob("*.yaml")}
    files[f"{family}.yaml"] = text
    return load_set_from_texts(f"{base}-{family}", files)


def run_days(rulebook_set: Any, scenario: Any, days: int, dtype: Any, seed: int,
             prepare: Callable[[Model], None] = lambda model: None) -> Run:
    """Two replications of `days` days: the final state and a copy of every day's flows.
    `prepare` sets the model up (which path to take) before the first day."""
    model = Model(rulebook_set, scenario, [replication_seed(seed, i) for i in range(2)],
                  dtype=dtype)
    prepare(model)
    flows = []
    for day in range(days):
        fl = model.step(day)
        flows.append({k: getattr(fl, k).copy() for k in fl.__dataclass_fields__})
    return model.s, flows


def run_switched(rulebook_set: Any, days: int, dtype: Any, switch: str, on: bool) -> Run:
    """`run_days` on the tiny scenario (seed 7) with the model's path `switch` (an attribute
    such as `_compiled_ranking`) set to `on`."""
    return run_days(rulebook_set, load_scenario(TINY), days, dtype, seed=7,
                    prepare=lambda model: setattr(model, switch, on))


def prepared_on_first_day(rulebook_set: Any, attribute: str) -> Any:
    """What a model of the tiny scenario (one replication) has prepared in `attribute` (a
    1-tuple, such as `_ranking`) by the end of its first day: a compiled pass, or None."""
    model = Model(rulebook_set, load_scenario(TINY), [replication_seed(1, 0)])
    model.step(0)
    found = getattr(model, attribute)
    assert found is not None
    return found[0]


def assert_identical(a: Run, b: Run) -> None:
    """Every state array and every day's flows equal, element by element (NaN equal)."""
    for key in a[0]:
        assert np.array_equal(a[0][key], b[0][key], equal_nan=True), key
    for day, (x, y) in enumerate(zip(a[1], b[1], strict=True)):
        for key in x:
            assert np.array_equal(x[key], y[key], equal_nan=True), (day, key)


def assert_same_bits(a: Run, b: Run) -> None:
    """Every state array and every day's flows the same bytes (-0.0 is not 0.0, NaNs by
    their bits): for paths that must do the very same arithmetic."""
    for key in a[0]:
        assert a[0][key].tobytes() == b[0][key].tobytes(), key
    for day, (x, y) in enumerate(zip(a[1], b[1], strict=True)):
        for key in x:
            assert x[key].tobytes() == y[key].tobytes(), (day, key)
