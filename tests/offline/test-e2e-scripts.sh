#!/usr/bin/env bash
# Dry run of the kind end-to-end scripts (.github/scripts/e2e-*.sh) against a fake cluster
# (e2e-smoke/fake_cluster.py, with kubectl and helm shims): each script must pass against a
# well-behaved cluster, and the acceptance and chaos checks must fail against one that
# reorders entries, loses one, or acknowledges one under a wrong id. This tests the scripts, not rlog; the real run is e2e-kind.yml.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
scripts="$here/../../.github/scripts"
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { echo "test-e2e-scripts: needs $tool" >&2; exit 3; }
done
tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
# run_case MODE REPLICAS EXPECTED_RC SCRIPT [ARGS...]
run_case() {
  local mode=$1 replicas=$2 want=$3 script=$4 rc=0 state port=
  state="$tmp/$mode-$(basename "$script" .sh)"
  shift 4
  mkdir -p "$state"
  echo "$replicas" >"$state/replicas"
  python3 "$here/e2e-smoke/fake_cluster.py" "$state" "$mode" &
  server_pid=$!
  for _ in $(seq 100); do
    if [[ -e $state/fake-cluster.ready ]]; then port=$(<"$state/fake-cluster.ready"); break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    echo "the fake cluster for '$mode' did not start listening within 10 s" >&2
    return 1
  fi
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/fake/scale?replicas=$replicas"
  PATH="$here/e2e-smoke/bin:$PATH" FAKE_STATE=$state FAKE_PORT=$port E2E_PORT=$port \
    E2E_TMP="$state/e2e" E2E_WAIT_S=2 SCALE_WRITES=20 CHAOS_BEFORE_S=1 CHAOS_AFTER_S=1 ACCEPT_PENDING_S=1 \
    bash "$scripts/$script" "$@" >"$state/out" 2>&1 || rc=$?
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  if [[ ${VERBOSE:-} ]]; then cat "$state/out"; fi
  if [[ $rc -ne $want ]]; then
    echo "$script against a '$mode' fake cluster exited $rc, expected $want:" >&2
    sed 's/^/  /' "$state/out" >&2
    return 1
  fi
  echo "$script against a '$mode' fake cluster exited $rc as expected"
}

run_case good 1 0 e2e-acceptance.sh rlog e2e
run_case reorder 1 1 e2e-acceptance.sh rlog e2e
run_case good 2 0 e2e-scale.sh
run_case good 3 0 e2e-chaos.sh rlog-sentinel-1
run_case lose 3 1 e2e-chaos.sh rlog-sentinel-1
run_case misreport 3 1 e2e-chaos.sh rlog-sentinel-1
run_case good 3 0 e2e-metrics-netpol.sh rlog:e2e
