"""The starting population of one replication and the random numbers of each of its days.

Both the vectorised model and the plain-Python reference start from `initial_state` and read the
day's draws from `day_draws`/`appeal_draws`, in the same order from the same Generator: that is
what lets the reference be an exact oracle for the model, and what makes a replication's numbers
depend only on its own seed (not on which other replications run beside it).

Layout of one replication: merchants are slots ``g * slots + s`` for product group ``g`` and
seller ``s < slots``, where ``slots`` is the largest group's seller count; slots beyond a smaller
group's sellers are padding that never lives (``exists`` is False).

Draws of a day, in this order:
  1. ``group``: float64 (2, G): whether the whole-web price is cut today, and how deep;
  2. ``merchant``: float32 (6, n), one row per stage (see the ``U_*`` row names);
  3. after refunds, ``appeal_draws``: float32 (max_per_day, m) for the m merchants (in slot
     order) that want to appeal today; nothing is drawn when m == 0.
A stage that needs several rounding offsets for one merchant-day takes them from one uniform,
shifted by multiples of the golden ratio (`offset`): each offset is uniform on [0, 1).
The float32 draws come from `simulator.draws.uniform_float32`: numpy's own numbers and Generator
state, bit for bit, drawn by a compiled kernel when the Generator is a PCG64 (as here).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from simulator.draws import uniform_float32
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
        tier[g * slots: g * slots + size] = rng.permutation(labels)
    tiers = [getattr(m.tiers, t) for t in TIERS]

    def pick(attr: str) -> np.ndarray:
        return np.array([getattr(t, attr).value for t in tiers], dtype=np.float64)[tier]

    unit_cost_group = np.array([gr.unit_cost.value for gr in m.groups])[group]
    shipping = np.array([gr.shipping_cost.value for gr in m.groups])[group]
    p = m.population
    spread = rng.standard_normal(n)
    full_cost = unit_cost_group * pick("cost_factor") * np.exp(p.cost_spread.value * spread)
    quality = rng.uniform(p.quality_low.value, p.quality_high.value, n)
    share = m.adaptation.cost_share_of_quality.value
    unit_cost = full_cost * (1.0 - share * (1.0 - quality))
    margin0 = rng.uniform(p.initial_margin_low.value, p.initial_margin_high.value, n)
    burden0 = p.initial_burden_ratio.value
    price = np.round((unit_cost + shipping) / (1.0 - margin0 - burden0), 1)
    promo = price * (1.0 + p.promo_signup_markup.value)
    enrolled = rng.random(n) < m.auto_follow.enrolled_share.value
    scale = pick("scale")
    d = m.demand
    impressions = np.array([gr.daily_impressions.value for gr in m.groups])
    scale_in_group = np.bincount(group, weights=np.where(exists, scale, 0.0),
                                 minlength=len(lay.groups))
    expected_revenue = (impressions[group] * scale / scale_in_group[group]
                        * d.click_through_rate.value * d.conversion.value
                        * quality ** d.quality_conversion_elasticity.value * price)
    fixed_cost = pick("fixed_cost_share") * expected_revenue
    cash = pick("cash_buffer_days") * expected_revenue
    alive = exists.copy()
    return {
        "exists": exists, "alive": alive, "group": group, "tier": tier,
        "full_cost": full_cost, "unit_cost": unit_cost, "shipping": shipping,
        "quality": quality, "quality0": quality.copy(), "price": price, "promo": promo,
        "enrolled": enrolled & exists, "scale": np.where(exists, scale, 0.0),
        "fixed_cost": fixed_cost, "cash": cash,
        "capacity": pick("response_capacity"),
        "burden_ema": np.full(n, burden0), "last_revenue": expected_revenue,
    }


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


def day_draws(rng: np.random.Generator, layout: Layout) -> DayDraws:
    """The day's group and merchant draws: ``rng.random((2, G))`` then
    ``rng.random((6, n), dtype=np.float32)``, the latter by the compiled kernel when large (same
    bits and Generator state; it is the bulk of a large population's day's draws)."""
    g = rng.random((2, len(layout.groups)))
    u = uniform_float32(rng, (N_MERCHANT_DRAWS, layout.n))
    return DayDraws(g, u)


def appeal_draws(rng: np.random.Generator, m: int, per_day: int) -> np.ndarray:
    """``rng.random((per_day, m), dtype=np.float32)`` for the m appealing merchants (compiled
    when large, as in `day_draws`); nothing is drawn when m or per_day is 0."""
    if m == 0 or per_day == 0:
        return np.empty((per_day, 0), dtype=np.float32)
    return uniform_float32(rng, (per_day, m))


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
