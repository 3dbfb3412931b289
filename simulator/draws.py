"""numpy's float32 uniforms drawn by compiled kernels: the same bits as numpy's, faster.

Two sources (`simulator.population` says which draws come from which):
  - a replication's PCG64 Generator (`uniform_float32`): the starting population and, each day,
    the appeals' draws;
  - its merchants' lanes (`MerchantLanes`): numpy SFC64 generators side by side, seeded from
    the replication's seed, for the six numbers a merchant draws each day, the bulk of a large
    population's draws. SFC64 steps with 64-bit additions, shifts and xors, which SIMD units
    run lane by lane; PCG64's 128-bit multiplication has no SIMD instruction on AVX2, which
    made those numbers cost about twice as much (bench/RESULTS.md).

Why a kernel for the PCG64 Generator: numpy's ``Generator.random(dtype=np.float32)`` spends
about twice the time the PCG64 steps themselves take (it calls the bit generator through a
function pointer once per number). Here the PCG64 steps and the conversion to float32 run in one
compiled loop over 64 lanes: lane l draws outputs l, l + 64, l + 128, ... (it steps 64 outputs
at a time, by the composed multiplier and increment `jump` gives), so each round of the lanes
writes 64 consecutive outputs and the lanes' 128-bit multiplications run side by side in SIMD
registers: about 2.2 times the speed of two interleaved scalar streams, and four to five times
numpy's, for a quarter of a million merchants.

What it guarantees: `uniform_float32(rng, shape)` returns exactly the numbers
``rng.random(shape, dtype=np.float32)`` would, bit for bit, and leaves ``rng.bit_generator.state``
exactly as that call would have left it, including numpy's buffered half of a 64-bit output
(``has_uint32`` / ``uinteger``), so it can be freely interleaved with any other use of the
Generator (`tests/simulator/test_draws.py` checks both against numpy). It does so by following
numpy's definitions:
  - PCG64 (XSL-RR 128/64): the 128-bit LCG state steps as ``state * MULTIPLIER + inc`` (mod
    2**128) and the output is the xor of the new state's halves, rotated right by its top 6 bits;
  - a float32 uniform is ``(next_uint32 >> 8) * 2**-24``, where ``next_uint32`` first returns a
    buffered value if there is one (and clears the flag), else draws a 64-bit output, returns its
    low half and buffers its high half;
  - float64 uniforms and ``random_raw`` never touch that buffer (the tests check this too).
Any other bit generator, and draws too small for the state round trip to pay off, go through
numpy itself. The state is read and written back through ``bit_generator.state`` (one dictionary
round trip per call), so the Generator must not be used by another thread meanwhile: each
replication owns its Generator.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from simulator.kernels import _kernel

#: PCG64's default 128-bit LCG multiplier (numpy's ``PCG_DEFAULT_MULTIPLIER_128``).
MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
_MASK128 = (1 << 128) - 1
_MASK64 = (1 << 64) - 1

#: Below this many numbers numpy draws them itself: the state round trip (about ten
#: microseconds) would cost more than the compiled loop saves (about 1.4 ns a number).
FAST_MIN_DRAWS = 16_384

#: Outputs drawn side by side (`_fill_lanes`): enough that LLVM runs them in SIMD registers.
LANES = 64

_U1, _U2 = np.uint64(1), np.uint64(2)
_S8, _S32, _S58, _S64 = np.uint64(8), np.uint64(32), np.uint64(58), np.uint64(64)
_M63, _M32 = np.uint64(63), np.uint64(0xFFFFFFFF)
#: numpy's ``1.0f / 16777216.0f``: scales a 24-bit integer into [0, 1) exactly.
_SCALE = np.float32(1.0 / 16777216.0)


@intrinsic
def _lcg_step(typingctx: Any, hi: Any, lo: Any, inc_hi: Any, inc_lo: Any) -> Any:
    """The next PCG64 LCG state, (hi, lo) * MULTIPLIER + (inc_hi, inc_lo) mod 2**128, as its
    (hi, lo) halves: written as one 128-bit multiply-add in LLVM IR, which compiles to the three
    64-bit multiplications numpy's C does (numba has no 128-bit integer type)."""
    u64 = types.uint64
    sig = types.UniTuple(u64, 2)(u64, u64, u64, u64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i128, i64 = ir.IntType(128), ir.IntType(64)
        shift = ir.Constant(i128, 64)

        def join(high: Any, low: Any) -> Any:
            return builder.or_(builder.shl(builder.zext(high, i128), shift),
                               builder.zext(low, i128))

        state = join(args[0], args[1])
        new = builder.add(builder.mul(state, ir.Constant(i128, MULTIPLIER)),
                          join(args[2], args[3]))
        halves = [builder.trunc(builder.lshr(new, shift), i64), builder.trunc(new, i64)]
        return context.make_tuple(builder, signature.return_type, halves)

    return sig, codegen


@_kernel
def _output(hi, lo):  # pragma: no cover - compiled
    """PCG64's 64-bit output of a state (XSL-RR): hi ^ lo rotated right by hi's top 6 bits."""
    x = hi ^ lo
    r = hi >> _S58
    return (x >> r) | (x << ((_S64 - r) & _M63))


@_kernel
def _to_float32(bits):  # pragma: no cover - compiled
    """numpy's float32 uniform of a 32-bit draw (passed in a uint64 below 2**32). The 24-bit
    integer goes through int32 because converting an unsigned 64-bit integer to a float takes
    several instructions on x86; the value, and so the result, is the same."""
    return np.float32(np.int32(bits >> _S8)) * _SCALE


@_kernel
def _output_pair(out, i, h, x, pair):  # pragma: no cover - compiled
    """The float32 uniform(s) of the output of state (h, x): both halves at out[i] and
    out[i + 1] if `pair`, else only the low half at out[i]; returns the output's high half."""
    o = _output(h, x)
    out[i] = _to_float32(o & _M32)
    if pair:
        out[i + _U1] = _to_float32(o >> _S32)
    return o >> _S32


@_kernel
def _fill_lanes(out, pos, steps, hi, lo, a_hi, a_lo, c_hi, c_lo):  # pragma: no cover
    """`steps` rounds of the lanes: lane l's output at out[pos + 2 (s L + l)] and the next
    position, then its state steps L outputs ahead, (hi, lo) * (a_hi, a_lo) + (c_hi, c_lo).

    The 128-bit multiply is written in 64-bit words and, for the low words' full product,
    32-bit halves (vector units multiply 32 x 32 -> 64 bits; there is no 64 x 64 -> 128), so
    LLVM runs the lanes in SIMD registers."""
    a_lo0 = a_lo & _M32
    a_lo1 = a_lo >> _S32
    lanes = hi.shape[0]
    p = np.uint64(pos)
    for _ in range(steps):
        for lane in range(lanes):
            h = hi[lane]
            x = lo[lane]
            o = _output(h, x)
            q = p + _U2 * np.uint64(lane)
            out[q] = _to_float32(o & _M32)
            out[q + _U1] = _to_float32(o >> _S32)
            x0 = x & _M32
            x1 = x >> _S32
            p00 = x0 * a_lo0
            p01 = x0 * a_lo1
            p10 = x1 * a_lo0
            mid = (p00 >> _S32) + (p01 & _M32) + (p10 & _M32)
            new_lo = ((mid << _S32) | (p00 & _M32)) + c_lo
            high = x1 * a_lo1 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
            carry = np.uint64(new_lo < c_lo)
            hi[lane] = high + h * a_lo + x * a_hi + c_hi + carry
            lo[lane] = new_lo
        p += _U2 * np.uint64(lanes)


@_kernel
def pcg64_fill_float32(out, pos, pairs, odd, s_hi, s_lo, inc_hi, inc_lo, a_hi, a_lo, c_hi,
                       c_lo, lanes):  # pragma: no cover - compiled
    """Fill the flat float32 `out` from position `pos` with numpy's uniforms of `pairs` PCG64
    outputs (two numbers each) and, if `odd`, the low half of one more, from the LCG state
    (s_hi, s_lo); return the state after the last output as (hi, lo) and that output's high
    half (numpy's ``uinteger`` afterwards: buffered if `odd`, used and left behind otherwise;
    0 if nothing was drawn).

    Output k (k = 1, 2, ...) goes to lane (k - 1) mod `lanes`: each lane starts at its
    first output's state and steps `lanes` outputs at a time ((a_hi, a_lo), (c_hi, c_lo) is
    that jump: state * a + c), so one round of the lanes writes `lanes` consecutive outputs
    (`_fill_lanes`, in SIMD registers). The last round, which may be partial, is written
    here from the lanes' states."""
    n_out = pairs + odd
    if n_out == 0:
        return s_hi, s_lo, np.uint64(0)
    hi = np.empty(lanes, dtype=np.uint64)
    lo = np.empty(lanes, dtype=np.uint64)
    h, x = s_hi, s_lo
    for lane in range(min(lanes, n_out)):
        h, x = _lcg_step(h, x, inc_hi, inc_lo)
        hi[lane] = h
        lo[lane] = x
    steps = (n_out - 1) // lanes  # full rounds; the rest (1 to `lanes` outputs) below
    _fill_lanes(out, pos, steps, hi, lo, a_hi, a_lo, c_hi, c_lo)
    first = steps * lanes  # outputs written
    p = np.uint64(pos + 2 * first)
    high = np.uint64(0)
    for lane in range(n_out - first):
        high = _output_pair(out, p, hi[lane], lo[lane], first + lane < pairs)
        h, x = hi[lane], lo[lane]
        p += _U2
    return h, x, high


def jump(delta: int, inc: int) -> tuple[int, int]:
    """PCG64's LCG `delta` steps at once as (mult, plus): the state after them is
    ``mult * state + plus`` mod 2**128 (numpy's ``pcg_advance_lcg_128``: the composed
    multiplier and increment by squaring, O(log delta) steps, in exact integers)."""
    acc_mult, acc_plus = 1, 0
    cur_mult, cur_plus = MULTIPLIER, inc
    while delta > 0:
        if delta & 1:
            acc_mult = acc_mult * cur_mult & _MASK128
            acc_plus = (acc_plus * cur_mult + cur_plus) & _MASK128
        cur_plus = (cur_mult + 1) * cur_plus & _MASK128
        cur_mult = cur_mult * cur_mult & _MASK128
        delta >>= 1
    return acc_mult, acc_plus


def advance(state: int, delta: int, inc: int) -> int:
    """PCG64's LCG state `delta` steps after `state`."""
    mult, plus = jump(delta, inc)
    return (mult * state + plus) & _MASK128


def _halves(x: int) -> tuple[np.uint64, np.uint64]:
    return np.uint64(x >> 64), np.uint64(x & _MASK64)


_JUMPS: dict[int, tuple[np.uint64, ...]] = {}


def _lanes_jump(inc: int) -> tuple[np.uint64, ...]:
    """The jump of `LANES` outputs for a stream's increment, as the kernel's four words (kept:
    a Generator's increment never changes)."""
    found = _JUMPS.get(inc)
    if found is None:
        if len(_JUMPS) > 1024:
            _JUMPS.clear()
        mult, plus = jump(LANES, inc)
        found = _JUMPS[inc] = (*_halves(mult), *_halves(plus))
    return found


def pcg64_float32(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """``rng.random(shape, dtype=np.float32)`` by the compiled kernel; `rng` must be driven by
    a `numpy.random.PCG64` (not checked here: see `uniform_float32`)."""
    out = np.empty(shape, dtype=np.float32)
    k = out.size
    if k == 0:
        return out
    bg = rng.bit_generator
    st = bg.state
    flat = out.reshape(-1)
    pos = 0
    if st["has_uint32"]:  # numpy's buffered high half comes first
        flat[0] = np.float32(st["uinteger"] >> 8) * _SCALE
        pos = 1
    pairs, odd = divmod(k - pos, 2)
    lcg = st["state"]
    state, inc = int(lcg["state"]), int(lcg["inc"])
    hi, lo, high = pcg64_fill_float32(flat, pos, pairs, bool(odd), *_halves(state),
                                      *_halves(inc), *_lanes_jump(inc), LANES)
    lcg["state"] = (int(hi) << 64) | int(lo)
    # numpy's next_uint32 clears the flag when it uses the buffer but leaves the value: after
    # the fill `uinteger` holds the last output's high half (buffered only if the count was odd),
    # or still the old buffered value if that was the only number drawn.
    st["has_uint32"] = int(odd)
    if pairs or odd:
        st["uinteger"] = int(high)
    bg.state = st
    return out


# -- the merchants' daily numbers: SFC64 generators side by side -------------------------------

#: numpy SFC64 generators that draw a replication's daily merchant numbers side by side
#: (`MerchantLanes`): enough independent chains for the SIMD units to run in parallel.
SFC64_LANES = 16
#: The spawn-key word that sets a replication's lane seeds apart from any child its seed has.
_LANE_KEY = 0x5F_C6_4D
_S3, _S11, _S24, _S40 = np.uint64(3), np.uint64(11), np.uint64(24), np.uint64(40)


@_kernel
def sfc64_fill_float32(out, rounds, a, b, c, counter):  # pragma: no cover - compiled
    """`rounds` rounds of the lanes' SFC64 generators (state words a, b, c and the counter,
    one array each, stepped in place) into `out` (float32, 2 x lanes x rounds): round k of
    lane l writes numpy's float32 uniforms of its 64-bit output's low half to out[2 (k
    lanes + l)] and of its high half after it, the order in which numpy's
    ``Generator(SFC64).random(dtype=np.float32)`` takes the halves, so lane l's numbers are
    that Generator's, in order.

    SFC64 is additions, shifts and xors of 64-bit words (numpy's ``sfc64_next``), which SIMD
    units do lane by lane; PCG64's 128-bit multiplication has no SIMD instruction on AVX2
    (`_fill_lanes` builds it from 32-bit products)."""
    lanes = a.shape[0]
    p = 0
    for _ in range(rounds):
        for lane in range(lanes):
            x, y, z, w = a[lane], b[lane], c[lane], counter[lane]
            r = x + y + w
            a[lane] = y ^ (y >> _S11)
            b[lane] = z + (z << _S3)
            c[lane] = ((z << _S24) | (z >> _S40)) + r
            counter[lane] = w + _U1
            out[p + 2 * lane] = _to_float32(r & _M32)
            out[p + 2 * lane + 1] = _to_float32(r >> _S32)
        p += 2 * lanes


def lane_seeds(seed: np.random.SeedSequence) -> list[np.random.SeedSequence]:
    """The seeds of a replication's `SFC64_LANES` lanes: children of its own seed, named by
    spawn key (not ``seed.spawn()``, which would give other children the second time one
    seed object is used, as the reference and the model both use it in the tests)."""
    return [np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, _LANE_KEY, lane),
                                   pool_size=seed.pool_size)
            for lane in range(SFC64_LANES)]


class MerchantLanes:
    """A replication's source of its merchants' daily float32 uniforms: `SFC64_LANES` numpy
    SFC64 generators seeded by `lane_seeds`, drawn side by side by `sfc64_fill_float32`.

    What a call gives, in numpy's terms: each lane's Generator draws 2 x rounds float32
    uniforms (``random(2 * rounds, dtype=np.float32)``, rounds = ceil(size / (2 x lanes)), an
    even count, so no half-output is ever left buffered); the k-th pair of lane l's numbers is
    numbers 2 (k lanes + l) and 2 (k lanes + l) + 1 of the result (flat, C order), and the
    numbers past its size are dropped. `tests/simulator/test_draws.py` checks it against
    numpy's own generators.

    Why not the replication's PCG64 Generator, as before: at 200,000 merchants its day's
    numbers took 1.4-1.8 ms of CPU (a day is 19-26), these lanes' 0.9-1.3, alternating in
    the same runs (bench/RESULTS.md).
    """

    def __init__(self, seed: np.random.SeedSequence | int):
        if not isinstance(seed, np.random.SeedSequence):
            seed = np.random.SeedSequence(seed)
        words = [np.random.SFC64(s).state["state"]["state"] for s in lane_seeds(seed)]
        #: The lanes' state words a, b, c and counter, a row each (each row contiguous).
        self.state = np.ascontiguousarray(np.array(words, dtype=np.uint64).T)

    def uniform_float32(self, shape: tuple[int, ...]) -> np.ndarray:
        size = math.prod(shape)
        rounds = -(-size // (2 * SFC64_LANES))
        out = np.empty(2 * SFC64_LANES * rounds, dtype=np.float32)
        if rounds:
            sfc64_fill_float32(out, rounds, *self.state)
        return out[:size].reshape(shape)


def uniform_float32(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Exactly ``rng.random(shape, dtype=np.float32)``, and the Generator left in exactly the
    same state: by the compiled kernel for a PCG64 Generator and a large draw, by numpy
    otherwise."""
    if type(rng.bit_generator) is np.random.PCG64 and math.prod(shape) >= FAST_MIN_DRAWS:
        return pcg64_float32(rng, shape)
    return rng.random(shape, dtype=np.float32)
