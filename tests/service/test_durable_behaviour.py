"""Pins the durable_rules behaviours the engine relies on, so an upgrade that changes them fails.

Each test names the engine decision it supports.
"""

from __future__ import annotations

import itertools
import json

import durable_rules_engine
import pytest
from durable import engine as durable_engine
from durable import lang

from service.engine import _DurableRuleset

_names = itertools.count()


class _QuietHost(durable_engine.Host):
    """durable_rules' own Host without its dispatch threads, to pin what the Host does."""

    def _run(self) -> None:
        return None


def host(rules: dict) -> tuple[_QuietHost, str, list]:
    fired: list = []
    name = f"pin{next(_names)}"
    definition = {
        rule: {**spec, "run": (lambda r: lambda c: fired.append((r, c.m["event_id"])))(rule)}
        for rule, spec in rules.items()
    }
    return _QuietHost({name: definition}), name, fired


def test_unmatched_event_raises_message_not_handled() -> None:
    # -> the engine turns this into an explicit "no_rule_applied" decision.
    h, name, fired = host({"r": {"all": [{"m": {"type": "a"}}]}})
    with pytest.raises(durable_engine.MessageNotHandledException):
        h.post(name, {"sid": "m1", "event_id": "e1", "type": "b"})
    assert fired == []


def test_an_event_is_consumed_by_the_first_rule_by_salience() -> None:
    # -> rule order in a rulebook is a FIRST hit policy; `pri` is the rule's position.
    h, name, fired = host({
        "late": {"pri": 3, "all": [{"m": {"type": "a"}}]},
        "first": {"pri": 1, "all": [{"m": {"type": "a"}}]},
        "middle": {"pri": 2, "all": [{"m": {"type": "a"}}]},
    })
    h.post(name, {"sid": "m1", "event_id": "e1", "type": "a"})
    h.post(name, {"sid": "m2", "event_id": "e2", "type": "a"})
    assert fired == [("first", "e1"), ("first", "e2")]


def test_post_runs_actions_before_returning_but_post_batch_does_not() -> None:
    # -> the engine posts one message at a time and never uses post_batch.
    h, name, fired = host({"r": {"all": [{"m": {"type": "a"}}]}})
    h.post(name, {"sid": "m1", "event_id": "single", "type": "a"})
    assert fired == [("r", "single")]
    fired.clear()
    h.post_batch(name, [{"sid": f"s{i}", "event_id": f"b{i}", "type": "a"} for i in range(3)])
    # Only the last session's action ran; the others wait for the dispatch threads we disabled.
    assert fired == [("r", "b2")]


def test_nested_message_paths_and_arithmetic_over_the_message_work() -> None:
    # -> the engine posts {"event": {...}, "listing": {...}} and compiles `$m` arithmetic.
    cond = {"$and": [
        {"type": "a"},
        {"$lt": {"event.price": {"$sub": {"$l": {"$m": "listing.unit_cost"}, "$r": 5}}}},
    ]}
    h, name, fired = host({"r": {"all": [{"m": cond}]}})
    h.post(name, {"sid": "m", "event_id": "yes", "type": "a", "event": {"price": 549},
                  "listing": {"unit_cost": 560}})
    with pytest.raises(durable_engine.MessageNotHandledException):
        h.post(name, {"sid": "m", "event_id": "no", "type": "a", "event": {"price": 556},
                      "listing": {"unit_cost": 560}})
    assert fired == [("r", "yes")]


def test_state_cannot_be_an_rvalue() -> None:
    # -> conditions never read session state; the engine enriches the message instead.
    condition = lang.m.price < lang.s.cost
    with pytest.raises(Exception, match="s not allowed as rvalue"):
        condition.define()


def test_sessions_are_limited_unless_deleted() -> None:
    # -> the engine keeps no session per merchant: one session per ruleset (see below).
    h, name, _ = host({"r": {"all": [{"m": {"type": "a"}}]}})
    with pytest.raises(MemoryError):
        for i in range(5000):
            h.post(name, {"sid": f"m{i}", "event_id": f"e{i}", "type": "a"})
    h2, name2, fired = host({"r": {"all": [{"m": {"type": "a"}}]}})
    ruleset = h2.get_ruleset(name2)
    for i in range(5000):
        h2.post(name2, {"sid": f"m{i}", "event_id": f"e{i}", "type": "a"})
        ruleset.delete_state(f"m{i}")
    assert len(fired) == 5000


def test_quiet_host_starts_no_dispatch_threads() -> None:
    import threading

    before = threading.active_count()
    host({"r": {"all": [{"m": {"type": "a"}}]}})
    assert threading.active_count() == before


def test_deleting_a_session_created_by_an_unmatched_event_crashes_the_process() -> None:
    # -> every ruleset ends with a catch-all rule, so no post goes unmatched before a delete.
    import subprocess
    import sys

    script = (
        "from durable import engine\n"
        "class H(engine.Host):\n"
        "    def _run(self): pass\n"
        "h = H({'rs': {'r': {'all': [{'m': {'type': 'a'}}], 'run': lambda c: None}}})\n"
        "try:\n"
        "    h.post('rs', {'sid': 'm1', 'type': 'b'})\n"
        "except engine.MessageNotHandledException:\n"
        "    pass\n"
        "h.get_ruleset('rs').delete_state('m1')\n"
        "print('survived')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode < 0 and "survived" not in result.stdout


def _ruleset(rules: dict) -> _DurableRuleset:
    return _DurableRuleset(f"pin{next(_names)}", {
        rule: {**spec, "run": lambda c: None} for rule, spec in rules.items()})


def test_the_c_binding_answers_a_post_with_the_rule_chosen_by_salience() -> None:
    # -> the engine reads the rule that fired from start_action_for_state, not from an action.
    rs = _ruleset({
        "late": {"pri": 2, "all": [{"m": {"type": "a"}}]},
        "first": {"pri": 1, "all": [{"m": {"$and": [{"type": "a"}, {"$lt": {"event.price": 5}}]}}]},
    })
    assert rs.post({"sid": "m1", "type": "a", "event": {"price": 3}}) == "first"
    rs.delete_session("m1")
    assert rs.post({"sid": "m1", "type": "a", "event": {"price": 7}}) == "late"
    rs.delete_session("m1")
    rs.delete()


def test_the_c_binding_reports_an_unmatched_message_and_refuses_bad_json_numbers() -> None:
    # -> unmatched posts raise like Host.post; unreadable numbers become engine_error decisions.
    rs = _ruleset({"r": {"all": [{"m": {"type": "a"}}]}})
    with pytest.raises(durable_engine.MessageNotHandledException):
        rs.post({"sid": "m1", "type": "b"})
    with pytest.raises(durable_rules_engine.error, match="error code"):
        rs.post({"sid": "m2", "type": "a", "event": {"price": 1e-05}})


def test_the_c_binding_keeps_no_session_after_delete() -> None:
    # -> the same 1,024-session limit applies to the binding; one session per ruleset avoids it.
    rs = _ruleset({"r": {"all": [{"m": {"type": "a"}}]}})
    for i in range(5000):
        assert rs.post({"sid": f"m{i}", "type": "a"}) == "r"
        rs.delete_session(f"m{i}")
    rs.delete()


def test_a_rule_name_json_escapes_is_still_read() -> None:
    name = 'odd "name"'
    rs = _ruleset({name: {"all": [{"m": {"type": "a"}}]}})
    assert rs.post({"sid": "m1", "type": "a"}) == name
    assert json.dumps(name) != f'"{name}"'


def test_one_session_every_post_leaves_empty_answers_like_a_fresh_one() -> None:
    # -> the engine posts every message of a ruleset into one session instead of one per merchant.
    rs = _ruleset({
        "cheap": {"pri": 1, "all": [{"m": {"$and": [{"type": "a"}, {"$lt": {"event.price": 5}}]}}]},
        "pair": {"pri": 2, "all": [{"m": {"type": "a"}}, {"m": {"type": "b"}}]},
        "any_a": {"pri": 3, "all": [{"m": {"type": "a"}}]},
        "any_b": {"pri": 4, "all": [{"m": {"type": "b"}}]},
    })
    for i in range(3000):
        price = i % 10
        assert rs.post_in_session({"type": "a", "event": {"price": price}}) == \
            ("cheap" if price < 5 else "any_a")
        # an earlier `a` was consumed, so a `b` never completes the two-message rule
        assert rs.post_in_session({"type": "b"}) == "any_b"
    rs.delete()


def test_a_post_that_leaves_a_message_behind_moves_to_a_new_session() -> None:
    rs = _ruleset({"r": {"all": [{"m": {"type": "a"}}]}})
    assert rs.post_in_session({"type": "a"}) == "r"
    with pytest.raises(durable_engine.MessageNotHandledException):
        rs.post_in_session({"type": "b"})  # unmatched: it stays in the session it went to
    msg = {"type": "a"}
    assert rs.post_in_session(msg) == "r"
    assert msg["sid"] != "s0"
    with pytest.raises(durable_rules_engine.error, match="error code"):
        rs.post_in_session({"type": "a", "event": {"price": 1e-05}})  # refused, nothing taken
    again = {"type": "a"}
    assert rs.post_in_session(again) == "r" and again["sid"] == msg["sid"]
    rs.delete()
