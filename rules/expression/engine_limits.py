"""What the durable_rules 2.0.28 C engine can hold, measured on a compiled condition.

Exceeding these does not degrade gracefully: the ruleset is refused (error 113) or, worse,
posting an event fails at run time (error 303). The compiler checks a condition against
them and hoists parts of it into Python until it fits.

- Each `$and` / `$or` object takes two of the 32 slots of a rule's expression sequence
  (MAX_SEQUENCE_EXPRESSIONS), and the 32nd is refused: at most 15 of them.
- Matching walks the alpha network depth-first with a 64-entry stack (MAX_STACK_SIZE),
  pushing every child that matches; an `$or` of 65 simultaneously true branches fails.
- That walk also revisits the part of the network after an `$or` once per true branch,
  so `and`s of `or`s multiply; a visit budget keeps a condition from becoming slow.
"""

from __future__ import annotations

from typing import Any

MAX_GROUPS = 15
MAX_STACK = 60  # the engine's limit is 64; keep a margin
MAX_VISITS = 5000


def fits(condition: dict[str, Any]) -> bool:
    """Whether the engine accepts `condition` and can match it for any event."""
    if count_groups(condition) > MAX_GROUPS:
        return False
    network = _Network()
    network.add(condition, parent=0)
    return network.walk_fits()


def count_groups(condition: dict[str, Any]) -> int:
    """The number of `$and` / `$or` objects in a condition."""
    key, value = next(iter(condition.items()))
    if key in ("$and", "$or"):
        return 1 + sum(count_groups(part) for part in value)
    return 0


class _Network:
    """A model of the alpha network the engine builds for one condition.

    Mirrors rete.c's createAlpha: an `$and` chains its parts, an `$or` hangs every
    branch off the same parent and joins their ends in a shared "forward" node. Node
    sharing between identical siblings is ignored, which only overestimates the walk.
    """

    def __init__(self) -> None:
        self.children: list[list[int]] = [[]]

    def _new(self) -> int:
        self.children.append([])
        return len(self.children) - 1

    def add(self, condition: dict[str, Any], parent: int) -> int:
        key, value = next(iter(condition.items()))
        if key == "$and":
            for part in value:
                parent = self.add(part, parent)
            return parent
        if key == "$or":
            forward = self._new()
            for part in value:
                self.children[self.add(part, parent)].append(forward)
            return forward
        leaf = self._new()
        self.children[parent].append(leaf)
        return leaf

    def walk_fits(self) -> bool:
        """Replays handleAlpha's stack, assuming every leaf matches (the worst case)."""
        stack = [0]
        visits = 0
        while stack:
            node = stack.pop()
            visits += 1
            if visits > MAX_VISITS:
                return False
            stack.extend(self.children[node])
            if len(stack) > MAX_STACK:
                return False
        return True
