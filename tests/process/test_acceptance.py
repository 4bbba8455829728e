"""The acceptance scenario of the original task, against real processes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from harness import LONG_HTTP_TIMEOUT, json_body, check_log, wait_until


def test_acceptance_scenario(make_cluster):
    c = make_cluster(n_sentinels=2)
    s1, s2 = c.sentinels
    m = c.master
    # Master + S1 running; S2 is configured but not started.
    c.start(sentinels=[0])
    assert not s2.running()

    assert m.insert_ok("Msg1", w=1) == 1
    assert m.insert_ok("Msg2", w=2) == 2

    # Msg3 with w=3 cannot complete while S2 is down: it must park.
    done_at: dict[str, float] = {}

    def send_msg3():
        r = m.insert("Msg3", w=3, http_timeout=LONG_HTTP_TIMEOUT)
        done_at["msg3"] = time.monotonic()
        return r

    with ThreadPoolExecutor(max_workers=1) as pool:
        fut3 = pool.submit(send_msg3)

        # The master stored Msg3 as id 3 and S1 holds it: w=2 would be satisfied, w=3 is not.
        wait_until(lambda: m.last_id() == 3, 10, 0.02, "master stored Msg3 as id 3")
        wait_until(lambda: c.sentinel_health(s1)["ackedId"] == 3, 10, 0.02, "S1 acked id 3")
        assert not fut3.done(), f"Msg3 (w=3) answered with only 2 nodes up: {fut3.result()}"

        # Msg4 w=1 is not blocked by the parked Msg3.
        r4 = m.insert("Msg4", w=1)
        msg4_at = time.monotonic()
        assert r4.status_code == 200, r4.content
        assert json_body(r4)["id"] == 4
        assert not fut3.done(), "Msg3 (w=3) answered while S2 is still down"

        s2_started_at = time.monotonic()
        s2.start()

        r3 = fut3.result(timeout=LONG_HTTP_TIMEOUT + 5)
    assert r3.status_code == 200, r3.content
    assert json_body(r3)["id"] == 3
    assert msg4_at < done_at["msg3"], "Msg4 (w=1) was answered after Msg3 (w=3)"
    assert done_at["msg3"] > s2_started_at, "Msg3 (w=3) was answered before S2 was started"

    expected = [(1, "Msg1"), (2, "Msg2"), (3, "Msg3"), (4, "Msg4")]
    wait_until(lambda: [(e["id"], e["message"]) for e in s2.get_all()] == expected, 20, 0.05,
               "S2 /get-all == [Msg1..Msg4]")
    ref = c.wait_converged(expected_len=4)
    assert [(e["id"], e["message"]) for e in ref] == expected
    for n in c.nodes:
        got = n.get_all()
        check_log(got, n.name)
        assert got == ref, f"{n.name} /get-all differs from master: {got} vs {ref}"
