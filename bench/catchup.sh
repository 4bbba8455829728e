#!/usr/bin/env bash
# Catch-up speed of a late sentinel (DESIGN.md invariant 7): starts the master and sentinel 1
# (sentinel 2 is listed but not started), inserts ENTRIES entries at w=1, then starts sentinel 2
# and polls its GET /health lastId until it reaches the master's last id. Prints entries/second.
#
# Usage: bench/catchup.sh
# Environment: RLOG_BIN, RLOG_BENCH_BIN (as run_all.sh), ENTRIES (1000000), SIZE (100 bytes),
#   CONNECTIONS (64), INSERT_TIMEOUT (600 s), CATCHUP_TIMEOUT (600 s).
set -euo pipefail
# shellcheck source=cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

ENTRIES=${ENTRIES:-1000000}
SIZE=${SIZE:-100}
CONNECTIONS=${CONNECTIONS:-64}
INSERT_TIMEOUT=${INSERT_TIMEOUT:-600}
CATCHUP_TIMEOUT=${CATCHUP_TIMEOUT:-600}

require_binaries
read -r HTTP0 HTTP1 HTTP2 GRPC0 GRPC1 GRPC2 < <(python3 "$PROBE" free-ports 6)

start_node sentinel1 --role sentinel --port "$HTTP1" --grpc-port "$GRPC1"
S1=$NODE_PID
start_node master --role master --port "$HTTP0" --grpc-port "$GRPC0" \
  --sentinels "127.0.0.1:$GRPC1,127.0.0.1:$GRPC2"
MASTER=$NODE_PID
wait_healthz sentinel1 "$S1" "$HTTP1"
wait_healthz master "$MASTER" "$HTTP0"
wait_insert "$HTTP0" 2  # master + sentinel 1: a majority of three, so the master is writable

echo "inserting $ENTRIES entries at w=1..." >&2
"$RLOG_BENCH_BIN" --host 127.0.0.1 --port "$HTTP0" --mode insert --w 1 --size "$SIZE" \
  --connections "$CONNECTIONS" --warmup 0 --duration "$INSERT_TIMEOUT" \
  --max-requests "$ENTRIES" --json >"$WORK/insert.json"
LAST_ID=$(python3 "$PROBE" last-id "http://127.0.0.1:$HTTP0")
echo "master last id: $LAST_ID ($(cat "$WORK/insert.json"))" >&2

STARTED=$(date +%s.%N)
start_node sentinel2 --role sentinel --port "$HTTP2" --grpc-port "$GRPC2"
read -r FIRST_S DONE_S < <(python3 "$PROBE" wait-last-id "http://127.0.0.1:$HTTP2" \
  "$LAST_ID" "$CATCHUP_TIMEOUT" "$STARTED")

python3 - "$LAST_ID" "$FIRST_S" "$DONE_S" "$SIZE" <<'PY'
import sys
entries, first, done, size = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"| late sentinel catch-up ({entries} entries of {size} B) | value |")
print("|---|---:|")
print(f"| start -> first entry on sentinel 2 | {first:.2f} s |")
print(f"| start -> caught up | {done:.2f} s |")
print(f"| entries/s, from start | {entries / done:.0f} |")
streaming = done - first
print(f"| entries/s, first entry -> caught up | {entries / streaming:.0f} |" if streaming > 0
      else "| entries/s, first entry -> caught up | (caught up within one poll) |")
PY
