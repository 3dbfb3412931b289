"""Unit literals (`36h`, `30m`, `5%`) via a small scanner that runs before `ast.parse`.

Python has no unit suffixes, so the suffix is blanked out with the same number of spaces
and remembered by the character offset of its number. Blanking rather than deleting keeps
every column that `ast` reports pointing at the original text, which is what lets error
messages underline the right place.

The scanner is deliberately independent of the `tokenize` module: how `tokenize` splits
`36h` differs between Python versions (3.12 replaced the pure-Python tokenizer with the C
one, which rejects it), so it only knows the few lexical rules that matter here. It skips
string literals and comments, skips names whole (so `x1h` is a name, not `1h`), skips
hexadecimal, octal and binary literals whole (they take no unit), and looks at what
immediately follows each decimal number. Anything else is left for `ast` to judge.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass

from .errors import ExpressionError

#: Seconds per time unit; durations are numbers of seconds everywhere in the rulebooks.
TIME_UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PERCENT = "%"
UNIT_NAMES = ", ".join(TIME_UNITS) + " and %"

_DIGITS = frozenset("0123456789")
_QUOTES = frozenset("'\"")
_RADIX_MARKS = frozenset("xXoObB")  # 0x1f, 0o17, 0b101
_BLANKS = frozenset(" \t\f")  # space within a line, as Python's tokenizer counts it
# After `5%`, one of these means the author wrote the modulo operator (`5 % x`),
# anything else (an operator, a bracket closing, the end) means a percentage.
_OPERAND_OPENERS = frozenset("([{") | _QUOTES
_OPERAND_KEYWORDS = {"True", "False", "None", "lambda", "await"}


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
    Python's own message for them ("invalid syntax") does not help. Text that is not valid
    Python in other ways (an unterminated string, a stray character) passes through
    unchanged, since `ast.parse` gives the better message for it.
    """
    chars = list(text)
    units: dict[int, str] = {}
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char in _QUOTES:
            index = _string_end(text, index)
        elif char == "#":
            index = _line_end(text, index)
        elif char in _DIGITS or (char == "." and _digit_at(text, index + 1)):
            index = _unit_literal(text, index, chars, units)
        elif char == "." and text.startswith("...", index):
            index += 3  # `...5` is an ellipsis and then 5, as Python reads it
        elif _is_word_char(char):
            index = _word_end(text, index)  # a name, digits and all: `x1h`, `rate2`
        else:
            index += 1
    return Masked("".join(chars), units)


def _unit_literal(text: str, start: int, chars: list[str], units: dict[int, str]) -> int:
    """Handle the number at `start` and any suffix; return where scanning continues."""
    end, decimal = _number_end(text, start)
    if not decimal:
        return end
    number = text[start:end]
    if text[end : end + 1].isidentifier():  # a letter or `_`, not a digit as in `1j1`
        suffix_end = _word_end(text, end)
        suffix = text[end:suffix_end]
        if keyword.iskeyword(suffix):
            return end  # `1if x else 2`: Python reads a keyword there, so does the parser
        if suffix not in TIME_UNITS:
            raise ExpressionError(
                f"unknown unit '{suffix}' after {number}; the units are {UNIT_NAMES}", end
            )
        chars[end:suffix_end] = " " * len(suffix)
        units[start] = suffix
        return suffix_end
    if text.startswith(PERCENT, end):
        if text.startswith("=", end + 1):
            return end + 2  # `%=`, an operator of its own, which the parser refuses
        if not _starts_operand(text, _next_significant(text, end + 1)):
            chars[end] = " "
            units[start] = PERCENT
        # otherwise `5%x` is the modulo operator; the parser reports it as unsupported
        return end + 1
    gap_end = end
    while gap_end < len(text) and text[gap_end] in _BLANKS:
        gap_end += 1
    spaced = text[gap_end : _word_end(text, gap_end)]
    if gap_end > end and spaced in TIME_UNITS:
        raise ExpressionError(
            f"write the unit right after the number, without a space (like {number}{spaced})",
            gap_end,
        )
    return end


def _number_end(text: str, start: int) -> tuple[int, bool]:
    """The end of the numeric literal at `start`, and whether it is a decimal one.

    Follows Python's grammar for decimal literals: digits with single underscores between
    them, an optional fraction (`1.5`, `1.`, `.5`), an optional exponent (`1e3`, `2E-4`,
    only with digits after it, so the `e` of `5e` is a suffix) and an optional imaginary
    `j`. A literal with a radix prefix (`0x1f`, `0o17`, `0b101`) runs to the end of the
    word and takes no unit; whether it is well formed is for `ast` to say.
    """
    if text[start] == "0" and text[start + 1 : start + 2] in _RADIX_MARKS:
        return _word_end(text, start), False
    index = _digits_end(text, start)
    if text.startswith(".", index):
        index = _digits_end(text, index + 1)
    if text[index : index + 1] in ("e", "E"):
        exponent = index + 1
        if text[exponent : exponent + 1] in ("+", "-"):
            exponent += 1
        if _digit_at(text, exponent):
            index = _digits_end(text, exponent)
    if text[index : index + 1] in ("j", "J"):
        index += 1
    return index, True


def _digits_end(text: str, index: int) -> int:
    """The end of `[0-9](_?[0-9])*` at `index`, or `index` when there is no digit there."""
    if not _digit_at(text, index):
        return index
    index += 1
    while index < len(text):
        if text[index] in _DIGITS:
            index += 1
        elif text[index] == "_" and _digit_at(text, index + 1):
            index += 2
        else:
            break
    return index


def _string_end(text: str, start: int) -> int:
    """The end of the string literal opening at `start` (any prefix is already behind).

    A backslash always takes the next character with it, even in raw strings, where it
    still keeps a quote from closing the string. A one-line string stops at the end of
    its line if it is not closed, which leaves the rest of the text to be scanned and the
    unterminated string for `ast` to report.
    """
    quote = text[start]
    if text.startswith(quote * 3, start):
        index = start + 3
        while index < len(text):
            if text[index] == "\\":
                index += 2
            elif text.startswith(quote * 3, index):
                return index + 3
            else:
                index += 1
        return len(text)
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
        elif char == quote:
            return index + 1
        elif char == "\n":
            return index
        else:
            index += 1
    return len(text)


def _next_significant(text: str, index: int) -> int:
    """The offset of the next character that is not layout, a comment or a continuation."""
    while index < len(text):
        char = text[index]
        if char in _BLANKS or char in "\r\n":
            index += 1
        elif char == "#":
            index = _line_end(text, index)
        elif char == "\\" and text[index + 1 : index + 2] in ("\n", "\r"):
            index += 2
        else:
            break
    return index


def _starts_operand(text: str, index: int) -> bool:
    """Whether an operand (a name, a number, a string, a bracket) begins at `index`."""
    if index >= len(text):
        return False
    char = text[index]
    if char in _OPERAND_OPENERS or char in _DIGITS:
        return True
    if char == ".":
        return _digit_at(text, index + 1)
    if _is_word_char(char):
        word = text[index : _word_end(text, index)]
        return not keyword.iskeyword(word) or word in _OPERAND_KEYWORDS
    return False


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end == -1 else end


def _word_end(text: str, index: int) -> int:
    while index < len(text) and _is_word_char(text[index]):
        index += 1
    return index


def _is_word_char(char: str) -> bool:
    """A character that can be part of a name (or of a number's suffix)."""
    if char.isalnum() or char == "_":
        return True
    return char > "\x7f" and ("a" + char).isidentifier()  # combining marks and the like


def _digit_at(text: str, index: int) -> bool:
    return text[index : index + 1] in _DIGITS
