"""The daily model, vectorised: whole merchant populations per step, driven by compiled rulebooks.

This is `simulator.reference` (read its docstring for the day's steps) written over numpy arrays:
every rule decision comes from the rulebook's vectorised compile target
(`rules.targets.vectorised`) evaluated on event-shaped columnar scopes, never from rules written
here. Merchants' claims, orders and appeals of one day are interchangeable within a merchant, so
each event shape is evaluated once per merchant and its effects multiplied by the count; only
appeals, which change the counters the next appeal reads, go round by round (at most
``appeals.max_per_day`` rounds, each over the merchants that still have one to file).

State is flat arrays over (replication x product group x seller slot), replication-major, in the
scenario's float dtype (float32 by default: prices, costs, cash and quality need ~7 digits);
event times and deadlines stay float64 (epoch seconds), counts are integers. Each replication's
random numbers come from its own Generator in the order `simulator.population` documents, so a
replication gives the same numbers whether it runs alone or beside others.

Rule arithmetic runs in float64 whatever the state dtype (the vectorised target's numbers are
float64). In float32 mode ranking scores are compared at float32 precision (see
`Model._position_weight`); in float64 mode every step matches the reference to rounding.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rules.rulebook import RulebookSet
from rules.targets.vectorised import VectorisedRulebook, compile_set
from simulator.aggregates import DayFlows
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
from simulator.reference import BURDEN_MEMORY
from simulator.scenario import TIERS, Scenario

FAMILIES = ("ranking", "auto_follow", "refund", "appeal", "commission")
TIER_NAMES = np.array(TIERS)

Scope = dict[str, Any]


class _View(Mapping[str, Any]):
    """A namespace for the merchants at `idx`, read lazily: a rule that never asks for a field
    costs nothing. Full-population arrays (length n) are read at `idx`; arrays already of the
    subset's length and scalars are passed through."""

    def __init__(self, fields: dict[str, Any], idx: np.ndarray, n: int):
        self.fields = fields
        self.idx = idx
        self.n = n

    def __getitem__(self, key: str) -> Any:
        value = self.fields[key]
        if (isinstance(value, np.ndarray) and value.ndim == 1 and value.shape[0] == self.n
                and self.idx.size != self.n):  # the whole population: no copy needed
            return value[self.idx]
        return value

    def column(self, key: str) -> np.ndarray:
        """The field over the subset as an array (scalars broadcast)."""
        return np.broadcast_to(np.asarray(self[key]), (self.idx.size,))

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)


def _known(a: np.ndarray) -> np.ndarray:
    return ~np.isnan(a) if a.dtype.kind == "f" else np.ones(a.shape, dtype=bool)


class _NoRules:
    """Stands in for a family the set does not have: no rule ever fires."""

    rule_ids: tuple[str, ...] = ()

    def rules_for(self, event_type: str) -> tuple[str, ...]:
        return ()

    def decide(self, event_type: str, scope: Any, n: int) -> _NoDecisions:
        return _NoDecisions(event_type, np.full(n, -1, dtype=np.int32))


class _NoDecisions:
    def __init__(self, event_type: str, rule: np.ndarray):
        self.event_type, self.rule = event_type, rule


class Model:
    """R replications of the daily model, advanced together one day at a time."""

    def __init__(self, rulebook_set: RulebookSet, scenario: Scenario,
                 seeds: Sequence[np.random.SeedSequence], dtype: Any = np.float32):
        self.scenario = scenario
        self.sc = scenario.model
        self.dtype = np.dtype(dtype)
        self.layout = lay = Layout.of(scenario)
        self.R = len(seeds)
        self.n1 = lay.n
        self.G = len(lay.groups)
        self.rngs = [np.random.default_rng(s) for s in seeds]
        states = [initial_state(scenario, rng) for rng in self.rngs]
        webs = [web_start(scenario, st) for st in states]
        self.web = np.concatenate([w[0] for w in webs])
        self.web_cap = np.concatenate([w[1] for w in webs])
        self.web_floor = np.concatenate([w[2] for w in webs])
        cat = {k: np.concatenate([st[k] for st in states]) for k in states[0]}
        f = self.dtype
        floats = ("full_cost", "unit_cost", "shipping", "quality", "quality0", "price", "promo",
                  "cash", "scale", "fixed_cost", "capacity", "burden_ema", "last_revenue")
        s: dict[str, np.ndarray] = {k: cat[k].astype(f) for k in floats}
        s["exists"], s["alive"], s["enrolled"] = cat["exists"], cat["alive"].copy(), cat["enrolled"]
        s["tier"] = cat["tier"]
        n = self.n = self.R * self.n1
        rep = np.repeat(np.arange(self.R), self.n1)
        s["group"] = (rep * self.G + cat["group"]).astype(np.int64)
        s["price0"], s["cash0"] = s["price"].copy(), s["cash"].copy()
        s["loss_days"] = np.zeros(n, dtype=np.int32)
        s["prompt_open"] = np.zeros(n, dtype=bool)
        s["prompt_target"] = np.full(n, np.nan)
        s["prompt_rule"] = np.full(n, -1, dtype=np.int16)
        s["prompt_event_price"] = np.full(n, np.nan)
        s["prompts_seen"] = np.zeros(n, dtype=np.int32)
        s["silenced_until"] = np.zeros(n)
        s["competitor_price"] = np.full(n, np.nan)
        s["dl_due"] = np.full(n, np.inf)
        s["dl_rule"] = np.full(n, -1, dtype=np.int16)
        s["dl_event_time"] = np.full(n, np.nan)
        s["dl_event_price"] = np.full(n, np.nan)
        for k in ("appeals_filed_month", "appeals_filed_year", "appeals_failed_month",
                  "appeals_failed_year", "appeals_refused_month"):
            s[k] = np.zeros(n, dtype=np.int32)
        s["appeal_blocked_until"] = np.zeros(n)
        s["margin"] = np.zeros(n, dtype=f)
        self.s = s
        ex = np.flatnonzero(s["exists"])
        s["margin"][ex] = self._margin(ex)
        self.tier_names = TIER_NAMES[s["tier"]]
        self.group_names = np.array(lay.groups)[cat["group"]]
        compiled = compile_set(rulebook_set)
        self.books: dict[str, Any] = {fam: compiled.get(fam, _NoRules()) for fam in FAMILIES}
        self.calendar = Calendar(scenario.start, rulebook_set.timezone)
        self.weights = position_weights(lay.slots, self.sc.demand.position_bias_exponent.value)
        self._order: np.ndarray | None = None
        self._prev_key: np.ndarray | None = None
        self._prev_weight: np.ndarray | None = None
        self.period: tuple[Any, Any] | None = None
        af = self.books["auto_follow"]
        self._af_cancels = {
            etype: np.array([_cancels(af, rid, etype) for rid in af.rule_ids] + [False])
            for etype in ("listing_updated", "prompt_dismissed")
        }
        self.impressions = np.tile(np.array([g.daily_impressions.value for g in self.sc.groups]),
                                   self.R)
        self.channel_share = np.tile(
            np.array([g.channel_impressions_share.value for g in self.sc.groups]), self.R)

    # -- scopes -----------------------------------------------------------------------------
    def _margin(self, idx: np.ndarray) -> np.ndarray:
        s = self.s
        p = s["price"][idx]
        return (p - s["unit_cost"][idx] - s["shipping"][idx]) / p - s["burden_ema"][idx]

    def _merchant_ns(self, idx: np.ndarray) -> _View:
        s = self.s
        return _View({
            "size_tier": self.tier_names,
            "auto_follow_enrolled": s["enrolled"],
            "appeals_filed_month": s["appeals_filed_month"],
            "appeals_filed_year": s["appeals_filed_year"],
            "appeals_failed_month": s["appeals_failed_month"],
            "appeals_failed_year": s["appeals_failed_year"],
            "appeals_refused_month": s["appeals_refused_month"],
            "appeal_blocked_until": s["appeal_blocked_until"],
        }, idx, self.n)

    def _listing_ns(self, idx: np.ndarray, **override: Any) -> _View:
        s = self.s
        fields: dict[str, Any] = {
            "product_group": self.group_names,
            "price": s["price"], "unit_cost": s["unit_cost"], "quality": s["quality"],
            "promo_signup_price": s["promo"], "prompt_pending": s["prompt_open"],
            "prompt_target": s["prompt_target"], "prompt_silenced_until": s["silenced_until"],
            "competitor_price": s["competitor_price"],
        }
        fields.update(override)
        return _View(fields, idx, self.n)

    def _order_ns(self, idx: np.ndarray, **extra: Any) -> _View:
        s = self.s
        fields: dict[str, Any] = {
            "amount": s["price"], "quantity": 1, "shipping_cost": s["shipping"],
            "product_cost": s["unit_cost"], "shipped": True,
        }
        fields.update(extra)
        return _View(fields, idx, self.n)

    def _scope(self, idx: np.ndarray, event: dict[str, Any],
               order: _View | None = None, **listing: Any) -> Scope:
        return {"event": _View(event, idx, self.n), "merchant": self._merchant_ns(idx),
                "listing": self._listing_ns(idx, **listing), "order": order}

    # -- effects on state -------------------------------------------------------------------
    def _apply_listing(self, idx: np.ndarray, effects: Sequence[tuple[str, dict[str, Any]]],
                       rows: np.ndarray, time: float, flows: DayFlows) -> None:
        """State changes of auto-follow effects on merchants idx[rows] (rules.effects)."""
        s = self.s
        for name, args in effects:
            if name == "prompt_price_change":
                target = args["target"][rows]
                ok = _known(target)
                j = idx[rows][ok]
                s["prompt_open"][j] = True
                s["prompt_target"][j] = target[ok]
                s["prompts_seen"][j] += 1
                flows.prompts[j] += 1
            elif name == "set_price":
                price = args["price"][rows]
                ok = _known(price)
                j = idx[rows][ok]
                s["price"][j] = price[ok]
                s["prompt_open"][j] = False
                s["prompts_seen"][j] = 0
                flows.forced_follows[j] += 1
            elif name == "silence_prompt":
                duration = args["duration"][rows]
                ok = _known(duration)
                j = idx[rows][ok]
                s["prompt_open"][j] = False
                s["silenced_until"][j] = time + duration[ok]
            elif name == "close_prompt":
                s["prompt_open"][idx[rows]] = False
            elif name == "enrol_auto_follow":
                s["enrolled"][idx[rows]] = True
            elif name == "unenrol_auto_follow":
                s["enrolled"][idx[rows]] = False

    @staticmethod
    def _fired_effects(book: Any, decisions: Any) -> Iterator[tuple[str, np.ndarray,
                                                                    list[tuple[str, dict]]]]:
        """(rule id, rows it decided, its effects as (name, args)) for each rule that fired."""
        for rid in book.rules_for(decisions.event_type):
            mask = decisions.fired(rid)
            if mask.any():
                yield rid, mask, [(e.name, e.args) for e in decisions.effects(rid)]

    def _decide_apply(self, book: Any, etype: str, idx: np.ndarray, scope: Scope, time: float,
                      flows: DayFlows) -> Any:
        dec = book.decide(etype, scope, idx.size)
        for _rid, mask, effects in self._fired_effects(book, dec):
            self._apply_listing(idx, effects, mask, time, flows)
        return dec

    def _cancel(self, idx: np.ndarray, etype: str) -> None:
        """An event cancels the pending deadlines that wait for it."""
        s = self.s
        table = self._af_cancels[etype]
        hit = table[s["prompt_rule"][idx]]
        s["prompt_rule"][idx[hit]] = -1
        hit = table[s["dl_rule"][idx]]
        j = idx[hit]
        s["dl_rule"][j], s["dl_due"][j], s["dl_event_time"][j] = -1, np.inf, np.nan
        s["dl_event_price"][j] = np.nan

    # -- the day ----------------------------------------------------------------------------
    def step(self, day: int) -> DayFlows:
        sc, s, lay = self.sc, self.s, self.layout
        n, f = self.n, self.dtype
        T = self.calendar.time(day)
        month, year, next_month, next_year = self.calendar.periods(day)
        if self.period is None or self.period[0] != month:
            for k in ("appeals_filed_month", "appeals_failed_month", "appeals_refused_month"):
                s[k][:] = 0
        if self.period is None or self.period[1] != year:
            s["appeals_filed_year"][:] = 0
            s["appeals_failed_year"][:] = 0
        self.period = (month, year)
        draws = [day_draws(rng, lay) for rng in self.rngs]
        gu = np.concatenate([d.group for d in draws], axis=1)
        u = np.concatenate([d.merchant for d in draws], axis=1)
        fl = DayFlows(**{k: np.zeros(n, dtype=np.float64) for k in DayFlows.__dataclass_fields__})
        alive = s["alive"]
        group = s["group"]

        # 1. whole-web price
        wp = sc.web_price
        price_or_inf = np.where(alive, s["price"].astype(np.float64), np.inf)
        lowest = np.minimum(self.web, price_or_inf.reshape(-1, lay.slots).min(axis=1))
        old = self.web.copy()
        cut = gu[0] < wp.cut_probability.value
        depth = wp.cut_depth_low.value + (wp.cut_depth_high.value - wp.cut_depth_low.value) * gu[1]
        self.web = np.where(cut, np.maximum(self.web_floor, lowest * (1.0 - depth)),
                            np.minimum(self.web_cap, old * (1.0 + wp.rebound.value)))
        observed = self.web < old

        # 2. auto-follow
        af, afp = self.books["auto_follow"], sc.auto_follow
        s["prompt_rule"][:] = -1
        due = np.flatnonzero(alive & (s["dl_due"] <= T))
        if due.size:
            rules = s["dl_rule"][due]
            ev_time, ev_price = s["dl_event_time"][due], s["dl_event_price"][due]
            s["dl_rule"][due], s["dl_due"][due] = -1, np.inf
            s["dl_event_time"][due], s["dl_event_price"][due] = np.nan, np.nan
            for pos in np.unique(rules):
                rows = rules == pos
                sub = due[rows]
                rid = af.rule_ids[pos]
                scope = self._scope(sub, {"time": ev_time[rows], "competitor_price":
                                          ev_price[rows], "listing_id": "L"})
                when = af.deadline_when(rid, scope, sub.size)
                effects = [(e.name, e.args) for e in af.deadline_effects(rid, scope, sub.size)]
                self._apply_listing(sub, effects, when, T, fl)
        obs = np.flatnonzero(alive & observed[group])
        if obs.size:
            comp = self.web[group[obs]]
            s["competitor_price"][obs] = comp
            scope = self._scope(obs, {"time": T, "listing_id": "L", "competitor_price": comp})
            dec = af.decide("competitor_price_observed", scope, obs.size)
            for rid, mask, effects in self._fired_effects(af, dec):
                self._apply_listing(obs, effects, mask, T, fl)
                if af.rulebook.rule(rid).deadline is None:
                    continue
                after = af.deadline_after(rid, scope, obs.size)
                pos = af.rule_ids.index(rid)
                today = mask & (after < DAY)
                s["prompt_rule"][obs[today]] = pos
                s["prompt_event_price"][obs[today]] = comp[today]
                later = mask & (after >= DAY)
                j = obs[later]
                s["dl_rule"][j], s["dl_due"][j] = pos, T + after[later]
                s["dl_event_time"][j], s["dl_event_price"][j] = T, comp[later]
        open_ = np.flatnonzero(alive & s["prompt_open"])
        if open_.size:
            k = s["prompts_seen"][open_].astype(np.float64)
            p = 1.0 - (1.0 - afp.follow_probability.value) * (
                1.0 - afp.follow_probability_step.value) ** (k - 1.0)
            r = u[U_PROMPT, open_]
            follow = r < p
            dismiss = ~follow & (r < p + (1.0 - p) * afp.dismiss_probability.value)
            ignore = ~follow & ~dismiss
            fi = open_[follow]
            if fi.size:
                target = s["prompt_target"][fi]
                self._cancel(fi, "listing_updated")
                old_price = s["price"][fi].copy()
                s["price"][fi] = target
                event = {"time": T, "listing_id": "L", "product_group": self.group_names,
                         "price": s["price"], "unit_cost": s["unit_cost"],
                         "quality": s["quality"], "promo_signup_price": s["promo"]}
                scope = self._scope(fi, event, previous_price=old_price)
                self._decide_apply(af, "listing_updated", fi, scope, T, fl)
                s["prompt_open"][fi] = False
                s["prompts_seen"][fi] = 0
            di = open_[dismiss]
            if di.size:
                self._cancel(di, "prompt_dismissed")
                scope = self._scope(di, {"time": T, "listing_id": "L"})
                dec = af.decide("prompt_dismissed", scope, di.size)
                for rid, mask, effects in self._fired_effects(af, dec):
                    self._apply_listing(di, effects, mask, T, fl)
                    if af.rulebook.rule(rid).deadline is None:
                        continue
                    after = af.deadline_after(rid, scope, di.size)
                    ok = mask & ~np.isnan(after)
                    j = di[ok]
                    s["dl_rule"][j] = af.rule_ids.index(rid)
                    s["dl_due"][j] = T + after[ok]
                    s["dl_event_time"][j], s["dl_event_price"][j] = T, np.nan
                s["prompt_open"][di] = False
            ig = open_[ignore]
            if ig.size:
                rules = s["prompt_rule"][ig]
                for pos in np.unique(rules[rules >= 0]):
                    rows = rules == pos
                    sub = ig[rows]
                    rid = af.rule_ids[pos]
                    scope = self._scope(sub, {"time": T, "listing_id": "L", "competitor_price":
                                              s["prompt_event_price"][sub]})
                    when = af.deadline_when(rid, scope, sub.size)
                    effects = [(e.name, e.args)
                               for e in af.deadline_effects(rid, scope, sub.size)]
                    self._apply_listing(sub, effects, when, T, fl)
                s["prompt_open"][ig] = False
        s["prompt_rule"][:] = -1
        r = u[U_TOGGLE]
        enrol = np.flatnonzero(alive & ~s["enrolled"]
                               & (r < afp.accidental_enrol_probability.value))
        leave = np.flatnonzero(alive & s["enrolled"]
                               & (s["margin"] < afp.leave_margin_threshold.value)
                               & (r < afp.leave_attempt_probability.value))
        if enrol.size:
            scope = self._scope(enrol, {"time": T, "listing_id": "L", "enrolled": True,
                                        "steps": 1, "verified": False, "via": "popup"})
            self._decide_apply(af, "auto_follow_toggled", enrol, scope, T, fl)
        if leave.size:
            verified = r[leave] < (afp.leave_attempt_probability.value
                                   * afp.leave_code_success.value)
            scope = self._scope(leave, {"time": T, "listing_id": "L", "enrolled": False,
                                        "steps": 1, "verified": verified,
                                        "via": "settings"})
            self._decide_apply(af, "auto_follow_toggled", leave, scope, T, fl)

        # 3. repricing outside auto-follow
        ad = sc.adaptation
        rp = np.flatnonzero(alive & ~s["enrolled"] & (s["margin"] < ad.reprice_below.value))
        if rp.size:
            target = (s["unit_cost"][rp] + s["shipping"][rp]) / (
                1.0 - ad.reprice_to.value - s["burden_ema"][rp])
            up = target > s["price"][rp]
            s["price"][rp[up]] = target[up]
            self._cancel(rp[up], "listing_updated")

        # 4. ranking and exposure
        fl.exposure[:] = self.exposure(T)
        live = _rows(alive)  # maybe everyone: charges are masked to live merchants below
        live_alive = alive[live]

        # 5. demand, commission, ads
        d = sc.demand
        price = s["price"].astype(np.float64)
        ad_clicks = (sc.ads.budget_share.value * s["last_revenue"].astype(np.float64)
                     / sc.ads.cost_per_click.value)
        elasticity = d.quality_conversion_elasticity.value
        quality = s["quality"].astype(np.float64)
        # x ** 1.0 is x exactly; skipping the power saves a slow pass over the population.
        conv = d.conversion.value * (quality if elasticity == 1.0 else quality ** elasticity)
        lam = (fl.exposure * d.click_through_rate.value + ad_clicks) * conv
        orders = np.where(alive, np.floor(lam + u[U_ORDERS]), 0.0)
        fl.orders[:] = orders
        fl.revenue[:] = orders * price
        fl.below_cost_units[:] = np.where(price < s["unit_cost"], orders, 0.0)
        cm = self.books["commission"]
        if live.size:
            for etype, event, times in (
                ("order_placed", {"time": T, "order_id": "O", "listing_id": "L", "quantity": 1,
                                  "amount": s["price"], "shipping_cost": s["shipping"]},
                 orders[live]),
                ("ad_click_charged", {"time": T, "listing_id": "L", "clicks": ad_clicks},
                 1.0),
            ):
                scope = self._scope(live, event, self._order_ns(live, listing_id="L"))
                dec = cm.decide(etype, scope, live.size)
                for _rid, mask, effects in self._fired_effects(cm, dec):
                    for name, args in effects:
                        if name != "charge_fee":
                            continue
                        amount = args["amount"]
                        ok = mask & _known(amount) & live_alive
                        kind_arg = args.get("kind", "fees")
                        one = _constant(kind_arg)
                        if one is not None:  # a literal kind: no per-row text comparison
                            cat = _FEE_CATEGORY.get(str(one), "fees")
                            _add_at(getattr(fl, cat), live, np.where(ok, amount * times, 0.0))
                            continue
                        kind = np.broadcast_to(kind_arg, amount.shape)
                        for cat, sel in (("commission", kind == "commission"),
                                         ("ads", kind == "ad_click"),
                                         ("fees", (kind != "commission") & (kind != "ad_click"))):
                            rows = ok & sel
                            if rows.any():
                                t = times[rows] if isinstance(times, np.ndarray) else times
                                getattr(fl, cat)[live[rows]] += amount[rows] * t

        # 6. refunds, 7. appeals
        wrongful, wrongful_burden = self._refunds(T, u, fl)
        want = np.zeros(n, dtype=np.int64)
        has = alive & (wrongful > 0)
        want[has] = np.floor(wrongful[has] * sc.appeals.propensity.value
                             + offset(u[U_REFUND, has].astype(np.float64), 7)).astype(np.int64)
        self._appeals(want, wrongful, wrongful_burden, T, next_month, next_year, fl)

        # 8. accounts and exit, 9. adaptation and entry
        dead_before = ~alive
        alive = ~dead_before  # a copy: s["alive"] changes below
        entry_p = sc.exit.entry_probability.value
        burden = fl.commission + fl.ads + fl.fees + fl.refund
        unit = s["unit_cost"].astype(np.float64) + s["shipping"]
        profit = fl.revenue - fl.orders * unit - burden - s["fixed_cost"]
        profit[dead_before] = 0.0
        s["cash"] = (s["cash"] + profit).astype(f)
        loss = profit < 0
        s["loss_days"] = np.where(alive, np.where(loss, s["loss_days"] + 1, 0),
                                  s["loss_days"]).astype(np.int32)
        rev = fl.revenue
        sold = rev > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            new_ema = (1.0 - BURDEN_MEMORY) * s["burden_ema"] + BURDEN_MEMORY * burden / rev
        s["burden_ema"] = np.where(sold & alive, new_ema, s["burden_ema"]).astype(f)
        s["last_revenue"] = np.where(alive, rev, s["last_revenue"]).astype(f)
        exits = alive & ((s["loss_days"] >= sc.exit.loss_days.value) | (s["cash"] < 0))
        gone = np.flatnonzero(exits)
        s["alive"][gone] = False
        s["dl_rule"][gone], s["dl_due"][gone] = -1, np.inf
        s["dl_event_time"][gone], s["dl_event_price"][gone] = np.nan, np.nan
        stay = alive & ~exits
        p = s["price"]
        margin = (p - s["unit_cost"] - s["shipping"]) / p - s["burden_ema"]
        s["margin"] = np.where(stay, margin, s["margin"]).astype(f)
        squeezed = np.flatnonzero(stay & (s["margin"] < ad.margin_threshold.value)
                                  & (s["quality"] > ad.quality_floor.value)
                                  & (u[U_ADAPT] < ad.probability.value))
        if squeezed.size:
            q = np.maximum(ad.quality_floor.value,
                           s["quality"][squeezed].astype(np.float64) - ad.quality_step.value)
            s["quality"][squeezed] = q
            s["unit_cost"][squeezed] = s["full_cost"][squeezed].astype(np.float64) * (
                1.0 - ad.cost_share_of_quality.value * (1.0 - q))
            s["margin"][squeezed] = self._margin(squeezed)
        if entry_p > 0:
            new = np.flatnonzero(dead_before & s["exists"] & (u[U_ADAPT] < entry_p))
            if new.size:
                self._enter(new)
        return fl

    def _position_weight(self, score: np.ndarray) -> np.ndarray:
        """Each listing's position weight after ranking its group by score, best first; ties go
        to the lower seller slot (as a stable sort of the slots gives).

        In float64 mode (the reference's precision) this is a stable argsort per group. In
        float32 mode scores are compared at float32 precision and each listing gets one unique
        uint64 key (order-preserving float32 bits, then the slot), so any sort gives the order a
        stable sort would. Groups whose keys did not change since yesterday keep yesterday's
        weights; the others are sorted starting from yesterday's order, which is nearly sorted
        already (a merge sort then only merges the few runs a day's changes make).
        """
        slots = self.layout.slots
        if self.dtype == np.float64:
            order = np.argsort(-score.reshape(-1, slots), axis=1, kind="stable")
            weight = np.empty(order.shape)
            np.put_along_axis(weight, order, self.weights[None, :], axis=1)
            return weight.ravel()
        # + 0.0 turns -0.0 into 0.0, which the float comparison treats as equal.
        key = (-score.astype(np.float32) + np.float32(0.0)).view(np.uint32)
        key = np.where(key >> np.uint32(31), ~key, key | np.uint32(0x80000000))
        key = key.reshape(-1, slots)
        if self._prev_key is None:
            rows = np.arange(key.shape[0])
            weight = np.empty(key.shape)
        else:
            rows = np.flatnonzero((key != self._prev_key).any(axis=1))
            weight = self._prev_weight.copy()
        if rows.size:
            slot = np.arange(slots, dtype=np.uint64)[None, :]
            composite = (key[rows].astype(np.uint64) << np.uint64(32)) | slot
            if self._order is None:
                composite.sort(axis=1)
            else:
                composite = np.take_along_axis(composite, self._order[rows], axis=1)
                composite.sort(axis=1, kind="stable")
            order = (composite & np.uint64(0xFFFFFFFF)).astype(np.intp)
            if self._order is None:
                self._order = order
            else:
                self._order[rows] = order
            part = np.empty(order.shape)
            np.put_along_axis(part, order, self.weights[None, :], axis=1)
            weight[rows] = part
        self._prev_key, self._prev_weight = key, weight
        return weight.ravel()

    def exposure(self, T: float) -> np.ndarray:
        """Impressions of every listing today: ranking rulebook score, rank within the group,
        position weight x store scale over the group's impressions, plus an equal share of the
        group's channel impressions for listings the rulebook admits to a channel."""
        s, lay, n = self.s, self.layout, self.n
        alive = s["alive"]
        rk = self.books["ranking"]
        live = _rows(alive)  # maybe everyone: the dead are masked out below
        score = np.zeros(n)
        channel = np.zeros(n)
        if live.size:
            event = {"time": T, "listing_id": "L", "product_group": self.group_names,
                     "price": s["price"], "unit_cost": s["unit_cost"], "quality": s["quality"],
                     "promo_signup_price": s["promo"]}
            dec = rk.decide("listing_updated", self._scope(live, event), live.size)
            for _rid, mask, effects in self._fired_effects(rk, dec):
                for name, args in effects:
                    if name == "assign_ranking_score":
                        v = args["score"]
                        ok = mask & _known(v)
                        _put(score, live, ok, v)
                    elif name == "admit_to_channel":
                        v = args["impressions"]
                        ok = mask & _known(v)
                        _put(channel, live, ok, v)
        score = np.where(alive, score, -np.inf)
        channel = np.where(alive, channel, 0.0)
        w = self._position_weight(score) * s["scale"]
        w = np.where(alive, w, 0.0)
        total = w.reshape(-1, lay.slots).sum(axis=1)
        rows = (-1, lay.slots)
        with np.errstate(invalid="ignore", divide="ignore"):
            e = (self.impressions[:, None] * w.reshape(rows) / total[:, None]).ravel()
        if channel.any():
            admitted = channel > 0
            n_admitted = np.maximum(admitted.reshape(rows).sum(axis=1), 1)
            extra = (channel.reshape(rows) * self.channel_share[:, None]
                     / n_admitted[:, None]).ravel()
            e = np.where(admitted, e + extra, e)
        return np.where(alive, e, 0.0)


    # -- refunds ----------------------------------------------------------------------------
    def _refund_burden(self, args: Mapping[str, np.ndarray], order: _View,
                       rows: np.ndarray) -> np.ndarray:
        """Merchant's loss per granted claim at `rows` (rules.effects `_refund_burden`)."""
        m = int(rows.size)
        shipped = order.column("shipped").astype(bool)[rows]

        def arg(name: str, default: Any) -> np.ndarray:
            v = args.get(name)
            if v is None:
                return np.full(m, default)
            return np.asarray(v)[rows]

        payer = arg("payer", "merchant")
        with_return = arg("with_return", False)
        if with_return.dtype.kind == "f":
            with_return = np.nan_to_num(with_return) != 0
        with_return = with_return.astype(bool)
        recall = np.nan_to_num(arg("recall_fee", 0.0).astype(np.float64))
        product = order.column("product_cost").astype(np.float64)[rows]
        shipping = order.column("shipping_cost").astype(np.float64)[rows]
        total = (np.where(shipped & ~with_return, product, 0.0) + np.where(shipped, shipping, 0.0)
                 + np.where(shipped, recall, 0.0))
        return np.where((payer == "merchant") & (total > 0), total, 0.0)

    def _route(self, book: Any, dec: Any, count: np.ndarray, valid: bool, order: _View,
               acc: dict[str, np.ndarray], final: bool = False) -> None:
        """Book `count` claims per row through the effects of the rules that decided them."""
        for _rid, mask, effects in self._fired_effects(book, dec):
            self._route_effects(mask, effects, count, valid, order, acc, final)

    def _route_effects(self, mask: np.ndarray, effects: list[tuple[str, dict]],
                       count: np.ndarray, valid: bool, order: _View,
                       acc: dict[str, np.ndarray], final: bool) -> None:
        rows = np.flatnonzero(mask & (count > 0))
        if not rows.size:
            return
        c = count[rows]
        for name, args in effects:
            if name == "grant_refund":
                per = self._refund_burden(args, order, rows) * c
                acc["burden"][rows] += per
                if not valid:
                    acc["wrongful"][rows] += c
                    acc["wrongful_burden"][rows] += per
            elif name == "reject_refund" and not final:
                acc["rejected"][rows] += c
            elif name == "request_merchant_response":
                acc["awaiting"][rows] += c
            elif name == "platform_review":
                review = args.get("review")
                kind = (np.broadcast_to(review, mask.shape)[rows] if review is not None
                        else np.full(rows.size, "human"))
                human = kind != "automated"
                acc["review_human"][rows[human]] += c[human]
                acc["review_auto"][rows[~human]] += c[~human]

    def _refunds(self, T: float, u: np.ndarray, fl: DayFlows) -> tuple[np.ndarray, np.ndarray]:
        s, rf = self.s, self.sc.refunds
        n = self.n
        book = self.books["refund"]
        idx = _rows(s["alive"] & (fl.orders > 0))
        wrongful = np.zeros(n)
        wrongful_burden = np.zeros(n)
        if not idx.size:
            return wrongful, wrongful_burden
        m = idx.size
        orders = fl.orders[idx]
        quality = s["quality"][idx].astype(np.float64)
        rate = rf.claim_rate.value * (1.0 + rf.quality_complaint_elasticity.value
                                      * (1.0 - quality))
        full = idx.size == n
        claims = np.minimum(orders, np.floor(
            orders * rate + (u[U_CLAIMS] if full else u[U_CLAIMS, idx])))
        ur = (u[U_REFUND] if full else u[U_REFUND, idx]).astype(np.float64)
        lacking = np.minimum(claims, np.floor(claims * rf.lacking_evidence_share.value + ur))
        counts = {True: claims - lacking, False: lacking}
        acc = {valid: {k: np.zeros(m) for k in ("burden", "wrongful", "wrongful_burden",
                                                 "rejected", "awaiting", "review_human",
                                                 "review_auto")} for valid in (True, False)}
        total = {"burden": np.zeros(m), "wrongful": np.zeros(m), "wrongful_burden": np.zeros(m)}
        orders_ns = {valid: self._order_ns(idx, listing_id="L", refund_kind="refund_only",
                                           refund_amount=s["price"], evidence_valid=valid,
                                           refund_status="requested", intervened=False,
                                           merchant_decision=None)
                     for valid in (True, False)}
        req_rule: dict[bool, np.ndarray] = {}
        left: dict[bool, np.ndarray] = {}
        price = s["price"]

        def flush(valid: bool) -> None:
            a = acc[valid]
            for k in ("burden", "wrongful", "wrongful_burden"):
                total[k] += a[k]
                a[k][:] = 0.0

        def req_event(valid: bool) -> dict[str, Any]:
            return {"time": T, "order_id": "O", "kind": "refund_only", "evidence_valid": valid,
                    "amount": price}

        for c, valid in enumerate((True, False)):
            order = orders_ns[valid]
            scope = self._scope(idx, req_event(valid), order)
            dec = book.decide("refund_requested", scope, m)
            req_rule[valid] = np.where(counts[valid] > 0, dec.rule, -1)
            self._route(book, dec, counts[valid], valid, order, acc[valid])
            flush(valid)
            k = acc[valid]["awaiting"].copy()
            acc[valid]["awaiting"][:] = 0.0
            inter = np.floor(k * rf.intervention_share.value + offset(ur, 1 + c))
            left[valid] = k - inter
            self._intervene(idx, T, inter, valid, "awaiting_merchant", acc[valid])
            flush(valid)
        capacity = s["capacity"][idx].astype(np.float64)
        unanswered: dict[bool, np.ndarray] = {}
        for valid, decision in ((False, "reject"), (True, "accept")):
            answered = np.minimum(left[valid], capacity)
            capacity = capacity - answered
            order = self._order_ns(idx, listing_id="L", refund_kind="refund_only",
                                   refund_amount=s["price"], evidence_valid=valid,
                                   refund_status="awaiting_merchant", intervened=False,
                                   merchant_decision=decision)
            scope = self._scope(idx, {"time": T, "order_id": "O", "decision": decision}, order)
            dec = book.decide("merchant_responded", scope, m)
            self._route(book, dec, answered, valid, orders_ns[valid], acc[valid])
            flush(valid)
            unanswered[valid] = left[valid] - answered
        for valid in (True, False):
            rules = np.where(unanswered[valid] > 0, req_rule[valid], -1)
            order = self._order_ns(idx, listing_id="L", refund_kind="refund_only",
                                   refund_amount=s["price"], evidence_valid=valid,
                                   refund_status="awaiting_merchant", intervened=False,
                                   merchant_decision=None)
            scope = self._scope(idx, req_event(valid), order)
            for pos in np.unique(rules[rules >= 0]):
                rid = book.rule_ids[pos]
                if book.rulebook.rule(rid).deadline is None:
                    continue
                mask = (rules == pos) & book.deadline_when(rid, scope, m)
                effects = [(e.name, e.args) for e in book.deadline_effects(rid, scope, m)]
                self._route_effects(mask, effects, unanswered[valid], valid, order,
                                    acc[valid], False)
            flush(valid)
        for c, valid in enumerate((True, False)):
            rejected = acc[valid]["rejected"]
            esc = np.floor(rejected * rf.escalation_after_rejection.value + offset(ur, 3 + c))
            self._intervene(idx, T, esc, valid, "rejected", acc[valid])
            flush(valid)
        review_args = {"payer": np.full(m, "merchant"),
                       "with_return": np.full(m, rf.review_grants_with_return.value),
                       "recall_fee": np.zeros(m)}
        allrows = np.arange(m)
        for c, valid in enumerate((True, False)):
            a = acc[valid]
            granted = a["review_human"].copy() if valid else np.zeros(m)
            auto = a["review_auto"]
            granted += np.where(auto > 0, np.floor(auto * rf.automated_review_grant_share.value
                                                   + offset(ur, 5 + c)), 0.0)
            per = self._refund_burden(review_args, orders_ns[valid], allrows) * granted
            total["burden"] += per
            if not valid:
                total["wrongful"] += granted
                total["wrongful_burden"] += per
        fl.refund[idx] = total["burden"]
        wrongful[idx] = total["wrongful"]
        wrongful_burden[idx] = total["wrongful_burden"]
        return wrongful, wrongful_burden

    def _intervene(self, idx: np.ndarray, T: float, count: np.ndarray, valid: bool,
                   status: str, acc: dict[str, np.ndarray]) -> None:
        if not (count > 0).any():
            return
        s = self.s
        order = self._order_ns(idx, listing_id="L", refund_kind="refund_only",
                               refund_amount=s["price"], evidence_valid=valid,
                               refund_status=status, intervened=True, merchant_decision=None)
        scope = self._scope(idx, {"time": T, "order_id": "O", "requested_by": "buyer"}, order)
        book = self.books["refund"]
        dec = book.decide("platform_intervened", scope, idx.size)
        self._route(book, dec, count, valid, order, acc, final=True)

    # -- appeals ----------------------------------------------------------------------------
    def _appeals(self, want: np.ndarray, wrongful: np.ndarray, wrongful_burden: np.ndarray,
                 T: float, next_month: float, next_year: float, fl: DayFlows) -> None:
        sc, s = self.sc.appeals, self.s
        per_day = sc.max_per_day.value
        active = np.flatnonzero(want > 0)
        bounds = np.searchsorted(active, np.arange(self.R + 1) * self.n1)
        au = np.concatenate([appeal_draws(rng, int(bounds[r + 1] - bounds[r]), per_day)
                             for r, rng in enumerate(self.rngs)], axis=1)
        if not active.size:
            return
        book = self.books["appeal"]
        recovered_each = np.zeros(active.size)
        ok = wrongful[active] > 0
        recovered_each[ok] = wrongful_burden[active][ok] / wrongful[active][ok]
        for a in range(per_day):
            rows = np.flatnonzero(want[active] > a)
            if not rows.size:
                break
            sub = active[rows]
            r = au[a, rows].astype(np.float64)
            human = offset(r, 1) < sc.human_review_request_share.value
            scope = self._scope(sub, {"time": T, "appeal_id": "A", "order_id": "O",
                                      "human_review_requested": human})
            dec = book.decide("appeal_filed", scope, sub.size)
            accepted = np.zeros(sub.size, dtype=bool)
            review_human = np.zeros(sub.size, dtype=bool)
            for _rid, mask, effects in self._fired_effects(book, dec):
                for name, args in effects:
                    if name == "accept_appeal":
                        j = sub[mask]
                        s["appeals_filed_month"][j] += 1
                        s["appeals_filed_year"][j] += 1
                        accepted |= mask
                        rv = np.broadcast_to(args.get("review", "automated"), mask.shape)
                        review_human |= mask & (rv == "human")
                    elif name == "refuse_appeal":
                        s["appeals_refused_month"][sub[mask]] += 1
            fl.appeals_attempted[sub] += 1
            success = np.where(review_human, sc.human_success.value, sc.automated_success.value)
            upheld = accepted & (r < success)
            failed = accepted & ~upheld
            s["appeals_failed_month"][sub[failed]] += 1
            s["appeals_failed_year"][sub[failed]] += 1
            fl.appeals_won[sub[upheld]] += 1
            fl.refund[sub[upheld]] -= recovered_each[rows][upheld]
            dj = np.flatnonzero(accepted)
            if not dj.size:
                continue
            dsub = sub[dj]
            outcome = np.where(upheld[dj], UPHELD, REJECTED)
            reviewer = np.where(review_human[dj], "human", "automated")
            scope = self._scope(dsub, {"time": T, "appeal_id": "A",
                                       "outcome": outcome, "reviewer": reviewer})
            dec = book.decide("appeal_decided", scope, dsub.size)
            for _rid, mask, effects in self._fired_effects(book, dec):
                for name, args in effects:
                    if name != "block_appeals":
                        continue
                    span = np.broadcast_to(args.get("scope", ""), mask.shape)
                    until = np.where(span == "month", next_month,
                                     np.where(span == "year", next_year, -np.inf))
                    j = dsub[mask]
                    s["appeal_blocked_until"][j] = np.maximum(s["appeal_blocked_until"][j],
                                                              until[mask])

    def _enter(self, idx: np.ndarray) -> None:
        """New sellers like the ones that left take the free slots, at the starting values."""
        s, ad = self.s, self.sc.adaptation
        s["alive"][idx] = True
        s["cash"][idx] = s["cash0"][idx]
        s["price"][idx] = s["price0"][idx]
        s["quality"][idx] = s["quality0"][idx]
        s["enrolled"][idx] = False
        s["loss_days"][idx] = 0
        s["prompts_seen"][idx] = 0
        s["silenced_until"][idx] = 0.0
        s["burden_ema"][idx] = self.sc.population.initial_burden_ratio.value
        s["unit_cost"][idx] = s["full_cost"][idx].astype(np.float64) * (
            1.0 - ad.cost_share_of_quality.value * (1.0 - s["quality"][idx].astype(np.float64)))
        s["margin"][idx] = self._margin(idx)


def _add_at(target: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    """target[idx] += values, without fancy indexing when idx is the whole population."""
    if idx.size == target.size:
        target += values
    else:
        target[idx] += values


def _put(target: np.ndarray, idx: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """target[idx[rows]] = values[rows], cheaply when idx is the whole population."""
    if idx.size == target.size:
        target[:] = np.where(rows, values, target)
    else:
        target[idx[rows]] = values[rows]


def _rows(mask: np.ndarray) -> np.ndarray:
    """The rows to evaluate: those in `mask`, or every row when most are (callers make the rest
    count for nothing), which spares the gathers of a subset scope."""
    if np.count_nonzero(mask) * 4 > mask.size * 3:
        return np.arange(mask.size)
    return np.flatnonzero(mask)


_FEE_CATEGORY = {"commission": "commission", "ad_click": "ads"}


def _constant(values: Any) -> Any:
    """The single value of a broadcast (stride-0) argument array, else None."""
    a = np.asarray(values)
    if a.ndim == 0:
        return a.item()
    if a.ndim == 1 and a.size and a.strides[0] == 0:
        return a[0].item()
    return None


def _cancels(book: VectorisedRulebook, rule_id: str, event_type: str) -> bool:
    rule = book.rulebook.rule(rule_id)
    return rule.deadline is not None and event_type in rule.deadline.unless
