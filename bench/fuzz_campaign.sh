#!/usr/bin/env bash
# Long fuzzing campaigns: each libFuzzer harness of tests/fuzz runs from its
# committed seed corpus (copied into a scratch folder, so the committed one
# never changes) until N executions or T seconds, whichever comes first, on
# one core (no -jobs/-workers), with a fixed seed. One line per target:
#
#   target=png execs=1000000 cov=139 ft=512 corpus=210 seconds=74 crashes=0 exec_per_sec=13500
#
# cov / ft are libFuzzer's final edge coverage and feature counts; corpus is
# the scratch corpus size at the end; crashes counts crash/leak/timeout/oom
# artifacts (libFuzzer stops at the first one; it is kept in the scratch folder).
#
# usage: bench/fuzz_campaign.sh [--execs N] [--seconds T] [--build DIR] [--scratch DIR] [--seed S] [TARGET...]
#   defaults: --execs 1000000 --seconds 600 --build build-fuzz --scratch /tmp/ml_fuzz_campaign --seed 1
#   targets: every fuzz_* in DIR/tests/fuzz (names without the fuzz_ prefix)
# The fuzz build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DML_FUZZ=ON && cmake --build build-fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
execs=1000000 seconds=600 build=build-fuzz scratch=/tmp/ml_fuzz_campaign seed=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --execs) execs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --scratch) scratch=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "fuzz_campaign.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for b in "$build"/tests/fuzz/fuzz_*; do [ -x "$b" ] && targets+=("$(basename "$b" | sed 's/^fuzz_//')"); done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz_campaign.sh: no harnesses in $build/tests/fuzz (build with -DML_FUZZ=ON)" >&2
  exit 2
fi
mkdir -p "$scratch/bin"
# Binaries copied first, so a rebuild during a long campaign cannot change them.
for t in "${targets[@]}"; do cp "$build/tests/fuzz/fuzz_$t" "$scratch/bin/"; done
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for t in "${targets[@]}"; do
  dir="$scratch/$t"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$dir/corpus/"
  start=$(date +%s)
  rc=0
  "$scratch/bin/fuzz_$t" -runs="$execs" -max_total_time="$seconds" -seed="$seed" -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log.txt" 2>&1 || rc=$?
  secs=$(( $(date +%s) - start ))
  ran=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log.txt" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log.txt" | tail -1)
  last=$(grep -E '^#[0-9]+' "$dir/log.txt" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(find "$dir/corpus" -type f | wc -l)
  crashes=$(find "$dir/artifacts" -type f | wc -l)
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  [ "$crashes" -eq 0 ] || status=1
  echo "target=$t execs=${ran:-0} cov=${cov:-0} ft=${ft:-0} corpus=$corpus seconds=$secs crashes=$crashes exec_per_sec=${eps:-0}"
done
exit $status
