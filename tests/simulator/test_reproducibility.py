"""Same seed, same numbers: whether replications run together, in chunks or one by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules.loader import load_set
from simulator.run import project, replication_seed, run_replications
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml"
DAYS = 40


@pytest.fixture(scope="module")
def lowprice():
    return load_set(ROOT / "rules" / "books" / "lowprice-2024")


def _identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert set(a) == set(b)
    for name in a:
        assert a[name].dtype == b[name].dtype
        assert np.array_equal(a[name], b[name], equal_nan=True), name


def test_chunking_does_not_change_a_single_bit(lowprice) -> None:
    sc = load_scenario(TINY)
    together = project(lowprice, sc, DAYS, 3, seed=42)
    in_pairs = project(lowprice, sc, DAYS, 3, seed=42, chunk=2)
    one_by_one = project(lowprice, sc, DAYS, 3, seed=42, chunk=1)
    _identical(together.series, in_pairs.series)
    _identical(together.series, one_by_one.series)
    # Subsets run elsewhere and stacked give the same arrays (what a Dask sweep does).
    parts = [run_replications(lowprice, sc, DAYS, 42, [2]),
             run_replications(lowprice, sc, DAYS, 42, [0, 1])]
    stacked = {k: np.concatenate([parts[1][k], parts[0][k]], axis=0) for k in parts[0]}
    _identical(together.series, stacked)
    # The replications differ from each other: each has its own stream.
    share = together.series["gmv"]
    assert not np.array_equal(share[0], share[1])


def test_a_different_seed_gives_different_numbers(lowprice) -> None:
    sc = load_scenario(TINY)
    a = run_replications(lowprice, sc, DAYS, 1, [0])
    b = run_replications(lowprice, sc, DAYS, 2, [0])
    assert not np.array_equal(a["gmv"], b["gmv"])
    again = run_replications(lowprice, sc, DAYS, 1, [0])
    _identical(a, again)


def test_replication_seed_is_the_spawned_child() -> None:
    children = np.random.SeedSequence(7).spawn(3)
    for i, child in enumerate(children):
        mine = replication_seed(7, i)
        assert mine.generate_state(4).tolist() == child.generate_state(4).tolist()


def test_progress_reports_every_day_of_every_chunk(lowprice) -> None:
    calls: list[tuple[int, int]] = []
    p = project(lowprice, load_scenario(TINY), 5, 2, seed=1, chunk=1,
                progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 10) for i in range(1, 11)]
    p.check()
    assert p.series["share_alive"].shape == (2, 5)
    assert p.series["price_pct"].shape == (2, 5, 3, 3)
    assert p.cohorts == ("small", "medium", "large")
