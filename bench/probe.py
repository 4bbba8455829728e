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
  probe.py rounds DIR NAME,... A/B,...
                                      req/s of each NAME in every DIR/roundK/NAME.json, the
                                      ratios A/B per round, and their median, min and max
  probe.py cpu-run OUT.json NAME=PID... -- CMD...
                                      runs CMD (an rlog-bench --json run) with its stdout in
                                      OUT.json, adding the CPU seconds each named process, the
                                      client (CMD) and the machine's steal used meanwhile
"""
import fcntl
import json
import os
import random
import re
import resource
import socket
import subprocess
import sys
import time
import urllib.request


def free_ports(n):
    """N free loopback ports below the kernel's ephemeral range, so that no outgoing connection
    takes one before the node binds it (a port from bind(0) can be taken so), and none reserved
    by a running test process (tests/process/harness.py's lock files)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError):
        low = 32768
    ports, socks = [], []
    rng = random.Random()
    for _ in range(200 * n):
        if len(ports) == n or low <= 11000:
            break
        port = rng.randrange(10000, low)
        if port in ports:
            continue
        try:
            with open(f"/tmp/rlog-test-ports/{port}.lock", "a", encoding="ascii") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # Released on close.
        except FileNotFoundError:
            pass
        except OSError:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
        ports.append(port)
    while len(ports) < n:  # No room below the ephemeral range: the kernel's picks.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
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
    rows = [("GET /healthz", "healthz"), ("POST /no-route (404)", "post404"), ("insert w=1", "w1"),
            ("insert w=2", "w2"), ("insert w=3", "w3")]
    runs = {}
    print("| workload | req/s (ok) | p50 ms | p90 ms | p99 ms | p999 ms | max ms | 4xx / 5xx / io |")
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
    print(f"| POST /no-route / GET /healthz (ceiling of w=1 / healthz) | "
          f"{ratio('post404', 'healthz'):.2f} |")
    cpu_table(runs, rows)


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
    cpu_table(runs, [(f"w=3, {mode}", mode) for mode in modes])


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def rounds_table(directory, names, ratios):
    """One row per round (DIR/round1, round2, ...): the 2xx req/s of every run and the ratios
    between them, measured minutes apart at most, then the median, min and max of each ratio over
    the rounds. A ratio is a number per round, so a slow minute on the shared host moves one
    round's ratio, not the median."""
    rounds = []
    k = 1
    while os.path.isdir(f"{directory}/round{k}"):
        rps = {}
        for name in names:
            with open(f"{directory}/round{k}/{name}.json") as f:
                rps[name] = json.load(f)["throughput_rps"]
        rounds.append(rps)
        k += 1
    if not rounds:
        raise SystemExit(f"no {directory}/round1")
    def value(rps, ratio):
        a, b = ratio.split("/")
        return rps[a] / rps[b] if rps[b] else 0.0
    print("| round | " + " | ".join(f"{n} req/s" for n in names) + " | " +
          " | ".join(ratios) + " |")
    print("|---:|" + "---:|" * (len(names) + len(ratios)))
    for k, rps in enumerate(rounds, 1):
        print(f"| {k} | " + " | ".join(f"{rps[n]:.0f}" for n in names) + " | " +
              " | ".join(f"{value(rps, r):.2f}" for r in ratios) + " |")
    print()
    print("| ratio | median | min | max | rounds |")
    print("|---|---:|---:|---:|---:|")
    for r in ratios:
        values = [value(rps, r) for rps in rounds]
        print(f"| {r} | {median(values):.2f} | {min(values):.2f} | {max(values):.2f} | "
              f"{len(values)} |")


def process_cpu_seconds(pid):
    """utime + stime of a process from /proc/PID/stat (fields 14 and 15, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_line():
    """The machine's 'cpu' line of /proc/stat, in seconds: user nice system idle iowait irq
    softirq steal ..."""
    with open("/proc/stat") as f:
        return [int(v) / os.sysconf("SC_CLK_TCK") for v in f.readline().split()[1:]]


def steal_seconds():
    """Time the hypervisor gave this machine's CPUs to others (the 8th value of 'cpu')."""
    values = cpu_line()
    return values[7] if len(values) > 7 else 0.0


def busy_seconds():
    """CPU time spent by anything on this machine: user, nice, system, irq, softirq."""
    v = cpu_line()
    return v[0] + v[1] + v[2] + v[5] + v[6]


def cpu_run(out_path, named_pids, cmd):
    before = {name: process_cpu_seconds(pid) for name, pid in named_pids}
    steal0, busy0, wall0 = steal_seconds(), busy_seconds(), time.monotonic()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "w") as out:
        subprocess.run(cmd, stdout=out, check=True)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.monotonic() - wall0
    cpu = {name: process_cpu_seconds(pid) - before[name] for name, pid in named_pids}
    cpu["client"] = (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
    with open(out_path) as f:
        result = json.load(f)
    result["cpu_s"] = cpu
    result["machine_busy_s"] = busy_seconds() - busy0
    result["wall_s"] = wall
    result["steal_pct"] = 100 * (steal_seconds() - steal0) / (wall * os.cpu_count())
    with open(out_path, "w") as f:
        json.dump(result, f)


def cpu_table(runs, rows):
    """CPU microseconds per answered request, per process, for runs that have cpu_s: the cores
    a process kept busy over the whole run (warm-up included) divided by the measured rate."""
    if not all("cpu_s" in runs[name] for _, name in rows):
        return
    print()
    print("| workload | CPU us/request: master | sentinels | client | all | rest of machine | "
          "steal % |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, name in rows:
        r = runs[name]
        rate = r["throughput_rps"] * r["wall_s"] or 1
        cpu = r["cpu_s"]
        sentinels = sum(v for k, v in cpu.items() if k.startswith("sentinel"))
        total = sum(cpu.values())
        per = lambda seconds: f"{1e6 * seconds / rate:.1f}"
        # Kernel threads (writeback, block I/O completion) and anything else running.
        rest = max(0.0, r.get("machine_busy_s", total) - total)
        print(f"| {label} | {per(cpu.get('master', 0))} | {per(sentinels)} | "
              f"{per(cpu['client'])} | {per(total)} | {per(rest)} | {r['steal_pct']:.0f} |")


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
    elif cmd == "rounds" and len(argv) == 5:
        rounds_table(argv[2], argv[3].split(","), argv[4].split(","))
    elif cmd == "cpu-run" and "--" in argv[3:]:
        split = argv.index("--")
        named = [tuple(a.split("=", 1)) for a in argv[3:split]]
        cpu_run(argv[2], [(name, int(pid)) for name, pid in named], argv[split + 1:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
