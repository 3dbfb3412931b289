"""The bounds on what a refused request echoes back (`service.request_decoding`)."""

from __future__ import annotations

from service import request_decoding as rd


def test_violations_past_the_budget_are_counted_in_a_last_one() -> None:
    violations = [(f"field{k}", "x" * 100) for k in range(500)]
    br = rd.bounded_bad_request(violations)
    listed = br.field_violations[:-1]
    assert [v.field for v in listed] == [f"field{k}" for k in range(len(listed))]
    assert 10 < len(listed) < 500
    last = br.field_violations[-1]
    assert (last.field, last.description) == (
        "(more)", f"and {500 - len(listed):,} more violations not listed")
    assert br.ByteSize() <= rd.MAX_DETAILS_BYTES + 100


def test_a_few_short_violations_are_kept_as_they_are() -> None:
    violations = [("a", "one"), ("b", "two")]
    br = rd.bounded_bad_request(violations)
    assert [(v.field, v.description) for v in br.field_violations] == violations


def test_one_violation_is_kept_however_long_cut_to_its_bounds() -> None:
    [v] = rd.bounded_bad_request([("f" * 1000, "d" * 5000)]).field_violations
    assert v.field == "f" * rd.MAX_FIELD_CHARS + "… (800 more characters)"
    assert v.description == "d" * rd.MAX_DESCRIPTION_CHARS + "… (4,500 more characters)"


def test_the_message_is_cut_by_its_bytes_at_a_characters_edge() -> None:
    text = "退款" * 400  # three bytes a character
    cut = rd.cut_message(text, rd.MAX_MESSAGE_BYTES)
    kept = rd.MAX_MESSAGE_BYTES // 3
    assert cut == text[:kept] + f"… ({800 - kept:,} more characters)"
    assert rd.cut_message("short", rd.MAX_MESSAGE_BYTES) == "short"
