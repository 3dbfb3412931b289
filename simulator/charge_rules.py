"""The commission rulebook's fees on the day's orders and ad clicks, in one compiled pass.

Why: each day every merchant's orders and ad clicks are charged by the commission rulebook
(`Model._demand`). Through the numpy target that is two decisions over every merchant (the
orders' kept from day to day for the merchants whose price did not change, the clicks' made
afresh), each fee's amount evaluated as a column and added to the day's flows by a pass of
its own (`kernels.charge`): `_demand` took 1.9-2.3 ms a day at 200,000 merchants, for a
comparison and a product or two per merchant, and takes 1.0-1.2 with this pass
(bench/RESULTS.md). Here the rules'
conditions and the fees' amounts are `FixedProgram`s (`simulator.rule_fields`), the fees
themselves a table the kernel is compiled for (`_book_fees`), and `charge_day` takes each
merchant's first order rule and first click rule and adds their fees to the flows.

`CompiledCharges.of` says None (and the numpy path decides) unless every field the rules
read is a float array over every merchant (a state array, the day's ad clicks) or a number
that every row shares (the event's time, an order's quantity), and they read at least one
such array; every fee's kind is a literal and its amount a number; no text is compared; and
the numba target compiles the rules within `fixed_programs.MAX_OPS`.

The same bits as the numpy path (tests compare whole runs): a merchant's fees are added in
the order the numpy path adds them (its order rule's fees in the rule's order, then its
click rule's), each as ``flow + amount x times`` (the orders, or 1.0 for a click) where the
merchant is alive and the amount known, ``flow + 0.0`` elsewhere, on every merchant and for
every fee. The numpy path adds that 0.0 only for the rules that fired somewhere that day,
and on the padding slots between the blocks, which this pass leaves alone. The two agree
because the flows hold +0.0 before the day's fees (`Model._new_flows`, or zeroed to +0.0 by
`simulator.aggregates`; no stage before charges them), and a sum that starts at +0.0 is
never -0.0: adding 0.0 to it changes nothing. The numba target's one difference applies
(`rules.expression.numba_target`, "Semantics"): a NaN computed from infinities is unknown
here and a known NaN to numpy, which a `not` or a `!=` can then tell apart; the prices,
costs and clicks the rules read are finite in the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numba import njit, types
from numba.core.errors import TypingError
from numba.core.typing import signature
from numba.extending import intrinsic

from rules.expression.nodes import Const, Node
from simulator.fixed import Fixed, FixedType
from simulator.fixed_programs import FixedProgram, first_rule_reading, values_reading
from simulator.kernels import _OPTIONS, _kernel
from simulator.rule_fields import FieldSources, fixed_rules, number_argument, read_field

#: The event types the pass decides, in the order their fees are added (an order's fee
#: times the merchant's orders, a click's once: the clicks are in its amount).
EVENT_TYPES = ("order_placed", "ad_click_charged")
#: The flows fees go to (`charge_day`'s last three arguments, in this order).
FLOWS = ("commission", "ads", "fees")
#: The flow of a fee of each kind (`charge_fee`'s `kind`), this pass's and the numpy
#: path's (`Model._demand`); any other kind is a fee.
FEE_FLOW = {"commission": "commission", "ad_click": "ads"}


def fee_flow(kind: str) -> str:
    """The flow a fee of `kind` goes to."""
    return FEE_FLOW.get(kind, "fees")

_first_rule = first_rule_reading(read_field)
_amounts = values_reading(read_field)


@njit(inline="always", **_OPTIONS)
def _fee(position, rule, a, times, live, flow):  # pragma: no cover - compiled
    """The flow with the fee a x times added if the merchant's first rule is `rule`, it is
    alive and a is known, else with 0.0 added (as `kernels.charge` adds it)."""
    add = a * times  # (computed on every row: a select, not a branch, picks it)
    hit = (position == rule) & live & (a == a)
    return flow + (add if hit else 0.0)


@intrinsic
def _book_fees(typingctx: Any, table: Any, p: Any, q: Any, order_values: Any,
               click_values: Any, times: Any, live: Any, c: Any, d: Any, f: Any) -> Any:
    """(c, d, f): the commission, ads and fees with every fee of `table` (a `Fixed` of
    (event, rule, amount, flow): event 0 an order rule's fee, times `times`, whose rule is
    compared with p and amount read from `order_values`; 1 a click rule's, once, with q and
    `click_values`) added by `_fee`, in the table's order: unrolled, without a branch."""
    if not isinstance(table, FixedType):
        raise TypingError(f"_book_fees: a Fixed table expected, got {table}")
    f64 = types.float64
    kind = types.UniTuple(f64, 3)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        _, p_, q_, ov, cv, times_, live_, *flows = args
        one = context.get_constant(f64, 1.0)
        for event, rule, amount, flow in table.values:
            position, values = (p_, ov) if event == 0 else (q_, cv)
            flows[flow] = context.compile_internal(
                builder, _fee.py_func,
                signature(f64, types.int64, types.int64, f64, f64, types.boolean, f64),
                [position, context.get_constant(types.int64, rule),
                 builder.extract_value(values, amount), times_ if event == 0 else one,
                 live_, flows[flow]])
        return context.make_tuple(builder, kind, flows)

    return signature(kind, table, p, q, order_values, click_values, times, live, c, d,
                     f), codegen


@_kernel
def charge_day(starts, stops, alive, orders, order_rules, order_amounts, click_rules,
               click_amounts, table, arrays, constants, commission, ads,
               fees):  # pragma: no cover - compiled
    """The fees of the merchants in the blocks [starts[b], stops[b]) (`alive`: bool): each
    merchant's first order rule (`order_rules`) and first click rule (`click_rules`), the
    fees' amounts (`order_amounts`, `click_amounts`), each fee of `table` added to its flow
    where it applies (`_book_fees`). Fields are read by `read_field` from `arrays` and
    `constants`.

    Every row is computed and stored, without a branch on the merchant: a fee that does
    not apply adds 0.0, as the numpy path's pass adds it (`kernels.charge`). (LLVM still
    runs the loop a merchant at a time, 3-6 ns each. A first version that handed the flows
    to a helper took twenty times as long: numba counted references to them on every
    merchant.)"""
    live = alive.view(np.uint8)
    for b in range(starts.shape[0]):
        for i in range(np.uint64(starts[b]), np.uint64(stops[b])):
            env = (i, arrays, constants)
            c, d, f = _book_fees(table, _first_rule(order_rules, env),
                                 _first_rule(click_rules, env), _amounts(order_amounts, env),
                                 _amounts(click_amounts, env), orders[i], live[i] != 0,
                                 commission[i], ads[i], fees[i])
            commission[i] = c
            ads[i] = d
            fees[i] = f


class CompiledCharges:
    """The commission rulebook's `order_placed` and `ad_click_charged` rules prepared for
    `charge_day`, and where each field is read."""

    def __init__(self, programs: Sequence[FixedProgram], table: Fixed, sources: FieldSources):
        #: The order rules' conditions and amounts, then the click rules'.
        self.programs = tuple(programs)
        #: Each fee: (event, rule, amount, flow), in the order the numpy path adds them.
        self.table = table
        self.sources = sources
        self.arrays = tuple(sources.arrays)

    @classmethod
    def of(cls, book: Any, scopes: Mapping[str, Mapping[str, Mapping[str, Any]]]
           ) -> CompiledCharges | None:
        """For the commission rulebook `book` and each event type's scope (`scopes`, by
        `EVENT_TYPES`: the event's fields and the order's, merchant's and listing's, each an
        array over every merchant or one value); None when the rules read or book anything
        `charge_day` does not (see the module doc)."""
        rulebook = getattr(book, "rulebook", None)
        if rulebook is None:
            return None
        sources = FieldSources()
        programs: list[FixedProgram] = []
        table: list[tuple[int, int, int, int]] = []
        for event, etype in enumerate(EVENT_TYPES):
            rules = [rulebook.rule(rid) for rid in book.rules_for(etype)]
            amounts: list[Node] = []
            for position, rule in enumerate(rules):
                for call in rule.then:
                    if call.name != "charge_fee":
                        continue
                    if "kind" in call.expressions:
                        return None
                    kind = call.literals.get("kind", "fees")
                    node = number_argument(call, "amount")
                    if node is None or not isinstance(kind, str):
                        return None
                    table.append((event, position, len(amounts), FLOWS.index(fee_flow(kind))))
                    amounts.append(node)
            # (no rule, or no fee: a condition that never holds, an amount never read, so
            # that each program has a value to give)
            pair = fixed_rules([r.when.node for r in rules] or [Const(0.0)],
                               amounts or [Const(0.0)],
                               lambda dotted, e=etype: sources.tag(dotted, scopes[e], e))
            if pair is None:
                return None
            programs += pair
        if not sources.arrays:  # (rules that read no merchant's field: nothing to gain)
            return None
        return cls(programs, Fixed(tuple(table)), sources)

    def charge(self, starts: np.ndarray, stops: np.ndarray, alive: np.ndarray,
               orders: np.ndarray, scopes: Mapping[str, Mapping[str, Mapping[str, Any]]],
               flows: Sequence[np.ndarray]) -> None:
        """Add the day's fees of the live merchants in the blocks to `flows` (`FLOWS`'
        order), the shared numbers read from today's `scopes`."""
        order_rules, order_amounts, click_rules, click_amounts = self.programs
        charge_day(starts, stops, alive, orders, order_rules.fixed, order_amounts.fixed,
                   click_rules.fixed, click_amounts.fixed, self.table, self.arrays,
                   self.sources.values(scopes), *flows)
