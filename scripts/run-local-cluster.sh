#!/usr/bin/env bash
# Installs what is missing, builds, and runs a local three-node cluster in the foreground:
# master HTTP :8080, sentinels HTTP :8081/:8082 with gRPC :9091/:9092. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
bin=build/src/app/rlog

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped"
}
trap cleanup INT TERM EXIT

"$bin" --role sentinel --port 8081 --grpc-port 9091 --node-id sentinel-1 &
pids+=($!)
"$bin" --role sentinel --port 8082 --grpc-port 9092 --node-id sentinel-2 &
pids+=($!)
"$bin" --role master --port 8080 --node-id master --sentinels 127.0.0.1:9091,127.0.0.1:9092 &
pids+=($!)

for _ in $(seq 100); do
  curl -sf http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<'USAGE'

rlog is running: master http://127.0.0.1:8080, sentinels :8081 and :8082. Try:
  curl -s -X POST localhost:8080/insert -d '{"message": "hello", "writeConcern": 3}'
  curl -s localhost:8081/get-all
  curl -s localhost:8080/health
  curl -s 'localhost:8082/messages?from=1&limit=10&waitMs=5000'
Ctrl-C stops all three.
USAGE
wait
