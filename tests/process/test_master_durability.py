"""The master's restarts (issue 3: "Restarts"): with a data directory, kill -9 and restart, and a
lost data directory rebuilt from the sentinels; in memory, a restart takes the log back from the
sentinels the same way."""

from __future__ import annotations

import random
import shutil
import threading
import time

import pytest

from harness import (Disks, WriteLoad, assert_acked_exactly_once, assert_error, check_log,
                     cut_wal_tail, power_loss, wait_until)


def _data_cluster(make_cluster, tmp_path, fsync="always", master_extra=()):
    """A master and two sentinels, each with its own data directory."""
    data = tmp_path / "data"

    def sentinel_args(i):
        return ["--data-dir", str(data / f"s{i + 1}"), "--fsync", fsync]

    c = make_cluster(n_sentinels=2,
                     master_args=["--data-dir", str(data / "master"), "--fsync", fsync,
                                  *master_extra],
                     sentinel_args=sentinel_args)
    return c, data / "master"


def _assert_every_ack_everywhere(c, acked, where):
    """Every acknowledged write on the restarted master, and what each sentinel shows a prefix of
    its log; returns the master's log. Sentinels may show the last entries of the old epochs only
    once the new master's first write commits them (Raft's rule; docs/ARCHITECTURE.md, "The commit
    id"): callers write one, then check every node with _assert_acks_on_every_node. The master
    too shows only what it knows is committed: right after a take-over, what its saved commit id
    covers, and the rest once a majority holds it with the new epoch's mark (a round trip)."""
    # ... and what a sentinel learned was committed from the old master.
    top = max([0, *acked.values(), *(s.health()["visibleId"] for s in c.sentinels if s.running())])
    wait_until(lambda: c.master.health()["visibleId"] >= top, 15, 0.02,
               f"the restarted master shows up to id {top}")
    # The sentinels first: the master's commit id is never behind what it told them since, so
    # its log read next holds what they show (read the other way round, they may have moved on).
    shown = {s.name: s.get_all() for s in c.sentinels if s.running()}
    ref = c.master.get_all()
    assert_acked_exactly_once(ref, acked, f"master {where}")
    for name, log in shown.items():
        assert log == ref[:len(log)], f"{name} {where}: not a prefix of the master's log"
    return ref


def _assert_acks_on_every_node(c, acked, where, expected_len):
    ref = c.wait_converged(expected_len=expected_len)
    for n in c.nodes:
        if n.running():
            assert_acked_exactly_once(n.get_all(), acked, f"{n.name} {where}")
    return ref


def test_master_kill9_under_w2_w3_writes_then_restart_keeps_every_ack(make_cluster, tmp_path):
    c, _ = _data_cluster(make_cluster, tmp_path)
    c.start()
    m = c.master
    before = m.health()
    assert before["epoch"] >= 1 and before["logId"], before

    load = WriteLoad(m, threads=6, per_thread=150, ws=[2, 3], prefix="mk9", http_timeout=20).start()
    wait_until(lambda: len(load.acked()) >= 200, 60, 0.01, "200 writes acknowledged before the crash")
    m.kill9()
    load.join(60)  # The rest fail fast: connection refused or reset.
    acked = load.acked()
    assert len(acked) >= 200

    m.start()
    h = c.wait_writable(30)
    assert h["logId"] == before["logId"], "a restarted master continues its own log"
    assert h["epoch"] > before["epoch"], "each take-over bumps the epoch"
    ref = _assert_every_ack_everywhere(c, acked, "after the master's restart")

    # New writes continue at the next id: nothing is reused.
    last = len(ref)
    new_id = m.insert_ok("after-restart", w=3)
    assert new_id == last + 1, (new_id, last)
    log = _assert_acks_on_every_node(c, acked, "after the master's restart", last + 1)
    assert log[-1]["message"] == "after-restart"
    assert log[:last] == ref, "the restart rewrote history"


def test_master_with_lost_data_dir_recovers_from_sentinels_before_taking_writes(make_cluster,
                                                                                  tmp_path):
    c, master_dir = _data_cluster(make_cluster, tmp_path)
    c.start()
    m, (s1, s2) = c.master, c.sentinels
    acked = {}
    for i in range(40):
        msg = f"maj-{i}"
        acked[msg] = m.insert_ok(msg, w="majority" if i % 2 else 3)
    before = m.health()
    c.wait_converged(expected_len=40)

    # Lose the master's disk, and keep one sentinel away: a majority (2 of 3) cannot be formed
    # without the master's own log, which is gone, so it must not take writes.
    m.kill9()
    shutil.rmtree(master_dir)
    s2.kill9()
    m.start()

    def refusing():
        r = m.insert("too-early", w=1, timeout_ms=1000)
        assert_error(r, 503)
        assert "recovering" in r.json()["error"], r.text
        assert r.headers.get("Retry-After"), r.headers
        return r

    # Refused again and again while only one sentinel can answer (bounded: 30 probes).
    for _ in range(30):
        refusing()
    assert m.get("/readyz").status_code == 503
    h = m.health()
    assert h["state"] == "recovering" and h["readOnly"] is True, h
    assert "\nrlog_read_only 1" in m.get("/metrics").text, "the alert would not fire"
    assert m.get_all() == [], "nothing is copied before enough sentinels have answered"

    s2.start()
    h = c.wait_writable(30)
    assert "\nrlog_read_only 0" in m.get("/metrics").text
    assert h["logId"] == before["logId"], "the rebuilt master adopts the sentinels' log id"
    assert h["epoch"] > before["epoch"], h
    assert h["lastId"] == 40, h
    ref = _assert_every_ack_everywhere(c, acked, "after the rebuild")
    assert len(ref) == 40, "a refused write must not have been appended"

    new_id = m.insert_ok("after-rebuild", w=3)
    assert new_id == 41
    check_log(_assert_acks_on_every_node(c, acked, "after the rebuild", 41), "after the rebuild")


def test_restarted_master_of_four_nodes_waits_for_two_sentinels_even_with_its_own_log(
        make_cluster, tmp_path):
    # Four nodes (majority 3): a master with its own log (fsync: always) needs M - 1 = 2 sentinel
    # positions, not S - M + 1 = 1 (core::RecoveryAnswersNeeded: one sentinel may not have heard
    # of another instance's take-over). It needs two sentinels to take writes anyway.
    data = tmp_path / "data"
    c = make_cluster(n_sentinels=3,
                     master_args=["--data-dir", str(data / "master"), "--fsync", "always"],
                     sentinel_args=lambda i: ["--data-dir", str(data / f"s{i + 1}"),
                                              "--fsync", "always"])
    c.start()
    m, (s1, s2, s3) = c.master, c.sentinels
    for i in range(5):
        assert m.insert_ok(f"four-{i}", w=4) == i + 1
    m.kill9()
    s2.kill9()
    s3.kill9()
    m.start()
    h = wait_until(lambda: (lambda h: h if "1 sentinel position(s) received, 2 needed" in h.get("recovery", "")
                            else None)(m.health()), 20, 0.05, "recovery waits for 2 positions")
    assert h["state"] == "recovering", h
    assert_error(m.insert("early", w=1, timeout_ms=500), 503)
    s2.start()
    c.wait_writable(30)
    assert m.insert_ok("after", w=3) == 6
    s3.start()
    check_log(c.wait_converged(expected_len=6), "four nodes after the restart")


def test_fresh_data_dirs_start_a_new_log_once_the_sentinels_answer(make_cluster, tmp_path):
    c, master_dir = _data_cluster(make_cluster, tmp_path, fsync="interval")
    c.start()
    m = c.master
    h = m.health()
    assert h["state"] == "writable" and h["epoch"] == 1 and len(h["logId"]) == 32, h
    assert h["wal"]["fsync"] == "interval", h
    assert m.insert_ok("first", w=3) == 1
    metrics = m.get("/metrics").text
    assert "rlog_wal_fsync_duration_seconds_count" in metrics
    assert any(p.name.startswith("wal-") for p in (master_dir / "wal").iterdir())


def test_group_commit_window_holds_a_sync_after_a_burst(make_cluster, tmp_path):
    # wal.group_commit_us reaches the committer. After a burst of concurrent writes (a sync that
    # covered several), a lone write is held for up to the window, waiting for as many; a
    # lower bound on its time only, since correct code can never answer sooner. A burst's last
    # sync may happen to cover one write (then the lone one is not held): up to 8 tries.
    c = make_cluster(n_sentinels=0, master_args=["--data-dir", str(tmp_path / "master"),
                                                 "--set", "wal.group_commit_us=1000000"])
    c.start()
    m = c.master
    times = []
    for attempt in range(8):
        barrier = threading.Barrier(16)

        def one(i, attempt=attempt, barrier=barrier):
            barrier.wait(10)
            m.insert_ok(f"burst-{attempt}-{i}", w=1, http_timeout=20)
        burst = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in burst:
            t.start()
        for t in burst:
            t.join(30)
        start = time.monotonic()
        m.insert_ok(f"lone-{attempt}", w=1, http_timeout=20)
        times.append(time.monotonic() - start)
        if times[-1] >= 0.5:
            break
    assert max(times) >= 0.5, f"no lone write after a burst waited for the window: {times}"
    check_log(m.get_all(), "after the bursts")


def test_master_disk_error_fails_the_write_not_acknowledged_and_loses_no_ack(make_cluster,
                                                                               tmp_path):
    """A write the WAL cannot take (here EFBIG from a file-size limit, the same path as ENOSPC
    or EIO) is answered 500 "not acknowledged", the master stops (exit 1), and after a restart
    without the limit every acknowledged write is there on every node."""
    c, _ = _data_cluster(make_cluster, tmp_path)
    c.master.prefix = ["prlimit", "--fsize=65536", "--"]
    c.start()
    m = c.master
    acked, refused = {}, None
    for i in range(2000):  # 64 KiB of WAL holds a few hundred 100-byte records
        msg = f"disk-{i:04d}-" + "x" * 90
        r = m.insert(msg, w=1, timeout_ms=5000)
        if r.status_code == 200:
            acked[msg] = r.json()["id"]
            continue
        refused = r
        break
    assert refused is not None, "the file-size limit was never hit"
    assert refused.status_code == 500, refused.text
    body = refused.json()
    assert "not acknowledged" in body["error"], refused.text
    # It was given an id, and may have reached a sentinel before the failure: the answer says so.
    refused_id = body.get("id")
    assert refused_id is not None, body
    assert body["acknowledged"] is False and "read the log" in body["error"], body
    assert len(acked) > 100, len(acked)
    assert m.wait_exit(10) == 1, m.log_tail()
    assert "write-ahead log failed" in m.log_tail()

    m.prefix = []
    m.start()
    c.wait_writable(30)
    ref = _assert_every_ack_everywhere(c, acked, "after the disk error and a restart")
    # Kept at its id, or not at all: never another message there.
    assert [e["message"] for e in ref if e["id"] == refused_id] in ([], [msg]), ref[-3:]
    assert m.insert_ok("after-disk-error", w=3) == len(ref) + 1 > max(acked.values())
    _assert_acks_on_every_node(c, acked, "after the disk error and a restart", len(ref) + 1)


def test_sentinel_of_another_log_is_reported_and_never_written_to(make_cluster, tmp_path):
    c, _ = _data_cluster(make_cluster, tmp_path)
    c.start()
    for i in range(5):
        c.master.insert_ok(f"first-log-{i}", w=3)
    s1 = c.sentinels[0]
    before = c.wait_converged(expected_len=5)
    first_log = c.master.health()["logId"]

    # A second master, of a log of its own (on its disk and on one of its two sentinels), is
    # then pointed at s1, which holds the first log, and at that sentinel. (A master without a
    # log of its own would take s1's over: a lost directory.)
    other = make_cluster(n_sentinels=2, master_args=["--data-dir", str(tmp_path / "other"),
                                                     "--fsync", "always"],
                         sentinel_args=lambda i: ["--data-dir", str(tmp_path / f"other-s{i}"),
                                                  "--fsync", "always"])
    other.start()
    other.master.insert_ok("other-log-1", w=3)
    other.master.kill9()
    other.sentinels[0].kill9()
    own = other.sentinels[1]
    other.sentinels = [s1, own]
    other.master.start()

    # Its own sentinel's position is enough to take the log over (3 nodes, a log that counts);
    # s1 refuses its Hello, is reported, and never written to.
    def refused():
        # A recovering master lists no sentinels yet: that is "not yet", not a failure.
        listed = {x.get("name"): x for x in other.master.health().get("sentinels", [])}
        e = listed.get(other.sentinel_name(s1), {})
        return e if "log" in e.get("lastError", "") else None
    e = wait_until(refused, 20, 0.05, "the second master's /health reports s1 refusing its log")
    assert e["ackedId"] == 0 and e["connected"] is False, e
    other.wait_writable(20)
    assert other.master.insert_ok("other-log-2", w=2) == 2
    r = other.master.insert("other-log-3", w=3, timeout_ms=500)
    assert_error(r, 504)  # s1 never acknowledges it.
    assert s1.get_all() == before, "a sentinel of another log was written to"
    assert s1.health()["logId"] == first_log
    assert [m["message"] for m in own.get_all()][:2] == ["other-log-1", "other-log-2"]

    # With s1 alone (a cluster of two), the restarted master needs s1's position even with a log
    # of its own (core::RecoveryAnswersNeeded): one of another log does not count, so it stays
    # in recovery, not ready, and says why on /health.
    other.master.kill9()
    other.sentinels = [s1]
    other.master.start()

    def reported():
        h = other.master.health()
        return h if f"holds log {first_log}" in h.get("recovery", "") else None
    h = wait_until(reported, 20, 0.05, "the second master's /health reports s1's other log")
    assert h["state"] == "recovering" and h["readOnly"] is True, h
    assert "neither counted nor written to" in h["recovery"], h
    assert_error(other.master.insert("other-log", w=1, timeout_ms=500), 503)
    assert s1.get_all() == before, "a sentinel of another log was written to"


def test_a_master_deposed_by_a_newer_one_takes_no_more_writes(make_cluster, tmp_path):
    c, _ = _data_cluster(make_cluster, tmp_path)
    c.start()
    old = c.master
    for i in range(3):
        old.insert_ok(f"old-{i}", w=3)
    c.wait_converged(expected_len=3)
    old_epoch = old.health()["epoch"]

    # A second master with an empty directory on the same sentinels, while the first still runs
    # (a pod that was thought dead, a partition): it recovers the log from the sentinels and takes
    # it over with a newer epoch.
    new = make_cluster(n_sentinels=0,
                       master_args=["--data-dir", str(tmp_path / "data" / "master2")])
    new.sentinels = c.sentinels
    new.master.start()
    h = new.wait_writable(30)
    assert h["lastId"] == 3 and h["epoch"] > old_epoch, h

    # The old master's streams are ended at their next heartbeat: it must notice that it is
    # deposed, because it would otherwise go on acknowledging w=1 writes that no one else holds.
    def deposed():
        h = old.health(timeout=2.0)
        return h if h.get("state") == "deposed" else None
    h = wait_until(deposed, 10, 0.05, "the old master's /health says it is deposed")
    assert h["readOnly"] is True and "epoch" in h["deposed"], h
    for w in (1, 2, 3):
        r = old.insert(f"to-the-old-master-w{w}", w=w, timeout_ms=1000)
        assert_error(r, 503)
        assert "deposed" in r.json()["error"], r.text
        assert "Retry-After" not in r.headers, "retrying the deposed master will not help"
    ready = old.get("/readyz")
    assert ready.status_code == 503 and "deposed" in ready.text, ready.text
    assert 'rlog_inserts_total{outcome="deposed",write_concern="1"} 1' in old.get("/metrics").text

    # The new master's writes reach both sentinels; the old master's log is left as it was.
    assert new.master.insert_ok("new-1", w=3) == 4
    log = new.wait_converged(expected_len=4)
    assert [e["message"] for e in log] == ["old-0", "old-1", "old-2", "new-1"]
    assert len(old.get_all()) == 3
    check_log(log, "after the take-over")


def test_a_deposed_master_answers_its_parked_writes_at_once(make_cluster):
    # Four nodes (majority 3), s3 frozen: the old master stays writable with s1 and s2, and a
    # w=4 write parks waiting for s3. A second master takes the log over from s1 and s2. The
    # parked write can never be acknowledged now: it must be answered when the old master learns
    # it is deposed, not at its timeout (two minutes here, ten by default).
    c = make_cluster(n_sentinels=3)
    c.start()
    old, (s1, s2, s3) = c.master, c.sentinels
    assert old.insert_ok("before", w=4) == 1
    s3.stop()
    c.wait_writable(10)
    result = {}

    def parked():
        start = time.monotonic()
        result["r"] = old.insert("parked", w=4, timeout_ms=120000, http_timeout=60)
        result["seconds"] = time.monotonic() - start
    t = threading.Thread(target=parked, daemon=True)
    t.start()
    wait_until(lambda: old.health()["parkedWrites"] == 1, 10, 0.05, "the w=4 write parked")

    new = make_cluster(n_sentinels=0)
    new.sentinels = [s1, s2, s3]
    new.master.start()
    new.wait_writable(30)
    t.join(30)
    assert not t.is_alive(), "the parked write was not answered when the master was deposed"
    r = result["r"]
    assert_error(r, 503)
    body = r.json()
    assert "deposed" in body["error"] and body["id"] == 2 and body["acknowledged"] is False, body
    assert old.health()["parkedWrites"] == 0
    assert 'rlog_inserts_total{outcome="deposed",write_concern="4"} 1' in old.get("/metrics").text
    s3.cont()


def test_an_older_master_gets_no_write_acknowledged_while_a_new_one_takes_over(make_cluster):
    # A second master takes the log over while the first still runs. Between asking the
    # sentinels where their logs end and its Hello, the old master could have w=2 writes
    # acknowledged by a sentinel that the new master's Hello then makes drop them: a
    # majority-acknowledged write lost. The sentinels' promise of the new epoch closes that
    # window; the test flag holds the new master inside it for 3 s.
    c = make_cluster(n_sentinels=2)
    c.start()
    old = c.master
    acked = {f"old-{i}": old.insert_ok(f"old-{i}", w=3) for i in range(3)}

    new = make_cluster(n_sentinels=0, master_args=["--enable-test-faults",
                                                   "--test-recovery-pause-ms", "3000"])
    new.sentinels = c.sentinels
    new.master.start()
    wait_until(lambda: "TEST: pausing recovery" in new.master.log_path.read_text(), 10, 0.05,
               "the new master paused after the promises")
    answers = []
    for i in range(5):  # Bounded: each is answered within the old master's heartbeat or so.
        r = old.insert(f"during-{i}", w=2, timeout_ms=2000, http_timeout=10)
        answers.append(r)
        if r.status_code == 200:
            acked[f"during-{i}"] = r.json()["id"]
    assert all(r.status_code != 200 for r in answers), [(r.status_code, r.text) for r in answers]
    assert any("deposed" in r.text for r in answers), [r.text for r in answers]

    new.wait_writable(30)
    assert new.master.insert_ok("new-1", w=3) == 4
    log = new.wait_converged(expected_len=4)
    assert_acked_exactly_once(log, acked, "the new master's log")


def test_a_take_over_without_writes_keeps_its_rank_through_the_next_masters_promise(
        make_cluster, tmp_path):
    # A master that took the log over and wrote nothing leaves on each sentinel only its epoch
    # mark, alone in a fresh segment. The next master's promise changes the epoch again, which
    # rewrites that segment's header; the mark must stay in it, or a sentinel that crashes before
    # the new master's own mark ranks its log lower than it reported (docs/ARCHITECTURE.md, "The
    # commit id").
    c, _ = _data_cluster(make_cluster, tmp_path)
    c.start()
    m, s1 = c.master, c.sentinels[0]
    for i in range(3):
        assert m.insert_ok(f"e1-{i}", w=3) == i + 1
    m.terminate()
    assert m.wait_exit(15) == 0
    m.start()
    c.wait_writable()
    wait_until(lambda: s1.health()["lastEpoch"] == 2, 10, 0.05, "s1 holds the mark of epoch 2")

    m.terminate()
    assert m.wait_exit(15) == 0
    pauses = m.log_path.read_text().count("TEST: pausing recovery")
    c.master_args += ["--enable-test-faults", "--test-recovery-pause-ms", "20000"]
    m.start(wait=False)
    wait_until(lambda: m.log_path.read_text().count("TEST: pausing recovery") > pauses, 15, 0.05,
               "the third master paused after the promises of epoch 3")
    h = s1.health()
    assert (h["epoch"], h["lastEpoch"]) == (3, 2), h
    s1.kill9()
    m.kill9()
    s1.start()
    h = s1.health()
    assert (h["epoch"], h["lastEpoch"]) == (3, 2), f"s1 lost the mark of epoch 2 on disk: {h}"

    del c.master_args[-3:]
    m.start()
    c.wait_writable()
    assert m.insert_ok("e4", w=3) == 4
    log = c.wait_converged(expected_len=4)
    assert [e["message"] for e in log] == ["e1-0", "e1-1", "e1-2", "e4"]


def test_restarted_master_drops_its_tail_that_a_newer_master_replaced(make_cluster, tmp_path):
    c, _ = _data_cluster(make_cluster, tmp_path)
    c.start()
    old, (s1, s2) = c.master, c.sentinels
    for i in range(3):
        old.insert_ok(f"shared-{i}", w=3)
    c.wait_converged(expected_len=3)
    # Both sentinels die; for the moment they are only Suspected, the old master still takes
    # w=1 writes: ids 4 and 5 exist on its disk alone. Then it dies too.
    s1.kill9()
    s2.kill9()
    assert old.insert_ok("old-only-4", w=1) == 4
    assert old.insert_ok("old-only-5", w=1) == 5
    old.kill9()

    # Another master, with an empty directory, takes the log over from the sentinels (ids 1-3)
    # and has ids 4-6 of its own acknowledged by all three nodes.
    s1.start()
    s2.start()
    new = make_cluster(n_sentinels=0,
                       master_args=["--data-dir", str(tmp_path / "data" / "master2")])
    new.sentinels = c.sentinels
    new.master.start()
    new.wait_writable(30)
    acked = {f"new-{i}": new.master.insert_ok(f"new-{i}", w=3) for i in (4, 5, 6)}
    assert sorted(acked.values()) == [4, 5, 6]
    new.master.kill9()

    # The old master comes back with its directory. Its ids 4-5 were replaced by the newer
    # master's: it must drop them (only them: ids 1-3 are its own and stay) and copy the newer
    # master's 4-6, not keep two messages under one id.
    old.start()
    c.wait_writable(30)
    ref = c.wait_converged(expected_len=6)
    assert [e["message"] for e in ref] == ["shared-0", "shared-1", "shared-2",
                                           "new-4", "new-5", "new-6"], ref
    assert "my ids 4..5 (epoch 1) are not in the newest log (sentinel" in old.log_path.read_text()
    assert "which goes on from id 4; dropping them" in old.log_path.read_text()
    assert "copying ids 4..6 from sentinel" in old.log_path.read_text()
    assert old.insert_ok("after", w=3) == 7
    check_log(c.wait_converged(expected_len=7), "after the old master's return")


def test_in_memory_master_restarted_takes_its_log_back_from_the_sentinels(make_cluster):
    # The local cluster of the README: every node in memory. A restarted master holds nothing, but
    # its sentinels hold the log: it must continue that log, not start another (which they refuse).
    c = make_cluster(n_sentinels=2)
    c.start()
    m = c.master
    before = m.health()
    acked = {f"mem-{i}": m.insert_ok(f"mem-{i}", w=[2, 3, "majority"][i % 3]) for i in range(30)}
    c.wait_converged(expected_len=30)

    m.kill9()
    m.start()
    h = c.wait_writable(30)
    assert h["logId"] == before["logId"], "a restarted master continues its sentinels' log"
    assert h["epoch"] > before["epoch"], h
    assert h["lastId"] == 30, h
    ref = _assert_every_ack_everywhere(c, acked, "after the in-memory master's restart")
    assert m.insert_ok("after-restart", w=3) == 31
    log = _assert_acks_on_every_node(c, acked, "after the in-memory master's restart", 31)
    assert log[:30] == ref and log[30]["message"] == "after-restart"


def test_in_memory_master_restarted_while_every_sentinel_is_down_waits_for_them(make_cluster,
                                                                               tmp_path):
    # With no sentinel answering, a restarted in-memory master cannot tell a first start from a
    # restart: a new log begun then would be refused by every sentinel when it returns, and the
    # master would stay read-only until restarted again. It waits for an answer instead, and
    # says on /health why each sentinel gave none.
    c = make_cluster(n_sentinels=2,
                     sentinel_args=lambda i: ["--data-dir", str(tmp_path / f"s{i + 1}")])
    c.start()
    m, s1, s2 = c.master, *c.sentinels
    before = m.health()["logId"]
    for i in range(5):
        assert m.insert_ok(f"kept-{i}", w=3) == i + 1
    m.kill9()
    for s in (s1, s2):
        s.terminate()
        assert s.wait_exit(15) == 0
    m.start()
    h = wait_until(lambda: (lambda h: h if "waiting for one to answer" in h.get("recovery", "")
                            and all(c.sentinel_health(s, h).get("lastError") for s in (s1, s2))
                            else None)(m.health()), 20, 0.05,
                   "the master waits for a sentinel to answer and says why none did")
    assert h["logId"] == "" and h["readOnly"] is True, "a new log was begun with every sentinel down"
    assert all(c.sentinel_health(s, h)["status"] == "Unhealthy" for s in (s1, s2)), h
    assert h["quorum"] == {"clusterSize": 3, "reachable": 1, "majority": 2}, h
    assert_error(m.insert("during", w=1), 503)
    assert "gave no position" in m.log_tail()
    s1.start()
    s2.start()
    h = c.wait_writable(30)
    assert h["logId"] == before and h["lastId"] == 5, h
    assert m.insert_ok("after", w=3) == 6
    log = c.wait_converged(expected_len=6)
    assert [e["message"] for e in log] == [f"kept-{i}" for i in range(5)] + ["after"]


def test_in_memory_master_waits_for_the_sentinel_that_holds_a_majority_write(make_cluster,
                                                                             tmp_path):
    # Sentinels on disk, the master in memory. A w=2 write that only the master and s2 hold; the
    # master dies (taking its copy along), s2 is down: s1 alone lacks the write, so the master
    # must not take writes until s2 has answered, and then copy the write from s2.
    data = tmp_path / "data"
    c = make_cluster(n_sentinels=2, sentinel_args=lambda i: ["--data-dir", str(data / f"s{i + 1}"),
                                                             "--fsync", "always"])
    c.start()
    m, (s1, s2) = c.master, c.sentinels
    acked = {f"all-{i}": m.insert_ok(f"all-{i}", w=3) for i in range(5)}
    c.wait_converged(expected_len=5)
    s1.kill9()
    acked["only-on-s2"] = m.insert_ok("only-on-s2", w=2)
    m.kill9()
    s2.kill9()
    s1.start()

    m.start()
    h = wait_until(lambda: (lambda h: h if "holds" not in h.get("recovery", "holds") else None)(
        m.health()), 10, 0.05, "the master heard s1's log")
    assert h["state"] == "recovering" and h["readOnly"] is True, h
    for _ in range(20):  # Refused again and again while s1 alone can answer (bounded).
        r = m.insert("too-early", w=1, timeout_ms=1000)
        assert_error(r, 503)
        assert "recovering" in r.json()["error"], r.text
    assert m.get("/readyz").status_code == 503
    assert m.get_all() == [], "nothing is copied before enough sentinels have answered"

    s2.start()
    h = c.wait_writable(30)
    assert h["lastId"] == 6, h
    ref = _assert_every_ack_everywhere(c, acked, "after the restart")
    assert ref[-1]["message"] == "only-on-s2"
    assert m.insert_ok("after-restart", w=3) == 7
    check_log(_assert_acks_on_every_node(c, acked, "after the restart", 7), "after the restart")


def test_a_leftover_last_segment_is_removed_saying_so_and_one_after_a_gap_stops_the_start(
        make_cluster, tmp_path):
    # A segment file created just before a crash, its header not yet written, is removed (with a
    # line naming it); a damaged one named past the next id means segments are missing: refused.
    c = make_cluster(n_sentinels=0, master_args=["--data-dir", str(tmp_path / "m")])
    c.start()
    m = c.master
    for i in range(3):
        assert m.insert_ok(f"seg-{i}", w=1) == i + 1
    m.terminate()
    assert m.wait_exit(15) == 0
    wal = tmp_path / "m" / "wal"
    empty = wal / "wal-00000000000000000004.log"
    empty.write_bytes(b"")
    m.start()
    assert [e["message"] for e in m.get_all()] == ["seg-0", "seg-1", "seg-2"]
    assert f"removed {empty} (0 bytes: empty)" in m.log_tail(), m.log_tail()
    m.terminate()
    assert m.wait_exit(15) == 0

    stray = wal / "wal-00000000000000000500.log"
    stray.write_bytes(b"\x5a" * 100)
    m.start(wait=False)
    assert m.wait_exit(15) != 0, m.log_tail()
    assert f"{stray} at offset 0" in m.log_tail() and "where id 4 was expected" in m.log_tail(), (
        m.log_tail())
    assert stray.exists(), "the unknown file was deleted"


def test_a_log_written_with_fsync_never_does_not_vouch_for_itself_after_a_switch_to_always(
        make_cluster, tmp_path):
    # A master with fsync: never counts itself for a write before its fsync, and a power loss
    # can take it. Restarted with fsync: always, its log must not count as one answer of the
    # take-over (it lacks what it had counted itself for), or one sentinel's answer would do and
    # a write the master and the other sentinel acknowledged would be lost.
    data = tmp_path / "data"
    c = make_cluster(n_sentinels=2,
                     master_args=["--data-dir", str(data / "m"), "--fsync", "never"],
                     sentinel_args=lambda i: ["--data-dir", str(data / f"s{i + 1}")])
    c.start()
    m, s1, s2 = c.master, *c.sentinels
    for i in range(5):
        assert m.insert_ok(f"all-{i}", w=3) == i + 1
    s2.terminate()
    assert s2.wait_exit(15) == 0
    assert m.insert_ok("on m and s1", w=2) == 6  # A majority of three.
    m.kill9()
    assert cut_wal_tail(data / "m" / "wal", 5) == 1  # What a power loss may do under never.

    s1.terminate()
    assert s1.wait_exit(15) == 0
    s2.start()  # Holds 1..5 only.
    c.master_args[c.master_args.index("never")] = "always"
    m.start()
    wait_until(lambda: "1 sentinel position(s) received, 2 needed" in m.health().get(
        "recovery", ""), 20, 0.05, "the master waits for both sentinels, not trusting its log")
    assert m.health()["readOnly"] is True

    s1.start()
    c.wait_writable(30)
    assert m.insert_ok("after", w=3) == 7
    log = c.wait_converged(expected_len=7)
    assert [e["message"] for e in log][5:] == ["on m and s1", "after"]
    # Written with fsync: always since that take-over: the next restart trusts it again.
    assert (data / "m" / "always-synced").exists()



def test_lost_directory_after_a_scale_up_waits_for_the_sentinel_that_holds_the_log(make_cluster,
                                                                                   tmp_path):
    """Writes acknowledged by a majority of a cluster of two (master and s1); then two empty
    sentinels join, the master loses its directory and restarts while s1 is away. The two empty
    answers are S - M + 2 of today's cluster of four, but not of the one that acknowledged the
    writes: the master must not begin a new log over them (it did, reusing ids 1..5, and s1 then
    refused it for good; the membership audit's F1). It waits for s1."""
    c = make_cluster(n_sentinels=3, master_args=["--data-dir", str(tmp_path / "m")],
                     sentinel_args=lambda i: ["--data-dir", str(tmp_path / f"s{i + 1}")])
    every = list(c.sentinels)
    c.sentinels = every[:1]
    c.start()
    m, s1, s2, s3 = c.master, *every
    for i in range(5):
        assert m.insert_ok(f"acked-{i}", w="majority") == i + 1
    m.kill9()
    shutil.rmtree(tmp_path / "m")
    c.sentinels = every
    s1.stop()
    try:
        s2.start()
        s3.start()
        m.start()

        def waiting():
            h = m.health()
            answered = [c.sentinel_health(s, h)["status"] for s in (s2, s3)]
            return h if answered == ["Healthy", "Healthy"] and "every sentinel has answered" in \
                h.get("recovery", "") else None
        h = wait_until(waiting, 20, 0.05, "s2 and s3 answered, the master waits for s1")
        assert h["state"] == "recovering" and h["logId"] == "", h
        assert c.sentinel_health(s1, h)["status"] == "Unhealthy", h
        assert_error(m.insert("too-early", w=1), 503)
    finally:
        s1.cont()
    h = c.wait_writable(30)
    assert h["lastId"] == 5, h
    assert m.insert_ok("after", w="majority") == 6
    log = c.wait_converged(expected_len=6)
    assert [e["message"] for e in log] == [f"acked-{i}" for i in range(5)] + ["after"]


def test_lost_directory_recovers_the_log_most_sentinels_hold_not_the_longest(make_cluster,
                                                                             tmp_path):
    """s1 keeps an abandoned log A, longer than the cluster's log B on s2 and s3. A master that
    lost its directory chose the log by epoch and length across the two, so A, which one answer
    can never make enough of: it stayed recovering for good with every sentinel up (the
    membership audit's F5). It goes on with B, and reports s1 as holding another log."""
    c = make_cluster(n_sentinels=3, master_args=["--data-dir", str(tmp_path / "m")],
                     sentinel_args=lambda i: ["--data-dir", str(tmp_path / f"s{i + 1}")])
    every = list(c.sentinels)
    m, s1, s2, s3 = c.master, *every
    c.sentinels = [s1]
    c.start()
    for i in range(5):
        m.insert_ok(f"a-{i}", w=2)
    log_a = m.health()["logId"]
    m.kill9()
    shutil.rmtree(tmp_path / "m")
    c.sentinels = every
    s2.start()
    s3.start()
    c.sentinels = [s2, s3]
    m.start()  # s2 and s3 are all it knows: empty, so a new log.
    c.wait_writable(30)
    for i in range(3):
        m.insert_ok(f"b-{i}", w=3)
    log_b = m.health()["logId"]
    assert log_b != log_a
    m.kill9()
    shutil.rmtree(tmp_path / "m")
    c.sentinels = every
    m.start()
    h = c.wait_writable(30)
    assert (h["logId"], h["lastId"]) == (log_b, 3), h
    assert log_a in c.sentinel_health(s1, h).get("lastError", ""), h
    assert m.insert_ok("b-3", w=3) == 4
    assert [e["message"] for e in c.wait_converged(nodes=[m, s2, s3], expected_len=4)] == \
        ["b-0", "b-1", "b-2", "b-3"]
    assert [e["message"] for e in s1.get_all()] == [f"a-{i}" for i in range(5)]


@pytest.mark.parametrize("unclean", [False, True], ids=["waits", "recovery-unclean"])
def test_a_take_over_does_not_go_on_without_ids_a_sentinel_knows_are_committed(make_cluster,
                                                                               tmp_path, unclean):
    """Ids 1..5 are committed (w=3). s1, on fsync: interval, loses power: its log loses them, but
    it keeps the commit id it was told (its checkpoint is synced). Then s2, which holds them, is
    removed from the cluster (a scale-down) while the master's directory is lost. s1's answer is
    enough answers for the cluster of two that is left, and the master took its shorter log over,
    reusing ids 1..5 (the membership audit's F3). s1 knows they were committed: the master waits
    for a node that holds them, until s2 is back. With recovery.unclean it goes on without them
    (Kafka's unclean leader election) and says what was lost."""
    disks = Disks(tmp_path)
    master_args = ["--data-dir", str(tmp_path / "m")] + (["--recovery-unclean"] if unclean else [])

    def sentinel_args(i):
        if i == 0:
            return disks.args("s1", "--fsync", "interval", "--set", "fsync_interval_ms=600000")
        return ["--data-dir", str(tmp_path / "s2")]

    c = make_cluster(n_sentinels=2, master_args=master_args, sentinel_args=sentinel_args)
    c.start()
    m, s1, s2 = c.master, *c.sentinels
    for i in range(5):
        assert m.insert_ok(f"c-{i}", w=3) == i + 1

    def saved_commit():
        path = disks.data("s1") / "commit"
        return int(path.read_text().split()[3]) if path.exists() else 0
    wait_until(lambda: saved_commit() == 5, 10, 0.02, "s1 saved commit id 5")
    s1.kill9()
    lost = power_loss(disks.journal("s1"), disks.data("s1"), random.Random(7))
    assert any("wal" in path for path in lost), lost
    m.kill9()
    shutil.rmtree(tmp_path / "m")
    s2.kill9()
    c.sentinels = [s1]  # s2 is no longer listed: the cluster is the master and s1.
    s1.start()
    h1 = s1.health()
    assert h1["lastId"] < 5 and h1["commitId"] == 5, h1
    m.start()
    if unclean:
        h = c.wait_writable(20)
        assert h["lastId"] == h1["lastId"], h
        assert f"ids {h1['lastId'] + 1}..5 are lost" in m.log_tail(), m.log_tail()
        # s1 learns from the new master's Hello that ids past its log are gone: its commit id
        # drops to it. Kept, every later take-over (recovery.unclean set back to false, as the
        # docs say) would wait for ids nobody holds.
        wait_until(lambda: s1.health()["commitId"] == h1["lastId"], 10, 0.02,
                   "s1's commit id lowered to the new master's log")
        assert m.insert_ok("after", w=2) == h1["lastId"] + 1
        c.master_args.remove("--recovery-unclean")
        m.kill9()
        m.start()
        h = c.wait_writable(20)
        assert h["lastId"] == h1["lastId"] + 1, h
        return
    h = wait_until(lambda: (lambda h: h if "are committed" in h.get("recovery", "") else None)(
        m.health()), 20, 0.05, "the master waiting for ids 1..5")
    assert h["state"] == "recovering" and "recovery.unclean" in h["recovery"], h
    assert_error(m.insert("too-early", w=1), 503)
    assert s1.get_all() == [] or len(s1.get_all()) == h1["lastId"]

    c.sentinels = [s1, s2]  # Scaled back up: the master is told of s2 (a restart, as it waits).
    s2.start()
    m.kill9()
    m.start()
    h = c.wait_writable(30)
    assert h["lastId"] == 5, h
    assert m.insert_ok("after", w=3) == 6
    log = c.wait_converged(expected_len=6)
    assert [e["message"] for e in log] == [f"c-{i}" for i in range(5)] + ["after"]
