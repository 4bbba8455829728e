"""Bad and impossible requests: a JSON error with the right status, never a crash or an append.

One cluster serves the whole module; the last test checks that nothing any rejected request sent
was appended, on any node, and that the servers still serve.
"""

from __future__ import annotations

import json

import pytest

from harness import Cluster, assert_error, json_body

MAX_BODY = 4096


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("bad_input"), n_sentinels=2,
                master_args=["--max-body-bytes", str(MAX_BODY)])
    try:
        c.start()
        assert c.master.insert_ok("good-1", w=3) == 1
        yield c
    finally:
        c.shutdown()


@pytest.fixture(autouse=True)
def _attach_logs(request, cluster):
    request.node._rlog_clusters = [cluster]


def _j(obj) -> bytes:
    return json.dumps(obj).encode()


BAD_INSERT_BODIES = {
    "truncated_json": b'{"message": ',
    "not_json": b"not json at all",
    "empty_body": b"",
    "json_array": b"[]",
    "json_string": b'"just a string"',
    "json_null": b"null",
    "json_number": b"42",
    "missing_message": b"{}",
    "only_write_concern": _j({"writeConcern": 1}),
    "message_number": _j({"message": 5}),
    "message_null": _j({"message": None}),
    "message_bool": _j({"message": True}),
    "message_array": _j({"message": ["a"]}),
    "message_object": _j({"message": {"a": 1}}),
    "wc_string_x": _j({"message": "bad", "writeConcern": "x"}),
    "wc_string_digit": _j({"message": "bad", "writeConcern": "2"}),
    "wc_zero": _j({"message": "bad", "writeConcern": 0}),
    "wc_negative": _j({"message": "bad", "writeConcern": -1}),
    "wc_float": _j({"message": "bad", "writeConcern": 1.5}),
    "wc_1e20": b'{"message": "bad", "writeConcern": 1e20}',
    "wc_huge_int": b'{"message": "bad", "writeConcern": 100000000000000000000000000000}',
    "wc_2_pow_64": b'{"message": "bad", "writeConcern": 18446744073709551616}',
    "wc_2_pow_32_plus_1": b'{"message": "bad", "writeConcern": 4294967297}',
    "wc_int64_min": b'{"message": "bad", "writeConcern": -9223372036854775808}',
    "wc_bool": _j({"message": "bad", "writeConcern": True}),
    "wc_array": _j({"message": "bad", "writeConcern": [1]}),
    "wc_too_big": _j({"message": "bad", "writeConcern": 4}),
    "w_alias_zero": _j({"message": "bad", "w": 0}),
    "w_alias_string": _j({"message": "bad", "w": "x"}),
    "w_alias_too_big": _j({"message": "bad", "w": 4}),
    "timeout_string": _j({"message": "bad", "timeoutMs": "abc"}),
    "timeout_float": _j({"message": "bad", "timeoutMs": 1.5}),
    "timeout_array": _j({"message": "bad", "timeoutMs": [100]}),
    "idem_key_number": _j({"message": "bad", "idempotencyKey": 5}),
    "idem_key_object": _j({"message": "bad", "idempotencyKey": {"k": 1}}),
    "non_utf8_in_string": b'{"message": "bad-\xff\xfe\xfd"}',
    "non_utf8_raw": b"\xff\xfe\x00\x01",
    "trailing_garbage": b'{"message": "bad"} trailing',
}


@pytest.mark.parametrize("name", sorted(BAD_INSERT_BODIES))
def test_bad_insert_body_is_400_json(cluster, name):
    r = cluster.master.post("/insert", data=BAD_INSERT_BODIES[name], timeout=5.0)
    assert_error(r, 400)


@pytest.mark.parametrize("size", [MAX_BODY + 1, 10 * MAX_BODY, 64 * 1024])
def test_oversized_body_is_413_json(cluster, size):
    prefix, suffix = b'{"message": "bad-', b'", "writeConcern": 1}'
    data = prefix + b"a" * (size - len(prefix) - len(suffix)) + suffix
    assert len(data) == size
    r = cluster.master.post("/insert", data=data, timeout=5.0)
    assert_error(r, 413)


def test_body_at_the_limit_is_accepted(cluster):
    # Checked after the oversized ones so the limit is not off by one the other way; appended as id 2.
    prefix, suffix = b'{"message": "at-limit-', b'", "writeConcern": 1}'
    data = prefix + b"a" * (MAX_BODY - len(prefix) - len(suffix)) + suffix
    assert len(data) == MAX_BODY
    r = cluster.master.post("/insert", data=data, timeout=5.0)
    assert r.status_code == 200, r.content[:300]
    assert json_body(r)["id"] == 2


@pytest.mark.parametrize("method,path", [
    ("GET", "/nope"), ("POST", "/nope"), ("GET", "/insert/extra"), ("GET", "/get-all/1"),
])
def test_unknown_path_is_404_json(cluster, method, path):
    for node in cluster.nodes:
        assert_error(node.request(method, path, timeout=5.0), 404)


@pytest.mark.parametrize("method,path", [
    ("GET", "/insert"), ("PUT", "/insert"), ("DELETE", "/insert"), ("POST", "/get-all"),
    ("DELETE", "/get-all"), ("POST", "/health"), ("POST", "/messages"), ("PUT", "/get-all"),
])
def test_wrong_method_is_405_json(cluster, method, path):
    r = cluster.master.request(method, path, timeout=5.0, data=b'{"message": "bad-method"}',
                               headers={"Content-Type": "application/json"})
    assert_error(r, 405)


@pytest.mark.parametrize("query", [
    "from=abc", "from=-1", "from=1.5", "from=99999999999999999999999", "limit=abc&from=1",
    "from=1&limit=-5", "from=1&limit=1.5", "from=1&waitMs=abc", "from=1&waitMs=-1",
])
def test_messages_bad_params_is_400_json(cluster, query):
    for node in cluster.nodes:
        assert_error(node.get("/messages?" + query, timeout=5.0), 400)


@pytest.mark.parametrize("query", ["from=%zz", "from=%3", "from=%2D1", "limit=%31%2E5&from=1"])
def test_messages_bad_escaped_params_is_400_json(cluster, query):
    for node in cluster.nodes:
        assert_error(node.get("/messages?" + query, timeout=5.0), 400)


def test_messages_params_are_percent_decoded(cluster):
    # Clients that escape every character (some do) send from=%31 for from=1. Sent raw: requests
    # would unescape digits itself.
    for node in cluster.nodes:
        [(status, _, body)] = _raw(node, b"GET /messages?from=%31&limit=%31 HTTP/1.1\r\n"
                                   b"Host: x\r\n\r\n", 1)
        assert status.split()[1] == b"200", (status, body)
        assert [e["id"] for e in json.loads(body)["messages"]] == [1]


def _raw(node, request: bytes, answers: int) -> list[tuple[bytes, dict, bytes]]:
    """Sends raw bytes on one connection and reads `answers` answers by their Content-Length
    (none after a HEAD): (status line, headers, body) each."""
    import socket
    out = []
    with socket.create_connection(("127.0.0.1", node.http_port), timeout=5.0) as sock:
        buf = b""
        for req in request.split(b"\0"):
            sock.sendall(req)
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed; got {buf!r}"
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            status, *lines = head.split(b"\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in
                       (line.decode().split(":", 1) for line in lines)}
            n = 0 if req.startswith(b"HEAD ") else int(headers.get("content-length", "0"))
            while len(buf) < n:
                buf += sock.recv(65536)
            out.append((status, headers, buf[:n]))
            buf = buf[n:]
        assert len(out) == answers
    return out


def test_head_is_get_without_a_body_and_keeps_the_connection_in_step(cluster):
    m = cluster.master
    answers = _raw(m, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n\0"
                      b"HEAD /insert HTTP/1.1\r\nHost: x\r\n\r\n\0"
                      b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n\0"
                      b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 4)
    assert [a[0].split()[1] for a in answers] == [b"200", b"405", b"404", b"200"], answers
    assert answers[1][1].get("allow") == "POST", answers[1]
    # Had a HEAD answer carried a body, the GET's answer would start inside it.
    assert answers[3][2] == b'{"status":"ok"}', answers[3]
    # Its Content-Length is the GET's (RFC 9110, 9.3.2), not the 0 of its empty body.
    assert answers[0][1].get("content-length") == str(len(answers[3][2])), answers[0]
    get_nope = m.get("/nope", timeout=5.0)
    assert answers[2][1].get("content-length") == str(len(get_nope.content)), answers[2]
    assert answers[2][1].get("content-type") == "application/json", answers[2]
    r = m.request("GET", "/insert", timeout=5.0)
    assert_error(r, 405)
    assert r.headers.get("Allow") == "POST"
    assert m.request("POST", "/healthz", timeout=5.0).headers.get("Allow") == "GET, HEAD"


def test_404_quotes_at_most_200_bytes_of_the_path_and_survives_bad_utf8(cluster):
    m = cluster.master
    long_path = "/" + "p" * 20000  # Under Pistache's request size limit (it answers 413 itself).
    r = m.get(long_path, timeout=5.0)
    body = assert_error(r, 404)
    assert len(r.content) < 400 and body["error"].endswith("..."), len(r.content)
    # 199 'x' then a two-byte character cut in half at byte 200: still a JSON 404, not a 500.
    [(status, _, raw_body)] = _raw(m, b"GET /" + b"x" * 198 + "é".encode() + b"y HTTP/1.1\r\n"
                                   b"Host: x\r\n\r\n", 1)
    assert status.split()[1] == b"404", (status, raw_body)
    assert "error" in json.loads(raw_body)


def test_insert_on_sentinel_is_403_naming_master(cluster):
    m = cluster.master
    for s in cluster.sentinels:
        r = s.post("/insert", {"message": "bad-on-sentinel", "writeConcern": 1}, timeout=5.0)
        body = assert_error(r, 403)
        master = body.get("master")
        assert isinstance(master, str) and master.endswith(f":{m.http_port}"), (
            f"403 from {s.name} does not say where the master is: {body!r}")
        h = s.health()
        assert h.get("master") == master, (h, body)


def test_rejected_requests_appended_nothing_and_servers_still_serve(cluster):
    m = cluster.master
    expected = [1, 2]
    for n in cluster.nodes:
        assert n.get("/healthz", timeout=5.0).status_code == 200
        assert n.get("/readyz", timeout=5.0).status_code == 200
    log = m.get_all()
    assert [e["id"] for e in log] == expected, f"rejected requests were appended: {log}"
    assert log[0]["message"] == "good-1" and log[1]["message"].startswith("at-limit-")
    assert not any("bad" in e["message"] for e in log)
    assert m.insert_ok("good-3", w=3) == 3
    ref = cluster.wait_converged(expected_len=3)
    assert [e["message"] for e in ref][::2] == ["good-1", "good-3"]
    for n in cluster.nodes:
        assert n.get_all() == ref
