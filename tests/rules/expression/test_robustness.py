"""Hostile or random text: the only outcomes are a tree or an ExpressionError, and no code runs."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.expression import (
    ExpressionError,
    Node,
    Type,
    compile_condition,
    compile_python,
    parse,
    resolve,
)

SYMBOLS = {
    "event.price": Type.NUMBER,
    "event.kind": Type.STRING,
    "event.flagged": Type.BOOL,
    "listing.unit_cost": Type.NUMBER,
}
PARAMETERS = {"rate": 0.1, "kinds": ["a", "b"], "strict": False}
SCOPE = {
    "event": {"price": 12.5, "kind": "a", "flagged": True},
    "listing": {"unit_cost": 0},
}

TOKENS = [
    "event", "listing", "merchant", "order", ".", "price", "kind", "flagged", "unit_cost",
    "rate", "kinds", "strict", "x", "__import__", "__class__", "os", "system",
    "0", "1", "2.5", "-", "+", "*", "/", "%", "**", "//", "<", "<=", ">", ">=", "==", "!=",
    "and", "or", "not", "in", "is", "if", "else", "lambda", ":", ":=", ",", "(", ")", "[", "]",
    "{", "}", "min", "max", "abs", "round", "floor", "ceil", "eval", "exec", "open",
    "true", "false", "True", "False", "None", "'a'", '"b"', "'", '"', "\\", "h", "m", "s",
    "d", "w", "36h", "5%", "1e999", "0x1F", "1j", "b'x'", "f'{x}'", "#", "\n", "\t", " ",
    "\0", "é", "for", "yield", "await", "*", "...", ";",
]


@contextmanager
def no_code_execution() -> Iterator[list[str]]:
    """Make eval, exec and imports fail loudly, and only allow compile() to build ASTs."""
    calls: list[str] = []
    real_compile = builtins.compile

    def forbidden(name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called during parse/resolve/compile")

        return refuse

    def ast_only_compile(source: Any, filename: Any, mode: str, flags: int = 0, *a: Any, **k: Any):
        if not flags & ast.PyCF_ONLY_AST:
            calls.append("compile")
            raise AssertionError("compile() to bytecode during parse/resolve/compile")
        return real_compile(source, filename, mode, flags, *a, **k)

    real_import = builtins.__import__
    refuse_import = forbidden("__import__")

    def parser_import_only(name: str, *args: Any, **kwargs: Any) -> Any:
        # CPython's own parser imports unicodedata to normalise non-ASCII identifiers.
        if name == "unicodedata":
            return real_import(name, *args, **kwargs)
        return refuse_import(name, *args, **kwargs)

    saved = {name: getattr(builtins, name) for name in ("eval", "exec", "__import__")}
    builtins.eval = forbidden("eval")  # type: ignore[assignment]
    builtins.exec = forbidden("exec")  # type: ignore[assignment]
    builtins.__import__ = parser_import_only
    builtins.compile = ast_only_compile  # type: ignore[assignment]
    try:
        yield calls
    finally:
        for name, value in saved.items():
            setattr(builtins, name, value)
        builtins.compile = real_compile


def run_everything(text: str) -> Node | None:
    """Parse, resolve, compile for both targets and evaluate; None if the text is refused."""
    try:
        tree = parse(text)
    except ExpressionError as error:
        assert error.message and 0 <= error.offset <= max(len(text), 1)
        return None
    assert isinstance(tree, Node)
    try:
        resolved, kind = resolve(tree, SYMBOLS, PARAMETERS)
    except ExpressionError:
        return tree
    evaluate = compile_python(resolved)
    evaluate({})
    evaluate(SCOPE)
    if kind is Type.BOOL:
        condition, hoisted = compile_condition(resolved, "h")
        assert isinstance(condition, dict) and len(condition) == 1
        for node in hoisted.values():
            compile_python(node)(SCOPE)
    return tree


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=300))
def test_arbitrary_text_gives_a_tree_or_an_expression_error(text: str) -> None:
    with no_code_execution() as calls:
        run_everything(text)
    assert calls == []


@settings(max_examples=600, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from(["", " "]))
def test_token_soup_gives_a_tree_or_an_expression_error(tokens: list[str], joiner: str) -> None:
    with no_code_execution() as calls:
        run_everything(joiner.join(tokens))
    assert calls == []


@settings(max_examples=20, derandomize=True, deadline=None)
@given(st.text(alphabet="()[]-+not 1x", min_size=1900, max_size=2100))
def test_long_nested_text(text: str) -> None:
    with no_code_execution() as calls:
        run_everything(text)
    assert calls == []


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch owned')",
        "eval('1 + 1') == 2",
        "exec('x = 1')",
        "open('/etc/passwd')",
        "().__class__.__bases__[0].__subclasses__()",
        "event.__class__.__init__.__globals__",
        "(lambda: __import__('os'))()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        "getattr(event, 'price')",
        "globals()['__builtins__']",
        "event.price.__add__(1)",
        "breakpoint()",
        "'%s' % event.price",
        "f'{__import__(\"os\")}'",
    ],
)
def test_hostile_input_is_refused_without_running(text: str) -> None:
    with no_code_execution() as calls, pytest.raises(ExpressionError):
        resolve(parse(text), SYMBOLS, PARAMETERS)
    assert calls == []


def test_the_sentinels_work() -> None:
    with no_code_execution() as calls, pytest.raises(AssertionError):
        builtins.eval("1")
    assert calls == ["eval"]
