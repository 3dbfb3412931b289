"""Simulator throughput, reference baseline, Dask sweep speed-up and peak memory, in one run.

    python bench/simulator_throughput.py [--merchants 200000] [--days 60]
        [--replications 100] [--replications-days 60]
        [--reference-merchants 400] [--reference-days 30] [--sweep-tasks 4]
        [--memory-merchants 1000000] [--memory-days 365]
        [--skip model|replications|stages|kernels|reference|sweep|memory] [--seed 1]
        [--other-seeds 2] [--json FILE]

What it measures, all on the default scenario under ``lowprice-2024``:

1. **Model throughput on one core**: merchant-days per second of ``simulator.run.project`` (one
   replication, aggregation included), with the process pinned to one CPU and BLAS and OpenMP
   pools to one thread; best of ``--repeat``, by wall time and by CPU time (on a shared machine
   wall time also counts other processes' turns, so the ratio to the reference uses CPU time).
   The same at ``--other-seeds`` further seeds, and the median over all (`over_seeds`).
   Then where a simulated day's CPU goes, stage by stage (`stage_split`, up to 30 days), and
   each compiled kernel's time per merchant-day (`kernel_split`): run at two sizes, one whose
   model fits in the cache (20,000 merchants) and one whose does not, it tells a kernel
   bound by its instructions (the same cost per merchant at both) from one bound by memory.
   Next to it, the default scenario as it is (200 merchants) in ``--replications``
   replications run together (`replications`): what a run of `rulebook simulate`, `whatif`,
   `sensitivity` or `calibrate` costs per merchant-day, where per replication-day costs
   weigh that the scaled population spreads out.
2. **The reference next to it**: merchant-days per second of ``simulator.reference`` stepping
   the same scenario, in the same run (a smaller population: it is plain Python; its
   aggregation is not timed, which flatters it), and the ratio.
3. **Dask sweep speed-up**: the same sweep (``--sweep-tasks`` seeds) on a LocalCluster of one
   worker process and of two, one thread each, each cluster started and warmed up before the
   clock starts; speed-up = time(1) / time(2). The two sweeps must give identical arrays. Next
   to it, the machine's parallel capacity in the same run: how much more pure-Python work two
   processes do than one (2.0 on two idle cores), since a shared machine caps the speed-up;
   how much faster two bare processes run two of the sweep's tasks than one process runs
   both (no Dask: the ceiling for these tasks, lower than the busy loop's when two
   projections slow each other down through the memory they share); and the CPU seconds the
   workers spent on the tasks (equal in both sweeps when Dask adds no serial work).
4. **Peak memory** of one ``--memory-merchants`` x ``--memory-days`` projection, in a fresh
   subprocess so nothing else counts: its RSS high-water mark (``ru_maxrss``).

The population is the default scenario's product groups with every group's sellers (and its
daily search impressions, so exposure per seller stays as calibrated) scaled to the total asked.
"""

from __future__ import annotations

import argparse
import json
import os

# One core: set before numpy is imported so its thread pools start with one thread.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.loader import load_set  # noqa: E402
from simulator.scenario import Scenario, load_scenario  # noqa: E402

SET_DIR = ROOT / "rules" / "books" / "lowprice-2024"
#: Days run before anything is timed (see `model_rate`).
WARM_UP_DAYS = 10


def scaled_scenario(merchants: int, base: Scenario | None = None) -> Scenario:
    """The default scenario with its groups' sellers (and impressions) scaled to ``merchants``."""
    base = base or load_scenario()
    groups = base.model.groups
    total = sum(g.sellers.value for g in groups)
    factor = merchants / total
    sizes = [max(1, round(g.sellers.value * factor)) for g in groups]
    sizes[-1] += merchants - sum(sizes)  # exact total
    overrides: dict[str, Any] = {}
    for i, (g, n) in enumerate(zip(groups, sizes, strict=True)):
        overrides[f"groups.{i}.sellers"] = int(n)
        overrides[f"groups.{i}.daily_impressions"] = g.daily_impressions.value * n / g.sellers.value
    return base.with_values(overrides)


def _set_one_core() -> None:
    """Pin this process to one CPU where the OS allows it (Linux)."""
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[0]})


def model_rate(merchants: int, days: int, seed: int, repeat: int,
               warm_up: bool = True) -> dict[str, Any]:
    from simulator.memory import keep_freed_memory
    from simulator.run import project

    keep_freed_memory()  # as `rulebook simulate` runs (simulator.memory)
    rs = load_set(SET_DIR)
    scenario = scaled_scenario(merchants)
    if warm_up:
        # Imports, compiled rulebooks, and every kernel's first load (the first response
        # deadlines and prompts fall due on days 4-7, so a shorter warm-up times their
        # loading).
        project(rs, scenario, min(days, WARM_UP_DAYS), 1, seed)
    best, best_cpu = _best_of(repeat, lambda: project(rs, scenario, days, 1, seed))
    return {"merchants": merchants, "days": days, "seconds": best, "cpu_seconds": best_cpu,
            "merchant_days_per_s": merchants * days / best,
            "merchant_days_per_cpu_s": merchants * days / best_cpu}


def _best_of(repeat: int, run: Any) -> tuple[float, float]:
    """The least wall and CPU seconds of `repeat` calls of `run`."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu


def replications_rate(replications: int, days: int, seed: int, repeat: int) -> dict[str, Any]:
    """Merchant-days per CPU-second of the default scenario as it is (its 200 merchants) in
    `replications` replications run together, as `rulebook simulate`, `whatif`,
    `sensitivity` and `calibrate` run it: per replication-day costs (its draws, its figures)
    weigh here, where the scaled population of `model_rate` spreads the day's fixed costs
    over many merchants."""
    from simulator.memory import keep_freed_memory
    from simulator.population import Layout
    from simulator.run import project

    keep_freed_memory()
    rs = load_set(SET_DIR)
    scenario = load_scenario()
    merchants = int(sum(Layout.of(scenario).sizes))
    project(rs, scenario, min(days, WARM_UP_DAYS), replications, seed)
    best, best_cpu = _best_of(repeat, lambda: project(rs, scenario, days, replications, seed))
    merchant_days = merchants * replications * days
    return {"merchants": merchants, "replications": replications, "days": days,
            "seconds": best, "cpu_seconds": best_cpu,
            "merchant_days_per_cpu_s": merchant_days / best_cpu,
            "ms_per_replication_day": 1000 * best_cpu / (replications * days)}


def over_seeds(first: dict[str, Any], merchants: int, days: int, seed: int, others: int,
               repeat: int) -> dict[str, Any]:
    """`model_rate` at `seed` (`first`, measured already) and the `others` seeds after it.

    Why: a seed is one realisation of the scenario, and how much a day costs depends on what
    happens in it (how many merchants are prompted to follow a price, appeal, exit): a change
    to the random draws changes the realisation the headline figure times. The median over
    a few seeds tells such a change from a change of speed."""
    rates = [first["merchant_days_per_cpu_s"]]
    for k in range(1, others + 1):
        # (warm already: `first` was measured in this process)
        rates.append(model_rate(merchants, days, seed + k, repeat,
                                warm_up=False)["merchant_days_per_cpu_s"])
    return {"seeds": list(range(seed, seed + others + 1)), "merchant_days_per_cpu_s": rates,
            "median_merchant_days_per_cpu_s": statistics.median(rates)}


#: The day's stages timed by `stage_split`: `Model` methods, and functions its module and
#: `simulator.run` call (by name in that module).
_STAGES = {
    "ranking and exposure": ("Model", "exposure"),
    "orders": ("Model", "_orders"),
    "commission and ads": ("Model", "_demand"),
    "refunds": ("Model", "_refunds"),
    "appeals": ("Model", "_appeals"),
    "accounts": ("Model", "_accounts"),
    "day's flows": ("Model", "_new_flows"),
    "random draws": ("model", "day_draws"),
    "aggregation": ("run", "aggregate_chunk"),
}


def stage_split(merchants: int, days: int, seed: int) -> dict[str, Any]:
    """CPU milliseconds per simulated day by stage, from process-time timers around each
    stage of one projection (after a warm-up); "the rest of the day" is the model's step less
    the timed stages (auto-follow, repricing, entry). The timers cost a little each; the
    total is the timed run's, so the stages add up to it only roughly."""
    from simulator import model, run
    from simulator.memory import keep_freed_memory

    keep_freed_memory()
    rs = load_set(SET_DIR)
    scenario = scaled_scenario(merchants)
    run.project(rs, scenario, min(days, WARM_UP_DAYS), 1, seed)
    spent: dict[str, float] = dict.fromkeys((*_STAGES, "step"), 0.0)
    originals: list[tuple[Any, str, Any]] = []

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - t0

        setattr(owner, name, wrapper)

    owners = {"Model": model.Model, "model": model, "run": run}
    for label, (owner, name) in _STAGES.items():
        timed(owners[owner], name, label)
    timed(model.Model, "step", "step")
    try:
        c0 = time.process_time()
        run.project(rs, scenario, days, 1, seed)
        total = time.process_time() - c0
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)
    in_step = sum(v for k, v in spent.items() if k not in ("step", "aggregation"))
    ms = {k: 1000 * v / days for k, v in spent.items() if k != "step"}
    ms["the rest of the day"] = 1000 * (spent["step"] - in_step) / days
    return {"merchants": merchants, "days": days, "ms_per_day": 1000 * total / days,
            "stages_ms_per_day": dict(sorted(ms.items(), key=lambda kv: -kv[1]))}


def kernel_split(merchants: int, days: int, seed: int) -> dict[str, Any]:
    """Nanoseconds per merchant-day of each compiled kernel (a numba dispatcher of the
    simulator's or the rules' modules) over one projection after a warm-up, from cProfile's
    clock (wall time: `main` pins the process to one core first): a kernel is one call, so
    the time cProfile gives it is its own, and kernels a kernel calls are inside its time.
    Also the whole day's time per merchant-day under the profiler (which slows the Python
    between the kernels)."""
    import cProfile
    import pstats

    from numba.core.registry import CPUDispatcher

    from simulator import run
    from simulator.memory import keep_freed_memory

    keep_freed_memory()
    rs = load_set(SET_DIR)
    scenario = scaled_scenario(merchants)
    run.project(rs, scenario, min(days, WARM_UP_DAYS), 1, seed)
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    try:
        run.project(rs, scenario, days, 1, seed)
    finally:
        profile.disable()
    total = time.perf_counter() - t0
    compiled = {(d.py_func.__code__.co_filename, d.py_func.__name__)
                for name, module in list(sys.modules.items())
                if name.startswith(("simulator.", "rules.")) and module is not None
                for d in vars(module).values() if isinstance(d, CPUDispatcher)}
    per = 1e9 / (merchants * days)
    spent: dict[str, float] = {}
    for (file, _, name), row in pstats.Stats(profile).stats.items():
        if (file, name) in compiled:
            spent[name] = spent.get(name, 0.0) + row[2] * per
    kernels = dict(sorted(spent.items(), key=lambda kv: -kv[1]))
    return {"merchants": merchants, "days": days, "ns_per_merchant_day": total * per,
            "kernels_ns_per_merchant_day": kernels}


def reference_rate(merchants: int, days: int, seed: int) -> dict[str, Any]:
    """The plain-Python reference stepping one replication through the same days.

    Only its daily steps are timed (no aggregation), while the model's figure includes the
    reduction to a Projection: the ratio errs in the reference's favour.
    """
    import numpy as np

    from simulator.reference import ReferenceReplication
    from simulator.run import replication_seed

    rs = load_set(SET_DIR)
    scenario = scaled_scenario(merchants)
    rep = ReferenceReplication(rs, scenario, replication_seed(seed, 0))
    t0, c0 = time.perf_counter(), time.process_time()
    for day in range(days):
        rep.step(day)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    alive = float(np.mean(rep.arrays()["alive"][rep.arrays()["exists"]]))
    return {"merchants": merchants, "days": days, "seconds": seconds, "cpu_seconds": cpu,
            "merchant_days_per_s": merchants * days / seconds,
            "merchant_days_per_cpu_s": merchants * days / cpu, "share_alive_final": alive}


def _warm_worker(scenario_file: str) -> None:
    """Imports, rulebook compilation and a one-day run, so the timed sweep measures runs."""
    from simulator.run import project

    project(load_set(SET_DIR), scenario_file, 1, 1, 0)


def _timed_task(task: Any) -> Any:
    """`sweep.run_task`, recording the CPU seconds the worker spent on it."""
    from simulator import sweep

    c0 = time.process_time()
    projection = sweep.run_task(sweep.packed(task))
    projection.meta["cpu_seconds"] = time.process_time() - c0
    return projection


def sweep_speedup(merchants: int, days: int, tasks: int, scenario_file: Path,
                  repeat: int = 5) -> dict[str, Any]:
    """The same sweep on a LocalCluster of one worker process and of two (one thread each),
    each started as a sweep starts its own (`sweep.local_cluster`).

    Both clusters are started and their workers warmed up before any clock starts; then the
    one-worker and the two-worker sweeps alternate ``repeat`` times, with the machine's
    parallel capacity measured between them, so all see the same conditions; best of each,
    and each repeat's own ratios (its two sweeps and capacities ran back to back, so a slow
    spell of the machine touches both sides of a ratio more often than the best times do).
    Two capacities: of a busy loop (`_capacity`), and of two of the sweep's own tasks in
    bare processes (`_model_capacity`), the most any two-worker sweep of them could give.
    The sweeps go through ``run_sweep`` with the cluster's address, the code path of any
    cluster.
    """
    import multiprocessing as mp

    from dask.distributed import Client

    from simulator import sweep

    jobs = sweep.sweep_tasks(SET_DIR, scenario_file, {}, list(range(1, tasks + 1)), days, 1)
    pair = [sweep.packed(j) for j in jobs[:2]]
    runs: dict[int, list[float]] = {1: [], 2: []}
    capacities: list[float] = []
    model_capacities: list[float] = []
    results: dict[int, Any] = {}
    clusters = {w: sweep.local_cluster(w) for w in (1, 2)}  # as `rulebook sweep` starts them
    try:
        for cluster in clusters.values():
            with Client(cluster) as client:
                client.run(_warm_worker, str(scenario_file))
        with mp.get_context("spawn").Pool(2) as pool:
            pool.map(_busy, [1000, 1000])
            # Each pool process loads the sweep's inputs once (as each Dask worker has).
            pool.map(_run_tasks, [[replace(t, days=1)] for t in pair], chunksize=1)
            for _ in range(repeat):
                for w, cluster in clusters.items():
                    t0 = time.perf_counter()
                    results[w] = sweep.run_sweep(jobs, scheduler=cluster.scheduler_address,
                                                 runner=_timed_task)
                    runs[w].append(time.perf_counter() - t0)
                capacities.append(_capacity(pool))
                if len(pair) == 2:
                    model_capacities.append(_model_capacity(pool, pair))
    finally:
        for cluster in clusters.values():
            cluster.close()
    same = all(
        all(_equal(a.series[k], b.series[k]) for k in a.series)
        for a, b in zip(results[1].projections, results[2].projections, strict=True))
    cpu = {w: sum(p.meta["cpu_seconds"] for p in results[w].projections) for w in (1, 2)}
    times = {w: min(runs[w]) for w in runs}
    capacity = max(capacities)
    model_capacity = max(model_capacities, default=0.0)
    paired = [a / b for a, b in zip(runs[1], runs[2], strict=True)]
    return {"tasks": tasks, "merchants": merchants, "days": days, "repeats": repeat,
            "seconds_1_worker": times[1], "seconds_2_workers": times[2],
            "task_cpu_seconds_1_worker": cpu[1], "task_cpu_seconds_2_workers": cpu[2],
            "speedup": times[1] / times[2], "identical_results": same,
            "speedup_each_repeat": [round(r, 3) for r in paired],
            "speedup_median": statistics.median(paired),
            "machine_parallel_capacity": capacity, "speedup_over_capacity":
                times[1] / times[2] / capacity,
            "model_parallel_capacity": model_capacity or None,
            "model_parallel_capacity_each_repeat": [round(c, 3) for c in model_capacities],
            "speedup_over_model_capacity":
                times[1] / times[2] / model_capacity if model_capacity else None,
            "speedup_over_model_capacity_median": statistics.median(
                r / c for r, c in zip(paired, model_capacities, strict=True))
            if model_capacities else None}


def _busy(n: int) -> float:
    """A fixed amount of pure-Python work; returns its wall time."""
    t0 = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return time.perf_counter() - t0


def _capacity(pool: Any, n: int = 15_000_000) -> float:
    """How many times more work two processes get through than one, on this machine now.

    2.0 on two idle cores; less when other processes take their turns. The sweep speed-up is
    read against it: Dask cannot get more out of two workers than the machine gives two
    processes.
    """
    t0 = time.perf_counter()
    pool.map(_busy, [n])
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    pool.map(_busy, [n, n])
    two = time.perf_counter() - t0
    return 2 * one / two


def _run_tasks(tasks: list[Any]) -> None:
    """`sweep.run_task` of each task in turn, in this process (timed by the caller, as the
    sweeps are, pool round trip included)."""
    from simulator import sweep

    for task in tasks:
        sweep.run_task(task)


def _model_capacity(pool: Any, tasks: list[Any]) -> float:
    """How many times faster two bare processes run two of the sweep's own tasks than one
    process runs both, on this machine now: the ceiling of a two-worker sweep of such tasks,
    without Dask. Below `_capacity` when two projections at once slow each other down (they
    share the memory bus and the last-level cache, where a busy loop shares nothing).
    """
    t0 = time.perf_counter()
    pool.apply(_run_tasks, (tasks,))
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    pool.map(_run_tasks, [[t] for t in tasks], chunksize=1)
    two = time.perf_counter() - t0
    return one / two


def _equal(a: Any, b: Any) -> bool:
    """Arrays equal element by element, NaN (a figure without meaning) equal to NaN."""
    import numpy as np

    return bool(np.array_equal(a, b, equal_nan=True))


def peak_memory(merchants: int, days: int, seed: int) -> dict[str, Any]:
    """Run one projection in a fresh interpreter; report its RSS high-water mark."""
    code = (
        "import json, resource, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "sys.argv = ['x']\n"
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('b', {str(Path(__file__).resolve())!r})\n"
        "b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)\n"
        "from simulator.run import project\n"
        "from simulator.memory import keep_freed_memory\n"
        "keep_freed_memory()\n"
        f"s = b.scaled_scenario({merchants})\n"
        "rs = b.load_set(b.SET_DIR)\n"
        "t0 = time.perf_counter()\n"
        f"p = project(rs, s, {days}, 1, {seed})\n"
        "sec = time.perf_counter() - t0\n"
        "print(json.dumps({'seconds': sec,\n"
        "  'maxrss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
        "  'share_alive_final': float(p.series['share_alive'][0, -1])}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "1",
                                          "OPENBLAS_NUM_THREADS": "1"})
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {"merchants": merchants, "days": days, "seconds": data["seconds"],
            "peak_rss_gib": data["maxrss_kib"] / 1024 ** 2,
            "merchant_days_per_s": merchants * days / data["seconds"],
            "share_alive_final": data["share_alive_final"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merchants", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--replications-days", type=int, default=60)
    ap.add_argument("--reference-merchants", type=int, default=400)
    ap.add_argument("--reference-days", type=int, default=30)
    ap.add_argument("--sweep-tasks", type=int, default=4)
    ap.add_argument("--sweep-merchants", type=int, default=20_000)
    ap.add_argument("--sweep-days", type=int, default=120)
    ap.add_argument("--memory-merchants", type=int, default=1_000_000)
    ap.add_argument("--memory-days", type=int, default=365)
    ap.add_argument("--skip", action="append", default=[],
                    choices=("model", "replications", "stages", "kernels", "reference",
                             "sweep", "memory"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--other-seeds", type=int, default=2,
                    help="also time the model at this many seeds after --seed, each a "
                         "realisation of its own, for the median over seeds")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)

    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    if "sweep" not in args.skip:
        # Dask workers first, before this process pins itself to one core.
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            scenario_file = Path(tmp) / "sweep.yaml"
            _write_scenario(scaled_scenario(args.sweep_merchants), scenario_file)
            figures["sweep"] = sweep_speedup(args.sweep_merchants, args.sweep_days,
                                             args.sweep_tasks, scenario_file)
        _report("sweep", figures["sweep"])
    _set_one_core()
    if "model" not in args.skip:
        figures["model"] = model_rate(args.merchants, args.days, args.seed, args.repeat)
        _report("model", figures["model"])
        if args.other_seeds > 0:
            figures["model_over_seeds"] = over_seeds(figures["model"], args.merchants,
                                                     args.days, args.seed, args.other_seeds,
                                                     args.repeat)
            over = figures["model_over_seeds"]
            print(f"model over seeds {over['seeds']}: merchant-days per CPU-second "
                  + ", ".join(f"{r:,.0f}" for r in over["merchant_days_per_cpu_s"])
                  + f" (median {over['median_merchant_days_per_cpu_s']:,.0f})", flush=True)
    if "replications" not in args.skip:
        figures["replications"] = replications_rate(args.replications, args.replications_days,
                                                    args.seed, args.repeat)
        _report("replications", figures["replications"])
    if "stages" not in args.skip:
        figures["stages"] = stage_split(args.merchants, min(args.days, 30), args.seed)
        split = figures["stages"]["stages_ms_per_day"]
        print(f"stages: {figures['stages']['ms_per_day']:.1f} ms of CPU per day; "
              + ", ".join(f"{k} {v:.1f}" for k, v in split.items()), flush=True)
    if "kernels" not in args.skip:
        figures["kernels"] = kernel_split(args.merchants, args.days, args.seed)
        split = figures["kernels"]["kernels_ns_per_merchant_day"]
        print(f"kernels: ns per merchant-day (the whole day, profiled: "
              f"{figures['kernels']['ns_per_merchant_day']:.1f}); "
              + ", ".join(f"{k} {v:.1f}" for k, v in split.items() if v >= 0.05), flush=True)
    if "reference" not in args.skip:
        figures["reference"] = reference_rate(args.reference_merchants, args.reference_days,
                                              args.seed)
        _report("reference", figures["reference"])
        if "model" in figures:
            # CPU time: on a shared machine, wall time also counts other processes' turns.
            figures["model_over_reference"] = (
                figures["model"]["merchant_days_per_cpu_s"]
                / figures["reference"]["merchant_days_per_cpu_s"])
            print(f"model / reference (CPU time): {figures['model_over_reference']:,.0f}x",
                  flush=True)
    if "memory" not in args.skip:
        figures["memory"] = peak_memory(args.memory_merchants, args.memory_days, args.seed)
        _report("memory", figures["memory"])
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _write_scenario(scenario: Scenario, path: Path) -> None:
    """A scenario as a file, so sweep workers load it by path like any other sweep."""
    import yaml

    path.write_text(yaml.safe_dump(scenario.model.model_dump(), sort_keys=False))


def _report(name: str, figures: dict[str, Any]) -> None:
    parts = []
    for k, v in figures.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:,.3f}" if v < 1000 else f"{k}={v:,.0f}")
        else:
            parts.append(f"{k}={v}")
    print(f"{name}: " + ", ".join(parts), flush=True)


if __name__ == "__main__":
    sys.exit(main())
