"""The durable_rules target: condition shapes, hoisting, and the engine facts behind them."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from durable import engine

from rules.expression import (
    Binary,
    Call,
    Compare,
    Const,
    ExpressionError,
    IfExp,
    Name,
    Type,
    Unary,
    compile_condition,
    compile_derived,
    compile_python,
    parse,
    resolve,
)
from rules.expression.engine_limits import MAX_GROUPS, count_groups, fits

from .durable_harness import Engine, message

SYMBOLS = {
    "event.price": Type.NUMBER,
    "event.qty": Type.NUMBER,
    "event.kind": Type.STRING,
    "event.flagged": Type.BOOL,
    "listing.unit_cost": Type.NUMBER,
    "listing.b": Type.NUMBER,
    "merchant.verified": Type.BOOL,
}
PARAMETERS = {"rate": 0.25, "cap": 10, "kinds": ["refund_only", "late"], "strict": True}


def compiled(text: str, prefix: str = "h") -> tuple[dict[str, Any], dict[str, Any]]:
    tree, kind = resolve(parse(text), SYMBOLS, PARAMETERS)
    assert kind is Type.BOOL
    return compile_condition(tree, prefix)


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("event.price < 10", {"$lt": {"event.price": 10}}),
        ("event.price <= 10", {"$lte": {"event.price": 10}}),
        ("event.price > 1.5", {"$gt": {"event.price": 1.5}}),
        ("event.price >= 36h", {"$gte": {"event.price": 129600}}),
        ("event.kind == 'refund_only'", {"event.kind": "refund_only"}),
        ("event.kind != 'refund_only'", {"$neq": {"event.kind": "refund_only"}}),
        ("10 > event.price", {"$lt": {"event.price": 10}}),
        ("not (event.price < 10)", {"$gte": {"event.price": 10}}),
        ("not event.price == 10", {"$neq": {"event.price": 10}}),
        ("event.flagged", {"event.flagged": True}),
        ("not event.flagged", {"event.flagged": False}),
        ("event.flagged == strict", {"event.flagged": True}),
        ("event.price < cap * (1 - rate)", {"$lt": {"event.price": 7.5}}),
        ("event.price < -5%", {"$lt": {"event.price": -0.05}}),
        (
            "not (event.price < 1 or event.kind == 'x')",
            {"$and": [{"$gte": {"event.price": 1}}, {"$neq": {"event.kind": "x"}}]},
        ),
        (
            "not (event.price < 1 and not event.flagged)",
            {"$or": [{"$gte": {"event.price": 1}}, {"event.flagged": True}]},
        ),
        (
            "event.kind in kinds",
            {"$or": [{"event.kind": "refund_only"}, {"event.kind": "late"}]},
        ),
        (
            "event.qty not in [1, 2, 2]",
            {"$and": [{"$neq": {"event.qty": 1}}, {"$neq": {"event.qty": 2}}]},
        ),
        ("event.qty in [3]", {"event.qty": 3}),
        (
            "0 < event.price < 10",
            {"$and": [{"$gt": {"event.price": 0}}, {"$lt": {"event.price": 10}}]},
        ),
        (
            "event.price < listing.unit_cost",
            {
                "$and": [
                    {"$ex": {"listing.unit_cost": 1}},
                    {"$lt": {"event.price": {"$m": "listing.unit_cost"}}},
                ]
            },
        ),
        (
            "event.price < listing.unit_cost * (1 + rate) - event.qty",
            {
                "$and": [
                    {"$ex": {"listing.unit_cost": 1}},
                    {"$ex": {"event.qty": 1}},
                    {
                        "$lt": {
                            "event.price": {
                                "$sub": {
                                    "$l": {
                                        "$mul": {"$l": {"$m": "listing.unit_cost"}, "$r": 1.25}
                                    },
                                    "$r": {"$m": "event.qty"},
                                }
                            }
                        }
                    },
                ]
            },
        ),
        (
            "listing.unit_cost / 4 >= event.price",
            {
                "$and": [
                    {"$ex": {"listing.unit_cost": 1}},
                    {
                        "$lte": {
                            "event.price": {
                                "$div": {"$l": {"$m": "listing.unit_cost"}, "$r": 4.0}
                            }
                        }
                    },
                ]
            },
        ),
        ("event.price < event.price + 1", {"$lt": {"event.price": {"$add": {
            "$l": {"$m": "event.price"}, "$r": 1}}}}),
    ],
)
def test_native_conditions(text: str, condition: dict[str, Any]) -> None:
    assert compiled(text) == (condition, {})


def test_function_calls_are_hoisted() -> None:
    condition, hoisted = compiled("min(event.price, listing.unit_cost) > 2")
    assert condition == {"$gt": {"derived.h0": 2}}
    assert list(hoisted) == ["h0"]
    assert isinstance(hoisted["h0"], Call) and hoisted["h0"].func == "min"


def test_division_by_a_field_is_hoisted() -> None:
    condition, hoisted = compiled("event.price > listing.unit_cost / event.qty")
    assert condition == {
        "$and": [{"$ex": {"derived.h0": 1}}, {"$gt": {"event.price": {"$m": "derived.h0"}}}]
    }
    assert isinstance(hoisted["h0"], Binary) and hoisted["h0"].op == "/"


def test_neither_side_a_field_hoists_the_left_side() -> None:
    condition, hoisted = compiled("abs(event.price) < event.qty * 2")
    assert condition == {
        "$and": [
            {"$ex": {"event.qty": 1}},
            {"$lt": {"derived.h0": {"$mul": {"$l": {"$m": "event.qty"}, "$r": 2}}}},
        ]
    }
    assert list(hoisted) == ["h0"]


def test_constant_side_is_never_hoisted() -> None:
    condition, hoisted = compiled("round(1.25, 1) == -event.price")
    assert condition == {"derived.h0": 1.2}
    assert set(hoisted) == {"h0"}


def test_unary_minus_and_if_else_are_hoisted() -> None:
    condition, hoisted = compiled("event.price > -event.qty")
    assert condition == {
        "$and": [{"$ex": {"derived.h0": 1}}, {"$gt": {"event.price": {"$m": "derived.h0"}}}]
    }
    assert isinstance(hoisted["h0"], Unary) and hoisted["h0"].op == "neg"
    condition, hoisted = compiled("event.price > (1 if event.flagged else 2)")
    assert condition["$and"][1] == {"$gt": {"event.price": {"$m": "derived.h0"}}}
    assert isinstance(hoisted["h0"], IfExp)
    condition, hoisted = compiled("event.flagged if merchant.verified else false")
    assert condition == {"derived.h0": True}
    assert isinstance(hoisted["h0"], IfExp)


def test_boolean_comparison_of_expressions() -> None:
    condition, hoisted = compiled("event.flagged != (event.price < 3)")
    assert condition == {
        "$and": [{"$ex": {"derived.h0": 1}}, {"$neq": {"event.flagged": {"$m": "derived.h0"}}}]
    }
    assert isinstance(hoisted["h0"], Compare)


def test_same_sub_expression_is_hoisted_once() -> None:
    condition, hoisted = compiled("min(event.price, 3) > 1 or min(event.price, 3) < -1")
    assert condition == {"$or": [{"$gt": {"derived.h0": 1}}, {"$lt": {"derived.h0": -1}}]}
    assert list(hoisted) == ["h0"]


def test_prefix_names_the_hoists_deterministically() -> None:
    text = "abs(event.price) > 1 and floor(event.qty) < 2"
    condition, hoisted = compiled(text, prefix="rule7_")
    assert condition == {"$and": [{"$gt": {"derived.rule7_0": 1}}, {"$lt": {"derived.rule7_1": 2}}]}
    assert compiled(text, prefix="rule7_") == (condition, hoisted)
    with pytest.raises(ValueError):
        compiled(text, prefix="a.b")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 < 2", True),
        ("strict or event.flagged", True),
        ("event.price < 1 / 0", False),
        ("event.price in []", False),
        ("event.flagged and not strict", False),
    ],
)
def test_constant_conditions_are_hoisted_constants(text: str, value: bool) -> None:
    condition, hoisted = compiled(text)
    assert condition == {"derived.h0": True}
    assert hoisted["h0"] == Const(value, None, start=hoisted["h0"].start, end=hoisted["h0"].end)


@pytest.mark.parametrize(
    "text",
    ["event.price < 0.00001", "event.price > 1e16", "event.price < 99999999999999999999"],
)
def test_numbers_the_engine_cannot_read_hoist_the_comparison(text: str) -> None:
    condition, hoisted = compiled(text)
    assert condition == {"derived.h0": True}
    assert isinstance(hoisted["h0"], Compare)


def test_empty_not_in_list_means_known() -> None:
    condition, hoisted = compiled("event.kind not in []")
    assert condition == {"derived.h0": True}
    derive = compile_derived(hoisted)
    assert derive({"event": {"kind": "x"}}) == {"h0": True}
    assert derive({"event": {}}) == {}


def test_compile_derived_leaves_unknowns_out() -> None:
    _, hoisted = compiled("min(event.price, 3) > 1 and abs(event.qty) > 1")
    derive = compile_derived(hoisted)
    assert derive({"event": {"price": 5}}) == {"h0": 3}
    assert derive({"event": {"price": 5, "qty": -2}}) == {"h0": 3, "h1": 2}


def test_too_many_groups_are_hoisted_until_the_engine_accepts_them() -> None:
    text = " and ".join(f"(event.price < {i} or event.qty > {i})" for i in range(20))
    condition, hoisted = compiled(text)
    assert count_groups(condition) <= MAX_GROUPS
    assert fits(condition)
    assert hoisted
    check_agreement(text, [{"event": {"price": 1, "qty": 0}}, {"event": {"price": 30}}])


def test_too_wide_an_or_is_hoisted_until_it_fits() -> None:
    text = " or ".join(f"event.price < {i}" for i in range(62))
    condition, _ = compiled(text)
    assert fits(condition)
    check_agreement(text, [{"event": {"price": -1}}, {"event": {"price": 100}}, {}])


def check_agreement(text: str, scopes: list[dict[str, Any]]) -> None:
    tree, _ = resolve(parse(text), SYMBOLS, PARAMETERS)
    condition, hoisted = compile_condition(tree, "h")
    fire = Engine().rule(condition)
    evaluate, derive = compile_python(tree), compile_derived(hoisted)
    for scope in scopes:
        assert fire(message(scope, derive(scope))) is (evaluate(scope) is True)


def test_missing_fields_on_the_right_do_not_fire_on_a_busy_host() -> None:
    """After a host has seen events, a missing `$m` field can match anything; guards stop it."""
    host = Engine()
    warm = host.rule({"event.q": 1})
    for _ in range(3):
        warm({"event": {"q": 1}})
    for text in [
        "event.price < listing.b",
        "event.price != listing.b",
        "event.price == listing.b + 1",
        "event.price > event.qty * 2",
    ]:
        condition, _ = compiled(text)
        assert host.rule(condition)({"event": {"price": 0}}) is False, text


class TestEngineFacts:
    """What durable_rules 2.0.28 does, on which the compiler's choices rest."""

    @pytest.mark.parametrize("op", ["$lt", "$gt", "$neq"])
    def test_missing_left_field_never_matches(self, op: str) -> None:
        fire = Engine().rule({op: {"event.price": 10}})
        assert fire({"event": {}}) is False
        assert fire({}) is False
        assert Engine().rule({"event.price": 10})({"event": {}}) is False

    def test_numbers_compare_across_int_and_float(self) -> None:
        assert Engine().rule({"event.price": 10})({"event": {"price": 10.0}}) is True
        assert Engine().rule({"$lt": {"event.price": 2}})({"event": {"price": 1.5}}) is True
        assert Engine().rule({"event.flag": True})({"event": {"flag": 1}}) is True  # like Python

    def test_integer_division_of_integers(self) -> None:
        def fires(divisor: float) -> bool:
            condition = {"$lt": {"event.a": {"$div": {"$l": {"$m": "event.b"}, "$r": divisor}}}}
            return Engine().rule(condition)({"event": {"a": 1.2, "b": 3}})

        assert fires(2) is False  # 3 / 2 == 1 in C
        assert fires(2.0) is True  # 3 / 2.0 == 1.5

    def test_arithmetic_without_a_field_never_matches(self) -> None:
        condition = {"$lt": {"event.a": {"$add": {"$l": 1, "$r": 2}}}}
        assert Engine().rule(condition)({"event": {"a": 0}}) is False

    def test_exponent_without_decimal_point_is_unreadable(self) -> None:
        assert json.dumps(1e-05) == "1e-05"
        with pytest.raises(Exception, match="204"):
            Engine().rule({"$lt": {"event.a": 1}})({"event": {"a": 1e-05}})
        assert Engine().rule({"$lt": {"event.a": 1}})({"event": {"a": 1.5e-05}}) is True

    def test_sixteen_groups_are_refused(self) -> None:
        part = {"$or": [{"event.a": 1}, {"event.b": 2}]}
        Engine().rule({"$and": [part] * (MAX_GROUPS - 1)})
        with pytest.raises(Exception, match="113"):
            Engine().rule({"$and": [part] * MAX_GROUPS})

    def test_sixty_five_true_branches_overflow_the_match_stack(self) -> None:
        def wide(n: int) -> dict[str, Any]:
            return {"$or": [{"$lt": {"event.a": 100 + i}} for i in range(n)]}

        assert Engine().rule(wide(64))({"event": {"a": 1}}) is True
        with pytest.raises(Exception, match="303"):
            Engine().rule(wide(65))({"event": {"a": 1}})

    def test_division_by_zero_kills_the_process(self) -> None:
        script = (
            "from durable import engine\n"
            "class H(engine.Host):\n"
            "    def _run(self): pass\n"
            "d = {'$div': {'$l': {'$m': 'event.b'}, '$r': {'$m': 'event.c'}}}\n"
            "c = {'$lt': {'event.a': d}}\n"
            "h = H({'rs': {'r': {'all': [{'m': c}], 'run': lambda c: None}}})\n"
            "h.post('rs', {'sid': 1, 'event': {'a': 1, 'b': 3, 'c': 0}})\n"
        )
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
        assert result.returncode != 0

    def test_message_not_handled_is_raised_when_nothing_fires(self) -> None:
        class Host(engine.Host):
            def _run(self) -> None:
                pass

        host = Host({"rs": {"r": {"all": [{"m": {"event.a": 1}}], "run": lambda c: None}}})
        with pytest.raises(engine.MessageNotHandledException):
            host.post("rs", {"sid": "s", "event": {"a": 2}})


@pytest.mark.parametrize("text", ["event.price + 1", "-event.price", "min(1, event.price)", "3"])
def test_a_value_is_not_a_condition(text: str) -> None:
    tree, _ = resolve(parse(text), SYMBOLS, PARAMETERS)
    with pytest.raises(ExpressionError, match="a condition must be true or false"):
        compile_condition(tree, "h")


def test_hoisted_nodes_are_plain_nodes_of_the_tree() -> None:
    _, hoisted = compiled("floor(event.price) < 3")
    node = hoisted["h0"]
    assert node == Call("floor", (Name(("event", "price"), start=6, end=17),), start=0, end=18)
