"""The starting population of one replication and the random numbers of each of its days.

Both the vectorised model and the plain-Python reference start from `initial_state` and read the
day's draws from `day_draws`/`appeal_draws`, in the same order from the same sources: that is
what lets the reference be an exact oracle for the model, and what makes a replication's numbers
depend only on its own seed (not on which other replications run beside it).

Layout of one replication: merchants are slots ``g * slots + s`` for product group ``g`` and
seller ``s < slots``, where ``slots`` is the largest group's seller count; slots beyond a smaller
group's sellers are padding that never lives (``exists`` is False).

A replication's numbers come from three sources, all made from its seed: its Generator
(``default_rng(seed)``, PCG64), which draws the starting population and each day's group draws,
and two sets of `simulator.draws.MerchantLanes` (SFC64 generators side by side, seeded by
children of the same seed), which draw the merchants' numbers of each day and the appeals'.
Draws of a day, in this order:
  1. ``group``: float64 (2, G) from the Generator: whether the whole-web price is cut today,
     and how deep;
  2. ``merchant``: float32 (6, n) from the day lanes, one row per stage (see the ``U_*`` row
     names);
  3. after refunds, ``appeal_draws``: float32 (max_per_day, m) from the appeal lanes for the m
     merchants (in slot order) that want to appeal today; nothing is drawn when m == 0. (Their
     own lanes: how many appeal today moves no later day's merchant numbers.)
A stage that needs several rounding offsets for one merchant-day takes them from one uniform,
shifted by multiples of the golden ratio (`offset`): each offset is uniform on [0, 1).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from simulator.draws import MerchantLanes, _halves, _lcg_step, _output
from simulator.kernels import _kernel
from simulator.scenario import TIERS, Scenario

U_ORDERS, U_CLAIMS, U_REFUND, U_PROMPT, U_TOGGLE, U_ADAPT = range(6)
N_MERCHANT_DRAWS = 6
GOLDEN = 0.6180339887498949
DAY = 86400.0

#: Outcome of an appeal decision as event payload text (the rulebooks test `== "rejected"`).
UPHELD, REJECTED = "upheld", "rejected"


def offset(u: float | np.ndarray, k: int) -> float | np.ndarray:
    """The k-th rounding offset derived from one uniform draw (k = 0 is the draw itself)."""
    if k == 0:
        return u
    v = u + k * GOLDEN
    if isinstance(v, np.ndarray):  # in place: one temporary fewer on a whole population
        v -= np.floor(v)
        return v
    return v - np.floor(v)


@dataclass(frozen=True)
class Layout:
    """Where each merchant of one replication sits; identical for every replication."""

    groups: tuple[str, ...]
    sizes: tuple[int, ...]
    slots: int

    @property
    def n(self) -> int:
        return len(self.groups) * self.slots

    @classmethod
    def of(cls, scenario: Scenario) -> Layout:
        groups = scenario.model.groups
        sizes = tuple(g.sellers.value for g in groups)
        return cls(tuple(g.name for g in groups), sizes, max(sizes))

    def exists(self) -> np.ndarray:
        return (np.arange(self.slots)[None, :] < np.array(self.sizes)[:, None]).ravel()

    def group_of(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.groups)), self.slots)


def position_weights(slots: int, exponent: float) -> np.ndarray:
    """Exposure weight of rank 1..slots: 1 / log2(1 + rank) ** exponent (float64)."""
    ranks = np.arange(1, slots + 1, dtype=np.float64)
    return 1.0 / np.log2(1.0 + ranks) ** exponent


def initial_state(scenario: Scenario, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A replication's merchants on day 0 (float64 / bool / int arrays of length n).

    Tiers are assigned in each group by the tier shares, in a random order; unit cost is the
    group's full-quality cost times the tier's cost factor with a log-normal spread; the starting
    price puts the net margin (after the expected burdens) uniformly in the initial margin band.
    """
    return start_state(scenario, rng, np.float64)[0]


def start_state(scenario: Scenario, rng: np.random.Generator,
                dtype: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`initial_state` with its float arrays in `dtype` (numpy's ``astype`` of the float64
    ones, bit for bit), and the starting prices in float64 (what `web_start` reads).

    The model keeps its state in float32 by default: the figures are computed in float64 and
    rounded as they are stored, in one compiled pass (`_merchants`), instead of two dozen
    numpy passes over float64 temporaries and a cast of each array afterwards. The draws come
    from numpy in numpy's order (the tier orders by `permuted`, numpy's own permutation); the
    exponential and the power are numpy's too.
    """
    m = scenario.model
    lay = Layout.of(scenario)
    n, slots = lay.n, lay.slots
    exists = lay.exists()
    group = lay.group_of()
    tier = np.zeros(n, dtype=np.int8)
    shares = np.array([getattr(m.tiers, t).share.value for t in TIERS])
    for g, size in enumerate(lay.sizes):
        counts = np.floor(shares * size + 1e-9).astype(int)
        counts[0] += size - counts.sum()  # rounding remainder goes to the small tier
        labels = np.repeat(np.arange(len(TIERS), dtype=np.int8), counts)
        tier[g * slots: g * slots + size] = permuted(rng, labels)
    tiers = [getattr(m.tiers, t) for t in TIERS]

    def table(attr: str) -> np.ndarray:
        return np.array([getattr(t, attr).value for t in tiers], dtype=np.float64)

    p = m.population
    growth = np.exp(p.cost_spread.value * rng.standard_normal(n))
    quality, margin0, enrolled = _uniforms(
        rng, n, (p.quality_low.value, p.quality_high.value),
        (p.initial_margin_low.value, p.initial_margin_high.value),
        m.auto_follow.enrolled_share.value)
    enrolled &= exists
    d = m.demand
    conversion = quality ** d.quality_conversion_elasticity.value
    burden0 = p.initial_burden_ratio.value
    out = {k: np.empty(n, dtype=dtype) for k in _MERCHANT_FLOATS}
    price64 = out["price"] if out["price"].dtype == np.float64 else np.empty(n)
    _merchants(group, tier, exists, growth, quality, margin0, conversion,
               np.array([gr.unit_cost.value for gr in m.groups], dtype=np.float64),
               np.array([gr.shipping_cost.value for gr in m.groups], dtype=np.float64),
               np.array([gr.daily_impressions.value for gr in m.groups], dtype=np.float64),
               table("cost_factor"), table("scale"), table("fixed_cost_share"),
               table("cash_buffer_days"), table("response_capacity"),
               float(m.adaptation.cost_share_of_quality.value), float(burden0),
               1.0 + p.promo_signup_markup.value, float(d.click_through_rate.value),
               float(d.conversion.value), price64, *(out[k] for k in _MERCHANT_FLOATS))
    state = {
        "exists": exists, "alive": exists.copy(), "group": group, "tier": tier,
        "full_cost": out["full_cost"], "unit_cost": out["unit_cost"],
        "shipping": out["shipping"], "quality": out["quality"], "quality0": out["quality0"],
        "price": out["price"], "promo": out["promo"], "enrolled": enrolled,
        "scale": out["scale"], "fixed_cost": out["fixed_cost"], "cash": out["cash"],
        "capacity": out["capacity"],
        "burden_ema": np.full(n, burden0).astype(dtype, copy=False),
        "last_revenue": out["last_revenue"],
    }
    return state, price64


#: The arrays `_merchants` writes in the state's float type, in its order.
_MERCHANT_FLOATS = ("full_cost", "unit_cost", "shipping", "quality", "quality0", "price",
                    "promo", "scale", "capacity", "fixed_cost", "cash", "last_revenue")


@_kernel
def _merchants(group, tier, exists, growth, quality, margin0, conversion, unit_cost_g,
               shipping_g, impressions_g, cost_factor_t, scale_t, fixed_share_t, cash_days_t,
               capacity_t, share, burden0, markup, click_through, conversion_rate, price64,
               full_cost, unit_cost, shipping, quality_out, quality0, price, promo, scale,
               capacity, fixed_cost, cash, revenue):  # pragma: no cover - compiled
    """The day-0 figures of `start_state` from its draws: the same float64 operations in the
    same order as numpy's expressions for them (no fused multiply-adds), so the same bits,
    each stored in the outputs' type as ``astype`` rounds it (`price64` keeps the float64
    prices); `growth` is the cost spread's exponential and `conversion` the quality's power,
    which numpy computed. Each group's scale is summed first, in slot order as
    ``np.bincount`` sums it."""
    n = group.size
    in_group = np.zeros(unit_cost_g.size)
    for i in range(n):
        if exists[i]:
            in_group[group[i]] += scale_t[tier[i]]
        else:
            in_group[group[i]] += 0.0
    for i in range(n):
        g = group[i]
        t = tier[i]
        q = quality[i]
        full = unit_cost_g[g] * cost_factor_t[t] * growth[i]
        unit = full * (1.0 - share * (1.0 - q))
        ship = shipping_g[g]
        p = np.rint((unit + ship) / (1.0 - margin0[i] - burden0) * 10.0) / 10.0  # np.round(, 1)
        r = (impressions_g[g] * scale_t[t] / in_group[g] * click_through * conversion_rate
             * conversion[i] * p)
        price64[i] = p
        full_cost[i] = full
        unit_cost[i] = unit
        shipping[i] = ship
        quality_out[i] = q
        quality0[i] = q
        price[i] = p
        promo[i] = p * markup
        scale[i] = scale_t[t] if exists[i] else 0.0
        capacity[i] = capacity_t[t]
        fixed_cost[i] = fixed_share_t[t] * r
        cash[i] = cash_days_t[t] * r
        revenue[i] = r


def _uniforms(rng: np.random.Generator, n: int, quality: tuple[float, float],
              margin: tuple[float, float],
              enrolled: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rng.uniform(*quality, n)``, ``rng.uniform(*margin, n)`` and ``rng.random(n) <
    enrolled``, drawn in that order, with the Generator left as those calls leave it.

    For a PCG64 Generator the 3 n 64-bit outputs are drawn at once (``random_raw``, which
    takes the same outputs from the same state and leaves numpy's buffered 32-bit half alone,
    as float64 draws do) and turned into numpy's doubles, ``(x >> 11) * 2**-53``, and its
    uniforms, ``low + (high - low) * u``, in one compiled pass (`_raw_uniforms`): a third of
    numpy's time, which calls the bit generator through a function pointer per number."""
    q_low, q_high = (float(x) for x in quality)
    m_low, m_high = (float(x) for x in margin)
    if (type(rng.bit_generator) is not np.random.PCG64 or n < COMPILED_MIN
            or not (math.isfinite(q_high - q_low) and math.isfinite(m_high - m_low))):
        # (numpy's draws; a range that overflows gets numpy's error)
        return (rng.uniform(quality[0], quality[1], n), rng.uniform(margin[0], margin[1], n),
                rng.random(n) < enrolled)
    out = np.empty(n), np.empty(n), np.empty(n, dtype=bool)
    _raw_uniforms(rng.bit_generator.random_raw(3 * n), q_low, q_high - q_low, m_low,
                  m_high - m_low, float(enrolled), *out)
    return out


_TO_DOUBLE = 1.0 / 9007199254740992.0  # numpy's next_double: 53 bits times 2**-53
_S11 = np.uint64(11)


@_kernel
def _raw_uniforms(raw, q_low, q_range, m_low, m_range, share, quality, margin,
                  enrolled):  # pragma: no cover - compiled
    """numpy's uniforms from PCG64 outputs: the first n for `quality`, the next n for
    `margin`, the last n compared with `share` (`_uniforms`)."""
    n = quality.size
    for i in range(n):
        quality[i] = q_low + q_range * (float(raw[i] >> _S11) * _TO_DOUBLE)
        margin[i] = m_low + m_range * (float(raw[n + i] >> _S11) * _TO_DOUBLE)
        enrolled[i] = float(raw[2 * n + i] >> _S11) * _TO_DOUBLE < share


def permuted(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Exactly ``rng.permutation(labels)`` for a 1-d array, and the Generator left in exactly
    the state that call leaves: by a compiled loop for a PCG64 Generator and a large array
    (numpy's shuffle calls the bit generator through a function pointer per swap, about twice
    the loop's time), by numpy otherwise."""
    if (type(rng.bit_generator) is not np.random.PCG64 or labels.ndim != 1
            or not COMPILED_MIN <= labels.size <= 1 << 32):
        return rng.permutation(labels)
    out = labels.copy()
    bg = rng.bit_generator
    st = bg.state
    lcg = st["state"]
    hi, lo, buffered, value = _shuffle_pcg64(
        out, *_halves(int(lcg["state"])), *_halves(int(lcg["inc"])), bool(st["has_uint32"]),
        np.uint64(st["uinteger"]))
    lcg["state"] = (int(hi) << 64) | int(lo)
    st["has_uint32"], st["uinteger"] = int(buffered), int(value)
    bg.state = st
    return out


#: Below this many labels or numbers numpy shuffles or draws them itself (`permuted`,
#: `_uniforms`): the state round trip and the call would cost more than they save.
COMPILED_MIN = 4096

_M32 = np.uint64(0xFFFFFFFF)
_S1, _S2, _S4, _S8, _S16, _S32 = (np.uint64(k) for k in (1, 2, 4, 8, 16, 32))


@_kernel
def _shuffle_pcg64(x, s_hi, s_lo, inc_hi, inc_lo, buffered, value):  # pragma: no cover
    """numpy's ``Generator.shuffle`` of a 1-d array of fewer than 2**32 items, in place, from
    the PCG64 state (s_hi, s_lo) with increment (inc_hi, inc_lo) and numpy's buffered half of
    an output (`buffered`, `value`: ``has_uint32`` / ``uinteger``); returns them afterwards.

    numpy's Fisher-Yates: for i from the last index down to 1, swap x[i] with x[j], j from
    ``random_interval(i)``: 32-bit draws (``next_uint32``: the buffered half if there is one,
    else the low half of a new output, its high half buffered) masked to i's bit length,
    drawn again while above i."""
    h, lo = s_hi, s_lo
    for i in range(x.size - 1, 0, -1):
        top = np.uint64(i)
        mask = top | (top >> _S1)
        mask |= mask >> _S2
        mask |= mask >> _S4
        mask |= mask >> _S8
        mask |= mask >> _S16
        mask |= mask >> _S32
        while True:
            if buffered:
                v = value
                buffered = False
            else:
                h, lo = _lcg_step(h, lo, inc_hi, inc_lo)
                o = _output(h, lo)
                v = o & _M32
                value = o >> _S32
                buffered = True
            v &= mask
            if v <= top:
                break
        t = x[i]
        x[i] = x[v]
        x[v] = t
    return h, lo, buffered, value


def web_start(scenario: Scenario, state: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Whole-web lowest price per group at the start, its cap (the start) and its floor."""
    m = scenario.model
    lay = Layout.of(scenario)
    start = np.empty(len(lay.groups))
    for g in range(len(lay.groups)):
        prices = state["price"][g * lay.slots: g * lay.slots + lay.sizes[g]]
        start[g] = np.median(prices) * m.web_price.start_ratio.value
    landed = np.array([gr.unit_cost.value + gr.shipping_cost.value for gr in m.groups])
    floor = landed * m.web_price.floor_ratio.value
    return start, start.copy(), floor


@dataclass(frozen=True)
class DayDraws:
    group: np.ndarray  # float64 (2, G)
    merchant: np.ndarray  # float32 (6, n)


def day_draws(rng: np.random.Generator, lanes: MerchantLanes, layout: Layout) -> DayDraws:
    """The day's group and merchant draws: ``rng.random((2, G))``, then the day lanes' float32
    (6, n) (`MerchantLanes.uniform_float32`: the bulk of a large population's draws)."""
    g = rng.random((2, len(layout.groups)))
    u = lanes.uniform_float32((N_MERCHANT_DRAWS, layout.n))
    return DayDraws(g, u)


def appeal_draws(lanes: MerchantLanes, m: int, per_day: int) -> np.ndarray:
    """The appeal lanes' float32 (per_day, m) for the m appealing merchants; nothing is drawn
    when m or per_day is 0."""
    return lanes.uniform_float32((per_day, m))


def calendar_problem(start: dt.date, days: int) -> str | None:
    """Why `days` days from `start` cannot be simulated, None if they can: each day is a
    date, and so is the first day of the year after it (an appeal block runs to it), so the
    last day must fall in year 9998 at the latest (Python's dates end with 9999)."""
    try:
        last = start + dt.timedelta(days=max(days, 1) - 1)
    except OverflowError:
        last = dt.date.max
    if last.year >= dt.MAXYEAR:
        return (f"{days} days from {start.isoformat()} run past what the calendar holds: the "
                f"last day must fall in {dt.MAXYEAR - 1} at the latest")
    return None


@dataclass(frozen=True)
class Calendar:
    """Day start times and month/year boundaries in the rulebooks' time zone."""

    start: dt.date
    zone: str

    def time(self, day: int) -> float:
        d = self.start + dt.timedelta(days=day)
        return dt.datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(self.zone)).timestamp()

    def periods(self, day: int) -> tuple[tuple[int, int], int, float, float]:
        """(month key, year key, start of next month, start of next year) for a day."""
        d = self.start + dt.timedelta(days=day)
        tz = ZoneInfo(self.zone)
        nm = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        ny = dt.date(d.year + 1, 1, 1)
        return ((d.year, d.month), d.year,
                dt.datetime(nm.year, nm.month, 1, tzinfo=tz).timestamp(),
                dt.datetime(ny.year, 1, 1, tzinfo=tz).timestamp())
