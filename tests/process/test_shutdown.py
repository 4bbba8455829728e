"""SIGTERM: stop taking writes, answer parked writes within the drain timeout, exit 0."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from harness import DRAIN_TIMEOUT_MS, LONG_HTTP_TIMEOUT, assert_error, json_body, wait_until

N_PARKED = 5
SLACK = 4.0  # seconds on top of the drain timeout for signal delivery, process exit and reaping


def _park(pool, m, prefix):
    futs = [pool.submit(m.insert, f"{prefix}-{i}", 3, None, None, LONG_HTTP_TIMEOUT)
            for i in range(N_PARKED)]
    wait_until(lambda: m.last_id() == N_PARKED, 20, 0.05, f"master stored {N_PARKED} w=3 writes")
    assert not any(f.done() for f in futs), "w=3 writes answered with a sentinel down"
    return futs


def test_sigterm_drain_refuses_new_writes_and_completes_parked_ones(make_cluster):
    drain_ms = 6000
    c = make_cluster(n_sentinels=2, master_args=["--drain-timeout-ms", str(drain_ms)])
    c.start(sentinels=[0])
    m, s2 = c.master, c.sentinels[1]

    with ThreadPoolExecutor(max_workers=N_PARKED) as pool:
        parked = _park(pool, m, "drain")
        t0 = time.monotonic()
        m.terminate()
        # Draining: not ready, still alive, new writes refused with 503 + Retry-After.
        wait_until(lambda: m.get("/readyz", timeout=2.0).status_code == 503, 5, 0.02, "/readyz 503")
        assert m.get("/healthz", timeout=2.0).status_code == 200
        r = m.insert("after-sigterm", w=1, http_timeout=5.0)
        assert_error(r, 503)
        assert r.headers.get("Retry-After") is not None, dict(r.headers)

        # The missing sentinel comes back during the drain: the parked writes can now complete.
        s2.start()
        results = [f.result(timeout=drain_ms / 1000 + SLACK) for f in parked]
        rc = m.wait_exit(drain_ms / 1000 + SLACK)
        elapsed = time.monotonic() - t0

    assert rc == 0, f"master exited with {rc}"
    assert elapsed <= drain_ms / 1000 + SLACK, f"exit took {elapsed:.2f}s"
    for res in results:
        assert res.status_code in (200, 503, 504), (res.status_code, res.content[:300])
        body = json_body(res)
        if res.status_code == 200:
            assert isinstance(body.get("id"), int) and 1 <= body["id"] <= N_PARKED, body
        else:
            assert isinstance(body.get("error"), str), body
    # Whatever was answered, nothing after SIGTERM was appended: the sentinels hold exactly 1..5.
    wait_until(lambda: [e["id"] for e in s2.get_all()] == list(range(1, N_PARKED + 1)), 10, 0.05,
               "S2 caught up with the 5 parked writes")
    assert all(e["message"].startswith("drain-") for e in s2.get_all())


def test_sigterm_answers_unfinishable_parked_writes_within_drain_timeout(make_cluster):
    drain_ms = 1500
    c = make_cluster(n_sentinels=2, master_args=["--drain-timeout-ms", str(drain_ms)])
    c.start(sentinels=[0])
    m = c.master

    with ThreadPoolExecutor(max_workers=N_PARKED) as pool:
        parked = _park(pool, m, "stuck")
        t0 = time.monotonic()
        m.terminate()
        results = []
        for f in parked:
            try:
                results.append(f.result(timeout=drain_ms / 1000 + SLACK))
            except requests.RequestException as e:
                raise AssertionError(f"a parked write got no HTTP answer during the drain: {e!r}")
        answered = time.monotonic() - t0
        rc = m.wait_exit(drain_ms / 1000 + SLACK)
        elapsed = time.monotonic() - t0

    assert rc == 0, f"master exited with {rc}"
    assert answered <= drain_ms / 1000 + SLACK and elapsed <= drain_ms / 1000 + SLACK, (answered, elapsed)
    for res in results:
        # S2 never came back: a w=3 write cannot have been acknowledged with 200.
        assert res.status_code in (503, 504), (res.status_code, res.content[:300])
        assert isinstance(json_body(res).get("error"), str), res.content[:300]


def test_sigterm_with_nothing_parked_exits_0_promptly(make_cluster):
    drain_ms, sentinel_drain_ms = 5000, 1000
    c = make_cluster(n_sentinels=2, master_args=["--drain-timeout-ms", str(drain_ms)],
                     sentinel_args=["--drain-timeout-ms", str(sentinel_drain_ms)])
    c.start()
    m, (s1, s2) = c.master, c.sentinels
    assert m.insert_ok("one", w=3) == 1
    # A sentinel exits 0 on SIGTERM (within its drain timeout, though the master's stream is open).
    s1.terminate()
    assert s1.wait_exit(sentinel_drain_ms / 1000 + SLACK) == 0
    # Nothing parked on the master: it need not wait for the drain timeout.
    t0 = time.monotonic()
    m.terminate()
    rc = m.wait_exit(drain_ms / 1000 + SLACK)
    elapsed = time.monotonic() - t0
    assert rc == 0, f"master exited with {rc}"
    assert elapsed < drain_ms / 1000, f"idle master took {elapsed:.2f}s to exit (drain timeout {drain_ms} ms)"
    s2.terminate()
    assert s2.wait_exit(sentinel_drain_ms / 1000 + SLACK) == 0


def test_sigterm_leaves_every_wal_clean_for_the_next_start(make_cluster, tmp_path):
    # A clean stop cuts the preallocated zeros off each node's last segment, so the next start
    # reports no torn tail (which after a clean stop would be a false alarm in logs and metrics).
    data = tmp_path / "data"
    c = make_cluster(n_sentinels=2,
                     master_args=["--data-dir", str(data / "master")],
                     sentinel_args=lambda i: ["--data-dir", str(data / f"s{i + 1}")])
    c.start()
    for i in range(20):
        assert c.master.insert_ok(f"clean-{i}", w=3) == i + 1
    for n in [c.master, *c.sentinels]:
        n.terminate()
    for n in [c.master, *c.sentinels]:
        assert n.wait_exit(15) == 0, n.log_tail()
    for name in ["master", "s1", "s2"]:
        segment = sorted((data / name / "wal").glob("wal-*.log"))[-1]
        assert not segment.read_bytes().endswith(b"\0"), f"{segment}: zeros left after a clean stop"

    c.start()
    assert c.master.health()["wal"]["truncatedBytes"] == 0, c.master.health()
    for s in c.sentinels:
        assert s.health()["recovery"]["truncatedBytes"] == 0, s.health()
        assert "rlog_wal_truncated_bytes 0" in s.get("/metrics").text
    assert c.master.insert_ok("after", w=3) == 21
    c.wait_converged(expected_len=21)


def test_sighup_drains_like_sigterm_and_sigusr_is_ignored(make_cluster):
    # By default SIGHUP, SIGUSR1 and SIGUSR2 end a process at once: no drain, parked writes cut
    # off. rlog has nothing to reload: a hang-up stops it gently, SIGUSR1/2 are logged and ignored.
    c = make_cluster(n_sentinels=1)
    c.start()
    m = c.master
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        m.proc.send_signal(sig)
    wait_until(lambda: m.log_path.read_text().count("ignored") >= 2, 10, 0.05,
               "both signals logged as ignored")
    assert m.running(), m.log_tail()
    assert m.insert_ok("still here", w=2) == 1
    m.proc.send_signal(signal.SIGHUP)
    assert m.wait_exit(15) == 0, m.log_tail()
    assert "draining" in m.log_tail(), m.log_tail()


def test_sigterm_cancels_a_recovery_copy_from_a_frozen_sentinel(make_cluster):
    # A restarting master copying its log from a sentinel blocks in a gRPC call with a 30 s
    # deadline; SIGTERM must not wait that out.
    c = make_cluster(n_sentinels=1)
    c.start()
    m, s = c.master, c.sentinels[0]
    for i in range(5):
        assert m.insert_ok(f"copy-{i}", w=2) == i + 1
    m.kill9()
    c.master_args += ["--enable-test-faults", "--test-recovery-pause-ms", "1000"]
    m.start()
    wait_until(lambda: "TEST: pausing recovery" in m.log_path.read_text(), 15, 0.05,
               "the restarted master paused before copying")
    s.stop()  # SIGSTOP: the copy that follows the pause hangs.
    try:
        wait_until(lambda: "recovering: copying ids" in m.log_path.read_text(), 15, 0.05,
                   "the master started copying from the frozen sentinel")
        m.terminate()
        assert m.wait_exit(DRAIN_TIMEOUT_MS / 1000 + SLACK) == 0, m.log_tail()
    finally:
        s.cont()
