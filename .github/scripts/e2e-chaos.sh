#!/usr/bin/env bash
# Delete a sentinel pod while writes go on: no acknowledged write may be missing afterwards,
# on any node, and every node ends with the same log (ids 1..N, no gap, no duplicate).
#
# usage: e2e-chaos.sh [VICTIM_POD]   (release $REL in namespace $NS; default victim
#        $REL-sentinel-1)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=e2e-lib.sh
source "$here/e2e-lib.sh"
trap cleanup_port_forwards EXIT
victim=${1:-$REL-sentinel-1}
port=${E2E_PORT:-18082}
# Seconds of writes before and after the deletion.
before_s=${CHAOS_BEFORE_S:-10}
after_s=${CHAOS_AFTER_S:-20}
port_forward "$port" "pod/$(master_pod)"

acked="$E2E_TMP/acked.txt"
stop="$E2E_TMP/stop-writers"
: >"$acked"
: >"$E2E_TMP/writer-errors.txt"
rm -f "$stop"

# writer N: writes chaos-N-i with writeConcern cycling 1, 2, 3 until $stop exists; records
# "id message" of every 2xx answer.
writer() {
  local n=$1 i=0 w r
  while [[ ! -e $stop ]]; do
    i=$((i + 1))
    w=$((i % 3 + 1))
    r=$(insert "$port" "chaos-$n-$i" "$w" 15000)
    if [[ $r == 2??\ * ]]; then
      printf '%s chaos-%s-%s\n' "$(jq -r '.id // "null"' <<<"${r#* }" 2>/dev/null || echo null)" "$n" "$i" >>"$acked"
    else
      printf 'writer %s: chaos-%s-%s w=%s: %s\n' "$n" "$n" "$i" "$w" "$r" >>"$E2E_TMP/writer-errors.txt"
    fi
  done
}

log "starting 4 writers"
pids=()
for n in 1 2 3 4; do
  writer "$n" &
  pids+=($!)
done
sleep "$before_s"
log "deleting $victim during writes ($(wc -l <"$acked") acked so far)"
k delete pod "$victim" --wait=false
sleep "$after_s"
touch "$stop"
for pid in "${pids[@]}"; do wait "$pid"; done
log "writers stopped: $(wc -l <"$acked") acknowledged writes, $(wc -l <"$E2E_TMP/writer-errors.txt") refused"
[[ -s $acked ]] || fail "no write was acknowledged"

k wait pod "$victim" --for=condition=Ready --timeout=5m
mapfile -t pods < <(master_pod; sentinel_pods)
wait_identical "$E2E_WAIT_S" "${pods[@]}" || fail "the nodes did not converge after the sentinel came back"

# Every acknowledged message is on every node exactly once, under the id the master answered.
for pod in "${pods[@]}"; do
  assert_contiguous "$pod"
  log_of "$pod" >"$E2E_TMP/log-$pod.json"
  bad=$(jq -R -s -c --slurpfile log "$E2E_TMP/log-$pod.json" '
    ($log[0] | map({key: .message, value: .id}) | from_entries) as $have
    | [split("\n")[] | select(length > 0) | split(" ") | {id: .[0], message: .[1]}
       | select($have[.message] == null or (.id != "null" and (.id | tonumber) != $have[.message]))]
  ' "$acked")
  [[ $bad == "[]" ]] || fail "$pod is missing acknowledged writes or holds them under another id: ${bad:0:2000}"
done
log "PASS: all $(wc -l <"$acked") acknowledged writes present, with their ids, on ${pods[*]}"
