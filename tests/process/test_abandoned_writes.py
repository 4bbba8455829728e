"""Parked writes whose clients went away (DESIGN.md: a peer that vanishes mid-stream).

Hundreds of w=3 writes wait for a frozen sentinel; their clients reset their connections, and new
clients connect at once, so the server's file descriptors are reused. When the sentinel comes
back, the master answers every parked write from its replication thread. No answer may reach a
connection other than its own (each new connection gets exactly the one answer it asked for and
nothing after), the master keeps serving, and every abandoned write is still stored and
replicated: it was appended before its client left.
"""

from __future__ import annotations

import json
import select
import socket
import struct

import pytest

from harness import Cluster, wait_until

HEALTHZ = (b"GET /healthz HTTP/1.1\r\nHost: rlog\r\nConnection: keep-alive\r\n"
           b"Content-Length: 0\r\n\r\n")


def insert_request(message: str) -> bytes:
    body = json.dumps({"message": message, "writeConcern": 3, "timeoutMs": 60000}).encode()
    return (b"POST /insert HTTP/1.1\r\nHost: rlog\r\nConnection: keep-alive\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\n\r\n" + body)


def read_response(so: socket.socket) -> tuple[bytes, bytes]:
    """(status line + headers, body) of one response; anything read past it is an error."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = so.recv(4096)
        assert chunk, f"connection closed before a response: {data[:200]!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = so.recv(4096)
        assert chunk, "connection closed inside a response body"
        rest += chunk
    assert rest[length:] == b"", f"bytes after the response: {rest[length:][:200]!r}"
    return head, rest[:length]


def reset(so: socket.socket) -> None:
    """Close with a RST, as a client that crashed or timed out."""
    so.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    so.close()


@pytest.mark.parametrize("resume_first", [False, True], ids=["gone-then-resumed",
                                                            "gone-while-answered"])
def test_answers_to_clients_that_went_away_reach_no_other_connection(make_cluster, resume_first):
    c: Cluster = make_cluster(n_sentinels=2)
    c.start()
    m, (_, s2) = c.master, c.sentinels
    n = 300
    s2.stop()
    wait_until(lambda: c.sentinel_health(s2)["status"] != "Healthy", 20, 0.05,
               "the frozen sentinel is no longer Healthy")
    abandoned = []
    for i in range(n):
        so = socket.create_connection(("127.0.0.1", m.http_port), timeout=10)
        so.sendall(insert_request(f"abandoned-{i}"))
        abandoned.append(so)
    wait_until(lambda: m.health()["parkedWrites"] >= n, 20, 0.05, f"{n} parked writes")

    if resume_first:  # The answers go out while the clients reset and new ones connect.
        s2.cont()
    for so in abandoned:
        reset(so)
    fresh = []
    try:
        for _ in range(n):
            so = socket.create_connection(("127.0.0.1", m.http_port), timeout=10)
            so.sendall(HEALTHZ)
            fresh.append(so)
        for so in fresh:
            head, body = read_response(so)
            assert head.startswith(b"HTTP/1.1 200") and body == b'{"status":"ok"}', (head, body)
        if not resume_first:
            s2.cont()
        wait_until(lambda: m.health()["parkedWrites"] == 0, 30, 0.05, "every parked write answered")
        # The master sends the answers right after parkedWrites falls to 0 (once it has unlocked),
        # so a stray one would arrive within the half second given here: no connection may have
        # anything to read. Then each still works as its own, and reading its next answer would
        # also meet a stray that came later (read_response refuses bytes it did not ask for).
        readable, _, _ = select.select(fresh, [], [], 0.5)
        strays = [so.recv(4096)[:200] for so in readable]
        assert not strays, f"answers reached connections that did not ask: {strays[:3]!r}"
        for so in fresh:
            so.sendall(HEALTHZ)
            head, body = read_response(so)
            assert head.startswith(b"HTTP/1.1 200") and body == b'{"status":"ok"}', (head, body)
    finally:
        for so in fresh:
            so.close()

    assert m.running(), "the master died answering clients that were gone"
    log = c.wait_converged(expected_len=n)
    assert sorted(e["message"] for e in log) == sorted(f"abandoned-{i}" for i in range(n))
    assert m.insert_ok("after", w=3) == n + 1
