"""Discovery through a real DNS server: dnsmasq on a loopback port serves the sentinels' SRV and
A records; the master follows them (srv:///) while the cluster runs: scale 2 -> 3, move one
sentinel to a new address, remove one."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness
from harness import Node, free_port, wait_until

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
SERVICE = "_grpc._tcp.rlog.test"

pytestmark = pytest.mark.skipif(not pathlib.Path(DNSMASQ).exists(), reason="dnsmasq not installed")


class Dns:
    """dnsmasq on 127.0.0.1:<port> answering only from records we give it."""

    def __init__(self, workdir: pathlib.Path):
        self.port = free_port()
        self.conf = workdir / "dnsmasq.conf"
        self.log = workdir / "dnsmasq.log"
        self.proc: subprocess.Popen | None = None

    def serve(self, records: dict[str, tuple[str, int]]) -> None:
        """records: SRV target host -> (A address, port). Restarts dnsmasq with exactly these."""
        lines = ["no-resolv", "no-hosts", "bind-interfaces", "listen-address=127.0.0.1",
                 f"port={self.port}", "local=/rlog.test/", "local-ttl=0"]
        for host, (addr, port) in sorted(records.items()):
            lines.append(f"host-record={host},{addr}")
            lines.append(f"srv-host={SERVICE},{host},{port},0,10")
        self.conf.write_text("\n".join(lines) + "\n")
        self.stop()
        self.proc = harness.spawn([DNSMASQ, "--keep-in-foreground", "--log-facility=-",
                                   f"--conf-file={self.conf}"], self.log)
        wait_until(lambda: self._answers(), 10, 0.05, "dnsmasq answering")

    def _answers(self) -> bool:
        """dnsmasq logs "started" once its socket is bound and its records are loaded."""
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"dnsmasq exited: {self.log.read_text()[-2000:]}")
        return "started" in self.log.read_text()

    def stop(self) -> None:
        if self.proc is not None:
            harness.kill_proc(self.proc)
            self.proc = None


def sentinel(workdir: pathlib.Path, name: str, grpc_ip: str = "127.0.0.1",
             grpc_port: int | None = None, extra: tuple[str, ...] = ()) -> Node:
    node = Node(name, "sentinel", workdir, lambda: [], grpc_port=grpc_port)
    node._args_fn = lambda: ["--role", "sentinel", "--node-id", name,
                             "--http-address", "127.0.0.1", "--port", str(node.http_port),
                             "--grpc-address", grpc_ip, "--grpc-port", str(node.grpc_port),
                             *extra]
    return node


def srv_master(workdir: pathlib.Path, dns: "Dns", extra: tuple[str, ...] = ()) -> Node:
    """A master that finds its sentinels through the SRV records `dns` serves."""
    node = Node("master", "master", workdir, lambda: [])
    node._args_fn = lambda: [
        "--role", "master", "--node-id", "master",
        "--http-address", "127.0.0.1", "--port", str(node.http_port),
        "--sentinels", f"srv:///{SERVICE}", "--dns-server", f"127.0.0.1:{dns.port}",
        "--set", "discovery.refresh_ms=200",
        "--heartbeat-ms", "50", "--suspect-after-ms", "300", "--unhealthy-after-ms", "800", *extra]
    return node


def sentinels_of(master: Node) -> dict[str, dict]:
    return {s["name"]: s for s in master.health()["sentinels"]}


@pytest.fixture
def dns(tmp_path):
    d = Dns(tmp_path)
    yield d
    d.stop()


def test_master_follows_srv_records(tmp_path, dns, request):
    s1, s2, s3 = (sentinel(tmp_path, f"s{i}") for i in (1, 2, 3))
    nodes = [s1, s2, s3]
    request.addfinalizer(lambda: [n.shutdown() for n in nodes])
    ident = {n.name: f"{n.name}.rlog.test:{n.grpc_port}" for n in nodes}

    dns.serve({"s1.rlog.test": ("127.0.0.1", s1.grpc_port), "s2.rlog.test": ("127.0.0.1", s2.grpc_port)})
    s1.start()
    s2.start()
    master = srv_master(tmp_path, dns, ("--set", "discovery.grace_ms=1500"))
    nodes.append(master)
    master.start()

    # Two sentinels found through SRV, named by their stable target names.
    wait_until(lambda: set(sentinels_of(master)) == {ident["s1"], ident["s2"]}, 15, 0.1,
               "master found s1 and s2 through SRV")
    wait_until(lambda: master.health()["readOnly"] is False, 15, 0.05, "writable")
    for i in range(5):
        master.insert_ok(f"before-{i}", w=3)
    assert master.post("/insert", {"message": "x", "writeConcern": 4}).status_code == 400

    # Scale 2 -> 3: the new sentinel is added, catches up and counts toward writeConcern.
    s3.start()
    dns.serve({"s1.rlog.test": ("127.0.0.1", s1.grpc_port), "s2.rlog.test": ("127.0.0.1", s2.grpc_port),
               "s3.rlog.test": ("127.0.0.1", s3.grpc_port)})
    wait_until(lambda: master.health()["quorum"]["clusterSize"] == 4, 15, 0.1, "s3 joined")
    assert master.insert_ok("with-s3", w=4) == 6
    wait_until(lambda: s3.get_all() == master.get_all(), 15, 0.05, "s3 caught up")

    # Move s2 to a new address (same name and port, another loopback IP): replication follows.
    s2.shutdown()
    s2b = sentinel(tmp_path, "s2b", grpc_ip="127.0.0.2", grpc_port=s2.grpc_port)
    nodes.append(s2b)
    s2b.start()
    dns.serve({"s1.rlog.test": ("127.0.0.1", s1.grpc_port), "s2.rlog.test": ("127.0.0.2", s2.grpc_port),
               "s3.rlog.test": ("127.0.0.1", s3.grpc_port)})
    assert master.insert_ok("after-move", w=4, timeout_ms=20000) == 7
    assert s2b.get_all() == master.get_all()
    assert set(sentinels_of(master)) == {ident["s1"], ident["s2"], ident["s3"]}

    # Remove s3: after the grace period it leaves quorum and writeConcern limits.
    s3.shutdown()

    def s3_up(status):
        return [line for line in master.get("/metrics").text.splitlines()
                if line.startswith("rlog_sentinel_up{") and ident["s3"] in line
                and f'status="{status}"' in line]

    wait_until(lambda: any(line.endswith(" 1") for line in s3_up("Unhealthy")), 10, 0.05,
               "s3 exported as Unhealthy while a member")
    dns.serve({"s1.rlog.test": ("127.0.0.1", s1.grpc_port), "s2.rlog.test": ("127.0.0.2", s2.grpc_port)})
    wait_until(lambda: master.health()["quorum"]["clusterSize"] == 3, 20, 0.1, "s3 left")
    assert master.post("/insert", {"message": "x", "writeConcern": 4}).status_code == 400
    # Its status is no longer exported as it last was (an Unhealthy alert would never clear).
    gone = s3_up("Unhealthy") + s3_up("Suspected") + s3_up("Healthy")
    assert len(gone) == 3 and all(line.endswith(" 0") for line in gone), gone
    assert master.insert_ok("after-remove", w=3) == 8
    entries = master.get_all()
    harness.check_log(entries)
    assert [e["message"] for e in entries][-3:] == ["with-s3", "after-move", "after-remove"]


def test_recovering_master_waits_for_an_expected_sentinel_dns_does_not_list(tmp_path, dns, request):
    """A master that lost its directory must hear from enough of the sentinels the cluster has,
    not of those DNS lists at the moment: a sentinel whose pod is Pending has no record, and it
    may hold the only copy (besides the lost master's) of a majority-acknowledged write."""
    data = tmp_path / "data"
    s1, s2 = (sentinel(tmp_path, f"s{i}", extra=("--data-dir", str(data / f"s{i}"))) for i in (1, 2))
    nodes = [s1, s2]
    request.addfinalizer(lambda: [n.shutdown() for n in nodes])
    both = {"s1.rlog.test": ("127.0.0.1", s1.grpc_port), "s2.rlog.test": ("127.0.0.1", s2.grpc_port)}
    dns.serve(both)
    s1.start()
    s2.start()
    master = srv_master(tmp_path, dns, ("--data-dir", str(data / "master"), "--expected-sentinels", "2"))
    nodes.append(master)
    master.start()
    wait_until(lambda: master.health()["readOnly"] is False, 15, 0.05, "writable")
    master.insert_ok("on-all-three", w=3)
    wait_until(lambda: len(s1.get_all()) == 1, 10, 0.05, "s1 holds id 1")

    # s1 goes away; a write is acknowledged by the master and s2 (a majority of three).
    s1.kill9()
    assert master.insert_ok("master-and-s2-only", w=2, timeout_ms=10000) == 2
    # Then the master loses its disk, and s2's pod is Pending: no record for it in DNS.
    master.kill9()
    shutil.rmtree(data / "master")
    s2.kill9()
    dns.serve({"s1.rlog.test": both["s1.rlog.test"]})
    s1.start()
    master.start()

    # Only s1 (without id 2) can answer: recovering from it alone would lose id 2.
    def recovering():
        h = master.health(timeout=2.0)
        assert h["state"] == "recovering", h
        return h
    for _ in range(20):  # bounded: about 2 s of probes
        h = recovering()
        r = master.insert("too-early", w=1, timeout_ms=500)
        assert r.status_code == 503 and "recovering" in r.json()["error"], r.text
    assert "expected_sentinels 2, 1 known" in h["recovery"], h
    assert master.get_all() == []

    # s2 is scheduled: its record appears, the master hears from both and keeps id 2.
    s2.start()
    dns.serve(both)
    wait_until(lambda: master.health()["readOnly"] is False, 30, 0.05, "writable after recovery")
    # Shown once a majority holds them with the new epoch's mark (a round trip after the Hello).
    wait_until(lambda: master.health()["visibleId"] == 2, 10, 0.02, "the master shows 1..2")
    assert [e["message"] for e in master.get_all()] == ["on-all-three", "master-and-s2-only"]
    assert master.insert_ok("after-recovery", w=3, timeout_ms=20000) == 3
    wait_until(lambda: s1.get_all() == master.get_all() == s2.get_all(), 15, 0.05, "converged")


def test_a_majority_write_parked_across_a_scale_up_needs_the_new_majority(tmp_path, dns, request):
    """"majority" was resolved once, on arrival: a write parked in a cluster of 2 (s1 stopped)
    was answered 200 "majority" by master + s1 after the cluster grew to 4, whose majority is 3
    (the membership audit's F2). It waits for the third node, and says 3."""
    s1, s2, s3 = (sentinel(tmp_path, f"s{i}") for i in (1, 2, 3))
    nodes = [s1, s2, s3]
    request.addfinalizer(lambda: [n.shutdown() for n in nodes])
    dns.serve({"s1.rlog.test": ("127.0.0.1", s1.grpc_port)})
    s1.start()
    master = srv_master(tmp_path, dns, ("--suspect-after-ms", "30000",
                                        "--unhealthy-after-ms", "60000"))
    nodes.append(master)
    master.start()
    wait_until(lambda: master.health()["readOnly"] is False, 15, 0.05, "writable")
    assert master.insert_ok("first", w="majority") == 1
    s1.stop()
    with ThreadPoolExecutor(1) as pool:
        try:
            parked = pool.submit(master.post, "/insert",
                                 {"message": "parked", "writeConcern": "majority",
                                  "timeoutMs": 30000}, None, 40.0)
            wait_until(lambda: master.health()["parkedWrites"] == 1, 10, 0.02, "the write parked")
            dns.serve({f"s{i}.rlog.test": ("127.0.0.1", n.grpc_port)
                       for i, n in ((1, s1), (2, s2), (3, s3))})
            wait_until(lambda: master.health()["quorum"]["clusterSize"] == 4, 15, 0.1,
                       "s2 and s3 listed: a cluster of 4")
        finally:
            s1.cont()
        wait_until(lambda: master.health()["sentinels"] and
                   {s["name"]: s for s in master.health()["sentinels"]}
                   [f"s1.rlog.test:{s1.grpc_port}"]["ackedId"] == 2, 15, 0.02, "s1 holds id 2")
        assert master.health()["parkedWrites"] == 1, "answered with 2 of 4 nodes"
        s2.start()
        r = parked.result(timeout=40)
    assert r.status_code == 200 and r.json() == {"id": 2, "writeConcern": 3}, r.text
