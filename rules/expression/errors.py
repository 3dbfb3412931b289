"""The one exception the expression language raises.

Rulebook authors are policy staff, not programmers: every problem with an expression,
whether it is a typo, a type mistake or hostile input, surfaces as this one error with a
plain message and the position in the text it refers to, so tools can underline it.
"""

from __future__ import annotations


class ExpressionError(Exception):
    """A problem with an expression, located at a 0-based character offset in its text."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = max(0, offset)

    def __str__(self) -> str:
        return self.message

    def shifted(self, delta: int) -> ExpressionError:
        """The same error for a text that had `delta` characters cut off its front."""
        return ExpressionError(self.message, self.offset + delta)

    def pointer(self, text: str) -> str:
        """The offending line of `text` with a caret under the problem, for error reports."""
        offset = min(self.offset, len(text))
        line_start = text.rfind("\n", 0, offset) + 1
        line_end = text.find("\n", offset)
        line = text[line_start : line_end if line_end != -1 else len(text)]
        return f"{line}\n{' ' * (offset - line_start)}^ {self.message}"
