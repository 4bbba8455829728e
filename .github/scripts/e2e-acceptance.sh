#!/usr/bin/env bash
# The core acceptance scenario on kind (issue 2, item 7), with Kubernetes objects:
#   start master + S1; Msg1 w=1 -> ok; Msg2 w=2 -> ok; Msg3 w=3 -> waits; Msg4 w=1 -> ok while
#   Msg3 still waits; start S2; Msg3 returns ok; S2 shows [Msg1, Msg2, Msg3, Msg4];
#   GET /get-all identical on all three nodes.
#
# S2 must count in the cluster before it exists (or w=3 would be refused as larger than the
# cluster), so this release lists both sentinels by name (master.sentinels) instead of SRV
# discovery, and starts with sentinel.replicas=1: "start S2" is scaling the StatefulSet to 2.
# Its master runs in memory (master.inMemory): one with a data directory treats every start as
# a restart that may have lost its directory and waits for both sentinels to answer, and S2 does
# not exist yet (the process-level acceptance test runs its master in memory too).
#
# usage: e2e-acceptance.sh IMAGE_REPOSITORY IMAGE_TAG   (runs in namespace $NS, default
#        "acceptance"; installs release $REL, deletes the namespace at the end)
set -euo pipefail
NS=${NS:-acceptance}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=e2e-lib.sh
source "$here/e2e-lib.sh"
trap cleanup_port_forwards EXIT

repo=${1:?image repository}
tag=${2:?image tag}
domain=${CLUSTER_DOMAIN:-cluster.local}
headless="$REL-sentinel-headless.$NS.svc.$domain"
port=${E2E_PORT:-18080}

log "installing $REL with sentinels $REL-sentinel-0 (running) and $REL-sentinel-1 (not yet)"
helm install "$REL" "$here/../../helm/rlog" --namespace "$NS" --create-namespace \
  --set image.repository="$repo" --set image.tag="$tag" \
  --set sentinel.replicas=1 --set master.inMemory=true \
  --set master.sentinels="$REL-sentinel-0.$headless:9091\,$REL-sentinel-1.$headless:9091"
# No --wait: whether the master reports ready while one listed sentinel does not exist is the
# binary's choice; the scenario only needs S1 running and the master serving.
k rollout status statefulset "$REL-sentinel" --timeout=5m
k wait pod "$(master_pod)" --for=jsonpath='{.status.containerStatuses[0].started}'=true --timeout=5m
port_forward "$port" "pod/$(master_pod)"

expect_ok() { # LABEL "STATUS BODY"
  [[ $2 == 2??\ * ]] || fail "$1: expected 2xx, got: $2"
  log "$1: $2"
}

# The master may be read-only (503) until it has reached S1: retry Msg1 (idempotency key = the
# message, so a retry never appends twice).
deadline=$((SECONDS + 120))
until r=$(insert "$port" Msg1 1) && [[ $r == 2??\ * ]]; do
  ((SECONDS < deadline)) || fail "Msg1 w=1 never succeeded: $r"
  log "Msg1 w=1 not yet: $r"
  sleep 2
done
expect_ok "Msg1 w=1" "$r"
expect_ok "Msg2 w=2" "$(insert "$port" Msg2 2)"

# Msg3 w=3 waits for S2, which does not exist yet.
insert "$port" Msg3 3 300000 >"$E2E_TMP/msg3" &
msg3_pid=$!
sleep "${ACCEPT_PENDING_S:-3}"
kill -0 "$msg3_pid" 2>/dev/null || fail "Msg3 w=3 returned before S2 exists: $(cat "$E2E_TMP/msg3")"
log "Msg3 w=3 is waiting"

start=$SECONDS
expect_ok "Msg4 w=1" "$(insert "$port" Msg4 1)"
((SECONDS - start <= 5)) || fail "Msg4 w=1 took $((SECONDS - start))s behind the waiting w=3 write"
kill -0 "$msg3_pid" 2>/dev/null || fail "Msg3 returned before S2 started: $(cat "$E2E_TMP/msg3")"
log "Msg4 w=1 answered while Msg3 still waits"

log "starting S2: scale $REL-sentinel to 2"
k scale statefulset "$REL-sentinel" --replicas=2
k rollout status statefulset "$REL-sentinel" --timeout=5m

wait "$msg3_pid" || true
expect_ok "Msg3 w=3 (after S2 started)" "$(cat "$E2E_TMP/msg3")"

want='[{"id":1,"message":"Msg1"},{"id":2,"message":"Msg2"},{"id":3,"message":"Msg3"},{"id":4,"message":"Msg4"}]'
s2="$REL-sentinel-1"
deadline=$((SECONDS + E2E_WAIT_S))
until [[ $(log_of "$s2") == "$want" ]]; do
  ((SECONDS < deadline)) || fail "$s2 shows $(log_of "$s2"), want $want"
  sleep 1
done
log "$s2 shows [Msg1, Msg2, Msg3, Msg4]"

# Identical, timestamps included, on all three nodes.
full() { pod_get "$1" /get-all | jq -S -c .; }
ref=$(full "$(master_pod)")
for pod in "$REL-sentinel-0" "$s2"; do
  [[ $(full "$pod") == "$ref" ]] || fail "/get-all on $pod differs from the master: $(full "$pod") vs $ref"
done
log "PASS: GET /get-all identical on $(master_pod), $REL-sentinel-0 and $s2"

cleanup_port_forwards
helm uninstall "$REL" --namespace "$NS" --wait
kubectl delete namespace "$NS" --wait=false
