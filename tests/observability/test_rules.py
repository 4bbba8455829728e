"""The alerting rules (helm/rlog/files/alerts.yaml): `promtool check rules` accepts them, their
unit tests (alerts_test.yaml, `promtool test rules`) pass, every alert has a firing case there and
a section in docs/OPERATIONS.md. No cluster needed. (That the rules evaluate against the real
metrics and go pending during real faults is checked in test_prometheus.py.)
"""

from __future__ import annotations

import re

from scenario import ALERTS, HERE, REPO_ROOT
from promlib import promtool

UNIT_TESTS = HERE / "alerts_test.yaml"
OPERATIONS = REPO_ROOT / "docs" / "OPERATIONS.md"

EXPECTED_ALERTS = {
    "RlogMasterReadOnly", "RlogSentinelUnhealthy", "RlogSentinelFlapping", "RlogSentinelLagHigh",
    "RlogInsertTimeouts", "RlogHighInsertLatency", "RlogReplicationLatencyHigh", "RlogWalFsyncSlow",
    "RlogLogNearlyFull", "RlogTlsCertificateExpiresSoon",
}


def alert_names() -> list[str]:
    return re.findall(r"^\s*-\s*alert:\s*(\w+)\s*$", ALERTS.read_text(), re.M)


def test_promtool_check_rules_accepts_the_rules():
    r = promtool("check", "rules", str(ALERTS))
    assert r.returncode == 0, f"promtool check rules {ALERTS}:\n{r.stdout}\n{r.stderr}"
    m = re.search(r"SUCCESS: (\d+) rules found", r.stdout + r.stderr)
    assert m and int(m.group(1)) == len(alert_names()), r.stdout + r.stderr


def test_promtool_check_rules_rejects_a_broken_rule(tmp_path):
    """The check above can fail: the same file with one expression broken is refused."""
    text = ALERTS.read_text()
    broken = text.replace("max by (namespace, pod) (rlog_read_only) == 1",
                          "max by (namespace, pod) (rlog_read_only == 1", 1)
    assert broken != text, "the expression this self-test breaks is gone from alerts.yaml"
    bad = tmp_path / "alerts.yaml"
    bad.write_text(broken)
    r = promtool("check", "rules", str(bad))
    assert r.returncode != 0, f"promtool accepted a broken rule:\n{r.stdout}"


def test_alert_names_and_labels():
    names = alert_names()
    assert len(names) == len(set(names)), f"duplicate alert names: {names}"
    assert set(names) == EXPECTED_ALERTS, f"alerts {sorted(names)}, expected {sorted(EXPECTED_ALERTS)}"
    # Each rule block has a severity, a summary, a description and a `for`.
    blocks = re.split(r"^\s*-\s*alert:\s*", ALERTS.read_text(), flags=re.M)[1:]
    for b in blocks:
        name = b.split()[0]
        for want in (r"^\s*severity:\s*(critical|warning)\s*$", r"^\s*summary:", r"^\s*description:",
                     r"^\s*for:\s*\d+[smh]\s*$"):
            assert re.search(want, b, re.M), f"{name}: no line matching {want}"


def test_promtool_unit_tests_pass():
    r = promtool("test", "rules", str(UNIT_TESTS))
    assert r.returncode == 0, f"promtool test rules {UNIT_TESTS}:\n{r.stdout}\n{r.stderr}"


def test_every_alert_has_a_firing_unit_test():
    text = UNIT_TESTS.read_text()
    firing = set()
    for m in re.finditer(r"alertname:\s*(\w+)\s*\n\s*exp_alerts:\s*\n\s*-\s*exp_labels", text):
        firing.add(m.group(1))
    missing = set(alert_names()) - firing
    assert not missing, f"alerts without a unit test where they fire: {sorted(missing)}"


def test_every_alert_is_documented():
    doc = OPERATIONS.read_text()
    missing = [n for n in alert_names() if n not in doc]
    assert not missing, f"{OPERATIONS} does not explain {missing}"
