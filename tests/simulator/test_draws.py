"""A replication's merchants' lanes draw numpy's own numbers: each lane's float32 uniforms are
its numpy ``Generator(SFC64)``'s, bit for bit, day after day.

Every check runs twins from one seed, one through `simulator.draws.MerchantLanes` (or the
`population` functions that use it) and one through plain numpy, one ``Generator(SFC64)`` per
lane, and compares the arrays' bits and the generators' states.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba.core.errors import TypingError

from simulator import draws
from simulator.population import N_MERCHANT_DRAWS, Layout, appeal_draws, day_draws
from simulator.run import replication_seed

SEEDS = range(12)


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))


def _plain_lanes(seed: int, stream: int = draws.DAY_STREAM) -> list[np.random.Generator]:
    """The merchants' lanes of a seed as numpy Generators, one per lane (`MerchantLanes`)."""
    return [np.random.Generator(np.random.SFC64(s))
            for s in draws.lane_seeds(np.random.SeedSequence(seed), stream)]


def _plain_lane_numbers(lanes: list[np.random.Generator], shape: tuple[int, ...]) -> np.ndarray:
    """What `MerchantLanes.uniform_float32` documents: every lane draws 2 x rounds float32s;
    the k-th pair of lane l's is numbers 2 (k L + l) and 2 (k L + l) + 1, the rest dropped."""
    size = int(np.prod(shape))
    rounds = -(-size // (2 * len(lanes)))
    numbers = np.empty((rounds, len(lanes), 2), dtype=np.float32)
    for lane, g in enumerate(lanes):
        numbers[:, lane, :] = g.random(2 * rounds, dtype=np.float32).reshape(rounds, 2)
    return numbers.reshape(-1)[:size].reshape(shape)


def _days(slots: int, groups: int = 3) -> Layout:
    return Layout(tuple(f"g{i}" for i in range(groups)), (slots,) * groups, slots)


def _same_lanes(lanes: draws.MerchantLanes, plain: list[np.random.Generator]) -> None:
    for lane, twin in enumerate(plain):
        state = twin.bit_generator.state
        assert state["has_uint32"] == 0  # no half-output left to be used first
        assert np.array_equal(lanes.state[:, lane], state["state"]["state"])


@pytest.mark.parametrize("k", [0, 1, 2, 31, 32, 33, 63, 64, 65, 1000, 1_440_003])
def test_lanes_give_numpys_sfc64_numbers(k: int) -> None:
    """Several days of a size that does not fill the lanes' last round: each day starts where
    the last one left every lane (its unused numbers dropped, none carried over)."""
    for seed in (0, 1, 7):
        lanes, plain = draws.MerchantLanes(np.random.SeedSequence(seed)), _plain_lanes(seed)
        for _ in range(3):
            _same(lanes.uniform_float32((k,)), _plain_lane_numbers(plain, (k,)))
            _same_lanes(lanes, plain)


@pytest.mark.parametrize("slots", [0, 1, 2, 3, 5, 1001, 40_000])
def test_days_and_appeals_match_plain_numpy(slots: int) -> None:
    """day_draws, appeal_draws with odd and even counts, day_draws again, ...: the population
    functions give the plain numpy calls' numbers and leave the generators as they do."""
    layout = _days(slots)
    appeals = [(3, 1), (0, 2), (5, 3), (2, 0), (4, 2), (7, 1), (10_001, 3), (1, 1)]
    for seed in SEEDS:
        rng, plain_rng = (np.random.default_rng(np.random.SeedSequence(seed)) for _ in range(2))
        lanes, plain = draws.MerchantLanes(np.random.SeedSequence(seed)), _plain_lanes(seed)
        appeal_lanes = draws.MerchantLanes(np.random.SeedSequence(seed), draws.APPEAL_STREAM)
        plain_appeals = _plain_lanes(seed, draws.APPEAL_STREAM)
        for m, per_day in appeals:
            got = day_draws(rng, lanes, layout)
            _same(got.group, plain_rng.random((2, len(layout.groups))))
            _same(got.merchant, _plain_lane_numbers(plain, (N_MERCHANT_DRAWS, layout.n)))
            assert rng.bit_generator.state == plain_rng.bit_generator.state
            _same_lanes(lanes, plain)
            _same(appeal_draws(appeal_lanes, m, per_day),
                  _plain_lane_numbers(plain_appeals, (per_day, m)))
            _same_lanes(appeal_lanes, plain_appeals)


def test_appeals_move_no_later_days_numbers() -> None:
    """However many merchants appeal on a day, the next days' merchant numbers are the same
    (what keeps two rulebook sets' projections on the same seeds paired day by day)."""
    layout = _days(1001)
    days = []
    for appellants in (0, 7, 5000):
        seed = replication_seed(2, 0)
        rng, lanes = np.random.default_rng(seed), draws.MerchantLanes(seed)
        appeal_lanes = draws.MerchantLanes(seed, draws.APPEAL_STREAM)
        run = []
        for _ in range(3):
            run.append(day_draws(rng, lanes, layout))
            appeal_draws(appeal_lanes, appellants, 3)
        days.append(run)
    for run in days[1:]:
        for got, want in zip(run, days[0], strict=True):
            _same(got.group, want.group)
            _same(got.merchant, want.merchant)


def test_lane_seeds_are_the_replications_own() -> None:
    """A replication's lanes follow from its seed alone (a second object of the same seed
    gives the same numbers: nothing is spawned from the object), differ from lane to lane
    and from replication to replication, and are none of the seed's spawned children."""
    first = draws.MerchantLanes(replication_seed(4, 0)).uniform_float32((5, 1000))
    seed = replication_seed(4, 0)
    draws.MerchantLanes(seed)  # the same object used twice (the model and the reference)
    _same(draws.MerchantLanes(seed).uniform_float32((5, 1000)), first)
    other = draws.MerchantLanes(replication_seed(4, 1)).uniform_float32((5, 1000))
    assert not np.array_equal(first, other)
    words = draws.MerchantLanes(seed).state
    assert len({tuple(words[:, lane]) for lane in range(draws.SFC64_LANES)}) == draws.SFC64_LANES
    children = {tuple(c.generate_state(4)) for c in seed.spawn(draws.SFC64_LANES + 2)}
    day, appeals = ({tuple(s.generate_state(4)) for s in draws.lane_seeds(seed, stream)}
                    for stream in (draws.DAY_STREAM, draws.APPEAL_STREAM))
    assert len(day | appeals) == 2 * draws.SFC64_LANES  # the streams' lanes all differ
    assert not children & (day | appeals)
    # An integer seed is taken as SeedSequence(seed).
    _same(draws.MerchantLanes(9).uniform_float32((77,)),
          draws.MerchantLanes(np.random.SeedSequence(9)).uniform_float32((77,)))


def test_the_lanes_numbers_are_uniform() -> None:
    """A sanity check of the lanes' statistics, numpy's SFC64 being a tested generator: a day
    of 1.44 million numbers fills 64 equal bins evenly, and numbers up to two rounds of the
    lanes apart are uncorrelated (two lanes sharing a state would correlate the numbers as
    far apart as the lanes: about 0.06 at that lag, against 0.005 allowed)."""
    u = draws.MerchantLanes(replication_seed(3, 0)).uniform_float32((N_MERCHANT_DRAWS, 240_000))
    flat = u.ravel().astype(np.float64)
    assert flat.min() >= 0.0 and flat.max() < 1.0
    counts = np.bincount((flat * 64).astype(np.int64), minlength=64)
    expected = flat.size / 64
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 120.0  # 63 degrees of freedom: p < 1e-5 above ~115
    for lag in range(1, 4 * draws.SFC64_LANES + 1):
        r = np.corrcoef(flat[:-lag], flat[lag:])[0, 1]
        assert abs(r) < 0.005, lag


def test_the_kernel_refuses_arrays_of_the_wrong_size() -> None:
    """The kernel writes whole rounds of the lanes: an `out` too short for them, or a state
    of another number of lanes, is refused before anything is written."""
    state = draws.MerchantLanes(1).state.reshape(-1).copy()
    before = state.copy()
    with pytest.raises(ValueError, match="wrong size"):
        draws.sfc64_fill_float32(np.zeros(2 * draws.SFC64_LANES * 3 - 1, np.float32), 3, state)
    with pytest.raises(ValueError, match="wrong size"):
        draws.sfc64_fill_float32(np.zeros(2 * draws.SFC64_LANES, np.float32), 1, state[:-4])
    # A count whose product with the round's size would wrap around a 64-bit integer.
    with pytest.raises(ValueError, match="wrong size"):
        draws.sfc64_fill_float32(np.zeros(2 * draws.SFC64_LANES, np.float32), 2**59, state)
    with pytest.raises(ValueError, match="wrong size"):
        draws.sfc64_fill_float32(np.zeros(2 * draws.SFC64_LANES, np.float32), -1, state)
    assert np.array_equal(state, before)
    # Read-only arrays are not written through: the kernel does not take them.
    frozen = state.copy()
    frozen.flags.writeable = False
    with pytest.raises(TypingError):
        draws.sfc64_fill_float32(np.zeros(2 * draws.SFC64_LANES, np.float32), 1, frozen)
    assert np.array_equal(frozen, before)
