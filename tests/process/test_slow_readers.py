"""Clients that stop reading their answer must not stall anybody else.

Pistache 0.0.5 retries a write that met a full socket buffer in a loop (pistacheio/pistache#949):
a client that does not read an answer larger than its socket's send buffer would pin the HTTP
thread writing it. rlog writes such answers itself (src/http/answer_writer.h), so that with one
HTTP thread, one client not reading a 7 MB GET /get-all (more than the kernel buffers of a
loopback connection take before the client reads: up to 4 MiB to send, 128 KiB to receive)
leaves /healthz and inserts served, and still gets its whole answer when it reads.
"""

from __future__ import annotations

import json
import socket
import time

from harness import json_body

MESSAGE_BYTES = 900_000  # Under http.max_body_bytes (1 MiB) with the JSON around it.


def _read_answer(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """Reads one HTTP/1.1 answer with a Content-Length from `sock`, until `deadline`."""
    data = b""
    while b"\r\n\r\n" not in data:
        assert time.monotonic() < deadline, f"no full header: {data[:200]!r}"
        chunk = sock.recv(65536)
        assert chunk, f"connection closed in the header: {data[:200]!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        assert time.monotonic() < deadline, f"{len(body)} of {length} body bytes came"
        chunk = sock.recv(1 << 20)
        assert chunk, f"connection closed after {len(body)} of {length} body bytes"
        body += chunk
    return status, headers, body


def _master_and_a_slow_reader(make_cluster, master_args):
    """A master alone holding 8 messages of 900 KB, and a connection that asked for GET /get-all
    (7 MB) and reads none of it yet: (master, messages, socket)."""
    c = make_cluster(n_sentinels=0, master_args=master_args)
    c.start()
    m = c.master
    messages = [f"{i}:" + "x" * MESSAGE_BYTES for i in range(8)]
    for i, msg in enumerate(messages, 1):
        assert m.insert_ok(msg) == i
    slow = socket.create_connection(("127.0.0.1", m.http_port), timeout=10.0)
    slow.sendall(b"GET /get-all HTTP/1.1\r\nHost: rlog\r\n\r\n")
    return m, messages, slow


def test_a_client_not_reading_a_large_answer_stalls_nobody(make_cluster):
    m, messages, slow = _master_and_a_slow_reader(make_cluster, ["--http-threads", "1"])
    try:
        # Nothing to await from outside: the server fills the socket's buffers and (before the
        # fix) its only thread then loops on the rest. Half a second is ample for 7 MB on
        # loopback; with less, this test could pass against the old binary, not fail against
        # the new one.
        time.sleep(0.5)

        # The only HTTP thread serves others meanwhile.
        t0 = time.monotonic()
        for _ in range(5):
            r = m.get("/healthz", timeout=3.0)
            assert r.status_code == 200, r.status_code
        assert m.insert_ok("while the slow client reads nothing", timeout_ms=2000) == 9
        assert json_body(m.get("/messages", params={"from": 9}, timeout=3.0))["lastId"] == 9
        assert time.monotonic() - t0 < 10.0

        # The slow client still gets its whole answer, as it was when it asked.
        status, headers, body = _read_answer(slow, time.monotonic() + 30.0)
        assert status == 200, body[:300]
        assert headers["content-type"] == "application/json", headers
        got = json.loads(body)
        assert [e["message"] for e in got] == messages
        assert [e["id"] for e in got] == list(range(1, 9))

        # The connection stays usable for the next request.
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: rlog\r\n\r\n")
        status, _, _ = _read_answer(slow, time.monotonic() + 10.0)
        assert status == 200
    finally:
        slow.close()


def test_large_answers_held_for_slow_clients_are_bounded(make_cluster):
    # What the answer writer holds for clients that read slowly is bounded
    # (http.slow_answers_max_bytes): past it, one more large answer is refused with 503 while
    # small ones are served, and once the slow client has read, large answers go out again.
    m, messages, slow = _master_and_a_slow_reader(
        make_cluster, ["--set", "http.slow_answers_max_bytes=1048576"])
    try:
        # Once the writer holds the part the socket did not take (megabytes), /get-all is refused.
        deadline = time.monotonic() + 10.0
        while True:
            r = m.get("/get-all", timeout=5.0)
            if r.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 503, r.status_code
        assert r.headers.get("Retry-After") == "1"
        assert "http.slow_answers_max_bytes" in json_body(r)["error"]
        assert m.get("/healthz", timeout=3.0).status_code == 200
        status, _, body = _read_answer(slow, time.monotonic() + 30.0)
        assert status == 200 and len(json.loads(body)) == 8
    finally:
        slow.close()
    deadline = time.monotonic() + 10.0
    while True:  # The writer lets go of it once the last bytes are taken (bounded).
        r = m.get("/get-all", timeout=5.0)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 200, r.status_code
    assert [e["message"] for e in r.json()] == messages
