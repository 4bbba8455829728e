"""The benchmark scripts of docs/PERFORMANCE.md still run and print what the page quotes.

bench/run_all.sh and bench/durability.sh are run for real, briefly (1 s per workload, two
rounds), against the binaries under test; their tables are parsed back. The median of the rounds
summary is checked against hand-made runs through bench/probe.py itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

import harness

ROOT = Path(__file__).resolve().parents[2]
BENCH_BIN = os.environ.get("RLOG_BENCH_BIN", str(ROOT / "build/bench/rlog-bench"))


def load_probe():
    spec = importlib.util.spec_from_file_location("probe", ROOT / "bench/probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_round(directory: Path, k: int, rps: dict[str, float]) -> None:
    (directory / f"round{k}").mkdir(parents=True)
    for name, value in rps.items():
        (directory / f"round{k}" / f"{name}.json").write_text(json.dumps({"throughput_rps": value}))


def test_rounds_summary_takes_the_median_of_per_round_ratios(tmp_path, capsys):
    probe = load_probe()
    # Ratios b/a per round: 0.5, 0.9, 0.7, 0.6 -> median 0.65 (even count: mean of the middle two).
    for k, (a, b) in enumerate([(100, 50), (100, 90), (200, 140), (50, 30)], 1):
        write_round(tmp_path, k, {"a": a, "b": b})
    probe.rounds_table(str(tmp_path), ["a", "b"], ["b/a"])
    out = capsys.readouterr().out
    assert "| 3 | 200 | 140 | 0.70 |" in out
    assert "| b/a | 0.65 | 0.50 | 0.90 | 4 |" in out
    write_round(tmp_path, 5, {"a": 10, "b": 0})  # A failed run counts as ratio 0, not skipped.
    probe.rounds_table(str(tmp_path), ["a", "b"], ["b/a"])
    assert "| b/a | 0.60 | 0.00 | 0.90 | 5 |" in capsys.readouterr().out


def test_rounds_summary_refuses_an_empty_directory(tmp_path):
    with pytest.raises(SystemExit, match="round1"):
        load_probe().rounds_table(str(tmp_path), ["a"], ["a/a"])


def run_script(script: str, env: dict[str, str], timeout: float = 150) -> str:
    """Runs a bench script in its own process group (its nodes too), killed as a group on
    timeout or failure, and returns its standard output."""
    if not os.access(BENCH_BIN, os.X_OK):
        pytest.skip(f"rlog-bench not built ({BENCH_BIN}); set RLOG_BENCH_BIN")
    full_env = dict(os.environ, RLOG_BIN=harness.rlog_bin(), RLOG_BENCH_BIN=BENCH_BIN,
                    DURATION="1", WARMUP="0", CONNECTIONS="8", ROUNDS="2", **env)
    proc = subprocess.Popen(["bash", str(ROOT / "bench" / script)], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # Anything the script left behind.
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{err[-3000:]}"
    return out


def rows(out: str, first_cell: str) -> list[list[str]]:
    """The cells of every markdown table row whose first cell matches first_cell (a regex)."""
    found = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and re.fullmatch(first_cell, cells[0]):
            found.append(cells)
    return found


@pytest.mark.slow
def test_run_all_prints_every_round_and_the_median_ratios():
    out = run_script("run_all.sh", {})
    per_round = rows(out, r"[0-9]+")
    assert [r[0] for r in per_round] == ["1", "2"], out
    for r in per_round:
        assert all(float(v) > 0 for v in r[1:6]), f"a workload answered nothing: {r}"
    summary = {r[0]: r for r in rows(out, r"w1/healthz|w3/w1|post404/healthz")}
    assert set(summary) == {"w1/healthz", "w3/w1", "post404/healthz"}, out
    for r in summary.values():
        assert float(r[2]) <= float(r[1]) <= float(r[3]) and r[4] == "2", r
    workloads = rows(out, r"GET /healthz|POST /no-route \(404\)|insert w=[123]")
    results = [r for r in workloads if len(r) == 8]  # The latency tables, not the CPU ones.
    assert len(results) == 10, out  # 5 workloads x 2 rounds
    for r in results:
        assert float(r[1]) > 0 and r[7].split(" / ")[1] == "0", f"no ok answers, or 5xx: {r}"
    # The 404s of the baseline are its ok answers, not errors; every other run has no 4xx.
    assert all(r[7].split(" / ")[0] == "0" for r in results), out


@pytest.mark.slow
def test_durability_runs_each_mode_on_disk_every_round():
    out = run_script("durability.sh", {"MODES": "memory always"})
    per_round = rows(out, r"[0-9]+")
    assert [r[0] for r in per_round] == ["1", "2"], out
    assert rows(out, r"always/memory")[0][4] == "2", out
    results = rows(out, r"memory|always")
    assert len(results) == 4 and all(float(r[1]) > 0 for r in results), out
    # Each `always` cluster wrote and fsynced its own data directories.
    fsyncs = re.findall(r"always: sentinel 1 made (\d+) fsyncs", out)
    assert len(fsyncs) == 2 and all(int(n) > 0 for n in fsyncs), out


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["memory", "always"], ids=["in memory", "fsync always"])
def test_catchup_brings_the_late_sentinel_to_the_masters_last_id(storage):
    # With data directories the sentinels sync on their replication thread, the mode whose
    # catch-up the fsync count was added for.
    on_disk = storage != "memory"
    env = {"ENTRIES": "20000", "STORAGE": storage}
    if on_disk:
        env["NODE_FLAGS"] = "--set wal.sync_on_replication_thread=true"
    out = run_script("catchup.sh", env)
    title = rows(out, r"late sentinel catch-up .*")
    assert len(title) == 1, out
    # 20,000 inserts plus the warm-up writes; the sentinel reached the master's last id.
    entries = int(re.search(r"\((\d+) entries of 100 B", title[0][0]).group(1))
    assert 20000 < entries < 20010, out
    assert ("fsync: always" in title[0][0]) == on_disk, out
    rate = rows(out, r"entries/s, from start")
    assert len(rate) == 1 and float(rate[0][1]) > 0, out
    fsyncs = re.search(r"sentinel 2 made (\d+) fsyncs for the (\d+) batches", out)
    if not on_disk:
        assert fsyncs is None, out
        return
    assert fsyncs, out
    made, batches = int(fsyncs.group(1)), int(fsyncs.group(2))
    # At most 512 entries a batch (replication.batch_max_entries); at least one fsync for the
    # copy, and none past one per batch (plus the few of the sentinel's start-up).
    assert batches >= entries // 512, out
    assert 1 <= made <= batches + 10, out
