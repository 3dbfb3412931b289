"""The compiled float32 draws are numpy's: same bits, and the generators left in the same state.

Every check runs twins from one seed, one through `simulator.draws` (or the `population`
functions that use it) and one through plain numpy, and compares the arrays' bits and the whole
``bit_generator.state`` dictionaries, buffered half-output included: the replication's PCG64
Generator (`uniform_float32`, `pcg64_float32`) and its merchants' SFC64 lanes
(`MerchantLanes`), whose numpy twins are one ``Generator(SFC64)`` per lane.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from simulator import draws
from simulator.population import N_MERCHANT_DRAWS, Layout, appeal_draws, day_draws

SIZES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 126, 127, 128, 129, 130, 131, 255, 256, 257,
         1000, 1001, 4097, 65_537]
SEEDS = range(12)


def _twins(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two Generators as the model makes them (PCG64 from a SeedSequence), in the same state."""
    return (np.random.default_rng(np.random.SeedSequence(seed)),
            np.random.default_rng(np.random.SeedSequence(seed)))


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))


def _equal(a: object, b: object) -> bool:
    """Equality of bit generator states, whose values may be arrays (MT19937's key, ...)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return type(a) is type(b) and a == b


def _same_state(a: np.random.Generator, b: np.random.Generator) -> None:
    assert _equal(a.bit_generator.state, b.bit_generator.state)


@pytest.fixture
def always_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route every draw, however small, through the compiled kernel."""
    monkeypatch.setattr(draws, "FAST_MIN_DRAWS", 0)


@pytest.mark.parametrize("k", SIZES)
@pytest.mark.parametrize("before", [0, 1, 2, 3])
def test_kernel_gives_numpys_float32s_and_state(k: int, before: int) -> None:
    # `before` float32s drawn first: an odd count leaves a buffered half-output to use first.
    for seed in SEEDS:
        fast, plain = _twins(seed)
        fast.random(before, dtype=np.float32)
        plain.random(before, dtype=np.float32)
        _same(draws.pcg64_float32(fast, (k,)), plain.random((k,), dtype=np.float32))
        _same_state(fast, plain)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 101, 240_001])
def test_two_dimensional_draws_fill_in_row_order(n: int) -> None:
    for seed in (0, 1, 2):
        fast, plain = _twins(seed)
        fast.random(1, dtype=np.float32)
        plain.random(1, dtype=np.float32)
        _same(draws.pcg64_float32(fast, (N_MERCHANT_DRAWS, n)),
              plain.random((N_MERCHANT_DRAWS, n), dtype=np.float32))
        _same_state(fast, plain)


def test_a_run_of_mixed_draws_stays_in_step() -> None:
    """Random sequences of float32, float64 and integer draws of random sizes: the compiled
    float32s never put the twins out of step."""
    script = np.random.default_rng(2024)
    for seed in SEEDS:
        fast, plain = _twins(seed)
        for _ in range(40):
            kind = script.integers(4)
            k = int(script.choice([0, 1, 2, 3, 7, 64, 999, 20_000]))
            if kind <= 1:
                _same(draws.pcg64_float32(fast, (k,)), plain.random(k, dtype=np.float32))
            elif kind == 2:
                _same(fast.random(k), plain.random(k))
            else:
                _same(fast.integers(0, 1000, k), plain.integers(0, 1000, k))
            _same_state(fast, plain)


def _plain_lanes(seed: int) -> list[np.random.Generator]:
    """The merchants' lanes of a seed as numpy Generators, one per lane (`MerchantLanes`)."""
    return [np.random.Generator(np.random.SFC64(s))
            for s in draws.lane_seeds(np.random.SeedSequence(seed))]


def _plain_lane_numbers(lanes: list[np.random.Generator], shape: tuple[int, ...]) -> np.ndarray:
    """What `MerchantLanes.uniform_float32` documents: every lane draws 2 x rounds float32s;
    the k-th pair of lane l's is numbers 2 (k L + l) and 2 (k L + l) + 1, the rest dropped."""
    size = int(np.prod(shape))
    rounds = -(-size // (2 * len(lanes)))
    numbers = np.empty((rounds, len(lanes), 2), dtype=np.float32)
    for lane, g in enumerate(lanes):
        numbers[:, lane, :] = g.random(2 * rounds, dtype=np.float32).reshape(rounds, 2)
    return numbers.reshape(-1)[:size].reshape(shape)


def _plain_day(rng: np.random.Generator, lanes: list[np.random.Generator],
               layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """`day_draws` by the documented numpy calls."""
    return (rng.random((2, len(layout.groups))),
            _plain_lane_numbers(lanes, (N_MERCHANT_DRAWS, layout.n)))


def _plain_appeals(rng: np.random.Generator, m: int, per_day: int) -> np.ndarray:
    if m == 0 or per_day == 0:
        return np.empty((per_day, 0), dtype=np.float32)
    return rng.random((per_day, m), dtype=np.float32)


def _days(slots: int, groups: int = 3) -> Layout:
    return Layout(tuple(f"g{i}" for i in range(groups)), (slots,) * groups, slots)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("slots", [0, 1, 2, 3, 5, 1001, 40_000])
def test_days_and_appeals_match_plain_numpy(compiled: bool, slots: int,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """day_draws, appeal_draws with odd and even counts, day_draws again, ...: the population
    functions give the plain numpy calls' numbers and states, the appeals by kernel or by
    numpy."""
    if compiled:
        monkeypatch.setattr(draws, "FAST_MIN_DRAWS", 0)
    layout = _days(slots)
    appeals = [(3, 1), (0, 2), (5, 3), (2, 0), (4, 2), (7, 1), (10_001, 3), (1, 1)]
    for seed in SEEDS:
        fast, plain = _twins(seed)
        lanes, plain_lanes = draws.MerchantLanes(np.random.SeedSequence(seed)), _plain_lanes(seed)
        for m, per_day in appeals:
            got, want = day_draws(fast, lanes, layout), _plain_day(plain, plain_lanes, layout)
            _same(got.group, want[0])
            _same(got.merchant, want[1])
            _same_state(fast, plain)
            for lane, twin in enumerate(plain_lanes):
                state = twin.bit_generator.state
                assert state["has_uint32"] == 0  # no half-output left to be used first
                assert np.array_equal(lanes.state[:, lane], state["state"]["state"])
            _same(appeal_draws(fast, m, per_day), _plain_appeals(plain, m, per_day))
            _same_state(fast, plain)


@pytest.mark.parametrize("k", [0, 1, 2, 31, 32, 33, 63, 64, 65, 1000, 1_440_003])
def test_lanes_give_numpys_sfc64_numbers(k: int) -> None:
    """Several days of a size that does not fill the lanes' last round: each day starts where
    the last one left every lane (its unused numbers dropped, none carried over)."""
    for seed in (0, 1, 7):
        lanes, plain = draws.MerchantLanes(np.random.SeedSequence(seed)), _plain_lanes(seed)
        for _ in range(3):
            _same(lanes.uniform_float32((k,)), _plain_lane_numbers(plain, (k,)))


def test_lane_seeds_are_the_replications_own() -> None:
    """A replication's lanes follow from its seed alone (a second object of the same seed
    gives the same numbers: nothing is spawned from the object), differ from lane to lane
    and from replication to replication, and are none of the seed's spawned children."""
    from simulator.run import replication_seed

    first = draws.MerchantLanes(replication_seed(4, 0)).uniform_float32((5, 1000))
    seed = replication_seed(4, 0)
    again = draws.MerchantLanes(seed)
    draws.MerchantLanes(seed)  # the same object used twice (the model and the reference)
    _same(again.uniform_float32((5, 1000)), first)
    other = draws.MerchantLanes(replication_seed(4, 1)).uniform_float32((5, 1000))
    assert not np.array_equal(first, other)
    words = draws.MerchantLanes(seed).state
    assert len({tuple(words[:, lane]) for lane in range(draws.SFC64_LANES)}) == draws.SFC64_LANES
    children = {tuple(c.generate_state(4)) for c in seed.spawn(draws.SFC64_LANES + 2)}
    assert not children & {tuple(s.generate_state(4)) for s in draws.lane_seeds(seed)}
    # An integer seed is taken as SeedSequence(seed).
    _same(draws.MerchantLanes(9).uniform_float32((77,)),
          draws.MerchantLanes(np.random.SeedSequence(9)).uniform_float32((77,)))


def test_large_appeals_take_the_compiled_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    kernel = draws.pcg64_float32

    def counted(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        calls.append(shape)
        return kernel(rng, shape)

    monkeypatch.setattr(draws, "pcg64_float32", counted)
    fast, plain = _twins(5)
    _same(appeal_draws(fast, 80_000, 3), _plain_appeals(plain, 80_000, 3))
    _same_state(fast, plain)
    assert calls == [(3, 80_000)]
    appeal_draws(fast, 10, 3)  # small: numpy draws it
    assert len(calls) == 1


@pytest.mark.parametrize("bit_generator", [np.random.MT19937, np.random.Philox,
                                           np.random.SFC64, np.random.PCG64DXSM])
def test_other_bit_generators_go_through_numpy(bit_generator: Callable[..., np.random.BitGenerator],
                                               always_compiled: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        raise AssertionError("the PCG64 kernel ran on another bit generator")

    monkeypatch.setattr(draws, "pcg64_float32", refuse)
    fast = np.random.Generator(bit_generator(11))
    plain = np.random.Generator(bit_generator(11))
    for k in (1, 3, 20_000):
        _same(draws.uniform_float32(fast, (k,)), plain.random(k, dtype=np.float32))
        _same_state(fast, plain)


@pytest.mark.parametrize("delta", [0, 1, 2, 3, 1000, 360_000, 2**40 + 7])
def test_advance_is_numpys(delta: int) -> None:
    rng = np.random.default_rng(np.random.SeedSequence(3))
    lcg = rng.bit_generator.state["state"]
    expected = np.random.PCG64(np.random.SeedSequence(3)).advance(delta).state["state"]["state"]
    assert draws.advance(lcg["state"], delta, lcg["inc"]) == expected


def test_float64_and_raw_draws_leave_the_buffer_alone() -> None:
    """What the kernel relies on: only float32 (32-bit) draws use numpy's buffered half."""
    rng = np.random.default_rng(np.random.SeedSequence(9))
    rng.random(1, dtype=np.float32)
    buffered = rng.bit_generator.state
    assert buffered["has_uint32"] == 1
    rng.random(5)
    rng.bit_generator.random_raw(3)
    after = rng.bit_generator.state
    assert (after["has_uint32"], after["uinteger"]) == (1, buffered["uinteger"])
