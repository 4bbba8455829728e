"""A real Prometheus for the observability suite: Debian's `prometheus` on 127.0.0.1, a generated
config, a data directory under the test's tmp dir, and a small client for its HTTP API.

The child is started through the process harness (`harness.spawn`), so it is killed by PID with
the rlog nodes (SIGTERM, a short grace, SIGKILL), also when a test fails. Every HTTP call has a
timeout, goes to 127.0.0.1 only and ignores proxy settings. Waiting is for a condition, bounded.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys
import time
from typing import Any, Iterable, Optional

import requests

_PROCESS_TESTS = str(pathlib.Path(__file__).resolve().parent.parent / "process")
if _PROCESS_TESTS not in sys.path:
    sys.path.insert(0, _PROCESS_TESTS)  # the process-level harness

import harness  # noqa: E402

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL_BIN = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool") or "/usr/bin/promtool"

SCRAPE_INTERVAL_S = 1
API_TIMEOUT = 10.0


class PromError(AssertionError):
    pass


def _yaml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def write_config(path: pathlib.Path, targets: Iterable[tuple[str, dict[str, str]]],
                 rule_files: Iterable[pathlib.Path] = ()) -> None:
    """A config that scrapes each `host:port` with its own labels (namespace, pod, ...), the way the
    Prometheus Operator labels the pods a ServiceMonitor selects."""
    lines = [
        "global:",
        f"  scrape_interval: {SCRAPE_INTERVAL_S}s",
        "  scrape_timeout: 900ms",
        f"  evaluation_interval: {SCRAPE_INTERVAL_S}s",
    ]
    rule_files = list(rule_files)
    if rule_files:
        lines.append("rule_files:")
        lines += [f"  - {_yaml_str(str(p))}" for p in rule_files]
    lines += [
        "scrape_configs:",
        "  - job_name: rlog",
        "    metrics_path: /metrics",
        "    static_configs:",
    ]
    for target, labels in targets:
        lines.append(f"      - targets: [{_yaml_str(target)}]")
        lines.append("        labels:")
        lines += [f"          {k}: {_yaml_str(v)}" for k, v in labels.items()]
    path.write_text("\n".join(lines) + "\n")


class Prometheus:
    def __init__(self, workdir: pathlib.Path):
        self.workdir = workdir
        self.port = harness.free_port()
        self.config_path = workdir / "prometheus.yml"
        self.data_dir = workdir / "prometheus-data"
        self.log_path = workdir / "prometheus.log"
        self.proc: Optional[subprocess.Popen] = None
        self._session = requests.Session()
        self._session.trust_env = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Prometheus":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            PROMETHEUS_BIN,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        self.proc = harness.spawn(cmd, self.log_path, cwd=self.workdir)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            return self._session.get(self.base_url + "/-/ready", timeout=1.0).status_code == 200
        harness.wait_until(ready, timeout, 0.1, "prometheus /-/ready")
        return self

    def shutdown(self) -> None:
        if self.proc is not None:
            harness.kill_proc(self.proc)

    def log_tail(self, max_bytes: int = 8000) -> str:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return "(no log)"
        return data[-max_bytes:].decode("utf-8", "replace")

    # -- HTTP API
    def api(self, path: str, params: Optional[dict] = None) -> Any:
        """GET /api/v1/<path>; returns `data`, raises PromError on an error answer."""
        r = self._session.get(f"{self.base_url}/api/v1/{path}", params=params, timeout=API_TIMEOUT)
        try:
            body = r.json()
        except ValueError:
            raise PromError(f"/api/v1/{path} {params}: {r.status_code} {r.content[:300]!r}")
        if body.get("status") != "success":
            raise PromError(f"/api/v1/{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: Optional[float] = None) -> list[dict]:
        """Instant vector (or scalar wrapped as one unlabelled sample): [{metric, value}]."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", params)
        if data["resultType"] == "vector":
            return data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        raise PromError(f"{expr}: unexpected result type {data['resultType']}")

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        """Range query: [{metric, values: [[t, "v"], ...]}]."""
        data = self.api("query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                        "step": f"{step:g}"})
        if data["resultType"] != "matrix":
            raise PromError(f"{expr}: unexpected result type {data['resultType']}")
        return data["result"]

    def value(self, expr: str, at: Optional[float] = None) -> Optional[float]:
        """The single value of an instant query, or None when it returns no series."""
        res = self.query(expr, at)
        if not res:
            return None
        assert len(res) == 1, f"{expr}: expected one series, got {len(res)}: {res}"
        return float(res[0]["value"][1])

    def by(self, expr: str, label: str, at: Optional[float] = None) -> dict[str, float]:
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in self.query(expr, at)}

    def wait_value(self, expr: str, pred, timeout: float = 20.0, desc: str = "") -> float:
        """Polls an instant query until its single value satisfies `pred`."""
        def ok():
            v = self.value(expr)
            return (v,) if v is not None and pred(v) else None
        return harness.wait_until(ok, timeout, 0.25, desc or f"prometheus: {expr}")[0]

    def targets(self) -> list[dict]:
        return self.api("targets", {"state": "active"})["activeTargets"]

    def wait_targets_up(self, n: int, timeout: float = 20.0) -> list[dict]:
        def up():
            ts = self.targets()
            return ts if len(ts) == n and all(t["health"] == "up" for t in ts) else None
        return harness.wait_until(up, timeout, 0.25, f"{n} scrape targets up")

    def wait_scraped_after(self, t: float, selector: str, timeout: float = 20.0) -> float:
        """Waits until the series `selector` has a sample stamped after wall time `t` (so what was
        true at `t` is in the TSDB) and, when rules are loaded, until every rule group has been
        evaluated after that sample. Returns the sample's timestamp."""
        def fresh():
            v = self.value(f"timestamp({selector})")
            return (v,) if v is not None and v > t else None
        (ts,) = harness.wait_until(fresh, timeout, 0.2, f"a scrape of {selector} after {t:.3f}")
        # The sample is queryable from now on; an evaluation that starts later sees it (one that
        # started after `ts` but before the scrape was committed may not).
        visible = time.time()

        def evaluated():
            groups = self.api("rules")["groups"]
            return all(_rfc3339(g.get("lastEvaluation")) > visible for g in groups) or None
        harness.wait_until(evaluated, timeout, 0.2, f"rule evaluation after {visible:.3f}")
        return ts


def _rfc3339(s: Optional[str]) -> float:
    """Seconds since the epoch for Prometheus' RFC 3339 timestamps (nanosecond fraction, Z or
    offset); 0 for the zero time."""
    if not s or s.startswith("0001-"):
        return 0.0
    main, _, rest = s.partition(".")
    frac = ""
    tz = "Z"
    if rest:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, tz = rest[:i], rest[i:] or "Z"
    elif main.endswith("Z"):
        main, tz = main[:-1], "Z"
    elif len(main) > 19:
        main, tz = main[:19], main[19:]
    if tz == "Z":
        tz = "+00:00"
    dt = datetime.datetime.fromisoformat(main + tz)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def finite_values(series: dict) -> list[tuple[float, float]]:
    """(t, v) of a range-query series, without NaN/Inf samples."""
    out = []
    for t, v in series.get("values", []):
        f = float(v)
        if math.isfinite(f):
            out.append((float(t), f))
    return out


def promtool(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL_BIN, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, env=harness.child_env())
