#!/usr/bin/env bash
# Checks the TLS Secret in a render of the chart (tls.enabled, no existingSecret): tls.crt chains
# to its CA, carries NAME as a DNS subjectAltName, and allows both server and client
# authentication (sentinels present it as servers), and tls.key is its key; with MASTER_NAME,
# master.crt chains to the CA, carries MASTER_NAME, allows client authentication, and
# master.key is its key. rlog itself accepting such files is checked by
# tests/process/test_tls.py with openssl-made certificates of the same shape.
# Usage: check-tls-secret.sh RENDER.yaml NAME [MASTER_NAME]
set -euo pipefail
render=$1 name=$2 master_name=${3:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$render" "$dir" <<'PY'
import base64, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "Secret"
        and d.get("type") == "kubernetes.io/tls"]
if len(docs) != 1:
    sys.exit(f"expected one kubernetes.io/tls Secret in the render, found {len(docs)}")
for key, value in docs[0]["data"].items():
    with open(f"{sys.argv[2]}/{key}", "wb") as f:
        f.write(base64.b64decode(value))
PY
cd "$dir"
openssl verify -CAfile ca.crt tls.crt
openssl x509 -in tls.crt -noout -checkhost "$name" | grep -q "does match"
eku=$(openssl x509 -in tls.crt -noout -ext extendedKeyUsage)
grep -q "TLS Web Server Authentication" <<<"$eku"
grep -q "TLS Web Client Authentication" <<<"$eku"
[[ $(openssl x509 -in tls.crt -noout -pubkey) == $(openssl pkey -in tls.key -pubout) ]]
echo "tls.crt: chains to its CA, names $name, server+client auth, key matches"
if [[ -n $master_name ]]; then
  openssl verify -CAfile ca.crt master.crt
  openssl x509 -in master.crt -noout -checkhost "$master_name" | grep -q "does match"
  openssl x509 -in master.crt -noout -ext extendedKeyUsage | grep -q "TLS Web Client Authentication"
  [[ $(openssl x509 -in master.crt -noout -pubkey) == $(openssl pkey -in master.key -pubout) ]]
  echo "master.crt: chains to its CA, names $master_name, client auth, key matches"
fi
