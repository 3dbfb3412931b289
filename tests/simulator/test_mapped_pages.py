"""Arrays kept over a run have every page mapped, and `group_exposure` maps the pages it reads.

A page that was never touched is not in the page table; a vector loop's masked load that
skips every row of such a page takes a slow path on every call, and does not map it
(`simulator.memory.mapped_zeros`). These tests read the page table of this process
(/proc/self/pagemap: bit 63 of a page's entry says whether it is present).
"""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator import kernels
from simulator.memory import mapped_zeros

PAGE = mmap.PAGESIZE
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.access("/proc/self/pagemap", os.R_OK),
    reason="reads Linux's page table of the process")


def _unmapped_pages(a: np.ndarray) -> int:
    """How many of the pages holding `a` are not present in the page table."""
    first = a.ctypes.data // PAGE
    last = (a.ctypes.data + a.nbytes - 1) // PAGE
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(first * 8)
        entries = np.frombuffer(f.read((last - first + 1) * 8), dtype=np.uint64)
    return int(np.count_nonzero((entries >> np.uint64(63)) == 0))


@pytest.mark.parametrize(("shape", "dtype"), [(300_000, np.float64), (300_001, np.int64),
                                              (70_001, np.int32), ((3, 100_003), np.float64),
                                              (5, np.float64)])
def test_mapped_zeros_are_zeros_on_mapped_pages(shape: int | tuple[int, int],
                                                dtype: type) -> None:
    a = mapped_zeros(shape, dtype=dtype)
    want = np.zeros(shape, dtype=dtype)
    assert a.shape == want.shape and a.dtype == want.dtype
    assert a.tobytes() == want.tobytes()  # the bits: +0.0, never -0.0
    assert _unmapped_pages(a) == 0


def test_group_exposure_reads_every_page_of_the_channels() -> None:
    """The channels of dead rows (the padding) on pages never touched: the count of the
    admitted reads them with plain loads, which map them (a load masked off there would
    not), in a group that admits listings and in one that admits no one (whose channels
    nothing else reads), and the exposure is the one from a channel array in ordinary
    memory."""
    groups, slots, live_rows = 2, 60_000, 40_000
    n = groups * slots
    alive = np.zeros(n, dtype=np.bool_)
    for g in range(groups):
        alive[g * slots:g * slots + live_rows] = True
    rng = np.random.default_rng(3)
    weight = rng.uniform(0.1, 1.0, n)
    scale = rng.uniform(0.5, 2.0, n).astype(np.float32)
    impressions = rng.uniform(1e4, 1e6, groups)
    share = rng.random(groups)
    fresh = mmap.mmap(-1, n * 8)  # anonymous pages, none touched yet
    channel = np.frombuffer(fresh, dtype=np.float64, count=n)
    channel[alive] = np.where(rng.random(int(alive.sum())) < 0.2, 250.0, 0.0)
    channel[slots:slots + live_rows] = 0.0  # the second group admits no one
    assert _unmapped_pages(channel) > 0  # the padding's pages (else the test shows nothing)
    got, want = np.empty(n), np.empty(n)
    kernels.group_exposure(weight, alive, scale, channel, impressions, share, slots,
                           np.empty(slots), got, True)
    assert _unmapped_pages(channel) == 0
    kernels.group_exposure(weight, alive, scale, channel.copy(), impressions, share, slots,
                           np.empty(slots), want, True)
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))
    del channel
    fresh.close()


def test_a_new_models_arrays_are_mapped_padding_included() -> None:
    """Every per-merchant array the model keeps over a run (the state and the day's working
    arrays) is on mapped pages from the start, the padding slots of the smaller groups
    included, which no stage writes (here: three groups of 2,000 sellers padded to 20,000
    slots, whole pages of padding in every array)."""
    from rules.loader import load_set
    from simulator.model import Model
    from simulator.run import replication_seed
    from simulator.scenario import load_scenario

    sizes = {"groups.0.sellers": 20_000, "groups.1.sellers": 2_000,
             "groups.2.sellers": 2_000, "groups.3.sellers": 2_000}
    sc = load_scenario(ROOT / "tests" / "fixtures" / "scenarios" / "tiny.yaml").with_values(sizes)
    model = Model(load_set(ROOT / "rules" / "books" / "lowprice-2024"), sc,
                  [replication_seed(5, 0)])
    assert model.n == 80_000
    kept = {f"state {k}": v for k, v in model.s.items() if isinstance(v, np.ndarray)}
    kept.update({f"scratch {k}": v for k, v in model._scratch.items()})
    per_merchant = {k: v for k, v in kept.items() if v.shape[:1] == (model.n,)}
    assert len(per_merchant) > 30
    assert {k: _unmapped_pages(v) for k, v in per_merchant.items()
            if _unmapped_pages(v)} == {}
