"""`kernels.changed_rows` looks for changes stretch by stretch: every size, every place (a
stretch's lowest and highest rows, a stretch all changed)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import kernels


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 127, 128, 129, 1_000, 4_097])
@pytest.mark.parametrize("share", [0.0, 0.01, 0.3, 1.0])
def test_changed_rows_finds_every_change_in_order(n: int, share: float) -> None:
    rng = np.random.default_rng(n)
    previous = rng.integers(0, 2**32, n, dtype=np.uint32)
    current = previous.copy()
    changed = rng.random(n) < share
    for edge in (0, 63, 64, 127, n - 1):  # the ends of the first stretches and of the tail
        if 0 <= edge < n and share:
            changed[edge] = True
    current[changed] ^= rng.integers(1, 2**32, int(changed.sum()), dtype=np.uint32)
    expected = np.flatnonzero(current != previous)
    out = np.empty(n, dtype=np.int64)
    k = kernels.changed_rows(current, previous, out)
    assert np.array_equal(out[:k], expected)
    assert np.array_equal(previous, current)  # the new reference
