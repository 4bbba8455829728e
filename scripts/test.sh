#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit tests of each
# layer, the process-level suite against real binaries on 127.0.0.1, and the offline checks of
# the deployment files) through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --with-tests
werror=OFF
if [[ "${CI:-}" == "true" ]]; then werror=ON; fi
bash scripts/build.sh -DRLOG_WERROR="$werror"
cd build
ctest --output-on-failure --timeout 900 -j2 "$@"
