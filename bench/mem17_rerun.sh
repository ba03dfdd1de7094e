#!/usr/bin/env bash
# Memory round 2 (issue 17), the figures of docs/results.md "Memory round 2",
# rerun for two binaries: peak resident memory of the headline runs (both
# binaries, with the checkpoint hashes) and the speed A/B (bench/ab_speed.sh,
# alternated, medians) on MAML-2 mb32 2 threads and ProtoNet 20w5s 1 episode
# on 1 and 2 threads. Meant for a quiet machine.
#
# Usage: bench/mem17_rerun.sh [--reps 5] BASE_BIN FINAL_BIN [OUT_DIR]
#   OUT_DIR default bench/results/mem17/rerun; env: ML_DATA_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5
if [ "${1:-}" = --reps ]; then reps="$2"; shift 2; fi
[ $# -ge 2 ] || { sed -n '2,10p' "$0"; exit 2; }
base="$1" final="$2" out="${3:-bench/results/mem17/rerun}"
mkdir -p "$out"
headline=(maml:5:1:15:32:2 maml:5:1:15:32:1 protonet:20:5:5:1:2 protonet:20:5:5:1:1)
METALEARN="$base" bash bench/memory_omniglot.sh --label base "${headline[@]}" > "$out/memory.jsonl"
METALEARN="$final" bash bench/memory_omniglot.sh --label final "${headline[@]}" >> "$out/memory.jsonl"
uptime > "$out/uptime.txt"
bash bench/ab_speed.sh --reps "$reps" --iters 10 "$base" "$final" maml:5:1:15:32:2 > "$out/ab_maml2_mb32_t2.jsonl"
bash bench/ab_speed.sh --reps "$reps" --iters 30 "$base" "$final" protonet:20:5:5:1:1 > "$out/ab_protonet_t1.jsonl"
bash bench/ab_speed.sh --reps "$reps" --iters 30 "$base" "$final" protonet:20:5:5:1:2 > "$out/ab_protonet_t2.jsonl"
uptime >> "$out/uptime.txt"
grep -h summary "$out"/ab_*.jsonl
