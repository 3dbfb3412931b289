"""Kernels that sum the day's flows and zero them as they go (`simulator.aggregates`).

The flows the model adds to are handed back zeroed every day (`Model.recycle_flows`). A flow
summed by numpy and then zeroed by ``fill`` is read once and written whole: every cache line
dirtied, including the runs of empty slots (about a sixth of the slots at 200,000 merchants)
and the stretches of sparse counts, and each is written back to memory later, during the
next day's stages. `total_clearing` sums a flow with numpy's bits and zeroes each leaf of up
to 128 numbers right after summing it, while it is in cache; `clear_flow` zeroes a flow; both
leave a stretch that is all +0.0 already unwritten (`_clear_between`).
"""

from __future__ import annotations

import numpy as np

from simulator.kernels import _block_sum, _kernel, _pairwise_plan

#: Slots per stretch that `_clear_between` zeroes or leaves as it is.
_CLEAR_STRETCH = 128


@_kernel
def _clear_between(x, bits, lo, hi):  # pragma: no cover - compiled
    """Zero x[lo:hi] (+0.0), `_CLEAR_STRETCH` slots at a time, leaving a stretch that is all
    +0.0 already (`bits` is x's int64 view) unwritten: its cache lines stay clean, with
    nothing to write back to memory (the model's flows have runs of empty slots, and sparse
    counts). Unsigned positions: no test for a negative index, so the loops vectorise."""
    for start in range(lo, hi, _CLEAR_STRETCH):
        end = min(start + _CLEAR_STRETCH, hi)
        seen = np.int64(0)
        for i in range(np.uint64(start), np.uint64(end)):
            seen |= bits[i]
        if seen != 0:
            for i in range(np.uint64(start), np.uint64(end)):
                x[i] = 0.0


@_kernel
def clear_flow(x):  # pragma: no cover - compiled
    """Zero the float64 x (`_clear_between`: stretches all +0.0 already are not written)."""
    _clear_between(x, x.view(np.int64), 0, x.shape[0])


@_kernel
def total_clearing(x, clear):  # pragma: no cover - compiled
    """numpy's ``np.sum`` of the float64 x (+0.0 plus `pairwise_sum`'s leaves and additions,
    any numbers: NaN, -0.0 and fractions alike), and, with `clear`, x zeroed leaf by leaf
    right after each leaf of up to 128 numbers is summed, while it is in cache. A leaf that
    is all +0.0 already is not written: its cache lines stay clean, with nothing to write
    back to memory (the model's flows have stretches of empty slots, and sparse counts)."""
    n = x.shape[0]
    bits = x.view(np.int64)
    lo_of = np.empty(n // 64 + 2, dtype=np.int64)
    n_of = np.empty(n // 64 + 2, dtype=np.int64)
    adds = np.empty(n // 64 + 2, dtype=np.int64)
    leaves = _pairwise_plan(n, lo_of, n_of, adds)
    vals = np.empty(256)
    v = 0
    for j in range(leaves):
        lo, m = lo_of[j], n_of[j]
        vals[v] = _block_sum(x, lo, m)
        v += 1
        for _ in range(adds[j]):
            v -= 1
            vals[v - 1] = vals[v - 1] + vals[v]
        if clear:
            _clear_between(x, bits, lo, lo + m)
    return 0.0 + vals[0]
