#!/usr/bin/env bash
# Group commit at work (docs/PERFORMANCE.md, issue 3): w=3 insert throughput of a three-node
# cluster with every node in memory, with `fsync: never` and with `fsync: always` (data
# directories under $WORK, on the same disk), one fresh cluster per mode, in one run.
# Prints a markdown table and the ratios always/memory and never/memory.
#
# Usage: bench/durability.sh
# Environment: RLOG_BIN, RLOG_BENCH_BIN, DURATION (10 s per run), WARMUP (1 s), CONNECTIONS (64),
#   THREADS (1), SIZE (100 bytes), MODES ("memory never always"), NODE_FLAGS (extra flags for
#   all three nodes, e.g. "--set wal.preallocate_bytes=0").
set -euo pipefail
# shellcheck source=cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
SIZE=${SIZE:-100}
MODES=${MODES:-memory never always}

require_binaries

# run_mode MODE: starts a cluster in MODE, runs w=3 inserts against it, stops it.
run_mode() {
  local mode=$1
  local HTTP0 HTTP1 HTTP2 GRPC0 GRPC1 GRPC2 S1 S2 MASTER
  read -r HTTP0 HTTP1 HTTP2 GRPC0 GRPC1 GRPC2 < <(python3 "$PROBE" free-ports 6)
  # flags_for NODE: the node's storage flags in this mode, then NODE_FLAGS.
  flags_for() {
    if [[ $mode != memory ]]; then
      echo "--data-dir $WORK/$mode/$1 --fsync $mode"
    fi
    echo "${NODE_FLAGS:-}"
  }
  # shellcheck disable=SC2046  # word splitting of the storage flags is intended
  start_node "$mode-sentinel1" --role sentinel --port "$HTTP1" --grpc-port "$GRPC1" $(flags_for s1)
  S1=$NODE_PID
  # shellcheck disable=SC2046
  start_node "$mode-sentinel2" --role sentinel --port "$HTTP2" --grpc-port "$GRPC2" $(flags_for s2)
  S2=$NODE_PID
  # shellcheck disable=SC2046
  start_node "$mode-master" --role master --port "$HTTP0" --grpc-port "$GRPC0" \
    --sentinels "127.0.0.1:$GRPC1,127.0.0.1:$GRPC2" $(flags_for master)
  MASTER=$NODE_PID
  wait_healthz "$mode-sentinel1" "$S1" "$HTTP1"
  wait_healthz "$mode-sentinel2" "$S2" "$HTTP2"
  wait_healthz "$mode-master" "$MASTER" "$HTTP0"
  wait_insert "$HTTP0" 3
  echo "running w=3 with $mode ($DURATION s)..." >&2
  python3 "$PROBE" cpu-run "$WORK/$mode.json" master="$MASTER" sentinel1="$S1" sentinel2="$S2" -- \
    "$RLOG_BENCH_BIN" --host 127.0.0.1 --port "$HTTP0" --connections "$CONNECTIONS" \
    --threads "$THREADS" --duration "$DURATION" --warmup "$WARMUP" --json \
    --mode insert --size "$SIZE" --w 3
  if [[ $mode != memory ]]; then
    # Mean fsync of sentinel 1 over the run: what every w=3 write waits for at least once.
    curl -fs --max-time 2 "http://127.0.0.1:$HTTP1/metrics" |
      awk '/^rlog_wal_fsync_duration_seconds_sum/ {s=$2} /^rlog_wal_fsync_duration_seconds_count/ {c=$2}
           END {if (c > 0) printf "%s: sentinel 1 made %d fsyncs, mean %.3f ms\n", MODE, c, 1000*s/c}' \
        MODE="$mode" >>"$WORK/fsync.txt"
  fi
  kill "$MASTER" "$S1" "$S2"
  wait "$MASTER" "$S1" "$S2" 2>/dev/null || true
}

for mode in $MODES; do run_mode "$mode"; done

echo "rlog $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores," \
  "$(uname -r), $(date -u +%Y-%m-%dT%H:%MZ); w=3, $CONNECTIONS connections, ${SIZE}-byte" \
  "messages, $DURATION s per run after $WARMUP s warm-up${NODE_FLAGS:+, node flags: $NODE_FLAGS};" \
  "data directories on" \
  "$(df --output=source,fstype "$WORK" | tail -n 1)"
echo
# shellcheck disable=SC2086  # one argument per mode
python3 "$PROBE" durability-table "$WORK" $MODES
if [[ -f $WORK/fsync.txt ]]; then
  echo
  cat "$WORK/fsync.txt"
fi
