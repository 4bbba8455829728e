#!/usr/bin/env bash
# Runs helm/rlog/files/helm-test.sh (the `helm test` hook) against fake_rlog.py on loopback:
# it must pass when every node shows the message (one 503 first, Content-Length and chunked
# answers) and must fail when one sentinel never shows it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/../../helm/rlog/files/helm-test.sh"
tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

run_case() { # MODE EXPECTED_RC
  local mode=$1 want=$2 rc=0 port
  rm -f "$tmp/port"
  python3 "$here/fake_rlog.py" "$tmp/port" "$mode" &
  server_pid=$!
  for _ in $(seq 50); do [[ -s $tmp/port ]] && break; sleep 0.1; done
  port=$(cat "$tmp/port")
  # Sentinel pods are "<prefix><i>.<domain>": 127.0.0.1 and 127.0.1.1, both loopback.
  MASTER_HOST=127.0.0.1 MASTER_PORT=$port SENTINEL_COUNT=2 SENTINEL_POD_PREFIX=127.0. \
    SENTINEL_DOMAIN=1 SENTINEL_PORT=$port WRITE_CONCERN=3 TIMEOUT_SECONDS=5 READ_TIMEOUT=6 \
    bash "$script" >"$tmp/out.$mode" 2>&1 || rc=$?
  if [[ -n ${VERBOSE:-} ]]; then cat "$tmp/out.$mode"; fi
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  if [[ $rc -ne $want ]]; then
    echo "helm-test.sh against a '$mode' cluster exited $rc, expected $want:" >&2
    cat "$tmp/out.$mode" >&2
    return 1
  fi
  echo "helm-test.sh against a '$mode' cluster exited $rc as expected"
}

run_case good 0
run_case lagging 1
