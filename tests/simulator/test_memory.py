"""The allocator setting of simulation processes: a day's arrays reuse the last day's pages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A "day" allocating and freeing arrays of several sizes (as the model's stages do), six times;
# prints the page faults of each day after the first.
_DAYS = """
import resource, sys
import numpy as np
sys.path.insert(0, {root!r})
if {tuned}:
    from simulator.memory import keep_freed_memory
    assert keep_freed_memory() and keep_freed_memory()  # once per process, then a no-op
sizes = [1 << 19, 3 << 20, 9 << 20, 3 << 19, 6 << 20, 5 << 20, 1 << 20]
faults = []
for day in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(size // 8) for size in sizes]
    del arrays
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[1:]))
"""


def _later_day_faults(tuned: bool) -> int:
    out = subprocess.run([sys.executable, "-c", _DAYS.format(root=str(ROOT), tuned=tuned)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_later_days_reuse_freed_memory_instead_of_faulting_in_fresh_pages() -> None:
    untuned, tuned = _later_day_faults(False), _later_day_faults(True)
    # Untuned, glibc hands the big blocks back and every day faults ~25 MB in again (about
    # 2,000 pages a day); tuned, the blocks stay in the heap.
    assert untuned > 2000
    assert tuned < untuned / 20


def test_a_population_is_held_against_the_memory_the_machine_has() -> None:
    """Each process's base and its slots at `BYTES_PER_SLOT` each, against what is
    available: refused with both sizes when more, passed when not, and passed where the
    machine does not say."""
    from simulator.memory import BASE_BYTES, BYTES_PER_SLOT, memory_problem

    slots = 40_000_000
    need = BASE_BYTES + slots * BYTES_PER_SLOT
    assert memory_problem(slots, available=need) is None
    assert memory_problem(slots, available=need - 1) is not None
    assert memory_problem(slots, 2, available=2 * need - 1) == (
        "2 processes of 40,000,000 merchant slots each need about 38.6 GiB at the peak; this "
        "machine has 38.6 GiB available")
    assert memory_problem(slots, available=18 * 2**30) == (
        "40,000,000 merchant slots need about 19.3 GiB at the peak; this machine has 18.0 GiB "
        "available")


def test_the_series_are_added_once_at_their_peak_and_named() -> None:
    """A run's daily series are held once, by the process that gathers them, whatever its
    workers, at `SERIES_PEAK` times their bytes; the message names their own size. Models
    run elsewhere (processes 0) leave the series alone to check."""
    from simulator.memory import BASE_BYTES, BYTES_PER_SLOT, SERIES_PEAK, memory_problem

    slots, series = 1000, 3 * 2**30
    need = 2 * (BASE_BYTES + slots * BYTES_PER_SLOT) + int(SERIES_PEAK * series)
    assert memory_problem(slots, 2, available=need, series=series) is None
    assert memory_problem(slots, 2, available=need - 1, series=series) == (
        "2 processes of 1,000 merchant slots each and 3.0 GiB of daily series need about "
        "4.3 GiB at the peak; this machine has 4.3 GiB available")
    assert memory_problem(slots, available=0, series=5 * 2**40).endswith(
        "and 5.0 TiB of daily series need about 6.3 TiB at the peak; this machine has 0.0 "
        "KiB available")
    assert memory_problem(0, 0, available=int(SERIES_PEAK * series), series=series) is None
    assert memory_problem(0, 0, available=2**30, series=series) == (
        "the daily series gathered here (3.0 GiB) need about 3.8 GiB at the peak; this "
        "machine has 1.0 GiB available")


def test_a_machine_that_does_not_say_what_it_has_is_not_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    assert memory.memory_problem(10**12) is None
    monkeypatch.setattr(memory, "available_bytes", lambda: 0)
    assert memory.memory_problem(1) is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/meminfo")
def test_the_memory_available_is_read_from_the_kernel() -> None:
    from simulator.memory import available_bytes

    free = available_bytes()
    assert isinstance(free, int) and 2**20 < free < 2**50
