"""Sweeps: a grid of scenario parameters times a list of seeds, run on Dask distributed.

Each grid point and seed is one task: project the rulebook set over the scenario with those
parameter values and that seed. A task depends only on its inputs (the run's SeedSequence is
built from the seed inside the task), so where it runs cannot change its numbers: a sweep on a
cluster gives exactly the arrays the same sweep gives in this process (a test holds that).

Where it runs:
- ``scheduler=None``: a ``LocalCluster`` on this machine, started for the sweep and closed after;
- ``scheduler="tcp://HOST:PORT"``: an existing cluster (workers must have this package installed);
- ``scheduler="inprocess"``: no Dask at all, one task after another (the reference result).

A task carries the rulebook set's and the scenario's file texts (tens of kilobytes), read once
where the sweep is started, not objects or paths: workers on other machines need no copy of the
files, and each worker checks and compiles them itself.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from simulator import outputs
from simulator.memory import keep_freed_memory
from simulator.projection import Projection

INPROCESS = "inprocess"

#: The outcomes a sweep's table reports (final-day mean across replications), population-wide
#: first, then per cohort.
TABLE_OUTCOMES = ("share_alive", "median_margin", "exposure_gini", "take_rate",
                  "refund_burden_ratio", "below_cost_sales_share", "share_alive_by_cohort",
                  "margin_mean")


@dataclass(frozen=True)
class SweepTask:
    """One projection of a sweep: everything a worker needs, as plain picklable values.

    ``rulebooks`` and ``scenario`` name where the inputs came from; ``rulebook_texts`` and
    ``scenario_text`` (filled by :func:`packed`) are what a worker loads, so it needs no files.
    Without texts a worker reads the paths itself (a cluster sharing this file system).
    """

    rulebooks: str
    scenario: str | None  # path of a scenario file; None = the default scenario
    overrides: tuple[tuple[str, float], ...]
    days: int
    replications: int
    seed: int
    rulebook_texts: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    scenario_text: str | None = field(default=None, repr=False)


def packed(task: SweepTask) -> SweepTask:
    """The task with its rulebook files' and scenario file's texts read in."""
    from rules.loader import rulebook_files

    if task.rulebook_texts:
        return task
    texts = tuple((f.name, f.read_text(encoding="utf-8"))
                  for f in rulebook_files(task.rulebooks))
    scenario = Path(task.scenario) if task.scenario else _default_scenario()
    return replace(task, rulebook_texts=texts,
                   scenario_text=scenario.read_text(encoding="utf-8"))


def _default_scenario() -> Path:
    from simulator.scenario import DEFAULT_SCENARIO

    return DEFAULT_SCENARIO


def load_inputs(task: SweepTask) -> tuple[Any, Any]:
    """The task's rulebook set and scenario (overrides applied), from its texts or its paths.

    From texts, each worker reads and checks a set's or a scenario's text once and keeps
    the result for the sweep's other tasks (`_set_from_texts`, `_scenario_from_text`):
    parsing and checking the YAML takes about a tenth of a second, a fifth of a task of
    20,000 merchants over 120 days. Both are immutable, and kept by their texts, so a task
    can only be given what its own texts say."""
    from rules.loader import load_set
    from simulator.scenario import load_scenario

    if task.rulebook_texts:
        rulebook_set = _set_from_texts(Path(task.rulebooks).name, task.rulebook_texts)
    else:
        rulebook_set = load_set(task.rulebooks)
    if task.scenario_text is not None:
        name = task.scenario if task.scenario else _default_scenario().name
        scenario = _scenario_from_text(task.scenario_text, name)
    else:
        scenario = load_scenario(task.scenario)
    return rulebook_set, apply_overrides(scenario, dict(task.overrides))


@functools.lru_cache(maxsize=8)
def _set_from_texts(name: str, texts: tuple[tuple[str, str], ...]) -> Any:
    from rules.loader import load_set_from_texts

    return load_set_from_texts(name, dict(texts))


@functools.lru_cache(maxsize=8)
def _scenario_from_text(text: str, name: str) -> Any:
    from simulator.scenario import load_scenario_text

    return load_scenario_text(text, name)


Runner = Callable[[SweepTask], Projection]


def apply_overrides(scenario: Any, overrides: Mapping[str, float]) -> Any:
    """The scenario with some values replaced, each converted to the type it has in the file.

    Grids and perturbations are numbers; a count in the scenario (``exit.loss_days``) takes
    only whole numbers. Raises ValueError naming the parameter if it does not exist or the value
    does not fit.
    """
    if not overrides:
        return scenario
    known = scenario.sources()
    typed: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise ValueError(f"scenario {scenario.name!r} has no parameter {name!r} "
                             "(parameters are dotted paths like refunds.claim_rate)")
        current = scenario.value(name)
        if isinstance(current, bool):
            raise ValueError(f"parameter {name!r} is a yes/no flag, not a number")
        if isinstance(current, int):
            if not float(value).is_integer():
                raise ValueError(f"parameter {name!r} is a count; {value!r} is not a whole "
                                 "number")
            typed[name] = int(value)
        else:
            typed[name] = float(value)
    try:
        return scenario.with_values(typed)
    except (KeyError, ValueError) as exc:
        raise ValueError(str(exc).strip("'\"")) from None


def run_task(task: SweepTask) -> Projection:
    """Load the set and the scenario, apply the overrides, project. Runs on a worker."""
    from simulator.run import project

    keep_freed_memory()  # a worker process runs projections only
    rulebook_set, scenario = load_inputs(task)
    return project(rulebook_set, scenario, task.days, task.replications, task.seed)


#: The most points `grid_points` makes (each a projection per seed): three parameters of a
#: thousand values each would be a billion.
MAX_POINTS = 100_000


def grid_points(grid: Mapping[str, Sequence[float]]) -> list[tuple[tuple[str, float], ...]]:
    """Every combination of the grid's values, in a fixed order (parameters sorted by name);
    at most `MAX_POINTS`, counted before any is made."""
    names = sorted(grid)
    for name in names:
        if not grid[name]:
            raise ValueError(f"sweep parameter {name!r} has no values")
    count = math.prod(len(grid[n]) for n in names)
    if count > MAX_POINTS:
        raise ValueError(f"the grid has {count:,} points (" + " x ".join(
            str(len(grid[n])) for n in names) + f"), more than {MAX_POINTS:,}")
    return [tuple(zip(names, values, strict=True))
            for values in itertools.product(*(grid[n] for n in names))]


def sweep_tasks(rulebooks: str | Path, scenario: str | Path | None,
                grid: Mapping[str, Sequence[float]], seeds: Sequence[int], days: int,
                replications: int) -> list[SweepTask]:
    """The sweep's tasks: each grid point with each seed, grid points outermost."""
    if not seeds:
        raise ValueError("a sweep needs at least one seed")
    return [SweepTask(str(rulebooks), None if scenario is None else str(scenario),
                      tuple((k, float(v)) for k, v in point), days, replications, int(seed))
            for point in grid_points(grid) for seed in seeds]


@dataclass
class SweepResult:
    """The projections of a sweep, in task order."""

    tasks: list[SweepTask]
    projections: list[Projection]
    where: str = INPROCESS
    workers: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    def rows(self, outcomes: Iterable[str] = TABLE_OUTCOMES) -> list[dict[str, Any]]:
        """One row per task: the parameter values, the seed, and each outcome's final-day mean
        across replications (per cohort for cohort series)."""
        rows = []
        for task, p in zip(self.tasks, self.projections, strict=True):
            row: dict[str, Any] = {**dict(task.overrides), "seed": task.seed}
            for name in outcomes:
                if name not in p.series:
                    continue
                final = outputs.final_values(p.series[name])
                if final.ndim == 1:
                    row[name] = _mean(final)
                else:
                    for i, cohort in enumerate(p.cohorts):
                        row[f"{name}[{cohort}]"] = _mean(final[:, i])
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        first = self.tasks[0] if self.tasks else None
        return {
            "rulebooks": first.rulebooks if first else None,
            "scenario": first.scenario if first else None,
            "days": first.days if first else None,
            "replications": first.replications if first else None,
            "where": self.where, "workers": self.workers,
            "rows": [{k: (outputs._finite_or_none(v) if isinstance(v, float) else v)
                      for k, v in row.items()} for row in self.rows()],
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def run_sweep(tasks: Sequence[SweepTask], *, scheduler: str | None = None, workers: int = 2,
              threads_per_worker: int = 1, processes: bool = True,
              runner: Runner = run_task,
              progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Run the tasks in this process, on a new LocalCluster, or on the cluster at ``scheduler``.

    ``workers``, ``threads_per_worker`` and ``processes`` shape the LocalCluster only. Results
    come back in task order whatever order the workers finish in. ``progress(done, total)`` is
    called as tasks complete.
    """
    tasks = list(tasks)
    total = len(tasks)
    if scheduler == INPROCESS:
        ordered = []
        for i, task in enumerate(tasks):
            ordered.append(runner(task))
            if progress:
                progress(i + 1, total)
        return SweepResult(tasks, ordered, INPROCESS, 1)

    from dask.distributed import as_completed

    if scheduler is None:  # a new LocalCluster: no more workers than tasks
        workers = max(1, min(workers, total))
    with dask_client(scheduler, workers=workers, threads_per_worker=threads_per_worker,
                     processes=processes) as (client, where):
        n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        # pure=False: two tasks with equal inputs are still two runs (e.g. a repeated seed).
        shipped = [packed(t) for t in tasks] if runner is run_task else tasks
        futures = client.map(runner, shipped, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Projection | None] = [None] * total
        for done, fut in enumerate(as_completed(futures), start=1):
            results[index[fut.key]] = fut.result()
            if progress:
                progress(done, total)
        return SweepResult(tasks, [r for r in results if r is not None], where, n_workers)


#: Dask settings of the LocalCluster a sweep starts. It has no dashboard, so its servers'
#: monitoring loops serve no one: by default every worker samples its running task's stack
#: every 10 ms for the dashboard's profile, and every scheduler, nanny and worker wakes every
#: 20 ms to time its event loop, every 0.5 s to sample the system and every 0.1 s to read its
#: memory. That kept an idle two-worker cluster at about 12 % of a CPU, taken from the tasks
#: on a small machine. A worker over its memory limit is still stopped, within a second
#: instead of a tenth. A cluster at an address keeps its own settings.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "10s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def local_cluster(workers: int = 2, *, threads_per_worker: int = 1,
                  processes: bool = True) -> Any:
    """A new LocalCluster as sweeps run it: no dashboard, `LOCAL_CLUSTER_CONFIG` (the servers
    read these settings when they start, and each worker process gets them from its nanny)."""
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        return LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                            processes=processes, dashboard_address=None)


def address_problem(address: str) -> str | None:
    """What is wrong with a scheduler address, None if nothing is: found before connecting,
    so that a port past 65535, say, is refused at once instead of after the connection
    timeout, and an address Dask could only fail on (a tls:// one without TLS settings, a
    transport not installed) with a reason instead of Dask's traceback."""
    if address.startswith("inproc://"):  # a scheduler in this process (processes=False)
        parts = address[len("inproc://"):].split("/")
        if len(parts) != 3 or not all(p.isdigit() for p in parts[1:]):
            return "expected an address like tcp://HOST:PORT (or inproc://HOST/PID/N)"
        if int(parts[1]) != os.getpid():
            return ("an inproc:// address reaches a scheduler in the same process only; give "
                    "a tcp:// address")
        return None
    if address.startswith("ucx://"):  # (distributed dropped it for distributed-ucxx)
        return "the installed Dask has no ucx:// transport; give a tcp:// address"
    if not address.startswith(("tcp://", "tls://")):
        return "expected an address like tcp://HOST:PORT"
    host, colon, port = address.split("://", 1)[1].rpartition(":")
    if not colon or not host or (host.startswith("[") != host.endswith("]")):
        return "expected an address like tcp://HOST:PORT"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"the port {port!r} is not a number from 1 to 65535"
    if address.startswith("tls://"):
        import dask

        # (Dask makes the client's TLS context only when both are set)
        if not (dask.config.get("distributed.comm.tls.ca-file", None)
                and dask.config.get("distributed.comm.tls.client.cert", None)):
            return ("a tls:// scheduler needs Dask's TLS settings (distributed.comm.tls: "
                    "ca-file, and client.cert with its key), and they are not all set")
    return None


@contextmanager
def dask_client(scheduler: str | None, *, workers: int = 2, threads_per_worker: int = 1,
                processes: bool = True) -> Iterator[tuple[Any, str]]:
    """A Dask client on a new LocalCluster (``scheduler=None``, `local_cluster`) or on the
    cluster at an address; closed (and the LocalCluster shut down) on exit. Yields (client,
    description)."""
    from dask.distributed import Client

    cluster = None
    if scheduler is None:
        cluster = local_cluster(workers, threads_per_worker=threads_per_worker,
                                processes=processes)
        client = Client(cluster)
        where = f"LocalCluster({workers} workers, processes={processes})"
    else:
        problem = address_problem(scheduler)
        if problem is not None:
            raise ValueError(f"scheduler {scheduler!r}: {problem}")
        client = Client(scheduler)
        where = scheduler
    try:
        yield client, where
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _replications_part(task: SweepTask, indices: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The series of some replications of one run (a worker's share of a projection)."""
    from simulator.run import run_replications

    keep_freed_memory()
    rulebook_set, scenario = load_inputs(task)
    return run_replications(rulebook_set, scenario, task.days, task.seed, indices)


def split_indices(replications: int, parts: int) -> list[tuple[int, ...]]:
    """Replication indices 0..R-1 in ``parts`` contiguous, nearly equal shares (none empty)."""
    parts = max(1, min(parts, replications))
    bounds = np.linspace(0, replications, parts + 1).round().astype(int)
    return [tuple(range(a, b)) for a, b in itertools.pairwise(bounds)]


def project_distributed(task: SweepTask, *, scheduler: str | None = None, workers: int = 2,
                        parts: int | None = None, processes: bool = True) -> Projection:
    """One projection with its replications spread over Dask workers, stacked in order.

    Each replication's numbers depend only on its own child seed, so the stacked series are
    bit-identical to ``simulator.run.project`` in one process (a test holds that).
    """
    from simulator.run import project

    task = packed(task)
    if scheduler is None:  # a new LocalCluster: no more workers than replications
        workers = max(1, min(workers, task.replications))
    shares = split_indices(task.replications, parts or workers)
    with dask_client(scheduler, workers=workers, processes=processes) as (client, _):
        n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        futures = client.map(_replications_part, [task] * len(shares), shares, pure=False)
        parts_series = client.gather(futures)
    series = {name: np.concatenate([part[name] for part in parts_series], axis=0)
              for name in parts_series[0]}
    # Identity and metadata exactly as the in-process run gives them, from a one-day run.
    rulebook_set, scenario = load_inputs(task)
    shell = project(rulebook_set, scenario, 1, 1, task.seed)
    out = Projection(set_id=shell.set_id, revision=shell.revision, scenario=shell.scenario,
                     days=task.days, replications=task.replications, seed=task.seed,
                     cohorts=shell.cohorts, quantiles=shell.quantiles, series=series,
                     meta={**shell.meta, "workers": n_workers})
    out.check()
    return out


#: The most values `parse_grid` takes for one parameter.
MAX_VALUES = 1000


def parse_grid(specs: Sequence[str]) -> dict[str, list[float]]:
    """``["refund.rate=0.05,0.1", "adaptation.exit_after=20:40:10"]`` to a grid.

    A value list is comma-separated; ``start:stop:step`` is an inclusive range. At most
    `MAX_VALUES` values a parameter: a range's count is checked before its values are made
    (``0:1e12:1`` is refused at once, not built).
    """
    grid: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise ValueError(f"--param {spec!r}: expected NAME=V1,V2,... or NAME=START:STOP:STEP")
        try:
            numbers = [float(x) for x in values.split(":" if ":" in values else ",")]
            if ":" in values:
                start, stop, step = numbers
                if not (math.isfinite(start) and math.isfinite(stop) and step > 0
                        and stop >= start):
                    raise ValueError
        except ValueError:
            raise ValueError(f"--param {spec!r}: values must be numbers, as V1,V2,... or "
                             "START:STOP:STEP with STEP > 0") from None
        if ":" in values:
            count = (stop - start) / step + 1e-9  # (infinite for a step of 1e-300, say)
            if not count < MAX_VALUES:
                raise ValueError(f"--param {spec!r}: more than {MAX_VALUES} values")
            numbers = [round(start + i * step, 12) for i in range(math.floor(count) + 1)]
        if len(numbers) > MAX_VALUES:
            raise ValueError(f"--param {spec!r}: more than {MAX_VALUES} values")
        grid[name] = numbers
    return grid

