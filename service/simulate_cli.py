"""`rulebook simulate | whatif | sensitivity | calibrate | sweep`: the simulator's commands.

Registered into `rulebook` by service/cli.py. Exit codes as everywhere in `rulebook`: 0 ok,
1 findings (a calibration target missed), 2 usage or input errors (a rulebook set or scenario
file that does not load, with file:line:column; a bad option value).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulator.memory import keep_freed_memory

OK, FINDINGS, USAGE = 0, 1, 2

DEFAULT_DAYS = 365
DEFAULT_REPLICATIONS = 8
DEFAULT_SEED = 1
#: Runs smaller than this many replication x merchant days finish before a bar would help.
PROGRESS_MIN_WORK = 2_000_000


class InputError(Exception):
    """Bad input found before running: the lines to print; the command exits 2."""

    def __init__(self, lines: Sequence[str]):
        super().__init__("\n".join(lines))
        self.lines = list(lines)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


# -- loading inputs ------------------------------------------------------------------------------
def _load_set(path: str) -> Any:
    from rules.loader import load_set
    from rules.yamlsource import SourceError

    p = Path(path)
    if not p.is_dir():
        raise InputError([f"{path}: no such rulebook set directory"])
    try:
        return load_set(p)
    except SourceError as exc:
        raise InputError([str(v) for v in exc.violations]) from None


def _load_scenario(args: argparse.Namespace, **run: int) -> Any:
    """The scenario of --scenario (the default without it), checked for the run the other
    arguments ask for (`run`: `_runnable`'s pieces and projections)."""
    from rules.yamlsource import SourceError
    from simulator.scenario import load_scenario

    path = args.scenario
    if path is not None and not Path(path).is_file():
        raise InputError([f"{path}: no such scenario file"])
    try:
        scenario = load_scenario(path)
    except SourceError as exc:
        raise InputError([str(v) for v in exc.violations]) from None
    return _runnable(scenario, args, **run)


def _runnable(scenario: Any, args: argparse.Namespace, *, pieces: int | None = None,
              projections: int = 1) -> Any:
    """The scenario, if the run `args` ask for can be made here (`run.run_problem`: on a
    remote scheduler, its days and the series that come back here): a LocalCluster starts a
    worker for each of the `pieces` the work is cut into (the replications by default), up
    to --workers; this process holds `projections` projections' series at once."""
    from simulator.run import run_problem

    scheduler = getattr(args, "scheduler", "inprocess")
    local = min(getattr(args, "workers", 1), args.replications if pieces is None else pieces)
    processes = {"inprocess": 1, "local": local}.get(scheduler, 0)
    problem = run_problem(scenario, args.days, args.replications, processes, projections)
    if problem is not None:
        raise InputError([f"{scenario.file}: {problem}"])
    return scenario


def _check_run_size(args: argparse.Namespace) -> None:
    problems = []
    if args.days < 1:
        problems.append(f"--days must be at least 1, not {args.days}")
    if args.replications < 1:
        problems.append(f"--replications must be at least 1, not {args.replications}")
    if getattr(args, "seed", 0) < 0:
        problems.append(f"--seed must be zero or more, not {args.seed}")
    if getattr(args, "workers", 1) < 1:
        problems.append(f"--workers must be at least 1, not {args.workers}")
    scheduler = getattr(args, "scheduler", None)
    if scheduler not in (None, "inprocess", "local"):
        from simulator.sweep import address_problem

        problem = address_problem(scheduler)
        if problem is not None:
            problems.append(f"--scheduler {scheduler}: {problem} (or inprocess, or local)")
    out = getattr(args, "out", None)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        problems.append(f"--out {out}: exists and is not a directory")
    if problems:
        raise InputError(problems)


def _merchants(scenario: Any) -> int:
    return sum(int(g.sellers.value) for g in scenario.model.groups)


# -- progress ------------------------------------------------------------------------------------
@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on standard error, or None (no callback) when not wanted.

    Enabled only when standard error is a terminal, so logs and pipes stay clean.
    """
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=True,
                  console=_stderr_console()) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(file=sys.stderr)


def _wants_bar(args: argparse.Namespace, merchants: int, runs: int = 1) -> bool:
    if getattr(args, "no_progress", False):
        return False
    return merchants * args.days * args.replications * runs >= PROGRESS_MIN_WORK


def _project(rulebook_set: Any, scenario: Any, args: argparse.Namespace,
             progress: Callable[[int, int], None] | None) -> Any:
    from simulator.run import project

    return project(rulebook_set, scenario, args.days, args.replications, args.seed,
                   progress=progress)


# -- simulate ------------------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _num(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if unit in ("fraction", "share"):
        return _pct(x)
    return f"{x:,.2f}" if unit == "yuan" else f"{x:.3f}"


def _band(entry: dict[str, Any] | None, unit: str) -> str:
    """The mean with its 5-95 % band written "low to high": with a dash between them a
    negative bound (a margin below zero) would read as a minus sign."""
    if not entry or entry.get("mean") is None:
        return "-"
    if entry.get("n", 0) > 1:
        return (f"{_num(entry['mean'], unit)} ({_num(entry['p5'], unit)}"
                f" to {_num(entry['p95'], unit)})")
    return _num(entry["mean"], unit)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    console.print(f"Projected {summary['set']} (revision {summary['revision']}) on scenario "
                  f"{summary['scenario']}: {summary['days']} days, {summary['replications']} "
                  f"replications, seed {summary['seed']}", highlight=False)
    series = summary["series"]
    cohorts = summary["cohorts"]
    table = Table(title="On the last day, by cohort: mean across replications (5-95 % band)",
                  title_justify="left")
    table.add_column("outcome")
    for c in cohorts:
        table.add_column(c, justify="right")
    for name in ("share_alive_by_cohort", "price_mean", "margin_mean", "quality_mean",
                 "refund_burden_ratio_by_cohort"):
        if name in series:
            s = series[name]
            table.add_row(s["title"], *[_band(s["final"].get(c), s["unit"]) for c in cohorts])
    console.print(table)
    pop = Table(title="Whole population, last day", title_justify="left")
    pop.add_column("outcome")
    pop.add_column("value", justify="right")
    for name in ("share_alive", "median_margin", "exposure_gini", "exposure_hhi", "take_rate",
                 "refund_burden_ratio", "fee_burden_ratio", "ad_burden_ratio",
                 "below_cost_sales_share"):
        if name in series:
            s = series[name]
            pop.add_row(s["title"], _band(s["final"], s["unit"]))
    console.print(pop)


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator import outputs

    keep_freed_memory()  # this process runs projections (simulator.memory)
    _check_run_size(args)
    rulebook_set = _load_set(args.rulebooks)
    # (on a LocalCluster, the workers' parts and the series stacked from them, at once)
    scenario = _load_scenario(args, projections=1 if args.scheduler == "inprocess" else 2)
    if args.scheduler == "inprocess":
        with progress_bar(f"projecting {rulebook_set.id}",
                          _wants_bar(args, _merchants(scenario))) as update:
            projection = _project(rulebook_set, scenario, args, update)
    else:
        from simulator.sweep import SweepTask, project_distributed

        task = SweepTask(args.rulebooks, args.scenario, (), args.days, args.replications,
                         args.seed)
        with _status(f"projecting {rulebook_set.id} on {args.scheduler}"):
            try:
                projection = project_distributed(
                    task, scheduler=None if args.scheduler == "local" else args.scheduler,
                    workers=args.workers)
            except ValueError as exc:
                raise InputError([str(exc)]) from None
    written = outputs.write_outputs(projection, args.out, charts=not args.no_charts)
    summary = outputs.summarize(projection)
    if args.format == "json":
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        _print_summary(summary)
        print(f"wrote {written.summary}, {written.arrays} and {len(written.charts)} chart files "
              f"under {Path(args.out) / 'charts'}")
    if summary["infinite"]:
        _err(f"warning: {', '.join(summary['infinite'])} reached infinity (numbers past what a "
             "float holds: look at the scenario's costs, spreads and scales); the summary "
             "shows those days, and the figures computed from them (ratios, margins), as no "
             "value")
    return OK


# -- whatif --------------------------------------------------------------------------------------
def cmd_whatif(args: argparse.Namespace) -> int:
    from simulator import outputs, whatif

    keep_freed_memory()  # this process runs projections (simulator.memory)
    _check_run_size(args)
    problem = whatif.confidence_problem(args.confidence)
    if problem is not None:
        raise InputError([f"--confidence {problem}"])
    set_a = _load_set(args.set_a)
    set_b = _load_set(args.set_b)
    scenario = _load_scenario(args, projections=2)
    with progress_bar(f"projecting {set_a.id}",
                      _wants_bar(args, _merchants(scenario), 2)) as update:
        a = _project(set_a, scenario, args, update)
    with progress_bar(f"projecting {set_b.id}",
                      _wants_bar(args, _merchants(scenario), 2)) as update:
        b = _project(set_b, scenario, args, update)
    comparison = whatif.compare(a, b, confidence=args.confidence)
    out = Path(args.out)
    json_path, charts = whatif.write_outputs(comparison, out)
    for label, p in (("a", a), ("b", b)):
        (out / label).mkdir(parents=True, exist_ok=True)
        outputs.write_summary(p, out / label / "summary.json")
        outputs.write_arrays(p, out / label / "series.npz")
    if args.format == "json":
        print(json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_comparison(comparison)
        print(f"wrote {json_path}, {len(charts)} chart files and each run's summary and arrays "
              f"under {out}/a and {out}/b")
    return OK


def _print_comparison(c: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from simulator import outputs

    console = Console(width=140)
    console.print(f"What-if on scenario {c.scenario}: B = {c.b['set']} minus A = {c.a['set']}, "
                  f"{c.days} days, {c.replications} paired replications (seed {c.seed})",
                  highlight=False)
    table = Table(title=f"On the last day: difference B - A and its {c.confidence:.0%} "
                        "confidence interval", title_justify="left")
    for col in ("outcome", "cohort", "A", "B", "B - A", "interval", ""):
        table.add_column(col, justify="left" if col in ("outcome", "cohort") else "right")
    for d in c.differences:
        if d.statistic != "final" or d.series in ("gmv",):
            continue
        unit = d.unit
        diff = _diff(d.difference, unit)
        interval = ("-" if d.low != d.low else f"{_diff(d.low, unit)} .. {_diff(d.high, unit)}")
        table.add_row(outputs.info(d.series).title, d.cohort or "all",
                      _num(_none(d.a), unit), _num(_none(d.b), unit), diff, interval,
                      "*" if d.significant else "")
    console.print(table)
    console.print("* the interval excludes zero; fractions differ in percentage points (pp)",
                  highlight=False)


def _none(x: float) -> float | None:
    return None if x != x else x


def _diff(x: float, unit: str) -> str:
    if x != x:
        return "-"
    if unit in ("fraction", "share"):
        return f"{x * 100:+.1f} pp"
    return f"{x:+,.2f}" if unit == "yuan" else f"{x:+.3f}"


# -- sensitivity ---------------------------------------------------------------------------------
def cmd_sensitivity(args: argparse.Namespace) -> int:
    from simulator import sensitivity

    keep_freed_memory()  # this process runs projections (simulator.memory)
    _check_run_size(args)
    _load_set(args.rulebooks)
    scenario = _load_scenario(args, pieces=1)  # (its runs counted below)
    names = args.param or list(sensitivity.DEFAULT_PARAMETERS)
    known = scenario.sources()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError([f"scenario {scenario.name!r} has no parameter {n!r}" for n in unknown]
                         + ["parameters are dotted paths like refunds.claim_rate"])
    if not 0.0 < args.step < 1.0:
        raise InputError([f"--step must be between 0 and 1 (e.g. 0.2 for ±20 %), "
                          f"not {args.step}"])
    if args.top < 1:
        raise InputError([f"--top must be at least 1, not {args.top}"])
    base = {n: scenario.value(n) for n in names}
    flags = [n for n, v in base.items() if isinstance(v, bool) or not isinstance(v, int | float)]
    if flags:
        raise InputError([f"parameter {n!r} is not a number" for n in flags])
    runs = 1 + 2 * len(names)  # (every run's projection is held until they are ranked)
    _runnable(scenario, args, pieces=runs, projections=runs)
    work = _merchants(scenario) * args.days * args.replications * (1 + 2 * len(names))
    with progress_bar("sensitivity runs", not args.no_progress and
                      work >= PROGRESS_MIN_WORK) as update:
        try:
            table = sensitivity.sensitivity(
                args.rulebooks, args.scenario, base, days=args.days,
                replications=args.replications, seed=args.seed, step=args.step,
                scheduler=None if args.scheduler == "local" else args.scheduler,
                workers=args.workers, progress=update)
        except ValueError as exc:
            raise InputError([str(exc)]) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = table.write_json(out / "sensitivity.json")
    if args.format == "json":
        print(json.dumps(table.to_dict(), indent=2))
        return OK
    _print_sensitivity(table, args.top)
    print(f"wrote {path}")
    return OK


def _print_sensitivity(table: Any, top: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=140)
    console.print(f"One at a time, each parameter at -{table.step:.0%} and +{table.step:.0%} of "
                  f"its value (or at its value where the scenario does not take the other: "
                  f"one-sided, see low .. high), same seed {table.seed} for every run; "
                  f"{table.days} days, {table.replications} replications. Effect = outcome at "
                  "+ minus outcome at -, on the last day.", highlight=False)
    for outcome in table.outcomes():
        effects = table.for_outcome(outcome)[:top]
        unit = _unit_of(outcome)
        t = Table(title=escape(f"{_outcome_title(outcome)} ({outcome})"), title_justify="left")
        for col in ("rank", "parameter", "low .. high", "outcome low .. high", "effect",
                    "elasticity"):
            t.add_column(col, justify="left" if col == "parameter" else "right")
        for e in effects:
            t.add_row(str(e.rank), e.parameter, f"{e.low_value:g} .. {e.high_value:g}",
                      f"{_num(_none(e.outcome_low), unit)} .. "
                      f"{_num(_none(e.outcome_high), unit)}",
                      _diff(e.effect, unit),
                      "-" if e.elasticity != e.elasticity else f"{e.elasticity:+.2f}")
        console.print(t)


def _outcome_title(outcome: str) -> str:
    """``margin_mean[small]`` as people read it: ``Mean margin, small``."""
    from simulator import outputs

    series, _, cohort = outcome.partition("[")
    title = outputs.info(series).title
    return f"{title}, {cohort.rstrip(']')}" if cohort else title


def _unit_of(outcome: str) -> str:
    from simulator import outputs

    return outputs.info(outcome.split("[", 1)[0]).unit


# -- calibrate -----------------------------------------------------------------------------------
def cmd_calibrate(args: argparse.Namespace) -> int:
    from simulator.calibration import calibrate, with_sellers

    keep_freed_memory()  # this process runs projections (simulator.memory)
    _check_run_size(args)
    if args.sellers is not None and args.sellers < 1:
        raise InputError([f"--sellers must be at least 1, not {args.sellers}"])
    scenario = _load_scenario(args, projections=3)
    if args.sellers is not None:
        try:
            scenario = _runnable(with_sellers(scenario, args.sellers), args, projections=3)
        except ValueError as exc:
            raise InputError([f"--sellers {args.sellers}: {exc}"]) from None
    with _status("calibration: projecting lowprice-2024 (twice) and reformed-2025"):
        results = calibrate(scenario, days=args.days, replications=args.replications,
                            seed=args.seed)
    rows = [_calibration_row(r) for r in results]
    failed = sum(not r["passed"] for r in rows)
    if args.format == "json":
        print(json.dumps({"scenario": scenario.name, "days": args.days,
                          "replications": args.replications, "seed": args.seed,
                          "passed": len(rows) - failed, "failed": failed, "targets": rows},
                         indent=2, ensure_ascii=False))
    else:
        for r in rows:
            mark = "PASS" if r["passed"] else "FAIL"
            low, high = r["band"]
            about = f" ({r['description']})" if r.get("description") else ""
            print(f"{mark} {r['target']}{about}: band [{low:g}, {high:g}], simulated "
                  f"{_g(r['value'])} (spread {_g(r['spread'])} across {args.replications} "
                  "replications)")
        print(f"{len(rows) - failed} passed, {failed} failed "
              f"({args.days} days, {args.replications} replications, seed {args.seed})")
    return FINDINGS if failed else OK


def _g(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.4g}"


@contextmanager
def _status(text: str) -> Iterator[None]:
    """A spinner on a terminal for work that reports no progress of its own."""
    if not sys.stderr.isatty():
        yield
        return
    with _stderr_console().status(text):
        yield


def _plain(x: Any) -> Any:
    if isinstance(x, tuple | list):
        return [_plain(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x


def _calibration_row(r: Any) -> dict[str, Any]:
    """A calibration result as plain data: target, band, value, spread, passed."""
    keys = ("target", "description", "band", "value", "spread", "passed")
    d = {k: _plain(getattr(r, k)) for k in keys if hasattr(r, k)}
    for k in ("value", "spread"):  # JSON has no NaN: a value that could not be computed is null
        if isinstance(d.get(k), float) and d[k] != d[k]:
            d[k] = None
    return d


# -- sweep ---------------------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace) -> int:
    from simulator import sweep

    keep_freed_memory()  # this process runs projections (simulator.memory)
    _check_run_size(args)
    _load_set(args.rulebooks)
    scenario = _load_scenario(args, pieces=1)  # (its runs counted below)
    try:
        grid = sweep.parse_grid(args.param)
    except ValueError as exc:
        raise InputError([str(exc)]) from None
    populations = [scenario]
    for name, values in grid.items():
        for v in values:
            try:
                overridden = sweep.apply_overrides(scenario, {name: v})
            except ValueError as exc:
                raise InputError([f"--param {name}: {exc}"]) from None
            if name.endswith(".sellers"):  # (a population of its own)
                populations.append(overridden)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        if any(s < 0 for s in seeds):
            raise ValueError
    except ValueError:
        raise InputError([f"--seeds {args.seeds!r}: expected seeds like 1,2,3"]) from None
    try:
        tasks = sweep.sweep_tasks(args.rulebooks, args.scenario, grid, seeds, args.days,
                                  args.replications)
    except ValueError as exc:  # (a grid of too many points)
        raise InputError([f"--param: {exc}"]) from None
    for population in populations:  # does each fit, with every run's series held?
        _runnable(population, args, pieces=len(tasks), projections=len(tasks))
    scheduler = {"local": None}.get(args.scheduler, args.scheduler)
    with progress_bar(f"{len(tasks)} sweep runs", not args.no_progress) as update:
        result = sweep.run_sweep(tasks, scheduler=scheduler, workers=args.workers,
                                 progress=update)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = result.write_json(out / "sweep.json")
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
        return OK
    _print_sweep(result)
    print(f"wrote {path}")
    return OK


#: Columns of the printed sweep table (sweep.json has them all): key, header, unit.
SWEEP_COLUMNS = (
    ("share_alive", "trading", "fraction"),
    ("share_alive_by_cohort[small]", "small trading", "fraction"),
    ("share_alive_by_cohort[large]", "large trading", "fraction"),
    ("median_margin", "median margin", "fraction"),
    ("refund_burden_ratio", "refund burden", "fraction"),
    ("exposure_gini", "exposure Gini", "index"),
    ("below_cost_sales_share", "sold below cost", "fraction"),
)


def _print_sweep(result: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=160)
    rows = result.rows()
    console.print(f"{len(rows)} runs on {result.where}", highlight=False)
    if not rows:
        return
    params = [name for name, _ in result.tasks[0].overrides]
    shown = [c for c in SWEEP_COLUMNS if c[0] in rows[0]]
    t = Table(title="Last day, mean across replications (more outcomes in sweep.json)",
              title_justify="left")
    for name in params:
        t.add_column(escape(name), justify="right")
    t.add_column("seed", justify="right")
    for _, header, _ in shown:
        t.add_column(header, justify="right")
    for row in rows:
        t.add_row(*[f"{row[n]:g}" for n in params], str(row["seed"]),
                  *[_num(_none(row[key]), unit) for key, _, unit in shown])
    console.print(t)


# -- registration --------------------------------------------------------------------------------
def _run_options(p: argparse.ArgumentParser, *, days: int = DEFAULT_DAYS,
                 replications: int = DEFAULT_REPLICATIONS, seed: int | None = DEFAULT_SEED) \
        -> None:
    p.add_argument("--scenario", metavar="FILE",
                   help="scenario file (YAML); default: the bundled default scenario")
    p.add_argument("--days", type=int, default=days, help=f"days to project (default {days})")
    p.add_argument("--replications", type=int, default=replications,
                   help=f"seeded replications (default {replications})")
    if seed is not None:  # a sweep takes --seeds instead
        p.add_argument("--seed", type=int, default=seed,
                       help=f"seed of the run; the same seed gives the same numbers "
                            f"(default {seed})")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="what to print on standard output")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only on a terminal anyway)")


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except InputError as exc:
            for line in exc.lines:
                _err(line)
            return USAGE
        except OSError as exc:  # a scheduler that does not answer, an --out it cannot write
            _err(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror
                 else str(exc))
            return USAGE

    run.__doc__ = fn.__doc__
    return run


def _scheduler_option(p: argparse.ArgumentParser, default: str, what: str = "runs") -> None:
    p.add_argument("--scheduler", default=default, metavar="ADDRESS",
                   help=f"where the {what} go: 'inprocess', 'local' (a Dask LocalCluster of "
                        "--workers processes) or a Dask scheduler address tcp://HOST:PORT; the "
                        f"numbers are the same wherever they run (default {default})")
    p.add_argument("--workers", type=int, default=2,
                   help="workers of the LocalCluster (default 2)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the `rulebook` parser."""
    p = sub.add_parser(
        "simulate", help="project a rulebook set over a merchant population; write a summary, "
                         "arrays and charts",
        description="Project a rulebook set over the population of a scenario for --days days "
                    "and --replications seeded replications. Writes OUT/summary.json, "
                    "OUT/series.npz and OUT/charts/*.png|svg.")
    p.add_argument("--rulebooks", required=True, metavar="DIR", help="a rulebook set directory")
    _run_options(p)
    p.add_argument("--out", metavar="DIR", default="out/simulation",
                   help="output directory (default out/simulation)")
    p.add_argument("--no-charts", action="store_true", help="skip the charts")
    _scheduler_option(p, "inprocess", what="the replications")
    p.set_defaults(func=_guarded(cmd_simulate))

    p = sub.add_parser(
        "whatif", help="project two rulebook sets on the same population and seeds; the "
                       "difference of each outcome with its confidence band",
        description="Project DIR_A (e.g. today's rules) and DIR_B (e.g. a proposed change) on "
                    "the same scenario with the same seeds and report B - A for each outcome, "
                    "paired across replications. Writes OUT/whatif.json, OUT/charts/whatif.* and "
                    "each run's summary under OUT/a and OUT/b.")
    p.add_argument("set_a", metavar="DIR_A", help="the baseline rulebook set")
    p.add_argument("set_b", metavar="DIR_B", help="the alternative rulebook set")
    _run_options(p)
    p.add_argument("--confidence", type=float, default=0.95,
                   help="confidence level of the bands (default 0.95)")
    p.add_argument("--out", metavar="DIR", default="out/whatif",
                   help="output directory (default out/whatif)")
    p.set_defaults(func=_guarded(cmd_whatif))

    p = sub.add_parser(
        "sensitivity", help="rank the scenario parameters by how much they move each outcome",
        description="One at a time, run each parameter at -STEP and +STEP of its value with the "
                    "same seed (common random numbers) and rank the parameters by their effect "
                    "on each outcome; a value the scenario does not take (a markup of 0 "
                    "lowered) is replaced by the base value, one-sided. Writes "
                    "OUT/sensitivity.json.")
    p.add_argument("--rulebooks", required=True, metavar="DIR", help="a rulebook set directory")
    _run_options(p)
    p.add_argument("--param", action="append", metavar="NAME",
                   help="a scenario parameter to perturb, as a dotted path like "
                        "refunds.claim_rate (repeatable; default: a declared list of 12)")
    p.add_argument("--step", type=float, default=0.2,
                   help="relative perturbation (default 0.2, i.e. ±20 %%)")
    p.add_argument("--top", type=int, default=5, help="parameters shown per outcome")
    _scheduler_option(p, "inprocess")
    p.add_argument("--out", metavar="DIR", default="out/sensitivity",
                   help="output directory (default out/sensitivity)")
    p.set_defaults(func=_guarded(cmd_sensitivity))

    p = sub.add_parser(
        "calibrate", help="check the default scenario reproduces the field evidence",
        description="Run the calibration targets (field evidence under lowprice-2024, and "
                    "reformed-2025 faring better) and print each target, its band, the "
                    "simulated value with its spread across replications, and pass or fail. "
                    "Exit 1 if any target fails.")
    _run_options(p, days=365, replications=4, seed=2024)
    p.add_argument("--sellers", type=int, metavar="N",
                   help="sellers per product group instead of the scenario's (a quicker check)")
    p.set_defaults(func=_guarded(cmd_calibrate))

    p = sub.add_parser(
        "sweep", help="run a grid of scenario parameters x seeds on Dask",
        description="Project a rulebook set for every combination of --param values and every "
                    "seed, on a Dask LocalCluster (default) or the cluster at --scheduler "
                    "tcp://HOST:PORT. Writes OUT/sweep.json.")
    p.add_argument("--rulebooks", required=True, metavar="DIR", help="a rulebook set directory")
    _run_options(p, seed=None)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUES",
                   help="a parameter and its values: refunds.claim_rate=0.05,0.1 or "
                        "exit.loss_days=20:40:10 (repeatable)")
    p.add_argument("--seeds", default="1", help="comma-separated seeds (default 1)")
    _scheduler_option(p, "local")
    p.add_argument("--out", metavar="DIR", default="out/sweep",
                   help="output directory (default out/sweep)")
    p.set_defaults(func=_guarded(cmd_sweep))
