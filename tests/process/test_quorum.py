"""Quorum, write concern, timeouts and idempotency against real processes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from harness import LONG_HTTP_TIMEOUT, assert_error, check_log, json_body, wait_until


def test_no_quorum_is_read_only_with_retry_after_then_recovers(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start()
    m, (s1, s2) = c.master, c.sentinels
    assert m.insert_ok("q1", w=3) == 1

    s1.kill9()
    s2.kill9()
    h = c.wait_read_only()
    q = h["quorum"]
    assert (q["clusterSize"], q["reachable"], q["majority"]) == (3, 1, 2), h

    for w in (1, 2, 3, "majority"):
        r = m.insert(f"rejected-{w}", w=w)
        assert_error(r, 503)
        ra = r.headers.get("Retry-After")
        assert ra is not None and ra.strip().isdigit() and int(ra) >= 1, f"Retry-After: {ra!r}"
    assert [(e["id"], e["message"]) for e in m.get_all()] == [(1, "q1")], "a 503 write was appended"
    assert m.last_id() == 1

    # One sentinel back: master + S1 are a majority again.
    s1.start()
    h = c.wait_writable()
    assert h["quorum"]["reachable"] == 2, h
    assert m.insert_ok("q2", w=2) == 2
    ref = c.wait_converged(nodes=[m, s1], expected_len=2)
    assert [(e["id"], e["message"]) for e in ref] == [(1, "q1"), (2, "q2")]


def test_write_concern_larger_than_cluster_is_rejected_at_once(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start(sentinels=[0])  # S2 down: an accepted w=4 would park, not fail
    m = c.master
    for body in ({"message": "x", "writeConcern": 4}, {"message": "x", "w": 4},
                 {"message": "x", "writeConcern": 1000}):
        r = m.post("/insert", body, timeout=3.0)
        assert_error(r, 400)
    # "majority" and the alias "w" are accepted.
    r = m.insert("maj", w="majority")
    assert r.status_code == 200 and json_body(r)["id"] == 1, r.content
    r = m.insert("alias", w=2, alias=True)
    assert r.status_code == 200 and json_body(r)["id"] == 2, r.content
    r = m.post("/insert", {"message": "default-w"})
    assert r.status_code == 200 and json_body(r)["id"] == 3, r.content
    # "all" is 3 here: with S2 down it waits, and times out.
    r = m.insert("all", w="all", timeout_ms=200)
    assert assert_error(r, 504).get("id") == 4
    assert [e["message"] for e in m.get_all()] == ["maj", "alias", "default-w", "all"]


def test_parked_w3_writes_do_not_block_w1_writes(make_cluster):
    n_parked, n_fast = 200, 20
    c = make_cluster(n_sentinels=2)
    c.start(sentinels=[0])
    m, (s1, s2) = c.master, c.sentinels

    with ThreadPoolExecutor(max_workers=n_parked) as pool:
        parked = [pool.submit(m.insert, f"park-{i}", 3, None, None, LONG_HTTP_TIMEOUT)
                  for i in range(n_parked)]
        # All 200 stored (and acked by S1), none answered: they are parked.
        wait_until(lambda: m.last_id() == n_parked, 60, 0.05, f"master stored {n_parked} w=3 writes")
        wait_until(lambda: c.sentinel_health(s1)["ackedId"] == n_parked, 30, 0.05, "S1 acked them")
        early = [f.result() for f in parked if f.done()]
        assert not early, f"{len(early)} w=3 writes answered with S2 down, e.g. {early[0].content!r}"

        # w=1 writes sent after them are answered while every w=3 write is still parked.
        fast_ids = []
        for i in range(n_fast):
            r = m.insert(f"fast-{i}", w=1, http_timeout=10.0)
            assert r.status_code == 200, r.content
            fast_ids.append(json_body(r)["id"])
        still_parked = sum(1 for f in parked if not f.done())
        assert still_parked == n_parked, f"only {still_parked} of {n_parked} w=3 writes still parked"
        assert fast_ids == list(range(n_parked + 1, n_parked + n_fast + 1))

        s2.start()
        results = [f.result(timeout=LONG_HTTP_TIMEOUT + 5) for f in parked]

    bad = [(r.status_code, r.content[:200]) for r in results if r.status_code != 200]
    assert not bad, f"{len(bad)} parked writes failed, e.g. {bad[:3]}"
    ids = [json_body(r)["id"] for r in results]
    assert sorted(ids) == list(range(1, n_parked + 1)), "parked writes' ids are not distinct 1..200"
    ref = c.wait_converged(expected_len=n_parked + n_fast, timeout=60)
    check_log(ref, "master")
    by_id = {e["id"]: e["message"] for e in ref}
    for i, r in enumerate(results):
        assert by_id[json_body(r)["id"]] == f"park-{i}"
    for i, fid in enumerate(fast_ids):
        assert by_id[fid] == f"fast-{i}"


def test_timeout_ms_gives_504_with_id_and_the_message_still_replicates(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start(sentinels=[0])
    m, s2 = c.master, c.sentinels[1]
    assert m.insert_ok("t1", w=2) == 1

    t0 = time.monotonic()
    r = m.insert("t2-times-out", w=3, timeout_ms=300, http_timeout=15.0)
    elapsed = time.monotonic() - t0
    body = assert_error(r, 504)
    assert body.get("id") == 2, body
    assert elapsed >= 0.25, f"504 after {elapsed:.3f}s, before timeoutMs=300 ran out"
    assert [(e["id"], e["message"]) for e in m.get_all()] == [(1, "t1"), (2, "t2-times-out")]

    assert m.insert_ok("t3", w=1) == 3
    s2.start()
    ref = c.wait_converged(expected_len=3)
    assert [(e["id"], e["message"]) for e in ref] == [(1, "t1"), (2, "t2-times-out"), (3, "t3")]


def test_idempotency_key_retry_returns_same_id_and_appends_once(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start()
    m = c.master
    assert m.insert_ok("before", w=1) == 1
    r1 = m.insert("idem", w=2, key="key-A")
    assert r1.status_code == 200, r1.content
    first = json_body(r1)["id"]
    assert first == 2
    for _ in range(3):
        r = m.insert("idem", w=2, key="key-A")
        assert r.status_code == 200, r.content
        assert json_body(r)["id"] == first
    # The same key with another message is not a retry: refused, naming the first id.
    reused = m.insert("not idem", w=2, key="key-A")
    body = assert_error(reused, 422)
    assert body["id"] == first and "another message" in body["error"], body
    # A different key is a different write.
    assert m.insert_ok("idem", w=2, key="key-B") == 3
    assert m.insert_ok("after", w=1) == 4
    ref = c.wait_converged(expected_len=4)
    assert [(e["id"], e["message"]) for e in ref] == [(1, "before"), (2, "idem"), (3, "idem"), (4, "after")]


def test_idempotency_key_retry_of_a_timed_out_write_appends_nothing(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start(sentinels=[0])
    m, s2 = c.master, c.sentinels[1]
    r = m.insert("idem-parked", w=3, timeout_ms=200, key="key-P")
    assert assert_error(r, 504).get("id") == 1
    # Retried while it still cannot complete: the same id again, nothing new appended.
    r = m.insert("idem-parked", w=3, timeout_ms=200, key="key-P")
    assert assert_error(r, 504).get("id") == 1
    assert m.last_id() == 1
    s2.start()
    # Once S2 is back the retry succeeds, still with the first id.
    r = m.insert("idem-parked", w=3, key="key-P", http_timeout=30.0)
    assert r.status_code == 200 and json_body(r)["id"] == 1, r.content
    ref = c.wait_converged(expected_len=1)
    assert [(e["id"], e["message"]) for e in ref] == [(1, "idem-parked")]


def test_concurrent_retries_with_one_idempotency_key_append_once(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start()
    m = c.master
    n = 16
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(lambda _: m.insert("race", w=2, key="key-R", http_timeout=30.0), range(n)))
    assert all(r.status_code == 200 for r in results), [(r.status_code, r.content) for r in results]
    assert {json_body(r)["id"] for r in results} == {1}
    assert m.insert_ok("next", w=1) == 2
    ref = c.wait_converged(expected_len=2)
    assert [(e["id"], e["message"]) for e in ref] == [(1, "race"), (2, "next")]


def test_one_sentinel_listed_under_two_names_counts_once(make_cluster, tmp_path):
    # 127.0.0.1:P and localhost:P are one node. Counted twice, a w=3 write would be acknowledged
    # with two copies, the master would believe it had a majority of three, and with a third
    # name for another sentinel the cluster would look like four nodes. The sentinel refuses a
    # second stream of one master under another name (SentinelService::ClaimName): that name
    # counts for nothing, and recovery counts sentinel processes (PositionReply.instance_id).
    c = make_cluster(n_sentinels=2, master_args=["--data-dir", str(tmp_path / "m")])
    s1, s2 = c.sentinels
    c.master_args += ["--sentinels", f"127.0.0.1:{s1.grpc_port},localhost:{s1.grpc_port},"
                                     f"127.0.0.1:{s2.grpc_port}"]
    c.start()
    m = c.master
    h = wait_until(lambda: (lambda h: h if any("duplicateOf" in x for x in h["sentinels"])
                            else None)(m.health()), 10, 0.05, "the second name marked a duplicate")
    assert h["quorum"]["clusterSize"] == 3 and h["quorum"]["majority"] == 2, h
    assert len(h["sentinels"]) == 3, h
    names = {x["name"] for x in h["sentinels"]}
    dup = next(x for x in h["sentinels"] if "duplicateOf" in x)
    assert dup["duplicateOf"] in names - {dup["name"]}, h  # The other name of the same sentinel.
    assert m.insert_ok("three copies", w=3) == 1
    assert m.insert_ok("all of them", w="all") == 2
    log = m.log_path.read_text()
    assert "is the same sentinel process as" in log and "counted once" in log, m.log_tail()

    s2.terminate()
    assert s2.wait_exit(15) == 0
    wait_until(lambda: m.health()["quorum"]["reachable"] == 2, 10, 0.05, "s2 unreachable")
    assert m.insert_ok("master and s1 are a majority", w="majority") == 3
    body = assert_error(m.insert("three copies?", w=3, timeout_ms=1000), 504)
    assert body["id"] == 4, body


def test_a_master_whose_only_sentinel_is_listed_twice_recovers_and_takes_writes(make_cluster,
                                                                                  tmp_path):
    # Recovery counts sentinel processes, not names: with a fresh directory it needs an answer
    # from every sentinel, and one process is all there is.
    c = make_cluster(n_sentinels=1, master_args=["--data-dir", str(tmp_path / "m")])
    s = c.sentinels[0]
    c.master_args += ["--sentinels", f"127.0.0.1:{s.grpc_port},localhost:{s.grpc_port}"]
    c.start()
    assert c.master.insert_ok("one", w=2) == 1
    assert c.master.health()["quorum"]["clusterSize"] == 2
