#!/usr/bin/env bash
# The test command (README): installs what is missing, builds, runs every test
# with CTest, then once more under AddressSanitizer + UndefinedBehaviorSanitizer.
# Shared data (Omniglot) is looked up in $ML_DATA_DIR, default ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

echo "== release build =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" 2>&1 | grep -E "warning|error" && { echo "build has warnings or errors"; exit 1; } || true
cmake --build build -j"$jobs" >/dev/null
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${ML_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== ASan + UBSan build =="
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DML_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs" >/dev/null
  # oneDNN and libgomp keep process-lifetime caches: not our leaks.
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow
fi
