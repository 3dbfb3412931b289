"""Let the C allocator keep freed memory for the next day's arrays (glibc only).

A simulated day allocates and frees the same few hundred arrays again and again: the day's
flows, and the temporaries of every stage's numpy passes (a few hundred kilobytes to a few
megabytes each). glibc's malloc serves blocks above its mmap threshold (128 KiB at first,
raised as big blocks are freed) with fresh pages from the kernel and returns freed memory at
the top of the heap to the kernel as soon as more than twice that threshold is free. Each
day's arrays then land on fresh pages, and every first touch of a 4 KiB page is a page
fault: on a 200,000-merchant day that was about 14,000 faults, a third of the day's CPU time
(more on a virtual machine, where a fault can also cost the host a fault).

`keep_freed_memory` raises both thresholds once per process, so blocks up to 32 MiB come from
the heap and freed memory stays there for reuse. The peak memory of a run does not grow (the
peak is the same set of arrays); memory freed after the run is kept by the process for its
next allocations rather than handed back to the kernel at once. No number a run computes
changes. Elsewhere than glibc (or when `mallopt` is missing) it does nothing.

`mapped_zeros` gives zero arrays whose pages are all in the page table, for arrays kept over
many days whose padding rows nobody writes (see there).
"""

from __future__ import annotations

import ctypes
import math
import sys
from typing import Any

import numpy as np

#: glibc's `mallopt` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Blocks up to this size come from the heap (glibc caps the setting at 32 MiB on 64-bit).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap kept before any is returned to the kernel.
TRIM_THRESHOLD = 1 << 30

_done = False


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as the module docstring says (once per process); whether it did."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) \
        and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done


def mapped_zeros(shape: int | tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """A zero array (the bits of `np.zeros`) whose every page is written, hence mapped.

    `np.zeros` takes its memory from `calloc`, which hands out fresh pages from the kernel
    untouched (they read as zero): a page is mapped only when first read or written. Rows
    that are never written, such as the padding slots of a per-merchant array kept for the
    whole run, can leave whole pages unmapped for good. The compiled kernels' vector loops
    read under a mask (AVX-512 masked loads and compares, which LLVM emits for a load that
    only some rows need, e.g. only the live); a masked load whose lanes are all off does not
    fault, so it does not map the page either, and on an unmapped page it takes a slow path
    on every call: about 20 microseconds per 4 KiB page as measured (some 40 ns per 64-byte
    load), 1.6 ms of a 2 ms exposure pass when a 240,000-slot channel array kept 78 pages of
    padding unmapped. Whether `calloc` gave fresh pages or reused ones (already mapped)
    varied from run to run. Writing the zeros maps every page once, when the array is made.
    """
    a = np.empty(shape, dtype=dtype)
    a.fill(0)
    return a


#: A projecting process's peak memory: a base (the interpreter, numpy, numba and the compiled
#: kernels) and so much per merchant slot of the replications it runs together. The memory
#: benchmark's 30-day runs (bench/simulator_throughput.py) peaked at 0.667 GiB with 1,000,000
#: merchants and 2.082 GiB with 4,000,000: about 506 bytes a slot over 0.2 GiB. Both figures
#: are rounded up, so the estimate is above those peaks at any size.
BASE_BYTES = 1 << 28
BYTES_PER_SLOT = 512


def available_bytes() -> int | None:
    """The memory the kernel says could be allocated without swapping (MemAvailable), or
    None where it does not say (not Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


#: A run's daily series at the peak of a command that makes and writes them, over their
#: bytes (`simulator.aggregates.series_bytes`): 20,000 replications x 100 days of the
#: 24-merchant tiny scenario (0.95 GiB of series, the model about 0.5 GiB with its base)
#: peaked at 1.59 GiB, 0.14 GiB over the two; rounded up.
SERIES_PEAK = 1.25


def memory_problem(slots: int, processes: int = 1, available: int | None = None,
                   series: int = 0) -> str | None:
    """Why `processes` processes each running a model of `slots` merchant slots at once, and
    `series` bytes of daily series gathered in this process (counted at `SERIES_PEAK`), would
    not fit in this machine's memory, None if they would (or if the machine does not say how
    much it has: `available`, by default `available_bytes()`). `processes` 0: the models run
    elsewhere (a cluster at an address), the series alone are held here."""
    free = available_bytes() if available is None else available
    need = processes * (BASE_BYTES + slots * BYTES_PER_SLOT) + math.ceil(SERIES_PEAK * series)
    if free is None or need <= free:
        return None
    if processes < 1:
        who = f"the daily series gathered here ({_size(series)})"
    else:
        who = f"{processes} processes of {slots:,} merchant slots each" if processes > 1 \
            else f"{slots:,} merchant slots"
        if series:
            who += f" and {_size(series)} of daily series"
    return f"{who} need about {_size(need)} at the peak; this machine has {_size(free)} available"


def _size(n: int) -> str:
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB"
    if n < 2**30:
        return f"{n / 2**20:.1f} MiB"
    if n < 2**40:
        return f"{n / 2**30:.1f} GiB"
    tib = n / 2**40
    return f"{tib:,.1f} TiB" if tib < 1e6 else f"{tib:.2e} TiB"
