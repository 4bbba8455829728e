#!/usr/bin/env bash
# On failure: everything worth reading about the cluster and every rlog pod.
set -uo pipefail
echo "::group::kubectl get all,pvc,networkpolicy,pdb -A"
kubectl get all,pvc,networkpolicy,pdb -A -o wide
echo "::endgroup::"
echo "::group::events"
kubectl get events -A --sort-by=.lastTimestamp
echo "::endgroup::"
for ns in $(kubectl get pods -A -l app.kubernetes.io/name=rlog -o jsonpath='{range .items[*]}{.metadata.namespace}{"\n"}{end}' | sort -u) default; do
  for pod in $(kubectl get pods -n "$ns" -o name); do
    echo "::group::$ns $pod describe"
    kubectl describe -n "$ns" "$pod"
    echo "::endgroup::"
    echo "::group::$ns $pod logs"
    kubectl logs -n "$ns" "$pod" --all-containers --prefix --timestamps --tail=-1
    kubectl logs -n "$ns" "$pod" --all-containers --prefix --timestamps --previous --tail=-1 2>/dev/null
    echo "::endgroup::"
  done
done
if [[ -n ${E2E_TMP:-} && -d $E2E_TMP ]]; then
  for f in "$E2E_TMP"/*; do
    [[ -f $f ]] || continue
    echo "::group::$f"
    tail -n 200 "$f"
    echo "::endgroup::"
  done
fi
exit 0
