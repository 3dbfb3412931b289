"""A synthetic but recognisable world of merchants and orders, as a stream of event dicts.

The auditor needs streams that exercise every rule family with the proportions the field research
reports (see the domain notes): a price war pushed by automatic price following, refund-only
claims at 5-10 % of orders with about a quarter lacking evidence, merchants who answer late or
never, appeals that outrun a 30-a-month quota. Real platform data is not available, so the world
is simulated; it is deterministic for a seed so that audits, benchmarks and tests are repeatable.

Times are whole seconds from ``start``; the stream is sorted by time, then by the causal order of
event types (a registration before its first listing at the same second), then by the order the
simulation produced them.
"""

from __future__ import annotations

import json
import math
import os
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np

from service.events import EVENT_TYPES

__all__ = [
    "DEFAULT_START",
    "PRODUCT_GROUPS",
    "generate_events",
    "generate_to_file",
    "write_jsonl",
]

DEFAULT_START = datetime(2024, 7, 1, tzinfo=timezone(timedelta(hours=8)))
"""Mid-2024, when automatic price following was introduced; China Standard Time."""

HOUR = 3600
DAY = 86400
WEEK_DAYS = 7

TIERS = ("small", "medium", "large")
TIER_SHARES = (0.70, 0.20, 0.10)
ORDERS_PER_DAY = {"small": 5.0, "medium": 20.0, "large": 60.0}
ORDER_RATE_SPREAD = 0.5
"""Log-normal spread of a merchant's order rate inside its tier: a few large stores are much
busier than the median, which is what pushes their appeals past 30 a month."""

# (product group, family, typical unit cost in yuan, typical shipping cost in yuan)
PRODUCT_GROUPS: tuple[tuple[str, str, float, float], ...] = (
    ("sofa", "furniture", 560, 80),
    ("bed_frame", "furniture", 420, 70),
    ("wardrobe", "furniture", 380, 70),
    ("dining_table", "furniture", 260, 50),
    ("dining_chair", "furniture", 65, 20),
    ("office_chair", "furniture", 120, 25),
    ("bookshelf", "furniture", 95, 25),
    ("tv_cabinet", "furniture", 180, 40),
    ("coffee_table", "furniture", 110, 30),
    ("shoe_rack", "furniture", 35, 12),
    ("nightstand", "furniture", 55, 15),
    ("desk", "furniture", 150, 35),
    ("bar_stool", "furniture", 48, 15),
    ("mattress", "furniture", 300, 60),
    ("storage_cabinet", "furniture", 130, 30),
    ("kids_bed", "furniture", 350, 60),
    ("sweet_potato_noodles", "food", 15, 4),
    ("hot_sour_noodles", "food", 8, 3),
    ("snail_rice_noodles", "food", 9, 3),
    ("millet", "food", 9, 4),
    ("peanuts", "food", 12, 4),
    ("garlic", "food", 6, 3),
    ("dried_jujube", "food", 14, 4),
    ("honey", "food", 28, 6),
    ("sesame_paste", "food", 16, 4),
    ("rice_crackers", "food", 7, 3),
    ("instant_hotpot", "food", 13, 4),
    ("chili_sauce", "food", 9, 3),
    ("black_tea", "food", 30, 4),
    ("walnuts", "food", 22, 4),
    ("buckwheat_noodles", "food", 10, 3),
    ("dried_mushrooms", "food", 18, 4),
    ("spicy_strips", "food", 5, 3),
    ("table_lamp", "lamps", 45, 10),
    ("ceiling_lamp", "lamps", 120, 18),
    ("floor_lamp", "lamps", 90, 20),
    ("led_strip", "lamps", 18, 5),
    ("chandelier", "lamps", 300, 40),
    ("wall_sconce", "lamps", 40, 10),
    ("night_light", "lamps", 8, 4),
    ("desk_lamp", "lamps", 35, 8),
    ("solar_garden_light", "lamps", 25, 8),
    ("smart_bulb", "lamps", 14, 4),
    ("track_light", "lamps", 55, 10),
    ("floodlight", "lamps", 60, 12),
    ("crystal_pendant", "lamps", 220, 30),
    ("mirror_light", "lamps", 70, 12),
    ("led_panel", "lamps", 45, 10),
    ("fan_light", "lamps", 260, 35),
    ("kids_lamp", "lamps", 30, 8),
)
FAMILY_TOWNS = {
    "furniture": ("Suining, Jiangsu", "Suining Furniture"),
    "food": ("Lankao, Henan", "Lankao Foods"),
    "lamps": ("Zhongshan, Guangdong", "Zhongshan Lighting"),
}
FAMILIES = tuple(FAMILY_TOWNS)

# Orders by hour of day (evening peak), normalised below.
_HOURLY = np.array(
    [2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 5, 5, 5, 6, 6, 7, 8, 9, 9, 7, 4], dtype=float
)
HOURLY_PROFILE = _HOURLY / _HOURLY.sum()

# Refund-only claims: 5-10 % of orders, about a quarter without valid evidence.
REFUND_RATE_RANGE = (0.05, 0.10)
REFUND_ONLY_SHARE = 0.80
REFUND_ONLY_NO_EVIDENCE = 0.25
RETURN_NO_EVIDENCE = 0.10
REFUND_REASONS = (
    "not as described",
    "quality problem",
    "arrived damaged",
    "missing item",
    "late delivery",
    "no longer needed",
)
# How merchants answer a claim: within hours, after the 36 h window, or never.
RESPONSE_MIX = {
    "small": (0.65, 0.15, 0.20),
    "medium": (0.60, 0.20, 0.20),
    "large": (0.50, 0.25, 0.25),
}
APPEAL_PROPENSITY = {"small": 0.15, "medium": 0.30, "large": 0.60}

SHIPPED_SHARE = 0.96
AUTO_FOLLOW_AT_START = 0.35
AUTO_FOLLOW_LEAVE = 0.08
COMPETITOR_OBS_PER_WEEK = 3.0
PROMO_SIGNUP_SHARE = 0.30
SPECIAL_CHANNEL_CUT = 0.15
"""Share of listings with a promotion sign-up price whose merchant cuts to 60-70 % of it to get
into the special channel (below cost at a 20-30 % margin)."""
TODAY_PICKS_IMPRESSIONS = 1_000_000

_TYPE_ORDER = {name: rank for rank, name in enumerate(EVENT_TYPES)}


# -- the world --------------------------------------------------------------------------------


@dataclass
class _Listing:
    listing_id: str
    merchant: int
    group: str
    unit_cost: float
    price: float
    quality: float
    shipping: float
    promo_signup_price: float | None
    # price history (sorted by time) for orders and rankings
    times: list[int] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)
    # pending changes: (time, order, {field: value})
    changes: list[tuple[int, int, dict[str, float]]] = field(default_factory=list)
    enrolled_at: int | None = None  # listing-level auto-follow enrolment

    def price_at(self, t: int) -> float:
        return self.prices[bisect_right(self.times, t) - 1]

    def set_price(self, t: int, price: float) -> None:
        i = bisect_right(self.times, t)
        self.times.insert(i, t)
        self.prices.insert(i, price)
        self.changes.append((t, len(self.changes), {"price": price}))


@dataclass
class _Merchant:
    index: int
    merchant_id: str
    tier: str
    family: str
    order_rate: float
    refund_rate: float
    listings: list[_Listing]
    enrolled: bool = False
    left_at: int | None = None

    def auto_follow_on(self, listing: _Listing, t: int) -> bool:
        store = self.enrolled and (self.left_at is None or t < self.left_at)
        return store or (listing.enrolled_at is not None and t >= listing.enrolled_at)


class _Stream:
    """Collects raw events; those at or after the end of the window are dropped."""

    def __init__(self, end: int) -> None:
        self.end = end
        self.items: list[tuple[int, int, int, str, str, dict[str, Any]]] = []

    def emit(self, t: int, kind: str, merchant_id: str, payload: dict[str, Any]) -> None:
        if 0 <= t < self.end:
            self.items.append((t, _TYPE_ORDER[kind], len(self.items), kind, merchant_id, payload))


def _round_price(x: float) -> float:
    """Prices as shops set them: whole yuan above 100, dimes above 10, fen below."""
    if x >= 100:
        return float(max(1, round(x)))
    if x >= 10:
        return round(x, 1)
    return max(0.01, round(x, 2))


def _charm_price(x: float) -> float:
    """The first list price: 19.9 rather than 19.4, 599 rather than 594."""
    if x >= 100:
        return float(math.floor(x / 10) * 10 + 9)
    if x >= 1:
        return round(math.floor(x) + 0.9, 1)
    return round(x, 2)


def _build_world(rng: np.random.Generator, merchants: int) -> list[_Merchant]:
    tiers = rng.choice(len(TIERS), size=merchants, p=TIER_SHARES)
    families = rng.integers(0, len(FAMILIES), size=merchants)
    spread = rng.lognormal(-(ORDER_RATE_SPREAD**2) / 2, ORDER_RATE_SPREAD, size=merchants)
    refund_rates = rng.uniform(*REFUND_RATE_RANGE, size=merchants)
    n_listings = rng.integers(1, 4, size=merchants)
    groups_by_family = {fam: [g for g in PRODUCT_GROUPS if g[1] == fam] for fam in FAMILIES}
    world: list[_Merchant] = []
    for i in range(merchants):
        tier = TIERS[tiers[i]]
        family = FAMILIES[families[i]]
        mid = f"m{i:05d}"
        merchant = _Merchant(
            index=i,
            merchant_id=mid,
            tier=tier,
            family=family,
            order_rate=ORDERS_PER_DAY[tier] * float(spread[i]),
            refund_rate=float(refund_rates[i]),
            listings=[],
        )
        options = groups_by_family[family]
        picks = rng.choice(len(options), size=int(n_listings[i]), replace=False)
        for k, pick in enumerate(picks):
            group, _, base_cost, base_ship = options[int(pick)]
            cost = round(base_cost * float(rng.lognormal(0.0, 0.15)), 2)
            margin = float(rng.uniform(0.20, 0.30))
            price = _charm_price(cost / (1 - margin))
            promo = None
            if rng.random() < PROMO_SIGNUP_SHARE:
                promo = _round_price(price * float(rng.uniform(0.95, 1.05)))
            merchant.listings.append(
                _Listing(
                    listing_id=f"{mid}-l{k}",
                    merchant=i,
                    group=group,
                    unit_cost=cost,
                    price=price,
                    quality=round(float(rng.beta(8, 2)), 2),
                    shipping=base_ship,
                    promo_signup_price=promo,
                    times=[0],
                    prices=[price],
                )
            )
        world.append(merchant)
    return world


def _script_field_cases(world: list[_Merchant]) -> set[str]:
    """Put the research's two documented cases into the world, unchanged, for rules to find.

    The sofa: listed at 599 with a unit cost of 560; a competitor drops to 558; after 12 hours
    of prompts the merchant follows to 549, below cost. The noodles: 19.9, a competitor at 18.9,
    pushed to 17.9; later the maker cuts starch from 80 % to 60 % (quality and cost fall).
    Returns the scripted listing ids so the random price war leaves them alone.
    """
    scripted: set[str] = set()
    cases = (
        ("small", "furniture", "sofa", 560.0, 599.0, 80.0),
        ("medium", "food", "sweet_potato_noodles", 15.2, 19.9, 4.0),
    )
    for merchant, (tier, family, group, cost, price, ship) in zip(world, cases, strict=False):
        merchant.tier, merchant.family = tier, family
        merchant.order_rate = ORDERS_PER_DAY[tier]
        merchant.enrolled = True
        merchant.listings = merchant.listings[:1]  # one product, as in the research
        listing = merchant.listings[0]
        listing.group, listing.unit_cost, listing.price = group, cost, price
        listing.quality, listing.shipping, listing.promo_signup_price = 0.8, ship, None
        listing.times, listing.prices = [0], [price]
        scripted.add(listing.listing_id)
    return scripted


# -- processes --------------------------------------------------------------------------------


def _register(stream: _Stream, rng: np.random.Generator, world: list[_Merchant]) -> None:
    for m in world:
        town, brand = FAMILY_TOWNS[m.family]
        payload: dict[str, Any] = {"size_tier": m.tier, "name": f"{brand} {m.index}"}
        if rng.random() < 0.9:
            payload["region"] = town
        stream.emit(0, "merchant_registered", m.merchant_id, payload)


def _auto_follow(
    stream: _Stream, rng: np.random.Generator, world: list[_Merchant], end: int
) -> None:
    """Enrolment is one tap with no code; leaving usually takes a code and a hidden menu."""
    for m in world:
        if not m.enrolled:
            m.enrolled = rng.random() < AUTO_FOLLOW_AT_START
        if not m.enrolled:
            continue
        via = "popup" if rng.random() < 0.6 else "settings"
        stream.emit(
            0,
            "auto_follow_toggled",
            m.merchant_id,
            {"enrolled": True, "steps": 1, "verified": False, "via": via},
        )
        if m.index >= 2 and rng.random() < AUTO_FOLLOW_LEAVE:
            m.left_at = int(rng.integers(DAY // 2, max(DAY, end)))
            if rng.random() < 0.75:
                steps, verified = int(rng.integers(4, 8)), True
            else:
                steps, verified = int(rng.integers(1, 4)), False
            stream.emit(
                m.left_at,
                "auto_follow_toggled",
                m.merchant_id,
                {"enrolled": False, "steps": steps, "verified": verified, "via": "settings"},
            )


def _special_channel_cuts(rng: np.random.Generator, world: list[_Merchant], end: int) -> None:
    """Some merchants cut to 60-70 % of the sign-up price to enter the '9.9' channel."""
    for m in world:
        for listing in m.listings:
            promo = listing.promo_signup_price
            if promo is not None and rng.random() < SPECIAL_CHANNEL_CUT:
                t = int(rng.integers(HOUR, end))
                listing.set_price(t, _round_price(promo * float(rng.uniform(0.60, 0.70))))


def _follow_price(rng: np.random.Generator, competitor: float) -> float:
    if rng.random() < 0.4:
        return competitor
    lower = _round_price(competitor * float(rng.uniform(0.95, 0.99)))
    return lower if 0 < lower < competitor else competitor


def _follow(
    rng: np.random.Generator, listing: _Listing, t: int, price: float, cuts: set[str]
) -> None:
    """Apply a followed price; a price near or under cost often leads to a quality cut later."""
    listing.set_price(t, price)
    if price < listing.unit_cost * 1.05 and listing.listing_id not in cuts and rng.random() < 0.4:
        cuts.add(listing.listing_id)
        when = t + int(rng.uniform(1, 4) * DAY)
        listing.changes.append(
            (
                when,
                len(listing.changes),
                {
                    "quality": round(max(0.05, listing.quality - float(rng.uniform(0.1, 0.25))), 2),
                    "unit_cost": round(listing.unit_cost * float(rng.uniform(0.80, 0.90)), 2),
                },
            )
        )


def _price_war(
    stream: _Stream,
    rng: np.random.Generator,
    world: list[_Merchant],
    end: int,
    scripted: set[str],
) -> None:
    """Competitors undercut each listing a few times a week; enrolled merchants are prompted."""
    cuts: set[str] = set()
    rate = COMPETITOR_OBS_PER_WEEK * end / (WEEK_DAYS * DAY)
    for m in world:
        for listing in m.listings:
            if listing.listing_id in scripted:
                continue
            n = int(rng.poisson(rate))
            for t in sorted(int(x) for x in rng.integers(0, end, size=n)):
                current = listing.price_at(t)
                competitor = _round_price(current * float(rng.uniform(0.90, 0.985)))
                if not 0 < competitor < current or competitor < listing.unit_cost * 0.6:
                    continue
                payload: dict[str, Any] = {
                    "listing_id": listing.listing_id,
                    "competitor_price": competitor,
                }
                if rng.random() < 0.8:
                    payload["competitor_id"] = f"c{int(rng.integers(1, 500)):03d}"
                stream.emit(t, "competitor_price_observed", m.merchant_id, payload)
                _react(stream, rng, m, listing, t, competitor, cuts)


def _react(
    stream: _Stream,
    rng: np.random.Generator,
    m: _Merchant,
    listing: _Listing,
    t: int,
    competitor: float,
    cuts: set[str],
) -> None:
    """A merchant's answer to a lower price: follow, dismiss (it returns in 72 h) or ignore."""
    lid = {"listing_id": listing.listing_id}
    if m.auto_follow_on(listing, t):
        u = rng.random()
        if u < 0.45:
            for _ in range(int(rng.integers(0, 3))):
                stream.emit(
                    t + int(rng.integers(60, 6 * HOUR)), "prompt_dismissed", m.merchant_id, lid
                )
            when = t + int(rng.uniform(0.5, 18) * HOUR)
            _follow(rng, listing, when, _follow_price(rng, competitor), cuts)
        elif u < 0.75:
            stream.emit(t + int(rng.integers(60, 1800)), "prompt_dismissed", m.merchant_id, lid)
            if rng.random() < 0.3:  # the prompt is back after 72 hours and wins this time
                when = t + 72 * HOUR + int(rng.uniform(0.5, 6) * HOUR)
                _follow(rng, listing, when, _follow_price(rng, competitor), cuts)
        return
    u = rng.random()
    if u < 0.12:
        when = t + int(rng.uniform(2, 48) * HOUR)
        _follow(rng, listing, when, _follow_price(rng, competitor), cuts)
    elif u < 0.17 and listing.enrolled_at is None:
        # "enrolled by closing a pop-up": one tap on the follow-price prompt, no code
        listing.enrolled_at = t + int(rng.integers(60, 1800))
        stream.emit(
            listing.enrolled_at,
            "auto_follow_toggled",
            m.merchant_id,
            {
                "listing_id": listing.listing_id,
                "enrolled": True,
                "steps": 1,
                "verified": False,
                "via": "popup",
            },
        )


def _scripted_price_war(stream: _Stream, world: list[_Merchant], scripted: set[str]) -> None:
    cases = {
        "sofa": (10 * HOUR, 558.0, 12 * HOUR, 549.0),
        "sweet_potato_noodles": (9 * HOUR, 18.9, 6 * HOUR, 17.9),
    }
    for m in world[:2]:
        listing = m.listings[0]
        if listing.listing_id not in scripted:
            continue
        seen, competitor, delay, followed = cases[listing.group]
        stream.emit(
            seen,
            "competitor_price_observed",
            m.merchant_id,
            {
                "listing_id": listing.listing_id,
                "competitor_price": competitor,
                "competitor_id": "c001",
            },
        )
        listing.set_price(seen + delay, followed)
        if listing.group == "sweet_potato_noodles":  # 80 % -> 60 % starch, cheaper to make
            listing.changes.append(
                (2 * DAY + 10 * HOUR, len(listing.changes), {"quality": 0.6, "unit_cost": 13.1})
            )


def _listing_updates(stream: _Stream, world: list[_Merchant]) -> None:
    """Emit each listing's full state at start and after every change, in time order."""
    for m in world:
        for listing in m.listings:
            state: dict[str, Any] = {
                "listing_id": listing.listing_id,
                "product_group": listing.group,
                "price": listing.price,
                "unit_cost": listing.unit_cost,
                "quality": listing.quality,
            }
            if listing.promo_signup_price is not None:
                state["promo_signup_price"] = listing.promo_signup_price
            stream.emit(0, "listing_updated", m.merchant_id, dict(state))
            for t, _, change in sorted(listing.changes, key=lambda c: (c[0], c[1])):
                state.update(change)
                stream.emit(t, "listing_updated", m.merchant_id, dict(state))


def _impressions(
    stream: _Stream, rng: np.random.Generator, world: list[_Merchant], days: int
) -> None:
    """Daily exposure by price rank inside each product group; quality plays no part."""
    by_group: dict[str, list[_Listing]] = {}
    for m in world:
        for listing in m.listings:
            by_group.setdefault(listing.group, []).append(listing)
    mids = [m.merchant_id for m in world]
    for day in range(days):
        t = day * DAY + DAY - 60
        for group in sorted(by_group):
            listings = by_group[group]
            ranked = sorted(listings, key=lambda x: (x.price_at(t), x.listing_id))
            served = rng.poisson(30_000.0 * np.arange(1, len(ranked) + 1, dtype=float) ** -1.3)
            for rank, (listing, n) in enumerate(zip(ranked, served, strict=True), start=1):
                stream.emit(
                    t,
                    "impressions_served",
                    mids[listing.merchant],
                    {
                        "listing_id": listing.listing_id,
                        "product_group": group,
                        "rank": rank,
                        "impressions": int(n),
                        "channel": "search",
                    },
                )
            picks = [
                x
                for x in ranked
                if x.promo_signup_price is not None and x.price_at(t) <= 0.7 * x.promo_signup_price
            ]
            for rank, listing in enumerate(picks, start=1):
                share = float(rng.uniform(0.9, 1.1)) if rank == 1 else 0.02 / rank
                stream.emit(
                    t,
                    "impressions_served",
                    mids[listing.merchant],
                    {
                        "listing_id": listing.listing_id,
                        "product_group": group,
                        "rank": rank,
                        "impressions": int(TODAY_PICKS_IMPRESSIONS * share),
                        "channel": "today_picks",
                    },
                )


@dataclass
class _Counters:
    orders: dict[int, int] = field(default_factory=dict)
    appeals: dict[int, int] = field(default_factory=dict)

    def next(self, table: dict[int, int], merchant: int) -> int:
        n = table.get(merchant, 0)
        table[merchant] = n + 1
        return n


def _orders(
    stream: _Stream,
    rng: np.random.Generator,
    counters: _Counters,
    world: list[_Merchant],
    days: int,
) -> None:
    """Orders, shipping and the refund-only dispute chain that follows some of them."""
    rates = np.array([m.order_rate for m in world])
    for day in range(days):
        counts = rng.poisson(rates)
        total = int(counts.sum())
        owner = np.repeat(np.arange(len(world)), counts)
        hours = rng.choice(24, size=total, p=HOURLY_PROFILE)
        times = day * DAY + hours * HOUR + rng.integers(0, HOUR, size=total)
        pick = rng.random(total)
        quantity = 1 + rng.poisson(0.3, size=total)
        ship_jitter = rng.uniform(0.8, 1.2, size=total)
        shipped = rng.random(total) < SHIPPED_SHARE
        ship_delay = np.minimum(rng.lognormal(math.log(4 * HOUR), 0.8, size=total), 72 * HOUR)
        refund_draw = rng.random(total)
        for i in range(total):
            m = world[int(owner[i])]
            listing = m.listings[int(pick[i] * len(m.listings))]
            t = int(times[i])
            order_id = f"{m.merchant_id}-o{counters.next(counters.orders, m.index)}"
            q = int(quantity[i])
            amount = round(listing.price_at(t) * q, 2)
            stream.emit(
                t,
                "order_placed",
                m.merchant_id,
                {
                    "order_id": order_id,
                    "listing_id": listing.listing_id,
                    "quantity": q,
                    "amount": amount,
                    "shipping_cost": round(listing.shipping * float(ship_jitter[i]), 2),
                },
            )
            ship_t = t + int(ship_delay[i]) if shipped[i] else None
            if ship_t is not None:
                stream.emit(ship_t, "order_shipped", m.merchant_id, {"order_id": order_id})
            if refund_draw[i] < m.refund_rate:
                _refund(stream, rng, counters, m, order_id, amount, t, ship_t)


def _refund(
    stream: _Stream,
    rng: np.random.Generator,
    counters: _Counters,
    m: _Merchant,
    order_id: str,
    amount: float,
    placed: int,
    shipped: int | None,
) -> None:
    refund_only = rng.random() < REFUND_ONLY_SHARE
    no_evidence = REFUND_ONLY_NO_EVIDENCE if refund_only else RETURN_NO_EVIDENCE
    evidence = bool(rng.random() >= no_evidence)
    if shipped is not None:
        t = shipped + int(rng.uniform(1, 36) * HOUR)
    else:
        t = placed + int(rng.uniform(0.5, 12) * HOUR)
    payload: dict[str, Any] = {
        "order_id": order_id,
        "kind": "refund_only" if refund_only else "return_and_refund",
        "evidence_valid": evidence,
    }
    if rng.random() < 0.25:
        payload["amount"] = round(amount * float(rng.uniform(0.3, 0.9)), 2)
    if rng.random() < 0.7:
        payload["reason"] = REFUND_REASONS[int(rng.integers(len(REFUND_REASONS)))]
    stream.emit(t, "refund_requested", m.merchant_id, payload)

    prompt, late, _never = RESPONSE_MIX[m.tier]
    u = rng.random()
    rejected = False
    answered: int | None = None
    if u < prompt + late:
        hours = rng.uniform(0.25, 12) if u < prompt else rng.uniform(37, 96)
        answered = t + int(hours * HOUR)
        accept = rng.random() < (0.85 if evidence else 0.25)
        rejected = not accept
        response: dict[str, Any] = {
            "order_id": order_id,
            "decision": "accept" if accept else "reject",
        }
        if rejected and rng.random() < 0.6:
            response["reason"] = (
                "claim not supported by evidence" if not evidence else "item as described"
            )
        stream.emit(answered, "merchant_responded", m.merchant_id, response)

    if rng.random() < (0.45 if rejected else 0.12):
        base = answered if rejected and answered is not None else t
        when = base + int(rng.uniform(0.5, 30) * HOUR)
        stream.emit(
            when,
            "platform_intervened",
            m.merchant_id,
            {"order_id": order_id, "requested_by": "buyer"},
        )
    elif rng.random() < 0.03:
        when = t + int(rng.uniform(2, 48) * HOUR)
        stream.emit(
            when,
            "platform_intervened",
            m.merchant_id,
            {"order_id": order_id, "requested_by": "merchant"},
        )

    propensity = APPEAL_PROPENSITY[m.tier] * (1.6 if not evidence else 1.0)
    if rng.random() < min(0.95, propensity):
        _appeal(stream, rng, counters, m, t + int(rng.uniform(2, 48) * HOUR), order_id)


def _appeal(
    stream: _Stream,
    rng: np.random.Generator,
    counters: _Counters,
    m: _Merchant,
    t: int,
    order_id: str | None,
) -> None:
    """Automated review rejects most appeals; a human review, when granted, is a coin toss."""
    appeal_id = f"{m.merchant_id}-a{counters.next(counters.appeals, m.index)}"
    human_asked = bool(rng.random() < 0.2)
    payload: dict[str, Any] = {"appeal_id": appeal_id, "human_review_requested": human_asked}
    if order_id is not None:
        payload["order_id"] = order_id
    stream.emit(t, "appeal_filed", m.merchant_id, payload)
    human = rng.random() < (0.6 if human_asked else 0.05)
    rejected = rng.random() < (0.5 if human else 0.85)
    stream.emit(
        t + int(rng.uniform(2, 72) * HOUR),
        "appeal_decided",
        m.merchant_id,
        {
            "appeal_id": appeal_id,
            "outcome": "rejected" if rejected else "upheld",
            "reviewer": "human" if human else "automated",
        },
    )


def _other_appeals(
    stream: _Stream,
    rng: np.random.Generator,
    counters: _Counters,
    world: list[_Merchant],
    days: int,
) -> None:
    """Appeals not tied to an order (a listing taken down, a penalty): a few a month."""
    for m in world:
        for _ in range(int(rng.poisson(0.03 * days))):
            _appeal(stream, rng, counters, m, int(rng.integers(0, days * DAY)), None)


def _ad_clicks(
    stream: _Stream, rng: np.random.Generator, world: list[_Merchant], days: int
) -> None:
    """Paid clicks, charged daily to most stores; busier stores buy more traffic."""
    per_day = {"small": 8.0, "medium": 30.0, "large": 100.0}
    advertisers = [m for m in world if rng.random() < 0.8]
    for day in range(days):
        for m in advertisers:
            clicks = int(rng.poisson(per_day[m.tier]))
            if clicks < 1:
                continue
            payload: dict[str, Any] = {"clicks": clicks}
            if rng.random() < 0.7:
                payload["listing_id"] = m.listings[int(rng.integers(len(m.listings)))].listing_id
            stream.emit(
                day * DAY + int(rng.integers(0, DAY)), "ad_click_charged", m.merchant_id, payload
            )


# -- public API -------------------------------------------------------------------------------


def generate_events(
    merchants: int,
    days: int,
    seed: int,
    start: datetime = DEFAULT_START,
) -> Iterator[dict[str, Any]]:
    """Yield event dicts (valid per ``service.events``) sorted by ``event_time``.

    The whole window is simulated before the first event is yielded, because consequences
    (a late answer, an appeal) are drawn when their cause is and may land days later.
    """
    if merchants < 0 or days < 0:
        raise ValueError("merchants and days must not be negative")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must carry a timezone: event times are RFC 3339 with an offset")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    end = days * DAY
    stream = _Stream(end)

    world = _build_world(rng, merchants)
    scripted = _script_field_cases(world) if days > 0 else set()
    _register(stream, rng, world)
    _auto_follow(stream, rng, world, end)
    _special_channel_cuts(rng, world, end)
    _scripted_price_war(stream, world, scripted)
    _price_war(stream, rng, world, end, scripted)
    _listing_updates(stream, world)
    _impressions(stream, rng, world, days)
    counters = _Counters()
    _orders(stream, rng, counters, world, days)
    _other_appeals(stream, rng, counters, world, days)
    _ad_clicks(stream, rng, world, days)

    stream.items.sort()
    stamp_of = _stamper(start)
    for n, (t, _, _, kind, merchant_id, payload) in enumerate(stream.items, start=1):
        stamp = stamp_of(t)
        yield {
            "event_id": f"e{seed}-{n}",
            "type": kind,
            "merchant_id": merchant_id,
            "event_time": stamp,
            "payload": payload,
        }


def _stamper(start: datetime) -> Callable[[int], str]:
    """RFC 3339 text for ``start + t`` seconds, as ``datetime.isoformat`` would write it.

    Formatting an aware datetime costs about a microsecond, a quarter of the whole run, so a
    fixed offset (the common case) is formatted by hand; zones with daylight saving are not.
    """
    offset = start.utcoffset()
    if not isinstance(start.tzinfo, timezone) or start.microsecond or offset is None:
        # Add elapsed seconds in UTC: aware arithmetic in a zone is wall-clock arithmetic.
        utc, zone = start.astimezone(UTC), start.tzinfo
        return lambda t: (utc + timedelta(seconds=t)).astimezone(zone).isoformat()
    suffix = start.isoformat()[19:]
    first_day = start.date()
    base = start.hour * HOUR + start.minute * 60 + start.second
    days: dict[int, str] = {}

    def stamp(t: int) -> str:
        day, second = divmod(base + t, DAY)
        prefix = days.get(day)
        if prefix is None:
            prefix = days[day] = (first_day + timedelta(days=day)).isoformat()
        hour, second = divmod(second, HOUR)
        minute, second = divmod(second, 60)
        return f"{prefix}T{hour:02d}:{minute:02d}:{second:02d}{suffix}"

    return stamp


def write_jsonl(events: Iterable[dict[str, Any]], path: str | os.PathLike[str]) -> int:
    """Write one compact JSON object per line; returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            count += 1
    return count


def generate_to_file(path: str | os.PathLike[str], merchants: int, days: int, seed: int) -> int:
    """Generate a world and write it as JSON Lines; returns the number of events written."""
    return write_jsonl(generate_events(merchants, days, seed), path)
