#!/usr/bin/env bash
# Renders helm/rlog like `helm template rlog helm/rlog --namespace default [ARGS...]`.
# Uses the real helm when it is on PATH (GitHub Actions); otherwise tests/offline/helmrender,
# a stand-in built from Debian's Go and sprig packages (see helmrender/main.go for what it does
# and does not do). Exits 3 when neither is available.
# ARGS: --skip-tests, -f FILE, --set K=V, --release NAME, --namespace NS; helmrender only:
# --notes (print NOTES.txt), --strict (a missing value is an error, as in helm lint --strict).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
chart="$repo/helm/rlog"

release=rlog
namespace=default
args=()
notes=0
strict=0
while (($#)); do
  case $1 in
    --release) release=$2; shift 2 ;;
    --namespace) namespace=$2; shift 2 ;;
    -f | --set) args+=("$1" "$2"); shift 2 ;;
    --skip-tests) args+=("$1"); shift ;;
    --notes) notes=1; shift ;;
    --strict) strict=1; shift ;;
    *) echo "render-chart.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

renderer=${RLOG_RENDERER:-auto}
if [[ $renderer == auto ]]; then
  if command -v helm >/dev/null 2>&1; then renderer=helm; else renderer=helmrender; fi
fi

if [[ $renderer == helm ]]; then
  if ((notes || strict)); then
    echo "render-chart.sh: --notes and --strict need helmrender (use helm install / helm lint --strict)" >&2
    exit 2
  fi
  exec helm template "$release" "$chart" --namespace "$namespace" "${args[@]}"
fi

bin="$here/.cache/helmrender"
if [[ ! -x $bin || $here/helmrender/main.go -nt $bin ]]; then
  if ! command -v go >/dev/null 2>&1 || [[ ! -d /usr/share/gocode/src/github.com/Masterminds/sprig ]]; then
    echo "render-chart.sh: no helm, and no go + sprig to build helmrender" \
      "(apt-get install golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev)" >&2
    exit 3
  fi
  mkdir -p "$here/.cache"
  (cd "$here/helmrender" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$here/.cache/go-build" \
    GOFLAGS='' go build -o "$bin" .)
fi
extra=()
if ((notes)); then extra+=(--notes); fi
if ((strict)); then extra+=(--strict); fi
exec "$bin" --release "$release" --namespace "$namespace" "${extra[@]}" "${args[@]}" "$chart"
