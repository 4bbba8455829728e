"""The scenario the observability suite observes: a three-node rlog cluster scraped by a real
Prometheus, driven through known traffic (see `run_scenario`), and what the tests need to know
about it afterwards (`Observed`). conftest.py runs it once per session as the `observed` fixture.

Phases (wall-clock start and end recorded in `Observed.phases`):
  baseline   writes at w=1, 2, 3 and one malformed body, all nodes up
  one_down   sentinel s1 killed (SIGKILL): writes at w=1 and w=2 succeed, one w=3 times out (504)
  recovered  s1 restarted: it catches up (lag 0) and is Healthy again
  read_only  both sentinels SIGSTOPped: the master turns read-only and refuses a write (503)
  final      both resumed; writes at w=1, 2, 3 succeed again; everything caught up
Each phase ends only after the node itself showed the state (/health) and Prometheus scraped the
node, and evaluated its rules, after that moment: the tests then ask Prometheus what it saw.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import time
from typing import Optional

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE.parent / "process") not in sys.path:
    sys.path.insert(0, str(HERE.parent / "process"))  # the process-level harness

import harness  # noqa: E402
import promlib  # noqa: E402

REPO_ROOT = HERE.parents[1]
DASHBOARD = REPO_ROOT / "helm" / "rlog" / "dashboards" / "rlog.json"
ALERTS = REPO_ROOT / "helm" / "rlog" / "files" / "alerts.yaml"

NAMESPACE = "test"
MASTER_POD = "rlog-master-0"
SENTINEL_PODS = ["rlog-sentinel-0", "rlog-sentinel-1"]


# ------------------------------------------------------------------------------------------------
# The observed cluster


@dataclasses.dataclass
class Observed:
    prom: promlib.Prometheus
    cluster: harness.Cluster
    sent: dict[tuple[str, str], int]            # (write_concern, outcome) -> answers seen by us
    phases: dict[str, tuple[float, float]]      # phase -> (start, end), wall-clock seconds
    pods: dict[str, str]                        # node name (master, s1, s2) -> pod label
    sentinels: dict[str, str]                   # node name (s1, s2) -> `sentinel` label value
    appended_while_down: int                    # entries the master appended while s1 was down
    start: float
    end: float

    @property
    def down_sentinel(self) -> str:
        """The `sentinel` label of the sentinel that was killed and restarted."""
        return self.sentinels["s1"]

    def whole_run(self) -> tuple[float, float]:
        return self.start, self.end

    def range_seconds(self, at: Optional[float] = None) -> int:
        """A PromQL range covering the whole run when evaluated at `at` (default: now)."""
        return int((at or time.time()) - self.start) + 5


class _Driver:
    """Sends the traffic and keeps score of what the master answered."""

    def __init__(self, cluster: harness.Cluster):
        self.c = cluster
        self.sent: dict[tuple[str, str], int] = {}

    def count(self, w: str, outcome: str) -> None:
        self.sent[(w, outcome)] = self.sent.get((w, outcome), 0) + 1

    def writes(self, w: int, n: int, prefix: str) -> None:
        for i in range(n):
            self.c.master.insert_ok(f"{prefix}-w{w}-{i}", w)
            self.count(str(w), "ok")

    def expect(self, status: int, outcome: str, concern: str, **insert_kw) -> None:
        r = self.c.master.insert(**insert_kw)
        assert r.status_code == status, (
            f"insert {insert_kw}: expected {status}, got {r.status_code} {r.content[:300]!r}")
        self.count(concern, outcome)

    def sentinel_state(self, s: harness.Node) -> dict:
        return self.c.sentinel_health(s)

    def wait_sentinel(self, s: harness.Node, pred, desc: str, timeout: float = 20.0) -> dict:
        return harness.wait_until(lambda: (lambda h: h if pred(h) else None)(self.sentinel_state(s)),
                                  timeout, 0.05, f"{s.name}: {desc}")

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        last = self.c.master.last_id()
        for s in self.c.sentinels:
            self.wait_sentinel(s, lambda h: h["status"] == "Healthy" and h["lag"] == 0
                               and h["ackedId"] >= last, "Healthy with lag 0", timeout)
            harness.wait_until(lambda: s.last_id() >= last, timeout, 0.05,
                               f"{s.name} /health lastId >= {last}")


def run_scenario(prom: promlib.Prometheus, cluster: harness.Cluster, pods: dict[str, str],
                 start: float) -> Observed:
    d = _Driver(cluster)
    s1, s2 = cluster.sentinels
    master_sel = f'rlog_log_last_id{{pod="{MASTER_POD}"}}'
    phases: dict[str, tuple[float, float]] = {}

    def scraped_all(t: float) -> None:
        for pod in [MASTER_POD] + SENTINEL_PODS:
            prom.wait_scraped_after(t, f'rlog_log_last_id{{pod="{pod}"}}')

    # baseline ----------------------------------------------------------------------------------
    t = time.time()
    d.writes(1, 6, "base")
    d.writes(2, 5, "base")
    d.writes(3, 4, "base")
    r = cluster.master.post("/insert", data=b'{"message": ')
    assert r.status_code == 400, f"malformed body: {r.status_code} {r.content[:300]!r}"
    d.count("other", "bad_request")
    d.wait_caught_up()
    scraped_all(time.time())
    phases["baseline"] = (t, time.time())

    # one_down: s1 killed -----------------------------------------------------------------------
    t = time.time()
    before = cluster.master.last_id()
    s1.kill9()
    d.wait_sentinel(s1, lambda h: h["status"] == "Unhealthy", "Unhealthy")
    d.writes(1, 5, "down")
    d.writes(2, 3, "down")
    d.expect(504, "timeout", "3", message="down-w3-timeout", w=3, timeout_ms=300)
    d.wait_sentinel(s1, lambda h: h["lag"] > 0 and h["status"] == "Unhealthy", "lag > 0 while down")
    appended_while_down = cluster.master.last_id() - before
    prom.wait_scraped_after(time.time(), master_sel)
    phases["one_down"] = (t, time.time())

    # recovered: s1 restarted and caught up -----------------------------------------------------
    t = time.time()
    s1.start()
    d.wait_caught_up()
    scraped_all(time.time())
    phases["recovered"] = (t, time.time())

    # read_only: both sentinels frozen ----------------------------------------------------------
    t = time.time()
    s1.stop()
    s2.stop()
    try:
        cluster.wait_read_only()
        d.expect(503, "read_only", "1", message="ro-w1", w=1)
        prom.wait_scraped_after(time.time(), master_sel)
    finally:
        s1.cont()
        s2.cont()
    phases["read_only"] = (t, time.time())

    # final -------------------------------------------------------------------------------------
    t = time.time()
    cluster.wait_writable()
    d.wait_caught_up()
    d.writes(1, 2, "final")
    d.writes(2, 2, "final")
    d.writes(3, 2, "final")
    d.wait_caught_up()
    scraped_all(time.time())
    end = time.time()
    phases["final"] = (t, end)

    return Observed(prom=prom, cluster=cluster, sent=d.sent, phases=phases, pods=pods,
                    sentinels={s.name: cluster.sentinel_name(s) for s in cluster.sentinels},
                    appended_while_down=appended_while_down,
                    start=start, end=end)
