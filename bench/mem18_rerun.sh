#!/usr/bin/env bash
# Memory round 3 (issue 17), the figures of docs/results.md "Memory round 3",
# rerun for two binaries: peak resident memory of MAML-2 5w1s q15 mb32 on 2
# and 1 threads (base; final by default and with --low-memory; checkpoint
# hashes in every line) and the speed A/B (bench/ab_speed.sh, alternated,
# medians) of MAML-2 mb32 on 2 threads, final by default and with
# --low-memory. Meant for a quiet machine.
#
# Usage: bench/mem18_rerun.sh [--reps 5] BASE_BIN FINAL_BIN [OUT_DIR]
#   OUT_DIR default bench/results/mem18/rerun; env: ML_DATA_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5
if [ "${1:-}" = --reps ]; then reps="$2"; shift 2; fi
[ $# -ge 2 ] || { sed -n '2,11p' "$0"; exit 2; }
base="$1" final="$2" out="${3:-bench/results/mem18/rerun}"
mkdir -p "$out"
headline=(maml:5:1:15:32:2 maml:5:1:15:32:1)
METALEARN="$base" bash bench/memory_omniglot.sh --label base "${headline[@]}" > "$out/memory.jsonl"
METALEARN="$final" bash bench/memory_omniglot.sh --label final "${headline[@]}" >> "$out/memory.jsonl"
TRAIN_ARGS=--low-memory METALEARN="$final" bash bench/memory_omniglot.sh --label final_low_memory \
  "${headline[@]}" >> "$out/memory.jsonl"
uptime > "$out/uptime.txt"
bash bench/ab_speed.sh --reps "$reps" --iters 10 "$base" "$final" maml:5:1:15:32:2 > "$out/ab_maml2_mb32_t2.jsonl"
B_ARGS=--low-memory bash bench/ab_speed.sh --reps "$reps" --iters 10 "$base" "$final" maml:5:1:15:32:2 \
  > "$out/ab_maml2_mb32_t2_low_memory.jsonl"
uptime >> "$out/uptime.txt"
grep -h summary "$out"/ab_*.jsonl
