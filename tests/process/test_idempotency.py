"""Idempotency keys across a change of master (README, "Idempotency keys"). The key is stored
with its entry: in the write-ahead log, in the replication stream and on every sentinel. A
master taking the log over learns the keys from it, however it comes back: restarted with its
data directory after kill -9 or a drain, rebuilt from the sentinels after losing the directory,
or restarted in memory. A client retrying across the change gets the id its write was first
given, and nothing is appended twice."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import (StoppableThreads, assert_acked_exactly_once, assert_error, json_body,
                     wait_until)

MODES = ["kill9-with-data", "drain-with-data", "lost-directory", "in-memory"]


def _change_master(c, master_dir, how):
    """The master goes away (kill -9, a drain, or kill -9 and its directory lost) and comes back;
    returns /health once it is writable again."""
    m = c.master
    if how.startswith("drain"):
        m.terminate()
        assert m.wait_exit(15) == 0
    else:
        m.kill9()
    if how == "lost-directory":
        shutil.rmtree(master_dir)
    m.start()
    return c.wait_writable(30)


def _cluster(make_cluster, tmp_path, mode):
    if mode == "in-memory":
        return make_cluster(n_sentinels=2), None
    data = tmp_path / "data"
    c = make_cluster(n_sentinels=2, master_args=["--data-dir", str(data / "master")],
                     sentinel_args=lambda i: ["--data-dir", str(data / f"s{i + 1}")])
    return c, data / "master"


@pytest.mark.parametrize("mode", MODES)
def test_a_retry_reaching_the_next_master_gets_the_first_id(make_cluster, tmp_path, mode):
    c, master_dir = _cluster(make_cluster, tmp_path, mode)
    c.start()
    m = c.master
    assert m.insert_ok("plain", w=1) == 1
    assert m.insert_ok("pay-1", w="majority", key="order-1") == 2
    assert m.insert_ok("pay-2", w=3, key="order-2") == 3
    assert m.insert_ok("plain-2", w=1) == 4
    c.wait_converged(expected_len=4)
    before = m.health()
    h = _change_master(c, master_dir, mode)
    assert h["epoch"] > before["epoch"] and h["logId"] == before["logId"], h
    assert "idempotency keys of ids 2..3 taken over with the log (2 keys)" in m.log_tail(), \
        m.log_tail()
    assert h["idempotencyKeys"] == 2, h

    # The retries of the clients that did not see their answers: the first ids, nothing appended.
    for message, key, w, first in [("pay-1", "order-1", "majority", 2), ("pay-2", "order-2", 3, 3)]:
        r = m.insert(message, w=w, key=key)
        assert r.status_code == 200, r.content
        assert json_body(r)["id"] == first, (key, r.content)
    assert m.last_id() == 4
    # A key the log holds, sent with another message, is still refused, naming the first id.
    body = assert_error(m.insert("pay-3", w=1, key="order-1"), 422)
    assert body["id"] == 2, body
    # A new key is a new write, and is remembered in its turn.
    assert m.insert_ok("pay-3", w=3, key="order-3") == 5
    assert m.insert_ok("pay-3", w=3, key="order-3") == 5
    assert m.health()["idempotencyKeys"] == 3
    ref = c.wait_converged(expected_len=5)
    assert [e["message"] for e in ref] == ["plain", "pay-1", "pay-2", "plain-2", "pay-3"]


def test_a_write_parked_through_a_drain_is_acknowledged_by_the_next_master(make_cluster,
                                                                          tmp_path):
    """The case the drain's 503 is about: a w=3 write that a draining master could not complete
    (one sentinel away). It is stored, not acknowledged. The client retries against the next
    master with its key, and gets the same id once three nodes hold it."""
    c, _ = _cluster(make_cluster, tmp_path, "drain-with-data")
    c.start()  # All three: a new log with data directories waits for every sentinel.
    m, s2 = c.master, c.sentinels[1]
    s2.terminate()
    assert s2.wait_exit(15) == 0
    assert m.insert_ok("first", w=2, key="k-first") == 1
    with ThreadPoolExecutor(max_workers=1) as pool:
        parked = pool.submit(m.insert, "parked", w=3, key="k-parked", http_timeout=30.0)
        wait_until(lambda: m.last_id() == 2, 10, 0.02, "the w=3 write stored as id 2")
        m.terminate()
        r = parked.result(timeout=30)
    body = assert_error(r, 503)
    assert body["id"] == 2 and body["stored"] is True, body
    assert "idempotencyKey" in body["error"], body
    assert m.wait_exit(15) == 0

    m.start()
    c.wait_writable(30)
    r = m.insert("parked", w=3, key="k-parked", timeout_ms=200)  # Still only two nodes.
    assert assert_error(r, 504)["id"] == 2
    assert m.last_id() == 2, "a retry appended the message again"
    s2.start()
    r = m.insert("parked", w=3, key="k-parked", http_timeout=30.0)
    assert r.status_code == 200 and json_body(r)["id"] == 2, r.content
    ref = c.wait_converged(expected_len=2)
    assert [e["message"] for e in ref] == ["first", "parked"]


class RetryingWriters(StoppableThreads):
    """Clients that send each message with an idempotencyKey and, whatever goes wrong (the master
    down, 503, 504, a lost connection), retry it with the same key until it is acknowledged, then
    go on to their next message. Each retry must get the first id; none may append it twice."""

    def __init__(self, master, threads: int, ws: list):
        self.master = master
        self.ws = ws
        self.acked: dict[str, int] = {}
        self.retries = 0
        self.refused: list[tuple[str, bytes]] = []  # 422s: a key taken for another message
        self._lock = threading.Lock()
        self._spawn("keyed-writer", list(range(threads)))

    def _run(self, t: int) -> None:
        i = 0
        while not self._stop.is_set():
            msg = f"keyed-{t}-{i}"
            w = self.ws[(t + i) % len(self.ws)]
            tries = 0
            while not self._stop.is_set():
                tries += 1
                try:
                    r = self.master.insert(msg, w, timeout_ms=1500, key=msg, http_timeout=10)
                    status = r.status_code
                except Exception:  # the master is down: retry
                    status, r = "error", None
                if status == 200:
                    with self._lock:
                        self.acked[msg] = json_body(r)["id"]
                        self.retries += tries - 1
                    break
                if status == 422:
                    with self._lock:
                        self.refused.append((msg, r.content))
                    return
                self._stop.wait(0.02)  # pacing while the master is away, not a wait for a state
            i += 1


def test_clients_retrying_with_keys_append_each_message_once_across_master_failures(
        make_cluster, tmp_path):
    """Writers retry every unanswered insert with its key while the master is killed, drained
    and rebuilt after losing its directory, round after round: every message ends in the log
    exactly once, under the id it was acknowledged with. Without keys taken over with the log,
    a retry that reaches the next master appends the message a second time."""
    c, master_dir = _cluster(make_cluster, tmp_path, "kill9-with-data")
    c.start()
    m = c.master
    # Writes a lost directory keeps: those a majority holds.
    writers = RetryingWriters(m, threads=4, ws=[2, "majority", 3]).start()
    try:
        for round_, mode in enumerate(["kill9", "lost-directory", "drain", "kill9",
                                       "lost-directory", "drain"]):
            before = len(writers.acked)
            wait_until(lambda: len(writers.acked) >= before + 20, 30, 0.02,
                       f"round {round_}: 20 more writes acknowledged")
            _change_master(c, master_dir, mode)
        before = len(writers.acked)
        wait_until(lambda: len(writers.acked) >= before + 20, 30, 0.02, "writes after the last round")
    finally:
        writers.stop(20)
    assert not writers.refused, writers.refused[:3]
    assert writers.retries > 0, "no insert was retried: the test did not test retries"
    print(f"acked {len(writers.acked)}, retried {writers.retries} times")
    ref = c.wait_converged()
    assert_acked_exactly_once(ref, writers.acked, "after six changes of master")
    # Messages sent but not acknowledged when the writers stopped may be in the log: once at most.
    for n in c.nodes:
        assert_acked_exactly_once(n.get_all(), writers.acked, n.name)
