#!/usr/bin/env bash
# The numbers of docs/PERFORMANCE.md: starts a three-node rlog cluster (master + 2 sentinels, in
# memory) on free loopback ports, runs rlog-bench against the master for GET /healthz and for
# inserts at w=1, 2 and 3, and prints a markdown table with the ratios w1/healthz and w3/w1.
#
# One more workload, post404, sends the very request of the w=1 run (same body, same headers) to
# a path nothing is routed to, and counts its 404 answers: what the HTTP server costs for such a
# request before rlog does anything. post404/healthz is the ceiling of w1/healthz on this machine
# (docs/PERFORMANCE.md, "How much of the gap is HTTP itself").
#
# Each run also records the CPU time the master, the sentinels and the client used, and the
# machine's steal time (a shared VM), printed as CPU microseconds per answered request.
#
# With ROUNDS=N (default 1) the four runs are repeated N times on the same cluster, in the order
# healthz, w1, w2, w3 in odd rounds and the reverse in even ones, so that a drift of the shared
# host's speed over the minutes of a run favours no workload; it then prints the ratios of every
# round and their median before the full table of each round.
#
# Usage: bench/run_all.sh
# Environment: RLOG_BIN (build/src/app/rlog), RLOG_BENCH_BIN (build/bench/rlog-bench),
#   DURATION (10 s per run), WARMUP (1 s), CONNECTIONS (64), THREADS (1), SIZE (100 bytes),
#   ROUNDS (1), MASTER_FLAGS (extra flags for the master, e.g. "--set replication.linger_ms=0").
set -euo pipefail
# shellcheck source=cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
SIZE=${SIZE:-100}
ROUNDS=${ROUNDS:-1}

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

# run_bench DIR NAME: one rlog-bench run of workload NAME against the master, JSON in
# $WORK/DIR/NAME.json.
run_bench() {
  local dir=$1 name=$2
  local args=(--mode insert --size "$SIZE" --w "${name#w}")
  [[ $name == healthz ]] && args=(--mode get --path /healthz)
  [[ $name == post404 ]] && args=(--mode insert --size "$SIZE" --w 1 --path /no-route --ok-status 404)
  echo "running $dir $name ($DURATION s)..." >&2
  python3 "$PROBE" cpu-run "$WORK/$dir/$name.json" master="$MASTER" sentinel1="$S1" \
    sentinel2="$S2" -- \
    "$RLOG_BENCH_BIN" --host 127.0.0.1 --port "$HTTP0" --connections "$CONNECTIONS" \
    --threads "$THREADS" --duration "$DURATION" --warmup "$WARMUP" --json "${args[@]}"
}

for ((round = 1; round <= ROUNDS; round++)); do
  mkdir -p "$WORK/round$round"
  order=(healthz post404 w1 w2 w3)
  ((round % 2 == 0)) && order=(w3 w2 w1 post404 healthz)
  for name in "${order[@]}"; do run_bench "round$round" "$name"; done
done

echo "rlog $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores," \
  "$(uname -r), $(date -u +%Y-%m-%dT%H:%MZ); $CONNECTIONS connections, $THREADS client" \
  "thread(s), ${SIZE}-byte messages, $DURATION s per run after $WARMUP s warm-up" \
  "${MASTER_FLAGS:+; master flags: $MASTER_FLAGS}"
echo
if ((ROUNDS > 1)); then
  echo "$ROUNDS rounds (even rounds run the workloads in reverse order):"
  echo
  python3 "$PROBE" rounds "$WORK" healthz,post404,w1,w2,w3 w1/healthz,w3/w1,post404/healthz
fi
for ((round = 1; round <= ROUNDS; round++)); do
  if ((ROUNDS > 1)); then
    echo
    echo "Round $round:"
    echo
  fi
  python3 "$PROBE" table "$WORK/round$round"
done
