"""The durable_rules target agrees with the Python evaluator, event for event.

Random well-typed conditions are compiled for the engine and posted with random scopes
(fields missing at random). The engine must fire exactly when the Python evaluator says
True, with hoisted values computed in Python and None fields left out of the message.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rules.expression import (
    Type,
    compile_condition,
    compile_derived,
    compile_python,
    parse,
    resolve,
)

from .durable_harness import Engine, message

NUMBER_FIELDS = ["event.price", "event.qty", "listing.unit_cost", "merchant.rating"]
STRING_FIELDS = ["event.kind", "listing.category"]
BOOL_FIELDS = ["event.flagged", "merchant.verified"]
SYMBOLS = {
    **dict.fromkeys(NUMBER_FIELDS, Type.NUMBER),
    **dict.fromkeys(STRING_FIELDS, Type.STRING),
    **dict.fromkeys(BOOL_FIELDS, Type.BOOL),
}
PARAMETERS = {
    "rate": 0.25,
    "cap": 10,
    "strict": True,
    "region": "a",
    "kinds": ["a", "b"],
    "codes": [1, 2, 2.5],
}

NUMBER_LITERALS = ["0", "1", "2", "3", "-1", "0.5", "1.25", "-2.5", "10", "0.1", "25%", "1m", "2h"]
STRING_LITERALS = ["'a'", "'b'", "''", "'é'"]
NUMBER_VALUES = st.one_of(
    st.integers(-3, 12),
    st.sampled_from([0.5, -0.5, 1.25, 2.5, 0.1, 0.2, 0.3, 60.0, 7200, -0.0]),
)
STRING_VALUES = st.sampled_from(["a", "b", "", "é"])

# The engine's JSON reader cannot read numbers Python prints as `1e-05`; see durable_target.
_UNREADABLE_NUMBER = re.compile(r"(?<![\w.])-?\d+e[-+]?\d+")


def fmt(template: str, *parts: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """Text built by filling `template` with one draw from each strategy."""
    return st.tuples(*parts).map(lambda values: template.format(*values))


def listed(joiner: str, parts: st.SearchStrategy[str], low: int = 2) -> st.SearchStrategy[str]:
    return st.lists(parts, min_size=low, max_size=3).map(joiner.join)


def number(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from([*NUMBER_LITERALS, *NUMBER_FIELDS, "rate", "cap"])
    if depth <= 0:
        return leaves
    smaller = st.deferred(lambda: number(depth - 1))
    return st.one_of(
        leaves,
        fmt("({} {} {})", smaller, st.sampled_from("+-*/"), smaller),
        fmt("-({})", smaller),
        fmt("{}({})", st.sampled_from(["min", "max"]), listed(", ", smaller)),
        fmt("{}({})", st.sampled_from(["abs", "round", "floor", "ceil"]), smaller),
        fmt("round({}, 1)", smaller),
        fmt("({} if {} else {})", smaller, boolean(depth - 1), smaller),
    )


def string(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from([*STRING_LITERALS, *STRING_FIELDS, "region"])
    if depth <= 0:
        return leaves
    smaller = st.deferred(lambda: string(depth - 1))
    return st.one_of(leaves, fmt("({} if {} else {})", smaller, boolean(depth - 1), smaller))


def boolean(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from([*BOOL_FIELDS, "true", "false", "strict"])
    if depth <= 0:
        return leaves
    num, text = number(depth - 1), string(depth - 1)
    smaller = st.deferred(lambda: boolean(depth - 1))
    ordering = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    equality = st.sampled_from(["==", "!="])
    membership = st.sampled_from(["in", "not in"])
    text_lists = st.sampled_from(["kinds", "['a', 'é']", "['b']", "[]"])
    number_lists = st.sampled_from(["codes", "[0, 1, 0.5]", "[3]", "[]"])
    return st.one_of(
        leaves,
        fmt("({} {} {})", num, ordering, num),
        fmt("({} {} {} {} {})", num, ordering, num, ordering, num),
        fmt("({} {} {})", text, equality, text),
        fmt("({} {} {})", smaller, equality, smaller),
        fmt("({} {} {})", text, membership, text_lists),
        fmt("({} {} {})", num, membership, number_lists),
        fmt("(not {})", smaller),
        fmt("({})", listed(" and ", smaller)),
        fmt("({})", listed(" or ", smaller)),
        fmt("({} if {} else {})", smaller, smaller, smaller),
    )


def field_values(fields: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy:
    return st.fixed_dictionaries({name: st.one_of(st.none(), values) for name in fields})


SCOPES = st.tuples(
    field_values(NUMBER_FIELDS, NUMBER_VALUES),
    field_values(STRING_FIELDS, STRING_VALUES),
    field_values(BOOL_FIELDS, st.booleans()),
).map(lambda parts: _nest({k: v for part in parts for k, v in part.items()}))


def _nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    scope: dict[str, dict[str, Any]] = {}
    for dotted, value in flat.items():
        namespace, field = dotted.split(".")
        scope.setdefault(namespace, {})[field] = value
    return scope


ENGINE = Engine()


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(text=boolean(3), scopes=st.lists(SCOPES, min_size=1, max_size=4))
def test_engine_fires_exactly_when_python_says_true(
    text: str, scopes: list[dict[str, dict[str, Any]]]
) -> None:
    tree, kind = resolve(parse(text), SYMBOLS, PARAMETERS)
    assert kind is Type.BOOL
    condition, hoisted = compile_condition(tree, "h")
    evaluate = compile_python(tree)
    derive = compile_derived(hoisted)
    fire = ENGINE.rule(condition)
    for scope in scopes:
        body = message(scope, derive(scope))
        assume(not _UNREADABLE_NUMBER.search(json.dumps(body)))
        expected = evaluate(scope) is True
        assert fire(body) is expected, (text, condition, body)


SMALL_TESTS = st.one_of(
    st.sampled_from([*BOOL_FIELDS, "strict"]),
    st.tuples(
        st.sampled_from(NUMBER_FIELDS),
        st.sampled_from(["<", ">=", "==", "!="]),
        st.sampled_from(NUMBER_LITERALS + NUMBER_FIELDS),
    ).map(" ".join),
    st.tuples(st.sampled_from(STRING_FIELDS), st.sampled_from(["in", "not in"])).map(
        lambda t: f"{t[0]} {t[1]} kinds"
    ),
)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    parts=st.lists(SMALL_TESTS, min_size=16, max_size=20),
    joiner=st.sampled_from([" and ", " or "]),
    scopes=st.lists(SCOPES, min_size=1, max_size=3),
)
def test_oversized_conditions_still_agree(
    parts: list[str], joiner: str, scopes: list[dict[str, dict[str, Any]]]
) -> None:
    """Conditions beyond the engine's limits are partly hoisted, and still agree."""
    text = joiner.join(f"({part} or listing.category in kinds)" for part in parts)
    tree, _ = resolve(parse(text), SYMBOLS, PARAMETERS)
    condition, hoisted = compile_condition(tree, "h")
    evaluate = compile_python(tree)
    derive = compile_derived(hoisted)
    fire = ENGINE.rule(condition)
    for scope in scopes:
        body = message(scope, derive(scope))
        assume(not _UNREADABLE_NUMBER.search(json.dumps(body)))
        assert fire(body) is (evaluate(scope) is True), (text, condition, body)
