#!/usr/bin/env bash
# /metrics on every pod (Prometheus text with the metrics of DESIGN.md), and the NetworkPolicy:
# a pod that is not the master cannot reach a sentinel's gRPC port, but can reach its HTTP port.
#
# usage: e2e-metrics-netpol.sh IMAGE   (release $REL in namespace $NS, installed with
#        networkPolicy.enabled=true)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=e2e-lib.sh
source "$here/e2e-lib.sh"
trap cleanup_port_forwards EXIT
image=${1:?image}
port=${E2E_PORT:-18083}
port_forward "$port" "pod/$(master_pod)"

# One more write, so every insert and replication metric has an observation.
r=$(insert "$port" "metrics-probe-$RANDOM" 2)
[[ $r == 2??\ * ]] || fail "metrics-probe w=2: $r"
metrics="$E2E_TMP/master-metrics.txt"
curl -fsS --max-time 10 "http://127.0.0.1:$port/metrics" >"$metrics"
for m in rlog_inserts_total rlog_insert_duration_seconds_bucket rlog_replication_latency_seconds_bucket \
  rlog_write_acks_total rlog_sentinel_acked_id rlog_sentinel_lag_entries rlog_sentinel_up \
  rlog_replication_batches_total rlog_replication_entries_total rlog_log_last_id rlog_read_only; do
  grep -q "^$m" "$metrics" || fail "master /metrics has no $m"
done
last=$(awk '/^rlog_log_last_id/ { print $2 }' "$metrics" | head -n1)
awk -v v="$last" 'BEGIN { exit !(v > 0) }' || fail "master rlog_log_last_id is $last"
log "master /metrics: every expected metric present, rlog_log_last_id $last"
while read -r pod; do
  pod_get "$pod" /metrics | grep -q '^rlog_log_last_id' || fail "$pod /metrics has no rlog_log_last_id"
  log "$pod /metrics ok"
done < <(sentinel_pods)

target="$REL-sentinel-0.$REL-sentinel-headless.$NS.svc.${CLUSTER_DOMAIN:-cluster.local}"
k delete pod netpol-probe --ignore-not-found --wait=true
k apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: netpol-probe
  labels:
    app.kubernetes.io/name: netpol-probe
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: probe
      image: $image
      imagePullPolicy: IfNotPresent
      command:
        - /bin/bash
        - -c
        - |
          if timeout 5 bash -c 'exec 3<>/dev/tcp/$target/9091' 2>/dev/null; then echo grpc=open; else echo grpc=blocked; fi
          if timeout 5 bash -c 'exec 3<>/dev/tcp/$target/$HTTP_PORT' 2>/dev/null; then echo http=open; else echo http=blocked; fi
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: [ALL]
EOF
k wait pod netpol-probe --for=jsonpath='{.status.phase}'=Succeeded --timeout=120s
result=$(k logs netpol-probe)
log "probe from a non-master pod: $(tr '\n' ' ' <<<"$result")"
grep -qx 'grpc=blocked' <<<"$result" || fail "a non-master pod reached the sentinels' gRPC port"
grep -qx 'http=open' <<<"$result" || fail "a pod could not reach the sentinels' HTTP port"
k delete pod netpol-probe --wait=false
log "PASS: metrics scraped; NetworkPolicy keeps gRPC to the master only"
