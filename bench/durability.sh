#!/usr/bin/env bash
# Group commit at work (docs/PERFORMANCE.md, issue 3): w=3 insert throughput of a three-node
# cluster with every node in memory, with `fsync: never` and with `fsync: always` (data
# directories under $WORK, on the same disk), one fresh cluster per mode, in one run.
# Prints a markdown table and the ratios always/memory and never/memory.
#
# With ROUNDS=N (default 1) the modes are run N times, in the order of MODES in odd rounds and in
# reverse in even ones, each time on fresh clusters; the ratios of every round and their median
# come first, then the full table of each round.
#
# Usage: bench/durability.sh
# Environment: RLOG_BIN, RLOG_BENCH_BIN, DURATION (10 s per run), WARMUP (1 s), CONNECTIONS (64),
#   THREADS (1), SIZE (100 bytes), MODES ("memory never always"), ROUNDS (1), NODE_FLAGS (extra
#   flags for all three nodes, e.g. "--set wal.preallocate_bytes=0").
set -euo pipefail
# shellcheck source=cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
SIZE=${SIZE:-100}
MODES=${MODES:-memory never always}
ROUNDS=${ROUNDS:-1}

require_binaries

# run_mode DIR MODE: starts a cluster in MODE (data under $WORK/DIR/MODE), runs w=3 inserts
# against it (JSON in $WORK/DIR/MODE.json), stops it.
run_mode() {
  local dir=$1 mode=$2
  local HTTP0 HTTP1 HTTP2 GRPC0 GRPC1 GRPC2 S1 S2 MASTER
  read -r HTTP0 HTTP1 HTTP2 GRPC0 GRPC1 GRPC2 < <(python3 "$PROBE" free-ports 6)
  # flags_for NODE: the node's storage flags in this mode, then NODE_FLAGS.
  flags_for() {
    if [[ $mode != memory ]]; then
      echo "--data-dir $WORK/$dir/$mode/$1 --fsync $mode"
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
  echo "running $dir: w=3 with $mode ($DURATION s)..." >&2
  python3 "$PROBE" cpu-run "$WORK/$dir/$mode.json" master="$MASTER" sentinel1="$S1" sentinel2="$S2" -- \
    "$RLOG_BENCH_BIN" --host 127.0.0.1 --port "$HTTP0" --connections "$CONNECTIONS" \
    --threads "$THREADS" --duration "$DURATION" --warmup "$WARMUP" --json \
    --mode insert --size "$SIZE" --w 3
  if [[ $mode != memory ]]; then
    # Mean fsync of sentinel 1 over the run: what every w=3 write waits for at least once.
    curl -fs --max-time 2 "http://127.0.0.1:$HTTP1/metrics" |
      awk '/^rlog_wal_fsync_duration_seconds_sum/ {s=$2} /^rlog_wal_fsync_duration_seconds_count/ {c=$2}
           END {if (c > 0) printf "%s: sentinel 1 made %d fsyncs, mean %.3f ms\n", MODE, c, 1000*s/c}' \
        MODE="$mode" >>"$WORK/$dir/fsync.txt"
  fi
  kill "$MASTER" "$S1" "$S2"
  wait "$MASTER" "$S1" "$S2" 2>/dev/null || true
}

read -r -a modes <<<"$MODES"
for ((round = 1; round <= ROUNDS; round++)); do
  mkdir -p "$WORK/round$round"
  order=("${modes[@]}")
  if ((round % 2 == 0)); then
    order=()
    for ((i = ${#modes[@]} - 1; i >= 0; i--)); do order+=("${modes[i]}"); done
  fi
  for mode in "${order[@]}"; do run_mode "round$round" "$mode"; done
done

echo "rlog $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores," \
  "$(uname -r), $(date -u +%Y-%m-%dT%H:%MZ); w=3, $CONNECTIONS connections, ${SIZE}-byte" \
  "messages, $DURATION s per run after $WARMUP s warm-up${NODE_FLAGS:+, node flags: $NODE_FLAGS};" \
  "data directories on" \
  "$(df --output=source,fstype "$WORK" | tail -n 1)"
echo
ratios=()
for mode in "${modes[@]}"; do
  [[ $mode != memory && " ${modes[*]} " == *" memory "* ]] && ratios+=("$mode/memory")
done
if ((ROUNDS > 1 && ${#ratios[@]} > 0)); then
  echo "$ROUNDS rounds (even rounds run the modes in reverse order):"
  echo
  python3 "$PROBE" rounds "$WORK" "$(IFS=,; echo "${modes[*]}")" "$(IFS=,; echo "${ratios[*]}")"
fi
for ((round = 1; round <= ROUNDS; round++)); do
  if ((ROUNDS > 1)); then
    echo
    echo "Round $round:"
    echo
  fi
  python3 "$PROBE" durability-table "$WORK/round$round" "${modes[@]}"
  if [[ -f $WORK/round$round/fsync.txt ]]; then
    echo
    cat "$WORK/round$round/fsync.txt"
  fi
done
