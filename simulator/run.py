"""Run the daily model: R seeded replications of T days, reduced to a Projection.

Reproducibility: one ``numpy.random.SeedSequence(seed)`` per run; replication i draws from its
child ``SeedSequence(seed, spawn_key=(i,))`` (what ``.spawn()`` gives as its i-th child), and
nothing a replication computes reads another replication's numbers. So the same seed gives
bit-identical series whether the replications run all at once, in chunks, one by one, or as
subsets on other workers (`run_replications` with `indices`, stacked afterwards).

Memory layout (why 1,000,000 merchants x 365 days fits in 4 GB):
  - state: about 40 flat arrays over the merchants of the replications running together (a
    chunk): prices, costs, quality, cash, burden average and margin in the model dtype (float32
    by default), event times and deadlines in float64, counters int32, flags bool: about 200
    bytes a merchant;
  - one day's draws (6 float32 per merchant), replaced every day, and flows (12 float64 per
    merchant), the same arrays every day (the aggregation zeroes what the model adds to as it
    reads them, and hands them back: `Model.recycle_flows`), and the temporaries of one step
    (a few dozen arrays of the chunk's length);
  - history: only the Projection's daily aggregates, (R, T), (R, T, C) and (R, T, C, Q) float64:
    about 0.3 MB per replication-year, whatever the population.
No (day x merchant) array is ever kept, so the peak does not grow with the number of days:
a 1,000,000-merchant chunk peaked at about 0.7 GB. The default chunk keeps a chunk under
2,000,000 merchants (about 1.4 GB).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rules.rulebook import RulebookSet
from simulator.aggregates import (
    EXTRA_SERIES,
    QUANTILES,
    ChunkSamples,
    Samples,
    aggregate_chunk,
    empty_series,
    series_bytes,
)
from simulator.memory import memory_problem
from simulator.model import ADDED_FLOWS, Model
from simulator.population import Layout, calendar_problem
from simulator.projection import Projection
from simulator.scenario import TIERS, Scenario, load_scenario

Progress = Callable[[int, int], None]
CHUNK_MERCHANTS = 2_000_000


def run_problem(scenario: Scenario, days: int, replications: int = 1,
                processes: int = 1, projections: int = 1) -> str | None:
    """Why a run of `days` days and `replications` replications of `scenario` cannot be made
    here, None if it can: its days past what the calendar holds
    (`population.calendar_problem`), or too large for this machine's memory
    (`memory.memory_problem`): the replications run together (`run_replications`' chunks)
    in each of the `processes` processes running at once (a LocalCluster's workers), and the
    series of the `projections` projections the command holds at once. `processes` 0: a
    remote cluster's run, whose models are not held against this machine's memory (it is
    not where they run), only the series gathered here."""
    problem = calendar_problem(scenario.start, days)
    if problem is not None:
        return problem
    n = Layout.of(scenario).n
    together = max(1, min(replications, CHUNK_MERCHANTS // max(1, n)))
    series = projections * series_bytes(replications, days)
    problem = memory_problem(together * n if processes else 0, processes,
                             series=series)
    if problem is not None:
        sellers = ", ".join(str(int(g.sellers.value)) for g in scenario.model.groups)
        return f"{problem} (sellers of the product groups: {sellers})"
    return None


def replication_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed of replication `index`: the `index`-th spawned child of SeedSequence(seed)."""
    return np.random.SeedSequence(seed, spawn_key=(index,))


def _scenario(scenario: Scenario | str | Path | None) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def run_replications(rulebook_set: RulebookSet, scenario: Scenario | str | Path | None,
                     days: int, seed: int, indices: Sequence[int], *,
                     chunk: int | None = None, dtype: Any = np.float32,
                     progress: Progress | None = None) -> dict[str, np.ndarray]:
    """The series of the replications `indices` of run `seed`, in that order (R = len(indices)).

    The result for replication i does not depend on which other indices run with it, so a sweep
    can split the indices over workers and stack the parts (`np.concatenate(..., axis=0)`).
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    indices = [int(i) for i in indices]
    if any(i < 0 for i in indices):
        raise ValueError("replication indices are 0 or more")
    sc = _scenario(scenario)
    layout = Layout.of(sc)
    if chunk is None:
        chunk = max(1, min(len(indices), CHUNK_MERCHANTS // max(1, layout.n)))
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, not {chunk}")
    out = empty_series(len(indices), days)
    parts = [indices[i:i + chunk] for i in range(0, len(indices), chunk)]
    total = days * len(parts)
    for p, part in enumerate(parts):
        # A chunk's model lives in `_run_chunk` alone: nothing else refers to it, so its memory
        # is free for the next chunk's model (or the next run's) as soon as it returns.
        _run_chunk(out, p * chunk, rulebook_set, sc, days, seed, part, dtype,
                   progress, p * days, total)
    return out


def _run_chunk(out: dict[str, np.ndarray], base: int, rulebook_set: RulebookSet, sc: Scenario,
               days: int, seed: int, part: Sequence[int], dtype: Any,
               progress: Progress | None, done: int, total: int) -> None:
    """Simulate the replications `part` together, their series written at rows base, ...;
    `progress(done + days simulated, total)` after each day."""
    model = Model(rulebook_set, sc, [replication_seed(seed, i) for i in part], dtype=dtype)
    n1 = model.n1
    size = sc.model.output.percentile_sample.value
    chunk = ChunkSamples.of([Samples.of(model.s["tier"][k * n1:(k + 1) * n1],
                                        model.s["exists"][k * n1:(k + 1) * n1], size)
                             for k in range(len(part))])
    for day in range(days):
        flows = model.step(day)
        aggregate_chunk(out, base, day, model.s, flows, model.G, chunk, ADDED_FLOWS)
        model.recycle_flows(flows, ADDED_FLOWS)  # read and zeroed: tomorrow's flows
        if progress is not None:
            progress(done + day + 1, total)


def project(rulebook_set: RulebookSet, scenario: Scenario | str | Path | None, days: int,
            replications: int, seed: int, *, chunk: int | None = None,
            progress: Progress | None = None, dtype: Any = np.float32) -> Projection:
    """Project a rulebook set over the scenario's population: R replications of T days.

    `chunk` replications are simulated together (vectorised across them); the result is the same
    for any chunk. `progress(done, total)` is called after every simulated day of every chunk
    (total = days x number of chunks).
    """
    if replications < 1:
        raise ValueError(f"replications must be at least 1, not {replications}")
    sc = _scenario(scenario)
    series = run_replications(rulebook_set, sc, days, seed, range(replications), chunk=chunk,
                              dtype=dtype, progress=progress)
    layout = Layout.of(sc)
    projection = Projection(
        set_id=rulebook_set.id, revision=rulebook_set.revision, scenario=sc.name, days=days,
        replications=replications, seed=seed, cohorts=TIERS, quantiles=QUANTILES,
        series=series,
        meta={"merchants": int(sum(layout.sizes)), "groups": list(layout.groups),
              "dtype": np.dtype(dtype).name, "start": sc.start.isoformat(),
              "scenario_file": Path(sc.file).name, "extra_series": list(EXTRA_SERIES)},
    )
    projection.check()
    return projection
