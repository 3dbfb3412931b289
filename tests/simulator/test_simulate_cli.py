"""`rulebook simulate | whatif | sensitivity | calibrate | sweep` from the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.cli import main

ROOT = Path(__file__).resolve().parents[2]
LOWPRICE = str(ROOT / "rules" / "books" / "lowprice-2024")
REFORMED = str(ROOT / "rules" / "books" / "reformed-2025")
DEFAULT_SCENARIO = ROOT / "simulator" / "scenarios" / "default.yaml"

# Small runs: the default population, a few days.
SMALL = ["--days", "4", "--replications", "2", "--seed", "3"]


def _bad_scenario(tmp_path: Path) -> Path:
    text = DEFAULT_SCENARIO.read_text().replace("  claim_rate:", "  claim_rat:", 1)
    assert text != DEFAULT_SCENARIO.read_text()
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


# -- input errors: exit 2, nothing run -----------------------------------------------------------
def test_a_bad_scenario_file_is_reported_with_file_line_and_column(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _bad_scenario(tmp_path)
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), start=1)
                if "claim_rat:" in text)
    code = main(["simulate", "--rulebooks", LOWPRICE, "--scenario", str(bad), *SMALL,
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{bad}:{line}:3:" in err and "claim_rat" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["simulate", "--rulebooks", "no/such/set"], "no/such/set: no such rulebook set"),
    (["simulate", "--rulebooks", LOWPRICE, "--scenario", "no/such.yaml"],
     "no/such.yaml: no such scenario file"),
    (["simulate", "--rulebooks", LOWPRICE, "--days", "0"], "--days must be at least 1"),
    (["whatif", LOWPRICE, REFORMED, "--replications", "0"], "--replications"),
    (["whatif", LOWPRICE, REFORMED, "--confidence", "2"], "--confidence"),
    (["sensitivity", "--rulebooks", LOWPRICE, "--param", "refunds.nope"],
     "has no parameter 'refunds.nope'"),
    (["sensitivity", "--rulebooks", LOWPRICE, "--step", "0"], "--step"),
    (["sensitivity", "--rulebooks", LOWPRICE, "--top", "0"], "--top must be at least 1"),
    (["calibrate", "--sellers", "20000000"],
     "--sellers 20000000: override makes scenario 'default' invalid: groups.0.sellers.value: "
     "Input should be less than or equal to 10000000"),
    (["sweep", "--rulebooks", LOWPRICE, "--param", "refunds.claim_rate"], "--param"),
    (["sweep", "--rulebooks", LOWPRICE, "--param", "exit.loss_days=2.5"], "whole number"),
    (["sweep", "--rulebooks", LOWPRICE, "--param", "refunds.claim_rate=2"], "invalid"),
    (["sweep", "--rulebooks", LOWPRICE, "--param", "x.y=1", "--seeds", "a"], "--param x.y"),
    (["sweep", "--rulebooks", LOWPRICE, "--seeds", "a,b"], "--seeds"),
    (["sweep", "--rulebooks", LOWPRICE,
      *(x for name in ("claim_rate", "lacking_evidence_share", "intervention_share")
        for x in ("--param", f"refunds.{name}=0:0.999:0.001"))],
     "--param: the grid has 1,000,000,000 points (1000 x 1000 x 1000), more than 100,000"),
    (["sweep", "--rulebooks", LOWPRICE, "--scheduler", "tcp://127.0.0.1:99999"],
     "--scheduler tcp://127.0.0.1:99999: the port '99999' is not a number from 1 to 65535"),
    (["simulate", "--rulebooks", LOWPRICE, "--scheduler", "bogus"],
     "--scheduler bogus: expected an address like tcp://HOST:PORT"),
    (["simulate", "--rulebooks", LOWPRICE, "--scheduler", "inproc://x"],
     "--scheduler inproc://x: expected an address like tcp://HOST:PORT (or "
     "inproc://HOST/PID/N)"),
    (["simulate", "--rulebooks", LOWPRICE, "--scheduler", "inproc://192.0.2.2/1/1"],
     "--scheduler inproc://192.0.2.2/1/1: an inproc:// address reaches a scheduler in the "
     "same process only; give a tcp:// address"),
    (["simulate", "--rulebooks", LOWPRICE, "--scheduler", "tls://127.0.0.1:8786"],
     "--scheduler tls://127.0.0.1:8786: a tls:// scheduler needs Dask's TLS settings "
     "(distributed.comm.tls: ca-file, and client.cert with its key), and they are not all set"),
    (["sensitivity", "--rulebooks", LOWPRICE, "--scheduler", "ucx://127.0.0.1:8786"],
     "--scheduler ucx://127.0.0.1:8786: the installed Dask has no ucx:// transport"),
    (["simulate", "--rulebooks", LOWPRICE, "--scheduler", "inproc://h/x/1"],
     "--scheduler inproc://h/x/1: expected an address like tcp://HOST:PORT (or "
     "inproc://HOST/PID/N)"),
    (["whatif", LOWPRICE, REFORMED, "--confidence", "-1"],
     "--confidence must be between 0 and 1, e.g. 0.95, not -1.0"),
    (["whatif", LOWPRICE, REFORMED, "--confidence", "nan"],
     "--confidence must be between 0 and 1, e.g. 0.95, not nan"),
    (["whatif", LOWPRICE, REFORMED, "--confidence", "0.9999999999999999"],
     "--confidence 0.9999999999999999 is too close to 1: its interval would have no end"),
    (["sensitivity", "--rulebooks", LOWPRICE, "--param", "refunds.claim_rate", "--step",
      "1e-17", "--days", "2", "--replications", "1"],
     "parameter 'refunds.claim_rate': a step of 1e-17 does not move its value"),
])
def test_usage_errors_exit_2_with_a_clear_message(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("command", [
    ["simulate", "--rulebooks", LOWPRICE], ["whatif", LOWPRICE, REFORMED],
    ["sensitivity", "--rulebooks", LOWPRICE], ["calibrate"],
    ["sweep", "--rulebooks", LOWPRICE, "--param", "refunds.claim_rate=0.1"],
])
def test_a_run_past_the_calendars_end_is_refused_before_it_starts(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = DEFAULT_SCENARIO.read_text()
    assert 'start: "2024-07-01"' in text
    late = tmp_path / "late.yaml"
    late.write_text(text.replace('start: "2024-07-01"', 'start: "9999-12-01"'))
    assert main([*command, "--scenario", str(late), "--days", "10"]) == 2
    assert (f"{late}: 10 days from 9999-12-01 run past what the calendar holds"
            in capsys.readouterr().err)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_simulate_warns_of_series_that_reached_infinity(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A log-normal cost spread of 100 sends costs and prices past a float's range: the run
    ends, and says which series overflowed (the summary shows them as no value)."""
    text = DEFAULT_SCENARIO.read_text()
    assert "cost_spread: {value: 0.04," in text
    wide = tmp_path / "wide.yaml"
    wide.write_text(text.replace("cost_spread: {value: 0.04,", "cost_spread: {value: 100.0,"))
    assert main(["simulate", "--rulebooks", LOWPRICE, "--scenario", str(wide), *SMALL,
                 "--no-charts", "--out", str(tmp_path / "o")]) == 0
    assert "warning: gmv, price_mean" in capsys.readouterr().err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["infinite"][:2] == ["gmv", "price_mean"]


@pytest.mark.parametrize(("command", "out"), [
    (["simulate", "--rulebooks", LOWPRICE], True), (["whatif", LOWPRICE, REFORMED], True),
    (["calibrate"], False), (["simulate", "--rulebooks", LOWPRICE, "--scheduler", "local"], True),
])
def test_a_population_past_this_machines_memory_is_refused_before_it_starts(
        command: list[str], out: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The default population (four groups of at most 60 sellers: 240 slots a replication)
    on a machine said to have 100 kB free (a process's base alone is 256 MiB)."""
    from simulator import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 100_000)
    assert main([*command, "--days", "3", *(["--out", str(tmp_path / "o")] if out else [])]) == 2
    err = capsys.readouterr().err
    # (in one process, or in each of the LocalCluster's two workers)
    one = r" merchant slots and \d+\.\d KiB of daily series need about 25[67]\.\d MiB"
    two = (r"2 processes of 1,920 merchant slots each and \d+\.\d KiB of daily series need "
           r"about 513\.9 MiB")
    assert re.search(one, err) or re.search(two, err)
    assert ("MiB at the peak; this machine has 97.7 KiB available (sellers of the product "
            "groups: 40, 60, 60, 40)") in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", [
    ["simulate", "--rulebooks", LOWPRICE, "--scheduler", "local"],
    ["sweep", "--rulebooks", LOWPRICE],
    ["sensitivity", "--rulebooks", LOWPRICE, "--scheduler", "local"],
])
def test_no_workers_is_a_usage_error_not_a_cluster_that_never_runs(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, *SMALL[:4], "--workers", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--workers must be at least 1, not 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", [
    ["simulate", "--rulebooks", LOWPRICE], ["whatif", LOWPRICE, REFORMED],
    ["sensitivity", "--rulebooks", LOWPRICE], ["sweep", "--rulebooks", LOWPRICE],
])
def test_an_out_that_is_a_file_is_a_usage_error_before_running(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a-file"
    out.write_text("keep me")
    assert main([*command, *SMALL[:4], "--out", str(out)]) == 2
    assert f"--out {out}: exists and is not a directory" in capsys.readouterr().err
    assert out.read_text() == "keep me"


def test_a_scheduler_that_does_not_answer_exits_2_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) \
        -> None:
    from simulator import sweep

    def unreachable(*_: Any, **__: Any) -> Any:  # what distributed raises after its timeout
        raise OSError("Timed out trying to connect to tcp://127.0.0.1:1 after 30 s")

    monkeypatch.setattr(sweep, "project_distributed", unreachable)
    assert main(["simulate", "--rulebooks", LOWPRICE, *SMALL, "--scheduler", "tcp://127.0.0.1:1",
                 "--out", str(tmp_path / "o")]) == 2
    assert "Timed out trying to connect to tcp://127.0.0.1:1" in capsys.readouterr().err


def test_a_rulebook_set_that_does_not_load_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "refund.yaml").write_text("rulebook: [\n")
    assert main(["simulate", "--rulebooks", str(broken), *SMALL]) == 2
    assert "refund.yaml:" in capsys.readouterr().err


# -- calibrate: each target, band, value, spread; exit 1 on any fail -----------------------------
def test_calibrate_prints_every_target_and_exits_1_on_a_failure(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator import calibration
    from simulator.calibration import CalibrationResult

    calls: list[dict[str, Any]] = []

    def fake(scenario: Any, **kwargs: Any) -> list[CalibrationResult]:
        calls.append({**kwargs, "sellers": {int(g.sellers.value)
                                            for g in scenario.model.groups}})
        return [CalibrationResult("small_exit", "share of small merchants gone", (0.6, 1.0),
                                  0.83, 0.04, True),
                CalibrationResult("refund_burden_10pct", "refund burden at a 10 % claim rate",
                                  (0.03, 0.08), 0.091, 0.01, False)]

    monkeypatch.setattr(calibration, "calibrate", fake)
    assert main(["calibrate", "--days", "30", "--replications", "3", "--seed", "9",
                 "--sellers", "5"]) == 1
    out = capsys.readouterr().out
    assert "PASS small_exit (share of small merchants gone): band [0.6, 1]" in out
    assert "simulated 0.83 (spread 0.04" in out and "FAIL refund_burden_10pct" in out
    assert "1 passed, 1 failed" in out
    assert calls[0] == {"days": 30, "replications": 3, "seed": 9, "sellers": {5}}

    monkeypatch.setattr(calibration, "calibrate", lambda s, **k: fake(s, **k)[:1])
    assert main(["calibrate", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["failed"] == 0 and data["targets"][0]["band"] == [0.6, 1.0]
    assert (data["days"], data["replications"], data["seed"]) == (365, 4, 2024)


def test_calibrate_runs_the_real_targets_on_a_small_population(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["calibrate", "--days", "5", "--replications", "1", "--sellers", "4",
                 "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == (1 if data["failed"] else 0)
    assert {t["target"] for t in data["targets"]} >= {"margin_start", "small_exit"}
    for t in data["targets"]:
        assert len(t["band"]) == 2 and isinstance(t["passed"], bool)


def test_a_band_with_a_negative_bound_reads_low_to_high() -> None:
    from service.simulate_cli import _band

    entry = {"mean": -0.044, "p5": -0.126, "p95": 0.024, "n": 4}
    assert _band(entry, "fraction") == "-4.4% (-12.6% to 2.4%)"
    assert _band({"mean": 148.031, "p5": 137.29, "p95": 163.17, "n": 4}, "yuan") == (
        "148.03 (137.29 to 163.17)")
    assert _band({"mean": 0.5, "p5": None, "p95": None, "n": 1}, "fraction") == "50.0%"
    assert _band({"mean": None}, "fraction") == _band(None, "fraction") == "-"


# -- real runs (small) ---------------------------------------------------------------------------
def test_simulate_writes_summary_arrays_and_charts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim"
    assert main(["simulate", "--rulebooks", LOWPRICE, *SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lowprice-2024" in printed and "small" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["set"], summary["days"], summary["replications"], summary["seed"]) == (
        "lowprice-2024", 4, 2, 3)
    assert summary["scenario"] == "default"
    with np.load(out / "series.npz") as arrays:
        assert arrays["share_alive"].shape == (2, 4)
    for chart in ("margin", "share_alive", "concentration", "burdens"):
        assert (out / "charts" / f"{chart}.png").stat().st_size > 0
        assert (out / "charts" / f"{chart}.svg").stat().st_size > 0
    # the same seed gives the same numbers
    again = tmp_path / "again"
    assert main(["simulate", "--rulebooks", LOWPRICE, *SMALL, "--out", str(again),
                 "--no-charts", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["series"] == summary["series"]


def test_whatif_writes_the_comparison(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "wi"
    assert main(["whatif", LOWPRICE, REFORMED, *SMALL, "--out", str(out)]) == 0
    assert "reformed-2025" in capsys.readouterr().out
    data = json.loads((out / "whatif.json").read_text())
    assert (data["a"]["set"], data["b"]["set"]) == ("lowprice-2024", "reformed-2025")
    assert any(d["series"] == "share_alive_by_cohort" for d in data["differences"])
    assert (out / "charts" / "whatif.png").exists() and (out / "a" / "summary.json").exists()


def test_sensitivity_and_sweep_run_small(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sensitivity", "--rulebooks", LOWPRICE, "--days", "3", "--replications", "1",
                 "--param", "refunds.claim_rate", "--param", "exit.loss_days",
                 "--out", str(tmp_path / "s")]) == 0
    data = json.loads((tmp_path / "s" / "sensitivity.json").read_text())
    assert {r["parameter"] for r in data["outcomes"]["share_alive"]} == {
        "refunds.claim_rate", "exit.loss_days"}
    capsys.readouterr()
    assert main(["sweep", "--rulebooks", LOWPRICE, "--days", "3", "--replications", "1",
                 "--param", "refunds.claim_rate=0.05,0.1", "--seeds", "1,2",
                 "--scheduler", "inprocess", "--out", str(tmp_path / "w"),
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["refunds.claim_rate"], r["seed"]) for r in rows] == [
        (0.05, 1), (0.05, 2), (0.1, 1), (0.1, 2)]


# -- progress bar --------------------------------------------------------------------------------
class _Terminal:
    """A standard error that says it is a terminal and keeps what is written."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from service import simulate_cli

    with simulate_cli.progress_bar("projecting", True) as update:
        assert update is None  # pytest's captured stderr is not a terminal
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    with simulate_cli.progress_bar("projecting lowprice-2024", False) as update:
        assert update is None  # a short run: no bar
    with simulate_cli.progress_bar("projecting lowprice-2024", True) as update:
        assert update is not None
        update(5, 10)
        update(10, 10)
    assert "projecting lowprice-2024" in "".join(term.parts)


def test_simulate_on_a_dask_cluster_gives_the_in_process_numbers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dask.distributed import LocalCluster

    assert main(["simulate", "--rulebooks", REFORMED, *SMALL, "--out", str(tmp_path / "a"),
                 "--no-charts", "--format", "json"]) == 0
    here = json.loads(capsys.readouterr().out)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        assert main(["simulate", "--rulebooks", REFORMED, *SMALL, "--out",
                     str(tmp_path / "b"), "--no-charts", "--format", "json",
                     "--scheduler", cluster.scheduler_address]) == 0
    there = json.loads(capsys.readouterr().out)
    assert there["series"] == here["series"]
    with np.load(tmp_path / "a" / "series.npz") as a, np.load(tmp_path / "b" / "series.npz") as b:
        for name in a.files:
            if name != "__projection__":
                np.testing.assert_array_equal(a[name], b[name])


def test_a_run_on_a_remote_scheduler_is_not_held_against_this_machines_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the run goes is not this machine: the memory is not checked (the calendar is),
    so the command goes on to connect (refused here: nothing listens on that port)."""
    from simulator import memory, run

    monkeypatch.setattr(memory, "available_bytes", lambda: 100_000)
    checked: list[Any] = []
    # (run's own name for it: bound when simulator.run was imported)
    monkeypatch.setattr(run, "memory_problem", lambda *a, **k: checked.append(a))
    from simulator import sweep

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("Timed out trying to connect")

    monkeypatch.setattr(sweep, "project_distributed", refuse)
    assert main(["simulate", "--rulebooks", LOWPRICE, "--scheduler", "tcp://127.0.0.1:1",
                 *SMALL, "--out", str(tmp_path / "o")]) == 2
    assert [call[:2] for call in checked] == [(0, 0)]  # no model here, the series alone


def test_the_series_are_held_against_this_machines_memory_with_the_population(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """100,000 replications of a year are 18.7 GB of daily series (512 bytes a
    replication-day), whatever the population: refused before anything is made, as a
    million million replications are (which had filled the memory making their list)."""
    from simulator import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 8 * 2**30)
    assert main(["simulate", "--rulebooks", LOWPRICE, "--replications", "100000",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert ("1,999,920 merchant slots and 17.4 GiB of daily series need about 23.0 GiB at the "
            "peak; this machine has 8.0 GiB available") in err, err
    assert main(["whatif", LOWPRICE, REFORMED, "--replications", "10" * 15]) == 2
    assert "and 3.43e+22 TiB of daily series need about 4.29e+22 TiB" in (
        capsys.readouterr().err)


@pytest.mark.parametrize(("argv", "calls"), [
    # (processes, projections) of each check: 100,000 --workers start one per piece of work
    (["simulate", "--rulebooks", LOWPRICE, "--replications", "3"], [(1, 1)]),
    (["simulate", "--rulebooks", LOWPRICE, "--scheduler", "local", "--workers", "100000",
      "--replications", "3"], [(3, 2)]),  # (the workers' parts and their stack)
    (["whatif", LOWPRICE, REFORMED, "--replications", "3"], [(1, 2)]),
    (["calibrate", "--replications", "3"], [(1, 3)]),
    (["sensitivity", "--rulebooks", LOWPRICE, "--scheduler", "local", "--workers", "8",
      "--replications", "9", "--param", "refunds.claim_rate"], [(1, 1), (3, 3)]),
    (["sweep", "--rulebooks", LOWPRICE, "--workers", "8", "--replications", "6", "--param",
      "refunds.claim_rate=0.1"], [(1, 1), (1, 1)]),
    (["sweep", "--rulebooks", LOWPRICE, "--workers", "8", "--replications", "6", "--param",
      "refunds.claim_rate=0.1,0.2", "--seeds", "1,2"], [(1, 1), (4, 4)]),
    (["simulate", "--rulebooks", LOWPRICE, "--scheduler", "tcp://127.0.0.1:1",
      "--replications", "3"], [(0, 2)]),  # (the models elsewhere, the series here)
])
def test_each_command_is_checked_for_the_workers_it_starts_and_the_series_it_holds(
        argv: list[str], calls: list[tuple[int, int]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No more workers than pieces of work (replications, or a sweep's runs); the series of
    every projection a command holds at once. The last check refuses, so nothing runs."""
    from simulator import run
    from simulator.aggregates import series_bytes

    checked: list[tuple[int, int]] = []

    def record(slots: int, processes: int = 1, available: Any = None, series: int = 0) -> Any:
        per = series_bytes(int(argv[argv.index("--replications") + 1]), 365)
        assert series % per == 0
        checked.append((processes, series // per))
        return "refused here" if len(checked) == len(calls) else None

    monkeypatch.setattr(run, "memory_problem", record)
    assert main([*argv, *(["--out", str(tmp_path / "o")] if argv[0] != "calibrate" else [])]) == 2
    assert checked == calls
    assert "refused here" in capsys.readouterr().err


def test_a_sweep_of_populations_is_held_against_this_machines_memory(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A grid over a group's sellers makes populations of their own: each must fit, in each
    of the LocalCluster's workers (the groups are padded to the largest: 4 x 10,000,000)."""
    from simulator import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 8 * 2**30)
    assert main(["sweep", "--rulebooks", LOWPRICE, "--param",
                 "groups.0.sellers=60,10000000"]) == 2
    assert ("2 processes of 40,000,000 merchant slots each and 2.9 MiB of daily series need "
            "about 38.7 GiB at the peak; "
            "this machine has 8.0 GiB available") in capsys.readouterr().err
