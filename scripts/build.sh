#!/usr/bin/env bash
# Configures and builds rlog into build/ (Ninja, ccache when present). Extra args go to CMake.
set -euo pipefail
cd "$(dirname "$0")/.."
build_type=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "$@" >/dev/null
ninja -C build
