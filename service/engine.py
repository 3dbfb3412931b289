"""Evaluate a rulebook set over merchant and order events with durable_rules.

Per event, in this order:
1. deadlines due at or before the event's time fire (event time, not wall-clock time);
2. the event cancels pending deadlines that wait for it (same merchant and key);
3. its facts are recorded in state (see `service.facts`);
4. it is enriched with the state and derived values its rules read and posted to every ruleset
   that listens to its type; the first matching rule of each rulebook decides;
5. the rule's effects are evaluated on one snapshot, their burdens accounted, state changed.

durable_rules is driven from one thread through its C binding (`durable_rules_engine`), the same
calls its Python `Host` makes for a synchronous post, without the Host's per-post closure objects,
session-state round trip and background dispatch threads: assert the message, start the action
durable_rules chose for the session (its name is the rule that matched), complete it; the message
is then consumed and the same session serves the next post. That path costs a sixth of
`Host.post` or less (see bench/RESULTS.md). Messages are posted
one at a time, never as a batch: each event's message carries state that the effects of the events
before it changed. Deadlines do not use durable_rules timers, which run on the wall clock; a
deadline fires by posting a synthetic `$deadline:<rule>` message when the watermark (the latest
event time seen) passes its due time, so a replay gives the same decisions at any speed.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import durable_rules_engine
from durable import engine as durable_engine
from pydantic import BaseModel

from rules.effects import EFFECTS, round6
from rules.rulebook import CompiledExpr, EffectCallIR, Rulebook, RulebookSet, RuleIR
from rules.targets.durable import NO_RULE, Hoisted, Ruleset, compile_ruleset, deadline_type
from rules.vocabulary import CORRELATION_KEYS
from service.apply import accrue, apply_effect, roll_periods
from service.decision import Decision, EffectOutcome, decision_id
from service.events import EVENT_CLASSES
from service.facts import CREATES, FACTS
from service.state import SQLiteStateStore, StateStore

WATERMARK_KEY = "watermark"

#: The typed events (pydantic models) and the getter of a model's `__dict__`, which holds its
#: field values. An attribute of a pydantic model is read through the class's `__getattr__` hook,
#: several times slower than a dict look-up, and the engine reads a few per event: it reads the
#: typed events' fields from their `__dict__` instead (the same values), and any other object's
#: by attribute.
_TYPED_EVENTS = frozenset(EVENT_CLASSES.values())
_model_dict = BaseModel.__dict__["__dict__"].__get__
_CORRELATIONS = tuple(CORRELATION_KEYS.items())


#: The latest time a deadline may fall due (a day before the calendar's end, in UTC): later
#: ones cannot be written as dates, and never come.
LAST_DUE = dt.datetime(9999, 12, 30, tzinfo=dt.UTC).timestamp()


class _PostFailed(Exception):
    """durable_rules refused a message (its C engine's error code is in the text)."""


#: durable_rules' answer codes for an asserted message (see durable.engine.Ruleset).
_HANDLED, _NOT_HANDLED, _OBSERVED = 0, 1, 2

_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False)
#: The JSON writer durable_rules' own Python layer uses (`ensure_ascii=False`), made once, called
#: as `JSONEncoder.encode` calls it for a dict (the C encoder in one shot) without the two Python
#: frames around it: the same text.
_json_chunks = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _JSON.default, json.encoder.encode_basestring,  # type: ignore[attr-defined]
    None, _JSON.key_separator, _JSON.item_separator, False, False, True,
) if json.encoder.c_make_encoder is not None else None  # type: ignore[attr-defined]


def _to_json(obj: dict[str, Any]) -> str:
    if _json_chunks is None:
        return _JSON.encode(obj)
    return "".join(_json_chunks(obj, 0))


class _DurableRuleset:
    """One compiled ruleset registered with durable_rules' C engine, posted to synchronously.

    The calls are those `durable.engine.Host.post` makes when no action is queued elsewhere:
    `assert_event`, `start_action_for_state` (durable_rules picks the rule by salience and
    returns `{"<rule name>": {"m": message}}`), `complete_and_start_action`. Our actions only
    record which rule fired and never change the session, so the Host's closure objects and its
    state write-back (`update_state`) have nothing to do and are skipped.
    """

    __slots__ = ("_handle", "_rule_names", "_session", "_sessions", "name")

    def __init__(self, name: str, definition: dict[str, dict[str, Any]]):
        self.name = name
        self._rule_names = frozenset(definition)
        plain = {rule: {k: v for k, v in spec.items() if k != "run"}
                 for rule, spec in definition.items()}
        self._handle = durable_rules_engine.create_ruleset(name, _to_json(plain))
        self._sessions = 0
        self._session = "s0"

    def post(self, msg: dict[str, Any]) -> str | None:
        """Assert one message and return the name of the rule whose action it started."""
        handle = self._handle
        code, state = durable_rules_engine.assert_event(handle, _to_json(msg))
        if code == _NOT_HANDLED:
            raise durable_engine.MessageNotHandledException(msg)
        if code == _OBSERVED:
            raise durable_engine.MessageObservedException(msg)
        if code != _HANDLED:
            return None
        started = durable_rules_engine.start_action_for_state(handle, state)
        if not started:
            return None
        durable_rules_engine.complete_and_start_action(handle, state)
        return self._rule_of(started[1])

    def post_in_session(self, msg: dict[str, Any]) -> str | None:
        """`post` in the ruleset's one session (`msg["sid"]` is set to it).

        Every message the engine posts matches a rule (at least the catch-all, see NO_RULE) and
        its action is completed before this returns, so the message is consumed and the session
        holds nothing between posts: it answers as a fresh session would, without durable_rules
        allocating and zeroing a session for every post and freeing it afterwards, which was
        about a third of a post's cost. A post that leaves anything behind (no action started,
        an unmatched message, a failure after the message was taken) moves the ruleset to a new
        session; the old one is left alone, as deleting a session can crash the process.
        """
        msg["sid"] = self._session
        handle = self._handle
        code, state = durable_rules_engine.assert_event(handle, _to_json(msg))
        if code != _HANDLED:
            self._new_session()
            if code == _NOT_HANDLED:
                raise durable_engine.MessageNotHandledException(msg)
            if code == _OBSERVED:
                raise durable_engine.MessageObservedException(msg)
            return None
        try:
            started = durable_rules_engine.start_action_for_state(handle, state)
            if started:
                durable_rules_engine.complete_and_start_action(handle, state)
        except durable_rules_engine.error:
            self._new_session()
            raise
        if not started:
            self._new_session()
            return None
        return self._rule_of(started[1])

    def _new_session(self) -> None:
        self._sessions += 1
        self._session = f"s{self._sessions}"

    def _rule_of(self, action: str) -> str:
        # The action text starts with the rule name as its first key: {"<name>":{"m":...}}.
        end = action.find('"', 2)
        name = action[2:end]
        if name not in self._rule_names:  # a name JSON had to escape: read it properly
            name = next(iter(json.loads(action)))
        return name

    def delete_session(self, sid: str) -> None:
        durable_rules_engine.delete_state(self._handle, sid)

    def delete(self) -> None:
        """Free the ruleset's C memory (about half a megabyte); it cannot be used afterwards."""
        durable_rules_engine.delete_ruleset(self._handle)


#: Per ruleset and message type: its durable_rules ruleset, the fields the message carries by
#: namespace, and the sub-expressions computed into `derived`.
_Posting = tuple[_DurableRuleset, tuple[tuple[str, tuple[str, ...]], ...], tuple[Hoisted, ...]]

#: Per effect call: the call, its literal arguments, (name, evaluator) of the others, its burden
#: function and the arguments it requires.
_CallPlan = tuple[EffectCallIR, tuple[tuple[str, Any], ...],
                  tuple[tuple[str, Callable[[Any], Any]], ...], Callable[..., Any], tuple[str, ...]]


class Engine:
    """One engine instance: one durable_rules Host, one state store, one thread."""

    def __init__(self, rulebook_set: RulebookSet, store: StateStore | None = None,
                 host_prefix: str = ""):
        self.set = rulebook_set
        self.store: StateStore = store if store is not None else SQLiteStateStore()
        self.zone = rulebook_set.timezone
        self._tz = ZoneInfo(self.zone)
        self.rulesets: dict[str, Ruleset] = {}
        self._durable: dict[str, _DurableRuleset] = {}
        for family, rb in sorted(rulebook_set.rulebooks.items()):
            rs = compile_ruleset(rb, _record_only, name=f"{host_prefix}{rb.id.replace('/', '.')}")
            self.rulesets[family] = rs
            self._durable[rs.name] = _DurableRuleset(rs.name, rs.definition)
        self._closed = False
        # Routing: event type -> rulesets whose rules listen to it.
        self._routes: dict[str, list[Ruleset]] = {}
        for rs in self.rulesets.values():
            for rule in rs.rulebook.rules:
                for t in rule.on:
                    lst = self._routes.setdefault(t, [])
                    if rs not in lst:
                        lst.append(rs)
        self._postings: dict[tuple[str, str], _Posting] = {}
        self._by_type: dict[str, tuple[str | None, Any, tuple[Ruleset, ...]]] = {}
        # Per condition and per effect call (keyed by id, holding the object so the id stays
        # its own): what `_explain` reads and which arguments `_effects` requires.
        self._explain_plans: dict[int, tuple[CompiledExpr, tuple[tuple[str, str, str], ...],
                                             tuple[str, ...]]] = {}
        self._required_args: dict[int, tuple[EffectCallIR, tuple[str, ...]]] = {}
        self._call_plans: dict[int, _CallPlan] = {}
        self._seq = itertools.count()
        self._heap: list[tuple[float, int, str]] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self._by_key: dict[tuple[str, str, str], set[str]] = {}
        #: How many pending deadlines each merchant has: most events' merchants have none.
        self._merchants_waiting: dict[str, int] = {}
        for d in self.store.deadlines():
            self._arm(d, persist=False)
        wm = self.store.meta(WATERMARK_KEY)
        self.watermark: float = float(wm) if wm is not None else float("-inf")

    # -- durable_rules plumbing -------------------------------------------------------------
    def _posting(self, rs: Ruleset, msg_type: str) -> _Posting:
        """What posting `msg_type` to `rs` needs, worked out once per pair: the durable_rules
        ruleset, the fields to copy grouped by namespace (in sorted order, which is the order
        the message's JSON lists them in) and the sub-expressions to compute."""
        key = (rs.name, msg_type)
        found = self._postings.get(key)
        if found is None:
            grouped: dict[str, list[str]] = {}
            for ns, name in sorted(tuple(n.split(".", 1)) for n in
                                   rs.message_fields.get(msg_type, ())):
                grouped.setdefault(ns, []).append(name)
            found = self._postings[key] = (
                self._durable[rs.name],
                tuple((ns, tuple(names)) for ns, names in grouped.items()),
                tuple(rs.hoisted.get(msg_type) or ()))
        return found

    def _post(self, rs: Ruleset, msg_type: str, sid: str,
              scope: dict[str, dict[str, Any]]) -> str | None:
        """Post one enriched message; return the durable_rules rule name that fired, if any.

        `sid` is the merchant the message is about (what a subclass recording posts sees);
        durable_rules gets the ruleset's session instead (see `_DurableRuleset.post_in_session`).
        """
        durable, plan, hoisted = self._postings.get((rs.name, msg_type)) \
            or self._posting(rs, msg_type)
        msg: dict[str, Any] = {"sid": sid, "type": msg_type}
        for ns, names in plan:
            space = scope.get(ns)
            if space is None:
                continue
            sub = None
            for name in names:
                value = space.get(name)
                if value is None:
                    continue
                # 1e-4 <= abs(value) < 1e16, without calling abs (NaN fails both, as it did)
                if value.__class__ is float and not (1e-4 <= value < 1e16
                                                     or -1e16 < value <= -1e-4):
                    value = _wire_float(value)
                if sub is None:
                    sub = msg[ns] = {}
                sub[name] = value
        if hoisted:
            derived = {}
            for h in hoisted:
                v = h.evaluate(scope)
                if v is not None:
                    if v.__class__ is float and not (1e-4 <= v < 1e16 or -1e16 < v <= -1e-4):
                        v = _wire_float(v)
                    derived[h.name] = v
            if derived:
                msg["derived"] = derived
        # Our store holds all state and the message carries what the rules read, so durable_rules
        # needs no session per merchant: every post goes to the ruleset's one session, which each
        # post leaves empty (see `_DurableRuleset.post_in_session`). Sessions per merchant would
        # also hit the C engine's limit of 1,024 live sessions per ruleset.
        try:
            fired = durable.post_in_session(msg)
        except durable_rules_engine.error as exc:
            # A message the C engine cannot take must not stop the stream.
            raise _PostFailed(str(exc)) from None
        if fired is None or fired == NO_RULE:
            return None
        return fired

    # -- deadlines --------------------------------------------------------------------------
    def _arm(self, d: dict[str, Any], persist: bool = True) -> None:
        old = self._pending.get(d["id"])
        if old is not None:
            self._disarm(old["id"], persist=False)
        self._pending[d["id"]] = d
        heapq.heappush(self._heap, (d["due"], next(self._seq), d["id"]))
        self._by_key.setdefault((d["merchant_id"], d["key"], d["key_value"]), set()).add(d["id"])
        self._merchants_waiting[d["merchant_id"]] = \
            self._merchants_waiting.get(d["merchant_id"], 0) + 1
        if persist:
            self.store.put_deadline(d)

    def _disarm(self, deadline_id: str, persist: bool = True) -> dict[str, Any] | None:
        d = self._pending.pop(deadline_id, None)
        if d is None:
            return None
        key = (d["merchant_id"], d["key"], d["key_value"])
        ids = self._by_key.get(key)
        if ids is not None:
            ids.discard(deadline_id)
            if not ids:
                del self._by_key[key]
        left = self._merchants_waiting[d["merchant_id"]] - 1
        if left:
            self._merchants_waiting[d["merchant_id"]] = left
        else:
            del self._merchants_waiting[d["merchant_id"]]
        if persist:
            self.store.drop_deadline(deadline_id)
        return d

    def _cancel_for(self, merchant_id: str, event_type: str, time: float,
                    payload: dict[str, Any]) -> list[str]:
        cancelled: list[str] = []
        if merchant_id not in self._merchants_waiting:
            return cancelled
        by_key = self._by_key
        waiting = by_key.get((merchant_id, "merchant", ""))
        found = [waiting] if waiting else []
        for key, field in _CORRELATIONS:
            v = payload.get(field)
            if v is not None:
                waiting = by_key.get((merchant_id, key, v))
                if waiting:
                    found.append(waiting)
        for ids in found:
            for did in sorted(ids):
                d = self._pending[did]
                if event_type in d["unless"] and time < d["due"]:
                    self._disarm(did)
                    cancelled.append(did)
        return cancelled

    def advance_to(self, time: float) -> list[Decision]:
        """Move the watermark to `time` and fire every deadline due at or before it."""
        out: list[Decision] = []
        heap = self._heap
        while heap and heap[0][0] <= time:
            due, _, did = heapq.heappop(heap)
            d = self._pending.get(did)
            if d is None or d["due"] != due:
                continue  # cancelled or re-armed
            self._disarm(did)
            decision = self._fire_deadline(d)
            if decision is not None:
                out.append(decision)
        self._move_watermark(time)
        return out

    def _move_watermark(self, time: float) -> None:
        if time > self.watermark:
            self.watermark = time
            self.store.set_meta(WATERMARK_KEY, repr(time))

    def pending_deadlines(self) -> list[dict[str, Any]]:
        return sorted(self._pending.values(), key=lambda d: (d["due"], d["id"]))

    def _fire_deadline(self, d: dict[str, Any]) -> Decision | None:
        rs = self.rulesets.get(d["family"])
        if rs is None or deadline_type(d["rule"]) not in rs.message_fields:
            # The rulebook was replaced and no longer has this rule: the deadline lapses.
            return None
        merchant = self.store.merchant(d["merchant_id"])
        roll_periods(merchant, d["due"], self.zone)
        event_ns = d["event"]
        listing, order = self._objects(d["merchant_id"], event_ns, create_kind=None)
        scope = {"event": event_ns, "merchant": merchant, "listing": listing, "order": order}
        try:
            fired = self._post(rs, deadline_type(d["rule"]), d["merchant_id"], scope)
        except _PostFailed as exc:
            error = self._engine_error(rs.rulebook, _DeadlineEvent(d, self._iso(d["due"])),
                                       str(exc))
            error.trigger = "deadline"
            return error
        if fired is None:
            return None
        rule, _ = rs.rule_by_name[fired]
        assert rule.deadline is not None
        due = self._iso(d["due"])  # the decision's time, and its explanation's deadline_due
        decision = Decision(
            decision_id=decision_id(rs.rulebook.revision, d["event_id"], rule.id, "deadline"),
            event_id=d["event_id"],
            event_type=d["event_type"],
            merchant_id=d["merchant_id"],
            event_time=due,
            set_id=self.set.id,
            rulebook=rs.rulebook.id,
            revision=rs.rulebook.revision,
            rule=rule.id,
            trigger="deadline",
            outcome="applied",
        )
        if rule.deadline.when is not None:
            decision.explanation = self._explain(rule.deadline.when, scope, rs.rulebook)
        decision.explanation["deadline_due"] = due
        self._effects(decision, rule.deadline.then, scope, d["due"], merchant, listing, order)
        return decision

    # -- events -----------------------------------------------------------------------------
    def _objects(self, merchant_id: str, payload: dict[str, Any], create_kind: str | None) \
            -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        order = None
        listing_id = payload.get("listing_id")
        order_id = payload.get("order_id")
        if order_id is not None:
            order = self.store.order(merchant_id, order_id, create=create_kind == "order")
            if listing_id is None and order is not None:
                listing_id = order.get("listing_id")
        listing = None
        if listing_id is not None:
            listing = self.store.listing(merchant_id, listing_id,
                                         create=create_kind == "listing")
        return listing, order

    def process(self, events: Iterable[Any]) -> list[Decision]:
        """Evaluate a batch of validated events in order; state is flushed once at the end."""
        if self._closed:
            raise RuntimeError("this engine is closed")
        out: list[Decision] = []
        for ev in events:
            out.extend(self.process_one(ev))
        self.store.flush()
        return out

    def process_one(self, ev: Any) -> list[Decision]:
        if type(ev) in _TYPED_EVENTS:
            fields = _model_dict(ev)
            payload = dict(_model_dict(fields["payload"]))
        else:
            fields = {"time": ev.time, "type": ev.type, "merchant_id": ev.merchant_id,
                      "event_id": ev.event_id, "event_time": ev.event_time}
            payload = dict(ev.payload.__dict__)
        time, event_type, merchant_id = fields["time"], fields["type"], fields["merchant_id"]
        heap = self._heap
        if heap and heap[0][0] <= time:
            decisions: list[Decision] = self.advance_to(time)
        else:  # no deadline is due: only the watermark moves
            decisions = []
            self._move_watermark(time)
        cancelled = self._cancel_for(merchant_id, event_type, time, payload) \
            if merchant_id in self._merchants_waiting else []
        store = self.store
        merchant = store.merchant(merchant_id)
        touched = roll_periods(merchant, time, self.zone)
        create_kind, fact, routes = self._by_type.get(event_type) or self._type_plan(event_type)
        listing, order = self._objects(merchant_id, payload, create_kind)
        if fact is not None:
            m_changed, l_changed, o_changed = fact(payload, merchant, listing, order)
            touched = touched or m_changed
            if l_changed and listing is not None:
                store.touch("listing", listing)
            if o_changed and order is not None:
                store.touch("order", order)
        if touched:
            store.touch("merchant", merchant)
        payload["time"] = time
        scope = {"event": payload, "merchant": merchant, "listing": listing, "order": order}
        applied = False
        for rs in routes:
            try:
                fired = self._post(rs, event_type, merchant_id, scope)
            except _PostFailed as exc:
                decisions.append(self._engine_error(rs.rulebook, ev, str(exc)))
                applied = True
                continue
            if fired is None:
                continue
            rule, _ = rs.rule_by_name[fired]
            decisions.append(self._decide(rs.rulebook, rule, fields, scope, merchant, listing,
                                          order, cancelled))
            cancelled = []
            applied = True
        if not applied:
            event_id, rulebook_set = fields["event_id"], self.set
            decisions.append(Decision(
                decision_id=decision_id(rulebook_set.revision, event_id, None, "event"),
                event_id=event_id,
                event_type=event_type,
                merchant_id=merchant_id,
                event_time=fields["event_time"],
                set_id=rulebook_set.id,
                rulebook=None,
                revision=rulebook_set.revision,
                rule=None,
                trigger="event",
                outcome="no_rule_applied",
                effects=[],  # given, not made by the default factories: a call less each
                explanation={},
                cancelled_deadlines=cancelled,
            ))
        return decisions

    def _type_plan(self, event_type: str) -> tuple[str | None, Any, tuple[Ruleset, ...]]:
        """For an event type: the kind of record its facts create, its fact function and the
        rulesets it is posted to (looked up once per type)."""
        plan = self._by_type[event_type] = (CREATES.get(event_type), FACTS.get(event_type),
                                            tuple(self._routes.get(event_type, ())))
        return plan

    def _engine_error(self, rulebook: Rulebook, ev: Any, message: str) -> Decision:
        return Decision(
            decision_id=decision_id(rulebook.revision, ev.event_id, None, "error"),
            event_id=ev.event_id, event_type=ev.type, merchant_id=ev.merchant_id,
            event_time=ev.event_time, set_id=self.set.id, rulebook=rulebook.id,
            revision=rulebook.revision, rule=None, trigger="event", outcome="engine_error",
            explanation={"error": f"durable_rules refused the message: {message}"},
        )

    def _decide(self, rulebook: Rulebook, rule: RuleIR, fields: dict[str, Any],
                scope: dict[str, Any], merchant: dict[str, Any], listing: dict[str, Any] | None,
                order: dict[str, Any] | None, cancelled: list[str]) -> Decision:
        """The decision of `rule` on the event whose fields (`event_id`, `type`, `merchant_id`,
        `event_time`, `time`) are `fields`; its deadline is armed and its effects carried out."""
        event_id, time, merchant_id = fields["event_id"], fields["time"], fields["merchant_id"]
        event_type = fields["type"]
        decision = Decision(
            decision_id=decision_id(rulebook.revision, event_id, rule.id, "event"),
            event_id=event_id,
            event_type=event_type,
            merchant_id=merchant_id,
            event_time=fields["event_time"],
            set_id=self.set.id,
            rulebook=rulebook.id,
            revision=rulebook.revision,
            rule=rule.id,
            trigger="event",
            outcome="applied",
            effects=[],
            explanation=self._explain(rule.when, scope, rulebook),
            cancelled_deadlines=cancelled,
        )
        if rule.deadline is not None:
            dl = rule.deadline
            after = dl.after.evaluate(scope)
            due = math.inf if after is None else time + float(after)
            # A deadline past the calendar's last day (99999999999 weeks, say) never falls
            # due: not armed, as one whose `after` is unknown is not.
            if due <= LAST_DUE:
                key_value = "" if dl.key == "merchant" else scope["event"].get(f"{dl.key}_id")
                if key_value is not None:
                    # JSON keeps the parts apart whatever characters the ids contain.
                    did = json.dumps([rulebook.family, rule.id, merchant_id, key_value])
                    event_ns = {k: v for k, v in scope["event"].items() if v is not None}
                    self._arm({
                        "id": did, "family": rulebook.family, "rule": rule.id,
                        "merchant_id": merchant_id, "key": dl.key, "key_value": key_value,
                        "due": due, "unless": list(dl.unless), "event_id": event_id,
                        "event_type": event_type, "event": event_ns,
                    })
                    decision.deadline = {"id": did, "due": self._iso(due),
                                         "unless": list(dl.unless), "key": dl.key}
        self._effects(decision, rule.then, scope, time, merchant, listing, order)
        return decision

    def _effects(self, decision: Decision, calls: Sequence[EffectCallIR], scope: dict[str, Any],
                 time: float, merchant: dict[str, Any], listing: dict[str, Any] | None,
                 order: dict[str, Any] | None) -> None:
        """Evaluate every effect on one snapshot, then account burdens and change state."""
        evaluated = []
        plans = self._call_plans
        for call in calls:
            plan = plans.get(id(call))
            if plan is None or plan[0] is not call:
                plan = self._call_plan(call)
            _, literals, expressions, burden_of, required = plan
            args = dict(literals)
            for name, evaluate in expressions:
                args[name] = evaluate(scope)
            burdens, amounts = burden_of(args, scope)
            evaluated.append((call.name, args, burdens, amounts, required))
        store = self.store
        outcomes = decision.effects
        for name, args, burdens, amounts, required in evaluated:
            skipped = None
            for n in required:
                if args.get(n) is None:
                    missing = [m for m in required if args.get(m) is None]
                    skipped = f"unknown value for {', '.join(missing)}"
                    break
            else:
                skipped, touched = apply_effect(name, args, amounts, time, self.zone, merchant,
                                                listing, order)
            if skipped:
                outcomes.append(EffectOutcome(name, _round_args(args), amounts, [],
                                              skipped=skipped))
                continue
            shares = []
            if burdens:
                for b in burdens:
                    accrue(merchant, b.party, b.category, b.amount)
                    shares.append(b.to_dict())
                touched.add("merchant")
            for kind in touched:
                obj = merchant if kind == "merchant" else listing if kind == "listing" else order
                if obj is not None:
                    store.touch(kind, obj)
            outcomes.append(EffectOutcome(name, _round_args(args), amounts, shares))

    def _call_plan(self, call: EffectCallIR) -> _CallPlan:
        """An effect call's literal arguments, argument evaluators, burden function and required
        arguments, read once per call (keyed by id, holding the call so the id stays its own)."""
        plan = self._call_plans[id(call)] = (
            call, tuple(call.literals.items()),
            tuple((name, expr.evaluate) for name, expr in call.expressions.items()),
            EFFECTS[call.name].burden, self._required(call))
        return plan

    def _explain(self, condition: CompiledExpr, scope: dict[str, Any],
                 rulebook: Rulebook) -> dict[str, Any]:
        """The values the condition read: what made it true, in the rule's own words."""
        plan = self._explain_plans.get(id(condition))
        if plan is None or plan[0] is not condition:
            plan = (condition,
                    tuple((name, *name.split(".", 1)) for name in sorted(condition.names)),
                    tuple(sorted(condition.params)))
            self._explain_plans[id(condition)] = plan
        out: dict[str, Any] = {}
        for name, ns, field in plan[1]:
            space = scope.get(ns)
            out[name] = space.get(field) if space else None
        parameters = rulebook.parameters
        for p in plan[2]:
            out[p] = parameters.get(p)
        return out

    def _required(self, call: EffectCallIR) -> tuple[str, ...]:
        """The arguments an effect cannot be carried out without."""
        found = self._required_args.get(id(call))
        if found is None or found[0] is not call:
            found = (call, tuple(n for n, a in call.spec.args.items() if a.required))
            self._required_args[id(call)] = found
        return found[1]

    def _iso(self, t: float) -> str:
        return dt.datetime.fromtimestamp(t, self._tz).isoformat()

    def close(self, flush: bool = True) -> None:
        """Flush state and free the durable_rules rulesets (a Host cannot unregister them, and
        each holds about half a megabyte of C memory until deleted). The engine is then unusable.
        `flush=False` drops uncommitted changes, for a caller that commits state itself.
        """
        if self._closed:
            return
        if flush:
            self.store.flush()
        for ruleset in self._durable.values():
            ruleset.delete()
        self._closed = True


def _record_only(rule_name: str) -> Callable[[Any], None]:
    """The action each compiled rule gets. The engine reads which rule fired from durable_rules'
    answer to the post and never runs actions, so this one only exists for the definition."""

    def run(_closure: Any) -> None:
        return None

    return run


class _DeadlineEvent:
    """The fields of a deadline's originating event that a decision names."""

    def __init__(self, d: dict[str, Any], event_time: str):
        self.event_id, self.type, self.merchant_id = d["event_id"], d["event_type"], \
            d["merchant_id"]
        self.event_time = event_time


def _wire_float(value: float) -> float | int:
    """A float durable_rules' JSON reader accepts.

    Python writes floats below 1e-4 or from 1e16 up with an exponent and no decimal point
    (`1e-05`), which durable_rules 2.0.28 rejects, failing the whole post. Magnitudes below
    1e-4 (a ten-thousandth of a yuan, or float noise such as 0.1 + 0.2 - 0.3) become 0; huge
    ones become the nearest integer, clamped to 64 bits.
    """
    if value == 0 or abs(value) < 1e-4:
        return 0.0
    return int(max(min(value, 9.0e18), -9.0e18))


def _round_args(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments with every float rounded to 6 places (`round6`: the same as `round(v, 6)`,
    cached, as the same few hundred amounts recur)."""
    out = {}
    for k, v in args.items():
        if isinstance(v, float):
            v = round6(v)
        out[k] = v
    return out
