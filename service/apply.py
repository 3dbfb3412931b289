"""Carry out an effect on per-merchant state and account for who bore its cost.

The state change of each effect is the one documented in `rules.effects` (`EffectSpec.changes`).
Burdens and counters accumulate on the merchant record, so the burden table can be built from the
store alone, after a restart as well as after a replay.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

State = dict[str, Any]


@lru_cache(maxsize=65536)
def _period_starts(quarter: int, zone: str) -> tuple[str, str, float, float]:
    """Month key, year key, and epoch starts of the next month and year for a quarter hour."""
    t = dt.datetime.fromtimestamp(quarter * 900, ZoneInfo(zone))
    return _month_periods(t.year, t.month, t.fold, zone)


@lru_cache(maxsize=4096)
def _month_periods(year: int, month: int, fold: int, zone: str) \
        -> tuple[str, str, float, float]:
    """`_period_starts` of the quarter hours of a month (in `zone`'s local time): all that
    depends on the quarter is its local year and month (and `fold`, which the start of the month
    keeps, as `replace` would), so the rest is worked out once per month rather than once per
    quarter hour (a stream spans a few months and thousands of quarter hours)."""
    start = dt.datetime(year, month, 1, tzinfo=ZoneInfo(zone), fold=fold)
    next_month = (start + dt.timedelta(days=32)).replace(day=1)
    next_year = start.replace(year=year + 1, month=1)
    return f"{year:04d}-{month:02d}", f"{year:04d}", next_month.timestamp(), \
        next_year.timestamp()


def periods(time: float, zone: str) -> tuple[str, str, float, float]:
    # Every zone's offset is a whole number of quarter hours, so months and years start on a
    # quarter-hour boundary and the period of a time is that of its quarter hour.
    return _period_starts(int(time // 900), zone)


def roll_periods(merchant: State, time: float, zone: str) -> bool:
    """Reset monthly and yearly counters when event time enters a new month or year."""
    month, year, _, _ = _period_starts(int(time // 900), zone)  # periods(), one call less
    changed = False
    # Keys compare as text ("2024-07" < "2024-08"); a late event from an earlier month does not
    # bring the old month's counters back.
    if merchant.get("_month", "") < month:
        merchant["_month"] = month
        merchant["appeals_filed_month"] = 0
        merchant["appeals_failed_month"] = 0
        merchant["appeals_refused_month"] = 0
        changed = True
    if merchant.get("_year", "") < year:
        merchant["_year"] = year
        merchant["appeals_filed_year"] = 0
        merchant["appeals_failed_year"] = 0
        changed = True
    return changed


def count(merchant: State, key: str, by: float = 1) -> None:
    stats = merchant.setdefault("_stats", {})
    stats[key] = stats.get(key, 0) + by


def accrue(merchant: State, party: str, category: str, amount: float) -> None:
    burden = merchant.setdefault("_burden", {})
    key = f"{party}.{category}"
    burden[key] = burden.get(key, 0.0) + amount


def apply_effect(
    name: str, args: dict[str, Any], amounts: dict[str, Any], time: float, zone: str,
    merchant: State, listing: State | None, order: State | None,
) -> tuple[str | None, set[str]]:
    """Change state for one effect. Returns (reason it was skipped or None, kinds touched)."""
    touched: set[str] = set()
    if name in ("prompt_price_change", "set_price", "silence_prompt", "close_prompt",
                "assign_ranking_score", "admit_to_channel", "exclude_from_channel"):
        if listing is None:
            return "no listing is known for this event", touched
        touched.add("listing")
        if name == "prompt_price_change":
            listing["prompt_pending"] = True
            listing["prompt_target"] = args["target"]
            count(merchant, "prompts")
        elif name == "set_price":
            listing["previous_price"] = listing.get("price")
            listing["price"] = args["price"]
            listing["prompt_pending"] = False
            count(merchant, "forced_price_changes")
            if amounts.get("below_cost_by", 0) > 0:
                count(merchant, "below_cost_price_changes")
                count(merchant, "below_cost_yuan", amounts["below_cost_by"])
        elif name == "silence_prompt":
            listing["prompt_pending"] = False
            listing["prompt_silenced_until"] = time + float(args["duration"])
        elif name == "close_prompt":
            listing["prompt_pending"] = False
        elif name == "assign_ranking_score":
            listing["ranking_score"] = args["score"]
        elif name == "admit_to_channel":
            listing["channel"] = args["channel"]
        elif name == "exclude_from_channel":
            listing["channel"] = ""
        return None, touched
    if name in ("request_merchant_response", "grant_refund", "reject_refund", "platform_review"):
        if order is None:
            return "no order is known for this event", touched
        touched.add("order")
        status = {
            "request_merchant_response": "awaiting_merchant",
            "grant_refund": "granted",
            "reject_refund": "rejected",
            "platform_review": "platform_review",
        }[name]
        order["refund_status"] = status
        if name == "grant_refund":
            touched.add("merchant")
            count(merchant, f"refunds_granted_by_{args.get('decided_by')}")
        elif name == "reject_refund":
            touched.add("merchant")
            count(merchant, f"refunds_rejected_by_{args.get('decided_by')}")
        return None, touched
    touched.add("merchant")
    if name == "enrol_auto_follow":
        merchant["auto_follow_enrolled"] = True
    elif name == "unenrol_auto_follow":
        merchant["auto_follow_enrolled"] = False
    elif name == "refuse_unenrol":
        count(merchant, "unenrol_refused")
    elif name == "accept_appeal":
        merchant["appeals_filed_month"] += 1
        merchant["appeals_filed_year"] += 1
        count(merchant, "appeals_accepted")
    elif name == "refuse_appeal":
        merchant["appeals_refused_month"] += 1
        count(merchant, f"appeals_refused_{args.get('reason')}")
    elif name == "block_appeals":
        _, _, next_month, next_year = periods(time, zone)
        until = next_month if args["scope"] == "month" else next_year
        before = merchant.get("appeal_blocked_until") or 0.0
        if until > before:  # count a block when it starts or lengthens, not when repeated
            merchant["appeal_blocked_until"] = until
            count(merchant, f"appeal_blocks_{args['scope']}")
    elif name == "charge_fee":
        pass
    elif name == "flag":
        count(merchant, f"flag_{args.get('finding')}")
    return None, touched
