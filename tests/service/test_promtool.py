"""`promtool check metrics` on the service's exposition: names, help, units and types lint clean.

promtool comes with Debian's `prometheus` package (`apt-get install -y prometheus`); these tests
fail, rather than skip, when it is missing, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from service.aggregates import snapshot_from_store
from service.metrics import ServiceMetrics
from service.state import SQLiteStateStore
from tests.service.test_metrics import HAND_MADE, TIERS, replayed_metrics


def promtool() -> str:
    """The promtool binary: $PROMTOOL, or promtool on PATH."""
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        pytest.fail("promtool not found: install Debian's prometheus package "
                    "(apt-get install -y prometheus) or set PROMTOOL")
    return path


def check_metrics(exposition: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), "check", "metrics"], input=exposition.decode(),
                          capture_output=True, text=True, timeout=60)


def test_replayed_exposition_lints_clean():
    m, engine, _, _ = replayed_metrics(merchants=20, days=5)
    try:
        result = check_metrics(m.exposition())
    finally:
        engine.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_hand_made_decisions_and_edge_case_snapshots_lint_clean():
    m = ServiceMetrics()
    m.observe_decisions("lowprice-2024", "primary", HAND_MADE, TIERS.get)
    m.set_rulebook_info("lowprice-2024", "primary", "abc", {"refund": "def"})
    # A shadow set with an empty state, and a merchant without GMV under the primary.
    m.register_state_source("reformed-2025", "shadow",
                            lambda: snapshot_from_store(SQLiteStateStore(), float("-inf")))
    store = SQLiteStateStore()
    store.merchant("m1")["size_tier"] = "small"
    m.register_state_source("lowprice-2024", "primary", lambda: snapshot_from_store(store, 0.0))
    result = check_metrics(m.exposition())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_promtool_does_complain_about_a_bad_exposition():
    """The lint is real: the same call reports a counter without `_total` and abbreviated units."""
    result = check_metrics(b"# HELP rulebook_latency_ms x\n# TYPE rulebook_latency_ms counter\n"
                           b"rulebook_latency_ms 1\n")
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr
