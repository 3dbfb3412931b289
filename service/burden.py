"""The burden table: what a rulebook set cost each cohort of merchants, and who decided it.

Built from the merchant records in the state store, so the same table comes out of a replay, a
running service or a restart. Cohorts are size tiers: a bounded set, never merchant ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rules.effects import CATEGORIES

COHORT_ORDER = ("small", "medium", "large", "unknown")

#: Counters kept on merchant records (service.apply.count) shown in the table, with labels.
COUNTERS = {
    "refunds_granted_by_timeout": "refunds granted by timeout",
    "refunds_granted_by_merchant": "refunds granted by the merchant",
    "refunds_granted_by_platform": "refunds granted by platform intervention",
    "refunds_rejected_by_merchant": "refunds rejected by the merchant",
    "forced_price_changes": "prices set by auto-follow",
    "below_cost_price_changes": "auto-follow prices below unit cost",
    "flag_below_cost_follow": "follows below unit cost",
    "unenrol_refused": "requests to leave auto-follow refused",
    "appeals_accepted": "appeals heard",
    "appeals_refused_quota": "appeals refused for quota",
    "appeals_refused_blocked": "appeals refused: blocked",
    "appeal_blocks_month": "monthly appeal blocks",
    "appeal_blocks_year": "yearly appeal blocks",
}


@dataclass
class CohortBurden:
    cohort: str
    merchants: int = 0
    gmv: float = 0.0
    merchant: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0.0))
    platform: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0.0))
    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    @property
    def merchant_cost(self) -> float:
        """Money the merchants paid: refunds, commission, ads and other fees (not below-cost)."""
        return sum(v for k, v in self.merchant.items() if k != "below_cost")

    @property
    def cost_over_gmv(self) -> float | None:
        return self.merchant_cost / self.gmv if self.gmv > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cohort": self.cohort,
            "merchants": self.merchants,
            "gmv": round(self.gmv, 2),
            "merchant_burden": {k: round(v, 2) for k, v in self.merchant.items()},
            "platform_burden": {k: round(v, 2) for k, v in self.platform.items()},
            "merchant_cost_over_gmv": None if self.cost_over_gmv is None
            else round(self.cost_over_gmv, 6),
            "counts": {k: int(v) if float(v).is_integer() else round(v, 2)
                       for k, v in self.counts.items()},
        }


def burden_table(merchants: Iterable[dict[str, Any]]) -> list[CohortBurden]:
    rows: dict[str, CohortBurden] = {}
    for m in merchants:
        cohort = m.get("size_tier") or "unknown"
        row = rows.get(cohort)
        if row is None:
            row = rows[cohort] = CohortBurden(cohort)
        row.merchants += 1
        row.gmv += m.get("gmv") or 0.0
        for key, amount in (m.get("_burden") or {}).items():
            party, category = key.split(".", 1)
            target = row.merchant if party == "merchant" else row.platform if party == "platform" \
                else None
            if target is not None:
                target[category] = target.get(category, 0.0) + amount
        for key, n in (m.get("_stats") or {}).items():
            if key in row.counts:
                row.counts[key] += n
    ordered = [rows[c] for c in COHORT_ORDER if c in rows]
    ordered += [rows[c] for c in sorted(rows) if c not in COHORT_ORDER]
    if ordered:
        total = CohortBurden("all")
        for r in ordered:
            total.merchants += r.merchants
            total.gmv += r.gmv
            for k, v in r.merchant.items():
                total.merchant[k] = total.merchant.get(k, 0.0) + v
            for k, v in r.platform.items():
                total.platform[k] = total.platform.get(k, 0.0) + v
            for k, v in r.counts.items():
                total.counts[k] += v
        ordered.append(total)
    return ordered
