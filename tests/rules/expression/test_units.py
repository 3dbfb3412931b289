"""The unit-literal scanner: what it blanks out, what it leaves alone, what it refuses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.expression import Binary, Call, Const, ExpressionError, Name, parse
from rules.expression.units import Masked, mask_units


def error_of(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        mask_units(text)
    return caught.value


@pytest.mark.parametrize(
    ("text", "masked", "units"),
    [
        ("36h", "36 ", {0: "h"}),
        ("x < 2w", "x < 2 ", {4: "w"}),
        ("1e3h", "1e3 ", {0: "h"}),
        ("2E-3s", "2E-3 ", {0: "s"}),
        ("1_000h", "1_000 ", {0: "h"}),
        (".5h", ".5 ", {0: "h"}),
        ("1.h", "1. ", {0: "h"}),
        ("1.5d", "1.5 ", {0: "d"}),
        ("5%", "5 ", {0: "%"}),
        ("5%)", "5 )", {0: "%"}),
        ("(5%+1)", "(5 +1)", {1: "%"}),
        ("5% - 1", "5  - 1", {0: "%"}),
        ("[5%, 7%]", "[5 , 7 ]", {1: "%", 5: "%"}),
        ("5% if a else 1", "5  if a else 1", {0: "%"}),
        ("36h # 36hours and 5%x", "36  # 36hours and 5%x", {0: "h"}),
        ("(1h\n + 2m)", "(1 \n + 2 )", {1: "h", 7: "m"}),
    ],
)
def test_units_are_blanked_and_recorded(text: str, masked: str, units: dict[int, str]) -> None:
    assert mask_units(text) == Masked(masked, units)


@pytest.mark.parametrize(
    "text",
    [
        "'36h' == event.kind",
        '"36hours" == event.kind',
        "'36 h'",
        "'5%x' + '5%'",
        r"'it\'s 36hours'",
        r'"say \"36 h\" 5%"',
        "'''36hours\n5% 36 h'''",
        '"""a "36h" b"""',
        "r'36hours'",
        "b'36h'",
        "x1h",
        "x1h + rate2m",
        "_1h",
        "é1h",
        "0x1f",
        "0X1F + 0o17 + 0b101",
        "0x1fh",
        "0b1%",
        "1j",
        "1if x else 2",
        "1 if x else 2",
        "x%",
        "x % 2",
        "event.price%",
        "'a'%",
        "5%x",
        "5%(x)",
        "5% [1]",
        "5%'a'",
        "5%3",
        "5% .5",
        "5% True",
        "(5% # a comment\n x)",
        "5%=x",
        "36 hours",
        "36\nh",
        "# 36hours",
        "'unterminated 36hours",
    ],
)
def test_text_left_alone(text: str) -> None:
    assert mask_units(text) == Masked(text, {})


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("36hours", "unknown unit 'hours' after 36", 2),
        ("1e3hours", "unknown unit 'hours' after 1e3", 3),
        ("1_000x", "unknown unit 'x' after 1_000", 5),
        (".5H", "unknown unit 'H' after .5", 2),
        ("5e", "unknown unit 'e' after 5", 1),
        ("5e+", "unknown unit 'e' after 5", 1),
        ("1_", "unknown unit '_' after 1", 1),
        ("'36hours' < 36hours", "unknown unit 'hours' after 36", 14),
        ("x1h + 2mins", "unknown unit 'mins' after 2", 7),
        ("36 h", "write the unit right after the number, without a space (like 36h)", 3),
        ("x < 1.5\td", "write the unit right after the number, without a space (like 1.5d)", 8),
    ],
)
def test_errors(text: str, message: str, offset: int) -> None:
    error = error_of(text)
    assert error.message.startswith(message)
    assert error.offset == offset
    if "unknown unit" in message:
        assert error.message.endswith("; the units are s, m, h, d, w and %")


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("1e3h", Const(3600000.0, "h", start=0, end=3)),
        ("1_000h", Const(3600000, "h", start=0, end=5)),
        (".5h", Const(1800.0, "h", start=0, end=2)),
        ("5%", Const(0.05, "%", start=0, end=1)),
        ("x1h", Name(("x1h",), start=0, end=3)),
        ("0x1f", Const(31, None, start=0, end=4)),
        ("'36h'", Const("36h", None, start=0, end=5)),
        (
            "(5%+1)",
            Binary("+", Const(0.05, "%", start=1, end=2), Const(1, start=4, end=5), start=1, end=5),
        ),
        (
            "min(5%, x)",
            Call(
                "min",
                (Const(0.05, "%", start=4, end=5), Name(("x",), start=8, end=9)),
                start=0,
                end=10,
            ),
        ),
    ],
)
def test_parsed(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("x % 2", "the % operator is not supported", 2),
        ("rate%2", "the % operator is not supported", 4),
        ("x%", "syntax error: the expression is incomplete", 2),
        ("0x1fh", "syntax error: invalid hexadecimal literal", 3),
        ("36h == '36 h' and 36 h", "write the unit right after the number", 21),
    ],
)
def test_parse_errors(text: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert caught.value.message.startswith(message)
    assert caught.value.offset == offset


PIECES = [
    "1", "36", ".5", "1e3", "1_0", "0x1f", "h", "m", "x", "%", " ", "\n", "(", ")", "+",
    "'", '"', "'''", "\\", "#", "if", "e", "j", ".", "_", "é",
]  # fmt: skip


@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=20).map("".join))
def test_masking_only_blanks_recorded_suffixes(text: str) -> None:
    try:
        masked = mask_units(text)
    except ExpressionError as error:
        assert 0 <= error.offset < len(text)
        return
    assert len(masked.text) == len(text)
    changed = [i for i, (a, b) in enumerate(zip(text, masked.text, strict=True)) if a != b]
    assert all(masked.text[i] == " " for i in changed)
    blanked = sum(len(unit) for unit in masked.units.values())
    assert len(changed) == blanked
    for start, unit in masked.units.items():
        assert text[start].isdigit() or text[start] == "."
        assert unit in ("s", "m", "h", "d", "w", "%")
