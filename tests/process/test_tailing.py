"""GET /messages: long-poll tailing and pagination, on the master and on sentinels."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from harness import assert_error, json_body, wait_until


def _messages(node, **params) -> dict:
    r = node.get("/messages", params=params, timeout=30.0)
    assert r.status_code == 200, f"{node.name} /messages {params}: {r.status_code} {r.content[:300]!r}"
    body = json_body(r)
    assert isinstance(body.get("messages"), list) and isinstance(body.get("next"), int) \
        and isinstance(body.get("lastId"), int), body
    return body


def test_long_poll_returns_as_soon_as_the_id_is_appended(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start()
    m, s1 = c.master, c.sentinels[0]
    assert m.insert_ok("first", w=3) == 1

    wait_ms = 20000
    with ThreadPoolExecutor(max_workers=2) as pool:
        on_master = pool.submit(_messages, m, **{"from": 2, "waitMs": wait_ms})
        on_sentinel = pool.submit(_messages, s1, **{"from": 2, "waitMs": wait_ms})
        # Nothing to return yet: both polls must still be waiting. Give the requests time to reach
        # the servers by checking a later condition: a fresh non-waiting read sees id 1 only.
        assert _messages(m, **{"from": 1})["lastId"] == 1
        assert not on_master.done() and not on_sentinel.done(), (
            "long poll for a missing id returned early",
            on_master.result() if on_master.done() else None,
            on_sentinel.result() if on_sentinel.done() else None)

        t0 = time.monotonic()
        assert m.insert_ok("second", w=3) == 2
        got_m = on_master.result(timeout=wait_ms / 1000 + 10)
        got_s = on_sentinel.result(timeout=wait_ms / 1000 + 10)
        elapsed = time.monotonic() - t0

    # "As soon as": far sooner than waitMs (20 s).
    assert elapsed < 5.0, f"long polls returned {elapsed:.2f}s after the append"
    for got in (got_m, got_s):
        assert [(e["id"], e["message"]) for e in got["messages"]] == [(2, "second")], got
        assert got["next"] == 3 and got["lastId"] == 2, got


def test_long_poll_times_out_with_empty_page(make_cluster):
    c = make_cluster(n_sentinels=2)
    c.start()
    m = c.master
    assert m.insert_ok("only", w=1) == 1
    for node in (m, c.sentinels[0]):
        wait_until(lambda: _messages(node, **{"from": 1})["lastId"] == 1, 10, 0.05, f"{node.name} has id 1")
        t0 = time.monotonic()
        got = _messages(node, **{"from": 2, "waitMs": 400})
        elapsed = time.monotonic() - t0
        assert got["messages"] == [] and got["next"] == 2 and got["lastId"] == 1, got
        assert elapsed >= 0.35, f"{node.name}: waitMs=400 poll returned after {elapsed:.3f}s"
        assert elapsed < 5.0, f"{node.name}: waitMs=400 poll returned after {elapsed:.3f}s"
    # Without waitMs, past the end returns at once with an empty page.
    got = _messages(m, **{"from": 5})
    assert got["messages"] == [] and got["lastId"] == 1, got


def test_pagination_covers_the_log_exactly_once(make_cluster):
    n = 57
    c = make_cluster(n_sentinels=2)
    c.start()
    m = c.master
    for i in range(n):
        assert m.insert_ok(f"page-{i}", w=1) == i + 1
    ref = c.wait_converged(expected_len=n)

    for node in c.nodes:
        for limit in (1, 10, 57, 100):
            seen = []
            frm = 1
            for _ in range(n + 2):  # bounded: at most n pages plus the empty last one
                page = _messages(node, **{"from": frm, "limit": limit})
                assert page["lastId"] == n, page
                msgs = page["messages"]
                assert len(msgs) <= limit, (limit, len(msgs))
                if not msgs:
                    assert page["next"] == frm, page
                    break
                assert [e["id"] for e in msgs] == list(range(frm, frm + len(msgs))), page
                assert page["next"] == msgs[-1]["id"] + 1, page
                if frm + limit - 1 <= n:
                    assert len(msgs) == limit, f"short page before the end: from={frm} limit={limit}"
                seen.extend(msgs)
                frm = page["next"]
            assert seen == ref, f"{node.name} pages with limit={limit} differ from /get-all"


def test_get_all_past_its_limit_is_refused_and_messages_pages_through_it(make_cluster):
    # /get-all builds its whole answer in memory: past http.get_all_max_bytes it is refused (a
    # JSON 400 naming /messages) instead of growing the node without bound; /messages still
    # serves the same log, page by page.
    limit = ["--get-all-max-bytes", "3000"]
    c = make_cluster(n_sentinels=1, master_args=limit, sentinel_args=limit)
    c.start()
    m, s = c.master, c.sentinels[0]
    msgs = [f"big-{i:02d}-" + "x" * 200 for i in range(20)]  # About 4.8 kB of JSON.
    for i, msg in enumerate(msgs[:10]):
        assert m.insert_ok(msg, w=2) == i + 1
    assert [e["message"] for e in m.get_all()] == msgs[:10], "under the limit it is served"
    for i, msg in enumerate(msgs[10:], 11):
        assert m.insert_ok(msg, w=2) == i
    wait_until(lambda: _messages(s, **{"from": 1, "limit": 1})["lastId"] == 20, 10, 0.05,
               "the sentinel shows all 20")
    for n in (m, s):
        body = assert_error(n.get("/get-all"), 400)
        assert body["lastId"] == 20 and body["getAllMaxBytes"] == 3000, body
        assert "/messages?from=1" in body["error"], body
        got, nxt = [], 1
        for _ in range(10):  # Bounded: 7 per page.
            page = _messages(n, **{"from": nxt, "limit": 7})
            got += [e["message"] for e in page["messages"]]
            nxt = page["next"]
            if nxt > 20:
                break
        assert got == msgs, f"{n.name}: paging did not give the log"


def test_long_polls_past_max_waiting_reads_are_refused_until_one_is_answered(make_cluster):
    # A client that polls and disconnects leaves its poll parked until waitMs (Pistache does not
    # tell rlog it left): http.max_waiting_reads bounds how many, on the master and on sentinels.
    cap = ["--max-waiting-reads", "2"]
    c = make_cluster(n_sentinels=1, master_args=cap, sentinel_args=cap)
    c.start()
    m, s = c.master, c.sentinels[0]
    assert m.insert_ok("first", w=2) == 1
    wait_until(lambda: _messages(s, **{"from": 1})["lastId"] == 1, 10, 0.05, "sentinel shows 1")
    with ThreadPoolExecutor(max_workers=4) as pool:
        parked = [pool.submit(_messages, n, **{"from": 2, "waitMs": 20000})
                  for n in (m, m, s, s)]
        for n in (m, s):
            wait_until(lambda n=n: json_body(n.get("/health"))["waitingReads"] == 2, 10, 0.05,
                       f"{n.name} parks two polls")
            r = n.get("/messages", params={"from": 2, "waitMs": 20000}, timeout=10.0)
            body = assert_error(r, 503)
            assert "http.max_waiting_reads" in body["error"], body
            assert r.headers.get("Retry-After") == "1", dict(r.headers)
            assert _messages(n, **{"from": 1})["lastId"] == 1, "a read that does not wait is served"
        assert not any(p.done() for p in parked)
        assert m.insert_ok("second", w=2) == 2
        for p in parked:
            got = p.result(timeout=15)
            assert [e["message"] for e in got["messages"]] == ["second"], got
    for n in (m, s):
        assert json_body(n.get("/health"))["waitingReads"] == 0
