"""Compiled kernels for the model's plain arithmetic (numba): no rule is decided here.

`simulator.model` keeps every rule decision in the compiled rulebook
(`rules.targets.vectorised`); these kernels fuse the arithmetic around the decisions into one
pass per merchant instead of a few dozen numpy passes:
  - ranking positions (`rank_float32`), exposure (`group_exposure`) and the scores a
    ranking rule assigns (`put_known`);
  - orders and revenue (`demand`) and fee bookings (`charge`);
  - claim counts and rounding offsets (`claim_counts`, `floor_share`, `split_share`, and
    `claims_split`, which splits the claims as it counts them), the
    merchant's answers (`answer`, `answer_both`), granted claims (`book_grants`, and
    `claim_grants`, which computes the cost per claim in the same pass, and
    `claim_grants_both`, for both evidence classes at once), claims added to a
    stage's count (`add_claims`), which rows a rule decided (`fires`) or have claims
    (`count_positive`), and the platform's review grants with the day's refund totals and
    wanted appeals (`review_close`); and all of these in one pass over a block
    (`refund_day`) when the refund rules' effects can be said as bit masks per stage;
  - the arithmetic of an appeal round (`appeal_gather`, `appeal_draw`, `appeal_outcomes`,
    `appeal_scatter`, `take`, `put`);
  - end-of-day accounts (`accounts`);
  - each product group's least live price (`live_minima`) and the whole-web price
    (`web_prices`);
  - which merchants the day's accidental enrolments, attempts to leave auto-follow and
    repricing take (`toggle_codes`), parted by kind (`toggle_parts`), and the repricing
    itself (`reprice`); which of the merchants recorded as given a prompt still have it
    open (`open_prompts`), how they answer it (`count_range`, `prompt_answers`, with the
    followed prices set and the prompts closed: `follow_prompts`, `close_prompts`) and
    which rule armed it (`mark_positions`), the deadlines that fall due (`split_due`,
    `take_deadlines`), the prompt deadlines within the day (`arm_prompts`) and later ones
    (`set_deadlines`), those an event cancels (`cancel_deadlines`), prompts opened
    (`prompt_price_change`), prices set and prompts silenced (`set_price`,
    `silence_prompts`), and the merchants recorded as they were given a deadline or a
    prompt (`union_sorted`);
  - the fixed samples' numbers (`sample_values`), their percentiles and median
    (`sample_statistics` and `sampled_statistics`: counted buckets, `_rank_values`, or a
    quickselect, `_select`) and Gini (`gini`, a bucket sort or a radix sort), each
    replication's of a chunk in one call (`chunk_sample_statistics`; the day's sums are
    `simulator.aggregation_kernels.day_sums`), and `mark_changed` (`mark_changed_in`
    within the blocks, for ranking) and `changed_rows` to tell which merchants' rule inputs
    moved.

They must give the numbers numpy gave, bit for bit (`tests/simulator/test_kernels.py`, and
the model's own tests), so they follow numpy's rules:
  - state arrays are float32 or float64 (the model's dtype), each kernel is compiled for both;
    a Python float that numpy would have combined with a float32 array (NEP 50: the array's
    dtype wins) is passed already cast to the state dtype, so the arithmetic rounds alike;
  - float32 values are widened to float64 exactly where numpy widened them;
  - sums whose bits matter follow numpy's pairwise summation (`pairwise_sum`);
  - an order statistic is a value, so any selection or sort finds numpy's, except which of
    0.0 and -0.0 (equal as numbers) lands on a rank: kernels that select or sort say when a
    zero, NaN or negative number makes their bits uncertain, and the caller asks numpy;
  - no fastmath, and division by zero gives inf / NaN as in numpy (``error_model="numpy"``).

Every kernel is cached on disk (``cache=True``): the first run on a machine compiles them
(several seconds), later processes load them, until any of the kernels' source files changes
(`simulator.kernel_cache`). `refund_day` is compiled for each set of refund tables it meets
(`simulator.fixed`), two seconds or so each, once.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from simulator import kernel_cache, simd
from simulator.fixed import Fixed, FixedType

_OPTIONS = {"error_model": "numpy", "nogil": True}


kernel_cache.install()  # (before the first kernel: see `simulator.kernel_cache`)


def _kernel(fn: Callable[..., Any]) -> Any:
    """`fn` compiled by numba, cached on disk where numba finds a writable place (next to
    this file, or the user's cache directory); compiled afresh in each process otherwise."""
    try:
        return njit(cache=True, **_OPTIONS)(fn)
    except RuntimeError:  # no cache locator: nowhere to write
        return njit(cache=False, **_OPTIONS)(fn)


#: Unsigned offsets for the summation loops' positions: an unsigned position stays unsigned
#: (a signed constant would turn it into a float under numpy's promotion rules).
_U1, _U2, _U3, _U4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
_U5, _U6, _U7 = np.uint64(5), np.uint64(6), np.uint64(7)


@intrinsic
def prefetch(typingctx: Any, array: Any, index: Any) -> Any:
    """Ask for the cache line of array[index] (for writing, kept in every cache level), and go
    on without waiting for it: for a kernel that reads and writes rows at scattered indices
    it knows ahead (the appeal rounds' appellants, the ranking's changed listings), which the
    hardware's prefetchers do not foresee. Only a hint: it changes no value, and no index is
    checked."""
    sig = types.void(array, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        kind = signature.args[0]
        view = context.make_array(kind)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, kind, view, [args[1]],
                                           wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        # (address, 1: for writing, 3: keep in every level, 1: data)
        builder.call(hint, [builder.bitcast(pointer, i8p), ir.Constant(i32, 1),
                            ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@_kernel
def _block_sum(a, lo, n):  # pragma: no cover - compiled
    """numpy's pairwise summation of up to 128 numbers: a plain loop under 8, else 8
    accumulators combined pairwise, then the remainder."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    end = n - n % 8
    while i < end:
        # Unsigned positions: numba does not test them for negative indices counted from the
        # end, which halves the loop's time (indices here are never negative).
        j = np.uint64(lo + i)
        r0 += a[j]
        r1 += a[j + _U1]
        r2 += a[j + _U2]
        r3 += a[j + _U3]
        r4 += a[j + _U4]
        r5 += a[j + _U5]
        r6 += a[j + _U6]
        r7 += a[j + _U7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@_kernel
def pairwise_sum(a, lo, n):  # pragma: no cover - compiled
    """numpy's float64 `add.reduce` of the contiguous a[lo:lo + n], so the sum has the same
    bits as ``a[lo:lo + n].sum()``: blocks of up to 128 numbers (`_block_sum`), longer runs
    split in two halves (the first a multiple of 8) summed separately and added. The halving
    runs on an explicit stack (a compiled function that calls itself does not cache)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    # Frames (lo, n, combine?) evaluated in the recursion's order: left, right, left + right.
    f_lo = np.empty(256, dtype=np.int64)
    f_n = np.empty(256, dtype=np.int64)
    f_add = np.empty(256, dtype=np.bool_)
    vals = np.empty(256)
    top = 0
    v = 0
    f_lo[0], f_n[0], f_add[0] = lo, n, False
    top = 1
    while top > 0:
        top -= 1
        fl, fn, add = f_lo[top], f_n[top], f_add[top]
        if add:
            v -= 1
            vals[v - 1] = vals[v - 1] + vals[v]
        elif fn <= 128:
            vals[v] = _block_sum(a, fl, fn)
            v += 1
        else:
            n2 = fn // 2
            n2 -= n2 % 8
            f_lo[top], f_n[top], f_add[top] = fl, fn, True
            f_lo[top + 1], f_n[top + 1], f_add[top + 1] = fl + n2, fn - n2, False
            f_lo[top + 2], f_n[top + 2], f_add[top + 2] = fl, n2, False
            top += 3
    return vals[0]


@_kernel
def _sort_by_high_bits(a, tmp, count):  # pragma: no cover - compiled
    """Sort uint64 numbers whose low 32 bits increase along `a` (so that sorting by the high
    32 bits, stably, sorts them): an LSD radix sort of 11-bit digits, skipping a digit every
    number shares. `tmp` is as long as `a`, `count` has 2048 entries."""
    n = a.shape[0]
    mask = np.uint64(2047)
    in_a = True  # where the numbers are now: `a`, or `tmp`
    shift = 32
    while shift < 64:
        src = a if in_a else tmp
        dst = tmp if in_a else a
        bits = np.uint64(shift)
        for d in range(2048):
            count[d] = 0
        for i in range(n):
            count[(src[i] >> bits) & mask] += 1
        every = False
        for d in range(2048):
            if count[d] == n:
                every = True
        if not every:  # else one digit for all: nothing to move
            total = 0
            for d in range(2048):
                c = count[d]
                count[d] = total
                total += c
            for i in range(n):
                d = (src[i] >> bits) & mask
                dst[count[d]] = src[i]
                count[d] += 1
            in_a = not in_a
        shift += 11
    if not in_a:
        for i in range(n):
            a[i] = tmp[i]


# -- the whole-web price ---------------------------------------------------------------------
@_kernel
def live_minima(bits, alive, slots, top, none, out):  # pragma: no cover - compiled
    """Each group's (rows of `slots`) least price among the live (`alive`, uint8), from the
    prices' bits (float32 or float64 viewed as unsigned integers of the same width): for
    numbers without the sign bit, and not NaN (bits at most `top`, +inf's), the bits order
    as the numbers do, so the least bits are the least price, and an integer minimum
    vectorises where a float one may not (it must keep NaN). A group without a live seller
    gets `none` (all bits set). Returns False, the minima unsure, if a live price has the
    sign bit (a negative number, -0.0, whose tie with 0.0 numpy may break either way) or is
    NaN: the caller asks numpy then.

    Every price is loaded before the select on `alive`: loaded within it, the load is
    conditional, a masked load, slow on a machine with AVX2 alone (0.27 against 0.11-0.12 ms
    at 200,000 merchants there)."""
    ok = True
    for g in range(bits.shape[0] // slots):
        b = bits[g * slots:(g + 1) * slots]
        a = alive[g * slots:(g + 1) * slots]
        least = none
        worst = none ^ none
        for s in range(slots):
            v = b[s]  # loaded whatever the flag: see the docstring
            live = a[s] != 0
            least = min(least, v if live else none)
            worst = max(worst, v if live else worst ^ worst)
        out[g] = least
        ok &= worst <= top
    return ok


@_kernel
def web_prices(web, minima, floor, cap, u_cut, u_depth, cut_below, depth_low, depth_span,
               one, rebound, new, observed):  # pragma: no cover - compiled
    """Each group's whole-web price for the day (`Model.step`) into `new`, and whether it
    fell (`observed`, bool): from yesterday's `web` and the least live price `minima` (the
    state dtype, widened), cut with probability `cut_below` by a depth drawn between
    `depth_low` and `depth_low + depth_span` to no lower than `floor`, else rebounding by
    the factor `rebound` to no higher than `cap`. The draws' arithmetic is numpy's in their
    dtype (NEP 50: `cut_below`, `depth_low`, `depth_span` and `one`, 1.0, arrive rounded to
    it), and the minima and maxima keep numpy's NaN (the first argument on a tie). One
    loop over the few groups in place of a dozen numpy calls."""
    for g in range(web.shape[0]):
        old = web[g]
        m = np.float64(minima[g])
        lowest = old if (old <= m or old != old) else m
        if u_cut[g] < cut_below:
            depth = depth_low + depth_span * u_depth[g]
            x = lowest * np.float64(one - depth)
            f = floor[g]
            v = f if (f >= x or f != f) else x
        else:
            x = old * rebound
            c = cap[g]
            v = c if (c <= x or c != c) else x
        new[g] = v
        observed[g] = v < old


# -- the auto-follow day's selections -------------------------------------------------------
@_kernel
def count_range(rows, counts):  # pragma: no cover - compiled
    """The least and the greatest of counts[rows] (rows not empty)."""
    lo = counts[rows[0]]
    hi = lo
    for t in range(rows.shape[0]):
        c = counts[rows[t]]
        lo = min(lo, c)
        hi = max(hi, c)
    return lo, hi


@_kernel
def open_prompts(rows, prompt_open, alive, seen, live, dead):  # pragma: no cover - compiled
    """The merchants `rows` recorded as given a prompt (`Model._open_rows`) whose prompt is
    still open (`prompt_open`, uint8): the live (`alive`, uint8) go to `live`, the dead to
    `dead`, each in order (each as long as `rows`). Returns how many went to each, and the
    least and the greatest of the live ones' counts of prompts seen (`seen`; 0 and 0 if
    none), which `count_range` would give. One pass instead of numpy's two gathers, two
    selections and a test, and the range's pass."""
    n_live = 0
    n_dead = 0
    lo = 0
    hi = 0
    for t in range(rows.shape[0]):
        i = rows[t]
        if prompt_open[i]:
            if alive[i]:
                c = seen[i]
                if n_live == 0:
                    lo = c
                    hi = c
                lo = min(lo, c)
                hi = max(hi, c)
                live[n_live] = i
                n_live += 1
            else:
                dead[n_dead] = i
                n_dead += 1
    return n_live, n_dead, lo, hi


@_kernel
def prompt_answers(rows, seen, r, p_by_count, k_lo, dismiss_probability,
                   out):  # pragma: no cover - compiled
    """How each merchant `rows` answers its open prompt (`Model._open_prompts`), by its draw
    r[row] (float32) against the follow probability of its count of prompts seen,
    p = p_by_count[seen[row] - k_lo]: it follows if r < p, else dismisses if
    r < p + (1 - p) x dismiss_probability, else ignores it (the comparisons and arithmetic
    numpy made, in float64). The rows of each answer go, in order, to out[0] (follow),
    out[1] (dismiss) and out[2] (ignore) (out is 3 x len(rows)); returns how many of each.
    One pass over the open prompts instead of numpy's dozen passes and gathers, without a
    branch on the answer: each row is stored once, at the place its answer picks (the
    answers are random, so branching on them mispredicted about every other row)."""
    m = rows.shape[0]
    flat = out.reshape(-1)
    nf = 0
    nd = 0
    ni = 0
    for t in range(m):
        i = rows[t]
        p = p_by_count[seen[i] - k_lo]
        x = np.float64(r[i])
        f = np.int64(x < p)
        d = np.int64(x < p + (1.0 - p) * dismiss_probability) * (1 - f)
        g = 1 - f - d
        flat[f * nf + d * (m + nd) + g * (2 * m + ni)] = i
        nf += f
        nd += d
        ni += g
    return nf, nd, ni


@_kernel
def follow_prompts(rows, prompt_target, price, old_price):  # pragma: no cover - compiled
    """The merchants `rows` follow their prompt (`Model._answer_prompts`): each one's price
    to old_price[t] (as long as `rows`), then its prompt's target into `price`, rounded to
    the state dtype as numpy's assignment rounds it. One pass instead of two gathers and a
    scatter."""
    for t in range(rows.shape[0]):
        i = rows[t]
        old_price[t] = price[i]
        price[i] = prompt_target[i]


@_kernel
def close_prompts(rows, prompt_open, prompts_seen, seen_too):  # pragma: no cover - compiled
    """The prompts of the merchants `rows` closed (`prompt_open`, bool), and, if `seen_too`,
    their counts of prompts seen set to 0."""
    for t in range(rows.shape[0]):
        i = rows[t]
        prompt_open[i] = False
        if seen_too:
            prompts_seen[i] = 0


@_kernel
def take_deadlines(due, dl_rule, dl_due, dl_event_time, dl_event_price, rule, at,
                   price):  # pragma: no cover - compiled
    """The deadlines of the merchants `due` (`Model._due_deadlines`): each one's rule, event
    time and price into `rule`, `at` and `price` (as long as `due`), and its deadline
    cleared (rule -1, due at inf, time and price NaN). Returns whether every one is the
    first one's rule. One pass instead of seven gathers and scatters."""
    one = True
    first = dl_rule[due[0]] if due.shape[0] else 0
    for t in range(due.shape[0]):
        i = due[t]
        r = dl_rule[i]
        rule[t] = r
        one &= r == first
        at[t] = dl_event_time[i]
        price[t] = dl_event_price[i]
        dl_rule[i] = -1
        dl_due[i] = np.inf
        dl_event_time[i] = np.nan
        dl_event_price[i] = np.nan
    return one


@_kernel
def split_due(rows, due_at, alive, time, now, later, dead):  # pragma: no cover - compiled
    """The merchants `rows` given a deadline, by its due time due_at[row] against `time`
    (`Model._due_rows`): due by then and live (`alive`, uint8) go to `now`, due and dead to
    `dead`, due later (not inf) to `later`, each in order (each as long as `rows`); a NaN or
    inf due time goes nowhere (as numpy's comparisons have it). Returns how many went to
    each and the earliest later due time (inf if none). One pass instead of numpy's two
    gathers and half a dozen comparisons and selections."""
    n_now = 0
    n_later = 0
    n_dead = 0
    earliest = np.inf
    for t in range(rows.shape[0]):
        i = rows[t]
        a = due_at[i]
        if a <= time:
            if alive[i]:
                now[n_now] = i
                n_now += 1
            else:
                dead[n_dead] = i
                n_dead += 1
        elif a > time and a < np.inf:
            later[n_later] = i
            n_later += 1
            earliest = min(earliest, a)
    return n_now, n_later, n_dead, earliest


@_kernel
def arm_prompts(obs, fired, after, price, within, position, prompt_rule, prompt_event_price,
                armed):  # pragma: no cover - compiled
    """The observers `obs` whose rule fired (`fired`, uint8) with a deadline `after` below
    `within` (a day): their `prompt_rule` set to the rule's `position` and their
    `prompt_event_price` to the price they saw, and they go, in order, to `armed` (as long
    as `obs`). Returns how many were armed and whether a fired one's deadline is later
    (not below `within`: NaN counts as neither, as numpy's comparisons have it). The fired
    are listed first (in `armed`, which the armed then overwrite from the start) without a
    branch on `fired`, which half the observers pass at random."""
    k = 0
    for t in range(obs.shape[0]):
        armed[k] = t
        k += fired[t] != 0
    n = 0
    later = False
    for s in range(k):
        t = armed[s]
        a = after[t]
        if a < within:
            i = obs[t]
            prompt_rule[i] = position
            prompt_event_price[i] = price[t]
            armed[n] = i
            n += 1
        elif a >= within:
            later = True
    return n, later


@_kernel
def prompt_price_change(idx, fired, target, prompt_open, prompt_target, prompts_seen,
                        flow_prompts, opened):  # pragma: no cover - compiled
    """The `prompt_price_change` effect (`Model._apply_listing`) on the merchants idx[t]
    (distinct) where `fired` (uint8; empty: every one) and the target (as long as idx) is
    known (not NaN): the prompt open at the target, one more prompt seen and prompted.
    The merchants go, in order, to `opened` (as long as idx); returns how many. One pass
    instead of numpy's selections and four scatters (two of them read first); the fired
    are listed first (in `opened`, which the opened then overwrite from the start) without
    a branch on `fired`, which the observers of a lower price pass at random."""
    m = idx.shape[0]
    k = m
    if fired.shape[0]:
        k = 0
        for t in range(m):
            opened[k] = t
            k += fired[t] != 0
    n = 0
    for s in range(k):
        t = opened[s] if k < m else s
        v = target[t]
        if v == v:
            i = idx[t]
            prompt_open[i] = True
            prompt_target[i] = v
            prompts_seen[i] += 1
            flow_prompts[i] += 1.0
            opened[n] = i
            n += 1
    return n


@_kernel
def set_price(idx, fired, price, state_price, prompt_open, prompts_seen,
              forced_follows):  # pragma: no cover - compiled
    """The `set_price` effect (`Model._apply_listing`) on the merchants idx[t] (distinct)
    where `fired` (uint8; empty: every one) and the price (as long as idx) is known (not
    NaN): the price set (rounded to the state dtype as numpy's assignment rounds it), the
    prompt closed, its count of prompts seen 0, one more forced follow. One pass instead of
    numpy's selections and four scatters."""
    every = fired.shape[0] == 0
    for t in range(idx.shape[0]):
        if every or fired[t]:
            v = price[t]
            if v == v:
                i = idx[t]
                state_price[i] = v
                prompt_open[i] = False
                prompts_seen[i] = 0
                forced_follows[i] += 1.0


@_kernel
def silence_prompts(idx, fired, duration, time, prompt_open,
                    silenced_until):  # pragma: no cover - compiled
    """The `silence_prompt` effect (`Model._apply_listing`) on the merchants idx[t]
    (distinct) where `fired` (uint8; empty: every one) and the duration (as long as idx) is
    known (not NaN): the prompt closed and silenced until time + duration. One pass instead
    of numpy's selections and two scatters."""
    every = fired.shape[0] == 0
    for t in range(idx.shape[0]):
        if every or fired[t]:
            d = duration[t]
            if d == d:
                i = idx[t]
                prompt_open[i] = False
                silenced_until[i] = time + d


@_kernel
def cancel_deadlines(idx, cancels, prompt_rule, dl_rule, dl_due, dl_event_time,
                     dl_event_price):  # pragma: no cover - compiled
    """An event on the merchants `idx` cancels the pending deadlines that wait for it
    (`Model._cancel`): where cancels[rule] (a table by rule position, its last entry False
    for rule -1, none) holds for the merchant's prompt rule, that rule is cleared (-1); for
    its deadline rule, the deadline is cleared (rule -1, due at inf, time and price NaN)."""
    for t in range(idx.shape[0]):
        i = idx[t]
        if cancels[prompt_rule[i]]:
            prompt_rule[i] = -1
        if cancels[dl_rule[i]]:
            dl_rule[i] = -1
            dl_due[i] = np.inf
            dl_event_time[i] = np.nan
            dl_event_price[i] = np.nan


@_kernel
def mark_positions(rules, present):  # pragma: no cover - compiled
    """Which rule positions (0 up to present's length) occur in `rules` (a rule -1, none,
    is passed over): present[position] set to 1 for each. Returns how many of `rules` are
    positions, or -1 if one is beyond `present` (then it is left unfinished). One pass in
    place of numpy's selection and sorting `unique`."""
    k = 0
    for t in range(rules.shape[0]):
        r = rules[t]
        if r >= 0:
            if r >= present.shape[0]:
                return -1
            present[r] = 1
            k += 1
    return k


@_kernel
def set_deadlines(idx, fired, after, at_least, position, time, price, dl_rule, dl_due,
                  dl_event_time, dl_event_price, armed):  # pragma: no cover - compiled
    """Arm the deadline of rule `position` on the merchants idx[t] where `fired` (uint8) and
    after[t] >= at_least (NaN never is: -inf arms every known one): due at time + after[t],
    the event's time and price[t] kept with it. The merchants armed go, in order, to `armed`
    (as long as idx); returns how many and the earliest due (inf if none)."""
    k = 0
    earliest = np.inf
    for t in range(idx.shape[0]):
        if fired[t] and after[t] >= at_least:
            i = idx[t]
            due = time + after[t]
            dl_rule[i] = position
            dl_due[i] = due
            dl_event_time[i] = time
            dl_event_price[i] = price[t]
            armed[k] = i
            k += 1
            earliest = min(earliest, due)
    return k, earliest


@_kernel
def union_sorted(a, b, out):  # pragma: no cover - compiled
    """The numbers in `a` or `b` (each increasing) into `out`, increasing, once each;
    returns how many, or -1 if `a` or `b` is not increasing."""
    for i in range(1, a.shape[0]):
        if a[i] <= a[i - 1]:
            return -1
    for i in range(1, b.shape[0]):
        if b[i] <= b[i - 1]:
            return -1
    i = 0
    j = 0
    k = 0
    na = a.shape[0]
    nb = b.shape[0]
    while i < na and j < nb:
        x = a[i]
        y = b[j]
        if x < y:
            out[k] = x
            i += 1
        elif y < x:
            out[k] = y
            j += 1
        else:
            out[k] = x
            i += 1
            j += 1
        k += 1
    while i < na:
        out[k] = a[i]
        i += 1
        k += 1
    while j < nb:
        out[k] = b[j]
        j += 1
        k += 1
    return k


@_kernel
def toggle_codes(alive, enrolled, margin, r, enrol_below, leave_below, leave_margin,
                 reprice_below, verified_below, code):  # pragma: no cover - compiled
    """Per merchant, which of the day's enrolment and repricing selections (`Model.step`)
    take it: bit 0, live, not enrolled and r < enrol_below (an accidental enrolment); bit 1,
    live, enrolled, margin < leave_margin and r < leave_below (an attempt to leave); bit 2,
    live, not enrolled and margin < reprice_below (repricing, were the toggles to change no
    enrolment before it); bit 3, bit 1 and r < verified_below (the attempt has the code).

    One walk without branches (over every slot from 0, so that no index counts from the end
    and the loop vectorises) in place of numpy's dozen passes and temporaries; the caller
    finds the few merchants with a code in one `flatnonzero`. `alive` and `enrolled` are bool
    arrays viewed as uint8 (0 or 1); the thresholds arrive in the dtype numpy compared in
    (NEP 50: the array's, for a Python float)."""
    for i in range(alive.shape[0]):
        a = alive[i]
        e = enrolled[i]
        x = r[i]
        m = margin[i]
        out = a & (e ^ np.uint8(1))
        leave = a & e & (m < leave_margin) & (x < leave_below)
        code[i] = ((out & (x < enrol_below))
                   | (leave << np.uint8(1))
                   | ((out & (m < reprice_below)) << np.uint8(2))
                   | ((leave & (x < verified_below)) << np.uint8(3)))


@_kernel
def toggle_parts(coded, code, out):  # pragma: no cover - compiled
    """The day's toggles among the merchants `coded` (increasing) with their `toggle_codes`
    `code`: bit 0 (an accidental enrolment) to out[0], bit 1 (an attempt to leave) to out[2]
    with bit 3 (the code) and to out[1] without, each in order (out is 4 x len(coded); row 3
    takes the rest, which are left out). Returns how many went to each of the three. One
    pass instead of numpy's four selections and two gathers, without a branch on the kind
    (which is random): each merchant is stored once, at the place its kind picks."""
    m = coded.shape[0]
    flat = out.reshape(-1)
    ne = 0
    nu = 0
    nv = 0
    for t in range(m):
        c = np.int64(code[t])
        e = c & 1
        v = (c >> 3) & 1 & (1 - e)
        u = (c >> 1) & 1 & (1 - e) & (1 - v)
        g = 1 - e - u - v
        flat[e * ne + u * (m + nu) + v * (2 * m + nv) + g * 3 * m] = coded[t]
        ne += e
        nu += u
        nv += v
    return ne, nu, nv


@_kernel
def reprice(coded, code, enrolled, margin, reprice_below, unit_cost, shipping, burden_ema,
            base, price, raised):  # pragma: no cover - compiled
    """Repricing outside auto-follow (`Model.step`) of the merchants `coded` with their
    `toggle_codes` `code`, after the toggles: those coded for repricing alone (bit 2, no
    toggle, so their enrolment and margin are as coded), and the toggled (bit 0 or 1) that
    are now not enrolled (`enrolled`, uint8) with a margin below `reprice_below`. Each one's
    price is raised to (unit_cost + shipping) / (base - burden_ema) where that is more, in
    the state dtype (`base` is 1 - reprice_to rounded to it, as numpy's NEP 50 arithmetic
    rounds the Python float), and the merchants raised go, in order of `coded`, to `raised`
    (as long as `coded`); returns how many. The merchants are distinct and each is on its
    own, so one pass gives what numpy's selections, sort, gathers and scatter gave."""
    k = 0
    for t in range(coded.shape[0]):
        c = code[t]
        i = coded[t]
        if c & 3:
            if enrolled[i] or not margin[i] < reprice_below:
                continue
        elif not c & 4:
            continue
        target = (unit_cost[i] + shipping[i]) / (base - burden_ema[i])
        if target > price[i]:
            price[i] = target
            raised[k] = i
            k += 1
    return k


@_kernel
def _key_bits(x, live, tmp, tmp_bits):  # pragma: no cover - compiled
    """A listing's ranking key (see `rank_float32`): the order-preserving bits of
    -float32(score) (-0.0 made 0.0; the dead's score is -inf). `tmp` is a float32 array of
    one number and `tmp_bits` its uint32 view (numba has no scalar bit cast)."""
    tmp[0] = -np.float32(x if live else -np.inf) + np.float32(0.0)
    b = tmp_bits[0]
    return b ^ np.uint32(0xFFFFFFFF) if b >> np.uint32(31) else b ^ np.uint32(0x80000000)


#: Above every (key << 32) | slot (a slot is below 2**32 - 1): no least yet.
_NO_LEAST = np.uint64(0xFFFFFFFFFFFFFFFF)


@_kernel
def _group_keys(score, alive, fkey, gbits, changed, first):  # pragma: no cover - compiled
    """Every listing's key of one group (`_key_bits`, in passes that vectorise: the floats
    into `fkey`, then their bits in place), compared with the stored `gbits`, which take the
    new keys; the listings whose key changed (every one if `first`) go to `changed` as
    (key << 32) | slot in slot order, compacted without a branch on each. Returns how many,
    and the least and greatest of their old (key << 32) | slot (`_NO_LEAST`, 0 if none;
    meaningless if `first`: `gbits` holds no keys yet)."""
    slots = gbits.shape[0]
    fbits = fkey.view(np.uint32)
    for s in range(slots):
        x = score[s]  # loaded whatever the flag (a conditional load is a masked one)
        fkey[s] = -np.float32(x if alive[s] != 0 else -np.inf) + np.float32(0.0)
    for s in range(slots):
        b = fbits[s]
        if b >> np.uint32(31):
            fbits[s] = b ^ np.uint32(0xFFFFFFFF)
        else:
            fbits[s] = b ^ np.uint32(0x80000000)
    shift = np.uint64(32)
    k = 0
    least, most = _NO_LEAST, np.uint64(0)
    for s in range(slots):
        b = fbits[s]
        changed[k] = (np.uint64(b) << shift) | np.uint64(s)
        moved = b != gbits[s]
        old = (np.uint64(gbits[s]) << shift) | np.uint64(s)
        least = min(least, old if moved else _NO_LEAST)
        most = max(most, old if moved else np.uint64(0))
        k += first or moved
    for s in range(slots):
        gbits[s] = fbits[s]
    return k, least, most


@_kernel
def _merge_moved(moved, granked, gweight, weights, moved_slot, stay, least,
                 most):  # pragma: no cover - compiled
    """Merge the sorted `moved` keys of a group into its ranking `granked` (yesterday's, still
    sorted by the keys that did not move) and write the position weight of every listing
    whose rank may have changed. The listings that stayed are compacted without branches (a
    branch taken at random for one listing in ten is mispredicted each time), reading
    yesterday's ranking in order with a small table of the moved slots (`moved_slot`, all
    False on entry and on return), not each listing's key at random. `stay` has room for a
    group and one more.

    Only the stretch of the ranking from the least to the greatest of the moved listings'
    keys, old (`least`, `most`: their old (key << 32) | slot) and new, is merged: a listing
    ranked above all of them, or below, has as many moved listings above it as yesterday,
    so the same rank and weight, and is not written (on most days, the dead and the padding
    at the bottom of each group, and a few listings at the top)."""
    low = np.uint64(0xFFFFFFFF)
    k = moved.shape[0]
    lo = np.searchsorted(granked, min(least, moved[0]))
    hi = np.searchsorted(granked, max(most, moved[k - 1]), side="right")
    for t in range(k):
        moved_slot[moved[t] & low] = True
    n_stay = 0
    for r in range(lo, hi):
        c = granked[r]
        stay[n_stay] = c
        n_stay += not moved_slot[c & low]
    stay[n_stay] = _NO_LEAST  # above every key
    m = lo
    i = 0
    for t in range(k):
        b = moved[t]
        while stay[i] < b:
            c = stay[i]
            granked[m] = c
            gweight[c & low] = weights[m]
            m += 1
            i += 1
        granked[m] = b
        gweight[b & low] = weights[m]
        m += 1
    while i < n_stay:
        c = stay[i]
        granked[m] = c
        gweight[c & low] = weights[m]
        m += 1
        i += 1
    for t in range(k):
        moved_slot[moved[t] & low] = False


@_kernel
def rank_float32(score, alive, slots, weights, key, seen_alive, ranked, weight, rows, every,
                 first):  # pragma: no cover - compiled
    """Position weights of every listing after ranking each group (rows of `slots`) by
    `score` best first (the dead's score is -inf), scores compared at float32 precision,
    ties to the lower slot.

    Each listing's key is the order-preserving bits of -float32(score) (-0.0 made 0.0,
    `_key_bits`), kept in `key` (uint32) from call to call, then its slot: keys are unique,
    so the order is the one a stable sort gives. `ranked` holds each group's keys in rank
    order, key bits high and slot low (uint64): on the `first` call every group is sorted.

    Keys are computed again only where they can have changed: at `rows` (sorted indices: the
    listings whose score may have changed since the last call), and over whole groups where
    a listing's `alive` differs from `seen_alive` (both uint8; `seen_alive` takes today's),
    or everywhere if `every` (or `first`). A group none of whose keys changed keeps
    yesterday's `ranked` and `weight`; in the others (updated in place) yesterday's `ranked`
    is still sorted by the keys that did not change, so only the changed listings are
    sorted (`_sort_by_high_bits`) and merged in (`_merge_moved`), over the stretch of the
    ranking between their old and new keys. Returns how many groups were re-ranked."""
    n = score.shape[0]
    shift = np.uint64(32)
    low = np.uint64(0xFFFFFFFF)
    changed = np.empty(slots, dtype=np.uint64)
    scratch = np.empty(slots, dtype=np.uint64)
    count = np.empty(2048, dtype=np.int64)
    stay = np.empty(slots + 1, dtype=np.uint64)
    moved_slot = np.zeros(slots, dtype=np.bool_)
    fkey = np.empty(slots, dtype=np.float32)
    tmp = np.empty(1, dtype=np.float32)
    tmp_bits = tmp.view(np.uint32)
    n_rows = rows.shape[0]
    p = 0  # the next of `rows`
    redone = 0
    for g in range(n // slots):
        lo = g * slots
        hi = lo + slots
        # The group's rows as views indexed from 0: LLVM then drops numba's test for indices
        # counted from the end.
        gbits = key[lo:hi]
        galive = alive[lo:hi]
        gseen = seen_alive[lo:hi]
        flip = np.uint8(0)
        for s in range(slots):
            flip |= galive[s] ^ gseen[s]
        if every or first or flip:
            k, least, most = _group_keys(score[lo:hi], galive, fkey, gbits, changed, first)
            for s in range(slots):
                gseen[s] = galive[s]
            while p < n_rows and rows[p] < hi:
                p += 1
        else:
            k = 0
            least, most = _NO_LEAST, np.uint64(0)
            while p < n_rows and rows[p] < hi:
                i = rows[p]
                b = _key_bits(score[i], alive[i], tmp, tmp_bits)
                s = i - lo
                if b != gbits[s]:
                    changed[k] = (np.uint64(b) << shift) | np.uint64(s)
                    k += 1
                    old = (np.uint64(gbits[s]) << shift) | np.uint64(s)
                    least = min(least, old)
                    most = max(most, old)
                    gbits[s] = b
                p += 1
        if k == 0:
            continue
        moved = changed[:k]
        _sort_by_high_bits(moved, scratch[:k], count)
        granked = ranked[lo:hi]
        gweight = weight[lo:hi]
        if first:
            for r in range(slots):
                granked[r] = moved[r]
                gweight[moved[r] & low] = weights[r]
        else:
            _merge_moved(moved, granked, gweight, weights, moved_slot, stay, least, most)
        redone += 1
    return redone


@_kernel
def mark_changed_in(current, previous, starts, stops, changed,
                    first):  # pragma: no cover - compiled
    """Within the blocks [starts[b], stops[b]): changed = current != previous bit for bit
    (arrays viewed as unsigned integers), or changed |= that after the `first` field; then
    previous = current. Over views indexed from 0 (no wraparound test), every row stored
    whether it changed or not, so LLVM runs it in SIMD registers with plain stores. (Storing
    only the rows that changed compiles to masked stores: cheap with 512-bit registers, but
    on a machine with AVX2 alone, which has no masked store of bytes, 7-12 times as slow:
    240-450 against 32-40 us at 200,000 rows in cache.)"""
    for b in range(starts.shape[0]):
        lo, hi = starts[b], stops[b]
        cur = current[lo:hi]
        prev = previous[lo:hi]
        ch = changed[lo:hi].view(np.uint8)
        if first:
            for i in range(hi - lo):
                ch[i] = cur[i] != prev[i]
                prev[i] = cur[i]
        else:
            for i in range(hi - lo):
                ch[i] = ch[i] | (cur[i] != prev[i])
                prev[i] = cur[i]


@_kernel
def group_exposure(weight, alive, scale, channel, impressions, channel_share, slots, w, out,
                   channels):  # pragma: no cover - compiled
    """Impressions of every listing into `out`: position weight x store scale over its
    group's total (summed as numpy sums a row), times the group's impressions, plus an equal
    share of the group's channel impressions for admitted listings (`channel` > 0); zero for
    the dead, whatever their channel. `w` is scratch space for one group (`slots` numbers).

    `channels` False says that no channel is positive (no listing is admitted anywhere, as
    on most days under most rulebooks): the channels are then not read at all (a pass over
    a group's channel and alive flags, a sixth of the kernel's memory traffic). Returns how
    many channels are positive, dead listings' and padding included (0 when `channels` is
    False), for the caller to say so next time.

    Each pass reads few arrays (a loop that stores into one array while reading several
    others can stall on addresses that alias in the CPU's store buffer). Each value is
    computed before the select on `alive` (read as uint8), whose loads would otherwise be
    conditional: masked loads, slow on a machine with AVX2 alone (0.77-0.84 against
    0.44-0.49 ms at 200,000 merchants there).

    The admitted listings are counted as `channel x alive > 0` (the same count: a product
    with 0.0 is 0, -0.0 or NaN, never > 0), not `alive & (channel > 0)`, which compiles to a
    compare masked by `alive`: the channel of the dead padding slots is never written, its
    pages may never have been mapped (`simulator.memory.mapped_zeros`), and a masked load
    that skips a whole unmapped page takes a slow path on every call (1.6 ms of 2 ms a call
    measured, for 78 such pages). The product reads every row, which maps the pages once."""
    groups = weight.shape[0] // slots
    positive = 0
    for g in range(groups):
        lo = g * slots
        # The group's rows as views indexed from 0 (LLVM then knows no index is negative and
        # drops numba's wraparound test), selects rather than branches: every pass vectorises.
        live = alive[lo:lo + slots]
        ch = channel[lo:lo + slots]
        o = out[lo:lo + slots]
        admitted = 0
        if channels:
            for s in range(slots):
                c = ch[s]
                admitted += c * live[s] > 0
                positive += c > 0
        pw = weight[lo:lo + slots]
        sc = scale[lo:lo + slots]
        lv = live.view(np.uint8)
        for s in range(slots):
            x = pw[s] * sc[s]
            w[s] = x if lv[s] != 0 else 0.0
        total = pairwise_sum(w, 0, slots)
        imp = impressions[g]
        for s in range(slots):
            x = imp * w[s] / total
            o[s] = x if lv[s] != 0 else 0.0
        if admitted == 0:
            continue
        share = channel_share[g]
        for s in range(slots):
            c = ch[s]
            x = o[s]
            y = x + c * share / admitted
            o[s] = y if (lv[s] != 0) & (c > 0) else x
    return positive


@_kernel
def put_known(target, values, mask):  # pragma: no cover - compiled
    """target[j] = values[j] where mask[j] (uint8) and the value is known (not NaN): numpy's
    ``np.copyto(target, values, where=mask & ~np.isnan(values))`` in one pass instead of
    four (`Model._rank`)."""
    for j in range(target.shape[0]):
        v = values[j]
        if mask[j] and v == v:
            target[j] = v


@_kernel
def demand(starts, stops, alive, price, last_revenue, quality, unit_cost, exposure, u_orders,
           budget_share, cost_per_click, conversion, ctr, power, elasticity, conv_in,
           ad_clicks, orders, revenue, below_cost):  # pragma: no cover - compiled
    """Orders, revenue and units sold below cost of the merchants in the blocks
    [starts[b], stops[b]), and their ad clicks (for the commission rulebook). `power` False:
    conversion is `conversion x quality` (an elasticity of 1), else `conv_in` holds it.

    No branch on a merchant: the dead's orders are computed too and 0.0 is selected (a
    select, never a product, which would turn inf or NaN into NaN and a negative into -0.0),
    so the loop vectorises and costs the same whichever merchants have exited. The orders
    are computed before the select and `alive` read as uint8: computed within it, their
    draw's load was conditional (a masked load; 0.70-0.81 against 0.52-0.62 ms at 200,000
    merchants on a machine with AVX2 alone). Unsigned
    positions spare the test for indices counted from the end. (Where two NaNs meet, which
    one comes out is the compiler's operand order, as in numpy's own loops: a NaN's sign and
    payload are no part of the bits.)

    Returns how many of the blocks' ad clicks are NaN (none, as a rule: the caller then tells
    the rulebook the clicks are known on every row, which spares it a scan)."""
    unknown = 0
    live = alive.view(np.uint8)
    for b in range(starts.shape[0]):
        for i in range(np.uint64(starts[b]), np.uint64(stops[b])):
            p = np.float64(price[i])
            clicks = budget_share * np.float64(last_revenue[i]) / cost_per_click
            ad_clicks[i] = clicks
            unknown += np.isnan(clicks)
            conv = conv_in[i] if power else conversion * np.float64(quality[i])
            lam = (exposure[i] * ctr + clicks) * conv
            o = np.floor(lam + np.float64(u_orders[i]))
            o = o if live[i] != 0 else 0.0
            orders[i] = o
            revenue[i] = o * p
            below_cost[i] = o if p < unit_cost[i] else 0.0
    return unknown


#: Rows per stretch of `accounts`: each stretch takes the path for its share of the dead.
_ACCOUNTS_STRETCH = 512


@_kernel
def _accounts_mixed(lo, hi, dead_before, commission, ads, fees, refund, revenue, orders,
                    unit_cost, shipping, fixed_cost, cash, loss_days, burden_ema, last_revenue,
                    alive, dl_rule, dl_due, dl_event_time, dl_event_price, price, margin,
                    quality, full_cost, u_adapt, keep, memory, loss_days_limit,
                    margin_threshold, quality_floor_s, adapt_probability, quality_floor,
                    quality_step, cost_share):  # pragma: no cover - compiled
    """`accounts` for rows [lo, hi) where the dead and the live mix, or all live (hi - lo a
    multiple of eight): eight merchants a step in SIMD registers (`simulator.simd`), without a
    branch but on an exit. The count of every load and store is the constant eight, so they
    are plain ones: masked, they cost little with 512-bit registers, but a machine with AVX2
    alone builds each mask lane by lane and loads and stores bytes one by one (3.3-4.0
    against 1.5-1.7 ms a day at 200,000 merchants there).
    Every row's numbers are computed, the quality cut's included, and each store selects
    between the new value and the one already there (whose bits it writes back unchanged),
    so every array ends as the branching `_accounts_sparse` leaves it; arithmetic the scalar
    version does in the state dtype is rounded to it after each operation, which gives the
    same bits (see `simulator.simd`). `dead_before` and `alive` come as uint8 views.

    Why: the scalar loop was bound by its instructions (about 6.5 ns a slot, the same with
    its rows in cache), with a loss day, an exit's test and the quality cut's draw each
    about as often taken as not on some days; in SIMD registers about 4.5 ns, cold."""
    z = simd.splat(0.0)
    one = simd.splat(1.0)
    keep_v, memory_v = simd.splat(keep), simd.splat(memory)
    limit, threshold = simd.splat(loss_days_limit), simd.splat(margin_threshold)
    floor_s, draw_below = simd.splat(quality_floor_s), simd.splat(adapt_probability)
    floor, step, share = simd.splat(quality_floor), simd.splat(quality_step), simd.splat(
        cost_share)
    n = np.uint64(simd.LANES)  # a constant: plain loads and stores, no masks
    for i in range(np.uint64(lo), np.uint64(hi), n):
        dead = simd.load_mask(dead_before, i, n)
        live = simd.invert(dead)
        burden = simd.add(simd.add(simd.add(simd.load(commission, i, n), simd.load(ads, i, n)),
                                   simd.load(fees, i, n)), simd.load(refund, i, n))
        uc = simd.load(unit_cost, i, n)
        sh = simd.load(shipping, i, n)
        rev = simd.load(revenue, i, n)
        profit = simd.subtract(simd.subtract(
            simd.subtract(rev, simd.multiply(simd.load(orders, i, n), simd.add(uc, sh))),
            burden), simd.load(fixed_cost, i, n))
        c = simd.rounded(cash, simd.add(simd.load(cash, i, n), simd.where(dead, z, profit)))
        simd.store(cash, i, n, c)  # c: the cash as stored
        d0 = simd.load(loss_days, i, n)
        days = simd.where(simd.less(profit, z), simd.add(d0, one), z)
        simd.store(loss_days, i, n, simd.where(dead, d0, days))
        e0 = simd.load(burden_ema, i, n)
        # Divided even where it is discarded (rev <= 0, the dead): no stored value changes.
        e1 = simd.rounded(burden_ema, simd.add(
            simd.rounded(burden_ema, simd.multiply(keep_v, e0)),
            simd.divide(simd.multiply(memory_v, burden), rev)))
        ema = simd.where(simd.both(simd.greater(rev, z), live), e1, e0)
        simd.store(burden_ema, i, n, ema)
        simd.store(last_revenue, i, n, simd.where(dead, simd.load(last_revenue, i, n),
                                                  simd.rounded(last_revenue, rev)))
        out = simd.either(simd.at_least(days, limit), simd.less(c, z))
        exits = simd.both(out, live)
        simd.store_mask(alive, i, n, simd.both(simd.load_mask(alive, i, n),
                                               simd.invert(exits)))
        gone = simd.lanes(exits)
        if gone:
            for lane in range(simd.LANES):
                if (gone >> lane) & 1:
                    j = i + np.uint64(lane)
                    dl_rule[j] = -1
                    dl_due[j] = np.inf
                    dl_event_time[j] = np.nan
                    dl_event_price[j] = np.nan
        stay = simd.both(simd.invert(out), live)
        p = simd.load(price, i, n)
        m = _state_margin(margin, p, uc, sh, ema)
        q0 = simd.load(quality, i, n)
        cut = simd.both(
            simd.both(stay, simd.less(simd.load(u_adapt, i, n), draw_below)),
            simd.both(simd.less(m, threshold), simd.greater(q0, floor_s)))
        lowered = simd.subtract(q0, step)
        q = simd.where(simd.greater(lowered, floor), lowered, floor)  # max(floor, lowered)
        cut_cost = simd.rounded(unit_cost, simd.multiply(
            simd.load(full_cost, i, n), simd.subtract(one, simd.multiply(
                share, simd.subtract(one, q)))))
        simd.store(quality, i, n, simd.where(cut, q, q0))
        simd.store(unit_cost, i, n, simd.where(cut, cut_cost, uc))
        simd.store(margin, i, n, simd.where(
            cut, _state_margin(margin, p, cut_cost, sh, ema),
            simd.where(stay, m, simd.load(margin, i, n))))


@_kernel
def _state_margin(margin, p, uc, sh, ema):  # pragma: no cover - compiled
    """(p - uc - sh) / p - ema in the dtype of `margin` (each operation rounded to it)."""
    t = simd.rounded(margin, simd.subtract(p, uc))
    t = simd.rounded(margin, simd.subtract(t, sh))
    t = simd.rounded(margin, simd.divide(t, p))
    return simd.rounded(margin, simd.subtract(t, ema))


@_kernel
def _accounts_sparse(lo, hi, dead_before, commission, ads, fees, refund, revenue, orders,
                     unit_cost, shipping, fixed_cost, cash, loss_days, burden_ema,
                     last_revenue, alive, dl_rule, dl_due, dl_event_time, dl_event_price,
                     price, margin, quality, full_cost, u_adapt, keep, memory,
                     loss_days_limit, margin_threshold, quality_floor_s, adapt_probability,
                     quality_floor, quality_step, cost_share):  # pragma: no cover - compiled
    """`accounts` for rows [lo, hi) that are mostly dead: a dead row only rounds its cash, so
    it is skipped by a branch (taken most of the time) rather than computed in full as
    `_accounts_mixed` does; the live rows' numbers are `_accounts_mixed`'s, with the loss
    day still no branch."""
    f = cash.dtype.type
    nan = np.nan
    for i in range(np.uint64(lo), np.uint64(hi)):
        if dead_before[i]:
            cash[i] = np.float64(cash[i]) + 0.0
            continue
        burden = commission[i] + ads[i] + fees[i] + refund[i]
        uc = unit_cost[i]
        sh = shipping[i]
        unit = np.float64(uc) + np.float64(sh)
        rev = revenue[i]
        profit = rev - orders[i] * unit - burden - np.float64(fixed_cost[i])
        cash[i] = np.float64(cash[i]) + profit
        c = cash[i]  # as stored, in the state dtype
        days = (loss_days[i] + 1) * (profit < 0)
        loss_days[i] = days
        e0 = burden_ema[i]
        e1 = f(np.float64(keep * e0) + memory * burden / rev)
        ema = e1 if rev > 0 else e0
        burden_ema[i] = ema
        last_revenue[i] = rev
        if days >= loss_days_limit or c < 0:
            alive[i] = False
            dl_rule[i] = -1
            dl_due[i] = np.inf
            dl_event_time[i] = nan
            dl_event_price[i] = nan
            continue
        p = price[i]
        m = (p - uc - sh) / p - ema
        margin[i] = m
        if u_adapt[i] < adapt_probability:
            q0 = quality[i]
            if m < margin_threshold and q0 > quality_floor_s:
                q = max(quality_floor, np.float64(q0) - quality_step)
                quality[i] = q
                unit_cost[i] = np.float64(full_cost[i]) * (1.0 - cost_share * (1.0 - q))
                margin[i] = (p - unit_cost[i] - sh) / p - ema


@_kernel
def accounts(starts, stops, dead_before, commission, ads, fees, refund, revenue, orders,
             unit_cost, shipping, fixed_cost, cash, loss_days, burden_ema, last_revenue,
             alive, dl_rule, dl_due, dl_event_time, dl_event_price, price, margin, quality,
             full_cost, u_adapt, keep, memory, loss_days_limit, margin_threshold,
             quality_floor_s, adapt_probability, quality_floor, quality_step,
             cost_share):  # pragma: no cover - compiled
    """End of day for the merchants in the blocks [starts[b], stops[b]): profit into cash,
    the run of loss days, the burden average, exit, the margin, and a quality cut under a
    squeezed margin (as `Model._accounts` does in numpy).

    `keep` (1 - memory), `margin_threshold`, `quality_floor_s` are in the state dtype;
    `adapt_probability` is float32 (the draws' dtype); the rest float64.

    For each merchant (`dead` = dead_before[i], the state dtype's rounding on every store):
      - cash = cash + 0.0 for the dead, nothing else changes; for the live:
      - burden = commission + ads + fees + refund, profit = revenue - orders x (unit_cost +
        shipping, widened) - burden - fixed_cost; cash = cash + profit;
      - loss_days = loss_days + 1 if profit < 0 else 0; last_revenue = revenue; where
        revenue > 0, burden_ema = keep x burden_ema (state dtype) + memory x burden / revenue;
      - exit where loss_days >= loss_days_limit or the stored cash < 0: alive False, the
        delayed action cleared (rule -1, due inf, event time and price NaN), nothing more;
      - else margin = (price - unit_cost - shipping) / price - burden_ema, and where margin <
        margin_threshold, quality > quality_floor_s and u_adapt < adapt_probability: quality
        = max(quality_floor, quality - quality_step), unit_cost = full_cost x (1 - cost_share
        x (1 - that quality, unrounded)), and the margin again with the stored unit cost.

    Each stretch of `_ACCOUNTS_STRETCH` rows takes `_accounts_sparse` when more than half of
    it is dead, else `_accounts_mixed` for its whole blocks of eight and `_accounts_sparse`
    for the rows left: the same numbers either way."""
    for b in range(starts.shape[0]):
        for lo in range(starts[b], stops[b], _ACCOUNTS_STRETCH):
            hi = min(lo + _ACCOUNTS_STRETCH, stops[b])
            n_dead = 0
            for i in range(np.uint64(lo), np.uint64(hi)):
                n_dead += dead_before[i]
            if 2 * n_dead > hi - lo:
                _accounts_sparse(lo, hi, dead_before, commission, ads, fees, refund, revenue,
                                 orders, unit_cost, shipping, fixed_cost, cash, loss_days,
                                 burden_ema, last_revenue, alive, dl_rule, dl_due,
                                 dl_event_time, dl_event_price, price, margin, quality,
                                 full_cost, u_adapt, keep, memory, loss_days_limit,
                                 margin_threshold, quality_floor_s, adapt_probability,
                                 quality_floor, quality_step, cost_share)
                continue
            # Whole blocks of eight in SIMD, the last few rows (if any) one by one.
            whole = lo + (hi - lo) // simd.LANES * simd.LANES
            _accounts_mixed(lo, whole, dead_before.view(np.uint8), commission, ads, fees,
                            refund, revenue, orders, unit_cost, shipping, fixed_cost, cash,
                            loss_days, burden_ema, last_revenue, alive.view(np.uint8),
                            dl_rule, dl_due, dl_event_time, dl_event_price, price, margin,
                            quality, full_cost, u_adapt, keep, memory, loss_days_limit,
                            margin_threshold, quality_floor_s, adapt_probability,
                            quality_floor, quality_step, cost_share)
            _accounts_sparse(whole, hi, dead_before, commission, ads, fees, refund, revenue,
                             orders, unit_cost, shipping, fixed_cost, cash, loss_days,
                             burden_ema, last_revenue, alive, dl_rule, dl_due, dl_event_time,
                             dl_event_price, price, margin, quality, full_cost, u_adapt, keep,
                             memory, loss_days_limit, margin_threshold, quality_floor_s,
                             adapt_probability, quality_floor, quality_step, cost_share)


@_kernel
def claim_counts(orders, quality, u_claims, u_refund, claim_rate, elasticity, lacking_share,
                 ur, valid, lacking):  # pragma: no cover - compiled
    """A block's refund claims split by evidence: claims = min(orders, floor(orders x rate +
    draw)) at a rate rising as quality falls, those lacking evidence = min(claims,
    floor(claims x share + refund draw)); `ur` receives the refund draw widened to float64."""
    for i in range(orders.shape[0]):
        o = orders[i]
        rate = claim_rate * (1.0 + elasticity * (1.0 - np.float64(quality[i])))
        claims = min(o, np.floor(o * rate + np.float64(u_claims[i])))
        r = np.float64(u_refund[i])
        ur[i] = r
        lack = min(claims, np.floor(claims * lacking_share + r))
        lacking[i] = lack
        valid[i] = claims - lack


@_kernel
def claims_split(orders, quality, u_claims, u_refund, claim_rate, elasticity, lacking_share,
                 share, shift_valid, shift_lacking, ur, part_valid, rest_valid, part_lacking,
                 rest_lacking):  # pragma: no cover - compiled
    """`claim_counts` followed, for each evidence class, by `split_share` of its claims (all
    of a class's claims awaiting the merchant, when the request's rule asks it to answer every
    one) at the offsets `shift_valid` and `shift_lacking`, in one pass: the classes' claims
    are never written. Returns how many rows have a positive part, per class."""
    positive_valid = 0
    positive_lacking = 0
    for i in range(orders.shape[0]):
        o = orders[i]
        rate = claim_rate * (1.0 + elasticity * (1.0 - np.float64(quality[i])))
        claims = min(o, np.floor(o * rate + np.float64(u_claims[i])))
        r = np.float64(u_refund[i])
        ur[i] = r
        lack = min(claims, np.floor(claims * lacking_share + r))
        valid = claims - lack
        p = _share_floor(valid, share, r, shift_valid)
        part_valid[i] = p
        rest_valid[i] = valid - p
        positive_valid += 1 if p > 0 else 0
        p = _share_floor(lack, share, r, shift_lacking)
        part_lacking[i] = p
        rest_lacking[i] = lack - p
        positive_lacking += 1 if p > 0 else 0
    return positive_valid, positive_lacking


@_kernel
def _share_floor(count, share, u, shift):  # pragma: no cover - compiled
    """floor(count x share + offset), the offset being `population.offset` of the draw `u`
    with shift = k x GOLDEN (u + shift, less its floor)."""
    v = u + shift
    v -= np.floor(v)
    return np.floor(count * share + v)


@_kernel
def floor_share(count, share, u, shift, out):  # pragma: no cover - compiled
    """`_share_floor` per row."""
    for i in range(count.shape[0]):
        out[i] = _share_floor(count[i], share, u[i], shift)
    return out


#: Rounds of `_select`'s partitioning before it sorts what is left (a bad run of pivots then
#: costs a sort of the rest, not a quadratic walk).
_SELECT_ROUNDS = 64


@_kernel
def _select(a, lo, hi, k):  # pragma: no cover - compiled
    """Reorder a[lo:hi] (no NaN) so that a[k] holds the number a sort would put there, none
    greater before it and none smaller after it. The order statistic is a value, so any such
    reordering gives numpy's ``partition`` its bits, except for which of 0.0 and -0.0 lands
    on k when both occur (callers check for zeros).

    Quickselect with median-of-three pivots and a branch-free partition (each number is
    swapped to the front or not by arithmetic, not by a branch: on unsorted numbers a branch
    per comparison is mispredicted half the time, which cost most of the time); a pivot that
    is its range's smallest number gathers its equals, so many equal numbers do not make it
    quadratic."""
    if k == lo:  # the minimum: one scan
        best = lo
        for i in range(lo + 1, hi):
            if a[i] < a[best]:
                best = i
        a[lo], a[best] = a[best], a[lo]
        return
    hi -= 1  # inclusive from here
    rounds = 0
    while lo < hi:
        if rounds == _SELECT_ROUNDS:
            a[lo:hi + 1].sort()
            return
        rounds += 1
        mid = lo + (hi - lo) // 2
        if a[mid] < a[lo]:
            a[lo], a[mid] = a[mid], a[lo]
        if a[hi] < a[lo]:
            a[lo], a[hi] = a[hi], a[lo]
        if a[hi] < a[mid]:
            a[mid], a[hi] = a[hi], a[mid]
        a[mid], a[hi] = a[hi], a[mid]  # the median of the three at the end
        pivot = a[hi]
        first = lo  # a[lo:first] < pivot <= a[first:i]
        for i in range(lo, hi):
            x = a[i]
            a[i] = a[first]
            a[first] = x
            first += np.int64(x < pivot)
        a[hi] = a[first]
        a[first] = pivot
        if k == first:
            return
        if k < first:
            hi = first - 1
            continue
        if first == lo:  # the smallest: gather its equals after it
            equal = first + 1
            for i in range(first + 1, hi + 1):
                x = a[i]
                a[i] = a[equal]
                a[equal] = x
                equal += np.int64(x == pivot)
            if k < equal:
                return
            lo = equal
        else:
            lo = first + 1


@_kernel
def _select_pair(a, lo, hi, k):  # pragma: no cover - compiled
    """`_select` of rank k in a[lo:hi] (every number there at least those before lo, at most
    those from hi), then the number of rank k + 1 (k + 1 < hi): the smallest after k, found
    without moving anything."""
    _select(a, lo, hi, k)
    upper = a[k + 1]
    for i in range(k + 2, hi):
        upper = min(upper, a[i])
    return a[k], upper


@_kernel
def _least_most(buf, m):  # pragma: no cover - compiled
    """The least and the greatest of buf[:m] (m > 0, no NaN), four of each at a time (one
    chain of comparisons waited on each result)."""
    l0 = l1 = l2 = l3 = buf[0]
    h0 = h1 = h2 = h3 = buf[0]
    end = m - m % 4
    for i in range(0, end, 4):
        l0, h0 = min(l0, buf[i]), max(h0, buf[i])
        l1, h1 = min(l1, buf[i + 1]), max(h1, buf[i + 1])
        l2, h2 = min(l2, buf[i + 2]), max(h2, buf[i + 2])
        l3, h3 = min(l3, buf[i + 3]), max(h3, buf[i + 3])
    for i in range(end, m):
        l0, h0 = min(l0, buf[i]), max(h0, buf[i])
    return min(min(l0, l1), min(l2, l3)), max(max(h0, h1), max(h2, h3))


#: Fewest numbers for which `_rank_values` counts buckets (fewer: quickselect).
_BUCKET_SELECT_LEAST = 256


@_kernel
def _rank_values(buf, m, ranks, values):  # pragma: no cover - compiled
    """values[i] = the number of rank ranks[i] in buf[:m] (no NaN; left as it is), as
    `_select` finds it; returns False (values unset) where this way does not apply: fewer
    than `_BUCKET_SELECT_LEAST` numbers, ranks not in ascending order, all numbers equal.

    Every number goes to one of about m / 4 buckets by (x - least) x scale, truncated: a
    function of x that never decreases as x grows, so a bucket's numbers are no greater than
    a later bucket's, and a rank's number is found by counting, then selecting within its
    bucket alone (a few numbers). One pass to count and one to gather the ranks' buckets,
    instead of a quickselect's passes for each rank (which also skips the zero question:
    numbers equal as values are all the same to the caller, who checks for zeros)."""
    if m < _BUCKET_SELECT_LEAST:
        return False
    for r in range(1, ranks.shape[0]):
        if ranks[r] < ranks[r - 1]:  # (a quantile asked twice): the bucket walk goes forward
            return False
    least, most = _least_most(buf, m)
    span = most - least
    buckets = 64
    while buckets * 4 < m:
        buckets *= 2
    scale = buckets / span
    if not (0.0 < span < np.inf and scale < np.inf):  # all equal, or a span or scale not
        # finite (x - least, which is at most the span, then finite: each key in range)
        return False
    key = np.empty(m, dtype=np.int64)
    top = buckets - 1
    for i in range(np.uint64(m)):  # unsigned, vectorised
        key[i] = min(np.int64((buf[i] - least) * scale), top)
    # Two counts, even and odd numbers: equal numbers (prices tie) in a row do not wait on
    # the last one's count.
    count = np.zeros(buckets + 1, dtype=np.int64)
    odd = np.zeros(buckets + 1, dtype=np.int64)
    half = m // 2
    for i in range(half):
        count[key[2 * i] + 1] += 1
        odd[key[2 * i + 1] + 1] += 1
    if m % 2:
        count[key[m - 1] + 1] += 1
    for b in range(buckets):
        count[b + 1] += count[b] + odd[b + 1]  # count[b]: numbers in the buckets before b
    nr = ranks.shape[0]
    bucket_of = np.empty(nr, dtype=np.int64)
    region = np.full(buckets, -1, dtype=np.int64)  # where a wanted bucket's numbers go
    b = 0
    size = 0
    for r in range(nr):
        while count[b + 1] <= ranks[r]:
            b += 1
        bucket_of[r] = b
        if region[b] < 0:
            region[b] = size
            size += count[b + 1] - count[b]
    tmp = np.empty(size)
    fill = region.copy()
    for i in range(m):
        at = fill[key[i]]
        if at >= 0:
            tmp[at] = buf[i]
            fill[key[i]] = at + 1
    last = -1  # the position of the last rank selected
    for r in range(nr):
        b = bucket_of[r]
        lo = region[b]
        hi = lo + count[b + 1] - count[b]
        k = lo + ranks[r] - count[b]
        if r > 0 and bucket_of[r - 1] == b and k == last + 1:
            # The next rank in the same bucket: the least after the last (none smaller
            # there), a scan instead of a selection (many tied prices share a bucket).
            least = tmp[k]
            for i in range(k + 1, hi):
                least = min(least, tmp[i])
            values[r] = least
            continue
        if r > 0 and bucket_of[r - 1] == b and k >= last:
            lo = last  # the ranks before are in place
        _select(tmp, lo, hi, k)
        values[r] = tmp[k]
        last = k
    return True


@_kernel
def _quantiles_of(buf, m, q, out):  # pragma: no cover - compiled
    """The quantiles q (ascending, in [0, 1]) of buf[:m] (m > 0, no NaN; reordered) into out,
    with the bits of ``np.quantile(buf[:m], q)``; returns whether those bits are certain.

    numpy's linear method: virtual index (m - 1) x q, its floor and the next rank (both the
    largest past the end), gamma = virtual - floor, interpolated as ``_lerp`` does (a + d x g,
    or b - d x (1 - g) from g = 0.5). The ranks come from a quickselect (`_select`) instead of
    numpy's partition, which can only differ on a zero (0.0 and -0.0 compare equal, so which
    one a partition puts on a rank depends on the algorithm): False when a rank holds one.
    The middle quantile is selected first, then each side's in what is left of it."""
    nq = q.shape[0]
    order = np.empty(nq, dtype=np.int64)  # the quantiles, middle first, then each half's
    span_lo = np.empty(nq + 1, dtype=np.int64)
    span_hi = np.empty(nq + 1, dtype=np.int64)
    span_lo[0], span_hi[0] = 0, nq
    spans, n = 1, 0
    while spans > 0:
        spans -= 1
        s_lo, s_hi = span_lo[spans], span_hi[spans]
        if s_lo < s_hi:
            mid = (s_lo + s_hi) // 2
            order[n] = mid
            n += 1
            span_lo[spans], span_hi[spans] = s_lo, mid
            span_lo[spans + 1], span_hi[spans + 1] = mid + 1, s_hi
            spans += 2
    ranks = np.empty(2 * nq, dtype=np.int64)  # each quantile's two ranks
    for j in range(nq):
        virtual = np.float64(m - 1) * q[j]
        above = virtual >= m - 1
        ranks[2 * j] = m - 1 if above else np.int64(np.floor(virtual))
        ranks[2 * j + 1] = m - 1 if above else ranks[2 * j] + 1
    values = np.empty(2 * nq)
    if _rank_values(buf, m, ranks, values):
        exact = True
        for j in range(nq):
            virtual = np.float64(m - 1) * q[j]
            floor = -1.0 if virtual >= m - 1 else np.floor(virtual)
            a, b = values[2 * j], values[2 * j + 1]
            if a == 0.0 or b == 0.0:
                exact = False
            out[j] = _lerp(a, b, virtual - floor)
        return exact
    chosen = np.empty(nq, dtype=np.int64)  # ranks already in place
    exact = True
    for t in range(nq):
        j = order[t]
        virtual = np.float64(m - 1) * q[j]
        above = virtual >= m - 1
        floor = -1.0 if above else np.floor(virtual)
        rank = m - 1 if above else np.int64(floor)
        lo, hi = 0, m
        for u in range(t):
            if chosen[u] < rank:
                lo = max(lo, chosen[u] + 1)
            elif chosen[u] > rank:
                hi = min(hi, chosen[u] + 1)
        if above:
            _select(buf, lo, hi, rank)
            a = b = buf[rank]
        else:
            a, b = _select_pair(buf, lo, hi, rank)
        chosen[t] = rank
        if a == 0.0 or b == 0.0:
            exact = False
        out[j] = _lerp(a, b, virtual - floor)
    return exact


@_kernel
def _lerp(a, b, gamma):  # pragma: no cover - compiled
    """numpy's ``_lerp`` of `np.quantile`: a + d x gamma, or b - d x (1 - gamma) from 0.5."""
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


@_kernel
def _median_of(buf, m):  # pragma: no cover - compiled
    """``np.median(buf[:m])`` (m > 0, no NaN; reordered), and whether its bits are certain:
    not when the middle number (both, for an even count) is zero (see `_quantiles_of`;
    otherwise numpy's mean of the two middle numbers is their sum over 2, whatever zero its
    sum starts from). The middle ranks by `_rank_values` where it applies."""
    ranks = np.empty(2, dtype=np.int64)
    ranks[0] = (m - 1) // 2 if m % 2 == 1 else m // 2 - 1
    ranks[1] = ranks[0] if m % 2 == 1 else ranks[0] + 1
    values = np.empty(2)
    if _rank_values(buf, m, ranks, values):
        a, b = values[0], values[1]
        if m % 2 == 1:
            return a / 1.0, a != 0.0
        return (a + b) / 2.0, a != 0.0 or b != 0.0
    if m % 2 == 1:
        r = (m - 1) // 2
        _select(buf, 0, m, r)
        return buf[r] / 1.0, buf[r] != 0.0
    a, b = _select_pair(buf, 0, m, m // 2 - 1)
    return (a + b) / 2.0, a != 0.0 or b != 0.0


@_kernel
def _live_values(values, live, pos, lo, hi, buf):  # pragma: no cover - compiled
    """values[pos[j]] for the j in [lo, hi) whose merchant is live, into buf in order;
    returns how many and whether any is NaN."""
    m = np.uint64(0)
    nan = False
    # Unsigned positions and no branch (`and` would be one per number).
    for j in range(np.uint64(lo), np.uint64(hi)):
        p = np.uint64(pos[j])
        v = values[p]
        alive = live[p]
        buf[m] = v
        m += np.uint64(alive)
        nan |= alive & (v != v)
    return np.int64(m), nan


@_kernel
def sample_values(price, margin, quality, exposure, alive, union, values,
                  live):  # pragma: no cover - compiled
    """values[:, j] = the float64 price, margin, quality and exposure of slot union[j], and
    live[j] = alive[union[j]]."""
    for j in range(union.shape[0]):
        i = np.uint64(union[j])  # unsigned: no test for a negative index
        values[0, j] = np.float64(price[i])
        values[1, j] = np.float64(margin[i])
        values[2, j] = np.float64(quality[i])
        values[3, j] = np.float64(exposure[i])
        live[j] = alive[i]


@_kernel
def sample_statistics(price, margin, quality, exposure, alive, union, cohort_pos, bounds,
                      pooled_pos, q, quantiles, exact,
                      pooled_exposure):  # pragma: no cover - compiled
    """The day's statistics of the fixed samples, as numpy computes them from the live
    sampled merchants' float64 values:
      - quantiles[v, c, :] = ``np.quantile`` at q of v = price, margin, quality (0, 1, 2) over
        cohort c's sample (NaN with no live merchant), exact[v, c] whether the bits are
        certain (`_quantiles_of`; not with NaN in the sample);
      - the returned median of the pooled sample's margins (``np.median``, NaN with none) and
        whether its bits are certain (`_median_of`);
      - the pooled sample's live exposures, in sample order, into pooled_exposure, and how
        many (the returned count), for the Gini.
    The samples are read through their union (`union`, ascending slots; cohort c's sample is
    union[cohort_pos[bounds[c]:bounds[c + 1]]], the pooled one union[pooled_pos]): one pass
    in slot order brings in all five arrays' numbers, where a gather per sample and array
    waited on a cache miss per number."""
    n = union.shape[0]
    values = np.empty((4, n))
    live = np.empty(n, dtype=np.bool_)
    sample_values(price, margin, quality, exposure, alive, union, values, live)
    return sampled_statistics(values, live, cohort_pos, bounds, pooled_pos, q, quantiles,
                              exact, pooled_exposure)


@_kernel
def chunk_sample_statistics(price, margin, quality, exposure, alive, union, union_at,
                            cohort_pos, cohort_at, bounds, pooled_pos, pooled_at, q, quantiles,
                            exact, pooled_exposure, median, median_exact, pooled_live,
                            gini_value, gini_certain):  # pragma: no cover - compiled
    """`sample_statistics` and the `gini` of the pooled live exposures of each replication r
    of a chunk, in one call: its samples are union[union_at[r]:union_at[r + 1]] (slots of the
    chunk), cohort_pos[cohort_at[r]:cohort_at[r + 1]] with its cohorts' bounds[r], and
    pooled_pos[pooled_at[r]:pooled_at[r + 1]]; its figures go to row r of quantiles, exact,
    pooled_exposure, median, median_exact, pooled_live, gini_value and gini_certain. The
    same calls, on the same numbers, as one replication's: the same bits."""
    for r in range(union_at.shape[0] - 1):
        m, certain, k = sample_statistics(
            price, margin, quality, exposure, alive, union[union_at[r]:union_at[r + 1]],
            cohort_pos[cohort_at[r]:cohort_at[r + 1]], bounds[r],
            pooled_pos[pooled_at[r]:pooled_at[r + 1]], q, quantiles[r], exact[r],
            pooled_exposure[r])
        median[r] = m
        median_exact[r] = certain
        pooled_live[r] = k
        g, sure = gini(pooled_exposure[r, :k])
        gini_value[r] = g
        gini_certain[r] = sure


@_kernel
def sampled_statistics(values, live, cohort_pos, bounds, pooled_pos, q, quantiles, exact,
                       pooled_exposure):  # pragma: no cover - compiled
    """`sample_statistics` of the sampled merchants' numbers read already (`sample_values`:
    values[0:4] their float64 price, margin, quality and exposure, live whether alive)."""
    buf = np.empty(max(cohort_pos.shape[0], pooled_pos.shape[0]))
    for v in range(3):
        for c in range(bounds.shape[0] - 1):
            m, nan = _live_values(values[v], live, cohort_pos, bounds[c], bounds[c + 1], buf)
            exact[v, c] = not nan
            if m == 0 or nan:
                quantiles[v, c, :] = np.nan
            else:
                exact[v, c] = _quantiles_of(buf, m, q, quantiles[v, c])
    k, _ = _live_values(values[3], live, pooled_pos, 0, pooled_pos.shape[0], pooled_exposure)
    m, nan = _live_values(values[1], live, pooled_pos, 0, pooled_pos.shape[0], buf)
    if m == 0 or nan:
        return np.nan, not nan, k
    median, certain = _median_of(buf, m)
    return median, certain, k


@_kernel
def _sort_nonnegative(x, out):  # pragma: no cover - compiled
    """out = x sorted ascending, for float64 x of no negative number, -0.0 or NaN: an LSD
    radix sort of their bits (whose order as unsigned integers is the numbers' order) in
    11-bit digits, skipping a digit every number shares. Equal numbers have equal bits, so
    this is numpy's sort, value for value."""
    n = x.shape[0]
    a = x.view(np.uint64)
    src = np.empty(n, dtype=np.uint64)
    dst = np.empty(n, dtype=np.uint64)
    for i in range(n):
        src[i] = a[i]
    count = np.zeros((6, 2048), dtype=np.int64)
    mask = np.uint64(2047)
    for i in range(n):
        b = src[i]
        for d in range(6):
            count[d, (b >> np.uint64(11 * d)) & mask] += 1
    for d in range(6):
        every = False
        for v in range(2048):
            if count[d, v] == n:
                every = True
        if every:  # one digit for all: nothing to move
            continue
        total = 0
        for v in range(2048):
            c = count[d, v]
            count[d, v] = total
            total += c
        shift = np.uint64(11 * d)
        for i in range(n):
            b = src[i]
            v = (b >> shift) & mask
            dst[count[d, v]] = b
            count[d, v] += 1
        src, dst = dst, src
    bits = out.view(np.uint64)
    for i in range(n):
        bits[i] = src[i]


#: The most numbers a bucket of `_bucket_sort_nonnegative` may get (insertion sorted).
_BUCKET_MOST = 64


@_kernel
def _bucket_sort_nonnegative(x, out):  # pragma: no cover - compiled
    """out = x sorted ascending, for float64 x as `_sort_nonnegative` takes it, if no bucket
    gets more than `_BUCKET_MOST` numbers; returns whether it sorted. The numbers' bits (whose
    order as unsigned integers is the numbers') less the smallest, shifted to about 2n
    buckets, are counted and placed bucket by bucket (one pass each), then an insertion sort
    puts each bucket in order (it moves a number only within its bucket). Half the time of
    the radix sort's six digits on the samples' exposures, which spread over many powers of
    two but not evenly enough for fewer digits."""
    n = x.shape[0]
    a = x.view(np.uint64)
    lo = a[0]
    hi = a[0]
    for i in range(n):
        lo = min(lo, a[i])
        hi = max(hi, a[i])
    span = hi - lo
    width = 8  # bits of the bucket numbers: about 2n buckets, 256 to 65,536
    while width < 16 and (1 << width) <= n:
        width += 1
    shift = np.uint64(0)
    while (span >> shift) >= np.uint64(1 << width):
        shift += _U1
    buckets = np.int64(span >> shift) + 1
    count = np.zeros(buckets + 1, dtype=np.int64)
    for i in range(n):
        count[np.int64((a[i] - lo) >> shift) + 1] += 1
    for v in range(1, buckets + 1):
        if count[v] > _BUCKET_MOST:
            return False
        count[v] += count[v - 1]
    bits = out.view(np.uint64)
    for i in range(n):
        v = np.int64((a[i] - lo) >> shift)
        bits[count[v]] = a[i]
        count[v] += 1
    for i in range(1, n):
        b = bits[i]
        j = i - 1
        while j >= 0 and bits[j] > b:
            bits[j + 1] = bits[j]
            j -= 1
        bits[j + 1] = b
    return True


@_kernel
def gini(x):  # pragma: no cover - compiled
    """The Gini coefficient of the float64 x as the aggregates' numpy expression gives it:
    NaN when empty, 0 when ``x.sum() <= 0``, else 2 sum(k s_k) / (n sum(x)) - (n + 1) / n
    over s = ``np.sort(x)``, k = 1..n, both sums numpy's pairwise sums; and whether those
    bits are certain (with a negative number, -0.0 or NaN the caller asks numpy, as the sorts
    `_bucket_sort_nonnegative` and `_sort_nonnegative` take none of them)."""
    n = x.shape[0]
    if n == 0:
        return np.nan, True
    total = pairwise_sum(x, 0, n)
    if total <= 0:
        return 0.0, True
    for i in range(n):
        if not x[i] >= 0.0 or (x[i] == 0.0 and np.signbit(x[i])):
            return np.nan, False
    s = np.empty(n)
    if not _bucket_sort_nonnegative(x, s):
        _sort_nonnegative(x, s)
    for i in range(n):
        s[i] = np.float64(i + 1) * s[i]
    return (2.0 * pairwise_sum(s, 0, n)) / (np.float64(n) * total) - (n + 1.0) / n, True


@_kernel
def appeal_gather(active, refund_all, wrongful, wrongful_burden, want, refund, recovered,
                  wants):  # pragma: no cover - compiled
    """The day's refund, the burden recovered per upheld appeal (the wrongful refunds'
    burden over their number) and the appeals wanted of the merchants `active`."""
    for j in range(active.shape[0]):
        i = active[j]
        refund[j] = refund_all[i]
        w = wrongful[i]
        recovered[j] = wrongful_burden[i] / w if w > 0 else 0.0
        wants[j] = want[i]


@_kernel
def appeal_draw(u, rows, every, shift, share, r, human):  # pragma: no cover - compiled
    """A round's draws of the appellants `rows` (all of them when `every`) as float64, and
    whether each asks for a human review (the draw's offset, shifted by `shift`, under
    `share`)."""
    for j in range(rows.shape[0]):
        x = np.float64(u[j]) if every else np.float64(u[rows[j]])
        r[j] = x
        v = x + shift
        v -= np.floor(v)
        human[j] = v < share


@_kernel
def appeal_outcomes(rows, r, accepted, review_human, human_success, automated_success,
                    attempted, failed_month, failed_year, won, refund, recovered,
                    decided, starts):  # pragma: no cover - compiled
    """A round's outcomes: every appellant of `rows` attempted one appeal; an accepted one is
    upheld when its draw is under the reviewer's success rate (the refund's burden share is
    recovered), else it failed. `decided` receives the accepted appellants (their rows)
    grouped by (upheld, human), (upheld, automated), (failed, human), (failed, automated),
    each in row order, the groups starting at `starts[0..4]`."""
    k = rows.shape[0]
    counts = np.zeros(4, dtype=np.int64)
    code = np.empty(k, dtype=np.int64)
    for j in range(k):
        i = rows[j]
        attempted[i] += 1.0
        if not accepted[j]:
            code[j] = -1
            continue
        success = human_success if review_human[j] else automated_success
        if r[j] < success:
            won[i] += 1.0
            refund[i] -= recovered[i]
            c = 0
        else:
            failed_month[i] += 1
            failed_year[i] += 1
            c = 2
        if not review_human[j]:
            c += 1
        code[j] = c
        counts[c] += 1
    starts[0] = 0
    for c in range(4):
        starts[c + 1] = starts[c] + counts[c]
    fill = starts[:4].copy()
    for j in range(k):
        c = code[j]
        if c >= 0:
            decided[fill[c]] = rows[j]
            fill[c] += 1


@_kernel
def charge(out, mask, amount, alive, times):  # pragma: no cover - compiled
    """out += amount x times where the rule fired (`mask`; empty: on every row), the amount
    is known and the merchant alive; other rows add 0.0 (as ``out += np.where(ok, amount *
    times, 0.0)``). `times` empty: 1.0 on every row.

    One loop for each mix of mask and times (`_charge_rows`, compiled for each with None for
    what is absent), a select rather than a branch, and the flags read through uint8 views
    and combined with `&`, not `and`: a load that only some rows make (the second flag of a
    short-circuit `and`, or the times of a loop that tests for them row by row) either keeps
    the loop scalar or becomes a masked load, slow on a machine with AVX2 alone (958 against
    70-115 us at 200,000 rows there, with a rule's mask)."""
    live = alive.view(np.uint8)
    if mask.shape[0] == 0:
        if times.shape[0] == 0:
            _charge_rows(out, None, amount, live, None)
        else:
            _charge_rows(out, None, amount, live, times)
    elif times.shape[0] == 0:
        _charge_rows(out, mask.view(np.uint8), amount, live, None)
    else:
        _charge_rows(out, mask.view(np.uint8), amount, live, times)


@_kernel
def _charge_rows(out, fired, amount, live, times):  # pragma: no cover - compiled
    """`charge`'s loop; `fired` None: every row fired, `times` None: 1.0 (numba compiles a
    version for each, without the test)."""
    for i in range(out.shape[0]):
        a = amount[i]
        flags = live[i] if fired is None else live[i] & fired[i]
        hit = (flags != 0) & (a == a)
        add = a * (1.0 if times is None else times[i])
        out[i] = out[i] + (add if hit else 0.0)


@_kernel
def answer(left, capacity, remaining, answered, unanswered):  # pragma: no cover - compiled
    """The merchant answers as many of the `left` claims as its `capacity` (widened to
    float64) allows, which leaves it `remaining` (may be `capacity` itself); the rest stay
    unanswered."""
    for i in range(left.shape[0]):
        c = np.float64(capacity[i])
        a = min(left[i], c)
        answered[i] = a
        remaining[i] = c - a
        unanswered[i] = left[i] - a


@_kernel
def book_grants(cost, count, burden, wrongful, wrongful_burden, valid):  # pragma: no cover
    """`count` granted claims per row at `cost` each: their burden (cost x count) is added to
    `burden`, and, for claims without valid evidence, the claims to `wrongful` and their
    burden to `wrongful_burden` (as `_Claims.grant` adds them)."""
    for i in range(count.shape[0]):
        per = cost[i] * count[i]
        burden[i] += per
        if not valid:
            wrongful[i] += count[i]
            wrongful_burden[i] += per


@_kernel
def _grant_cost(product, shipping, merchant_pays, with_return, recall):  # pragma: no cover
    """The merchant's loss per granted claim of an order (its costs widened to float64), as
    `_Claims._cost` computes it. (Numbers, not arrays: a compiled function that takes arrays
    counts references on every call.)"""
    if not merchant_pays:
        return 0.0
    total = shipping + recall if with_return else product + shipping + recall
    return total if total > 0 else 0.0


@_kernel
def claim_grants(unit_cost, shipping, merchant_pays, with_return, recall, count, rule, position,
                 burden, wrongful, wrongful_burden, valid):  # pragma: no cover - compiled
    """`book_grants` of the claims a grant books at literal arguments, its cost per claim
    computed in the same pass (as `_Claims._cost` computes it: product, shipping and recall
    fee added in that order, widened to float64, a total that is not positive costing 0.0,
    nothing when the merchant does not pay) rather than kept in an array. With a non-empty
    `rule`, only the rows that rule `position` decided count (count x mask, as numpy
    multiplies by a boolean mask: the other rows book 0.0)."""
    # One loop per case, without a branch inside: the loops vectorise.
    n = count.shape[0]
    if rule.shape[0] > 0:
        if valid:
            for i in range(n):
                c = count[i] * (1.0 if rule[i] == position else 0.0)
                burden[i] += _grant_cost(np.float64(unit_cost[i]), np.float64(shipping[i]),
                                         merchant_pays, with_return, recall) * c
        else:
            for i in range(n):
                c = count[i] * (1.0 if rule[i] == position else 0.0)
                per = _grant_cost(np.float64(unit_cost[i]), np.float64(shipping[i]),
                                  merchant_pays, with_return, recall) * c
                burden[i] += per
                wrongful[i] += c
                wrongful_burden[i] += per
    elif valid:
        for i in range(n):
            burden[i] += _grant_cost(np.float64(unit_cost[i]), np.float64(shipping[i]),
                                     merchant_pays, with_return, recall) * count[i]
    else:
        for i in range(n):
            c = count[i]
            per = _grant_cost(np.float64(unit_cost[i]), np.float64(shipping[i]), merchant_pays,
                              with_return, recall) * c
            burden[i] += per
            wrongful[i] += c
            wrongful_burden[i] += per


@_kernel
def claim_grants_both(unit_cost, shipping, merchant_pays, with_return, recall, valid_count,
                      lacking_count, rule, position, burden, wrongful,
                      wrongful_burden):  # pragma: no cover - compiled
    """`claim_grants` of the claims with valid evidence (`valid_count`), then of those lacking
    it (`lacking_count`, wrongful), at the same arguments, in one pass: each row adds what
    the two calls added, in the same order."""
    n = valid_count.shape[0]
    select = rule.shape[0] > 0
    for i in range(n):
        cost = _grant_cost(np.float64(unit_cost[i]), np.float64(shipping[i]), merchant_pays,
                           with_return, recall)
        cv = valid_count[i]
        cl = lacking_count[i]
        if select:
            hit = 1.0 if rule[i] == position else 0.0
            cv = cv * hit
            cl = cl * hit
        b = burden[i] + cost * cv
        per = cost * cl
        burden[i] = b + per
        wrongful[i] += cl
        wrongful_burden[i] += per


@_kernel
def add_claims(acc, fresh, count, rule, position):  # pragma: no cover - compiled
    """acc = count (`fresh`) or acc + count, in place; with a non-empty `rule`, count x mask of
    the rows rule `position` decided (as `claim_grants` selects them)."""
    select = rule.shape[0] > 0
    for i in range(count.shape[0]):
        c = count[i]
        if select:
            c = c * (1.0 if rule[i] == position else 0.0)
        acc[i] = c if fresh else acc[i] + c


@_kernel
def fires(rule, position):  # pragma: no cover - compiled
    """Whether rule `position` decided any row: looked for 256 rows at a time, each stretch
    counted without a branch and with a fixed trip count (the loop vectorises), stopping
    after the first stretch with one."""
    n = rule.shape[0]
    full = n - n % 256
    for lo in range(0, full, 256):
        hits = 0
        for i in range(256):
            hits += rule[lo + i] == position
        if hits:
            return True
    found = False
    for i in range(full, n):
        if rule[i] == position:
            found = True
            break
    return found


@_kernel
def count_positive(count):  # pragma: no cover - compiled
    """How many rows have a positive count (``np.count_nonzero(count > 0)``)."""
    n = 0
    for i in range(count.shape[0]):
        if count[i] > 0:
            n += 1
    return n


@_kernel
def split_share(count, share, u, shift, part, rest):  # pragma: no cover - compiled
    """part = `floor_share(count, share, u, shift)` and rest = count - part, in one pass;
    returns how many rows have a positive part (as `count_positive(part)`)."""
    positive = 0
    for i in range(count.shape[0]):
        p = _share_floor(count[i], share, u[i], shift)
        part[i] = p
        rest[i] = count[i] - p
        if p > 0:
            positive += 1
    return positive


@_kernel
def _reviewed(auto, has_auto, human, has_human, share, u, shift):  # pragma: no cover
    """Claims the platform's review grants on a merchant: the human reviews' claims (`human`)
    plus `floor_share` of the automated ones (`auto`), added in that order; a kind it does not
    have (`has_...` False) adds nothing."""
    if has_auto:
        extra = _share_floor(auto, share, u, shift)
        return human + extra if has_human else extra
    return human


@_kernel
def _lacking_reviewed(auto, cost, share, u, shift, b, w, wb):  # pragma: no cover - compiled
    """The burden, wrongful claims and their burden (b, w, wb) with the grants of the
    platform's automated reviews of `auto` claims lacking evidence added, at `cost` a claim
    (`_reviewed`; human reviews grant nothing lacking evidence): all wrongful."""
    c = _reviewed(auto, True, 0.0, False, share, u, shift)
    per = cost * c
    return b + per, w + c, wb + per


@_kernel
def _wanted(alive, w, u, shift, propensity):  # pragma: no cover - compiled
    """The appeals a merchant wants after a day of `w` wrongful refunds: floor(w x
    propensity + offset) if alive and w > 0, else none."""
    if alive and w > 0:
        return _share_floor(w, propensity, u, shift)
    return 0.0


@_kernel
def review_close(auto_valid, human_valid, auto_lacking, share, u, shift_valid, shift_lacking,
                 unit_cost, shipping, merchant_pays, with_return, recall, burden, wrongful,
                 wrongful_burden, alive, close_shift, propensity, out_refund, out_wrongful,
                 out_wrongful_burden, out_want):  # pragma: no cover - compiled
    """The claims the platform's review grants, booked as `claim_grants` books them (claims
    with valid evidence first, then those lacking it, which are wrongful), then the day's
    totals (written to the day's arrays) and the appeals each live merchant with wrongful
    refunds wants, floor(wrongful x propensity + offset), in one pass. A class with no
    reviews (both of its arrays empty) books nothing."""
    auto = auto_valid.shape[0] > 0
    human = human_valid.shape[0] > 0
    valid = auto or human
    lacking = auto_lacking.shape[0] > 0
    for i in range(burden.shape[0]):
        b = burden[i]
        w = wrongful[i]
        wb = wrongful_burden[i]
        if valid or lacking:
            cost = _grant_cost(np.float64(unit_cost[i]), np.float64(shipping[i]), merchant_pays,
                               with_return, recall)
            if valid:
                b += cost * _reviewed(auto_valid[i] if auto else 0.0, auto,
                                      human_valid[i] if human else 0.0, human, share, u[i],
                                      shift_valid)
            if lacking:
                b, w, wb = _lacking_reviewed(auto_lacking[i], cost, share, u[i], shift_lacking,
                                             b, w, wb)
        out_refund[i] = b
        out_wrongful[i] = w
        out_wrongful_burden[i] = wb
        out_want[i] = _wanted(alive[i], w, u[i], close_shift, propensity)


@_kernel
def answer_both(left_lacking, left_valid, capacity, answered_lacking, unanswered_lacking,
                answered_valid, unanswered_valid):  # pragma: no cover - compiled
    """`answer` of the claims lacking evidence, then of those with valid evidence from the
    capacity that leaves, in one pass."""
    for i in range(left_lacking.shape[0]):
        c = np.float64(capacity[i])
        a = min(left_lacking[i], c)
        answered_lacking[i] = a
        unanswered_lacking[i] = left_lacking[i] - a
        c = c - a
        a = min(left_valid[i], c)
        answered_valid[i] = a
        unanswered_valid[i] = left_valid[i] - a


@_kernel
def _stage(p, count, lacking, masks, cost, b, w, wb, rejected, auto, human):  # pragma: no cover
    """One routing stage of a row's `count` claims, whose rule is at position `p`:
    `masks` (grant, reject, automated review, human review) hold bit p + 1 for each rule
    position with that effect. A grant books count x cost into the burden (and, lacking
    evidence, the claims and their burden as wrongful), as `claim_grants` does; the other
    effects add the claims to the stage's tables, as `add_claims` does. Selects, not
    branches: the loop vectorises."""
    bit = np.int64(p) + 1
    per = cost * count
    if (masks[0] >> bit) & 1:
        b = b + per
        if lacking:
            w = w + count
            wb = wb + per
    if (masks[1] >> bit) & 1:
        rejected = rejected + count
    if (masks[2] >> bit) & 1:
        auto = auto + count
    if (masks[3] >> bit) & 1:
        human = human + count
    return b, w, wb, rejected, auto, human


def refund_positions(rules: Sequence[Any]) -> tuple[int | None, ...]:
    """The position of each of `refund_day`'s six rule arguments that is one rule for every
    row (an int), None for those that are an array of the rows' rules."""
    return tuple(None if isinstance(rule, np.ndarray) else operator.index(rule)
                 for rule in rules)


def refund_stages(masks: np.ndarray, keys: np.ndarray, present: np.ndarray,
                  rules: Sequence[Any]) -> tuple[Fixed, np.ndarray]:
    """`refund_day`'s `stages` and `fees` from the stages' tables: `masks` (8 stages x 4
    effects, int64), the grants' cost keys `keys` (9 x 3: merchant pays, with return, recall
    fee; row 8 the review's), `present` (5 flags) and its six rule arguments (the stages
    whose argument is one position decide every row alike: `stages` holds it,
    `refund_positions`)."""
    return (Fixed((tuple(tuple(int(m) for m in row) for row in masks),
                   tuple(bool(k) for k in keys[:, 0]), tuple(bool(k) for k in keys[:, 1]),
                   tuple(bool(p) for p in present), refund_positions(rules))),
            np.ascontiguousarray(keys[:, 2], dtype=np.float64))


def _position(fixed, rule, i):  # pragma: no cover - compiled (see the overload below)
    """The rule of row i: `fixed` when the stage decides every row alike, else `rule[i]`."""
    return rule[i] if fixed is None else fixed


@overload(_position)
def _position_compiled(fixed, rule, i):  # pragma: no cover - compiled
    if isinstance(fixed, types.NoneType):
        if not isinstance(rule, types.Array):
            raise TypingError(f"refund_day: a stage decided row by row takes an array of "
                              f"rules, got {rule}")
        return lambda fixed, rule, i: rule[i]
    if not isinstance(rule, types.Integer):
        raise TypingError(f"refund_day: a stage that decides every row alike takes its one "
                          f"rule (an int), got {rule}")
    return lambda fixed, rule, i: fixed


def _refund_rows(stages, orders, quality, u_claims, u_refund, claim_rate, elasticity,
                 lacking_share, share, escalation_share, review_share, propensity, shifts,
                 rule_bv, rule_bl, rule_dl, rule_dv, rule_fv, rule_fl, fees, capacity, unit_cost,
                 shipping, alive, out_refund, out_wrongful, out_wrongful_burden,
                 out_want):  # pragma: no cover - compiled (see the overload below)
    """`refund_day`'s loop, built for its `stages`."""
    raise NotImplementedError


@overload(_refund_rows)
def _refund_rows_compiled(stages, orders, quality, u_claims, u_refund, claim_rate, elasticity,
                          lacking_share, share, escalation_share, review_share, propensity,
                          shifts, rule_bv, rule_bl, rule_dl, rule_dv, rule_fv, rule_fl, fees,
                          capacity, unit_cost, shipping, alive, out_refund, out_wrongful,
                          out_wrongful_burden, out_want):  # pragma: no cover - compiled
    if not isinstance(stages, FixedType):
        raise TypingError(f"refund_day: its stages (`refund_stages`) expected, got {stages}")
    masks, pays, back, present, positions = stages.values
    # The tables as constants of the loop (LLVM folds a stage's tests of them away).
    m0, m1, m2, m3, m4, m5, m6, m7 = masks
    p_bv, p_bl, p_dl, p_dv, p_fv, p_fl = positions
    auto_valid, human_valid, auto_lacking, escalate_valid, escalate_lacking = present
    has_valid = auto_valid or human_valid

    def rows(stages, orders, quality, u_claims, u_refund, claim_rate, elasticity,
             lacking_share, share, escalation_share, review_share, propensity, shifts,
             rule_bv, rule_bl, rule_dl, rule_dv, rule_fv, rule_fl, fees, capacity, unit_cost,
             shipping, alive, out_refund, out_wrongful, out_wrongful_burden, out_want):
        # The fees and shifts read into locals before the loop (loads from arrays the loop
        # might write, for all the compiler knows, would be repeated on every row).
        fee = (fees[0], fees[1], fees[2], fees[3], fees[4], fees[5], fees[6], fees[7],
               fees[8])
        shift = (shifts[0], shifts[1], shifts[2], shifts[3], shifts[4], shifts[5], shifts[6],
                 shifts[7])
        for i in range(orders.shape[0]):
            o = orders[i]
            rate = claim_rate * (1.0 + elasticity * (1.0 - np.float64(quality[i])))
            claims = min(o, np.floor(o * rate + np.float64(u_claims[i])))
            r = np.float64(u_refund[i])
            lack = min(claims, np.floor(claims * lacking_share + r))
            valid = claims - lack
            part_valid = _share_floor(valid, share, r, shift[1])
            left_valid = valid - part_valid
            part_lacking = _share_floor(lack, share, r, shift[2])
            left_lacking = lack - part_lacking
            product = np.float64(unit_cost[i])
            ship = np.float64(shipping[i])
            b, w, wb = 0.0, 0.0, 0.0
            rv, av, hv, rl, al, hl = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
            b, w, wb, rv, av, hv = _stage(
                _position(p_bv, rule_bv, i), part_valid, False, m0,
                _grant_cost(product, ship, pays[0], back[0], fee[0]), b, w, wb, rv, av, hv)
            b, w, wb, rl, al, hl = _stage(
                _position(p_bl, rule_bl, i), part_lacking, True, m1,
                _grant_cost(product, ship, pays[1], back[1], fee[1]), b, w, wb, rl, al, hl)
            c = np.float64(capacity[i])
            a = min(left_lacking, c)
            answered_lacking = a
            unanswered_lacking = left_lacking - a
            c = c - a
            a = min(left_valid, c)
            answered_valid = a
            unanswered_valid = left_valid - a
            b, w, wb, rl, al, hl = _stage(
                _position(p_dl, rule_dl, i), answered_lacking, True, m2,
                _grant_cost(product, ship, pays[2], back[2], fee[2]), b, w, wb, rl, al, hl)
            b, w, wb, rv, av, hv = _stage(
                _position(p_dv, rule_dv, i), answered_valid, False, m3,
                _grant_cost(product, ship, pays[3], back[3], fee[3]), b, w, wb, rv, av, hv)
            b, w, wb, rv, av, hv = _stage(
                0, unanswered_valid, False, m4,
                _grant_cost(product, ship, pays[4], back[4], fee[4]), b, w, wb, rv, av, hv)
            b, w, wb, rl, al, hl = _stage(
                0, unanswered_lacking, True, m5,
                _grant_cost(product, ship, pays[5], back[5], fee[5]), b, w, wb, rl, al, hl)
            if escalate_valid:
                b, w, wb, rv, av, hv = _stage(
                    _position(p_fv, rule_fv, i), _share_floor(rv, escalation_share, r, shift[3]),
                    False, m6, _grant_cost(product, ship, pays[6], back[6], fee[6]), b, w, wb,
                    rv, av, hv)
            if escalate_lacking:
                b, w, wb, rl, al, hl = _stage(
                    _position(p_fl, rule_fl, i), _share_floor(rl, escalation_share, r, shift[4]),
                    True, m7, _grant_cost(product, ship, pays[7], back[7], fee[7]), b, w, wb,
                    rl, al, hl)
            if has_valid or auto_lacking:
                cost = _grant_cost(product, ship, pays[8], back[8], fee[8])
                if has_valid:
                    b += cost * _reviewed(av, auto_valid, hv, human_valid, review_share, r,
                                          shift[5])
                if auto_lacking:
                    b, w, wb = _lacking_reviewed(al, cost, review_share, r, shift[6], b, w, wb)
            out_refund[i] = b
            out_wrongful[i] = w
            out_wrongful_burden[i] = wb
            out_want[i] = _wanted(alive[i], w, r, shift[7], propensity)

    return rows


@_kernel
def refund_day(stages, orders, quality, u_claims, u_refund, claim_rate, elasticity,
               lacking_share, share, escalation_share, review_share, propensity, shifts,
               rule_bv, rule_bl, rule_dl, rule_dv, rule_fv, rule_fl, fees, capacity, unit_cost,
               shipping, alive, out_refund, out_wrongful, out_wrongful_burden,
               out_want):  # pragma: no cover - compiled
    """A block's whole refund day when every claim request awaits the merchant, in one pass
    (the stages `Model._refunds` otherwise runs one kernel at a time, with the same
    arithmetic in the same order on every row): claims counted and split (`claims_split`),
    the platform's intervention on its share (stage 0 valid evidence, 1 lacking), the
    merchant's answers (`answer_both`) routed (stage 2 the rejected claims lacking evidence,
    3 the accepted valid ones), the response deadlines of the unanswered (4 valid, 5
    lacking), the escalation of rejected claims (`floor_share`, then 6 valid, 7 lacking),
    then the platform's reviews and the day's close (`review_close`).

    `stages` (`refund_stages`) is what the kernel is compiled for (`simulator.fixed`): stage
    s's effect masks (`masks[s]`: grant, reject, automated review, human review, each with
    bit p + 1 for the rule positions p with that effect), its grants' cost key (merchant
    pays, with return; `fees[s]` the recall fee; entry 8 the review's), whether the stages
    can add to the valid class's automated and human reviews, the lacking class's automated
    reviews, and each class's rejected claims (valid, lacking), and the position of each
    stage that decides every row alike (its rule argument `rule_..` is then not read; the
    others' is an int32 array of the rows' rules; the deadlines' stages decide every row
    alike, position 0). Stage s books through `_stage`. `shifts[k]` is the offset shift
    k x GOLDEN of `population.offset`.

    A row books only the effects of its own rule, where the stages one at a time also add
    the other rules' share of its claims, zero (count x 0): adding zero changes no sum, as
    long as a grant's cost is finite (an infinite product or shipping cost times no claims
    would be NaN there)."""
    _refund_rows(stages, orders, quality, u_claims, u_refund, claim_rate, elasticity,
                 lacking_share, share, escalation_share, review_share, propensity, shifts,
                 rule_bv, rule_bl, rule_dl, rule_dv, rule_fv, rule_fl, fees, capacity,
                 unit_cost, shipping, alive, out_refund, out_wrongful, out_wrongful_burden,
                 out_want)


@_kernel
def mark_changed(current, previous, changed):  # pragma: no cover - compiled
    """changed |= current != previous, bit for bit (arrays viewed as unsigned integers);
    then previous = current."""
    for i in range(current.shape[0]):
        if current[i] != previous[i]:
            changed[i] = True
            previous[i] = current[i]


#: The position of a 64-bit word's one set bit, by the top six bits of the word times
#: `_DE_BRUIJN` (a de Bruijn sequence: each position gives a different six-bit prefix).
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_BIT_POSITION = np.array([0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59,
                          36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5, 63, 47, 56, 27, 60,
                          41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31,
                          10, 25, 14, 19, 9, 13, 8, 7, 6], dtype=np.int64)


@_kernel
def changed_rows(current, previous, out):  # pragma: no cover - compiled
    """The rows where current != previous, bit for bit (arrays viewed as unsigned integers),
    into `out` in order (as ``np.flatnonzero(current != previous)``); returns how many. Then
    previous = current."""
    # Each stretch of 64 rows is compared without a branch (the loop vectorises) into a
    # 64-bit mask of the rows that changed, whose set bits are then taken lowest first: a
    # step per changed row, where walking a stretch that holds one change took 64 (changes
    # are scattered: a day's few thousand among 240,000 rows touch most stretches).
    n = current.shape[0]
    full = n - n % 64
    k = 0
    for lo in range(0, full, 64):
        changed = np.uint64(0)
        for j in range(64):
            changed |= np.uint64(current[lo + j] != previous[lo + j]) << np.uint64(j)
        while changed:
            lowest = changed & (np.uint64(0) - changed)
            i = lo + _BIT_POSITION[(lowest * _DE_BRUIJN) >> np.uint64(58)]
            out[k] = i
            k += 1
            previous[i] = current[i]
            changed ^= lowest
    for i in range(full, n):
        if current[i] != previous[i]:
            out[k] = i
            k += 1
            previous[i] = current[i]
    return k


@_kernel
def take(source, idx, out):  # pragma: no cover - compiled
    """out = source[idx]."""
    for j in range(idx.shape[0]):
        out[j] = source[idx[j]]
    return out


@_kernel
def put(target, idx, values):  # pragma: no cover - compiled
    """target[idx] = values."""
    for j in range(idx.shape[0]):
        target[idx[j]] = values[j]


@_kernel
def appeal_scatter(active, refund, attempted, won, day_refund, day_attempted,
                   day_won):  # pragma: no cover - compiled
    """The appellants' refunds (after recoveries) and appeals into the day's flows."""
    for j in range(active.shape[0]):
        i = active[j]
        day_refund[i] = refund[j]
        day_attempted[i] = day_attempted[i] + attempted[j]
        day_won[i] = day_won[i] + won[j]
