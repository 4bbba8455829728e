#!/usr/bin/env bash
# Recovery time and memory of a master on a large log (docs/PERFORMANCE.md, issue 3): writes
# ENTRIES entries of SIZE bytes into a data directory with rlog-wal-fill, starts a master on it
# (no sentinels, so readiness waits only for its own recovery), and reports the time from exec
# to GET /readyz = 200 and the master's resident memory once ready, against the targets
# (ready < 5 s; RSS <= 1.5 x payload bytes + 32 bytes per entry).
#
# Usage: bench/recovery.sh
# Environment: RLOG_BIN, RLOG_WAL_FILL_BIN (build/bench/rlog-wal-fill), ENTRIES (10000000),
#   SIZE (100). Pass DROP_CACHES=1 (root) to read the log from disk instead of the page cache.
set -euo pipefail
# shellcheck source=cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

ENTRIES=${ENTRIES:-10000000}
SIZE=${SIZE:-100}
RLOG_WAL_FILL_BIN=${RLOG_WAL_FILL_BIN:-$ROOT/build/bench/rlog-wal-fill}
RLOG_BENCH_BIN=$RLOG_WAL_FILL_BIN require_binaries

echo "writing $ENTRIES entries of $SIZE bytes..." >&2
"$RLOG_WAL_FILL_BIN" --dir "$WORK/master" --entries "$ENTRIES" --size "$SIZE" >&2
WAL_BYTES=$(du -sb "$WORK/master/wal" | cut -f1)
# The fill is set-up, not part of the measurement: let the kernel finish writing it back first
# (otherwise the master's recovery competes with 1+ GiB of writeback, and its start-up fsync of
# the last segment waits for it).
sync
if [[ ${DROP_CACHES:-0} == 1 ]]; then
  echo 3 >/proc/sys/vm/drop_caches
fi

read -r HTTP0 GRPC0 < <(python3 "$PROBE" free-ports 2)
START=$(date +%s.%N)
start_node master --role master --port "$HTTP0" --grpc-port "$GRPC0" --sentinels "" \
  --data-dir "$WORK/master"
MASTER=$NODE_PID
DEADLINE=$((SECONDS + 120))
until curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$HTTP0/readyz"; do
  if ! kill -0 "$MASTER" 2>/dev/null || ((SECONDS >= DEADLINE)); then
    echo "master not ready:" >&2
    tail -n 20 "$WORK/master.log" >&2
    exit 1
  fi
  sleep 0.01
done
READY=$(date +%s.%N)
LAST=$(python3 "$PROBE" last-id "http://127.0.0.1:$HTTP0")
RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$MASTER/status")
HWM_KB=$(awk '/^VmHWM/ {print $2}' "/proc/$MASTER/status")
if [[ $LAST != "$ENTRIES" ]]; then
  echo "master recovered $LAST entries, expected $ENTRIES" >&2
  exit 1
fi

echo "rlog $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores," \
  "$(uname -r), $(date -u +%Y-%m-%dT%H:%MZ); $ENTRIES entries of $SIZE bytes," \
  "WAL $((WAL_BYTES / 1048576)) MiB, page cache $([[ ${DROP_CACHES:-0} == 1 ]] && echo dropped || echo warm)"
echo
python3 - "$START" "$READY" "$RSS_KB" "$HWM_KB" "$ENTRIES" "$SIZE" <<'PY'
import sys
start, ready, rss_kb, hwm_kb, n, size = map(float, sys.argv[1:])
secs = ready - start
rss = rss_kb * 1024
budget = 1.5 * size * n + 32 * n
print("| measure | value | target |")
print("|---|---:|---|")
print(f"| exec to /readyz 200 | {secs:.2f} s | < 5 s |")
print(f"| resident memory when ready (VmRSS) | {rss / 2**20:.0f} MiB | <= {budget / 2**20:.0f} MiB |")
print(f"| peak resident memory (VmHWM) | {hwm_kb * 1024 / 2**20:.0f} MiB | |")
print(f"| resident bytes per entry | {rss / n:.1f} | <= {1.5 * size + 32:.0f} |")
print(f"| RSS / budget | {rss / budget:.2f} | <= 1.00 |")
PY
