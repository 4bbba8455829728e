#!/usr/bin/env bash
# Installs what rlog needs to build, test and run on Debian bookworm. Idempotent: packages that
# are already present are skipped, and apt-get runs only when something is missing.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build ccache pkg-config git
  libpistache-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  prometheus-cpp-dev libyaml-cpp-dev nlohmann-json3-dev libsimdjson-dev libcli11-dev libspdlog-dev
  libc-ares-dev libgtest-dev libgmock-dev libssl-dev zlib1g-dev libgoogle-perftools-dev
)
# Process-level tests: a real HTTP client, a real DNS server, a real Prometheus, openssl to make
# the certificates of the TLS tests.
test_pkgs=(python3 python3-pytest python3-pytest-timeout python3-requests curl dnsmasq-base prometheus shellcheck yamllint
  openssl)

# Fuzzing (scripts/fuzz.sh): clang and its libFuzzer runtime.
fuzz_pkgs=(clang libclang-rt-14-dev)

want=("${build_pkgs[@]}")
for arg in "$@"; do
  case $arg in
    --with-tests) want+=("${test_pkgs[@]}") ;;
    --with-fuzz) want+=("${fuzz_pkgs[@]}") ;;
    *)
      echo "usage: $0 [--with-tests] [--with-fuzz]" >&2
      exit 2
      ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: everything is already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
