#!/usr/bin/env python3
"""Small helpers for bench/run_all.sh and bench/catchup.sh (standard library only).

  probe.py free-ports N               N distinct free loopback TCP ports, space separated
  probe.py last-id BASE_URL           a node's last id: "lastId" in GET /health, else the
                                      rlog_log_last_id gauge of GET /metrics
  probe.py wait-last-id BASE_URL TARGET TIMEOUT_S START_EPOCH_S
                                      polls last-id every 20 ms until it reaches TARGET; prints
                                      "SECONDS_TO_FIRST_ENTRY SECONDS_TO_TARGET" since START
  probe.py table DIR                  the markdown table of run_all.sh from DIR/*.json
  probe.py durability-table DIR MODE...
                                      the table of durability.sh from DIR/MODE.json
"""
import json
import re
import socket
import sys
import time
import urllib.request


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))


def fetch(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.read().decode()


def find_key(obj, key):
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            found = find_key(v, key)
            if found is not None:
                return found
    return None


def last_id(base):
    try:
        value = find_key(json.loads(fetch(base + "/health")), "lastId")
        if value is not None:
            return int(value)
    except (OSError, ValueError):
        pass
    m = re.search(r"^rlog_log_last_id(?:\{[^}]*\})? ([0-9.e+]+)$", fetch(base + "/metrics"), re.M)
    if not m:
        raise SystemExit(f"no lastId in {base}/health and no rlog_log_last_id in {base}/metrics")
    return int(float(m.group(1)))


def wait_last_id(base, target, timeout, start):
    first = None
    while True:
        now = time.time() - start
        try:
            current = last_id(base)
        except (OSError, ValueError, SystemExit):
            current = 0
        if current > 0 and first is None:
            first = now
        if current >= target:
            print(f"{first:.3f} {now:.3f}")
            return
        if now > timeout:
            raise SystemExit(f"{base}: last id {current} < {target} after {timeout} s")
        time.sleep(0.02)


def table(directory):
    rows = [("GET /healthz", "healthz"), ("insert w=1", "w1"), ("insert w=2", "w2"),
            ("insert w=3", "w3")]
    runs = {}
    print("| workload | req/s (2xx) | p50 ms | p90 ms | p99 ms | p999 ms | max ms | 4xx / 5xx / io |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, name in rows:
        with open(f"{directory}/{name}.json") as f:
            r = runs[name] = json.load(f)
        print(f"| {label} | {r['throughput_rps']:.0f} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | "
              f"{r['p99_ms']:.3f} | {r['p999_ms']:.3f} | {r['max_ms']:.3f} | "
              f"{r['errors_4xx']} / {r['errors_5xx']} / {r['errors_io']} |")
    def ratio(a, b):
        return runs[a]["throughput_rps"] / runs[b]["throughput_rps"] if runs[b]["throughput_rps"] else 0
    print()
    print("| ratio | value |")
    print("|---|---:|")
    print(f"| insert w=1 / GET /healthz | {ratio('w1', 'healthz'):.2f} |")
    print(f"| insert w=3 / insert w=1 | {ratio('w3', 'w1'):.2f} |")


def durability_table(directory, modes):
    runs = {}
    print("| w=3 with | req/s (2xx) | p50 ms | p99 ms | max ms | 4xx / 5xx / io |")
    print("|---|---:|---:|---:|---:|---|")
    for mode in modes:
        with open(f"{directory}/{mode}.json") as f:
            r = runs[mode] = json.load(f)
        print(f"| {mode} | {r['throughput_rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
              f"{r['max_ms']:.3f} | {r['errors_4xx']} / {r['errors_5xx']} / {r['errors_io']} |")
    if "memory" in runs and runs["memory"]["throughput_rps"]:
        print()
        print("| ratio | value |")
        print("|---|---:|")
        for mode in modes:
            if mode != "memory":
                value = runs[mode]["throughput_rps"] / runs["memory"]["throughput_rps"]
                print(f"| fsync {mode} / memory | {value:.2f} |")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "free-ports" and len(argv) == 3:
        free_ports(int(argv[2]))
    elif cmd == "last-id" and len(argv) == 3:
        print(last_id(argv[2]))
    elif cmd == "wait-last-id" and len(argv) == 6:
        wait_last_id(argv[2], int(argv[3]), float(argv[4]), float(argv[5]))
    elif cmd == "table" and len(argv) == 3:
        table(argv[2])
    elif cmd == "durability-table" and len(argv) >= 4:
        durability_table(argv[2], argv[3:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
