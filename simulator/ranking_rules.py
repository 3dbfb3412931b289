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
is an array over every listing of the state's float dtype (a state array) or a number every
row shares (the event's time), and they read at least one such array
(`simulator.rule_fields`: `rank_rows` loops over the arrays, which must be of one type); every
argument booked is a number; no rule has two effects of one kind; no text is compared; and
the numba target compiles the rules (`compile_program`) within `fixed_programs.MAX_OPS`.

The pass gives the numpy path's scores and channels bit for bit, with the numba target's one
difference (`rules.expression.numba_target`, "Semantics"): a NaN computed from infinities
(``inf - inf``) is unknown here and a known NaN to numpy, which a `not` or a `!=` can then
tell apart. The fields the ranking reads are prices, costs and qualities, finite in the
model but for a scenario whose numbers overflow a float (a cost spread of 100, say: the run
then says which series reached infinity, `simulator.outputs.infinite_series`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rules.expression.nodes import Node
from simulator.fixed_programs import FixedProgram, first_rule_reading, values_reading
from simulator.kernels import _kernel, prefetch
from simulator.rule_fields import FieldSources, fixed_rules, number_argument, read_field

#: How many listings ahead `rank_rows` asks for the rows it will read and write.
AHEAD = 16


_first_rule = first_rule_reading(read_field)
_arguments = values_reading(read_field)


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
                 score_arg: np.ndarray, channel_arg: np.ndarray, sources: FieldSources,
                 namespaces: Mapping[str, Mapping[str, Any]]):
        self.conditions, self.arguments = conditions, arguments
        self.score_arg, self.channel_arg = score_arg, channel_arg
        self.sources = sources
        self.arrays = tuple(sources.arrays)
        #: The listing's and merchant's fields (the event's are given on each call).
        self.namespaces = namespaces

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
                node = number_argument(calls[0], argument)
                if node is None:
                    return None
                table[p] = len(nodes)
                nodes.append(node)
        sources = FieldSources((dtype,))
        scope = {**namespaces, "event": event}
        programs = fixed_rules([r.when.node for r in rules], nodes,
                               lambda dotted: sources.tag(dotted, scope))
        # (rules that read no listing's field: nothing to gain)
        if programs is None or not sources.arrays:
            return None
        return cls(programs[0], programs[1], score_arg, channel_arg, sources, namespaces)

    def decide(self, rows: np.ndarray, event: Mapping[str, Any], score: np.ndarray,
               channel: np.ndarray) -> bool:
        """Score (into `score`, at rows) and channel impressions (into `channel`, by position)
        of the listings `rows`; whether some rule admits one to a channel."""
        constants = self.sources.values({"": {**self.namespaces, "event": event}})
        return bool(rank_rows(self.conditions.fixed, self.arguments.fixed, self.score_arg,
                              self.channel_arg, rows, self.arrays, constants, score, channel))

