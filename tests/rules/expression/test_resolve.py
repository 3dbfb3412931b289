"""Name resolution and type checking, with the messages policy authors will see."""

from __future__ import annotations

import pytest

from rules.expression import Compare, ExpressionError, Name, Param, Type, params, parse, resolve

SYMBOLS = {
    "event.price": Type.NUMBER,
    "event.kind": Type.STRING,
    "event.flagged": Type.BOOL,
    "listing.unit_cost": Type.NUMBER,
    "listing.tags": Type.LIST,
    "merchant.verified": Type.BOOL,
}
PARAMETERS = {
    "commission_rate": 0.15,
    "allowed_kinds": ["sale", "refund"],
    "codes": [1, 2.5],
    "no_codes": [],
    "strict": True,
    "region": "eu",
    "digits": 2,
    "bad_mixed": [1, "a"],
    "bad_dict": {"a": 1},
}


def check(text: str) -> Type:
    return resolve(parse(text), SYMBOLS, PARAMETERS)[1]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("event.price", Type.NUMBER),
        ("event.price * (1 - commission_rate)", Type.NUMBER),
        ("event.kind", Type.STRING),
        ("region", Type.STRING),
        ("event.flagged", Type.BOOL),
        ("strict and not merchant.verified", Type.BOOL),
        ("event.price < listing.unit_cost", Type.BOOL),
        ("event.kind == 'sale'", Type.BOOL),
        ("event.kind != region", Type.BOOL),
        ("event.flagged == merchant.verified", Type.BOOL),
        ("event.kind in allowed_kinds", Type.BOOL),
        ("event.price not in codes", Type.BOOL),
        ("event.price in no_codes", Type.BOOL),
        ("event.kind in []", Type.BOOL),
        ("event.price in [1, 2h]", Type.BOOL),
        ("min(event.price, 3) + max(1, 2, 3) + abs(-1) + floor(1.5) + ceil(1.5)", Type.NUMBER),
        ("round(event.price) + round(event.price, 2) + round(event.price, digits)", Type.NUMBER),
        ("round(event.price, -1)", Type.NUMBER),
        ("event.kind if event.flagged else 'none'", Type.STRING),
        ("(1 if strict else 2) < 3", Type.BOOL),
        ("1 < event.price <= 2", Type.BOOL),
    ],
)
def test_types(text: str, kind: Type) -> None:
    assert check(text) is kind


def test_parameters_become_values() -> None:
    tree, kind = resolve(parse("event.kind in allowed_kinds"), SYMBOLS, PARAMETERS)
    assert kind is Type.BOOL
    assert isinstance(tree, Compare)
    assert tree.right == Param("allowed_kinds", ("sale", "refund"), start=14, end=27)
    assert params(tree) == {"allowed_kinds"}
    assert tree.left == Name(("event", "kind"), start=0, end=10)


def error_of(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        check(text)
    return caught.value


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("event.prise > 3", "unknown name 'event.prise'; did you mean 'event.price'?", 0),
        ("1 < listing.unit_kost", "unknown name 'listing.unit_kost'; did you mean "
         "'listing.unit_cost'?", 4),
        ("order.zzz", "unknown name 'order.zzz'", 0),
        ("comission_rate", "unknown name 'comission_rate'; did you mean 'commission_rate'?", 0),
        ("price > 3", "unknown name 'price'; did you mean 'event.price'?", 0),
        ("listing.tags", "'listing.tags' is a list field, which expressions cannot use", 0),
        ("bad_mixed", "parameter 'bad_mixed' has a value the expression language cannot use", 0),
        ("bad_dict", "parameter 'bad_dict' has a value the expression language cannot use", 0),
        ("event.price + event.kind", "'+' needs a number, but this is text", 14),
        ("-event.flagged", "the minus sign needs a number, but this is true/false", 1),
        ("not event.price", "'not' needs true/false, but this is a number", 4),
        ("event.price and strict", "'and' needs true/false, but this is a number", 0),
        ("event.kind < 'z'", "'<' compares numbers, but this is text", 0),
        ("event.flagged >= strict", "'>=' compares numbers, but this is true/false", 0),
        ("event.kind == 1", "'==' compares text with a number; both sides must be of the same "
         "kind", 14),
        ("event.flagged != 0", "'!=' compares true/false with a number", 17),
        ("event.price in allowed_kinds", "'in' checks a number against a list of text", 15),
        ("event.kind in [1, 2]", "'in' checks text against a list of numbers", 14),
        ("event.price in [1, 'a']", "a list must hold only numbers or only text", 19),
        ("event.flagged in [1]", "'in' checks a number or text against a list, but this is "
         "true/false", 0),
        ("event.price in commission_rate", "'in' needs a list like [1, 2] or a list parameter, "
         "but this is a number", 15),
        ("codes == 1", "a list can only follow 'in' or 'not in'", 0),
        ("1 if event.price else 2", "the condition after 'if' needs true/false, but this is a "
         "number", 5),
        ("1 if strict else 'x'", "both results of 'if ... else' must be of the same kind, but "
         "this is text and the first is a number", 17),
        ("min(event.price, event.kind)", "min() needs a number, but this is text", 17),
        ("round(event.price, 0.5)", "the second argument of round() must be a whole number", 19),
        ("round(event.price, event.price)", "the second argument of round() must be a whole "
         "number", 19),
    ],
)
def test_errors(text: str, message: str, offset: int) -> None:
    error = error_of(text)
    assert error.message.startswith(message), error.message
    assert error.offset == offset


def test_suggestion_is_omitted_when_nothing_is_close() -> None:
    assert error_of("event.zzzzzz").message == "unknown name 'event.zzzzzz'"
