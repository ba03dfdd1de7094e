#!/usr/bin/env bash
# Memory round 4 (issue 17), the figures of docs/results.md "Memory round 4",
# rerun for two binaries: peak resident memory (bench/memory_omniglot.sh, the
# checkpoint's sha256 in every line) of MAML-2 5w1s q15 at meta-batch 32 on 1,
# 2 and 3 threads and at meta-batch 8 and 64 on 2 threads, by default and with
# --low-memory, plus FOMAML and ProtoNet 20w5s (checkpoints only change if the
# episodes did); then the speed A/B (bench/ab_speed.sh, alternated, medians)
# of MAML-2 mb32 on 2 threads: final default vs base, final --low-memory vs
# base, final --low-memory vs final default. Meant for a quiet machine.
#
# Usage: bench/mem19_rerun.sh [--reps 3] [--skip-speed] BASE_BIN FINAL_BIN [OUT_DIR]
#   OUT_DIR default bench/results/mem19/rerun; env: ML_DATA_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
reps=3 speed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --skip-speed) speed=0; shift ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
base="$1" final="$2" out="${3:-bench/results/mem19/rerun}"
mkdir -p "$out"
maml=(maml:5:1:15:32:2 maml:5:1:15:32:1 maml:5:1:15:32:3 maml:5:1:15:8:2 maml:5:1:15:64:2)
others=(fomaml:5:1:15:32:2 protonet:20:5:5:1:2)
: > "$out/memory.jsonl"
for bin in base final; do
  b=$base; [ $bin = final ] && b=$final
  METALEARN="$b" bash bench/memory_omniglot.sh --label "$bin" "${maml[@]}" "${others[@]}" >> "$out/memory.jsonl"
  TRAIN_ARGS=--low-memory METALEARN="$b" bash bench/memory_omniglot.sh --label "${bin}_low_memory" "${maml[@]}" \
    >> "$out/memory.jsonl"
done
uptime > "$out/uptime.txt"
python3 - "$out/memory.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
key = lambda d: (d["algo"], d["ways"], d["shots"], d["query"], d["meta_batch"], d["threads"], d["train_args"])
base = {key(d): d for d in rows if d["label"].startswith("base")}
print("| run | args | base MB | final MB | checkpoint |")
print("| --- | --- | --- | --- | --- |")
for d in rows:
    if not d["label"].startswith("final"): continue
    b = base.get(key(d))
    run = "%s:%s:%s:%s:%s:%s" % key(d)[:6]
    same = "identical" if b and b["checkpoint_sha256_12"] == d["checkpoint_sha256_12"] else "DIFFERENT"
    print("| %s | %s | %s | %.1f | %s |" % (run, d["train_args"] or "default", b and "%.1f" % b["peak_mb"], d["peak_mb"], same))
PY
[ $speed = 1 ] || exit 0
bash bench/ab_speed.sh --reps "$reps" --iters 8 --warmup 2 "$base" "$final" maml:5:1:15:32:2 > "$out/ab_default.jsonl"
B_ARGS=--low-memory bash bench/ab_speed.sh --reps "$reps" --iters 8 --warmup 2 "$base" "$final" maml:5:1:15:32:2 \
  > "$out/ab_low_memory.jsonl"
B_ARGS=--low-memory bash bench/ab_speed.sh --reps "$reps" --iters 8 --warmup 2 "$final" "$final" maml:5:1:15:32:2 \
  > "$out/ab_low_memory_vs_default.jsonl"
uptime >> "$out/uptime.txt"
grep -h summary "$out"/ab_*.jsonl
