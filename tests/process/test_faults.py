"""Sentinel crashes, freezes and injected replication faults under concurrent writes."""

from __future__ import annotations

from harness import (WriteLoad, assert_acked_exactly_once, assert_error, check_log, wait_until)


def _assert_no_failures(load: WriteLoad) -> None:
    bad = load.failures()
    assert not bad, f"{len(bad)} of {load.total} writes were not 200, e.g. {bad[:5]}"


def _assert_caught_up(c, s):
    def ok():
        h = c.master.health(timeout=2.0)
        e = c.sentinel_health(s, h)
        return e if (e["status"] == "Healthy" and e["ackedId"] == h["lastId"] and e["lag"] == 0) else None
    return wait_until(ok, 30, 0.05, f"master /health: {s.name} Healthy, ackedId == lastId, lag 0")


def test_kill9_sentinel_under_concurrent_writes_then_restart(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start()
    m, (s1, s2) = c.master, c.sentinels

    load = WriteLoad(m, threads=6, per_thread=100, ws=[1, 2], prefix="k9").start()
    wait_until(lambda: load.done_count() >= 100, 30, 0.01, "100 writes done before the crash")
    s1.kill9()
    # Writes keep succeeding with S1 dead (master + S2 are a majority; w=2 is met by S2).
    at_crash = load.done_count()
    wait_until(lambda: load.done_count() >= at_crash + 200, 30, 0.01, "200 more writes with S1 dead")
    s1.start()

    # While S1 catches up (and writes continue) it must only ever expose a contiguous prefix 1..k.
    polls = []

    def s1_caught_up():
        log = s1.get_all(timeout=5.0)
        check_log(log, "s1 during catch-up")
        polls.append(len(log))
        return load.done_count() == load.total and len(log) == m.last_id()

    wait_until(s1_caught_up, 150, 0.02, "all writes done and restarted S1 caught up")
    load.join(10)
    _assert_no_failures(load)

    ref = c.wait_converged(expected_len=load.total)
    acked = load.acked()
    assert len(acked) == load.total
    for n in c.nodes:
        assert_acked_exactly_once(n.get_all(), acked, n.name)
    _assert_caught_up(c, s1)
    _assert_caught_up(c, s2)
    assert sorted(e["message"] for e in ref) == sorted(acked)


def test_sigstop_sentinel_is_suspected_then_unhealthy_then_recovers(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start()
    m, (s1, s2) = c.master, c.sentinels
    for i in range(5):
        assert m.insert_ok(f"before-{i}", w=3) == i + 1
    _assert_caught_up(c, s2)

    s2.stop()
    statuses: list[str] = []

    def unhealthy():
        st = c.sentinel_health(s2)["status"]
        if not statuses or statuses[-1] != st:
            statuses.append(st)
        return st == "Unhealthy"

    wait_until(unhealthy, 15, 0.02, "frozen S2 reported Unhealthy")
    assert statuses in (["Healthy", "Suspected", "Unhealthy"], ["Suspected", "Unhealthy"]), (
        f"S2 status went {statuses}, expected Healthy -> Suspected -> Unhealthy")

    # Master + S1 are a majority: still writable, w=2 met without S2.
    h = m.health()
    assert h["readOnly"] is False, h
    assert c.sentinel_health(s1, h)["status"] == "Healthy", h
    assert h["quorum"]["clusterSize"] == 3 and h["quorum"]["majority"] == 2, h
    for i in range(5):
        assert m.insert_ok(f"during-{i}", w=2) == 6 + i
    assert c.sentinel_health(s2)["ackedId"] == 5

    s2.cont()
    e = _assert_caught_up(c, s2)
    assert e["ackedId"] == 10
    ref = c.wait_converged(expected_len=10)
    assert [x["message"] for x in ref] == [f"before-{i}" for i in range(5)] + [f"during-{i}" for i in range(5)]
    sh = s2.health()
    assert sh["role"] == "sentinel" and sh["lastId"] == 10 and sh["connected"] is True, sh
    assert sh["logId"] == m.health()["logId"], sh


def _faults(i: int) -> list[str]:
    # A different seed per sentinel, so their faults do not line up.
    return ["--enable-test-faults", "--test-faults",
            f"fail_after_append=0.05,delay_ms=5,drop_stream=0.01,seed={7 + i}"]


def test_injected_replication_faults_converge_exactly_once(make_cluster):
    c = make_cluster(n_sentinels=2, sentinel_args=_faults)
    c.start()
    m = c.master
    # A dropped stream may make the master read-only for a moment: such a write is answered 503
    # (nothing appended) and the writer sends the same message again. In the end every message
    # must be in the log exactly once, under the id it was acknowledged with.
    load = WriteLoad(m, threads=6, per_thread=100, ws=[1, 2, 3], prefix="flt", retry_503=200).start()
    load.join(150)
    _assert_no_failures(load)
    acked = load.acked()
    assert sorted(acked.values()) == list(range(1, load.total + 1)), "acknowledged ids are not 1..N"
    ref = c.wait_converged(expected_len=load.total, timeout=60)
    for n in c.nodes:
        assert_acked_exactly_once(n.get_all(), acked, n.name)
    assert sorted(e["message"] for e in ref) == sorted(acked)
    for s in c.sentinels:
        _assert_caught_up(c, s)


def test_a_sentinel_refusing_its_only_master_for_its_log_is_not_ready(make_cluster, tmp_path):
    """A sentinel whose volume holds another log than the master that comes to it serves no
    cluster: it stayed Ready (sticky, from its earlier master) until its pod restarted, so a
    rollout or a drain counted it as a replica. Ready again once a master is welcomed."""
    a = make_cluster(n_sentinels=1, sentinel_args=["--data-dir", str(tmp_path / "s1")])
    a.start()
    s1 = a.sentinels[0]
    a.master.insert_ok("log-a", w=2)
    wait_until(lambda: s1.get("/readyz").status_code == 200, 10, 0.05, "s1 ready")
    a.master.kill9()
    b = make_cluster(n_sentinels=1, master_args=["--data-dir", str(tmp_path / "mb")],
                     sentinel_args=["--data-dir", str(tmp_path / "s2")])
    b.start()
    b.master.insert_ok("log-b", w=2)
    b.master.kill9()
    b.sentinels = [s1, b.sentinels[0]]  # B's master, with a log of its own, now also lists s1.
    b.master.start()
    b.wait_writable(20)
    r = wait_until(lambda: (lambda r: [r] if r.status_code == 503 else None)(s1.get("/readyz")),
                   20, 0.05, "s1 not ready while it refuses its only master")[0]
    body = assert_error(r, 503)
    assert "refusing its master" in body["error"] and "holds log" in body["error"], body
    b.master.kill9()
    a.master.start()  # Its own master (in memory) takes log A back from s1.
    a.wait_writable(20)
    wait_until(lambda: s1.get("/readyz").status_code == 200, 20, 0.05, "s1 ready again")
    b.sentinels = [b.sentinels[1]]


def test_a_sentinel_is_ready_only_once_it_holds_what_its_master_held(make_cluster):
    # /readyz gates rolling updates and drains: an empty replacement that said Ready at once
    # would let the next sentinel go while it still lacked the log.
    c = make_cluster(n_sentinels=2, sentinel_args=lambda i: (
        [] if i == 0 else ["--enable-test-faults", "--test-faults", "delay_ms=150,seed=3"]))
    m, s1, s2 = c.master, *c.sentinels
    c.start(sentinels=[0])
    n = 3000
    WriteLoad(m, threads=4, per_thread=n // 4, ws=[2], prefix="ready").start().join(120)
    assert m.last_id() == n
    s2.start()
    r = s2.get("/readyz")
    body = assert_error(r, 503)
    assert "no master has connected" in body["error"] or "catching up" in body["error"], body
    seen_catching_up = [False]

    def ready():
        r = s2.get("/readyz")
        if r.status_code == 503 and "catching up" in r.text:
            seen_catching_up[0] = True
        return r.status_code == 200

    wait_until(ready, 60, 0.01, "s2 ready")
    assert s2.health()["durableId"] >= n, s2.health()
    assert seen_catching_up[0], "never saw s2 not ready while it caught up"
