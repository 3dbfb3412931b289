"""The daily model, merchant by merchant, in plain Python: the oracle for `simulator.model`.

This file is the readable statement of the model. Every rule is evaluated with the rule
language's Python evaluator (`CompiledExpr.evaluate`, the reference semantics) on a scope shaped
like the event the service engine would see, first matching rule wins, and effects change state
as `rules.effects` documents, with burdens from its burden functions. It reads the same random
draws as the vectorised model (see `simulator.population`), so on a small population the two must
agree. It is slow on purpose (clear loops over merchants) and is the benchmark's baseline.

One day, at midnight T of the rulebooks' time zone (all of the day's events carry time T, in
this order, as the service engine would process them):
 0. month/year boundaries reset the appeal counters (as the engine's `roll_periods`);
 1. whole-web price: in each group a competitor undercuts the lowest price seen (platform or web)
    with the scenario's probability and depth, down to a floor; otherwise the web price drifts
    back up. A new lower web price is a `competitor_price_observed` event for every live seller;
 2. auto-follow: due long deadlines fire (e.g. a dismissed prompt returning after 72 h); the
    observation is evaluated; a merchant with an open prompt follows it (with a probability that
    rises with repeated prompts: a `listing_updated` event), dismisses it (`prompt_dismissed`) or
    lets it run, in which case the prompt rule's deadline (12 h < 1 day) resolves the same day
    (`set_price`, even below unit cost). Then enrolment toggles: accidental enrolment by closing a
    pop-up, and squeezed merchants trying to leave (which may need a code);
 3. a merchant outside auto-follow that sells at a loss raises its price to a target margin;
 4. ranking: each live listing is scored by the ranking rulebook on a `listing_updated` scope;
    rank within the group; exposure = the group's impressions by position weight x store scale,
    plus an equal share of the group's channel impressions for listings admitted to a channel;
 5. demand: clicks (organic and bought with an ad budget), conversion falling with lower quality,
    orders by stochastic rounding; commission on an `order_placed` scope times the orders, ad
    spend on an `ad_click_charged` scope;
 6. refund-only claims (a rate rising as quality falls, a share lacking evidence), each evidence
    class routed through the refund rulebook: `refund_requested`, platform intervention for a
    share of buyers, the merchant's answers within its daily capacity (rejecting claims without
    evidence first, accepting the rest), the response deadline for unanswered claims (booked on
    the claim's day), escalation of rejected claims, and platform review;
 7. appeals against refunds granted without evidence, one at a time through the appeal rulebook
    (`appeal_filed`, and `appeal_decided` after the review), with quota and blocks;
 8. accounts: profit, cash, a run of loss days; exit after the run or when cash is negative;
 9. adaptation: a squeezed merchant cuts quality and with it unit cost; optional entry into
    free slots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rules.effects import EFFECTS
from rules.rulebook import EffectCallIR, Rulebook, RulebookSet, RuleIR
from simulator.aggregates import DayFlows, Samples, aggregate, empty_series
from simulator.draws import APPEAL_STREAM, MerchantLanes
from simulator.population import (
    DAY,
    REJECTED,
    U_ADAPT,
    U_CLAIMS,
    U_ORDERS,
    U_PROMPT,
    U_REFUND,
    U_TOGGLE,
    UPHELD,
    Calendar,
    Layout,
    appeal_draws,
    day_draws,
    initial_state,
    offset,
    position_weights,
    web_start,
)
from simulator.scenario import Scenario

#: Weight of today in the moving average of the burden ratio that margins are read with.
BURDEN_MEMORY = 0.1

Scope = dict[str, dict[str, Any]]


class PyRules:
    """One rulebook evaluated with the Python evaluator; first matching rule wins."""

    def __init__(self, rulebook: Rulebook | None):
        self.rulebook = rulebook
        self.by_type: dict[str, list[RuleIR]] = {}
        if rulebook is not None:
            for rule in rulebook.rules:
                for t in rule.on:
                    self.by_type.setdefault(t, []).append(rule)

    def decide(self, event_type: str, scope: Scope) -> RuleIR | None:
        for rule in self.by_type.get(event_type, ()):
            if rule.when.evaluate(scope) is True:
                return rule
        return None

    @staticmethod
    def evaluate(calls: tuple[EffectCallIR, ...], scope: Scope) -> list[tuple[str, dict]]:
        """Effects with their arguments, all evaluated on one snapshot of the scope."""
        out = []
        for call in calls:
            args = dict(call.literals)
            for name, expr in call.expressions.items():
                args[name] = expr.evaluate(scope)
            out.append((call.name, args))
        return out

    @staticmethod
    def deadline(rule: RuleIR, scope: Scope) -> list[tuple[str, dict]] | None:
        """The deadline's effects if its `when` holds at the due time, else None."""
        assert rule.deadline is not None
        when = rule.deadline.when
        if when is not None and when.evaluate(scope) is not True:
            return None
        return PyRules.evaluate(rule.deadline.then, scope)


def refund_burden(args: Mapping[str, Any], order: Mapping[str, Any]) -> float:
    """Merchant's loss on one granted claim, by `rules.effects` semantics."""
    burdens, _ = EFFECTS["grant_refund"].burden(args, {"order": order})
    return sum(b.amount for b in burdens if b.party == "merchant")


class ReferenceReplication:
    """One replication of the daily model, merchant by merchant."""

    def __init__(self, rulebook_set: RulebookSet, scenario: Scenario,
                 seed: np.random.SeedSequence):
        self.scenario = scenario
        self.m = scenario.model
        self.rng = np.random.default_rng(seed)
        self.lanes = MerchantLanes(seed)
        self.appeal_lanes = MerchantLanes(seed, APPEAL_STREAM)
        self.layout = Layout.of(scenario)
        st = initial_state(scenario, self.rng)
        web, cap, floor = web_start(scenario, st)
        self.web = [float(x) for x in web]
        self.web_cap = [float(x) for x in cap]
        self.web_floor = [float(x) for x in floor]
        self.books = {f: PyRules(rulebook_set.rulebooks.get(f))
                      for f in ("ranking", "auto_follow", "refund", "appeal", "commission")}
        self.calendar = Calendar(scenario.start, rulebook_set.timezone)
        self.weights = [float(w) for w in position_weights(
            self.layout.slots, self.m.demand.position_bias_exponent.value)]
        self.period: tuple[Any, Any] | None = None
        self.merchants: list[dict[str, Any]] = []
        for i in range(self.layout.n):
            rec = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in st.items()}
            rec.update(
                listing_id=f"L{i}", loss_days=0, prompt_open=False, prompt_target=None,
                prompt_rule=None, prompt_event=None, prompts_seen=0,
                silenced_until=0.0, competitor_price=None, dl_due=math.inf, dl_rule=None,
                dl_event=None, appeals_filed_month=0, appeals_filed_year=0,
                appeals_failed_month=0, appeals_failed_year=0, appeals_refused_month=0,
                appeal_blocked_until=0.0, price0=float(st["price"][i]),
                cash0=float(st["cash"][i]), quality_start=float(st["quality"][i]),
            )
            rec["margin"] = self._margin(rec) if rec["exists"] else 0.0
            self.merchants.append(rec)

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _margin(m: dict[str, Any]) -> float:
        return (m["price"] - m["unit_cost"] - m["shipping"]) / m["price"] - m["burden_ema"]

    @staticmethod
    def _merchant_ns(m: dict[str, Any]) -> dict[str, Any]:
        return {
            "size_tier": ("small", "medium", "large")[m["tier"]],
            "auto_follow_enrolled": m["enrolled"],
            "appeals_filed_month": m["appeals_filed_month"],
            "appeals_filed_year": m["appeals_filed_year"],
            "appeals_failed_month": m["appeals_failed_month"],
            "appeals_failed_year": m["appeals_failed_year"],
            "appeals_refused_month": m["appeals_refused_month"],
            "appeal_blocked_until": m["appeal_blocked_until"],
        }

    def _listing_ns(self, m: dict[str, Any]) -> dict[str, Any]:
        return {
            "product_group": self.layout.groups[m["group"]],
            "price": m["price"], "unit_cost": m["unit_cost"], "quality": m["quality"],
            "promo_signup_price": m["promo"], "prompt_pending": m["prompt_open"],
            "prompt_target": m["prompt_target"], "prompt_silenced_until": m["silenced_until"],
            "competitor_price": m["competitor_price"],
        }

    def _scope(self, m: dict[str, Any], event: dict[str, Any],
               order: dict[str, Any] | None = None) -> Scope:
        return {"event": event, "merchant": self._merchant_ns(m), "listing": self._listing_ns(m),
                "order": order}

    def _apply_listing(self, m: dict[str, Any], effects: list[tuple[str, dict]], time: float,
                       flows: dict[str, float]) -> None:
        """State changes of auto-follow effects (rules.effects `changes`)."""
        for name, args in effects:
            if name == "prompt_price_change" and args.get("target") is not None:
                m["prompt_open"] = True
                m["prompt_target"] = args["target"]
                m["prompts_seen"] += 1
                flows["prompts"] += 1
            elif name == "set_price" and args.get("price") is not None:
                m["price"] = args["price"]
                m["prompt_open"] = False
                m["prompts_seen"] = 0
                flows["forced_follows"] += 1
            elif name == "silence_prompt" and args.get("duration") is not None:
                m["prompt_open"] = False
                m["silenced_until"] = time + args["duration"]
            elif name == "close_prompt":
                m["prompt_open"] = False
            elif name == "enrol_auto_follow":
                m["enrolled"] = True
            elif name == "unenrol_auto_follow":
                m["enrolled"] = False

    def _cancel(self, m: dict[str, Any], event_type: str) -> None:
        """An event cancels the pending deadlines that wait for it."""
        rule = m["prompt_rule"]
        if rule is not None and event_type in rule.deadline.unless:
            m["prompt_rule"] = None
        if m["dl_rule"] is not None and event_type in m["dl_rule"].deadline.unless:
            m["dl_rule"], m["dl_due"], m["dl_event"] = None, math.inf, None

    # -- the day ----------------------------------------------------------------------------
    def step(self, day: int) -> DayFlows:
        sc = self.m
        lay = self.layout
        T = self.calendar.time(day)
        month, year, next_month, next_year = self.calendar.periods(day)
        if self.period is None or self.period[0] != month:
            for m in self.merchants:
                m["appeals_filed_month"] = m["appeals_failed_month"] = 0
                m["appeals_refused_month"] = 0
        if self.period is None or self.period[1] != year:
            for m in self.merchants:
                m["appeals_filed_year"] = m["appeals_failed_year"] = 0
        self.period = (month, year)
        draws = day_draws(self.rng, self.lanes, lay)
        # Python floats throughout: rules compare with `is True`, as the engine's values are.
        gu, u = draws.group.tolist(), draws.merchant
        n = lay.n
        fl = {k: [0.0] * n for k in ("exposure", "orders", "revenue", "commission", "ads",
                                      "fees", "refund", "below_cost_units", "appeals_attempted",
                                      "appeals_won", "prompts", "forced_follows")}

        # 1. whole-web price
        wp = sc.web_price
        observed = [False] * len(lay.groups)
        for g in range(len(lay.groups)):
            lowest = self.web[g]
            for m in self.merchants[g * lay.slots:(g + 1) * lay.slots]:
                if m["alive"] and m["price"] < lowest:
                    lowest = m["price"]
            old = self.web[g]
            if gu[0][g] < wp.cut_probability.value:
                depth = wp.cut_depth_low.value + (wp.cut_depth_high.value
                                                  - wp.cut_depth_low.value) * gu[1][g]
                self.web[g] = max(self.web_floor[g], lowest * (1.0 - depth))
            else:
                self.web[g] = min(self.web_cap[g], old * (1.0 + wp.rebound.value))
            observed[g] = self.web[g] < old

        # 2. auto-follow
        af, afp = self.books["auto_follow"], sc.auto_follow
        for i, m in enumerate(self.merchants):
            if not m["alive"]:
                continue
            one = {"prompts": 0.0, "forced_follows": 0.0}
            m["prompt_rule"] = None
            if m["dl_due"] <= T:
                rule, ev = m["dl_rule"], m["dl_event"]
                m["dl_rule"], m["dl_due"], m["dl_event"] = None, math.inf, None
                effects = PyRules.deadline(rule, self._scope(m, ev))
                if effects:
                    self._apply_listing(m, effects, T, one)
            g = m["group"]
            if observed[g]:
                m["competitor_price"] = self.web[g]
                ev = {"time": T, "listing_id": m["listing_id"], "competitor_price": self.web[g]}
                scope = self._scope(m, ev)
                rule = af.decide("competitor_price_observed", scope)
                if rule is not None:
                    effects = PyRules.evaluate(rule.then, scope)
                    self._apply_listing(m, effects, T, one)
                    if rule.deadline is not None:
                        after = rule.deadline.after.evaluate(scope)
                        if after is not None and after < DAY:
                            # Resolves today: after the merchant's answer (see below).
                            m["prompt_rule"], m["prompt_event"] = rule, ev
                        elif after is not None:
                            m["dl_rule"], m["dl_due"], m["dl_event"] = rule, T + after, ev
            if m["prompt_open"]:
                k = m["prompts_seen"]
                p_follow = 1.0 - (1.0 - afp.follow_probability.value) * (
                    1.0 - afp.follow_probability_step.value) ** (k - 1)
                r = float(u[U_PROMPT, i])
                if r < p_follow:
                    target = m["prompt_target"]
                    ev = {"time": T, "listing_id": m["listing_id"],
                          "product_group": lay.groups[g], "price": target,
                          "unit_cost": m["unit_cost"], "quality": m["quality"],
                          "promo_signup_price": m["promo"]}
                    self._cancel(m, "listing_updated")
                    scope = self._scope(m, ev)
                    scope["listing"]["previous_price"] = m["price"]
                    scope["listing"]["price"] = target  # facts come before rules
                    m["price"] = target
                    rule = af.decide("listing_updated", scope)
                    if rule is not None:
                        self._apply_listing(m, PyRules.evaluate(rule.then, scope), T, one)
                    m["prompt_open"] = False
                    m["prompts_seen"] = 0
                elif r < p_follow + (1.0 - p_follow) * afp.dismiss_probability.value:
                    self._cancel(m, "prompt_dismissed")
                    ev = {"time": T, "listing_id": m["listing_id"]}
                    scope = self._scope(m, ev)
                    rule = af.decide("prompt_dismissed", scope)
                    if rule is not None:
                        self._apply_listing(m, PyRules.evaluate(rule.then, scope), T, one)
                        if rule.deadline is not None:
                            after = rule.deadline.after.evaluate(scope)
                            if after is not None:
                                m["dl_rule"], m["dl_due"], m["dl_event"] = rule, T + after, ev
                    m["prompt_open"] = False
                else:
                    rule = m["prompt_rule"]
                    if rule is not None:
                        effects = PyRules.deadline(rule, self._scope(m, m["prompt_event"]))
                        if effects:
                            self._apply_listing(m, effects, T, one)
                    m["prompt_open"] = False
            m["prompt_rule"] = None
            # enrolment toggles
            r = float(u[U_TOGGLE, i])
            ev = None
            if not m["enrolled"]:
                if r < afp.accidental_enrol_probability.value:
                    ev = {"time": T, "listing_id": m["listing_id"], "enrolled": True,
                          "steps": 1, "verified": False, "via": "popup"}
            elif (m["margin"] < afp.leave_margin_threshold.value
                  and r < afp.leave_attempt_probability.value):
                verified = r < afp.leave_attempt_probability.value * afp.leave_code_success.value
                ev = {"time": T, "listing_id": m["listing_id"], "enrolled": False,
                      "steps": 1, "verified": verified, "via": "settings"}
            if ev is not None:
                scope = self._scope(m, ev)
                rule = af.decide("auto_follow_toggled", scope)
                if rule is not None:
                    self._apply_listing(m, PyRules.evaluate(rule.then, scope), T, one)
            fl["prompts"][i] = one["prompts"]
            fl["forced_follows"][i] = one["forced_follows"]

        # 3. repricing outside auto-follow
        ad = sc.adaptation
        for m in self.merchants:
            if m["alive"] and not m["enrolled"] and m["margin"] < ad.reprice_below.value:
                target = (m["unit_cost"] + m["shipping"]) / (
                    1.0 - ad.reprice_to.value - m["burden_ema"])
                if target > m["price"]:
                    m["price"] = target
                    self._cancel(m, "listing_updated")

        # 4. ranking and exposure
        rk = self.books["ranking"]
        score = [0.0] * n
        channel = [0.0] * n
        for i, m in enumerate(self.merchants):
            if not m["alive"]:
                continue
            ev = {"time": T, "listing_id": m["listing_id"], "product_group": lay.groups[m["group"]],
                  "price": m["price"], "unit_cost": m["unit_cost"], "quality": m["quality"],
                  "promo_signup_price": m["promo"]}
            scope = self._scope(m, ev)
            rule = rk.decide("listing_updated", scope)
            if rule is None:
                continue
            for name, args in PyRules.evaluate(rule.then, scope):
                if name == "assign_ranking_score" and args.get("score") is not None:
                    score[i] = args["score"]
                elif name == "admit_to_channel" and args.get("impressions") is not None:
                    channel[i] = args["impressions"]
        for g, gr in enumerate(sc.groups):
            idx = [i for i in range(g * lay.slots, (g + 1) * lay.slots)
                   if self.merchants[i]["alive"]]
            idx.sort(key=lambda i: -score[i])  # stable: ties keep slot order
            w = {i: self.weights[rank] * self.merchants[i]["scale"] for rank, i in enumerate(idx)}
            total = sum(w.values())
            admitted = [i for i in idx if channel[i] > 0]
            for i in idx:
                e = gr.daily_impressions.value * w[i] / total
                if channel[i] > 0:
                    e += channel[i] * gr.channel_impressions_share.value / len(admitted)
                fl["exposure"][i] = e

        # 5. demand, commission, ads
        d, cm = sc.demand, self.books["commission"]
        for i, m in enumerate(self.merchants):
            if not m["alive"]:
                continue
            ad_clicks = sc.ads.budget_share.value * m["last_revenue"] / sc.ads.cost_per_click.value
            conv = d.conversion.value * m["quality"] ** d.quality_conversion_elasticity.value
            lam = (fl["exposure"][i] * d.click_through_rate.value + ad_clicks) * conv
            orders = math.floor(lam + float(u[U_ORDERS, i]))
            fl["orders"][i] = orders
            fl["revenue"][i] = orders * m["price"]
            if m["price"] < m["unit_cost"]:
                fl["below_cost_units"][i] = orders
            order = self._order(m)
            for etype, ev, times in (
                ("order_placed", {"time": T, "order_id": f"O{i}", "listing_id": m["listing_id"],
                                  "quantity": 1, "amount": m["price"],
                                  "shipping_cost": m["shipping"]}, orders),
                ("ad_click_charged", {"time": T, "listing_id": m["listing_id"],
                                      "clicks": ad_clicks}, 1),
            ):
                scope = self._scope(m, ev, order)
                rule = cm.decide(etype, scope)
                if rule is None:
                    continue
                for name, args in PyRules.evaluate(rule.then, scope):
                    if name == "charge_fee" and args.get("amount") is not None:
                        cat = {"commission": "commission", "ad_click": "ads"}.get(
                            args.get("kind"), "fees")
                        fl[cat][i] += args["amount"] * times

        # 6. refunds, 7. appeals
        wrongful = [0] * n
        wrongful_burden = [0.0] * n
        for i, m in enumerate(self.merchants):
            if m["alive"] and fl["orders"][i] > 0:
                wrongful[i], wrongful_burden[i] = self._refunds(i, m, T, u, fl)
        want = [0] * n
        for i, m in enumerate(self.merchants):
            if m["alive"] and wrongful[i] > 0:
                want[i] = math.floor(wrongful[i] * sc.appeals.propensity.value
                                     + float(offset(u[U_REFUND, i], 7)))
        active = [i for i in range(n) if want[i] > 0]
        per_day = sc.appeals.max_per_day.value
        au = appeal_draws(self.appeal_lanes, len(active), per_day)
        for j, i in enumerate(active):
            m = self.merchants[i]
            for a in range(min(want[i], per_day)):
                won = self._appeal(m, T, float(au[a, j]), next_month, next_year)
                fl["appeals_attempted"][i] += 1
                if won:
                    fl["appeals_won"][i] += 1
                    fl["refund"][i] -= wrongful_burden[i] / wrongful[i]

        # 8. accounts and exit, 9. adaptation and entry
        for i, m in enumerate(self.merchants):
            if not m["alive"]:
                if (m["exists"] and sc.exit.entry_probability.value > 0
                        and float(u[U_ADAPT, i]) < sc.exit.entry_probability.value):
                    self._enter(m)
                continue
            burden = fl["commission"][i] + fl["ads"][i] + fl["fees"][i] + fl["refund"][i]
            revenue = fl["revenue"][i]
            profit = (revenue - fl["orders"][i] * (m["unit_cost"] + m["shipping"]) - burden
                      - m["fixed_cost"])
            m["cash"] += profit
            m["loss_days"] = m["loss_days"] + 1 if profit < 0 else 0
            if revenue > 0:
                m["burden_ema"] = ((1.0 - BURDEN_MEMORY) * m["burden_ema"]
                                   + BURDEN_MEMORY * burden / revenue)
            m["last_revenue"] = revenue
            if m["loss_days"] >= sc.exit.loss_days.value or m["cash"] < 0:
                m["alive"] = False
                m["dl_rule"], m["dl_due"], m["dl_event"] = None, math.inf, None
                continue
            m["margin"] = self._margin(m)
            if (m["margin"] < ad.margin_threshold.value and m["quality"] > ad.quality_floor.value
                    and float(u[U_ADAPT, i]) < ad.probability.value):
                m["quality"] = max(ad.quality_floor.value, m["quality"] - ad.quality_step.value)
                m["unit_cost"] = m["full_cost"] * (1.0 - ad.cost_share_of_quality.value
                                                   * (1.0 - m["quality"]))
                m["margin"] = self._margin(m)
        return DayFlows(**{k: np.array(v, dtype=np.float64) for k, v in fl.items()})

    def _order(self, m: dict[str, Any]) -> dict[str, Any]:
        return {"listing_id": m["listing_id"], "amount": m["price"], "quantity": 1,
                "shipping_cost": m["shipping"], "product_cost": m["unit_cost"], "shipped": True}

    def _refunds(self, i: int, m: dict[str, Any], T: float, u: np.ndarray,
                 fl: dict[str, list[float]]) -> tuple[int, float]:
        """Route one merchant's claims of the day; returns (wrongful grants, their burden)."""
        sc = self.m
        rf = sc.refunds
        book = self.books["refund"]
        orders = int(fl["orders"][i])
        rate = rf.claim_rate.value * (1.0 + rf.quality_complaint_elasticity.value
                                      * (1.0 - m["quality"]))
        claims = min(orders, math.floor(orders * rate + float(u[U_CLAIMS, i])))
        ur = float(u[U_REFUND, i])
        lacking = min(claims, math.floor(claims * rf.lacking_evidence_share.value + ur))
        counts = {True: claims - lacking, False: lacking}
        capacity = int(m["capacity"])
        wrongful, wrongful_burden, burden = 0, 0.0, 0.0
        # Claims of one class on one day are interchangeable: one evaluation, times the count.
        state: dict[bool, dict[str, Any]] = {}
        for c, valid in enumerate((True, False)):
            order = dict(self._order(m), refund_kind="refund_only", refund_amount=m["price"],
                         evidence_valid=valid, refund_status="requested", intervened=False,
                         merchant_decision=None)
            state[valid] = {"order": order, "c": c, "awaiting": 0, "rejected": 0,
                            "review": {"automated": 0, "human": 0}, "rule": None}
        for valid in (True, False):
            s = state[valid]
            count = counts[valid]
            if count == 0:
                continue
            ev = {"time": T, "order_id": f"O{i}", "kind": "refund_only",
                  "evidence_valid": valid, "amount": m["price"]}
            scope = self._scope(m, ev, s["order"])
            rule = book.decide("refund_requested", scope)
            if rule is None:
                continue
            s["rule"] = rule
            b, w = self._route(s, PyRules.evaluate(rule.then, scope), count, valid)
            burden, wrongful, wrongful_burden = burden + b, wrongful + w[0], wrongful_burden + w[1]
            k = s["awaiting"]
            if k:
                s["awaiting"] = 0
                inter = math.floor(k * rf.intervention_share.value + float(
                    offset(ur, 1 + s["c"])))
                s["awaiting_left"] = k - inter
                if inter:
                    b, w = self._intervene(s, m, T, i, inter, valid, "awaiting_merchant")
                    burden, wrongful, wrongful_burden = (burden + b, wrongful + w[0],
                                                         wrongful_burden + w[1])
        # The merchant answers claims without evidence first (to reject them), then the rest.
        for valid, decision in ((False, "reject"), (True, "accept")):
            s = state[valid]
            left = s.get("awaiting_left", 0)
            answered = min(left, capacity)
            capacity -= answered
            if answered:
                ev = {"time": T, "order_id": f"O{i}", "decision": decision}
                order = dict(s["order"], refund_status="awaiting_merchant",
                             merchant_decision=decision)
                scope = self._scope(m, ev, order)
                rule = book.decide("merchant_responded", scope)
                if rule is not None:
                    b, w = self._route(s, PyRules.evaluate(rule.then, scope), answered,
                                       valid)
                    burden, wrongful, wrongful_burden = (burden + b, wrongful + w[0],
                                                         wrongful_burden + w[1])
            s["unanswered"] = left - answered
        for valid in (True, False):
            s = state[valid]
            unanswered = s.get("unanswered", 0)
            rule = s["rule"]
            if unanswered and rule is not None and rule.deadline is not None:
                ev = {"time": T, "order_id": f"O{i}", "kind": "refund_only",
                      "evidence_valid": valid, "amount": m["price"]}
                scope = self._scope(m, ev, dict(s["order"], refund_status="awaiting_merchant"))
                effects = PyRules.deadline(rule, scope)
                if effects:
                    b, w = self._route(s, effects, unanswered, valid, scope["order"])
                    burden, wrongful, wrongful_burden = (burden + b, wrongful + w[0],
                                                         wrongful_burden + w[1])
        for valid in (True, False):
            s = state[valid]
            rejected = s["rejected"]
            if rejected:
                esc = math.floor(rejected * rf.escalation_after_rejection.value
                                 + float(offset(ur, 3 + s["c"])))
                if esc:
                    b, w = self._intervene(s, m, T, i, esc, valid, "rejected")
                    burden, wrongful, wrongful_burden = (burden + b, wrongful + w[0],
                                                         wrongful_burden + w[1])
        review_args = {"payer": "merchant", "with_return": rf.review_grants_with_return.value,
                       "recall_fee": 0.0}
        for valid in (True, False):
            s = state[valid]
            granted = s["review"]["human"] if valid else 0
            auto = s["review"]["automated"]
            if auto:
                granted += math.floor(auto * rf.automated_review_grant_share.value
                                      + float(offset(ur, 5 + s["c"])))
            if granted:
                per = refund_burden(review_args, s["order"])
                burden += per * granted
                if not valid:
                    wrongful += granted
                    wrongful_burden += per * granted
        fl["refund"][i] = burden
        return wrongful, wrongful_burden

    def _intervene(self, s: dict[str, Any], m: dict[str, Any], T: float, i: int, count: int,
                   valid: bool, status: str) -> tuple[float, tuple[int, float]]:
        ev = {"time": T, "order_id": f"O{i}", "requested_by": "buyer"}
        order = dict(s["order"], refund_status=status, intervened=True)
        scope = self._scope(m, ev, order)
        rule = self.books["refund"].decide("platform_intervened", scope)
        if rule is None:
            return 0.0, (0, 0.0)
        return self._route(s, PyRules.evaluate(rule.then, scope), count, valid, order,
                           final=True)

    @staticmethod
    def _route(s: dict[str, Any], effects: list[tuple[str, dict]], count: int, valid: bool,
               order: dict[str, Any] | None = None, final: bool = False
               ) -> tuple[float, tuple[int, float]]:
        """Book `count` claims through these effects; returns (burden, (wrongful, burden))."""
        order = order if order is not None else s["order"]
        burden, wrongful, wrongful_burden = 0.0, 0, 0.0
        for name, args in effects:
            if name == "grant_refund":
                per = refund_burden(args, order) * count
                burden += per
                if not valid:
                    wrongful += count
                    wrongful_burden += per
            elif name == "reject_refund" and not final:
                s["rejected"] += count
            elif name == "request_merchant_response":
                s["awaiting"] += count
            elif name == "platform_review":
                s["review"][args.get("review") or "human"] += count
        return burden, (wrongful, wrongful_burden)

    def _appeal(self, m: dict[str, Any], T: float, r: float, next_month: float,
                next_year: float) -> bool:
        """File one appeal; returns whether it was upheld."""
        sc = self.m.appeals
        book = self.books["appeal"]
        human = float(offset(r, 1)) < sc.human_review_request_share.value
        ev = {"time": T, "appeal_id": "A", "order_id": "O", "human_review_requested": human}
        scope = self._scope(m, ev)
        rule = book.decide("appeal_filed", scope)
        if rule is None:
            return False
        review = None
        for name, args in PyRules.evaluate(rule.then, scope):
            if name == "accept_appeal":
                m["appeals_filed_month"] += 1
                m["appeals_filed_year"] += 1
                review = args.get("review") or "automated"
            elif name == "refuse_appeal":
                m["appeals_refused_month"] += 1
        if review is None:
            return False
        success = sc.human_success.value if review == "human" else sc.automated_success.value
        upheld = r < success
        if not upheld:
            m["appeals_failed_month"] += 1
            m["appeals_failed_year"] += 1
        ev = {"time": T, "appeal_id": "A", "outcome": UPHELD if upheld else REJECTED,
              "reviewer": review}
        scope = self._scope(m, ev)
        rule = book.decide("appeal_decided", scope)
        if rule is not None:
            for name, args in PyRules.evaluate(rule.then, scope):
                if name == "block_appeals" and args.get("scope") in ("month", "year"):
                    until = next_month if args["scope"] == "month" else next_year
                    m["appeal_blocked_until"] = max(m["appeal_blocked_until"], until)
        return upheld

    def _enter(self, m: dict[str, Any]) -> None:
        """A new seller like the one that left takes the free slot, at the starting values."""
        m.update(alive=True, cash=m["cash0"], price=m["price0"], quality=m["quality_start"],
                 enrolled=False, loss_days=0, prompts_seen=0, silenced_until=0.0,
                 burden_ema=self.m.population.initial_burden_ratio.value)
        ad = self.m.adaptation
        m["unit_cost"] = m["full_cost"] * (1.0 - ad.cost_share_of_quality.value
                                           * (1.0 - m["quality"]))
        m["margin"] = self._margin(m)

    def arrays(self) -> dict[str, np.ndarray]:
        """The state as arrays, for aggregation and for comparison with the model."""
        keys = ("alive", "exists", "tier", "price", "price0", "unit_cost", "quality", "margin",
                "cash",
                "enrolled", "loss_days", "burden_ema", "appeals_filed_month",
                "appeals_failed_month", "appeals_failed_year", "appeal_blocked_until",
                "silenced_until", "prompts_seen")
        out = {k: np.array([m[k] for m in self.merchants]) for k in keys}
        out["tier"] = out["tier"].astype(np.int8)
        return out


def reference_replications(rulebook_set: RulebookSet, scenario: Scenario, days: int, seed: int,
                           indices: Sequence[int]) -> dict[str, np.ndarray]:
    """The Projection series of replications `indices`, computed merchant by merchant.

    Same seeds and aggregation as `simulator.run.run_replications`, so on a small population the
    two agree to rounding; it is the benchmark's baseline.
    """
    from simulator.run import replication_seed

    indices = list(indices)
    out = empty_series(len(indices), days)
    size = scenario.model.output.percentile_sample.value
    for k, index in enumerate(indices):
        rep = ReferenceReplication(rulebook_set, scenario, replication_seed(seed, index))
        start = rep.arrays()
        samples = Samples.of(start["tier"], start["exists"], size)
        for day in range(days):
            flows = rep.step(day)
            aggregate(out, k, day, rep.arrays(), flows, len(rep.layout.groups), samples)
    return out
