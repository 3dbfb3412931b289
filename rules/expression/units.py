"""Unit literals (`36h`, `30m`, `5%`) via a tokenize pass that runs before `ast.parse`.

Python has no unit suffixes, so the suffix is blanked out with the same number of spaces
and remembered by the character offset of its number. Blanking rather than deleting keeps
every column that `ast` reports pointing at the original text, which is what lets error
messages underline the right place.
"""

from __future__ import annotations

import io
import keyword
import tokenize
from dataclasses import dataclass

from .errors import ExpressionError

#: Seconds per time unit; durations are numbers of seconds everywhere in the rulebooks.
TIME_UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PERCENT = "%"
UNIT_NAMES = ", ".join(TIME_UNITS) + " and %"

# After `5%`, one of these means the author wrote the modulo operator (`5 % x`),
# anything else (an operator, a bracket closing, the end) means a percentage.
_OPERAND_TOKENS = {tokenize.NUMBER, tokenize.STRING, tokenize.NAME}
_OPERAND_OPENERS = {"(", "[", "{"}
_OPERAND_KEYWORDS = {"True", "False", "None", "lambda", "await"}
_SKIPPED = {tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT}


@dataclass(frozen=True)
class Masked:
    """The text as `ast` should see it, and the unit of each number by its start offset."""

    text: str
    units: dict[int, str]


def apply_unit(value: int | float, unit: str) -> int | float:
    """The number a unit literal stands for: seconds for durations, a fraction for %."""
    if unit == PERCENT:
        return value / 100  # 7 / 100 is exactly 0.07; 7 * 0.01 is not
    return value * TIME_UNITS[unit]


def mask_units(text: str) -> Masked:
    """Blank out unit suffixes in `text`, recording which number each belonged to.

    Raises ExpressionError for a suffix that is not a unit (`36hours`) or a unit written
    after a space (`36 h`), because those are the mistakes authors actually make and
    Python's own message for them ("invalid syntax") does not help.
    """
    line_starts = _line_starts(text)
    tokens = _significant_tokens(text)
    chars = list(text)
    units: dict[int, str] = {}

    def offset(pos: tuple[int, int]) -> int:
        return line_starts[pos[0] - 1] + pos[1]

    for index in range(1, len(tokens)):
        number, suffix = tokens[index - 1], tokens[index]
        if number.type != tokenize.NUMBER:
            continue
        adjacent = number.end == suffix.start
        if suffix.type == tokenize.NAME and not keyword.iskeyword(suffix.string):
            if not adjacent:
                if suffix.string in TIME_UNITS and suffix.start[0] == number.end[0]:
                    raise ExpressionError(
                        f"write the unit right after the number, without a space "
                        f"(like {number.string}{suffix.string})",
                        offset(suffix.start),
                    )
                continue
            if suffix.string not in TIME_UNITS:
                raise ExpressionError(
                    f"unknown unit '{suffix.string}' after {number.string}; "
                    f"the units are {UNIT_NAMES}",
                    offset(suffix.start),
                )
        elif not (adjacent and suffix.type == tokenize.OP and suffix.string == PERCENT):
            continue
        elif index + 1 < len(tokens) and _starts_operand(tokens[index + 1]):
            continue  # `5%x` is the modulo operator; the parser reports it as unsupported
        begin, end = offset(suffix.start), offset(suffix.end)
        chars[begin:end] = " " * (end - begin)
        units[offset(number.start)] = suffix.string
    return Masked("".join(chars), units)


def _significant_tokens(text: str) -> list[tokenize.TokenInfo]:
    """Tokens other than layout and comments; stops quietly where tokenizing fails.

    A text that cannot be tokenized cannot be parsed either, and `ast.parse` gives the
    better message for it, so errors here are left for the parser to report.
    """
    tokens: list[tokenize.TokenInfo] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.ENDMARKER:
                break
            if token.type not in _SKIPPED:
                tokens.append(token)
    except (tokenize.TokenError, SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    return tokens


def _starts_operand(token: tokenize.TokenInfo) -> bool:
    if token.type == tokenize.NAME:
        return not keyword.iskeyword(token.string) or token.string in _OPERAND_KEYWORDS
    if token.type in _OPERAND_TOKENS:
        return True
    return token.type == tokenize.OP and token.string in _OPERAND_OPENERS


def _line_starts(text: str) -> list[int]:
    """Character offset of each line start, splitting only on '\\n' as the tokenizer does."""
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    return starts
