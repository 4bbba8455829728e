#!/usr/bin/env bash
# `helm test` for rlog (templates/tests/test-pod.yaml runs it inside the rlog image).
#
# The runtime image is debian:bookworm-slim with no curl, so HTTP goes through bash's
# /dev/tcp: one request per connection, "Connection: close", the body read by Content-Length
# (or chunked, or up to EOF).
#
# 1. wait for the master's /readyz;
# 2. POST /insert one unique message with writeConcern = $WRITE_CONCERN (1 + sentinels by
#    default) and an idempotencyKey, so a retried insert never appends twice;
# 3. GET /messages?from=<its id>&limit=1 on the master and on every sentinel pod
#    ($SENTINEL_POD_PREFIX0..N-1.$SENTINEL_DOMAIN) must answer 200 and show the message (not
#    /get-all: on a long log that is large, or refused past http.get_all_max_bytes).
set -euo pipefail
export LC_ALL=C

: "${MASTER_HOST:?}" "${MASTER_PORT:?}" "${SENTINEL_COUNT:?}" "${SENTINEL_POD_PREFIX:?}"
: "${SENTINEL_DOMAIN:?}" "${SENTINEL_PORT:?}" "${WRITE_CONCERN:?}"
TIMEOUT_SECONDS=${TIMEOUT_SECONDS:-120}
READ_TIMEOUT=${READ_TIMEOUT:-15}

HTTP_STATUS=000
HTTP_BODY=

log() { printf '%s helm-test: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# http METHOD HOST PORT PATH [BODY]: sets HTTP_STATUS and HTTP_BODY; returns 1 when the
# connection fails or no status line arrives in time.
http() {
  local method=$1 host=$2 port=$3 path=$4 body=${5:-}
  local line len=-1 chunked=0 size chunk
  HTTP_STATUS=000
  HTTP_BODY=
  if ! exec 3<>"/dev/tcp/$host/$port"; then
    return 1
  fi
  printf '%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: rlog-helm-test\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$method" "$path" "$host" "$port" "${#body}" "$body" >&3
  if ! IFS= read -r -t "$READ_TIMEOUT" line <&3; then
    exec 3<&-
    return 1
  fi
  line=${line%$'\r'}
  read -r _ HTTP_STATUS _ <<<"$line"
  while IFS= read -r -t "$READ_TIMEOUT" line <&3; do
    line=${line%$'\r'}
    [[ -z $line ]] && break
    case "${line,,}" in
      content-length:*) len=${line#*:}; len=${len//[[:space:]]/} ;;
      transfer-encoding:*chunked*) chunked=1 ;;
    esac
  done
  if ((chunked)); then
    while IFS= read -r -t "$READ_TIMEOUT" size <&3; do
      size=${size%$'\r'}
      size=${size%%;*}
      ((16#$size == 0)) && break
      IFS= read -r -d '' -N "$((16#$size))" -t "$READ_TIMEOUT" chunk <&3 || true
      HTTP_BODY+=$chunk
      IFS= read -r -t "$READ_TIMEOUT" _ <&3 || true # the CRLF after the chunk
    done
  elif ((len > 0)); then
    IFS= read -r -d '' -N "$len" -t "$READ_TIMEOUT" HTTP_BODY <&3 || true
  elif ((len < 0)); then
    while IFS= read -r -t "$READ_TIMEOUT" line <&3; do HTTP_BODY+=$line$'\n'; done
    HTTP_BODY+=$line
  fi
  exec 3<&-
  return 0
}

deadline=$((SECONDS + TIMEOUT_SECONDS))
expired() { ((SECONDS >= deadline)); }

log "master $MASTER_HOST:$MASTER_PORT, $SENTINEL_COUNT sentinel(s) ${SENTINEL_POD_PREFIX}N.$SENTINEL_DOMAIN:$SENTINEL_PORT, writeConcern $WRITE_CONCERN"

until http GET "$MASTER_HOST" "$MASTER_PORT" /readyz && [[ $HTTP_STATUS == 200 ]]; do
  if expired; then
    log "FAIL: master /readyz never answered 200 (last status $HTTP_STATUS: $HTTP_BODY)"
    exit 1
  fi
  sleep 2
done
log "master is ready"

msg="helm-test-$(date -u +%Y%m%dT%H%M%S)-$RANDOM$RANDOM"
body=$(printf '{"message":"%s","writeConcern":%s,"idempotencyKey":"%s","timeoutMs":%d}' \
  "$msg" "$WRITE_CONCERN" "$msg" "$(((READ_TIMEOUT - 5) * 1000))")
until http POST "$MASTER_HOST" "$MASTER_PORT" /insert "$body" && [[ $HTTP_STATUS == 2?? ]]; do
  # 503 (read-only until a quorum is reachable), 400 (a sentinel not discovered yet, so the
  # writeConcern is larger than the cluster), 504 (an ack missing): retry until the deadline.
  if expired; then
    log "FAIL: POST /insert w=$WRITE_CONCERN never succeeded (last status $HTTP_STATUS: $HTTP_BODY)"
    exit 1
  fi
  log "insert answered $HTTP_STATUS ${HTTP_BODY:0:200}; retrying"
  sleep 2
done
log "inserted $msg with writeConcern $WRITE_CONCERN: $HTTP_STATUS ${HTTP_BODY:0:200}"
id_pattern='"id":[[:space:]]*([0-9]+)'
if [[ $HTTP_BODY =~ $id_pattern ]]; then
  id=${BASH_REMATCH[1]}
else
  log "FAIL: the insert's answer carries no id: $HTTP_BODY"
  exit 1
fi

targets=("$MASTER_HOST:$MASTER_PORT")
for ((i = 0; i < SENTINEL_COUNT; i++)); do
  targets+=("$SENTINEL_POD_PREFIX$i.$SENTINEL_DOMAIN:$SENTINEL_PORT")
done

failed=0
for target in "${targets[@]}"; do
  host=${target%:*}
  port=${target##*:}
  until http GET "$host" "$port" "/messages?from=$id&limit=1" &&
    [[ $HTTP_STATUS == 200 && $HTTP_BODY == *"\"$msg\""* ]]; do
    if expired; then
      log "FAIL: $target /messages?from=$id does not show $msg (status $HTTP_STATUS: ${HTTP_BODY:0:200})"
      failed=1
      break
    fi
    sleep 1
  done
  if [[ $HTTP_STATUS == 200 && $HTTP_BODY == *"\"$msg\""* ]]; then
    log "ok: $target holds $msg"
  fi
done

if ((failed)); then
  exit 1
fi
log "PASS: ${#targets[@]} node(s) hold the message written with writeConcern $WRITE_CONCERN"
