#!/usr/bin/env bash
# The numbers of docs/PERFORMANCE.md: starts a three-node rlog cluster (master + 2 sentinels, in
# memory) on free loopback ports, runs rlog-bench against the master for GET /healthz and for
# inserts at w=1, 2 and 3, and prints a markdown table with the ratios w1/healthz and w3/w1.
#
# Each run also records the CPU time the master, the sentinels and the client used, and the
# machine's steal time (a shared VM), printed as CPU microseconds per answered request.
#
# Usage: bench/run_all.sh
# Environment: RLOG_BIN (build/src/app/rlog), RLOG_BENCH_BIN (build/bench/rlog-bench),
#   DURATION (10 s per run), WARMUP (1 s), CONNECTIONS (64), THREADS (1), SIZE (100 bytes),
#   MASTER_FLAGS (extra flags for the master, e.g. "--set replication.linger_ms=0").
set -euo pipefail
# shellcheck source=cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
SIZE=${SIZE:-100}

require_binaries
read -r HTTP0 HTTP1 HTTP2 GRPC0 GRPC1 GRPC2 < <(python3 "$PROBE" free-ports 6)

start_node sentinel1 --role sentinel --port "$HTTP1" --grpc-port "$GRPC1"
S1=$NODE_PID
start_node sentinel2 --role sentinel --port "$HTTP2" --grpc-port "$GRPC2"
S2=$NODE_PID
# shellcheck disable=SC2086  # MASTER_FLAGS is a list of flags
start_node master --role master --port "$HTTP0" --grpc-port "$GRPC0" \
  --sentinels "127.0.0.1:$GRPC1,127.0.0.1:$GRPC2" ${MASTER_FLAGS:-}
MASTER=$NODE_PID

wait_healthz sentinel1 "$S1" "$HTTP1"
wait_healthz sentinel2 "$S2" "$HTTP2"
wait_healthz master "$MASTER" "$HTTP0"
wait_insert "$HTTP0" 3  # both replication streams are up

# run_bench NAME ARGS...: one rlog-bench run against the master, JSON in $WORK/NAME.json.
run_bench() {
  local name=$1
  shift
  echo "running $name ($DURATION s)..." >&2
  python3 "$PROBE" cpu-run "$WORK/$name.json" master="$MASTER" sentinel1="$S1" sentinel2="$S2" -- \
    "$RLOG_BENCH_BIN" --host 127.0.0.1 --port "$HTTP0" --connections "$CONNECTIONS" \
    --threads "$THREADS" --duration "$DURATION" --warmup "$WARMUP" --json "$@"
}

run_bench healthz --mode get --path /healthz
run_bench w1 --mode insert --size "$SIZE" --w 1
run_bench w2 --mode insert --size "$SIZE" --w 2
run_bench w3 --mode insert --size "$SIZE" --w 3

echo "rlog $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores," \
  "$(uname -r), $(date -u +%Y-%m-%dT%H:%MZ); $CONNECTIONS connections, $THREADS client" \
  "thread(s), ${SIZE}-byte messages, $DURATION s per run after $WARMUP s warm-up" \
  "${MASTER_FLAGS:+; master flags: $MASTER_FLAGS}"
echo
python3 "$PROBE" table "$WORK"
