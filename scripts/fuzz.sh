#!/usr/bin/env bash
# Builds the fuzz targets of tests/fuzz with clang + libFuzzer (+ ASan, UBSan) into build-fuzz/
# and runs each for FUZZ_SECONDS (default 60), starting from the committed corpus.
#   usage: scripts/fuzz.sh [target...]        (default: every target)
#   FUZZ_SECONDS=600 scripts/fuzz.sh wal_recovery_fuzz
# New inputs that reach new code are kept in build-fuzz/corpus/<target>/ (not committed; to keep
# one, `<target> -merge=1 tests/fuzz/corpus/<target> build-fuzz/corpus/<target>`). A failure
# leaves its input in build-fuzz/artifacts/<target>/ and this script exits non-zero: add that file
# to tests/fuzz/corpus/<target>/ with the fix, so the replay test (ctest -L fuzz) keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --with-fuzz
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=()
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi
seconds=${FUZZ_SECONDS:-60}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRLOG_FUZZ=ON -DRLOG_BUILD_TESTS=OFF -DRLOG_WERROR=OFF >/dev/null
ninja -C build-fuzz "${targets[@]}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
  echo "fuzz: $t for ${seconds}s"
  if ! "build-fuzz/tests/fuzz/$t" -max_total_time="$seconds" -max_len="${FUZZ_MAX_LEN:-4096}" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t/" \
    "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t"; then
    failed+=("$t")
  fi
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in build-fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no failure in ${seconds}s each"
