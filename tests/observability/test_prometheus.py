"""rlog's metrics as a real Prometheus sees them.

A three-node cluster is scraped every second by Debian's `prometheus`; conftest.py sends known
traffic through it (writes at w=1, 2, 3, a sentinel killed and restarted, both sentinels frozen so
the master turns read-only, then restored). These tests ask Prometheus' HTTP API, never the
exposition text, whether what it stored matches what happened.
"""

from __future__ import annotations

import math
import time
from typing import Optional

from scenario import MASTER_POD, NAMESPACE, SENTINEL_PODS, Observed
from promlib import finite_values
import harness

M = f'namespace="{NAMESPACE}", pod="{MASTER_POD}"'


def test_every_node_is_scraped_with_namespace_and_pod_labels(observed: Observed):
    got = observed.prom.by(f'rlog_log_last_id{{namespace="{NAMESPACE}"}}', "pod")
    assert set(got) == {MASTER_POD, *SENTINEL_PODS}, got


def test_inserts_by_write_concern_and_outcome_match_what_was_sent(observed: Observed):
    prom = observed.prom
    expected = {f"w={w} {o}": n for (w, o), n in observed.sent.items()}

    def seen():
        res = prom.query(f"sum by (write_concern, outcome) (rlog_inserts_total{{{M}}}) > 0")
        return {f"w={s['metric']['write_concern']} {s['metric']['outcome']}": int(float(s["value"][1]))
                for s in res}
    got = seen()
    assert got == expected, f"Prometheus has {got}, the test sent {expected}"
    # Every outcome label is exported (zero until it happens), none other.
    outcomes = set(prom.by(f'count by (outcome) (rlog_inserts_total{{{M}}})', "outcome"))
    assert outcomes == {"ok", "timeout", "read_only", "bad_request", "too_large", "draining",
                        "recovering", "storage_error", "deposed", "log_full"}, outcomes
    # Only the master counts inserts.
    assert prom.query(f'rlog_inserts_total{{pod=~"{"|".join(SENTINEL_PODS)}"}}') == []


def test_write_acks_are_w_per_committed_write(observed: Observed):
    got = observed.prom.by(f"sum by (write_concern) (rlog_write_acks_total{{{M}}}) > 0", "write_concern")
    expected = {w: float(int(w) * n) for (w, o), n in observed.sent.items() if o == "ok"}
    assert got == expected, f"acks by write concern: Prometheus {got}, expected {expected}"


def test_insert_latency_histogram_counts_answered_writes_and_has_quantiles(observed: Observed):
    prom = observed.prom
    counts = prom.by(f"sum by (write_concern) (rlog_insert_duration_seconds_count{{{M}}})", "write_concern")
    for w in ("1", "2", "3"):
        appended = sum(n for (cw, o), n in observed.sent.items() if cw == w and o in ("ok", "timeout"))
        answered = sum(n for (cw, o), n in observed.sent.items() if cw == w)
        assert appended <= counts.get(w, 0) <= answered, (
            f"w={w}: {counts.get(w)} latency observations for {appended} appended and "
            f"{answered} answered inserts")
        inf = prom.value(f'sum(rlog_insert_duration_seconds_bucket{{{M}, write_concern="{w}", le="+Inf"}})')
        assert inf == counts[w], f"w={w}: +Inf bucket {inf} != count {counts[w]}"
    # Quantiles over the whole run: finite, positive, and the w=3 timeout (300 ms) shows in p99.
    rng = observed.range_seconds()
    q = prom.by(f"histogram_quantile(0.5, sum by (le, write_concern) "
                f"(increase(rlog_insert_duration_seconds_bucket{{{M}}}[{rng}s])))", "write_concern")
    for w in ("1", "2", "3"):
        assert w in q and math.isfinite(q[w]) and 0 < q[w] < 1.0, f"p50 by write concern: {q}"
    p99_w3 = prom.value(f'histogram_quantile(0.99, sum by (le) (increase('
                        f'rlog_insert_duration_seconds_bucket{{{M}, write_concern="3"}}[{rng}s])))')
    assert p99_w3 is not None and p99_w3 >= 0.25, f"w=3 p99 {p99_w3}: the 300 ms timeout is not in it"


def test_replication_latency_histogram_has_observations_for_each_sentinel(observed: Observed):
    prom = observed.prom
    counts = prom.by(f"sum by (sentinel) (rlog_replication_latency_seconds_count{{{M}}})", "sentinel")
    names = set(observed.sentinels.values())
    assert set(counts) == names, f"sentinel labels {set(counts)}, configured {names}"
    for s, n in counts.items():
        assert n > 0, f"no replication latency observations for {s}: {counts}"
    rng = observed.range_seconds()
    q = prom.by(f"histogram_quantile(0.5, sum by (le, sentinel) "
                f"(increase(rlog_replication_latency_seconds_bucket{{{M}}}[{rng}s])))", "sentinel")
    for s in names:
        assert s in q and math.isfinite(q[s]) and q[s] > 0, f"replication p50 per sentinel: {q}"


def over(observed: Observed, fn: str, selector: str, phase: str) -> Optional[float]:
    """`fn`_over_time of a plain selector across a phase, evaluated at the phase's end (every raw
    sample, unlike the steps of a range query)."""
    start, end = observed.phases[phase]
    return observed.prom.value(f"{fn}_over_time({selector}[{math.ceil(end - start)}s])", at=end)


def test_lag_above_zero_while_sentinel_down_and_zero_after_catch_up(observed: Observed):
    prom = observed.prom
    down = observed.down_sentinel
    lag = f'rlog_sentinel_lag_entries{{{M}, sentinel="{down}"}}'
    # Appended while it was down: writes at w=1 and w=2, and the w=3 write that timed out.
    assert observed.appended_while_down > 0
    peak = over(observed, "max", lag, "one_down")
    assert peak == observed.appended_while_down, (
        f"lag of {down} while down peaked at {peak}, expected the "
        f"{observed.appended_while_down} entries appended meanwhile")
    # Caught up after the restart, and still at the end.
    r_end = observed.phases["recovered"][1]
    assert prom.value(lag, at=r_end) == 0, f"lag of {down} after it caught up"
    for s in observed.sentinels.values():
        prom.wait_value(f'rlog_sentinel_lag_entries{{{M}, sentinel="{s}"}}', lambda v: v == 0,
                        desc=f"lag of {s} back to 0")
    # acked id == master's last id once caught up.
    last = prom.value(f"rlog_log_last_id{{{M}}}")
    acked = prom.by(f"rlog_sentinel_acked_id{{{M}}}", "sentinel")
    assert acked == {s: last for s in observed.sentinels.values()}, f"acked {acked}, last id {last}"


def test_sentinel_status_goes_unhealthy_and_back(observed: Observed):
    prom = observed.prom
    down = observed.down_sentinel
    other = observed.sentinels["s2"]

    def up(sentinel: str, status: str) -> str:
        return f'rlog_sentinel_up{{{M}, sentinel="{sentinel}", status="{status}"}}'

    assert over(observed, "max", up(down, "Unhealthy"), "one_down") == 1, \
        f"{down} never Unhealthy while it was killed"
    assert prom.value(up(down, "Unhealthy"), at=observed.phases["one_down"][1]) == 1
    assert prom.value(up(down, "Healthy"), at=observed.phases["recovered"][1]) == 1, \
        f"{down} not Healthy again after its restart"
    # The other sentinel was not Unhealthy while the first was down (the labels are per sentinel).
    assert over(observed, "max", up(other, "Unhealthy"), "one_down") == 0, \
        f"{other} Unhealthy while only {down} was down"
    # Exactly one status is 1 per sentinel, at every sample of the run.
    start, end = observed.whole_run()
    one = prom.query_range(f"sum by (sentinel) (rlog_sentinel_up{{{M}}})", start, end, step=0.25)
    assert {s["metric"]["sentinel"] for s in one} == set(observed.sentinels.values())
    for s in one:
        bad = [(t, v) for t, v in finite_values(s) if v != 1]
        assert not bad, f"{s['metric']}: statuses summing to != 1 at {bad[:5]}"
    # Now: all Healthy.
    for s in observed.sentinels.values():
        prom.wait_value(up(s, "Healthy"), lambda v: v == 1, desc=f"{s} Healthy now")


def test_read_only_toggles_when_both_sentinels_are_down(observed: Observed):
    prom = observed.prom
    ro = f"rlog_read_only{{{M}}}"
    assert over(observed, "max", ro, "read_only") == 1, \
        "rlog_read_only never 1 while both sentinels were stopped"
    assert over(observed, "max", ro, "baseline") == 0, "read-only before any fault"
    assert prom.value(f"max_over_time({ro}[{observed.range_seconds()}s])") == 1
    prom.wait_value(ro, lambda v: v == 0, desc="rlog_read_only back to 0")
    # Both sentinels were Unhealthy meanwhile.
    for s in observed.sentinels.values():
        v = over(observed, "max", f'rlog_sentinel_up{{{M}, sentinel="{s}", status="Unhealthy"}}',
                 "read_only")
        assert v == 1, f"{s} not Unhealthy while frozen"
    # The sentinels never claim to be read-only.
    assert prom.value(f'max(max_over_time(rlog_read_only{{pod=~"{"|".join(SENTINEL_PODS)}"}}'
                      f'[{observed.range_seconds()}s]))') == 0


def test_every_node_reports_the_same_last_id(observed: Observed):
    appended = sum(n for (w, o), n in observed.sent.items() if o in ("ok", "timeout"))
    got = observed.prom.by(f'rlog_log_last_id{{namespace="{NAMESPACE}"}}', "pod")
    assert got == {p: appended for p in [MASTER_POD, *SENTINEL_PODS]}, (
        f"last id per pod {got}, {appended} entries appended")


def test_every_node_reports_the_whole_log_committed(observed: Observed):
    # At the end of the run every node holds the whole log and has been told a majority does.
    appended = sum(n for (w, o), n in observed.sent.items() if o in ("ok", "timeout"))
    want = {p: appended for p in [MASTER_POD, *SENTINEL_PODS]}
    harness.wait_until(
        lambda: observed.prom.by(f'rlog_commit_id{{namespace="{NAMESPACE}"}}', "pod") == want,
        20, 0.25, f"rlog_commit_id {appended} on every pod")


def test_every_entry_was_sent_to_each_sentinel_in_batches(observed: Observed):
    # Each sentinel started empty and ends caught up, so the master sent it every entry at least
    # once (more for the one restarted mid-run: what it lost is sent again), in batches of one
    # entry or more.
    appended = sum(n for (w, o), n in observed.sent.items() if o in ("ok", "timeout"))
    prom = observed.prom
    entries = prom.by(f"rlog_replication_entries_total{{{M}}}", "sentinel")
    batches = prom.by(f"rlog_replication_batches_total{{{M}}}", "sentinel")
    names = set(observed.sentinels.values())
    assert set(entries) == names and set(batches) == names, f"{entries} {batches}"
    for s in names:
        assert entries[s] >= appended, f"{s}: {entries[s]} entries sent, {appended} appended"
        assert 1 <= batches[s] <= entries[s], f"{s}: {batches[s]} batches, {entries[s]} entries"


def test_alert_rules_load_and_go_pending_during_the_faults(observed: Observed):
    prom = observed.prom
    groups = prom.api("rules", {"type": "alert"})["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert rules, "no alert rules loaded"
    broken = [(r["name"], r.get("lastError")) for r in rules if r.get("health") != "ok"]
    assert not broken, f"rules that fail to evaluate: {broken}"

    def alerted(name: str, phase: str, extra: str = "") -> float:
        start, end = observed.phases[phase]
        sel = f'ALERTS{{alertname="{name}"{extra}}}'
        return prom.value(f"max(max_over_time({sel}[{math.ceil(end - start)}s]))", at=end) or 0

    down = observed.down_sentinel
    assert alerted("RlogSentinelUnhealthy", "one_down", f', sentinel="{down}"') == 1
    assert alerted("RlogMasterReadOnly", "read_only", f', pod="{MASTER_POD}"') == 1
    assert alerted("RlogInsertTimeouts", "one_down", ', write_concern="3"') == 1
    start, end = observed.phases["baseline"]
    # RlogWalFsyncSlow watches the host's disk, not the scenario: on a busy CI machine the master's
    # fsync p99 can pass 50 ms with no fault at all, so it is left out of this check.
    assert prom.query(f'count_over_time(ALERTS{{alertname!="RlogWalFsyncSlow"}}'
                      f'[{math.ceil(end - start)}s])', at=end) == [], "alerts before any fault"


def test_every_node_exports_when_its_tls_certificates_expire(observed: Observed):
    """The cluster replicates over mutual TLS (conftest: CA for 90 days, node certificate for 60):
    every pod exports both expiry times, and the 14-day alert does not fire."""
    prom = observed.prom
    now = time.time()
    series = prom.query("rlog_tls_certificate_expiry_timestamp_seconds")
    got = {(s["metric"]["pod"], s["metric"]["certificate"]): float(s["value"][1]) for s in series}
    pods = [MASTER_POD, *SENTINEL_PODS]
    assert set(got) == {(p, c) for p in pods for c in ("node", "ca")}, sorted(got)
    for (pod, cert), expires in got.items():
        days = (expires - now) / 86400
        want = 60 if cert == "node" else 90
        assert want - 1 < days <= want, (pod, cert, days)
    assert prom.query('ALERTS{alertname="RlogTlsCertificateExpiresSoon"}') == []
