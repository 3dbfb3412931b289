"""What an event says about the world, recorded before any rule looks at it.

Facts are not the platform's decisions: a listing's new price, an order being shipped, an appeal
having failed are true whatever the rulebook says. Rules then read the state *after* the facts of
their event, so "more than 3 failed appeals this month" counts the failure that just arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

State = dict[str, Any]
FactFn = Callable[[dict[str, Any], State, State | None, State | None], tuple[bool, bool, bool]]


def _merchant_registered(p: dict[str, Any], m: State, listing: State | None,
                         order: State | None) -> tuple[bool, bool, bool]:
    m["size_tier"] = p["size_tier"]
    return True, False, False


def _listing_updated(p: dict[str, Any], m: State, listing: State | None,
                     order: State | None) -> tuple[bool, bool, bool]:
    assert listing is not None
    listing["previous_price"] = listing.get("price")
    listing["price"] = p["price"]
    listing["unit_cost"] = p["unit_cost"]
    listing["quality"] = p["quality"]
    listing["product_group"] = p["product_group"]
    if p.get("promo_signup_price") is not None:
        listing["promo_signup_price"] = p["promo_signup_price"]
    return False, True, False


def _competitor_price(p: dict[str, Any], m: State, listing: State | None,
                      order: State | None) -> tuple[bool, bool, bool]:
    if listing is None:
        return False, False, False
    listing["competitor_price"] = p["competitor_price"]
    return False, True, False


def _impressions(p: dict[str, Any], m: State, listing: State | None,
                 order: State | None) -> tuple[bool, bool, bool]:
    if listing is None:
        return False, False, False
    listing["impressions"] = (listing.get("impressions") or 0) + p["impressions"]
    if listing.get("product_group") is None:
        listing["product_group"] = p["product_group"]
    return False, True, False


def _order_placed(p: dict[str, Any], m: State, listing: State | None,
                  order: State | None) -> tuple[bool, bool, bool]:
    assert order is not None
    order["listing_id"] = p["listing_id"]
    order["amount"] = p["amount"]
    order["quantity"] = p["quantity"]
    order["shipping_cost"] = p["shipping_cost"]
    unit_cost = listing.get("unit_cost") if listing else None
    order["product_cost"] = unit_cost * p["quantity"] if unit_cost is not None else None
    m["gmv"] = (m.get("gmv") or 0.0) + p["amount"]
    return True, False, True


def _order_shipped(p: dict[str, Any], m: State, listing: State | None,
                   order: State | None) -> tuple[bool, bool, bool]:
    if order is None:
        return False, False, False
    order["shipped"] = True
    return False, False, True


def _refund_requested(p: dict[str, Any], m: State, listing: State | None,
                      order: State | None) -> tuple[bool, bool, bool]:
    if order is None:
        return False, False, False
    order["refund_kind"] = p["kind"]
    order["evidence_valid"] = p["evidence_valid"]
    amount = p.get("amount")
    order["refund_amount"] = amount if amount is not None else order.get("amount")
    order["refund_status"] = "requested"
    order["merchant_decision"] = None
    order["intervened"] = False
    return False, False, True


def _merchant_responded(p: dict[str, Any], m: State, listing: State | None,
                        order: State | None) -> tuple[bool, bool, bool]:
    if order is None:
        return False, False, False
    order["merchant_decision"] = p["decision"]
    return False, False, True


def _platform_intervened(p: dict[str, Any], m: State, listing: State | None,
                         order: State | None) -> tuple[bool, bool, bool]:
    if order is None:
        return False, False, False
    order["intervened"] = True
    return False, False, True


def _appeal_decided(p: dict[str, Any], m: State, listing: State | None,
                    order: State | None) -> tuple[bool, bool, bool]:
    if p["outcome"] == "rejected":
        m["appeals_failed_month"] += 1
        m["appeals_failed_year"] += 1
    return True, False, False


FACTS: dict[str, FactFn] = {
    "merchant_registered": _merchant_registered,
    "listing_updated": _listing_updated,
    "competitor_price_observed": _competitor_price,
    "impressions_served": _impressions,
    "order_placed": _order_placed,
    "order_shipped": _order_shipped,
    "refund_requested": _refund_requested,
    "merchant_responded": _merchant_responded,
    "platform_intervened": _platform_intervened,
    "appeal_decided": _appeal_decided,
}

#: Event types whose facts create the listing or order they name.
CREATES = {"listing_updated": "listing", "impressions_served": "listing", "order_placed": "order"}
