#!/usr/bin/env bash
# Offline validation of rlog's deployment artifacts: Helm chart, k8s/ manifests, values schema,
# GitHub workflows, Dockerfile and shell scripts. No cluster, no Docker engine, no network
# (except a one-time `npm ci` here when node_modules/ is missing).
#
# Every check runs when its tools are present and is reported as skipped otherwise; every
# check also proves it can fail, by rejecting a deliberately broken input (a "self-test").
# Exit status: 0 when nothing failed, 1 otherwise. With VALIDATE_REQUIRE=all a skipped check
# counts as a failure (the chart workflow sets it).
#
# Tools: node >= 18 with tests/offline/node_modules (npm ci), shellcheck, yamllint, python3,
# and either helm or go + Debian's golang-github-masterminds-sprig-dev and
# golang-github-ghodss-yaml-dev (tests/offline/helmrender), kubectl (optional: kustomize).
#   apt-get install nodejs npm shellcheck yamllint golang-go \
#     golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev
#   npm ci --prefix tests/offline
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
chart="$repo/helm/rlog"
cd "$repo" || exit 1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
started=$SECONDS
declare -a passed=() failed=() skipped=()

ok() { passed+=("$1"); printf 'PASS  %s\n' "$1"; }
bad() { failed+=("$1"); printf 'FAIL  %s\n' "$1"; }
skip() { skipped+=("$1 ($2)"); printf 'SKIP  %s: %s\n' "$1" "$2"; }
have() { command -v "$1" >/dev/null 2>&1; }

# run NAME CMD...: a positive check, output shown only on failure.
run() {
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    ok "$name"
  else
    sed 's/^/      /' "$tmp/out"
    bad "$name"
  fi
}

# selftest NAME CMD...: CMD is given broken input and must fail; passing it is a failure of
# the check itself.
selftest() {
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    sed 's/^/      /' "$tmp/out"
    bad "self-test: $name (broken input was accepted)"
  else
    ok "self-test: $name"
  fi
}

# --- tools -------------------------------------------------------------------------------
node_ok=0
if have node && [[ $(node -p 'process.versions.node.split(".")[0]') -ge 18 ]]; then
  if [[ ! -d $here/node_modules/kubernetes-models && -z ${VALIDATE_NO_INSTALL:-} ]] && have npm; then
    echo "installing the offline validation tools (npm ci in tests/offline)"
    (cd "$here" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) || true
  fi
  [[ -d $here/node_modules/kubernetes-models ]] && node_ok=1
fi
renderer=
if have helm; then
  renderer=helm
elif have go && [[ -d /usr/share/gocode/src/github.com/Masterminds/sprig && -d /usr/share/gocode/src/github.com/ghodss/yaml ]]; then
  renderer=helmrender
fi
need_node() { ((node_ok)) || { skip "$1" "node >= 18 and tests/offline/node_modules (npm ci --prefix tests/offline)"; return 1; }; }

# --- shellcheck: every *.sh in the repository ----------------------------------------------
if have shellcheck; then
  mapfile -t scripts < <(find . -name '*.sh' -type f -not -path './.git/*' -not -path '*/node_modules/*' \
    -not -path './build*' -not -path '*/.cache/*' | sort)
  run "shellcheck: ${#scripts[@]} scripts" shellcheck -x -P SCRIPTDIR "${scripts[@]}"
  cat >"$tmp/bad.sh" <<'EOF'
#!/bin/bash
files=$(ls *.txt)
rm $files
cd $1
EOF
  selftest "shellcheck rejects unquoted expansions" shellcheck "$tmp/bad.sh"
else
  skip "shellcheck" "apt-get install shellcheck"
fi

# --- yamllint: the YAML files that are plain YAML (not Go templates) -----------------------
# Chart files with chart-testing's own lintconf (what `ct lint` runs), everything else with
# yamllint's defaults minus line length and document start.
cat >"$tmp/ct-lintconf.yaml" <<'EOF'
rules:
  braces: {min-spaces-inside: 0, max-spaces-inside: 0, min-spaces-inside-empty: -1, max-spaces-inside-empty: -1}
  brackets: {min-spaces-inside: 0, max-spaces-inside: 0, min-spaces-inside-empty: -1, max-spaces-inside-empty: -1}
  colons: {max-spaces-before: 0, max-spaces-after: 1}
  commas: {max-spaces-before: 0, min-spaces-after: 1, max-spaces-after: 1}
  comments: {require-starting-space: true, min-spaces-from-content: 2}
  document-end: disable
  document-start: disable
  empty-lines: {max: 2, max-start: 0, max-end: 0}
  hyphens: {max-spaces-after: 1}
  indentation: {spaces: consistent, indent-sequences: whatever, check-multi-line-strings: false}
  key-duplicates: enable
  line-length: disable
  new-line-at-end-of-file: enable
  new-lines: {type: unix}
  trailing-spaces: enable
  truthy: {level: warning}
EOF
cat >"$tmp/yamllint.yaml" <<'EOF'
extends: default
rules:
  comments: {require-starting-space: true, min-spaces-from-content: 1}
  document-start: disable
  line-length: disable
  truthy: {check-keys: false}
  indentation: {spaces: consistent, indent-sequences: whatever, check-multi-line-strings: false}
EOF
if have yamllint; then
  mapfile -t chart_yamls < <(ls "$chart"/Chart.yaml "$chart"/values.yaml "$chart"/ci/*.yaml)
  run "yamllint (chart-testing lintconf): ${#chart_yamls[@]} chart files" \
    yamllint -c "$tmp/ct-lintconf.yaml" "${chart_yamls[@]}"
  mapfile -t yamls < <(ls k8s/*.yaml .github/workflows/*.yml .github/ct.yaml 2>/dev/null)
  run "yamllint: ${#yamls[@]} manifests and workflows" yamllint -s -c "$tmp/yamllint.yaml" "${yamls[@]}"
  printf 'a: 1\nb: 2\na: 3\n' >"$tmp/dup.yaml"
  selftest "yamllint rejects duplicate keys" yamllint -c "$tmp/ct-lintconf.yaml" "$tmp/dup.yaml"
else
  skip "yamllint" "apt-get install yamllint"
fi

# --- chart templates: structure ------------------------------------------------------------
if need_node "template structure"; then
  mapfile -t templates < <(find "$chart/templates" -type f | sort)
  run "template structure: ${#templates[@]} templates balanced" node "$here/check-templates.mjs" "${templates[@]}"
  printf '{{- if .Values.a }}\nkind: X\n{{- with .Values.b }}\n{{ . }}\n{{- end }}\n' >"$tmp/bad.tpl"
  selftest "template structure rejects a missing {{ end }}" node "$here/check-templates.mjs" "$tmp/bad.tpl"
fi

# --- values.schema.json ----------------------------------------------------------------------
if need_node "values schema"; then
  run "values schema: values.yaml and ci/*-values.yaml" \
    node "$here/validate-values.mjs" "$chart/values.schema.json" "$chart/values.yaml" "$chart"/ci/*.yaml
  printf 'sentinel:\n  replicas: -1\n' >"$tmp/bad-count.yaml"
  selftest "values schema rejects sentinel.replicas: -1" \
    node "$here/validate-values.mjs" "$chart/values.schema.json" "$chart/values.yaml" "$tmp/bad-count.yaml"
  printf 'master:\n  persistance:\n    enabled: true\n' >"$tmp/bad-key.yaml"
  selftest "values schema rejects a misspelt key (master.persistance)" \
    node "$here/validate-values.mjs" "$chart/values.schema.json" "$chart/values.yaml" "$tmp/bad-key.yaml"
fi

# --- render the chart ------------------------------------------------------------------------
rendered=()
if [[ -n $renderer ]]; then
  render() { RLOG_RENDERER=$renderer "$here/render-chart.sh" "$@"; }
  if render >"$tmp/render-default.yaml" 2>"$tmp/render.err"; then
    rendered+=("$tmp/render-default.yaml")
    ok "render ($renderer): default values"
  else
    sed 's/^/      /' "$tmp/render.err"
    bad "render ($renderer): default values"
  fi
  for f in "$chart"/ci/*-values.yaml; do
    n=$(basename "$f" .yaml)
    if render -f "$f" >"$tmp/render-$n.yaml" 2>"$tmp/render.err"; then
      rendered+=("$tmp/render-$n.yaml")
      ok "render ($renderer): ci/$n.yaml"
    else
      sed 's/^/      /' "$tmp/render.err"
      bad "render ($renderer): ci/$n.yaml"
    fi
  done
  render --skip-tests >"$tmp/render-notests.yaml" 2>"$tmp/render.err" || bad "render ($renderer): --skip-tests"
  if [[ $renderer == helmrender ]]; then
    run "render (helmrender): NOTES.txt" render --notes -f "$chart/ci/monitoring-values.yaml"
    for f in "$chart/values.yaml" "$chart"/ci/*-values.yaml; do
      run "render (helmrender --strict, no missing value): $(basename "$f")" render --strict -f "$f"
    done
    run "render (helmrender --strict): NOTES.txt" render --strict --notes
    gap=(--set master.persistence.enabled=true --set master.persistence.whenDeleted=null)
    run "render (helmrender) without --strict tolerates a missing value" render "${gap[@]}"
    selftest "render --strict rejects a missing value" render --strict "${gap[@]}"
  fi
  if [[ $renderer == helm ]]; then
    run "helm lint --strict (defaults)" helm lint --strict "$chart"
    for f in "$chart"/ci/*-values.yaml; do
      run "helm lint --strict -f ci/$(basename "$f")" helm lint --strict "$chart" -f "$f"
    done
  fi
  # Self-test: a copy of the chart with a call to an unknown function must not render.
  cp -r "$chart" "$tmp/badchart"
  printf 'kind: ConfigMap\nmetadata:\n  name: {{ .Release.Name | nosuchfunction }}\n' >"$tmp/badchart/templates/bad.yaml"
  if [[ $renderer == helm ]]; then
    selftest "render rejects an unknown template function" helm template rlog "$tmp/badchart"
  else
    selftest "render rejects an unknown template function" \
      "$here/.cache/helmrender" --release rlog --namespace default "$tmp/badchart"
  fi
else
  skip "render the chart" "no helm, and no go + golang-github-masterminds-sprig-dev + golang-github-ghodss-yaml-dev"
fi

# --- the TLS Secret the chart makes (ci/tls-values.yaml) ------------------------------------
if [[ -s $tmp/render-tls-values.yaml ]] && have openssl; then
  run "TLS: the chart's Secret: tls.crt and master.crt chain to its CA and carry their names" \
    bash "$here/check-tls-secret.sh" "$tmp/render-tls-values.yaml" rlog-sentinel rlog-master
  selftest "TLS check rejects a certificate for another name" \
    bash "$here/check-tls-secret.sh" "$tmp/render-tls-values.yaml" rlog-elsewhere
  selftest "TLS check rejects a master certificate for another name" \
    bash "$here/check-tls-secret.sh" "$tmp/render-tls-values.yaml" rlog-sentinel rlog-elsewhere
  if render --set tls.enabled=true --set tls.existingSecret=my-tls >"$tmp/render-tls-existing.yaml" 2>&1 &&
    ! grep -q 'kind: Secret' "$tmp/render-tls-existing.yaml" &&
    [[ $(grep -c 'secretName: my-tls' "$tmp/render-tls-existing.yaml") -eq 2 ]]; then
    ok "TLS: with tls.existingSecret both StatefulSets mount it and the chart makes no Secret"
  else
    bad "TLS: with tls.existingSecret both StatefulSets mount it and the chart makes no Secret"
  fi
  if grep -q 'TLS_SERVER_NAME' "$tmp/render-default.yaml"; then
    bad "TLS: the default render has no TLS settings"
  else
    ok "TLS: the default render has no TLS settings"
  fi
else
  skip "the chart's TLS Secret" "no render of ci/tls-values.yaml, or no openssl"
fi

# --- metrics.prometheusRule: the rules of files/alerts.yaml, as they are ----------------------
if [[ -s $tmp/render-monitoring-values.yaml ]] && have python3; then
  # shellcheck disable=SC2317  # called through run and selftest
  check_rule() { # RENDER: its PrometheusRule holds exactly the groups of files/alerts.yaml
    python3 - "$1" "$chart/files/alerts.yaml" <<'PY'
import sys, yaml
rules = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "PrometheusRule"]
want = yaml.safe_load(open(sys.argv[2]))["groups"]
assert len(rules) == 1, f"{len(rules)} PrometheusRule(s)"
assert rules[0]["spec"]["groups"] == want, "the PrometheusRule's groups differ from alerts.yaml"
PY
  }
  run "metrics.prometheusRule: a PrometheusRule with exactly the groups of files/alerts.yaml" \
    check_rule "$tmp/render-monitoring-values.yaml"
  selftest "PrometheusRule check rejects a render without one" check_rule "$tmp/render-default.yaml"
fi

# --- sentinel.replicas does not restart the master -----------------------------------------
if [[ -s $tmp/render-default.yaml ]] && have python3; then
  master_of() { # RENDER: the master StatefulSet, as YAML
    python3 -c 'import sys, yaml; print(yaml.safe_dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "StatefulSet" and d["metadata"]["name"].endswith("-master")]))' "$1"
  }
  if render --set sentinel.replicas=3 >"$tmp/render-3.yaml" 2>&1 &&
    [[ $(master_of "$tmp/render-default.yaml") == "$(master_of "$tmp/render-3.yaml")" ]] &&
    grep -q 'expected-sentinels: "3"' "$tmp/render-3.yaml"; then
    ok "sentinel.replicas changes the membership ConfigMap, not the master's pod template"
  else
    bad "sentinel.replicas changes the membership ConfigMap, not the master's pod template"
  fi
  # Self-test: the comparison sees a change of the master's pod template.
  if render --set master.terminationGracePeriodSeconds=31 >"$tmp/render-grace.yaml" 2>&1 &&
    [[ $(master_of "$tmp/render-default.yaml") != "$(master_of "$tmp/render-grace.yaml")" ]]; then
    ok "self-test: the master comparison sees a changed pod template"
  else
    bad "self-test: the master comparison sees a changed pod template"
  fi
fi

# --- master.inMemory: the master without DATA_DIR (the kind acceptance scenario uses it) ----
if [[ -s $tmp/render-default.yaml ]]; then
  if [[ $(grep -c 'name: DATA_DIR' "$tmp/render-default.yaml") -eq 2 ]] &&
    render --set master.inMemory=true >"$tmp/render-inmemory.yaml" 2>&1 &&
    [[ $(grep -c 'name: DATA_DIR' "$tmp/render-inmemory.yaml") -eq 1 ]] &&
    [[ $(grep -c 'volumeClaimTemplates:' "$tmp/render-inmemory.yaml") -eq 1 ]]; then
    ok "master.inMemory=true drops the master's DATA_DIR and volume claim (the sentinels keep theirs)"
  else
    bad "master.inMemory=true drops the master's DATA_DIR and volume claim (the sentinels keep theirs)"
  fi
fi

# --- Kubernetes schemas (kubernetes-models 4.x) + policy, for every render -----------------
if need_node "Kubernetes schemas of the chart renders"; then
  if ((${#rendered[@]})); then
    run "Kubernetes schemas + policy: chart renders (${#rendered[@]} scenarios, hooks included)" \
      node "$here/validate-manifests.mjs" --policy "${rendered[@]}"
  else
    skip "Kubernetes schemas of the chart renders" "the chart could not be rendered"
  fi
  cat >"$tmp/good-manifest.yaml" <<'EOF'
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: plain
spec:
  replicas: 2
  serviceName: plain
  selector:
    matchLabels: {app: plain}
  template:
    metadata:
      labels: {app: plain}
    spec:
      containers:
        - name: c
          image: x
          readinessProbe:
            httpGet: {path: /readyz, port: 8080}
EOF
  run "Kubernetes schemas accept a plain StatefulSet" node "$here/validate-manifests.mjs" "$tmp/good-manifest.yaml"
  sed 's/replicas: 2/replicas: two/' "$tmp/good-manifest.yaml" >"$tmp/bad-type.yaml"
  selftest "Kubernetes schemas reject a wrong type (replicas: two)" node "$here/validate-manifests.mjs" "$tmp/bad-type.yaml"
  sed 's/readinessProbe/readinesProbe/' "$tmp/good-manifest.yaml" >"$tmp/bad-field.yaml"
  selftest "Kubernetes schemas reject an unknown field (readinesProbe)" node "$here/validate-manifests.mjs" "$tmp/bad-field.yaml"
  selftest "policy rejects a pod without the restricted security context" \
    node "$here/validate-manifests.mjs" --policy "$tmp/good-manifest.yaml"
fi

# --- k8s/: kustomize, schemas, identical to the default render -------------------------------
if need_node "k8s/ manifests"; then
  if have kubectl && kubectl kustomize k8s/ >"$tmp/k8s.yaml" 2>"$tmp/kustomize.err"; then
    how="kubectl kustomize"
  elif have kubectl; then
    sed 's/^/      /' "$tmp/kustomize.err"
    bad "kubectl kustomize k8s/"
    how=
  else
    how="kustomize-lite (no kubectl)"
    node -e "import('$here/lib.mjs').then(m => { for (const o of m.kustomizeLite('k8s')) process.stdout.write('---\n' + JSON.stringify(o) + '\n'); })" >"$tmp/k8s.yaml" ||
      { bad "kustomize-lite k8s/"; how=; }
  fi
  if [[ -n $how ]]; then
    run "Kubernetes schemas + policy: k8s/ ($how)" node "$here/validate-manifests.mjs" --policy "$tmp/k8s.yaml"
    run "k8s/ ($how) equals the kustomization's files" node "$here/compare-manifests.mjs" "$tmp/k8s.yaml" k8s
    if [[ -s $tmp/render-notests.yaml ]]; then
      run "k8s/ is identical to the chart's default render ($renderer --skip-tests)" \
        node "$here/compare-manifests.mjs" "$tmp/render-notests.yaml" "$tmp/k8s.yaml"
    else
      skip "k8s/ identical to the chart's default render" "the chart could not be rendered"
    fi
    sed 's/maxUnavailable: 1/maxUnavailable: 2/' "$tmp/k8s.yaml" >"$tmp/k8s-changed.yaml"
    selftest "k8s/ comparison notices a changed field" node "$here/compare-manifests.mjs" "$tmp/k8s.yaml" "$tmp/k8s-changed.yaml"
  fi
fi

# --- Grafana dashboard -------------------------------------------------------------------------
if need_node "dashboard"; then
  dash_render=()
  if [[ -s $tmp/render-monitoring-values.yaml ]]; then dash_render=("$tmp/render-monitoring-values.yaml"); fi
  run "dashboard: rlog.json has a PromQL expr per panel${dash_render:+, shipped unchanged in the grafana_dashboard ConfigMap}" \
    node "$here/check-dashboard.mjs" "$chart/dashboards/rlog.json" "${dash_render[@]}"
  printf '{"title": "x", "panels": [{"title": "p", "targets": [{}]}]}' >"$tmp/bad-dashboard.json"
  selftest "dashboard check rejects a panel without a query" node "$here/check-dashboard.mjs" "$tmp/bad-dashboard.json"
fi

# --- GitHub workflows --------------------------------------------------------------------------
if need_node "workflows"; then
  run "workflows: action-validator schema, SHA pins, permissions, timeouts" \
    node "$here/check-workflows.mjs" .github/workflows/*.yml
  cat >"$tmp/good-workflow.yml" <<'EOF'
name: good
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - run: echo hi
EOF
  run "workflow check accepts a minimal pinned workflow" node "$here/check-workflows.mjs" "$tmp/good-workflow.yml"
  sed 's/@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2/@v4/' "$tmp/good-workflow.yml" >"$tmp/unpinned.yml"
  selftest "workflow check rejects an action pinned to a tag" node "$here/check-workflows.mjs" "$tmp/unpinned.yml"
  sed 's/contents: read/contents: write/' "$tmp/good-workflow.yml" >"$tmp/write.yml"
  selftest "workflow check rejects write permissions" node "$here/check-workflows.mjs" "$tmp/write.yml"
  sed 's/runs-on:/runz-on:/' "$tmp/good-workflow.yml" >"$tmp/badkey.yml"
  selftest "workflow check rejects a misspelt job key (action-validator schema)" node "$here/check-workflows.mjs" "$tmp/badkey.yml"
  printf 'on: push\njobs:\n  x:\n    steps: 3\n' >"$tmp/bad-schema.yml"
  selftest "action-validator CLI rejects a malformed workflow" \
    node "$here/node_modules/@action-validator/cli/cli.mjs" "$tmp/bad-schema.yml"
  for wf in .github/workflows/*.yml; do
    run "action-validator CLI: $wf" node "$here/node_modules/@action-validator/cli/cli.mjs" "$wf"
  done
fi

# --- Dockerfile ---------------------------------------------------------------------------------
if need_node "Dockerfile"; then
  run "Dockerfile: dockerfile-utils lint + bookworm stages, USER 65532, no -dev at run time" \
    node "$here/check-dockerfile.mjs" Dockerfile
  printf 'FROM ubuntu:latest\nRUNN make\nUSER root\nENTRYPOINT ["/bin/sh"]\n' >"$tmp/Dockerfile.bad"
  selftest "Dockerfile check rejects a bad instruction, root user, wrong base" \
    node "$here/check-dockerfile.mjs" "$tmp/Dockerfile.bad"
fi

if have python3; then
  run ".dockerignore keeps what the image's build and unit tests read (docs/CONFIGURATION.md)" \
    python3 "$here/check-dockerignore.py" "$repo"
  sed 's|^!docs/CONFIGURATION.md$||; s|^docs/\*$|docs/|' .dockerignore >"$tmp/dockerignore.bad"
  selftest ".dockerignore check rejects a context without docs/CONFIGURATION.md" \
    python3 "$here/check-dockerignore.py" "$repo" "$tmp/dockerignore.bad"
else
  skip ".dockerignore" "python3"
fi

# --- the helm test script, against a fake rlog -------------------------------------------------
if have python3; then
  run "helm test script: passes on a good fake cluster, fails on a lagging one" \
    bash "$here/test-helm-test-script.sh"
else
  skip "helm test script" "python3"
fi

# --- the kind end-to-end scripts, dry-run against a fake cluster ----------------------------
if have python3 && have jq && have curl; then
  run "e2e scripts (dry run on a fake cluster): pass on a good one, fail on reorder/loss/wrong id" \
    bash "$here/test-e2e-scripts.sh"
else
  skip "e2e scripts dry run" "python3, jq and curl"
fi

# --- summary ------------------------------------------------------------------------------------
echo
echo "validate.sh: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped in $((SECONDS - started))s"
echo "renderer: ${renderer:-none}${renderer:+ ($([[ $renderer == helm ]] && helm version --short 2>/dev/null || echo 'tests/offline/helmrender: Go text/template + sprig, not Helm itself'))}"
if ((${#skipped[@]})); then
  echo "NOT checked:"
  printf '  - %s\n' "${skipped[@]}"
fi
echo "never checked here: a real 'helm template'/'helm install' unless helm is on PATH; a Docker build;"
echo "  a Kubernetes API server (the GitHub workflows chart.yml and e2e-kind.yml do those)."
if ((${#failed[@]})); then
  echo "FAILED:"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
if [[ ${VALIDATE_REQUIRE:-} == all ]] && ((${#skipped[@]})); then
  echo "VALIDATE_REQUIRE=all and some checks were skipped"
  exit 1
fi
exit 0
