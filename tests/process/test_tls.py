"""Mutual TLS on the replication streams (tls.* keys, docs/OPERATIONS.md "TLS").

Certificates are made here with the openssl CLI: a CA for the cluster, another CA nobody trusts,
and node certificates with the names each case needs. Each refusal case runs a cluster where
sentinel s1 is set up right and s2 wrong in one way: the master stays writable with s1 (a
majority), w=3 writes time out, s2 gets nothing, and once s2 restarts set up right it catches up.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import ssl
import subprocess

import pytest

from harness import Node, Pki, check_log, wait_until

# scripts/install-deps.sh --with-tests installs openssl; without it these tests fail, not skip.


def _not_after(path: pathlib.Path) -> float:
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(path)], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return float(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.ca("ca")
    p.ca("other-ca")
    p.cert("master", "ca", "DNS:rlog-master")
    p.cert("sentinel", "ca", "DNS:rlog-sentinel,IP:127.0.0.1")
    p.cert("sentinel-by-name", "ca", "DNS:rlog-sentinel")
    p.cert("elsewhere", "ca", "DNS:elsewhere.example", days=2)  # Expires after the others.
    p.cert("rogue", "other-ca", "DNS:rlog-sentinel,IP:127.0.0.1")
    return p


def tls_flags(pki: Pki, cert: str, ca: str = "ca") -> list[str]:
    return pki.flags(cert, ca)


def _node_expiry(node) -> float:
    line = 'rlog_tls_certificate_expiry_timestamp_seconds{certificate="node"}'
    found = re.search(re.escape(line) + r" (\S+)$", node.get("/metrics").text, re.M)
    assert found, f"{node.name}: no {line}"
    return float(found.group(1))


def test_replication_over_mutual_tls(make_cluster, pki):
    c = make_cluster(master_args=tls_flags(pki, "master"),
                     sentinel_args=tls_flags(pki, "sentinel")).start()
    for i in range(20):
        assert c.master.insert_ok(f"tls-{i}", w=3) == i + 1
    check_log(c.wait_converged(expected_len=20))
    assert "mutual TLS" in c.master.log_tail()
    # Each node exports when its certificate and its CA expire, as openssl reads them.
    for node, cert in ((c.master, "master"), (c.sentinels[0], "sentinel")):
        metrics = node.get("/metrics").text
        for label, path in (("node", pki.root / f"{cert}.pem"), ("ca", pki.root / "ca.pem")):
            line = f'rlog_tls_certificate_expiry_timestamp_seconds{{certificate="{label}"}}'
            found = re.search(re.escape(line) + r" (\S+)$", metrics, re.M)
            assert found, f"{node.name}: no {line}"
            assert float(found.group(1)) == _not_after(path), (node.name, label)


def test_server_name_checks_sentinels_by_a_name_instead_of_their_address(make_cluster, pki):
    c = make_cluster(master_args=tls_flags(pki, "master") + ["--tls-server-name", "rlog-sentinel"],
                     sentinel_args=tls_flags(pki, "sentinel-by-name")).start()
    assert c.master.insert_ok("by-name", w=3) == 1


# How s2 is set up wrong; s1 and the master are right.
WRONG = {
    # s2 trusts another CA, so it refuses the master's client certificate.
    "sentinel_trusts_another_ca": lambda pki: tls_flags(pki, "sentinel", ca="other-ca"),
    # s2's certificate is for another name: the master refuses s2.
    "sentinel_certificate_for_another_name": lambda pki: tls_flags(pki, "elsewhere"),
    # s2's certificate comes from a CA the master does not trust.
    "sentinel_certificate_from_another_ca": lambda pki: tls_flags(pki, "rogue"),
    # s2 speaks plaintext gRPC.
    "sentinel_without_tls": lambda pki: [],
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_a_sentinel_set_up_wrong_gets_nothing_until_it_is_fixed(make_cluster, pki, case):
    s2_args = {"flags": WRONG[case](pki)}
    c = make_cluster(master_args=tls_flags(pki, "master"),
                     sentinel_args=lambda i: tls_flags(pki, "sentinel") if i == 0
                     else s2_args["flags"]).start()
    s1, s2 = c.sentinels
    assert c.master.insert_ok("both-ways", w=2) == 1
    r = c.master.insert("needs-s2", w=3, timeout_ms=1500)
    assert r.status_code == 504, r.text
    assert c.sentinel_health(s2)["status"] != "Healthy"
    assert c.sentinel_health(s2)["ackedId"] == 0
    assert s2.get_all() == []
    assert [e["message"] for e in s1.get_all()] == ["both-ways", "needs-s2"]
    # The reason is on /health and, once per cause rather than per retry, in the master's log.
    assert c.sentinel_health(s2).get("lastError")
    marker = f"stream to sentinel {c.sentinel_name(s2)} ended: "
    causes = [line.split(marker, 1)[1] for line in c.master.log_tail(200000).splitlines()
              if marker in line]
    assert causes, "the master did not log why s2's stream ended"
    # Not a line per retry: the same cause twice in a row is logged once.
    assert all(a != b for a, b in zip(causes, causes[1:])), causes
    if case == "sentinel_trusts_another_ca":
        # The refusing side says so too, in rlog's own log format (gRPC's lines go through it).
        assert re.search(r"^\S+ error \[s2\] grpc: Handshake failed", s2.log_tail(200000), re.M)
    # Set up right, s2 catches up through the same stream.
    s2.terminate()
    s2.wait_exit(10)
    s2_args["flags"] = tls_flags(pki, "sentinel")
    s2.start()
    assert c.master.insert_ok("after-fix", w=3) == 3
    check_log(c.wait_converged(expected_len=3))


def test_a_master_that_lost_its_data_rebuilds_its_log_over_tls(make_cluster, pki, tmp_path):
    # The take-over path (Position, Fetch) runs over the same mutual TLS as the stream.
    master_dir = tmp_path / "master-data"
    c = make_cluster(master_args=tls_flags(pki, "master") + ["--data-dir", str(master_dir)],
                     sentinel_args=lambda i: tls_flags(pki, "sentinel")
                     + ["--data-dir", str(tmp_path / f"s{i}-data")]).start()
    for i in range(10):
        assert c.master.insert_ok(f"before-{i}", w=3) == i + 1
    before = c.master.health()
    c.master.kill9()
    shutil.rmtree(master_dir)
    c.master.start()
    h = c.wait_writable(30)
    assert h["logId"] == before["logId"] and h["lastId"] == 10, h
    assert c.master.insert_ok("after", w=3) == 11
    check_log(c.wait_converged(expected_len=11))


def test_a_renewed_certificate_is_used_without_a_restart(make_cluster, pki, tmp_path):
    # s2's files hold a certificate for another name at first, so the master refuses s2...
    files = tmp_path / "s2-tls"
    files.mkdir()
    shutil.copy(pki.root / "ca.pem", files / "ca.pem")
    shutil.copy(pki.root / "elsewhere.pem", files / "node.pem")
    shutil.copy(pki.root / "elsewhere.key", files / "node.key")
    s2_flags = ["--tls-ca-file", str(files / "ca.pem"), "--tls-cert-file", str(files / "node.pem"),
                "--tls-key-file", str(files / "node.key"), "--set", "tls.reload_interval_s=1"]
    c = make_cluster(master_args=tls_flags(pki, "master"),
                     sentinel_args=lambda i: tls_flags(pki, "sentinel") if i == 0 else s2_flags)
    c.start()
    s2 = c.sentinels[1]
    pid = s2.pid
    assert c.master.insert("before", w=3, timeout_ms=1500).status_code == 504
    assert _node_expiry(s2) == _not_after(pki.root / "elsewhere.pem")
    # ...until they are replaced in place, as a renewal does (new files renamed over the old).
    for name, source in (("node.key", "sentinel.key"), ("node.pem", "sentinel.pem")):
        shutil.copy(pki.root / source, files / f"{name}.new")
        os.rename(files / f"{name}.new", files / name)
    wait_until(lambda: c.sentinel_health(s2)["ackedId"] >= 1, 30, 0.1,
               "s2 serves the renewed certificate and has caught up")
    assert c.master.insert_ok("after", w=3) == 2
    assert s2.pid == pid  # The same process: no restart.
    # /metrics reads the renewed file (it parses a file again only when the file changed).
    assert _node_expiry(s2) == _not_after(pki.root / "sentinel.pem")
    check_log(c.wait_converged(expected_len=2))


def test_master_name_lets_only_the_master_certificate_replicate(make_cluster, pki):
    only_master = tls_flags(pki, "sentinel") + ["--tls-master-name", "rlog-master"]
    c = make_cluster(master_args=tls_flags(pki, "master"), sentinel_args=only_master).start()
    assert c.master.insert_ok("from-the-master", w=3) == 1
    c.shutdown()
    # A certificate of the same CA for another name (here a sentinel's) cannot act as master.
    impostor = make_cluster(master_args=tls_flags(pki, "sentinel"), sentinel_args=only_master)
    impostor.start(wait_writable=False)
    wait_until(lambda: "refused replication" in impostor.master.log_tail()
               and "tls.master_name" in impostor.master.log_tail(), 20, 0.1,
               "the master logs the sentinels' refusal")
    assert impostor.master.insert("x", w=1).status_code == 503
    assert all(s.get_all() == [] for s in impostor.sentinels)


def test_a_plaintext_master_gets_nothing_from_tls_sentinels(make_cluster, pki):
    c = make_cluster(sentinel_args=tls_flags(pki, "sentinel")).start(wait_writable=False)
    # The master counts no sentinel as reachable, so it stays read-only.
    wait_until(lambda: all(c.sentinel_health(s)["status"] == "Unhealthy" for s in c.sentinels),
               20, 0.1, "both sentinels Unhealthy")
    assert c.master.health()["readOnly"] is True
    assert c.master.insert("x", w=1).status_code == 503


def _start_expect_exit(spawned, tmp_path: pathlib.Path, args: list[str]) -> tuple[int, str]:
    node = Node(f"bad{len(spawned)}", "?", tmp_path,
                lambda: ["--role", "sentinel", "--grpc-port", "0", "--port", "0"] + args)
    spawned.append(node)
    node.start(wait=False)
    rc = node.wait_exit(15)
    return rc, node.log_tail()


def test_bad_tls_settings_stop_start_up_naming_the_key(spawned, tmp_path, pki):
    good = tls_flags(pki, "sentinel")
    cases = [
        (good[:4], "config key 'tls.key_file': must be set too"),
        (["--tls-server-name", "x"], "config key 'tls.server_name'"),
        (good[:-1] + [str(tmp_path / "missing.key")],
         f"config key 'tls.key_file': '{tmp_path / 'missing.key'}' cannot be read"),
        (good[:3] + [str(tmp_path / "missing.pem")] + good[4:],
         f"config key 'tls.cert_file': cannot read '{tmp_path / 'missing.pem'}'"),
        (good[:-1] + [str(pki.root / "sentinel.pem")],
         "config key 'tls.key_file': '" + str(pki.root / "sentinel.pem") + "' holds no PEM private key"),
        (good[:1] + [str(pki.root / "sentinel.key")] + good[2:],
         "config key 'tls.ca_file': no PEM certificate in"),
        # A key that parses but belongs to another certificate: every handshake would fail.
        (good[:-1] + [str(pki.root / "elsewhere.key")],
         "config key 'tls.key_file': '" + str(pki.root / "elsewhere.key")
         + "' is not the key of the certificate in"),
    ]
    for args, expected in cases:
        rc, out = _start_expect_exit(spawned, tmp_path, args)
        assert rc == 2 and expected in out, (args, rc, out)
