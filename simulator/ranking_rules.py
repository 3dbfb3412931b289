"""The ranking rulebook's scores and channels of the listings that changed, in one compiled pass.

Why: each day the listings whose price, cost or quality changed (about 12,000 of 200,000) are
decided again by the ranking rulebook (`Model._rank`). Through the numpy target that is a
gather of every field the rules read, a dozen whole-column passes over the rows, the effects'
arguments evaluated for every rule that fired and written back through masks: about half a
millisecond a day, for a few comparisons and a subtraction per listing. Here the rules'
conditions and the effects' arguments the ranking reads become two programs a kernel is
compiled for (`simulator.fixed_programs`), each listing's fields read where the state keeps
them: one pass, each listing's score and channel written as `Model._rank` writes them.

`CompiledRanking.of` says None (and the numpy path decides) unless every field the rules read
is a state array of the state's float dtype or a number the event gives every row alike
(its time), and they read at least one such array; every argument booked is a number; no
rule has two effects of one kind; no text is compared; and the numba target compiles the
rules (`compile_program`) within `fixed_programs.MAX_OPS`.

The pass gives the numpy path's scores and channels bit for bit, with the numba target's one
difference (`rules.expression.numba_target`, "Semantics"): a NaN computed from infinities
(``inf - inf``) is unknown here and a known NaN to numpy, which a `not` or a `!=` can then
tell apart. The fields the ranking reads are prices, costs and qualities, finite in the
model (its scenario's numbers, and what its stages compute from them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit

from rules.expression.errors import ExpressionError
from rules.expression.nodes import Const, Node
from rules.expression.numba_target import Vocabulary, compile_program
from simulator.fixed_programs import FixedProgram, first_rule_reading, values_reading
from simulator.kernels import _OPTIONS, _kernel, prefetch

#: How many listings ahead `rank_rows` asks for the rows it will read and write.
AHEAD = 16


@njit(inline="always", **_OPTIONS)
def _read_state(tag, row, env):  # pragma: no cover - compiled
    """Field `tag` of the listing env[0]: its state array (env[1][tag], as float64), or for
    a negative tag the event's value for every row (env[2][-1 - tag])."""
    i, arrays, constants = env
    return np.float64(arrays[tag][i]) if tag >= 0 else constants[-1 - tag]


_first_rule = first_rule_reading(_read_state)
_arguments = values_reading(_read_state)


@_kernel
def rank_rows(conditions, arguments, score_arg, channel_arg, rows, arrays, constants, score,
              channel):  # pragma: no cover - compiled
    """Each listing rows[t]'s first rule (`conditions`, compiled for), and the score and
    channel impressions its effects assign (`arguments`, compiled for: argument score_arg[p]
    and channel_arg[p] of rule p, -1 none): score[rows[t]] and channel[t] get them where
    known, 0.0 elsewhere (no rule, no such effect, an unknown value). Returns whether some
    listing's rule admits it to a channel."""
    admits = False
    n = rows.shape[0]
    for t in range(n):
        ahead = rows[min(t + AHEAD, n - 1)]  # (a hint: the listings are scattered)
        for a in arrays:
            prefetch(a, ahead)
        prefetch(score, ahead)
        i = rows[t]
        env = (i, arrays, constants)
        p = _first_rule(conditions, env)
        values = _arguments(arguments, env)
        s = 0.0
        c = 0.0
        if p >= 0:
            a = score_arg[p]
            if a >= 0:
                v = values[a]
                s = v if v == v else 0.0
            b = channel_arg[p]
            if b >= 0:
                admits = True
                v = values[b]
                c = v if v == v else 0.0
        score[i] = s
        channel[t] = c
    return admits


class CompiledRanking:
    """The ranking rulebook's `listing_updated` rules prepared for `rank_rows`: the
    conditions' program, the booked arguments' program, which argument each rule books,
    and where each field is read (a state array, or the event's value for every row)."""

    def __init__(self, conditions: FixedProgram, arguments: FixedProgram,
                 score_arg: np.ndarray, channel_arg: np.ndarray, arrays: tuple[np.ndarray, ...],
                 constants: tuple[str, ...]):
        self.conditions, self.arguments = conditions, arguments
        self.score_arg, self.channel_arg = score_arg, channel_arg
        self.arrays = arrays
        #: The event's keys whose values are read as one number for every row, in tag order.
        self.constants = constants

    @classmethod
    def of(cls, book: Any, event: Mapping[str, Any],
           namespaces: Mapping[str, Mapping[str, Any]], dtype: Any) -> CompiledRanking | None:
        """For the ranking rulebook `book`, the event's fields (`event`: arrays over every
        listing, or one value) and the listing's and merchant's (`namespaces`); None when the
        rules read anything `rank_rows` does not (see the module doc)."""
        rulebook = getattr(book, "rulebook", None)
        if rulebook is None:
            return None
        rules = [rulebook.rule(rid) for rid in book.rules_for("listing_updated")]
        nodes: list[Node] = []
        score_arg = np.full(len(rules), -1, dtype=np.int64)
        channel_arg = np.full(len(rules), -1, dtype=np.int64)
        for p, rule in enumerate(rules):
            for table, (effect, argument) in ((score_arg, ("assign_ranking_score", "score")),
                                              (channel_arg, ("admit_to_channel",
                                                             "impressions"))):
                calls = [c for c in rule.then if c.name == effect]
                if len(calls) > 1:
                    return None
                if not calls:
                    continue
                node = _argument(calls[0], argument)
                if node is None:
                    return None
                table[p] = len(nodes)
                nodes.append(node)
        vocabulary = Vocabulary()
        try:
            tested = compile_program([r.when.node for r in rules], vocabulary)
            booked = compile_program(nodes, vocabulary)
        except ExpressionError:  # beyond the numba target (a rounding to 30 digits, say)
            return None
        if len(vocabulary):  # a text the rules compare a field with
            return None
        fields = sorted(set(tested.fields) | set(booked.fields))
        arrays: list[np.ndarray] = []
        constants: list[str] = []
        tags: dict[str, int] = {}
        for dotted in fields:
            namespace, name = dotted.split(".", 1)
            value = (event if namespace == "event" else namespaces.get(namespace, {})).get(name)
            if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype == dtype:
                tags[dotted] = len(arrays)
                arrays.append(value)
            elif namespace == "event" and isinstance(value, float | int) \
                    and not isinstance(value, bool):
                tags[dotted] = -1 - len(constants)
                constants.append(name)
            else:
                return None
        if not arrays:  # (rules that read no listing's field: nothing to gain)
            return None
        programs = []
        for program in (tested, booked):
            rows = {f: k for k, f in enumerate(program.fields)}
            flat = program.flatten(rows, len(program.fields))
            fixed = FixedProgram.of(flat, flat.results,
                                    {k: tags[f] for f, k in rows.items()})
            if fixed is None:
                return None
            programs.append(fixed)
        return cls(programs[0], programs[1], score_arg, channel_arg,
                   tuple(arrays), tuple(constants))

    def decide(self, rows: np.ndarray, event: Mapping[str, Any], score: np.ndarray,
               channel: np.ndarray) -> bool:
        """Score (into `score`, at rows) and channel impressions (into `channel`, by position)
        of the listings `rows`; whether some rule admits one to a channel."""
        constants = np.array([float(event[name]) for name in self.constants] or [np.nan])
        return bool(rank_rows(self.conditions.fixed, self.arguments.fixed, self.score_arg,
                              self.channel_arg, rows, self.arrays, constants, score, channel))


def _argument(call: Any, name: str) -> Node | None:
    """The node giving the effect call's argument `name`: its expression, or its literal
    number as a constant (None: a literal of another kind, or an argument that is not a
    number)."""
    if call.spec.args[name].kind not in ("number", "duration"):
        return None
    if name in call.expressions:
        return call.expressions[name].node
    value = call.literals.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Const(float(value))
