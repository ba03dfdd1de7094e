#!/usr/bin/env bash
# The test command (README): installs what is missing, builds, runs every test
# with CTest, then once more under AddressSanitizer + UndefinedBehaviorSanitizer,
# then replays every fuzz corpus and fuzzes each harness for a few seconds.
# Shared data (Omniglot) is looked up in $ML_DATA_DIR, default ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
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

# libFuzzer harnesses (tests/fuzz, clang): every seed corpus replayed, then each
# target fuzzed briefly from it with a fixed seed (new inputs go to a scratch
# folder, never into the committed corpus). Any crash, leak or sanitizer report
# fails the stage. ML_SKIP_FUZZ=1 skips it; ML_FUZZ_SECONDS sets the time per target.
if [ "${ML_SKIP_FUZZ:-0}" != "1" ]; then
  echo "== fuzz: corpus replay + ${ML_FUZZ_SECONDS:-5} s per target =="
  cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DML_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-fuzz -j"$jobs" --target fuzz_all >/dev/null
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  for bin in build-fuzz/tests/fuzz/fuzz_*; do
    t=${bin##*/fuzz_}
    mkdir -p "$scratch/$t"
    if ! "$bin" -runs=0 "tests/fuzz/corpus/$t" >"$scratch/$t.replay.log" 2>&1; then
      echo "fuzz_$t: corpus replay failed:"; tail -40 "$scratch/$t.replay.log"; exit 1
    fi
    if ! "$bin" -max_total_time="${ML_FUZZ_SECONDS:-5}" -seed=1 -artifact_prefix="$scratch/$t-" \
        "$scratch/$t" "tests/fuzz/corpus/$t" >"$scratch/$t.log" 2>&1; then
      echo "fuzz_$t: crash (input kept in $scratch):"; tail -40 "$scratch/$t.log"; trap - EXIT; exit 1
    fi
    echo "fuzz_$t: ok ($(grep -E '^#[0-9]+' "$scratch/$t.log" | tail -1 | awk '{print $1, $3, $4}'))"
  done
fi
