"""The harness itself: its port picking (parallel test processes, as CTest -j2 runs process,
observability and offline tests side by side, must not be handed a port another one is about to
listen on), and the power-loss cut's check of the sync journal."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import harness
from harness import free_port

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _other_process_can_reserve(port: int) -> bool:
    code = f"import harness; print(harness._reserve({port}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True,
                         timeout=30, check=True)
    return out.stdout.strip() == "True"


def test_ports_are_below_the_ephemeral_range_and_distinct():
    low, _ = harness._ephemeral_range()
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    if low > 11000:
        assert all(10000 <= p < low for p in ports), ports


def test_a_port_handed_out_is_reserved_against_other_test_processes():
    port = free_port()
    assert not _other_process_can_reserve(port)
    # The check itself works: a port nobody reserved (most near it are free; one may be in use
    # by anything else on the machine) can be reserved by the other process.
    candidates = [p for p in range(port + 1, port + 50) if p not in harness._ports_taken]
    assert any(_other_process_can_reserve(p) for p in candidates[:20])


def test_bench_probe_skips_ports_reserved_by_a_test_process():
    reserved = {free_port() for _ in range(600)}
    out = subprocess.run([sys.executable, str(REPO / "bench" / "probe.py"), "free-ports", "400"],
                         capture_output=True, text=True, timeout=30, check=True)
    ports = [int(p) for p in out.stdout.split()]
    assert len(ports) == 400 and len(set(ports)) == 400
    assert not reserved & set(ports)


def test_power_loss_accepts_a_create_its_journal_line_missed_but_not_a_file_written_around_it(
        tmp_path):
    """A kill between a create and its journal line leaves an empty file the journal does not
    know (the line follows the call): that is a create, not a file written around the journal.
    One holding bytes is."""
    data = tmp_path / "data"
    data.mkdir()
    known = data / "known.log"
    known.write_bytes(b"abc")
    journal = tmp_path / "node.syncs"
    journal.write_text(f"create\t{known}\nsync\t{known}\t3\n")
    (data / "commit.tmp").write_bytes(b"")
    assert harness.power_loss(journal, data, None) == {}
    (data / "commit.tmp").write_bytes(b"rlog-commit")
    with pytest.raises(AssertionError, match="does not know"):
        harness.power_loss(journal, data, None)
