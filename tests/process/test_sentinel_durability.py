"""A sentinel with a data directory: it acknowledges only what it has fsynced, a restarted one
resumes from its durable position (the master sends only what it lacks), and a corrupt
write-ahead log either stops it (naming the file and offset) or, with wal.on_corruption: refetch,
is moved aside and the log fetched again from the master. A sentinel holding a tail a new master
never had cuts that tail and keeps the rest.

Fencing of masters with an older epoch needs a master that restarts with a new epoch; it is
covered by unit tests (src/replication: hello_decision_test, sentinel_service_test).
"""

from __future__ import annotations

import re

from harness import (Node, WriteLoad, assert_acked_exactly_once, check_log, cut_wal_tail,
                     wait_until)


def _data_args(path, *extra: str) -> list[str]:
    return ["--data-dir", str(path), "--fsync", "always", *extra]


def test_sentinel_killed_under_w2_writes_keeps_every_acknowledged_entry(make_cluster, tmp_path):
    c = make_cluster(n_sentinels=1, sentinel_args=_data_args(tmp_path / "s1-data"))
    c.start()
    m, s = c.master, c.sentinels[0]

    # w=2 in a cluster of two: every 200 means the sentinel acknowledged the entry, which it may
    # only do once the entry is fsynced. While it is down the master is read-only (503, retried).
    load = WriteLoad(m, threads=4, per_thread=150, ws=[2], prefix="dur", retry_503=2000).start()
    wait_until(lambda: load.done_count() >= 150, 60, 0.01, "150 writes done before the crash")
    s.kill9()
    # Nothing can complete with w=2 while the sentinel is dead: every 200 so far was acknowledged
    # by the sentinel before the kill.
    acked_at_crash = load.acked()
    assert acked_at_crash, "no write was acknowledged before the crash"
    highest = max(acked_at_crash.values())

    s.start()
    h = s.health()
    recovered = h["recovery"]["entries"]
    assert recovered >= highest > 0, (
        f"the sentinel recovered {recovered} entries but had acknowledged id {highest}: {h}")
    assert h["lastId"] >= recovered and h["durableId"] >= recovered, h
    # Readers see what the master says is committed (the commit id saved before the kill, then
    # the master's): ids up to `recovered` are never sent again (entriesReceived below), so what
    # shows there is what recovery found.
    wait_until(lambda: s.health()["visibleId"] >= recovered, 30, 0.02, "recovered ids visible")
    log = s.get_all()
    check_log(log, "s1 right after restart")
    on_disk = {e["id"]: e["message"] for e in log[:recovered]}
    wrong = [(msg, i, on_disk.get(i)) for msg, i in acked_at_crash.items() if on_disk.get(i) != msg]
    assert not wrong, f"acknowledged (message, id) not recovered as such: {wrong[:5]}"

    load.join(150)
    bad = load.failures()
    assert not bad, f"{len(bad)} of {load.total} writes were not 200, e.g. {bad[:5]}"
    acked = load.acked()
    ref = c.wait_converged(expected_len=load.total, timeout=60)
    for n in c.nodes:
        assert_acked_exactly_once(n.get_all(), acked, n.name)
    assert sorted(e["message"] for e in ref) == sorted(acked)

    # The master resumed from the sentinel's durable position: it sent every entry after it, once.
    def settled():
        sh = s.health()
        return sh if sh["durableId"] == sh["lastId"] == load.total else None
    sh = wait_until(settled, 30, 0.05, "s1 durable up to the last id")
    assert sh["entriesReceived"] == load.total - recovered, (
        f"after restarting with {recovered} entries the sentinel received {sh['entriesReceived']} "
        f"for {load.total - recovered} missing ones: the master resent what it held")

    # Every ack waited for an fsync, and each one was timed.
    metrics = s.get("/metrics").text
    counts = [float(line.split()[-1]) for line in metrics.splitlines()
              if line.startswith("rlog_wal_fsync_duration_seconds_count")]
    assert counts and counts[0] > 0, f"no fsync observed on the sentinel:\n{metrics[:2000]}"


def _write_segments(m, n: int) -> list[str]:
    msgs = [f"c-{i:03d}-" + "x" * 200 for i in range(n)]
    for i, msg in enumerate(msgs):
        assert m.insert_ok(msg, w=2) == i + 1
    return msgs


def test_a_second_node_on_the_same_data_directory_stops_and_the_first_goes_on(make_cluster, spawned,
                                                                            tmp_path):
    """Two processes appending to one WAL would interleave their records. The second one must
    stop before it reads or writes anything, naming the lock and who holds it; a crash must not
    leave the lock behind."""
    data = tmp_path / "s1-data"
    c = make_cluster(n_sentinels=1, sentinel_args=_data_args(data))
    c.start()
    m, s = c.master, c.sentinels[0]
    msgs = [f"lock-{i}" for i in range(20)]
    for i, msg in enumerate(msgs):
        assert m.insert_ok(msg, w=2) == i + 1
    wal_before = {p.name: p.read_bytes() for p in (data / "wal").iterdir()}

    twin = Node("s1-twin", "sentinel", tmp_path,
                lambda: ["--role", "sentinel", "--node-id", "s1-twin", "--http-address",
                         "127.0.0.1", "--port", str(twin.http_port), "--grpc-address",
                         "127.0.0.1", "--grpc-port", str(twin.grpc_port), *_data_args(data)])
    spawned.append(twin)
    twin.start(wait=False)
    rc = twin.wait_exit(15)
    out = twin.log_tail(4000)
    assert rc != 0, f"a second node started on {data}:\n{out}"
    assert f"lock {data}/LOCK: held by process {s.pid}" in out, out
    assert "another rlog node" in out, out
    assert {p.name: p.read_bytes() for p in (data / "wal").iterdir()} == wal_before, (
        "the refused node changed the WAL")

    # The first one goes on, and kill -9 takes its lock along.
    assert m.insert_ok("after the twin", w=2) == len(msgs) + 1
    s.kill9()
    s.start()
    assert m.insert_ok("after the crash", w=2) == len(msgs) + 2
    got = c.wait_converged(expected_len=len(msgs) + 2, timeout=30)
    assert [e["message"] for e in got] == msgs + ["after the twin", "after the crash"]


def test_corrupt_wal_stops_the_sentinel_or_is_moved_aside_and_refetched(make_cluster, tmp_path):
    data = tmp_path / "s1-data"
    extra: list[str] = []
    c = make_cluster(n_sentinels=1,
                     sentinel_args=lambda i: _data_args(data, "--set", "wal.segment_bytes=4096")
                     + extra)
    c.start()
    m, s = c.master, c.sentinels[0]
    msgs = _write_segments(m, 80)  # ~240 bytes per record: five segments of 4 KiB.
    s.terminate()
    assert s.wait_exit(15) == 0

    segments = sorted((data / "wal").glob("wal-*.log"))
    assert len(segments) >= 3, f"expected several segments, got {[p.name for p in segments]}"
    victim = segments[1]  # Closed: a bad record here is corruption, not a torn tail.
    raw = bytearray(victim.read_bytes())
    flip = len(raw) // 2
    for k in range(flip, flip + 8):
        raw[k] ^= 0xFF
    victim.write_bytes(bytes(raw))

    # on_corruption: fail (the default) - the sentinel refuses to start and says where.
    s.start(wait=False)
    rc = s.wait_exit(20)
    assert rc != 0, f"a sentinel with a corrupt WAL started:\n{s.log_tail()}"
    found = re.search(r"WAL segment (\S+) at offset (\d+)", s.log_tail(4000))
    assert found, f"the error does not name the file and offset:\n{s.log_tail(4000)}"
    assert found.group(1) == str(victim), found.group(0)
    assert 0 < int(found.group(2)) <= flip, found.group(0)

    # on_corruption: refetch - the damaged log is moved aside and fetched again from the master.
    extra += ["--wal-on-corruption", "refetch"]
    s.start()
    h = s.health()
    assert h["walCorruptionMovedAside"] and str(victim) in h["walCorruptionMovedAside"], h
    assert h["recovery"]["entries"] == 0, h
    moved = list(data.glob("wal.corrupt-*"))
    assert len(moved) == 1 and (moved[0] / victim.name).exists(), (
        f"no moved-aside copy of the WAL in {data}: {[p.name for p in data.iterdir()]}")
    ref = c.wait_converged(expected_len=len(msgs), timeout=30)
    assert [e["message"] for e in ref] == msgs
    wait_until(lambda: s.health()["durableId"] == len(msgs), 15, 0.05, "refetched log durable")

    # The fetched log is a sound WAL: a plain restart recovers all of it.
    extra.clear()
    s.terminate()
    assert s.wait_exit(15) == 0
    s.start()
    h = s.health()
    assert h["recovery"]["entries"] == len(msgs) and "walCorruptionMovedAside" not in h, h
    assert [e["message"] for e in s.get_all()] == msgs


def test_sentinel_keeps_what_it_shares_with_a_new_master_and_cuts_only_its_diverged_tail(
        make_cluster, tmp_path):
    # A master's appends reach a sentinel before its own fsync covers them. Should the master
    # then lose power, the sentinel holds a tail the master never had; the master takes over
    # again (new epoch) hearing only from the other sentinel, and writes its own entries at
    # those ids. The sentinel must drop that tail and only that tail: the entries before it are
    # the master's too and are neither dropped nor fetched again.
    data = tmp_path / "data"
    c = make_cluster(n_sentinels=2,
                     master_args=_data_args(data / "master"),
                     sentinel_args=lambda i: _data_args(data / f"s{i + 1}"))
    c.start()
    m, (s1, s2) = c.master, c.sentinels
    for i in range(1, 4):
        assert m.insert_ok(f"shared-{i}", w=3) == i
    s2.kill9()
    for i in (4, 5):
        assert m.insert_ok(f"lost-{i}", w=1) == i
    wait_until(lambda: s1.health()["durableId"] >= 5, 10, 0.02, "s1 holds ids 4-5 durably")
    s1.kill9()
    m.kill9()
    assert cut_wal_tail(data / "master" / "wal", 3) == 2  # The master's power loss: ids 4-5.

    s2.start()
    m.start()
    c.wait_writable(30)  # Its own log (fsync: always) and s2's position are enough to go on.
    for i in (4, 5, 6):
        assert m.insert_ok(f"new-{i}", w=2) == i

    s1.start()
    ref = c.wait_converged(expected_len=6, timeout=30)
    assert [e["message"] for e in ref] == ["shared-1", "shared-2", "shared-3",
                                           "new-4", "new-5", "new-6"], ref
    for n in c.nodes:
        check_log(n.get_all(), n.name)
    log = s1.log_path.read_text()
    assert re.search(r"my entries after id 3 \(up to id 5\) are not in the master's log", log), (
        s1.log_tail())
    # Ids 1-3 stayed: the restarted sentinel received 4-6 only.
    assert s1.health()["entriesReceived"] == 3, s1.health()
    assert m.insert_ok("after", w=3) == 7
    check_log(c.wait_converged(expected_len=7), "after the cut")
