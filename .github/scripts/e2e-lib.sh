#!/usr/bin/env bash
# Helpers for the kind end-to-end scripts (.github/workflows/e2e-kind.yml). Source it.
# Needs kubectl (pointing at the cluster), curl and jq.
#
# Environment: NS (namespace, default "default"), REL (Helm release, default "rlog"),
# E2E_TMP (scratch directory), HTTP_PORT (pods' HTTP port, default 8080), E2E_PORT (local
# port for the port-forward, each script has its own default), E2E_WAIT_S (how long nodes
# get to catch up or converge, default 180). tests/offline/e2e-smoke/ dry-runs the scripts
# against a fake cluster with short waits.

NS=${NS:-default}
REL=${REL:-rlog}
HTTP_PORT=${HTTP_PORT:-8080}
E2E_WAIT_S=${E2E_WAIT_S:-180}
E2E_TMP=${E2E_TMP:-$(mktemp -d)}
mkdir -p "$E2E_TMP"
PF_PIDS=()

log() { printf '%s e2e[%s]: %s\n' "$(date -u +%H:%M:%S)" "$NS" "$*"; }
fail() {
  log "FAIL: $*"
  exit 1
}

k() { kubectl --namespace "$NS" "$@"; }

cleanup_port_forwards() {
  local pid
  for pid in "${PF_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  PF_PIDS=()
}

# port_forward LOCAL_PORT RESOURCE: kubectl port-forward in the background, waits for /healthz.
port_forward() {
  local port=$1 target=$2 i
  k port-forward "$target" "$port:$HTTP_PORT" >"$E2E_TMP/port-forward-$port.log" 2>&1 &
  PF_PIDS+=($!)
  for i in $(seq 60); do
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz"; then
      log "port-forward 127.0.0.1:$port -> $target ready"
      return 0
    fi
    sleep 1
  done
  cat "$E2E_TMP/port-forward-$port.log" >&2
  fail "port-forward to $target never answered /healthz (after $i tries)"
}

# insert PORT MESSAGE W [TIMEOUT_MS]: prints "STATUS BODY" on one line.
insert() {
  local port=$1 msg=$2 w=$3 timeout_ms=${4:-20000} out status
  out=$(mktemp -p "$E2E_TMP")
  status=$(curl -sS -o "$out" -w '%{http_code}' --max-time $((timeout_ms / 1000 + 15)) \
    -X POST "http://127.0.0.1:$port/insert" -H 'Content-Type: application/json' \
    -d "$(jq -cn --arg m "$msg" --argjson w "$w" --argjson t "$timeout_ms" \
      '{message: $m, writeConcern: $w, timeoutMs: $t, idempotencyKey: $m}')") || status=000
  printf '%s %s\n' "$status" "$(tr -d '\n' <"$out")"
  rm -f "$out"
}

# pod_get POD PATH: GET through the API server's pod proxy (no port-forward needed).
pod_get() {
  kubectl get --raw "/api/v1/namespaces/$NS/pods/$1:$HTTP_PORT/proxy$2"
}

# log_of POD: the pod's log as canonical JSON lines [{id, message}], sorted by id.
log_of() {
  pod_get "$1" /get-all | jq -c '[.[] | {id, message}] | sort_by(.id)'
}

sentinel_pods() {
  k get pods -l "app.kubernetes.io/instance=$REL,app.kubernetes.io/component=sentinel" \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'
}

master_pod() { echo "$REL-master-0"; }

# wait_identical TIMEOUT_S POD...: until /get-all (ids and messages) is the same on every pod.
wait_identical() {
  local timeout=$1 deadline pod ref cur same
  shift
  deadline=$((SECONDS + timeout))
  while :; do
    same=1
    ref=$(log_of "$1" 2>/dev/null) || ref=ERR
    for pod in "${@:2}"; do
      cur=$(log_of "$pod" 2>/dev/null) || cur=ERR
      if [[ $cur != "$ref" ]]; then same=0; break; fi
    done
    if ((same)) && [[ $ref != ERR ]]; then
      log "identical on $*: $(jq length <<<"$ref") entries"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      for pod in "$@"; do
        log "$pod: $(log_of "$pod" 2>&1 | jq -c '{entries: length, last: (last // null)}' 2>&1)"
      done
      return 1
    fi
    sleep 2
  done
}

# assert_contiguous POD: ids are exactly 1..N (no gap, no duplicate) and no message appears
# twice (every message the e2e scripts write is unique).
assert_contiguous() {
  local pod=$1
  log_of "$pod" | jq -e '. as $a | ($a | length) as $n
    | ([range(1; $n + 1)] == [$a[].id]) and (([$a[].message] | unique | length) == $n)' >/dev/null ||
    fail "$pod: ids are not exactly 1..N, or a message appears twice"
}
