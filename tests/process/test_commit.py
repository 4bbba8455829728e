"""The commit id (high watermark): every node shows its readers only what a majority holds (a
sentinel, what its master told it), so no reader ever sees an entry a later master replaces, not
even on a master that then loses its data directory; and each keeps showing that across its own
restart, with no other node around (docs/ARCHITECTURE.md, "The commit id")."""
from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import json_body, wait_until

# A stopped sentinel stays Suspected (reachable) for the whole test: five nodes, three running.
PATIENT_MASTER = ["--suspect-after-ms", "30000", "--unhealthy-after-ms", "60000"]


def _page(node, frm: int, wait_ms: int = 0, timeout: float = 15.0) -> dict:
    r = node.get(f"/messages?from={frm}&limit=100&waitMs={wait_ms}", timeout=timeout)
    assert r.status_code == 200, r.text
    return json_body(r)


def test_sentinel_shows_an_entry_only_once_a_majority_holds_it(make_cluster):
    c = make_cluster(n_sentinels=4, master_args=PATIENT_MASTER)
    c.start(sentinels=[0, 1])  # s3 and s4 are members that never come: 3 of 5 are needed.
    m, s1, s2 = c.master, c.sentinels[0], c.sentinels[1]
    for i in range(3):
        m.insert_ok(f"committed-{i}", w=3)
    wait_until(lambda: len(s1.get_all()) == 3, 10, 0.02, "s1 shows 1..3")

    s2.stop()  # SIGSTOP: its stream stays open, it acknowledges nothing.
    try:
        assert m.insert_ok("held-by-two", w=1) == 4
        # s1 holds id 4 durably (it acknowledged it), but the master and s1 are two of five.
        wait_until(lambda: s1.health()["durableId"] == 4, 10, 0.02, "s1 holds id 4")
        h = s1.health()
        assert (h["commitId"], h["visibleId"]) == (3, 3), h
        assert m.health()["commitId"] == 3
        assert [e["message"] for e in s1.get_all()] == [f"committed-{i}" for i in range(3)]
        # A reader tailing s1 is not woken by id 4 either: its poll runs out empty.
        page = _page(s1, 4, wait_ms=300)
        assert page["messages"] == [] and page["lastId"] == 3, page
        # The master's readers see the same: it holds id 4, but a master that lost its data now
        # would recover from the sentinels without it.
        hm = m.health()
        assert (hm["lastId"], hm["visibleId"]) == (4, 3), hm
        assert [e["message"] for e in m.get_all()] == [f"committed-{i}" for i in range(3)]
        assert _page(m, 4)["messages"] == []
        with ThreadPoolExecutor(2) as pool:
            # Woken once id 4 is committed. Nothing waking it shows as an answer at the end of its
            # 20 s wait (the page then read has id 4 too): the bound tells the two apart.
            started = time.monotonic()
            tail = pool.submit(_page, s1, 4, 20000, 30.0)
            master_tail = pool.submit(_page, m, 4, 20000, 30.0)
            wait_until(lambda: s1.health()["waitingReads"] == 1 == m.health()["waitingReads"],
                       10, 0.01, "the polls parked on s1 and on the master")
            s2.cont()
            got = tail.result(timeout=30)
            got_master = master_tail.result(timeout=30)
            waited = time.monotonic() - started
        assert [e["message"] for e in got["messages"]] == ["held-by-two"], got
        assert [e["message"] for e in got_master["messages"]] == ["held-by-two"], got_master
        assert waited < 15, f"the long poll was answered by its deadline ({waited:.1f} s), not woken"

    finally:
        s2.cont()
    wait_until(lambda: m.health()["commitId"] == 4, 10, 0.02, "master commit id 4")
    c.wait_converged(nodes=[m, s1, s2], expected_len=4)


def test_restarted_sentinel_shows_what_it_showed_before_without_a_master(make_cluster, tmp_path):
    def data(i: int) -> list[str]:
        return ["--data-dir", str(tmp_path / f"s{i + 1}-data")]

    c = make_cluster(n_sentinels=2, sentinel_args=data)
    c.start()
    m, s1 = c.master, c.sentinels[0]
    for i in range(5):
        m.insert_ok(f"m{i}", w=3)
    wait_until(lambda: s1.health()["visibleId"] == 5, 10, 0.02, "s1 shows 1..5")
    # Saved by the ticker (at most a second later): then even a kill -9 keeps it.
    wait_until(lambda: s1.health()["commitSavedId"] == 5, 10, 0.05, "s1 saved commit id 5")
    m.kill9()
    s1.kill9()
    s1.start()
    h = s1.health()
    assert h["connected"] is False and (h["commitId"], h["visibleId"]) == (5, 5), h
    assert [e["message"] for e in s1.get_all()] == [f"m{i}" for i in range(5)]

    # A damaged checkpoint is ignored with a warning: the sentinel shows nothing until a master
    # says what is committed, and starts all the same.
    s1.terminate()
    assert s1.wait_exit(15) == 0
    (tmp_path / "s1-data" / "commit").write_bytes(b"rlog-commit 1 garbage")
    s1.start()
    h = s1.health()
    assert (h["lastId"], h["commitId"], h["visibleId"]) == (5, 0, 0), h
    assert s1.get_all() == []
    m.start()
    wait_until(lambda: s1.health()["visibleId"] == 5, 15, 0.05, "s1 told 1..5 are committed")


@pytest.mark.parametrize("master_data", [False, True], ids=["master-in-memory", "master-on-disk"])
def test_new_master_commits_what_it_took_over_without_a_write(make_cluster, tmp_path, master_data):
    """A master that took over commits the entries of earlier epochs it holds once a majority
    holds them all and has marked its epoch there (an epoch mark in the WAL: Raft's no-op entry,
    without an id), before any write of its own. The sentinels then show them, and rank their
    logs with the new epoch (lastEpoch). Before epoch marks, they stayed hidden until the next
    write."""
    def data(i: int) -> list[str]:
        return ["--data-dir", str(tmp_path / f"s{i + 1}-data")]

    master_args = ["--data-dir", str(tmp_path / "m-data")] if master_data else []
    c = make_cluster(n_sentinels=2, sentinel_args=data, master_args=master_args)
    c.start()
    m = c.master
    for i in range(3):
        m.insert_ok(f"old-{i}", w=3)
    m.kill9()
    for s in c.sentinels:  # Neither remembers a commit id: both checkpoints are gone.
        s.terminate()
        assert s.wait_exit(15) == 0
        (tmp_path / f"{s.name}-data" / "commit").unlink()
        s.start()
        assert s.health()["visibleId"] == 0
    m.start()  # It takes over at a new epoch, from its WAL or (in memory) copying 1..3.
    c.wait_writable()
    wait_until(lambda: m.health()["commitId"] == 3, 10, 0.02, "commit id 3 with no new write")
    h = m.health()
    assert h["epoch"] == 2 and h["lastId"] == 3 and h["lastEpoch"] == 2, h
    for s in c.sentinels:
        wait_until(lambda: s.health()["visibleId"] == 3, 10, 0.02, f"{s.name} shows 1..3")
        assert s.health()["lastEpoch"] == 2, s.health()
        assert [e["message"] for e in s.get_all()] == ["old-0", "old-1", "old-2"]
    assert m.insert_ok("new-0", w=3) == 4
    wait_until(lambda: m.health()["commitId"] == 4, 10, 0.02, "commit id 4")
    c.wait_converged(expected_len=4)


def test_master_readers_never_see_what_a_lost_directory_takes_back(make_cluster, tmp_path):
    """A w=1 write and a timed-out w=2 write that only the master holds are not shown on the
    master either: its directory lost, the master recovers from the sentinels without them and
    gives their ids to other messages. Before, the master showed them (one id, two messages)."""
    c = make_cluster(n_sentinels=2, master_args=PATIENT_MASTER + ["--data-dir",
                                                                    str(tmp_path / "m-data")])
    c.start()
    m, s1, s2 = c.master, *c.sentinels
    assert m.insert_ok("committed", w=3) == 1
    s1.stop()
    s2.stop()
    try:
        assert m.insert_ok("only-on-the-master", w=1) == 2
        r = m.insert("timed-out", w=2, timeout_ms=300)
        assert r.status_code == 504 and json_body(r)["id"] == 3, r.text
        assert "not acknowledged" in json_body(r)["error"], r.text
        h = m.health()
        assert (h["lastId"], h["durableId"], h["visibleId"]) == (3, 3, 1), h
        assert [e["message"] for e in m.get_all()] == ["committed"]
        page = _page(m, 2, wait_ms=200)
        assert page["messages"] == [] and page["lastId"] == 1, page
        m.kill9()
    finally:
        s1.cont()
        s2.cont()
    shutil.rmtree(tmp_path / "m-data")
    m.start()
    c.wait_writable(30)
    # Ids 2 and 3 went on to the sentinels or not (they were on their way when the master
    # died): the new log has a prefix of them, and gives the other ids to other messages.
    # Neither was shown.
    after = m.insert_ok("after", w=3)
    log = c.wait_converged(expected_len=after)
    assert [e["message"] for e in log] in (["committed", "after"],
                                           ["committed", "only-on-the-master", "after"],
                                           ["committed", "only-on-the-master", "timed-out",
                                            "after"]), log


def test_restarted_master_shows_what_it_showed_before_without_its_sentinels(make_cluster,
                                                                             tmp_path):
    c = make_cluster(n_sentinels=2, master_args=["--data-dir", str(tmp_path / "m-data")])
    c.start()
    m = c.master
    for i in range(4):
        m.insert_ok(f"m{i}", w=3)
    wait_until(lambda: m.health()["commitSavedId"] == 4, 10, 0.05, "the master saved commit id 4")
    for s in c.sentinels:
        s.kill9()
    m.kill9()
    m.start()  # It recovers until a sentinel answers, and meanwhile shows what it showed.
    h = wait_until(lambda: (lambda h: h if all(c.sentinel_health(s, h).get("lastError")
                                               for s in c.sentinels) else None)(m.health()),
                   15, 0.05, "recovery tried both sentinels")
    assert h["state"] == "recovering" and h["visibleId"] == 4, h
    assert [e["message"] for e in m.get_all()] == [f"m{i}" for i in range(4)]
    # /metrics says the same while it recovers: the log it holds, what readers see, and each
    # sentinel as Unhealthy (RlogSentinelUnhealthy can fire; it showed none, and last id 0).
    text = m.get("/metrics").text.splitlines()
    assert "rlog_log_last_id 4" in text and "rlog_commit_id 4" in text, text
    for s in c.sentinels:
        assert f'rlog_sentinel_up{{sentinel="{c.sentinel_name(s)}",status="Unhealthy"}} 1' in text
    # A damaged checkpoint is ignored with a warning: nothing is shown until the take-over.
    m.terminate()
    assert m.wait_exit(15) == 0
    (tmp_path / "m-data" / "commit").write_bytes(b"rlog-commit 1 garbage")
    m.start()
    assert m.health()["visibleId"] == 0 and m.get_all() == []
    assert "ignoring the saved commit id" in m.log_tail()
    for s in c.sentinels:
        s.start()
    c.wait_writable(30)
    wait_until(lambda: m.health()["visibleId"] == 4, 10, 0.02, "the master shows 1..4 again")
    assert m.insert_ok("after", w=3) == 5


def test_a_take_over_commits_nothing_a_majority_does_not_hold(make_cluster, tmp_path):
    """A take-over told the core what the log holds before the sentinels were members, so the
    master alone was a majority: the commit id jumped to its last id, ids 6..10 that only it held
    were shown to its readers and sent to the sentinels as committed (review of 2026-12-07, F1).
    They are committed only once a majority holds them with the new epoch's mark."""
    c = make_cluster(n_sentinels=2, master_args=PATIENT_MASTER + [
        "--data-dir", str(tmp_path / "m"), "--enable-test-faults",
        "--test-recovery-pause-ms", "1500"])
    c.start(timeout=30)
    m, s1, s2 = c.master, *c.sentinels
    for i in range(5):
        m.insert_ok(f"a-{i}", w=3)
    s1.stop()
    s2.stop()
    try:
        for i in range(5):
            assert m.insert_ok(f"b-{i}", w=1) == 6 + i
        wait_until(lambda: m.health()["commitSavedId"] == 5, 10, 0.05, "commit id 5 saved")
        m.kill9()
    finally:
        s1.cont()
        s2.cont()
    s2.kill9()
    m.start(wait=False)
    wait_until(lambda: "TEST: pausing recovery" in m.log_tail(), 15, 0.05, "s1 promised")
    s1.stop()  # The take-over happens with no sentinel to connect to.
    try:
        h = wait_until(lambda: (lambda h: h if h["state"] != "recovering" else None)(m.health()),
                       15, 0.05, "the take-over")
        assert h["lastId"] == 10 and h["commitId"] <= 5 and h["visibleId"] == 5, h
        assert [e["message"] for e in m.get_all()] == [f"a-{i}" for i in range(5)]
    finally:
        s1.cont()
    # s1 takes 6..10 and the mark of the new epoch: with the master, a majority of three.
    wait_until(lambda: m.health()["visibleId"] == 10, 15, 0.05, "ids 6..10 committed")
    wait_until(lambda: s1.health()["visibleId"] == 10, 15, 0.05, "s1 shows 1..10")


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_a_saved_commit_id_past_the_log_taken_over_shows_no_new_write(make_cluster, tmp_path):
    """A saved commit id can be past the log a take-over goes on with (a power loss under
    fsync: interval or never took ids from every node that had them); those ids go to the next
    writes, which the master then showed at once, only it holding them (review of 2026-12-07,
    F4). The take-over lowers it to the log's end."""
    c = make_cluster(n_sentinels=2, master_args=PATIENT_MASTER + ["--data-dir",
                                                                    str(tmp_path / "m")])
    c.start()
    m, s1, s2 = c.master, *c.sentinels
    for i in range(3):
        m.insert_ok(f"a-{i}", w=3)
    log_id = m.health()["logId"]
    m.terminate()
    assert m.wait_exit(15) == 0
    line = f"rlog-commit 1 {log_id} 9"  # As storage/commit_checkpoint.h writes it.
    (tmp_path / "m" / "commit").write_text(f"{line} {_crc32c(line.encode()):x}\n")
    m.start()
    assert "commit id 9 (saved)" in m.log_tail()
    c.wait_writable(20)
    s1.stop()
    s2.stop()
    try:
        assert m.insert_ok("only-on-the-master", w=1) == 4
        h = m.health()
        assert (h["lastId"], h["visibleId"]) == (4, 3), h
        assert len(m.get_all()) == 3
    finally:
        s1.cont()
        s2.cont()
    wait_until(lambda: m.health()["visibleId"] == 4, 10, 0.02, "id 4 committed")
