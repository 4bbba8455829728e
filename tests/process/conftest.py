"""pytest wiring for the process-level suite.

- `make_cluster(...)`: a factory fixture; every cluster it makes is torn down (children killed by
  PID, SIGTERM then SIGKILL) when the test ends, pass or fail.
- `spawned`: a list for processes a test starts by hand (test_config); reaped the same way.
- On failure, the tail of every node's log is attached to the report.
- `--timeout=SECONDS` per test (provided by pytest-timeout when installed, else by SIGALRM here,
  covering setup and call; teardown is bounded by the harness's own SIGTERM/SIGKILL deadlines).
"""

from __future__ import annotations

import atexit
import os

import pytest

import harness
from time_limit import pytest_addoption, pytest_runtest_protocol, pytest_runtest_teardown  # noqa: F401

atexit.register(harness.reap_all)



def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes more than a few seconds")


def pytest_sessionstart(session):
    path = harness.rlog_bin()
    if not os.access(path, os.X_OK):
        if harness.rlog_bin_explicit():
            raise pytest.UsageError(f"RLOG_BIN={path} is not an executable file")


def pytest_collection_modifyitems(config, items):
    path = harness.rlog_bin()
    if not os.access(path, os.X_OK):
        skip = pytest.mark.skip(reason=f"rlog binary not built yet ({path}); set RLOG_BIN")
        for item in items:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for cluster in getattr(item, "_rlog_clusters", []):
        for name, text in cluster.logs():
            rep.sections.append((f"rlog log: {cluster.workdir.name}/{name}", text))
    for node in getattr(item, "_rlog_nodes", []):
        rep.sections.append((f"rlog log: {node.name}", node.log_tail()))


@pytest.fixture
def make_cluster(request, tmp_path):
    clusters: list[harness.Cluster] = []
    request.node._rlog_clusters = clusters

    def factory(n_sentinels: int = 2, master_args=(), sentinel_args=()) -> harness.Cluster:
        c = harness.Cluster(tmp_path / f"cluster{len(clusters)}", n_sentinels=n_sentinels,
                            master_args=master_args, sentinel_args=sentinel_args)
        clusters.append(c)
        return c

    yield factory
    for c in clusters:
        c.shutdown()


@pytest.fixture
def spawned(request):
    """Nodes a test starts itself; each is shut down at the end."""
    nodes: list[harness.Node] = []
    request.node._rlog_nodes = nodes
    yield nodes
    for n in nodes:
        n.shutdown()
