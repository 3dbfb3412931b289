"""The names a rule may read: event fields by event type, and merchant, listing and order state.

This is the contract between the rule language and everything that evaluates it. The loader
type-checks every expression against it, the engine fills exactly these names, and the simulator
keeps arrays for them. Tests hold the event model and the state store to this list.
"""

from __future__ import annotations

from rules.expression import Type

N, S, B = Type.NUMBER, Type.STRING, Type.BOOL

#: Payload fields of each event type, plus `time` (epoch seconds) which every event has.
EVENT_FIELDS: dict[str, dict[str, Type]] = {
    "merchant_registered": {"size_tier": S, "name": S, "region": S},
    "listing_updated": {
        "listing_id": S, "product_group": S, "price": N, "unit_cost": N, "quality": N,
        "promo_signup_price": N,
    },
    "auto_follow_toggled": {"listing_id": S, "enrolled": B, "steps": N, "verified": B, "via": S},
    "competitor_price_observed": {"listing_id": S, "competitor_price": N, "competitor_id": S},
    "prompt_dismissed": {"listing_id": S},
    "impressions_served": {
        "listing_id": S, "product_group": S, "rank": N, "impressions": N, "channel": S,
    },
    "order_placed": {
        "order_id": S, "listing_id": S, "quantity": N, "amount": N, "shipping_cost": N,
    },
    "order_shipped": {"order_id": S},
    "refund_requested": {
        "order_id": S, "kind": S, "evidence_valid": B, "amount": N, "reason": S,
    },
    "merchant_responded": {"order_id": S, "decision": S, "reason": S},
    "platform_intervened": {"order_id": S, "requested_by": S},
    "appeal_filed": {"appeal_id": S, "order_id": S, "human_review_requested": B},
    "appeal_decided": {"appeal_id": S, "outcome": S, "reviewer": S},
    "ad_click_charged": {"listing_id": S, "clicks": N},
}

EVENT_TYPES: tuple[str, ...] = tuple(EVENT_FIELDS)

COMMON_EVENT_FIELDS: dict[str, Type] = {"time": N}

MERCHANT_FIELDS: dict[str, Type] = {
    "size_tier": S,
    "auto_follow_enrolled": B,
    "gmv": N,
    "appeals_filed_month": N,
    "appeals_filed_year": N,
    "appeals_failed_month": N,
    "appeals_failed_year": N,
    "appeals_refused_month": N,
    "appeal_blocked_until": N,
}

LISTING_FIELDS: dict[str, Type] = {
    "product_group": S,
    "price": N,
    "previous_price": N,
    "unit_cost": N,
    "quality": N,
    "promo_signup_price": N,
    "prompt_pending": B,
    "prompt_target": N,
    "prompt_silenced_until": N,
    "competitor_price": N,
    "ranking_score": N,
    "channel": S,
    "impressions": N,
}

ORDER_FIELDS: dict[str, Type] = {
    "listing_id": S,
    "amount": N,
    "quantity": N,
    "shipping_cost": N,
    "product_cost": N,
    "shipped": B,
    "refund_status": S,
    "refund_kind": S,
    "refund_amount": N,
    "evidence_valid": B,
    "merchant_decision": S,
    "intervened": B,
}

STATE_FIELDS: dict[str, dict[str, Type]] = {
    "merchant": MERCHANT_FIELDS,
    "listing": LISTING_FIELDS,
    "order": ORDER_FIELDS,
}

#: The key a deadline is correlated on, by the event field that carries it.
CORRELATION_KEYS = {"order": "order_id", "listing": "listing_id", "appeal": "appeal_id"}


def namespaces_for(event_type: str) -> set[str]:
    """State namespaces an event of this type can see.

    An event about an order sees the order and that order's listing; an event about a listing sees
    the listing; every event sees its merchant.
    """
    fields = EVENT_FIELDS[event_type]
    out = {"merchant"}
    if "listing_id" in fields:
        out.add("listing")
    if "order_id" in fields:
        out.update({"order", "listing"})
    return out


def symbols_for(event_types: list[str] | tuple[str, ...]) -> dict[str, Type]:
    """Names a rule listening to these event types may read: only what all of them provide."""
    if not event_types:
        return {}
    common_fields = set(EVENT_FIELDS[event_types[0]])
    spaces = namespaces_for(event_types[0])
    for t in event_types[1:]:
        common_fields &= set(EVENT_FIELDS[t])
        spaces &= namespaces_for(t)
    symbols: dict[str, Type] = {f"event.{k}": v for k, v in COMMON_EVENT_FIELDS.items()}
    first = EVENT_FIELDS[event_types[0]]
    for name in sorted(common_fields):
        symbols[f"event.{name}"] = first[name]
    for ns in sorted(spaces):
        for name, kind in STATE_FIELDS[ns].items():
            symbols[f"{ns}.{name}"] = kind
    return symbols
