"""The contract between the rule language, the event model, the state store and the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.effects import EFFECTS
from rules.expression import Type
from rules.vocabulary import EVENT_FIELDS, STATE_FIELDS, namespaces_for, symbols_for
from service.events import PAYLOAD_FIELDS
from service.state import new_listing, new_merchant, new_order

ROOT = Path(__file__).resolve().parents[2]
KIND = {Type.NUMBER: "number", Type.STRING: "string", Type.BOOL: "bool"}


def test_rules_see_exactly_the_fields_the_event_model_validates() -> None:
    assert set(EVENT_FIELDS) == set(PAYLOAD_FIELDS)
    for event_type, fields in EVENT_FIELDS.items():
        assert {k: KIND[v] for k, v in fields.items()} == PAYLOAD_FIELDS[event_type], event_type


def test_the_state_store_provides_every_state_name() -> None:
    for ns, make in (("merchant", lambda: new_merchant("m")),
                     ("listing", lambda: new_listing("m", "l")),
                     ("order", lambda: new_order("m", "o"))):
        assert set(STATE_FIELDS[ns]) <= set(make()), ns


def test_a_rule_on_several_event_types_sees_only_what_all_of_them_carry() -> None:
    both = symbols_for(["order_placed", "ad_click_charged"])
    assert "event.listing_id" in both and "event.amount" not in both
    assert "order.amount" not in both  # ad clicks carry no order
    assert namespaces_for("merchant_responded") == {"merchant", "order", "listing"}
    assert namespaces_for("appeal_decided") == {"merchant"}


SHIPPED_ORDER = {"order": {"shipped": True, "product_cost": 30.0, "shipping_cost": 4.0,
                           "amount": 39.9, "refund_amount": 39.9}}


@pytest.mark.parametrize("args, scope, expected", [
    ({"payer": "merchant", "recall_fee": 0.17}, SHIPPED_ORDER, 34.17),
    ({"payer": "merchant", "with_return": True}, SHIPPED_ORDER, 4.0),
    ({"payer": "platform", "recall_fee": 0.17}, SHIPPED_ORDER, 34.17),
    ({"payer": "merchant", "recall_fee": 0.17},
     {"order": {**SHIPPED_ORDER["order"], "shipped": False}}, 0.0),
])
def test_refund_burden(args, scope, expected) -> None:
    burdens, amounts = EFFECTS["grant_refund"].burden({"decided_by": "timeout", **args}, scope)
    assert sum(b.amount for b in burdens) == pytest.approx(expected)
    assert all(b.party == args["payer"] and b.category == "refund" for b in burdens)
    assert amounts["refund_amount"] == 39.9


def test_fees_and_below_cost_prices_are_charged_to_the_merchant() -> None:
    [b], _ = EFFECTS["charge_fee"].burden({"kind": "ad_click", "amount": 86.8}, {})
    assert (b.party, b.category, b.amount) == ("merchant", "ads", 86.8)
    [b], amounts = EFFECTS["set_price"].burden(
        {"price": 549.0}, {"listing": {"price": 599.0, "unit_cost": 560.0}})
    assert (b.category, b.amount) == ("below_cost", 11.0)
    assert amounts == {"price": 549.0, "price_cut": 50.0, "below_cost_by": 11.0}
    assert EFFECTS["set_price"].burden({"price": 570.0},
                                       {"listing": {"price": 599.0, "unit_cost": 560.0}})[0] == []


def test_every_effect_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, spec in EFFECTS.items():
        assert f"| `{name}` |" in readme, name
        for arg in spec.args:
            assert f"`{arg}`" in readme, (name, arg)
