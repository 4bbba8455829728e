"""Seeded chaos: every kind of fault the configuration claims to survive, one at a time, under
writes that never stop, on a cluster whose every node has a data directory (`fsync: always`).

Faults (DESIGN.md invariant 6): kill -9 of the master, of a sentinel, a master that lost its data
directory, a sentinel that lost its data directory, a frozen sentinel (SIGSTOP, then SIGCONT), a
sentinel that loses power, and a master that loses power while a frozen sentinel keeps w=3 writes
waiting. Power loss is kill -9 at a moment the node has unsynced bytes, and then every file of
the node cut to what its syncs covered (harness.lose_power, from the journal every node keeps
with --test-sync-journal), so the other
sentinel may hold a tail the restarted master lacks (the master copies it; or, when that sentinel
is down during the restart, the master takes over without it and the sentinel cuts the tail at
its Hello). The master loses its directory while one sentinel lags (frozen until the master is
down; half of the master's other crashes too), so the last acknowledged writes are on the master
and one sentinel only. After each fault the test waits until the cluster is writable and both sentinels hold everything the
master had when they came back; only then does the next fault come, so no two failures overlap.

Writers send w=majority, w=1 and w=3 inserts with unique messages for the whole run; writes that
meet a fault fail or time out (their outcome is unknown). At the end every node must hold the same
dense log, and every acknowledged write of w >= 2 exactly once under the id it was acknowledged
with; and whatever a reader tailing a sentinel was shown during the run is in that log, under the
same id (sentinels show only committed entries). A w=1 write is on the master alone when it is acknowledged, so it survives the master's
crash (its fsync came first) but not the loss of its directory: every w=1 write sent after the
master last came back without its directory must be there too, and none may be there twice.

RLOG_CHAOS_SEED picks another schedule (every kind once, in an order the seed shuffles, then
random ones); RLOG_CHAOS_ROUNDS makes it longer. The seed is in every failure message.
RLOG_CHAOS_TLS_DIR (a directory with ca.pem, node.pem and node.key, one certificate for every
node, for 127.0.0.1) runs the same schedule with mutual TLS on replication.
"""

from __future__ import annotations

import os
import random
import shutil
import time

import pytest

from harness import (Disks, Node, StoppableThreads, Writers, assert_acked_exactly_once,
                     describe_loss, lose_power, wait_until)

FAULTS = ("kill9_master", "kill9_sentinel", "wipe_master", "wipe_sentinel", "freeze_sentinel",
          "power_loss_master", "power_loss_sentinel")


class Readers(StoppableThreads):
    """One tailing reader per node (GET /messages long polls) for the whole run, recording every
    (id, message) it was shown. A sentinel shows only committed entries (the commit id), and a
    committed entry is in every later master's log: so everything a sentinel's reader saw must be
    in the final log (a master's reader may see a w=1 write its directory's loss takes back)."""

    def __init__(self, nodes: list[Node]):
        self.seen: dict[str, dict[int, str]] = {n.name: {} for n in nodes}
        self.conflicts: list[tuple[str, int, str, str]] = []  # node, id, first shown, then
        self._spawn("chaos-reader", nodes)

    def _run(self, node: Node) -> None:
        seen = self.seen[node.name]
        nxt = 1
        while not self._stop.is_set():
            try:
                r = node.get(f"/messages?from={nxt}&limit=1000&waitMs=200", timeout=5)
                page = r.json() if r.status_code == 200 else None
            except Exception:  # the node is down or restarting
                page = None
            if page is None:
                self._stop.wait(0.05)  # pacing while the node is down, not a wait for a state
                continue
            for e in page["messages"]:
                if seen.setdefault(e["id"], e["message"]) != e["message"]:
                    self.conflicts.append((node.name, e["id"], seen[e["id"]], e["message"]))
            nxt = page["next"]


def schedule(seed: int, rounds: int) -> list[str]:
    """Every kind once (in an order the seed shuffles), then random kinds up to `rounds`."""
    rng = random.Random(seed)
    kinds = list(FAULTS)
    rng.shuffle(kinds)
    return kinds + [rng.choice(FAULTS) for _ in range(max(0, rounds - len(kinds)))]


@pytest.mark.slow
def test_seeded_faults_under_writes_lose_no_acknowledged_write(make_cluster, tmp_path):
    seed = int(os.environ.get("RLOG_CHAOS_SEED", "20261206"))
    rounds = int(os.environ.get("RLOG_CHAOS_ROUNDS", str(len(FAULTS) + 3)))
    rng = random.Random(seed + 1)
    disks = Disks(tmp_path)
    tls = []
    if os.environ.get("RLOG_CHAOS_TLS_DIR"):
        pki = os.environ["RLOG_CHAOS_TLS_DIR"]
        tls = ["--tls-ca-file", f"{pki}/ca.pem", "--tls-cert-file", f"{pki}/node.pem",
               "--tls-key-file", f"{pki}/node.key"]
    c = make_cluster(n_sentinels=2, master_args=disks.args("master", *tls),
                     sentinel_args=lambda i: disks.args(f"s{i + 1}", *tls))
    c.start()
    m = c.master
    where = f"seed {seed}"
    log_id = m.health()["logId"]
    writers = Writers(m, threads=4, ws=["majority", 1, 3], prefix="chaos").start()
    readers = Readers(c.sentinels).start()
    done: list[str] = []
    # time.monotonic() once the master that last lost its directory was up again: a request sent
    # after it went to that master, one sent before to the one that lost the directory.
    last_wipe = 0.0
    try:
        for fault in schedule(seed, rounds):
            # Progress before each fault: the cluster takes writes again.
            floor = writers.acked_count() + 20
            wait_until(lambda: writers.acked_count() >= floor, 30, 0.02,
                       f"{where}: 20 more acknowledged writes before {fault} (after {done})")
            s = rng.choice(c.sentinels)
            if fault in ("kill9_master", "wipe_master"):
                # With one sentinel frozen first (always when the directory is lost, else half
                # the time), so that the writes acknowledged just before the crash are on the
                # master and the other sentinel only: a master that lost its directory must take
                # its log from the other one, never from the one that lags.
                lagging = fault == "wipe_master" or rng.random() < 0.5
                if lagging:
                    s.stop()
                    floor = writers.acked_count() + 10
                    wait_until(lambda: writers.acked_count() >= floor, 30, 0.02,
                               f"{where}: writes acknowledged while {s.name} is frozen")
                m.kill9()
                if fault == "wipe_master":
                    shutil.rmtree(disks.data("master"))
                if lagging:
                    s.cont()
                m.start()
                if fault == "wipe_master":
                    last_wipe = time.monotonic()
                if lagging:
                    fault += f"(lagging {s.name})"
            elif fault == "power_loss_master":
                s.stop()
                floor = writers.acked_count() + 10
                wait_until(lambda: writers.acked_count() >= floor, 30, 0.02,
                           f"{where}: writes acknowledged while {s.name} is frozen")
                lost = lose_power([m], disks, rng)["master"]
                # Half the time the other sentinel, which may hold a tail the master lost, is down
                # while the master restarts: the master takes over from its own log and the
                # lagging sentinel, and that sentinel must cut the tail at its Hello when it comes
                # back.
                other = next(x for x in c.sentinels if x is not s)
                away = rng.random() < 0.5
                if away:
                    other.kill9()
                s.cont()
                m.start()
                if away:
                    c.wait_writable(60)
                    other.start()
                fault += f"(lagging {s.name}, lost {describe_loss(lost)}" + (
                    f", {other.name} away)" if away else ")")
            elif fault in ("kill9_sentinel", "wipe_sentinel", "power_loss_sentinel"):
                if fault == "power_loss_sentinel":
                    lost = lose_power([s], disks, rng)[s.name]
                    fault += f"(lost {describe_loss(lost)})"
                else:
                    s.kill9()
                if fault == "wipe_sentinel":
                    shutil.rmtree(disks.data(s.name))
                # Majority writes go on without it (master + the other sentinel).
                floor = writers.acked_count() + 10
                wait_until(lambda: writers.acked_count() >= floor, 30, 0.02,
                           f"{where}: writes acknowledged while {s.name} is down")
                s.start()
            else:  # freeze_sentinel
                s.stop()
                wait_until(lambda: c.sentinel_health(s)["status"] != "Healthy", 20, 0.05,
                           f"{where}: {s.name} no longer Healthy while frozen")
                s.cont()
            done.append(fault if "master" in fault else f"{fault}({s.name})")
            # Recovered before the next fault: writable, and each sentinel holds what the master
            # had by then (so no acknowledged write depends on one node only).
            h = c.wait_writable(60)
            assert h["logId"] == log_id, f"{where}: the log id changed after {done}: {h}"
            target = m.last_id()
            for sentinel in c.sentinels:
                wait_until(lambda: sentinel.last_id() >= target, 60, 0.05,
                           f"{where}: {sentinel.name} caught up to {target} after {done}")
    finally:
        writers.stop(30)
        readers.stop(30)

    # Must survive: every write of w >= 2, and every w=1 write sent to a master that has not lost
    # its directory since (one acknowledged before may be gone; if it is there, it is there once).
    must = {msg: i for msg, i in writers.acked.items()
            if writers.concern[msg] != 1 or writers.sent_at[msg] > last_wipe}
    assert len(must) >= 20 * len(done), f"{where}: only {len(must)} acknowledged writes"
    assert any(writers.concern[msg] == 1 for msg in must), f"{where}: no w=1 write checked"
    # No write after the last fault: the last master commits the entries of earlier epochs it
    # took over with its epoch mark on a majority (docs/ARCHITECTURE.md, "The commit id"), so
    # every sentinel comes to show the whole log without one.
    ref = c.wait_converged(timeout=60)
    for n in c.nodes:
        assert_acked_exactly_once(n.get_all(), must, f"{n.name}, {where}, after {done}")
    # What every sentinel's reader was shown is in the final log, under the same id.
    conflicts = readers.conflicts
    assert not conflicts, f"{where}: (node, id, shown, then shown) {conflicts[:5]}"
    final = {e["id"]: e["message"] for e in ref}
    for name, seen in readers.seen.items():
        assert seen, f"{where}: the reader of {name} saw nothing"
        gone = [(i, msg, final.get(i)) for i, msg in seen.items()
                if final.get(i) != msg]
        assert not gone, f"{where}: {name} showed entries that are not in the final log: {gone[:5]}"
    sent = {e["message"] for e in ref}
    assert all(msg.startswith("chaos-") for msg in sent), f"{where}: a message nobody sent"
    # The faults were felt: some writes failed or timed out, and the epoch moved with each of the
    # master's restarts.
    assert set(writers.outcomes) - {200}, f"{where}: no write met a fault: {writers.outcomes}"
    restarts = sum(1 for f in done if "master" in f)
    assert m.health()["epoch"] >= 1 + restarts, f"{where}: {m.health()} after {done}"
