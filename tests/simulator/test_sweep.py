"""Sweeps on Dask distributed give exactly the in-process result."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simulator import sweep
from simulator.projection import Projection
from tests.simulator.projection_factory import synthetic_projection


def fake_runner(task: sweep.SweepTask) -> Projection:
    """A stand-in for the model: seeded by the task's seed, shifted by its parameters."""
    level = sum(v for _, v in task.overrides)
    return synthetic_projection(replications=task.replications, days=task.days, seed=task.seed,
                                level=level)


def test_grid_points_are_every_combination_in_a_fixed_order() -> None:
    points = sweep.grid_points({"b": [1.0, 2.0], "a": [0.5]})
    assert points == [(("a", 0.5), ("b", 1.0)), (("a", 0.5), ("b", 2.0))]
    tasks = sweep.sweep_tasks("books/x", None, {"a": [1, 2]}, [7, 8], 5, 2)
    assert [(t.overrides, t.seed) for t in tasks] == [
        ((("a", 1.0),), 7), ((("a", 1.0),), 8), ((("a", 2.0),), 7), ((("a", 2.0),), 8)]
    with pytest.raises(ValueError, match="seed"):
        sweep.sweep_tasks("books/x", None, {"a": [1]}, [], 5, 2)


def test_parse_grid() -> None:
    assert sweep.parse_grid(["x=0.1,0.2", "y=1:2:0.5"]) == {"x": [0.1, 0.2], "y": [1.0, 1.5, 2.0]}
    for bad in ("x", "x=", "x=a,b", "x=1:0:1", "x=0:1:0", "x=0:inf:1", "x=nan:1:1"):
        with pytest.raises(ValueError, match=r"values must be numbers|expected NAME"):
            sweep.parse_grid([bad])
    assert len(sweep.parse_grid(["x=0:999:1"])["x"]) == sweep.MAX_VALUES


@pytest.mark.parametrize("spec", ["x=0:1000:1", "x=0:1e300:1e-300", "x=0:1e15:1",
                                  "x=" + ",".join(["1"] * 1001)])
def test_parse_grid_refuses_more_values_than_it_takes_before_making_them(spec: str) -> None:
    """A range's count is checked first: an infinite one (a step of 1e-300) or one of 10^15
    values is refused at once, not built."""
    with pytest.raises(ValueError, match="more than 1000 values"):
        sweep.parse_grid([spec])


@pytest.mark.parametrize(("address", "problem"), [
    ("tcp://127.0.0.1:8786", None), ("tcp://[::1]:8786", None),
    ("tls://scheduler.example:443", "a tls:// scheduler needs Dask's TLS settings "
     "(distributed.comm.tls: ca-file, and client.cert with its key), and they are not all set"),
    (f"inproc://10.0.0.1/{os.getpid()}/1", None),
    ("inproc://x", "expected an address like tcp://HOST:PORT (or inproc://HOST/PID/N)"),
    ("inproc://10.0.0.1/1/1", "an inproc:// address reaches a scheduler in the same process "
     "only; give a tcp:// address"),
    ("ucx://127.0.0.1:8786", "the installed Dask has no ucx:// transport; give a tcp:// "
     "address"),
    ("inproc://h/x/1", "expected an address like tcp://HOST:PORT (or inproc://HOST/PID/N)"),
    ("localhost:8786", "expected an address like tcp://HOST:PORT"),
    ("tcp://127.0.0.1", "expected an address like tcp://HOST:PORT"),
    ("tcp://:8786", "expected an address like tcp://HOST:PORT"),
    ("tcp://[::1]", "expected an address like tcp://HOST:PORT"),
    ("tcp://127.0.0.1:99999", "the port '99999' is not a number from 1 to 65535"),
    ("tcp://127.0.0.1:0", "the port '0' is not a number from 1 to 65535"),
    ("tcp://127.0.0.1:http", "the port 'http' is not a number from 1 to 65535"),
])
def test_a_scheduler_address_is_checked_before_connecting(address: str,
                                                          problem: str | None) -> None:
    assert sweep.address_problem(address) == problem


class _Started(Exception):
    pass


@pytest.mark.parametrize("scheduler", [None, "tcp://127.0.0.1:8786"])
def test_a_local_cluster_starts_no_more_workers_than_pieces_of_work(
        monkeypatch: pytest.MonkeyPatch, scheduler: str | None) -> None:
    """100,000 --workers for 3 tasks, or 2 replications, start 3 and 2 (each a process); a
    cluster at an address is left as it is."""
    started: list[int] = []

    def client(scheduler: Any, *, workers: int, **_: Any) -> Any:
        started.append(workers)
        raise _Started

    monkeypatch.setattr(sweep, "dask_client", client)
    tasks = sweep.sweep_tasks("books/x", None, {"a": [0.1, 0.2, 0.3]}, [5], 3, 2)
    with pytest.raises(_Started):
        sweep.run_sweep(tasks, scheduler=scheduler, workers=100_000, runner=fake_runner)
    with pytest.raises(_Started):
        sweep.project_distributed(tasks[0], scheduler=scheduler, workers=100_000)
    assert started == ([3, 2] if scheduler is None else [100_000, 100_000])


def test_a_tls_address_is_taken_when_dask_has_its_tls_settings() -> None:
    """Dask makes a client's TLS context from a CA file and a client certificate: with one
    of them only, a tls:// scheduler is still refused (Dask would fail without a context)."""
    import dask

    with dask.config.set({"distributed.comm.tls.ca-file": "ca.pem"}):
        assert "not all set" in sweep.address_problem("tls://scheduler.example:443")
    with dask.config.set({"distributed.comm.tls.client.cert": "client.pem"}):
        assert "not all set" in sweep.address_problem("tls://scheduler.example:443")
    with dask.config.set({"distributed.comm.tls.ca-file": "ca.pem",
                          "distributed.comm.tls.client.cert": "client.pem"}):
        assert sweep.address_problem("tls://scheduler.example:443") is None


def test_a_grid_past_its_limit_is_refused_before_its_points_are_made() -> None:
    grid = {name: [float(v) for v in range(1000)] for name in ("a", "b", "c")}
    with pytest.raises(ValueError, match=r"the grid has 1,000,000,000 points \(1000 x 1000 x "
                                         r"1000\), more than 100,000"):
        sweep.grid_points(grid)
    assert len(sweep.grid_points({"a": grid["a"], "b": grid["b"][:100]})) == sweep.MAX_POINTS


def _assert_same(a: sweep.SweepResult, b: sweep.SweepResult) -> None:
    assert a.tasks == b.tasks
    for pa, pb in zip(a.projections, b.projections, strict=True):
        assert pa.seed == pb.seed and set(pa.series) == set(pb.series)
        for name in pa.series:
            np.testing.assert_array_equal(pa.series[name], pb.series[name])


@pytest.mark.parametrize("processes", [False, True])
def test_a_sweep_on_a_two_worker_local_cluster_equals_the_in_process_run(
        processes: bool) -> None:
    tasks = sweep.sweep_tasks("books/x", None, {"refund_rate": [0.0, 0.5]}, [1, 2, 3], 4, 2)
    local = sweep.run_sweep(tasks, scheduler=sweep.INPROCESS, runner=fake_runner)
    seen: list[tuple[int, int]] = []
    dist = sweep.run_sweep(tasks, workers=2, processes=processes, runner=fake_runner,
                           progress=lambda d, t: seen.append((d, t)))
    assert dist.workers == 2 and "LocalCluster" in dist.where
    _assert_same(local, dist)
    assert seen[-1] == (6, 6) and len(seen) == 6
    # the parameters did reach the runs: the second grid point is shifted by 0.5 everywhere
    np.testing.assert_allclose(dist.projections[3].series["exposure_gini"],
                               local.projections[0].series["exposure_gini"] + 0.5)


def _quiet(dask_worker: object = None, dask_scheduler: object = None) -> tuple[Any, ...]:
    """A server's event-loop tick and system-monitor intervals, in seconds, and whether it
    samples its tasks' stacks."""
    server: Any = dask_worker or dask_scheduler
    return (server._tick_interval, server.periodic_callbacks["monitor"].callback_time / 1000,
            "profile" in server.periodic_callbacks)


def test_a_sweeps_local_cluster_runs_its_servers_quiet() -> None:
    """The scheduler and the worker processes took the quiet settings (a worker process gets
    them only through its nanny), and the caller's settings are left as they were."""
    import dask
    from dask.distributed import Client

    before = dask.config.get("distributed.admin.tick.interval")
    cluster = sweep.local_cluster(2)
    try:
        with Client(cluster) as client:
            assert sorted(client.run(_quiet).values()) == [(1.0, 10.0, False)] * 2
            assert client.run_on_scheduler(_quiet) == (1.0, 10.0, False)
    finally:
        cluster.close()
    assert dask.config.get("distributed.admin.tick.interval") == before == "20ms"


def test_an_existing_cluster_by_address_runs_the_same_code() -> None:
    from dask.distributed import LocalCluster

    tasks = sweep.sweep_tasks("books/x", None, {"a": [0.1]}, [5, 6], 3, 2)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        remote = sweep.run_sweep(tasks, scheduler=cluster.scheduler_address, runner=fake_runner)
    assert remote.where == cluster.scheduler_address
    _assert_same(sweep.run_sweep(tasks, scheduler=sweep.INPROCESS, runner=fake_runner), remote)
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        sweep.run_sweep(tasks, scheduler="localhost:8786", runner=fake_runner)


def test_rows_and_json(tmp_path: Path) -> None:
    tasks = sweep.sweep_tasks("books/x", None, {"a": [0.0, 1.0]}, [3], 3, 2)
    result = sweep.run_sweep(tasks, scheduler=sweep.INPROCESS, runner=fake_runner)
    rows = result.rows()
    assert [r["a"] for r in rows] == [0.0, 1.0] and rows[0]["seed"] == 3
    p = result.projections[1]
    assert rows[1]["share_alive"] == pytest.approx(p.series["share_alive"][:, -1].mean())
    assert rows[1]["margin_mean[large]"] == pytest.approx(p.series["margin_mean"][:, -1, 2].mean())
    data = json.loads(result.write_json(tmp_path / "sweep.json").read_text())
    assert data["where"] == "inprocess" and len(data["rows"]) == 2


def test_overrides_take_the_type_the_scenario_gives_them() -> None:
    from simulator.scenario import load_scenario

    scenario = load_scenario()
    changed = sweep.apply_overrides(scenario, {"exit.loss_days": 12.0,
                                               "refunds.claim_rate": 0.2})
    assert changed.value("exit.loss_days") == 12 and isinstance(
        changed.value("exit.loss_days"), int)
    assert changed.value("refunds.claim_rate") == 0.2
    assert scenario.value("refunds.claim_rate") != 0.2  # the original is untouched
    with pytest.raises(ValueError, match="whole number"):
        sweep.apply_overrides(scenario, {"exit.loss_days": 12.5})
    with pytest.raises(ValueError, match=r"no parameter 'refunds\.nope'"):
        sweep.apply_overrides(scenario, {"refunds.nope": 1.0})
    with pytest.raises(ValueError, match="claim_rate"):
        sweep.apply_overrides(scenario, {"refunds.claim_rate": 3.0})


def test_a_small_real_sweep_on_two_workers_equals_the_in_process_run() -> None:
    books = Path(__file__).resolve().parents[2] / "rules" / "books" / "lowprice-2024"
    tasks = sweep.sweep_tasks(books, None, {"refunds.claim_rate": [0.05, 0.1]}, [1, 2], 3, 2)
    local = sweep.run_sweep(tasks, scheduler=sweep.INPROCESS)
    dist = sweep.run_sweep(tasks, workers=2, processes=False)
    assert dist.workers == 2
    for pa, pb in zip(local.projections, dist.projections, strict=True):
        for name in pa.series:
            np.testing.assert_array_equal(pa.series[name], pb.series[name])
    # the grid reached the model: a higher claim rate costs merchants more in refunds
    low, high = local.projections[0], local.projections[2]
    assert np.nanmean(high.series["refund_burden_ratio"]) > np.nanmean(
        low.series["refund_burden_ratio"])


def test_split_indices() -> None:
    assert sweep.split_indices(4, 2) == [(0, 1), (2, 3)]
    assert sweep.split_indices(2, 4) == [(0,), (1,)]
    shares = sweep.split_indices(7, 3)
    assert [i for share in shares for i in share] == list(range(7))


def test_replications_spread_over_workers_stack_to_the_in_process_projection() -> None:
    from rules.loader import load_set
    from simulator.run import project

    books = Path(__file__).resolve().parents[2] / "rules" / "books" / "reformed-2025"
    task = sweep.SweepTask(str(books), None, (), 4, 3, 17)
    spread = sweep.project_distributed(task, workers=2, processes=False)
    whole = project(load_set(books), None, 4, 3, 17)
    assert spread.meta["workers"] == 2
    assert (spread.set_id, spread.revision, spread.replications, spread.days) == (
        whole.set_id, whole.revision, 3, 4)
    assert set(spread.series) == set(whole.series)
    for name in whole.series:
        np.testing.assert_array_equal(spread.series[name], whole.series[name])


def test_a_packed_task_needs_no_files_on_the_worker(tmp_path: Path) -> None:
    from dataclasses import replace

    books = Path(__file__).resolve().parents[2] / "rules" / "books" / "lowprice-2024"
    scenario = tmp_path / "small.yaml"
    scenario.write_text((Path(__file__).resolve().parents[2] / "simulator" / "scenarios"
                         / "default.yaml").read_text())
    task = sweep.SweepTask(str(books), str(scenario), (("refunds.claim_rate", 0.2),), 3, 1, 4)
    here = sweep.run_task(task)
    shipped = sweep.packed(task)
    assert {name for name, _ in shipped.rulebook_texts} >= {"refund.yaml", "ranking.yaml"}
    scenario.unlink()  # the worker's machine has neither file
    moved = replace(shipped, rulebooks=str(tmp_path / "elsewhere" / "lowprice-2024"))
    there = sweep.run_task(moved)
    assert (there.set_id, there.revision, there.scenario) == (
        here.set_id, here.revision, here.scenario)
    for name in here.series:
        np.testing.assert_array_equal(here.series[name], there.series[name])


def test_a_worker_reads_each_text_once_and_only_for_tasks_with_that_text() -> None:
    """Tasks shipped with the same texts are given the same checked set and scenario (read
    once per worker); a text that differs anywhere is read for itself; the overrides are
    applied per task, on the shared scenario left as it was."""
    from dataclasses import replace

    books = Path(__file__).resolve().parents[2] / "rules" / "books" / "lowprice-2024"
    base = sweep.packed(sweep.SweepTask(str(books), None, (), 3, 1, 4))
    a_set, a_scenario = sweep.load_inputs(base)
    b_set, b_scenario = sweep.load_inputs(replace(base, seed=5))
    assert b_set is a_set and b_scenario is a_scenario
    _, bumped = sweep.load_inputs(replace(base, overrides=(("refunds.claim_rate", 0.2),)))
    assert bumped.model.refunds.claim_rate.value == 0.2
    assert a_scenario.model.refunds.claim_rate.value != 0.2
    texts = dict(base.rulebook_texts)
    texts["refund.yaml"] = texts["refund.yaml"].replace("recall_fee: recall_fee",
                                                        "recall_fee: 0.0", 1)
    c_set, _ = sweep.load_inputs(replace(base, rulebook_texts=tuple(texts.items())))
    assert c_set is not a_set and c_set.rulebooks["refund"] != a_set.rulebooks["refund"]
    other = base.scenario_text.replace("Test", "Other", 1) + "\n# another scenario\n"
    _, d_scenario = sweep.load_inputs(replace(base, scenario_text=other))
    assert d_scenario is not a_scenario
