#!/usr/bin/env bash
# Scale the sentinels from 2 to 3: the new one is found through the headless Service's SRV
# records, catches up with everything written before it existed, and counts toward
# writeConcern (a w=4 write succeeds only once the master holds its ack).
#
# usage: e2e-scale.sh   (release $REL in namespace $NS, installed with 2 sentinels)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=e2e-lib.sh
source "$here/e2e-lib.sh"
trap cleanup_port_forwards EXIT
port=${E2E_PORT:-18081}
writes=${SCALE_WRITES:-200}
port_forward "$port" "pod/$(master_pod)"

log "writing $writes messages with writeConcern 3 (master + both sentinels)"
for i in $(seq "$writes"); do
  r=$(insert "$port" "before-scale-$i" 3)
  [[ $r == 2??\ * ]] || fail "before-scale-$i w=3: $r"
done

log "scaling $REL-sentinel 2 -> 3"
k scale statefulset "$REL-sentinel" --replicas=3
k rollout status statefulset "$REL-sentinel" --timeout=5m

# w=4 = master + 3 sentinels: only possible once the master discovered and counts the new one.
deadline=$((SECONDS + 180))
while :; do
  r=$(insert "$port" "after-scale" 4 10000)
  [[ $r == 2??\ * ]] && break
  ((SECONDS < deadline)) || fail "w=4 never succeeded after scaling to 3 sentinels: $r"
  log "w=4 not yet: $r"
  sleep 3
done
log "w=4 succeeded: $r"

new="$REL-sentinel-2"
wait_identical "$E2E_WAIT_S" "$(master_pod)" "$new" || fail "$new did not catch up with the master"
[[ $(log_of "$new" | jq length) -ge $((writes + 1)) ]] || fail "$new holds fewer than $((writes + 1)) entries"
assert_contiguous "$new"
log "PASS: $new caught up ($(log_of "$new" | jq length) entries) and counts toward writeConcern"
