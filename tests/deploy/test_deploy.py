"""deploy/: Prometheus config, alert rules and their tests, the Grafana dashboard.

The checks run the real tools of Debian's `prometheus` package (`promtool`, and the `prometheus`
server for one end-to-end test); they fail rather than skip when the package is missing.
Every PromQL expression of the alerts and the dashboard must name only series the service really
exports, with labels those series have, and every metric the service exports must have a panel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.aggregates import load_stream_criteria
from service.metrics import DEFAULT_PORT, ServiceMetrics
from tests.service.test_metrics import HAND_MADE, TIERS, replayed_metrics
from tests.service.test_promtool import promtool

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "rulebook-auditor.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

#: Series Prometheus makes itself for every target, and the labels it adds to every series.
SYNTHETIC_SERIES = {"up"}
TARGET_LABELS = {"job", "instance"}
#: What the dashboard's Grafana variables stand for when the expressions are checked.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "30s"}


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


# -- what the service exports -------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_metrics() -> Iterator[ServiceMetrics]:
    m, engine, _, _ = replayed_metrics(merchants=20, days=5)
    # Hand-made decisions add the series a short replay may not reach (platform-borne refunds).
    m.observe_decisions("lowprice-2024", "primary", HAND_MADE, TIERS.get)
    yield m
    engine.close()


@pytest.fixture(scope="module")
def exported(sample_metrics) -> dict[str, set[str]]:
    """Series name -> the label names it carries, from a real exposition."""
    from tests.service.test_metrics import samples

    out: dict[str, set[str]] = {}
    for s in samples(sample_metrics.exposition()):
        out.setdefault(s.name, set()).update(s.labels)
    return out


# -- reading PromQL -------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_SELECTOR = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)\s*\{([^{}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"\"")
_IDENT = re.compile(r"(?<![\w.:$])([a-zA-Z_:][\w:]*)(?!\w)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
             "group_left", "group_right", "inf", "nan", "Inf", "NaN",
             "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
             "bottomk", "topk", "quantile"}


def _substitute(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def read_promql(expr: str) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """(metric names, label names matched per metric, label names grouped on) of an expression."""
    e = _STRING.sub('""', _substitute(expr))
    e = re.sub(r"\[[^\]]*\]", " ", e)  # range and subquery selectors
    grouped: set[str] = set()
    for _, labels in _GROUPING.findall(e):
        grouped |= {x.strip() for x in labels.split(",") if x.strip()}
    e = _GROUPING.sub(" ", e)
    matched: dict[str, set[str]] = {}
    for name, matchers in _SELECTOR.findall(e):
        matched.setdefault(name, set()).update(_MATCHER.findall(matchers))
    e = re.sub(r"\{[^{}]*\}", " ", e)
    names = {m.group(1) for m in _IDENT.finditer(e)
             if not m.group(2) and m.group(1) not in _KEYWORDS}
    return names, matched, grouped


def test_read_promql():
    names, matched, grouped = read_promql(
        'histogram_quantile(0.99, sum by (method, le) (rate(rulebook_rpc_duration_seconds_bucket'
        '{code!="OK", method=~"$m"}[$__rate_interval]))) > 1e-3 and on (set) '
        'rulebook_x_total offset 5m unless sum(rulebook_y) / count without (a) (rulebook_z{b="}"})')
    assert names == {"rulebook_rpc_duration_seconds_bucket", "rulebook_x_total", "rulebook_y",
                     "rulebook_z"}
    assert matched == {"rulebook_rpc_duration_seconds_bucket": {"code", "method"},
                       "rulebook_z": {"b"}}
    assert grouped == {"method", "le", "set", "a"}


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [r for g in data["groups"] for r in g["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_exprs() -> list[tuple[str, str]]:
    """(where, expression) of every dashboard query, templating queries included."""
    out = [(f"panel {p['title']!r} {t['refId']}", t["expr"])
           for p in dashboard_panels() for t in p["targets"]]
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["definition"])
            assert m, var["definition"]
            out.append((f"variable {var['name']}",
                        f'count by ({m.group(2)}) ({m.group(1)})'))
    return out


def all_exprs() -> list[tuple[str, str]]:
    return [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()] + dashboard_exprs()


# -- promtool ------------------------------------------------------------------------------------

def test_prometheus_config_is_valid_with_its_rule_files():
    result = run("check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout
    assert "SUCCESS: 10 rules found" in result.stdout


def test_prometheus_config_scrapes_the_service():
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "rulebook-auditor"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets and all(t.endswith(f":{DEFAULT_PORT}") for t in targets)
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_alert_rules_are_valid():
    result = run("check", "rules", str(PROM / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rule_unit_tests_pass():
    result = run("test", "rules", str(PROM / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_unit_tests_cover_firing_and_quiet_alerts():
    data = yaml.safe_load((PROM / "alerts_test.yml").read_text())
    cases = [c for t in data["tests"] for c in t["alert_rule_test"]]
    firing = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert len(firing) >= 3 and len(quiet) >= 3
    assert len(firing & quiet) >= 3  # the same alert shown both firing and not firing


def test_one_alert_per_stream_criterion_citing_its_standard():
    rules = alert_rules()
    for rule in rules:
        assert {"summary", "description", "citation"} <= set(rule["annotations"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
    for c in load_stream_criteria():
        matching = [r for r in rules if "rulebook_criterion_outside_bounds" in r["expr"]
                    and f'criterion="{c.id}"' in r["expr"]]
        assert len(matching) == 1, c.id
        citation = matching[0]["annotations"]["citation"]
        law = c.standard.split(":")[0].split(" Art.")[0]
        assert law in citation, (c.id, law)
        assert set(re.findall(r"Art\. \d+", c.standard)) <= \
            set(re.findall(r"Art\. \d+", citation)), c.id


# -- PromQL names only exported series -------------------------------------------------------------

@pytest.mark.parametrize("where,expr", all_exprs(), ids=[w for w, _ in all_exprs()])
def test_expressions_name_only_exported_series(where, expr, exported):
    names, matched, grouped = read_promql(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = names - exported.keys() - SYNTHETIC_SERIES
    assert not unknown, f"{where}: not exported: {sorted(unknown)}"
    labels_of_expr: set[str] = set(TARGET_LABELS)
    for name in names & exported.keys():
        labels_of_expr |= exported[name]
    for name, labels in matched.items():
        have = exported.get(name, set()) | TARGET_LABELS
        assert labels <= have, f"{where}: {name} has no label {sorted(labels - have)}"
    assert grouped <= labels_of_expr, f"{where}: groups on {sorted(grouped - labels_of_expr)}"


def test_every_exported_metric_has_a_panel(exported):
    used: set[str] = set()
    for _, expr in dashboard_exprs():
        used |= read_promql(expr)[0]
    missing = {n for n in exported if not n.endswith("_created")} - used
    # A histogram is on the dashboard through any of its series.
    families = {re.sub(r"_(bucket|count|sum|gcount|gsum)$", "", n) for n in used}
    missing = {n for n in missing
               if re.sub(r"_(bucket|count|sum|gcount|gsum)$", "", n) not in families}
    assert not missing, sorted(missing)


def test_dashboard_expressions_parse(tmp_path):
    """promtool parses every dashboard query (as recording rules)."""
    rules = [{"record": f"dashboard:query_{i}", "expr": _substitute(expr)}
             for i, (_, expr) in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# -- the dashboard ----------------------------------------------------------------------------

def test_dashboard_identity_and_variables():
    d = dashboard()
    assert d["uid"] == "rulebook-auditor"
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"set", "cohort"} <= variables.keys()
    assert set(variables["cohort"]["query"].split(",")) == {"small", "medium", "large",
                                                            "unknown"}
    for name in ("set", "role"):
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_panel_uses_the_datasource_variable():
    panels = dashboard_panels()
    assert len(panels) >= 20
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_panels_do_not_overlap():
    boxes = [p["gridPos"] for p in dashboard()["panels"]]
    for b in boxes:
        assert b["x"] + b["w"] <= 24
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, (a, b)


def test_panels_filter_by_set_and_cohort():
    for p in dashboard_panels():
        for t in p["targets"]:
            for name, labels in read_promql(t["expr"])[1].items():
                if "cohort" in labels:
                    assert 'cohort=~"$cohort"' in t["expr"], (p["title"], name)
    exprs = " ".join(e for _, e in dashboard_exprs())
    assert exprs.count('set=~"$set"') >= 20 and exprs.count('cohort=~"$cohort"') >= 10


def test_grafana_provisioning():
    dashboards = yaml.safe_load((PROVISIONING / "dashboards.yml").read_text())
    (provider,) = dashboards["providers"]
    assert dashboards["apiVersion"] == 1 and provider["type"] == "file"
    assert provider["options"]["path"]
    sources = yaml.safe_load((PROVISIONING / "datasources.yml").read_text())
    (source,) = sources["datasources"]
    assert sources["apiVersion"] == 1 and source["type"] == "prometheus"
    assert source["url"].startswith("http")


# -- end to end: a real Prometheus scrapes the service ---------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _wait(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}: {last!r}")


def test_prometheus_scrapes_the_service_and_runs_every_query(sample_metrics, tmp_path):
    binary = os.environ.get("PROMETHEUS") or shutil.which("prometheus")
    if not binary:
        pytest.fail("prometheus not found: install Debian's prometheus package "
                    "(apt-get install -y prometheus) or set PROMETHEUS")
    server, thread = sample_metrics.serve(port=0, addr="127.0.0.1")
    metrics_port = server.server_port
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    config["rule_files"] = [str(PROM / f) for f in config["rule_files"]]
    config.pop("alerting", None)
    config["scrape_configs"] = [j for j in config["scrape_configs"]
                                if j["job_name"] == "rulebook-auditor"]
    config["scrape_configs"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{metrics_port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        def target_up():
            targets = _get(f"{api}/targets")["data"]["activeTargets"]
            return [t for t in targets if t["labels"]["job"] == "rulebook-auditor"
                    and t["health"] == "up"]

        _wait("the service's target to be up", target_up)

        def query(expr: str) -> dict[str, Any]:
            return _get(f"{api}/query?" + urllib.parse.urlencode({"query": expr}))

        # A few scrapes, so that rates have two samples.
        _wait("rates", lambda: query("rate(rulebook_decisions_total[1m])")["data"]["result"])
        for where, expr in dashboard_exprs():
            expr = _substitute(expr).replace("$set", ".*").replace("$role", ".*") \
                .replace("$cohort", ".*")
            answer = query(expr)
            assert answer["status"] == "success", (where, answer)
        # Gauge histograms arrive through OpenMetrics and quantiles work on them.
        median = query('histogram_quantile(0.5, sum by (cohort, le) '
                       '(rulebook_merchant_burden_ratio_bucket{category="total"}))')
        assert median["data"]["result"]
        # The scrape config drops the client's `_created` series.
        assert query("rulebook_decisions_total")["data"]["result"]
        assert not query('{__name__=~"rulebook_.+_created"}')["data"]["result"]
        criteria = query("rulebook_criterion_outside_bounds")["data"]["result"]
        assert {r["metric"]["criterion"] for r in criteria} == \
            {c.id for c in load_stream_criteria()}

        def rules_healthy():
            groups = _get(f"{api}/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return len(rules) == len(alert_rules()) and all(r["health"] == "ok" for r in rules) \
                and rules

        rules = _wait("every alert rule to be evaluated", rules_healthy)
        # With the replayed lowprice-2024 state the criteria are outside bounds: pending alerts.
        states = {r["name"]: r["state"] for r in rules}
        assert states["RulebookBelowCostPriceChanges"] in ("pending", "firing")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
