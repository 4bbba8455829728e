"""pytest wiring for the observability suite.

- `observed` (session scope): starts a three-node rlog cluster (tests/process/harness.py) and a
  real Prometheus (promlib.py) and runs the scenario of scenario.py once; the tests share it. Every
  child is killed by PID at the end of the session, pass or fail (and by an atexit hook as a last
  resort).
- `--timeout=SECONDS` per test (pytest-timeout when installed, else SIGALRM here); the first test
  that uses `observed` pays for the scenario (~15 s), so keep the limit well above that.
- On failure the tails of the nodes' and Prometheus' logs are attached to the report.
- Everything is skipped when the rlog binary, prometheus or promtool is missing.
"""

from __future__ import annotations

import atexit
import os
import pathlib
import time
from typing import Any

import pytest

import scenario  # first: puts the process-level harness on sys.path
import harness
from time_limit import pytest_addoption, pytest_runtest_protocol, pytest_runtest_teardown  # noqa: F401
import promlib
from scenario import ALERTS, MASTER_POD, NAMESPACE, SENTINEL_PODS, Observed

atexit.register(harness.reap_all)

# The nodes run in their own working directories: a relative RLOG_BIN (as in the examples) is
# taken relative to where pytest was started.
if os.environ.get("RLOG_BIN") and not os.path.isabs(os.environ["RLOG_BIN"]):
    os.environ["RLOG_BIN"] = os.path.abspath(os.environ["RLOG_BIN"])


# ------------------------------------------------------------------------------------------------
# Options, skips, time limit (as in tests/process/conftest.py)



def _missing_tools() -> list[str]:
    missing = []
    if not os.access(harness.rlog_bin(), os.X_OK):
        missing.append(f"rlog binary ({harness.rlog_bin()}; set RLOG_BIN)")
    for tool in (promlib.PROMETHEUS_BIN, promlib.PROMTOOL_BIN):
        if not os.access(tool, os.X_OK):
            missing.append(tool)
    return missing


def pytest_sessionstart(session):
    if harness.rlog_bin_explicit() and not os.access(harness.rlog_bin(), os.X_OK):
        raise pytest.UsageError(f"RLOG_BIN={harness.rlog_bin()} is not an executable file")


def pytest_collection_modifyitems(config, items):
    missing = _missing_tools()
    if missing:
        skip = pytest.mark.skip(reason="not available: " + ", ".join(missing))
        for item in items:
            item.add_marker(skip)


_current: dict[str, Any] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    cluster = _current.get("cluster")
    if cluster is not None:
        for name, text in cluster.logs():
            rep.sections.append((f"rlog log: {name}", text))
    prom = _current.get("prometheus")
    if prom is not None:
        rep.sections.append(("prometheus log", prom.log_tail()))


# ------------------------------------------------------------------------------------------------
# The observed cluster


def _make_tls(root: pathlib.Path) -> list[str]:
    """A CA (90 days) and one certificate for 127.0.0.1 (60 days) for every node; their flags."""
    pki = harness.Pki(root)
    pki.ca("ca", days=90)
    pki.cert("node", "ca", "IP:127.0.0.1", days=60)
    return pki.flags("node", "ca")


@pytest.fixture(scope="session")
def observed(tmp_path_factory) -> Observed:
    """A master and two sentinels on 127.0.0.1 (the master with a data directory, so the WAL's
    metrics appear once it exports them; replication over mutual TLS, so the certificate expiry
    metrics do), scraped every second by Prometheus with the labels a ServiceMonitor would give
    (namespace, pod) and with helm/rlog/files/alerts.yaml loaded; the scenario of scenario.py
    already run."""
    workdir = tmp_path_factory.mktemp("observability")
    tls = _make_tls(workdir / "pki")
    cluster = harness.Cluster(workdir / "cluster", n_sentinels=2,
                              master_args=["--data-dir", str(workdir / "master-data")] + tls,
                              sentinel_args=tls)
    prom = promlib.Prometheus(workdir / "prometheus")
    _current.update(cluster=cluster, prometheus=prom)
    pods = {"master": MASTER_POD, "s1": SENTINEL_PODS[0], "s2": SENTINEL_PODS[1]}
    try:
        (workdir / "master-data").mkdir()
        (workdir / "prometheus").mkdir()
        targets = [(n.base_url.removeprefix("http://"),
                    {"namespace": NAMESPACE, "pod": pods[n.name], "service": "rlog"})
                   for n in cluster.nodes]
        promlib.write_config(prom.config_path, targets, rule_files=[ALERTS])
        start = time.time()
        cluster.start()
        prom.start()
        prom.wait_targets_up(len(targets))
        yield scenario.run_scenario(prom, cluster, pods, start)
    finally:
        cluster.shutdown()
        prom.shutdown()
