#!/usr/bin/env bash
# CLI test of the peak-memory benchmarks' shared part (bench/lib/peak_rss.sh,
# sourced by bench/rl_memory.sh and bench/memory_omniglot.sh): --help, no RUN
# (exit 2), and one tiny run each giving one JSON line in the scripts' format
# (keys in order, a peak and a checkpoint hash). Needs GNU time and bc (the
# bench packages of scripts/install-deps.sh): skipped without them.
set -u
BIN="$1"
NAME=bench_peak_rss
source "$(dirname "$0")/lib/common.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
if [ ! -x /usr/bin/time ] || ! command -v bc >/dev/null; then
  echo "SKIP: GNU time or bc missing (scripts/install-deps.sh --bench)"; echo "0 passed, 0 failed"; exit 77
fi
export METALEARN="$BIN"
expect "rl_memory --help" 0 "Usage: bench/rl_memory.sh" -- bash "$ROOT/bench/rl_memory.sh" --help
expect "memory_omniglot --help" 0 "Usage: bench/memory_omniglot.sh" -- bash "$ROOT/bench/memory_omniglot.sh" --help
expect "rl_memory without RUN" 2 "no RUN given" -- bash "$ROOT/bench/rl_memory.sh" --iters 1

# keys JSONLINE KEY...: the line is one JSON object with exactly these keys, in order
keys() {
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if list(j)==sys.argv[2:] and j["peak_mb"]>0 and len(j["checkpoint_sha256_12"])==12 else 1)' "$@"
}
expect "rl_memory bandit run" 0 "" -- bash "$ROOT/bench/rl_memory.sh" --iters 1 --label t fomaml:adam:1:bandit:5
line=$(cat "$TMP/out")
if [ "$(wc -l < "$TMP/out")" = 1 ] && keys "$line" bench label binary_sha256_12 env algo outer threads iters peak_mb \
     checkpoint_sha256_12 wall loadavg && grep -q '"label":"t",.*"env":"bandit:5","algo":"fomaml","outer":"adam","threads":1,"iters":1,' "$TMP/out"
then ok "rl_memory: one JSON line"; else bad "rl_memory line: $line"; fi

if [ -f "${ML_DATA_DIR:-../shared/data}/omniglot/images_background_small1.zip" ]; then
  expect "memory_omniglot tiny run" 0 "" -- bash "$ROOT/bench/memory_omniglot.sh" --iters 1 protonet:5:1:5:2:1
  line=$(cat "$TMP/out")
  if [ "$(wc -l < "$TMP/out")" = 1 ] && keys "$line" bench label binary_sha256_12 algo ways shots query meta_batch threads \
       iters peak_mb checkpoint_sha256_12 train_args wall loadavg; then ok "memory_omniglot: one JSON line"
  else bad "memory_omniglot line: $line"; fi
else skip "memory_omniglot: no Omniglot in ${ML_DATA_DIR:-../shared/data}"; fi
summary
