#!/usr/bin/env python3
"""A fake rlog cluster for dry-running the kind end-to-end scripts (.github/scripts/e2e-*.sh)
without Kubernetes: together with the kubectl and helm shims next to it, it checks the
scripts' own logic (jq pipelines, waits, pass/fail decisions), not rlog.

Usage: fake_cluster.py STATE_DIR MODE
  Serves the log on an ephemeral 127.0.0.1 port, written to STATE_DIR/fake-cluster.ready once
  it listens (the test reads it there: a port chosen in advance can be taken meanwhile by a
  test running in parallel), at the top (the scripts' port-forward) and per pod under
  /pod/<name>/<path> (the kubectl shim maps the API server's pod proxy there).
  A write with writeConcern w waits until 1 + sentinels >= w (POST /fake/scale?replicas=N).
  MODE good: every pod shows the whole log.
  MODE lose: rlog-sentinel-1 never shows id 5 (the chaos check must fail).
  MODE reorder: every sentinel shows ids 3 and 4 swapped (the acceptance check must fail).
  MODE misreport: the answer to the 5th insert claims id 999 (the chaos check must fail).
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STATE_DIR, MODE = sys.argv[1], sys.argv[2]
LOCK = threading.Condition()
LOG = []          # [{"id", "message", "timestamp"}]
KEYS = {}         # idempotencyKey -> id
SENTINELS = [1]   # current replica count


def view(pod):
    entries = list(LOG)
    if pod == "rlog-sentinel-1" and MODE == "lose":
        entries = [e for e in entries if e["id"] != 5]
    if pod.startswith("rlog-sentinel-") and MODE == "reorder" and len(entries) >= 4:
        entries[2], entries[3] = dict(entries[3]), dict(entries[2])
        entries[2]["id"], entries[3]["id"] = 3, 4
    return entries


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, obj, content_type="application/json"):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self):
        url = urlparse(self.path)
        parts = url.path.split("/")
        if len(parts) > 2 and parts[1] == "pod":
            return parts[2], "/" + "/".join(parts[3:]), url
        return "rlog-master-0", url.path, url

    def do_GET(self):
        pod, path, _ = self.route()
        if path in ("/healthz", "/readyz"):
            self.send_json(200, {"status": "ok"})
        elif path == "/get-all":
            with LOCK:
                self.send_json(200, view(pod))
        elif path == "/metrics":
            with LOCK:
                last = len(LOG)
            names = ["rlog_inserts_total", "rlog_insert_duration_seconds_bucket",
                     "rlog_replication_latency_seconds_bucket", "rlog_write_acks_total",
                     "rlog_sentinel_acked_id", "rlog_sentinel_lag_entries", "rlog_sentinel_up",
                     "rlog_read_only", "rlog_replication_batches_total",
                     "rlog_replication_entries_total"]
            text = "# TYPE rlog_log_last_id gauge\n" + f"rlog_log_last_id {last}\n"
            text += "".join(f'{n}{{x="1"}} 1\n' for n in names)
            self.send_json(200, text.encode(), "text/plain; version=0.0.4")
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        _, path, url = self.route()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")) or 0)
        if path == "/fake/scale":
            with LOCK:
                SENTINELS[0] = int(parse_qs(url.query)["replicas"][0])
                LOCK.notify_all()
            self.send_json(200, {"replicas": SENTINELS[0]})
            return
        if path != "/insert":
            self.send_json(404, {"error": "not found"})
            return
        req = json.loads(body)
        w = int(req.get("writeConcern", 1))
        timeout = req.get("timeoutMs", 600000) / 1000.0
        with LOCK:
            key = req.get("idempotencyKey")
            if key in KEYS:
                self.send_json(200, {"id": KEYS[key]})
                return
            entry = {"id": len(LOG) + 1, "message": req["message"], "timestamp": time.time()}
            LOG.append(entry)
            if key:
                KEYS[key] = entry["id"]
            deadline = time.time() + timeout
            while 1 + SENTINELS[0] < w:
                if not LOCK.wait(max(0.0, deadline - time.time())) and time.time() >= deadline:
                    self.send_json(504, {"error": "timeout", "id": entry["id"]})
                    return
        self.send_json(200, {"id": 999 if MODE == "misreport" and entry["id"] == 5 else entry["id"]})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ready = f"{STATE_DIR}/fake-cluster.ready"
    with open(ready + ".tmp", "w", encoding="ascii") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(ready + ".tmp", ready)  # the reader never sees a half-written port
    server.serve_forever()


if __name__ == "__main__":
    main()
