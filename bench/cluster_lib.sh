# shellcheck shell=bash
# Shared by run_all.sh and catchup.sh (source it): binaries, a scratch directory, rlog nodes
# started in the background on loopback, bounded waits, and a trap that kills every node this
# script started, by PID, on exit. Logs stay in $WORK when the script fails.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RLOG_BIN=${RLOG_BIN:-$ROOT/build/src/app/rlog}
RLOG_BENCH_BIN=${RLOG_BENCH_BIN:-$ROOT/build/bench/rlog-bench}
# shellcheck disable=SC2034  # used by the scripts that source this file
PROBE="$ROOT/bench/probe.py"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rlog-bench.XXXXXX")
PIDS=()

cleanup() {
  local status=$? pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    # Bounded: a node that ignores SIGTERM for 5 s gets SIGKILL.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if ((status == 0)); then
    rm -rf "$WORK"
  else
    echo "failed (status $status); logs in $WORK" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

require_binaries() {
  local bin
  for bin in "$RLOG_BIN" "$RLOG_BENCH_BIN"; do
    if [[ ! -x $bin ]]; then
      echo "missing executable: $bin (build it, or set RLOG_BIN / RLOG_BENCH_BIN)" >&2
      exit 2
    fi
  done
}

# start_node NAME ARGS...: runs "$RLOG_BIN ARGS..." in the background, output in $WORK/NAME.log;
# its PID is left in NODE_PID.
start_node() {
  local name=$1
  shift
  "$RLOG_BIN" "$@" >"$WORK/$name.log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
}

# wait_healthz NAME PID PORT [TIMEOUT_S]: polls GET /healthz until it answers 2xx; fails if the
# node exits or the timeout passes.
wait_healthz() {
  local name=$1 pid=$2 port=$3 timeout=${4:-30}
  local deadline=$((SECONDS + timeout))
  until curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited before answering /healthz:" >&2
      tail -n 20 "$WORK/$name.log" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "$name did not answer /healthz on port $port within $timeout s" >&2
      return 1
    fi
    sleep 0.1
  done
}

# wait_insert PORT W [TIMEOUT_S]: retries one POST /insert with writeConcern W until it gets a
# 2xx, i.e. until enough sentinels are connected for W. It appends one entry.
wait_insert() {
  local port=$1 w=$2 timeout=${3:-30}
  local deadline=$((SECONDS + timeout))
  until curl -fs -o /dev/null --max-time 2 -H 'Content-Type: application/json' \
    -d "{\"message\":\"warm-up\",\"writeConcern\":$w,\"timeoutMs\":1000}" \
    "http://127.0.0.1:$port/insert"; do
    if ((SECONDS >= deadline)); then
      echo "no successful w=$w insert on port $port within $timeout s" >&2
      return 1
    fi
    sleep 0.1
  done
}
