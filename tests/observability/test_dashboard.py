"""The Grafana dashboard (helm/rlog/dashboards/rlog.json) against the real Prometheus of the
observed cluster (conftest.py): every panel's PromQL, with the template variables filled in the way
Grafana would, must evaluate without error and return series with values over the run.

Expected empty, for now: panels whose every query reads a metric listed in EXPECTED_EMPTY and
Prometheus has no series of that metric yet. Such a panel is reported as skipped (its queries must
still evaluate without error); as soon as the metric is exported it is checked like any other.
"""

from __future__ import annotations

import json
import re

import pytest

from scenario import ALERTS, DASHBOARD, MASTER_POD, NAMESPACE, REPO_ROOT, SENTINEL_PODS, Observed
import harness
from promlib import PromError, finite_values

# Metric -> why the panel reading it may be empty.
EXPECTED_EMPTY: dict[str, str] = {}

RATE_INTERVAL = "10s"  # what Grafana's $__rate_interval is for a short range and a 1 s scrape


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def query_panels(dash: dict) -> list[dict]:
    out = []
    for p in dash.get("panels", []):
        out += [p] + list(p.get("panels", []))
    return [p for p in out if p.get("type") != "row"]


def variables(dash: dict) -> dict[str, dict]:
    return {v["name"]: v for v in dash.get("templating", {}).get("list", [])}


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's interpolation for the variables the dashboard uses: $name, ${name} and
    ${name:format} (format ignored: values here are already regex-safe)."""
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise AssertionError(f"unknown variable ${name} in {expr!r}")
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def grafana_regex_escape(value: str) -> str:
    """What Grafana's Prometheus data source does to each value of a multi-value variable
    (prometheusSpecialRegexEscape): regex metacharacters escaped for a PromQL string."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value)


def values_for(pods: list[str]) -> dict[str, str]:
    return {
        "namespace": NAMESPACE,
        # "All" of a multi-value variable: Grafana joins the escaped values into one alternation.
        "instance": "(" + "|".join(grafana_regex_escape(p) for p in pods) + ")",
        "__rate_interval": RATE_INTERVAL,
        "__interval": "2s",
        "__range": "5m",
    }


ALL_PODS = [MASTER_POD, *SENTINEL_PODS]
DASH = load_dashboard()
PANELS = query_panels(DASH)


def test_dashboard_shape():
    assert DASH.get("title") and DASH.get("uid"), "title and uid"
    assert 36 <= DASH.get("schemaVersion", 0) <= 39, DASH.get("schemaVersion")
    ids = [p["id"] for p in DASH["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids {ids}"
    v = variables(DASH)
    assert v["datasource"]["type"] == "datasource" and v["datasource"]["query"] == "prometheus"
    for name in ("namespace", "instance"):
        assert v[name]["type"] == "query", name
        assert v[name]["datasource"]["uid"] == "${datasource}", name
    for p in PANELS:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p.get("targets"), f"panel {p['title']!r} has no targets"
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            assert t.get("expr", "").strip(), f"panel {p['title']!r}: target {t.get('refId')} without expr"
            for var in ("namespace", "instance"):
                assert f"${var}" in t["expr"], f"panel {p['title']!r} ignores ${var}: {t['expr']}"
    titles = " | ".join(p["title"] for p in PANELS).lower()
    for want in ("inserts per second by write concern and outcome", "insert latency p50 / p99",
                 "replication latency", "lag per sentinel", "sentinel status", "read-only",
                 "wal fsync", "entries per replication batch"):
        assert want in titles, f"no panel about {want!r}: {titles}"


def _variable_query(var: dict) -> str:
    q = var.get("query")
    return q.get("query", "") if isinstance(q, dict) else q or ""


@pytest.mark.parametrize("name,expected", [("namespace", {NAMESPACE}), ("instance", set(ALL_PODS))])
def test_template_variable_resolves(observed: Observed, name: str, expected: set[str]):
    q = _variable_query(variables(DASH)[name])
    m = re.fullmatch(r"\s*label_values\((.+),\s*(\w+)\s*\)\s*", q)
    assert m, f"${name}: expected label_values(<series selector>, <label>), got {q!r}"
    selector = substitute(m.group(1), {"namespace": NAMESPACE})
    got = set(observed.prom.api(f"label/{m.group(2)}/values", {"match[]": selector}))
    assert expected <= got, f"${name} = {q} offers {got}, expected at least {expected}"


def _referenced_metrics(expr: str) -> set[str]:
    """Metric families an expression reads (histogram series suffixes stripped)."""
    return {re.sub(r"_(bucket|count|sum)$", "", m) for m in re.findall(r"\brlog_[a-z0-9_]+", expr)}


def _exported(observed: Observed, metric: str) -> bool:
    res = observed.prom.query(f'count({{__name__=~"{metric}(_bucket|_count|_sum)?"}})')
    return bool(res)


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
@pytest.mark.parametrize("pods", [ALL_PODS, [".*"]], ids=["all-pods", "regex-any"])
def test_panel_queries_return_series(observed: Observed, panel: dict, pods: list[str]):
    prom = observed.prom
    values = values_for(pods) if pods != [".*"] else {**values_for(ALL_PODS), "instance": ".*"}
    start, end = observed.whole_run()
    empty, skipped = [], []
    for t in panel["targets"]:
        expr = substitute(t["expr"], values)
        assert "$" not in expr, f"unsubstituted variable in {expr}"
        try:
            prom.query(expr, at=end)
            series = prom.query_range(expr, start, end, step=1)
        except PromError as e:
            pytest.fail(f"panel {panel['title']!r} target {t['refId']}: {expr}\n  -> {e}")
        with_values = [s for s in series if finite_values(s)]
        if not with_values:
            waived = [m for m in _referenced_metrics(expr)
                      if m in EXPECTED_EMPTY and not _exported(observed, m)]
            (skipped if waived else empty).append((t["refId"], expr, waived))
            continue
        # Every {{label}} of the legend is a label of the result.
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
            missing = [s["metric"] for s in with_values if label not in s["metric"]]
            assert not missing, (f"panel {panel['title']!r} target {t['refId']}: legend uses "
                                 f"{{{{{label}}}}} but series lack it: {missing[:3]}")
    assert not empty, "\n".join(
        f"panel {panel['title']!r} target {ref}: no series with values over the run: {e}"
        for ref, e, _ in empty)
    if skipped:
        reasons = sorted({EXPECTED_EMPTY[m] for _, _, ms in skipped for m in ms})
        waived = sorted({m for _, _, ms in skipped for m in ms})
        pytest.skip(f"expected empty until exported: {', '.join(waived)} ({'; '.join(reasons)})")


def test_sentinel_status_panel_maps_every_status(observed: Observed):
    """The status panel's value mapping covers what its query yields over the run (0/1/2); the
    killed sentinel shows Unhealthy (2) at some point and Healthy (0) at the end."""
    panel = next(p for p in PANELS if p["title"] == "Sentinel status")
    mapped = {float(k) for m in panel["fieldConfig"]["defaults"]["mappings"] for k in m["options"]}
    expr = substitute(panel["targets"][0]["expr"], values_for(ALL_PODS))
    start, end = observed.whole_run()
    # A step finer than the scrape interval, so no sample is stepped over.
    res = observed.prom.query_range(expr, start, end, step=0.25)
    seen = {v for s in res for _, v in finite_values(s)}
    assert seen <= mapped, f"values {seen - mapped} have no mapping"
    down = next(s for s in res if s["metric"].get("sentinel") == observed.down_sentinel)
    assert 2 in [v for _, v in finite_values(down)], f"{observed.down_sentinel} never Unhealthy: {down}"
    healthy = {s: 0.0 for s in observed.sentinels.values()}
    harness.wait_until(
        lambda: {s["metric"]["sentinel"]: float(s["value"][1]) for s in observed.prom.query(expr)} == healthy,
        20, 0.25, "every sentinel Healthy (0) on the status panel")


def test_metric_names_match_what_rlog_exports(observed: Observed):
    """No typo in a metric name: everything the dashboard and the alert rules read is a metric the
    cluster exported (or one listed in EXPECTED_EMPTY), every exported metric has a panel, and
    docs/OPERATIONS.md explains each."""
    names = observed.prom.api("label/__name__/values", {"match[]": '{__name__=~"rlog_.*"}'})
    exported = {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}
    assert exported, "Prometheus scraped no rlog_ metric"
    in_dashboard = set().union(*(_referenced_metrics(t["expr"]) for p in PANELS for t in p["targets"]))
    in_rules = _referenced_metrics(ALERTS.read_text())
    known = exported | set(EXPECTED_EMPTY)
    assert in_dashboard <= known, f"the dashboard reads metrics nobody exports: {in_dashboard - known}"
    assert in_rules <= known, f"alerts.yaml reads metrics nobody exports: {in_rules - known}"
    assert exported <= in_dashboard, f"exported but on no panel: {exported - in_dashboard}"
    doc = (REPO_ROOT / "docs" / "OPERATIONS.md").read_text()
    undocumented = sorted(m for m in exported | set(EXPECTED_EMPTY) if f"`{m}" not in doc)
    assert not undocumented, f"docs/OPERATIONS.md does not describe {undocumented}"


def test_a_sentinel_that_left_is_neither_counted_nor_shown(tmp_path):
    """After a scale-down the master exports the departed sentinel's three rlog_sentinel_up series
    at 0 (they clear the alert). The overview counted it as configured ("1 of 2 healthy") and
    the status panel showed it as 0, which maps to a green Healthy. Evaluated by promtool's rule
    unit tests over two series sets, one per sentinel; no cluster needed."""
    from promlib import promtool
    overview = next(p for p in PANELS if p["title"] == "Healthy sentinels")
    configured = next(t["expr"] for t in overview["targets"] if t.get("legendFormat") == "configured")
    status = next(p for p in PANELS if p["title"] == "Sentinel status")["targets"][0]["expr"]
    values = values_for([MASTER_POD])
    up = 'rlog_sentinel_up{{namespace="{ns}", pod="{pod}", sentinel="{s}", status="{st}"}}'
    series = []
    for sentinel, current in (("stays:9091", "Healthy"), ("left:9091", None)):
        for st in ("Healthy", "Suspected", "Unhealthy"):
            series.append({"series": up.format(ns=NAMESPACE, pod=MASTER_POD, s=sentinel, st=st),
                           "values": "1x5" if st == current else "0x5"})
    tests = {"tests": [{
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {"expr": substitute(configured, values), "eval_time": "4m",
             "exp_samples": [{"labels": "{}", "value": 1}]},
            {"expr": substitute(status, values), "eval_time": "4m",
             "exp_samples": [{"labels": '{sentinel="stays:9091"}', "value": 0}]},
        ],
    }]}
    path = tmp_path / "dashboard_test.yaml"
    path.write_text(json.dumps(tests))  # JSON is YAML.
    r = promtool("test", "rules", str(path))
    assert r.returncode == 0, f"promtool test rules:\n{r.stdout}\n{r.stderr}"
