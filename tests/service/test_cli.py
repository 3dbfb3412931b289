"""The `rulebook` command: what a newcomer types, what it prints, and its exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service.cli import main

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "rules" / "books"
FIXTURES = ROOT / "tests" / "fixtures"


def test_help_lists_the_commands_and_exit_codes(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("validate", "test", "replay", "generate", "schema"):
        assert command in out
    assert "exit codes" in out


def test_validate_ok_and_broken(capsys) -> None:
    assert main(["validate", str(BOOKS / "lowprice-2024"), str(BOOKS / "reformed-2025")]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == 2 and "refund (7 rules)" in out
    assert main(["validate", str(FIXTURES / "rulebooks" / "broken_refund.yaml")]) == 2
    out = capsys.readouterr().out
    assert "broken_refund.yaml:19:43: rules[0].when: unknown name 'order.shiped'" in out
    assert main(["validate", "--format", "json",
                 str(FIXTURES / "rulebooks" / "unknown_key.yaml")]) == 2
    report = json.loads(capsys.readouterr().out)
    [error] = report["results"][0]["errors"]
    assert (error["line"], error["column"], error["path"]) == (19, 5, "rules[0].whne")


def test_rule_tests_pass_for_the_bundled_sets(capsys) -> None:
    assert main(["test", str(BOOKS), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == 0 and report["passed"] >= 20
    files = {Path(c["file"]).parent.parent.name for c in report["cases"]}
    assert files == {"lowprice-2024", "reformed-2025"}


def test_a_failing_rule_test_exits_1_and_says_why(tmp_path, capsys) -> None:
    book = tmp_path / "lowprice-2024"
    shutil.copytree(BOOKS / "lowprice-2024", book)
    (book / "tests" / "commission.yaml").write_text(
        "cases:\n"
        "  - name: commission is 6 per cent (it is not)\n"
        "    events:\n"
        "      - {at: 0h, type: order_placed, order_id: o1, listing_id: l1, quantity: 1,"
        " amount: 100, shipping_cost: 5}\n"
        "    expect:\n"
        "      - {event: 0, burden: {merchant: 6}}\n"
    )
    assert main(["test", str(book / "tests" / "commission.yaml")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "burden merchant = 5.0" in out and "0 passed, 1 failed" in out


def test_generate_then_replay_prints_decisions_and_the_burden_table(tmp_path, capsys) -> None:
    events = tmp_path / "events.jsonl"
    assert main(["generate", "--merchants", "30", "--days", "3", "--seed", "4",
                 "--out", str(events)]) == 0
    capsys.readouterr()
    decisions = tmp_path / "decisions.jsonl"
    assert main(["replay", "--rulebooks", str(BOOKS / "lowprice-2024"), "--decisions",
                 str(decisions), "--format", "json", str(events)]) == 0
    summary = json.loads(capsys.readouterr().out)
    lines = decisions.read_text().splitlines()
    n_events = len(events.read_text().splitlines())
    assert summary["events"] == n_events and summary["decisions"] == len(lines)
    assert {json.loads(line)["event_id"] for line in lines} == {
        json.loads(e)["event_id"] for e in events.read_text().splitlines()}
    cohorts = {row["cohort"]: row for row in summary["burden_by_cohort"]}
    assert "all" in cohorts and cohorts["all"]["merchants"] == 30
    assert cohorts["all"]["merchant_burden"]["commission"] == pytest.approx(
        0.05 * cohorts["all"]["gmv"], rel=1e-3)
    assert main(["replay", "--rulebooks", str(BOOKS / "lowprice-2024"), "--decisions",
                 str(tmp_path / "d2.jsonl"), str(events)]) == 0
    text = capsys.readouterr().out
    assert "Burden borne by merchants, by cohort" in text and "small" in text


def test_replay_skips_invalid_events_names_their_lines_and_exits_2(capsys) -> None:
    code = main(["replay", "--rulebooks", str(BOOKS / "lowprice-2024"), "--format", "json",
                 str(FIXTURES / "events_with_errors.jsonl")])
    captured = capsys.readouterr()
    assert code == 2
    assert "events_with_errors.jsonl:5: invalid event" in captured.err
    decisions = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")
                 and '"decision_id"' in line]
    assert decisions  # the valid lines were still evaluated


def test_replay_skips_a_repeated_event_id_as_the_service_does(tmp_path, capsys) -> None:
    """Each event once, whatever the file repeats: the same decisions, summary and burden
    as the file without its repeats, and the repeats named by line and counted."""
    events = tmp_path / "events.jsonl"
    assert main(["generate", "--merchants", "5", "--days", "2", "--seed", "3",
                 "--out", str(events)]) == 0
    lines = events.read_text().splitlines()
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_text(f"{lines[0]}\n" + "".join(f"{line}\n{line}\n" for line in lines))
    capsys.readouterr()
    summaries, decisions = [], []
    for name, path in (("once", events), ("twice", doubled)):
        out = tmp_path / f"{name}.decisions.jsonl"
        assert main(["replay", "--rulebooks", str(BOOKS / "lowprice-2024"), "--decisions",
                     str(out), "--format", "json", str(path)]) == 0
        captured = capsys.readouterr()
        summary = json.loads(captured.out)
        summaries.append(summary | {"seconds": 0, "duplicate_events": 0})
        decisions.append(out.read_text())
        if name == "twice":  # (the first line three times)
            assert summary["duplicate_events"] == len(lines) + 1
            first_id = json.loads(lines[0])["event_id"]
            for line in (2, 3):
                assert (f"doubled.jsonl:{line}: event_id '{first_id}' repeats line 1, skipped"
                        in captured.err)
            assert "... " in captured.err  # past 20, a count
    assert summaries[0] == summaries[1] and decisions[0] == decisions[1]


def test_usage_errors_exit_2(capsys) -> None:
    assert main(["replay", "--rulebooks", str(BOOKS / "lowprice-2024"), "missing.jsonl"]) == 2
    assert main(["bogus"]) == 2
    assert main([]) == 2
    capsys.readouterr()


@pytest.mark.parametrize(("until", "message"), [
    ("garbage", "'garbage' is not an RFC 3339 time"),
    ("2024-07-10T00:00:00", "has no offset"),
    ("9999-06-01T00:00:00Z", "the time must fall in the years 1971 to 9998"),
])
def test_a_bad_until_is_a_usage_error(until: str, message: str, capsys) -> None:
    """It crashed after the whole replay (garbage), or took a time without an offset."""
    assert main(["replay", "--rulebooks", str(BOOKS / "lowprice-2024"), "--until", until,
                 "events.jsonl"]) == 2
    assert message in capsys.readouterr().err


def test_schema_command_prints_the_published_schema(capsys) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    committed = json.loads((ROOT / "rules" / "schema" / "rulebook.schema.json").read_text())
    assert printed == committed


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("RULEBOOK_MAX_IN_FLIGHT", "abc", "--max-in-flight: not a whole number: 'abc'"),
    ("RULEBOOK_MAX_BATCH", "0", "--max-batch: must be at least 1, not 0"),
    ("RULEBOOK_MAX_CACHED_ORDERS", "0", "--max-cached-orders: must be at least 1, not 0"),
    ("RULEBOOK_GRACE_SECONDS", "-1", "--grace-seconds: must be a finite number of at least 0"),
    ("RULEBOOK_PORT", "eighty", "--port: invalid int value: 'eighty'"),
    ("RULEBOOK_LOG_FORMAT", "xml", "--log-format must be text or json, not 'xml'"),
])
def test_a_bad_serve_setting_from_the_environment_is_a_usage_error(
        monkeypatch, capsys, variable, value, message) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["serve", "--rulebooks", "rules/books/lowprice-2024"]) == 2
    assert message in capsys.readouterr().err


def test_serve_settings_from_the_environment_reach_the_configuration(monkeypatch) -> None:
    import service.server as server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda config, log_json=False: seen.update(
        config=config, log_json=log_json) or 0)
    for variable, value in {"RULEBOOK_PORT": "50123", "RULEBOOK_MAX_CACHED_ORDERS": "1000",
                            "RULEBOOK_GRACE_SECONDS": "2.5", "RULEBOOK_LOG_FORMAT": "json",
                            "RULEBOOK_MAX_IN_FLIGHT": "8"}.items():
        monkeypatch.setenv(variable, value)
    assert main(["serve", "--rulebooks", "rules/books/lowprice-2024"]) == 0
    config = seen["config"]
    assert (config.port, config.max_cached_orders, config.grace_seconds,
            config.max_in_flight, seen["log_json"]) == (50123, 1000, 2.5, 8, True)
    # A flag still wins over its variable.
    assert main(["serve", "--rulebooks", "rules/books/lowprice-2024", "--port", "7"]) == 0
    assert seen["config"].port == 7
