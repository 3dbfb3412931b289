"""The closed vocabulary of effects a rule may have, and who bears the cost of each.

A platform's rulebook can only *do* the things listed here. Keeping the list closed is what makes
rulebooks auditable: every effect has documented arguments, a documented change to the merchant's
state, and a burden function that says which party (merchant, platform or buyer) pays how much.
The engine and the simulator both take their semantics from this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Party = Literal["merchant", "platform", "buyer"]
PARTIES: tuple[Party, ...] = ("merchant", "platform", "buyer")

#: Burden categories, the columns of the burden table.
CATEGORIES = ("refund", "commission", "ads", "fees", "below_cost")

ArgKind = Literal["number", "duration", "bool", "choice", "text"]


@dataclass(frozen=True)
class Arg:
    """One argument of an effect.

    `number`, `duration` and `bool` arguments are expressions (so they may read the event, the
    state and the parameters); `choice` and `text` arguments are literal words, because they name
    a kind of outcome rather than compute a value.
    """

    kind: ArgKind
    doc: str
    required: bool = True
    default: Any = None
    choices: tuple[str, ...] = ()


#: `round(v, 6)` of floats already rounded once. Answers round the same few hundred amounts
#: (fees, prices, refunds) again and again, and `round` with a precision costs several times a
#: dictionary look-up. Bounded: cleared when full.
_ROUNDED: dict[float, float] = {}
_ROUNDED_LIMIT = 8192


def round6(value: Any) -> Any:
    """Exactly `round(value, 6)`, from a bounded cache for plain floats.

    Only `float` itself is cached: `round` keeps an int an int, and a cached float would answer
    for an equal int. Zeros are never cached, as 0.0 and -0.0 are equal keys that round to
    different signs: a zero is returned as it is, which is what rounding it gives.
    """
    if value.__class__ is not float:
        return round(value, 6)
    found = _ROUNDED.get(value)
    if found is None:
        if not value:
            return value
        found = round(value, 6)
        if len(_ROUNDED) >= _ROUNDED_LIMIT:
            _ROUNDED.clear()
        _ROUNDED[value] = found
    return found


@dataclass(frozen=True)
class Burden:
    """A cost borne by one party, in yuan, under one category of the burden table."""

    party: Party
    category: str
    amount: float

    def to_dict(self) -> dict[str, Any]:
        return {"party": self.party, "category": self.category, "amount": round6(self.amount)}


Scope = Mapping[str, Mapping[str, Any]]
BurdenFn = Callable[[Mapping[str, Any], Scope], tuple[list[Burden], dict[str, Any]]]


def _no_burden(args: Mapping[str, Any], scope: Scope) -> tuple[list[Burden], dict[str, Any]]:
    return [], {}


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _get(scope: Scope, ns: str, name: str) -> Any:
    space = scope.get(ns)
    return space.get(name) if space else None


def _price_burden(args: Mapping[str, Any], scope: Scope) -> tuple[list[Burden], dict[str, Any]]:
    """A price set below unit cost costs the merchant the gap on every unit it then sells."""
    new_price = _num(args.get("price"))
    old_price = _get(scope, "listing", "price")
    cost = _get(scope, "listing", "unit_cost")
    below = max(0.0, _num(cost) - new_price) if cost is not None else 0.0
    amounts: dict[str, Any] = {"price": new_price}
    if old_price is not None:
        amounts["price_cut"] = round6(_num(old_price) - new_price)
    if cost is not None:
        amounts["below_cost_by"] = round6(below)
    burdens = [Burden("merchant", "below_cost", below)] if below > 0 else []
    return burdens, amounts


def _prompt_amounts(args: Mapping[str, Any], scope: Scope) -> tuple[list[Burden], dict[str, Any]]:
    target = _num(args.get("target"))
    amounts: dict[str, Any] = {"target": target}
    price = _get(scope, "listing", "price")
    cost = _get(scope, "listing", "unit_cost")
    if price is not None:
        amounts["gap"] = round6(_num(price) - target)
    if cost is not None:
        amounts["below_cost_by"] = round6(max(0.0, _num(cost) - target))
    return [], amounts


def _refund_burden(args: Mapping[str, Any], scope: Scope) -> tuple[list[Burden], dict[str, Any]]:
    """Refund-only loses the goods and the shipping; a return loses shipping only.

    The money the buyer paid goes back to the buyer in every case; what the payer loses beyond
    that transfer is the product it does not get back, the shipping it already paid, and any
    recall fee for trying to recover the parcel.
    """
    payer: Party = args.get("payer", "merchant")
    shipped = bool(_get(scope, "order", "shipped"))
    with_return = bool(args.get("with_return", False))
    product = _num(_get(scope, "order", "product_cost")) if shipped and not with_return else 0.0
    shipping = _num(_get(scope, "order", "shipping_cost")) if shipped else 0.0
    recall = _num(args.get("recall_fee", 0.0)) if shipped else 0.0
    refund_amount = _get(scope, "order", "refund_amount")
    if refund_amount is None:
        refund_amount = _get(scope, "order", "amount")
    total = product + shipping + recall
    amounts = {
        "refund_amount": _num(refund_amount),
        "product_cost": product,
        "shipping_cost": shipping,
        "recall_fee": recall,
        "decided_by": args.get("decided_by"),
    }
    return ([Burden(payer, "refund", total)] if total > 0 else []), amounts


_FEE_CATEGORIES = {"commission": "commission", "ad_click": "ads"}


def _fee_burden(args: Mapping[str, Any], scope: Scope) -> tuple[list[Burden], dict[str, Any]]:
    kind = args.get("kind", "commission")
    amount = _num(args.get("amount"))
    category = _FEE_CATEGORIES.get(kind, "fees")
    burdens = [Burden("merchant", category, amount)] if amount else []
    return burdens, {"kind": kind, "amount": amount}


def _flag_amounts(args: Mapping[str, Any], scope: Scope) -> tuple[list[Burden], dict[str, Any]]:
    out: dict[str, Any] = {"finding": args.get("finding")}
    if args.get("amount") is not None:
        out["amount"] = _num(args.get("amount"))
    return [], out


def _echo(*names: str) -> BurdenFn:
    def fn(args: Mapping[str, Any], scope: Scope) -> tuple[list[Burden], dict[str, Any]]:
        return [], {n: args.get(n) for n in names if args.get(n) is not None}

    return fn


@dataclass(frozen=True)
class EffectSpec:
    """What an effect takes, what it changes, and how its burden is computed."""

    name: str
    doc: str
    changes: str
    args: Mapping[str, Arg] = field(default_factory=dict)
    burden: BurdenFn = _no_burden


_REVIEW = ("automated", "human")
_DECIDERS = ("merchant", "timeout", "platform", "rule")

EFFECTS: dict[str, EffectSpec] = {
    spec.name: spec
    for spec in [
        EffectSpec(
            "prompt_price_change",
            "Pop up a prompt asking the merchant to change a listing's price to `target`.",
            "listing.prompt_pending = true, listing.prompt_target = target",
            {"target": Arg("number", "the price the platform asks for, in yuan")},
            _prompt_amounts,
        ),
        EffectSpec(
            "set_price",
            "Change a listing's price (for auto-follow: without the merchant acting).",
            "listing.previous_price = listing.price, listing.price = price; any prompt is closed",
            {
                "price": Arg("number", "the new price, in yuan"),
                "reason": Arg("text", "why the price changed", required=False, default=""),
            },
            _price_burden,
        ),
        EffectSpec(
            "silence_prompt",
            "Hide the price prompt for `duration`; it has not been declined for good.",
            "listing.prompt_pending = false, listing.prompt_silenced_until = event.time + duration",
            {"duration": Arg("duration", "how long the prompt stays hidden")},
            _echo("duration"),
        ),
        EffectSpec(
            "close_prompt",
            "Close the price prompt for good: the merchant's decision stands.",
            "listing.prompt_pending = false",
        ),
        EffectSpec(
            "enrol_auto_follow",
            "Enrol the merchant in automatic price following.",
            "merchant.auto_follow_enrolled = true",
            {
                "steps": Arg("number", "screens or taps the platform requires to join"),
                "verification": Arg("bool", "whether a verification code is required to join"),
            },
            _echo("steps", "verification"),
        ),
        EffectSpec(
            "unenrol_auto_follow",
            "Take the merchant out of automatic price following.",
            "merchant.auto_follow_enrolled = false",
            {
                "steps": Arg("number", "screens or taps the platform requires to leave"),
                "verification": Arg("bool", "whether a verification code is required to leave"),
            },
            _echo("steps", "verification"),
        ),
        EffectSpec(
            "refuse_unenrol",
            "Refuse a request to leave automatic price following.",
            "none: the merchant stays enrolled",
            {
                "steps": Arg("number", "screens or taps the platform requires to leave"),
                "verification": Arg("bool", "whether a verification code is required to leave"),
                "reason": Arg("text", "what the merchant was told", required=False, default=""),
            },
            _echo("steps", "verification", "reason"),
        ),
        EffectSpec(
            "assign_ranking_score",
            "Give a listing the score that orders it in search and recommendation.",
            "listing.ranking_score = score",
            {
                "score": Arg("number", "higher ranks first"),
                "basis": Arg("text", "what the score is made of, in words", required=False,
                             default=""),
            },
            _echo("score", "basis"),
        ),
        EffectSpec(
            "admit_to_channel",
            "Place a listing in a special channel (e.g. a 9.9-yuan channel) with its traffic.",
            "listing.channel = channel",
            {
                "channel": Arg("text", "the channel's name"),
                "impressions": Arg("number", "natural impressions a day the slot is worth"),
            },
            _echo("channel", "impressions"),
        ),
        EffectSpec(
            "exclude_from_channel",
            "Keep a listing out of a special channel, or move it to a lesser slot.",
            "listing.channel = '' (none)",
            {
                "channel": Arg("text", "the channel's name"),
                "reason": Arg("text", "why", required=False, default=""),
            },
            _echo("channel", "reason"),
        ),
        EffectSpec(
            "request_merchant_response",
            "Ask the merchant to accept or reject a refund claim within `window`.",
            "order.refund_status = 'awaiting_merchant'",
            {"window": Arg("duration", "time the merchant has to answer")},
            _echo("window"),
        ),
        EffectSpec(
            "grant_refund",
            "Grant a refund claim; the payer bears the loss (goods, shipping, recall fee).",
            "order.refund_status = 'granted'",
            {
                "decided_by": Arg("choice", "who or what decided", choices=_DECIDERS),
                "payer": Arg("choice", "who bears the loss", choices=("merchant", "platform"),
                             required=False, default="merchant"),
                "recall_fee": Arg("number", "fee per order to recall the parcel, in yuan",
                                  required=False, default=0.0),
                "with_return": Arg("bool", "whether the goods come back", required=False,
                                   default=False),
            },
            _refund_burden,
        ),
        EffectSpec(
            "reject_refund",
            "Reject a refund claim.",
            "order.refund_status = 'rejected'",
            {
                "decided_by": Arg("choice", "who or what decided", choices=_DECIDERS),
                "reason": Arg("text", "why", required=False, default=""),
            },
            _echo("decided_by", "reason"),
        ),
        EffectSpec(
            "platform_review",
            "Send a claim to review by the platform's staff instead of deciding it at once.",
            "order.refund_status = 'platform_review'",
            {"review": Arg("choice", "who reviews", choices=_REVIEW, required=False,
                           default="human")},
            _echo("review"),
        ),
        EffectSpec(
            "charge_fee",
            "Charge the merchant a fee: commission, an advertising click, or another fee.",
            "merchant burden accrues",
            {
                "kind": Arg("choice", "what the fee is for",
                            choices=("commission", "ad_click", "service", "penalty")),
                "amount": Arg("number", "the fee, in yuan"),
            },
            _fee_burden,
        ),
        EffectSpec(
            "accept_appeal",
            "Accept a merchant's appeal for review; it counts against the appeal quota.",
            "merchant.appeals_filed_month += 1, merchant.appeals_filed_year += 1",
            {"review": Arg("choice", "who reviews it", choices=_REVIEW)},
            _echo("review"),
        ),
        EffectSpec(
            "refuse_appeal",
            "Refuse to hear a merchant's appeal.",
            "merchant.appeals_refused_month += 1",
            {
                "reason": Arg("choice", "why", choices=("quota", "blocked", "out_of_window",
                                                       "other")),
            },
            _echo("reason"),
        ),
        EffectSpec(
            "block_appeals",
            "Stop the merchant from appealing until the end of the month or the year.",
            "merchant.appeal_blocked_until = start of the next month or year (rulebook time zone)",
            {"scope": Arg("choice", "how long", choices=("month", "year"))},
            _echo("scope"),
        ),
        EffectSpec(
            "flag",
            "Record a finding on the decision, e.g. a price followed below unit cost.",
            "none",
            {
                "finding": Arg("text", "a short snake_case name for what was seen"),
                "amount": Arg("number", "the figure that shows it, in yuan", required=False),
            },
            _flag_amounts,
        ),
    ]
}


def effect_names() -> list[str]:
    return sorted(EFFECTS)
