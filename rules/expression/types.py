"""The value types of the expression language.

There are deliberately few: rule conditions compare money, counts, durations, rates,
categories and flags, and anything richer would not survive the trip into the
durable_rules engine, whose messages only carry numbers, text and booleans.
"""

from __future__ import annotations

import enum


class Type(enum.Enum):
    NUMBER = "number"
    STRING = "string"
    BOOL = "bool"
    LIST = "list"  #: a list of numbers or of text, only usable after `in` / `not in`

    @property
    def described(self) -> str:
        """How error messages name the type, in words a policy author uses."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Type.NUMBER: "a number",
    Type.STRING: "text",
    Type.BOOL: "true/false",
    Type.LIST: "a list",
}
