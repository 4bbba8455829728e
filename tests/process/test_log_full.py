"""max_log_bytes: a master whose log has used up its memory refuses inserts with 507 (etcd's space
quota) instead of growing until the kernel kills it, and goes on serving reads."""

from __future__ import annotations

from harness import assert_error, json_body

MIB = 1024 * 1024


def metric(text: str, name: str) -> float:
    """The value of an unlabelled series in a Prometheus exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no series {name} in /metrics")


def test_a_full_log_refuses_inserts_with_507_and_keeps_serving_reads(make_cluster):
    limit = 3 * MIB  # Three payload chunks.
    c = make_cluster(n_sentinels=1, master_args=["--max-log-bytes", str(limit)])
    c.start()
    m, s1 = c.master, c.sentinels[0]
    filler = "x" * 50_000  # Shares chunks (under 64 KiB), about 20 to a chunk.
    early = m.insert(f"early:{filler}", w=2, key="k-early")
    assert early.status_code == 200 and json_body(early)["id"] == 1

    accepted, refused = [1], None
    for i in range(200):  # 10 MB in all: far past the limit.
        r = m.insert(f"{i}:{filler}", w=2)
        if r.status_code != 200:
            refused = r
            break
        accepted.append(json_body(r)["id"])
    assert refused is not None, "200 inserts of 50 KB under a 3 MiB limit were all accepted"
    body = assert_error(refused, 507)
    assert "log full" in body["error"] and "max_log_bytes" in body["error"], body
    assert body["maxLogBytes"] == limit, body
    assert body["logBytes"] + len(filler) > limit, body
    assert accepted == list(range(1, len(accepted) + 1)), accepted
    assert len(accepted) >= 30, f"refused after {len(accepted)} inserts: the limit came too soon"

    # Refused for every write concern, nothing of it stored, also with a new idempotency key; a
    # retry of a write that was stored still gets its id (it appends nothing).
    assert_error(m.insert("one more", w=1), 507)
    assert_error(m.insert("one more", w=1, key="k-full"), 507)
    retry = m.insert(f"early:{filler}", w=2, key="k-early")
    assert retry.status_code == 200 and json_body(retry)["id"] == 1, retry.content[:200]
    entries = m.get_all()
    assert [e["id"] for e in entries] == accepted
    assert all(e["message"].endswith(filler) for e in entries)

    # Reads go on, on the master and the sentinel, which holds every accepted entry.
    c.wait_converged(expected_len=len(accepted))
    assert m.get("/readyz").status_code == 200
    health = m.health()
    assert health["maxLogBytes"] == limit and limit - MIB <= health["logBytes"] <= limit + MIB, health
    assert s1.health()["logBytes"] >= len(accepted) * len(filler)

    text = m.get("/metrics").text
    assert metric(text, "rlog_log_max_bytes") == limit
    assert metric(text, "rlog_log_memory_bytes") == health["logBytes"]
    refusals = [line for line in text.splitlines()
                if line.startswith('rlog_inserts_total{outcome="log_full"')]
    assert sum(float(line.split()[-1]) for line in refusals) == 3, refusals


def test_without_a_limit_the_log_grows_past_it(make_cluster):
    # The control: the same inserts pass 3 MiB when max_log_bytes is 0 (the default).
    c = make_cluster(n_sentinels=0)
    c.start()
    m = c.master
    filler = "y" * 50_000
    for i in range(80):
        assert m.insert_ok(f"{i}:{filler}", w=1) == i + 1
    health = m.health()
    assert health["maxLogBytes"] == 0 and health["logBytes"] > 3 * MIB, health
