#!/usr/bin/env bash
# Catch-up speed of a late sentinel (DESIGN.md invariant 7): starts the master and sentinel 1
# (sentinel 2 is listed but not started), inserts ENTRIES entries at w=1, then starts sentinel 2
# and polls its GET /health lastId until it reaches the master's last id. Prints entries/second.
#
# Usage: bench/catchup.sh
# Environment: RLOG_BIN, RLOG_BENCH_BIN (as run_all.sh), ENTRIES (1000000), SIZE (100 bytes),
#   CONNECTIONS (64), INSERT_TIMEOUT (600 s), CATCHUP_TIMEOUT (600 s), STORAGE (memory: every
#   node in memory; always | interval | never: data directories under $WORK with that fsync
#   policy; not named FSYNC, which the nodes would read from the environment),
#   NODE_FLAGS (extra flags for all three nodes, e.g. "--set wal.sync_on_replication_thread=true").
set -euo pipefail
# shellcheck source=cluster_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"

ENTRIES=${ENTRIES:-1000000}
SIZE=${SIZE:-100}
CONNECTIONS=${CONNECTIONS:-64}
INSERT_TIMEOUT=${INSERT_TIMEOUT:-600}
CATCHUP_TIMEOUT=${CATCHUP_TIMEOUT:-600}

STORAGE=${STORAGE:-memory}
case $STORAGE in
  memory | always | interval | never) ;;
  *) echo "STORAGE must be memory, always, interval or never, not '$STORAGE'" >&2; exit 2 ;;
esac

require_binaries
read -r HTTP0 HTTP1 HTTP2 GRPC0 GRPC1 GRPC2 < <(python3 "$PROBE" free-ports 6)

# flags_for NODE: the node's storage flags (STORAGE), then NODE_FLAGS.
flags_for() {
  if [[ $STORAGE != memory ]]; then
    echo "--data-dir $WORK/$1 --fsync $STORAGE"
  fi
  echo "${NODE_FLAGS:-}"
}

# shellcheck disable=SC2046  # word splitting of the storage flags is intended
start_node sentinel1 --role sentinel --port "$HTTP1" --grpc-port "$GRPC1" $(flags_for s1)
S1=$NODE_PID
# shellcheck disable=SC2046
start_node master --role master --port "$HTTP0" --grpc-port "$GRPC0" \
  --sentinels "127.0.0.1:$GRPC1,127.0.0.1:$GRPC2" $(flags_for m)
MASTER=$NODE_PID
wait_healthz sentinel1 "$S1" "$HTTP1"
if [[ $STORAGE != memory ]]; then
  # A master whose data directory is empty begins a new log only once every sentinel has answered
  # (docs/ARCHITECTURE.md, "Durability"): sentinel 2 takes part in the first write, then stops
  # and loses its directory, as a replica replaced by an empty one.
  # shellcheck disable=SC2046
  start_node sentinel2-first --role sentinel --port "$HTTP2" --grpc-port "$GRPC2" $(flags_for s2)
  S2=$NODE_PID
  wait_healthz master "$MASTER" "$HTTP0"
  wait_insert "$HTTP0" 3
  kill "$S2"
  wait "$S2" || true
  rm -rf "$WORK/s2"
else
  wait_healthz master "$MASTER" "$HTTP0"
fi
wait_insert "$HTTP0" 2  # master + sentinel 1: a majority of three, so the master is writable

echo "inserting $ENTRIES entries at w=1..." >&2
"$RLOG_BENCH_BIN" --host 127.0.0.1 --port "$HTTP0" --mode insert --w 1 --size "$SIZE" \
  --connections "$CONNECTIONS" --warmup 0 --duration "$INSERT_TIMEOUT" \
  --max-requests "$ENTRIES" --json >"$WORK/insert.json"
LAST_ID=$(python3 "$PROBE" last-id "http://127.0.0.1:$HTTP0")
echo "master last id: $LAST_ID ($(cat "$WORK/insert.json"))" >&2

STARTED=$(date +%s.%N)
# shellcheck disable=SC2046
start_node sentinel2 --role sentinel --port "$HTTP2" --grpc-port "$GRPC2" $(flags_for s2)
read -r FIRST_S DONE_S < <(python3 "$PROBE" wait-last-id "http://127.0.0.1:$HTTP2" \
  "$LAST_ID" "$CATCHUP_TIMEOUT" "$STARTED")
if [[ $STORAGE != memory ]]; then
  # How many fsyncs the catch-up cost sentinel 2, against the batches the master sent it (the few
  # of its start-up, and of its first run with the first write, included).
  BATCHES=$(curl -fs --max-time 2 "http://127.0.0.1:$HTTP0/metrics" |
    awk -v s="127.0.0.1:$GRPC2" 'index($0, "rlog_replication_batches_total{") == 1 &&
      index($0, "\"" s "\"") {n = $2} END {printf "%d", n}')
  FSYNCS=$(curl -fs --max-time 2 "http://127.0.0.1:$HTTP2/metrics" |
    awk '/^rlog_wal_fsync_duration_seconds_count/ {n = $2} END {printf "%d", n}')
  echo "sentinel 2 made $FSYNCS fsyncs for the $BATCHES batches it was sent"
fi

WHERE="in memory"
[[ $STORAGE != memory ]] && WHERE="fsync: $STORAGE"
python3 - "$LAST_ID" "$FIRST_S" "$DONE_S" "$SIZE" "$WHERE${NODE_FLAGS:+, $NODE_FLAGS}" <<'PY'
import sys
entries, first, done, size = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"| late sentinel catch-up ({entries} entries of {size} B, {sys.argv[5]}) | value |")
print("|---|---:|")
print(f"| start -> first entry on sentinel 2 | {first:.2f} s |")
print(f"| start -> caught up | {done:.2f} s |")
print(f"| entries/s, from start | {entries / done:.0f} |")
streaming = done - first
print(f"| entries/s, first entry -> caught up | {entries / streaming:.0f} |" if streaming > 0
      else "| entries/s, first entry -> caught up | (caught up within one poll) |")
PY
