"""A replication's per-merchant random numbers: numpy's own, drawn by compiled kernels.

A replication's numbers come from its seed through two sources (`simulator.population` says
which draw comes from which):
  - its Generator, ``default_rng(seed)`` (PCG64), for the starting population and each day's
    group draws: few numbers, or numbers numpy draws in bulk, but for a shuffle and uniforms
    that `simulator.population` draws with compiled loops from this module's PCG64 steps
    (`_lcg_step`, `_output`);
  - its merchants' lanes (`MerchantLanes`): numpy SFC64 generators side by side, seeded from
    the replication's seed, one set for the numbers every merchant draws each day
    (`DAY_STREAM`) and one for the appeals' (`APPEAL_STREAM`): the bulk of a large
    population's numbers.

Why SFC64 lanes: a day of 200,000 merchants draws 1.44 million float32 uniforms. numpy's
``Generator.random(dtype=np.float32)`` calls its bit generator through a function pointer once
per number; the compiled PCG64 loop that replaced it (64 lanes stepping 64 outputs at a time)
was still bound by PCG64's 128-bit multiplication, which AVX2 builds from 32-bit products. SFC64
steps with 64-bit additions, shifts and xors, which SIMD units run lane by lane: at 200,000
merchants the day's numbers took 0.5-0.8 ms of CPU against that loop's 1.3-1.8, alternating in
the same runs (bench/RESULTS.md, round of 2026-12-01 14:35 UTC). Each lane's numbers are
exactly its numpy ``Generator(SFC64)``'s float32 uniforms, which `tests/simulator/test_draws.py`
checks day after day.

numpy's definitions followed here:
  - SFC64 (numpy's ``sfc64_next``): output = a + b + counter, then a = b ^ (b >> 11),
    b = c + (c << 3), c = rotl(c, 24) + output, counter += 1;
  - PCG64 (XSL-RR 128/64): the 128-bit LCG state steps as ``state * MULTIPLIER + inc`` (mod
    2**128) and the output is the xor of the new state's halves, rotated right by its top 6 bits;
  - a float32 uniform is ``(next_uint32 >> 8) * 2**-24``, where ``next_uint32`` first returns a
    buffered value if there is one (and clears the flag), else draws a 64-bit output, returns its
    low half and buffers its high half. The lanes always draw whole outputs, two numbers each,
    so none is ever left buffered.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from simulator.kernels import _kernel

#: PCG64's default 128-bit LCG multiplier (numpy's ``PCG_DEFAULT_MULTIPLIER_128``).
MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
_MASK64 = (1 << 64) - 1

_S58, _S64, _M63 = np.uint64(58), np.uint64(64), np.uint64(63)
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


def _halves(x: int) -> tuple[np.uint64, np.uint64]:
    return np.uint64(x >> 64), np.uint64(x & _MASK64)


#: numpy SFC64 generators that draw a replication's daily merchant numbers side by side
#: (`MerchantLanes`): enough independent chains for the SIMD units to run in parallel.
SFC64_LANES = 16
#: The spawn-key words that set a replication's lanes apart from any child its seed has: one
#: set of lanes for the merchants' numbers of each day (`population.day_draws`), another for
#: the appeals' (`population.appeal_draws`), so that how many merchants appeal on a day
#: moves none of the later days' numbers (two rulebook sets compared on the same seeds then
#: share every day's numbers, whatever their appeals: `simulator.whatif`'s pairs differ by
#: the rules, not by the draws).
DAY_STREAM, APPEAL_STREAM = 0x5F_C6_4D, 0x5F_C6_4E


@intrinsic
def _sfc64_rounds(typingctx: Any, out: Any, rounds: Any, state: Any) -> Any:
    """`rounds` rounds of the `SFC64_LANES` lanes' SFC64 generators, whose state words a, b, c
    and counter lie one after the other in `state` (uint64, four rows of the lanes), stepped in
    place; round k writes its outputs' numpy float32 uniforms to out[2 k lanes:2 (k + 1)
    lanes], lane l's low half at 2 l and high half at 2 l + 1 (`sfc64_fill_float32`).

    Written as LLVM vector operations: the words of all the lanes stay in vector registers
    from round to round (four AVX2 registers a word), and a round's outputs, split into their
    32-bit halves and interleaved, become floats in one stretch stored at once. Left to
    numba's loops the lanes ran one at a time: LLVM could not tell the four state arrays
    apart, so it did not vectorise them (0.84-0.94 against 0.59-0.69 ms for a day's 1.44
    million numbers, timed alone: bench/RESULTS.md)."""
    _check = (isinstance(out, types.Array) and out.dtype == types.float32 and out.ndim == 1
              and out.layout == "C" and out.mutable and isinstance(state, types.Array)
              and state.dtype == types.uint64 and state.ndim == 1 and state.layout == "C"
              and state.mutable and isinstance(rounds, types.Integer))
    if not _check:
        return None
    sig = types.void(out, rounds, state)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        out_ty, _, state_ty = signature.args
        i32 = ir.IntType(32)
        word = ir.VectorType(ir.IntType(64), SFC64_LANES)
        half_lanes = ir.VectorType(i32, SFC64_LANES)
        halves = ir.VectorType(i32, 2 * SFC64_LANES)
        interleave = ir.Constant(halves, [k // 2 + (k % 2) * SFC64_LANES
                                          for k in range(2 * SFC64_LANES)])
        floats = ir.VectorType(ir.FloatType(), 2 * SFC64_LANES)

        def splat(value: Any, ty: Any) -> Any:
            return ir.Constant(ty, [value] * ty.count)

        words_at = builder.bitcast(context.make_array(state_ty)(context, builder, args[2]).data,
                                   word.as_pointer())
        rows = [builder.gep(words_at, [ir.Constant(i32, k)]) for k in range(4)]
        # Held in stack slots that LLVM promotes to registers for the loop.
        held = [cgutils.alloca_once(builder, word) for _ in range(4)]
        for row, slot in zip(rows, held, strict=True):
            builder.store(builder.load(row, align=8), slot)
        out_at = builder.bitcast(context.make_array(out_ty)(context, builder, args[0]).data,
                                 floats.as_pointer())
        with cgutils.for_range(builder, args[1]) as loop:
            a, b, c, w = (builder.load(slot) for slot in held)
            r = builder.add(builder.add(a, b), w)
            builder.store(builder.xor(b, builder.lshr(b, splat(11, word))), held[0])
            builder.store(builder.add(c, builder.shl(c, splat(3, word))), held[1])
            rotated = builder.or_(builder.shl(c, splat(24, word)), builder.lshr(c, splat(40, word)))
            builder.store(builder.add(rotated, r), held[2])
            builder.store(builder.add(w, splat(1, word)), held[3])
            # Each output's low half, then its high half, lane after lane; numpy's float32
            # uniform of each: (bits >> 8) * 2**-24, the 24-bit integer converted exactly (as
            # a signed one: it is below 2**31).
            low = builder.trunc(r, half_lanes)
            high = builder.trunc(builder.lshr(r, splat(32, word)), half_lanes)
            pairs = builder.shuffle_vector(low, high, interleave)
            numbers = builder.fmul(
                builder.sitofp(builder.lshr(pairs, splat(8, halves)), floats),
                splat(float(_SCALE), floats))
            builder.store(numbers, builder.gep(out_at, [loop.index]), align=4)
        for row, slot in zip(rows, held, strict=True):
            builder.store(builder.load(slot), row, align=8)
        return context.get_dummy_value()

    return sig, codegen


@_kernel
def sfc64_fill_float32(out, rounds, state):  # pragma: no cover - compiled
    """`rounds` rounds of the lanes' SFC64 generators (state: the words a, b, c and the
    counter of each lane, row after row, stepped in place) into `out` (float32, 2 x lanes x
    rounds): round k of lane l writes numpy's float32 uniforms of its 64-bit output's low half
    to out[2 (k lanes + l)] and of its high half after it, the order in which numpy's
    ``Generator(SFC64).random(dtype=np.float32)`` takes the halves, so lane l's numbers are
    that Generator's, in order (`_sfc64_rounds`)."""
    # (Divided, not multiplied: a huge count must not wrap around to a small product.)
    if not 0 <= rounds <= out.shape[0] // (2 * SFC64_LANES) or state.shape[0] != 4 * SFC64_LANES:
        raise ValueError("sfc64_fill_float32: out or state of the wrong size")
    _sfc64_rounds(out, rounds, state)


def lane_seeds(seed: np.random.SeedSequence,
               stream: int = DAY_STREAM) -> list[np.random.SeedSequence]:
    """The seeds of a replication's `SFC64_LANES` lanes of one stream: children of its own
    seed, named by spawn key (not ``seed.spawn()``, which would give other children the
    second time one seed object is used, as the reference and the model both use it in the
    tests)."""
    return [np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, stream, lane),
                                   pool_size=seed.pool_size)
            for lane in range(SFC64_LANES)]


class MerchantLanes:
    """A replication's source of one stream of its merchants' float32 uniforms (`DAY_STREAM`
    or `APPEAL_STREAM`): `SFC64_LANES` numpy SFC64 generators seeded by `lane_seeds`, drawn
    side by side by `sfc64_fill_float32`.

    What a call gives, in numpy's terms: each lane's Generator draws 2 x rounds float32
    uniforms (``random(2 * rounds, dtype=np.float32)``, rounds = ceil(size / (2 x lanes)), an
    even count, so no half-output is ever left buffered); the k-th pair of lane l's numbers is
    numbers 2 (k lanes + l) and 2 (k lanes + l) + 1 of the result (flat, C order), and the
    numbers past its size are dropped. `tests/simulator/test_draws.py` checks it against
    numpy's own generators."""

    def __init__(self, seed: np.random.SeedSequence | int, stream: int = DAY_STREAM):
        if not isinstance(seed, np.random.SeedSequence):
            seed = np.random.SeedSequence(seed)
        words = [np.random.SFC64(s).state["state"]["state"] for s in lane_seeds(seed, stream)]
        #: The lanes' state words a, b, c and counter, a row each (C order: row after row).
        self.state = np.ascontiguousarray(np.array(words, dtype=np.uint64).T)

    def uniform_float32(self, shape: tuple[int, ...]) -> np.ndarray:
        """The next `shape` of the lanes' float32 uniforms (see the class)."""
        size = math.prod(shape)
        rounds = -(-size // (2 * SFC64_LANES))
        out = np.empty(2 * SFC64_LANES * rounds, dtype=np.float32)
        if rounds:
            sfc64_fill_float32(out, rounds, self.state.reshape(-1))
        return out[:size].reshape(shape)
