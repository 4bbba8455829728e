"""Configuration: YAML file < environment < flags; unknown keys and bad values name the key."""

from __future__ import annotations

import os
import pathlib
import textwrap

import pytest
import requests

from harness import Node, free_port, wait_until

START_TIMEOUT = 15.0


def _run_expect_exit(spawned, tmp_path: pathlib.Path, name: str, args: list[str],
                     env: dict | None = None) -> tuple[int, str]:
    """Runs rlog with `args`; it must exit (not serve) within START_TIMEOUT. Returns (rc, output)."""
    node = Node(name, "?", tmp_path, lambda: args, env=env)
    spawned.append(node)
    node.start(wait=False)
    rc = node.wait_exit(START_TIMEOUT)
    return rc, node.log_tail()


def _yaml(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    p = tmp_path / "rlog.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def _ports() -> str:
    return f"""\
    http:
      address: 127.0.0.1
      port: {free_port()}
    grpc:
      address: 127.0.0.1
      port: {free_port()}
    """


BAD_FILES = {
    # name: (yaml appended to a valid base, what the error must mention)
    "unknown_top_level_key": ("bogus_top_level_key: 1\n", "bogus_top_level_key"),
    "unknown_nested_key": ("replication:\n  bogus_nested_key: 3\n", "bogus_nested_key"),
    "bad_role": ("role: emperor\n", "role"),
    "bad_heartbeat": ("replication:\n  heartbeat_ms: -5\n", "heartbeat_ms"),
    "bad_fsync": ("fsync: sometimes\n", "fsync"),
    "bad_log_level": ("log:\n  level: loud\n", "log.level"),
    "key_set_twice": ("fsync: always\nfsync: never\n", "fsync is set twice"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_yaml_file_is_rejected_naming_the_key(spawned, tmp_path, case):
    extra, key = BAD_FILES[case]
    role = "" if extra.startswith("role:") else "role: sentinel\n"  # no duplicate YAML keys
    cfg = _yaml(tmp_path, role + textwrap.dedent(_ports()) + extra)
    rc, out = _run_expect_exit(spawned, tmp_path, f"cfg-{case}", ["--config", str(cfg)])
    assert rc != 0, f"rlog accepted a bad config ({case}):\n{out}"
    assert key in out, f"error does not name {key!r}:\n{out}"


def test_bad_port_in_yaml_names_http_port(spawned, tmp_path):
    cfg = _yaml(tmp_path, """\
        role: sentinel
        http:
          address: 127.0.0.1
          port: not-a-port
        """)
    rc, out = _run_expect_exit(spawned, tmp_path, "cfg-port", ["--config", str(cfg)])
    assert rc != 0 and "http.port" in out, out


def test_unparsable_yaml_is_rejected(spawned, tmp_path):
    cfg = _yaml(tmp_path, "role: [sentinel\nhttp: {port: 1\n")
    rc, out = _run_expect_exit(spawned, tmp_path, "cfg-syntax", ["--config", str(cfg)])
    assert rc != 0, out


def test_missing_config_file_is_rejected(spawned, tmp_path):
    missing = tmp_path / "does-not-exist.yaml"
    rc, out = _run_expect_exit(spawned, tmp_path, "cfg-missing", ["--config", str(missing)])
    assert rc != 0 and "does-not-exist.yaml" in out, out


BAD_FLAGS = {
    "unknown_flag": (["--no-such-flag", "1"], "no-such-flag"),
    "bad_port_flag": (["--port", "abc"], "port"),
    "port_out_of_range": (["--port", "70000"], "port"),
    "bad_role_flag": (["--role", "emperor"], "role"),
    "bad_heartbeat_flag": (["--heartbeat-ms", "soon"], "heartbeat"),
    "unhealthy_not_after_suspect": (["--suspect-after-ms", "500", "--unhealthy-after-ms", "100"],
                                    "unhealthy"),
    "set_unknown_key": (["--set", "no.such.key=1"], "no.such.key"),
    "set_bad_value": (["--set", "http.port=abc"], "http.port"),
    "bad_max_body": (["--max-body-bytes", "lots"], "max"),
    "bad_dns_server": (["--dns-server", "abc"], "discovery.dns_server"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_bad_flag_is_rejected_naming_the_key(spawned, tmp_path, case):
    args, key = BAD_FLAGS[case]
    base = ["--role", "sentinel", "--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1",
            "--port", str(free_port()), "--grpc-port", str(free_port())]
    rc, out = _run_expect_exit(spawned, tmp_path, f"flag-{case}", base + args)
    assert rc != 0, f"rlog accepted {args}:\n{out}"
    assert key in out, f"error for {args} does not name {key!r}:\n{out}"


def test_bad_env_value_is_rejected_naming_the_key(spawned, tmp_path):
    rc, out = _run_expect_exit(spawned, tmp_path, "env-port",
                               ["--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1",
                                "--grpc-port", str(free_port())],
                               env={"ROLE": "sentinel", "PORT": "abc"})
    assert rc != 0, out
    assert "PORT" in out or "http.port" in out, out


def test_yaml_file_env_and_flags_layer_in_order(spawned, tmp_path):
    """file says master on port A; env says sentinel; flag says port B: sentinel on B."""
    port_a, port_b, grpc = free_port(), free_port(), free_port()
    cfg = _yaml(tmp_path, f"""\
        role: master
        http:
          address: 127.0.0.1
          port: {port_a}
        grpc:
          address: 127.0.0.1
          port: {grpc}
        """)
    args = ["--config", str(cfg), "--port", str(port_b)]
    node = Node("layered", "sentinel", tmp_path, lambda: args, http_port=port_b, grpc_port=grpc,
                env={"ROLE": "sentinel"})
    spawned.append(node)
    node.start(timeout=START_TIMEOUT)
    h = node.health()
    assert h["role"] == "sentinel", h
    assert node.get_all() == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port_a}/healthz", timeout=2.0)


def test_yaml_file_configures_a_master(spawned, tmp_path):
    http, grpc = free_port(), free_port()
    s1, s2 = free_port(), free_port()
    cfg = _yaml(tmp_path, f"""\
        role: master
        node_id: yaml-master
        sentinels:
          - 127.0.0.1:{s1}
          - 127.0.0.1:{s2}
        http:
          address: 127.0.0.1
          port: {http}
        grpc:
          address: 127.0.0.1
          port: {grpc}
        health:
          suspect_after_ms: 300
          unhealthy_after_ms: 800
        """)
    node = Node("yaml-master", "master", tmp_path, lambda: ["--config", str(cfg)],
                http_port=http, grpc_port=grpc)
    spawned.append(node)
    node.start(timeout=START_TIMEOUT)
    h = wait_until(lambda: node.health(timeout=2.0), 5, 0.05, "master /health")
    assert h["role"] == "master", h
    assert sorted(s["name"] for s in h["sentinels"]) == sorted([f"127.0.0.1:{s1}", f"127.0.0.1:{s2}"]), h
    assert h["readOnly"] is True, "no sentinel is up: the master must be read-only"
    assert h["quorum"]["clusterSize"] == 3, h


def test_start_up_names_the_allocator_the_build_chose(spawned, tmp_path):
    """The build links tcmalloc into rlog unless configured with -DRLOG_MALLOC=system (and in
    sanitizer builds); the start-up line names the library malloc really resolved to."""
    expected = os.environ.get("RLOG_MALLOC", "")
    if expected not in ("tcmalloc", "system"):
        pytest.skip("run through CTest, which says which allocator the build chose")
    http, grpc = free_port(), free_port()
    args = ["--role", "sentinel", "--port", str(http), "--grpc-port", str(grpc)]
    node = Node("allocator", "sentinel", tmp_path, lambda: args, http_port=http, grpc_port=grpc)
    spawned.append(node)
    node.start(timeout=START_TIMEOUT)
    line = wait_until(lambda: next((l for l in node.log_tail().splitlines()
                                    if "malloc from" in l), None), 5, 0.05, "the start-up line")
    library = line.rsplit("malloc from ", 1)[1].strip()
    if expected == "tcmalloc":
        assert library.startswith("libtcmalloc"), line
    else:  # glibc's, or a sanitizer runtime's interposed malloc
        assert "tcmalloc" not in library, line
