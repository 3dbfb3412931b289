"""The compiled float32 draws are numpy's: same bits, and the Generator left in the same state.

Every check runs twin Generators from one seed, one through `simulator.draws` (or the
`population` functions that use it) and one through plain numpy, and compares the arrays' bits
and the whole ``bit_generator.state`` dictionaries, buffered half-output included.
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


def _plain_day(rng: np.random.Generator, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """What `day_draws` was before the kernel: the documented numpy calls."""
    return (rng.random((2, len(layout.groups))),
            rng.random((N_MERCHANT_DRAWS, layout.n), dtype=np.float32))


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
    functions give the plain numpy calls' numbers and state, by kernel or by numpy."""
    if compiled:
        monkeypatch.setattr(draws, "FAST_MIN_DRAWS", 0)
    layout = _days(slots)
    appeals = [(3, 1), (0, 2), (5, 3), (2, 0), (4, 2), (7, 1), (10_001, 3), (1, 1)]
    for seed in SEEDS:
        fast, plain = _twins(seed)
        for m, per_day in appeals:
            got, want = day_draws(fast, layout), _plain_day(plain, layout)
            _same(got.group, want[0])
            _same(got.merchant, want[1])
            _same_state(fast, plain)
            _same(appeal_draws(fast, m, per_day), _plain_appeals(plain, m, per_day))
            _same_state(fast, plain)


def test_a_large_day_takes_the_compiled_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    kernel = draws.pcg64_float32

    def counted(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        calls.append(shape)
        return kernel(rng, shape)

    monkeypatch.setattr(draws, "pcg64_float32", counted)
    fast, plain = _twins(5)
    layout = _days(80_000)
    got, want = day_draws(fast, layout), _plain_day(plain, layout)
    _same(got.merchant, want[1])
    _same_state(fast, plain)
    assert calls == [(N_MERCHANT_DRAWS, layout.n)]
    day_draws(fast, _days(10))  # small: numpy draws it
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
