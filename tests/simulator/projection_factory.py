"""Synthetic projections with known numbers, for testing what consumes a projection.

The consumers (summary, charts, what-if, sensitivity) only read the Projection contract, so their
tests build projections whose values are known exactly instead of running the model.
"""

from __future__ import annotations

import numpy as np

from simulator.projection import COHORT_SERIES, PERCENTILE_SERIES, POPULATION_SERIES, Projection

COHORTS = ("small", "medium", "large")


def synthetic_projection(*, replications: int = 4, days: int = 10, seed: int = 7,
                         level: float = 0.0, set_id: str = "lowprice-2024",
                         cohorts: tuple[str, ...] = COHORTS,
                         noise_seed: int | None = None) -> Projection:
    """Every series filled with a seeded pattern: ``base + level + noise``.

    ``level`` shifts every series by the same amount, so two projections built with the same seed
    and different levels differ by exactly ``level`` in every value (a known what-if answer).
    """
    rng = np.random.default_rng(seed if noise_seed is None else noise_seed)
    r, t, c, q = replications, days, len(cohorts), 3
    day = np.arange(t, dtype=np.float64)
    series: dict[str, np.ndarray] = {}
    for name in POPULATION_SERIES:
        series[name] = 0.2 + 0.01 * day[None, :] + level + 0.01 * rng.standard_normal((r, t))
    for name in COHORT_SERIES:
        cohort = np.arange(c, dtype=np.float64)[None, None, :]
        series[name] = (0.3 + 0.1 * cohort - 0.005 * day[None, :, None] + level
                        + 0.01 * rng.standard_normal((r, t, c)))
    for name in PERCENTILE_SERIES:
        base = (0.2 + 0.1 * np.arange(q)[None, None, None, :]
                + 0.01 * rng.standard_normal((r, t, c, q)))
        series[name] = base + level
    p = Projection(set_id=set_id, revision="0123456789abcdef", scenario="synthetic", days=t,
                   replications=r, seed=seed, cohorts=cohorts, series=series,
                   meta={"merchants": 300})
    p.check()
    return p
