#!/usr/bin/env bash
# threads_inside.sh: issue 17's thread-scaling figures inside one task, as A/B
# runs of two snapshotted binaries (bench/ab_speed.sh: alternated, medians):
#   ProtoNet 20w5s q5, 1 episode per step, on 1 and on 2 threads (the scaling:
#   s/iter on 1 thread / s/iter on 2 threads, per binary), and MAML-2 5w1s q15
#   meta-batch 32 on 2 threads (one task per thread: no regression wanted).
# Output: the ab_speed lines and summaries in OUT_DIR/ab_*.jsonl, then one
# summary line per binary on stdout (and in OUT_DIR/scaling.jsonl).
#
# Usage: bench/threads_inside.sh [--reps 5] BASE_BIN FINAL_BIN [OUT_DIR]
#   (default OUT_DIR bench/results/threads17/rerun; env ML_DATA_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5
if [ "${1:-}" = --reps ]; then reps="$2"; shift 2; fi
[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 2; }
base="$1" final="$2" out="${3:-bench/results/threads17/rerun}"
mkdir -p "$out"
for run in protonet:20:5:5:1:1 protonet:20:5:5:1:2 maml:5:1:15:32:2; do
  iters=20 warm=3
  [ "${run%%:*}" = maml ] && iters=8 warm=2
  bash bench/ab_speed.sh --reps "$reps" --iters "$iters" --warmup "$warm" "$base" "$final" "$run" \
    > "$out/ab_${run//:/_}.jsonl"
done
python3 - "$out" <<'PY' | tee "$out/scaling.jsonl"
import json, sys
out = sys.argv[1]
def summ(run):
    return [json.loads(l) for l in open(f"{out}/ab_{run.replace(':', '_')}.jsonl")][-1]
p1, p2, m2 = summ("protonet:20:5:5:1:1"), summ("protonet:20:5:5:1:2"), summ("maml:5:1:15:32:2")
for b, name in (("A", "base"), ("B", "final")):
    k = f"{b}_seconds_per_iter"
    print(json.dumps({"bench": "threads_inside", "binary": name, "protonet_1ep_1thread_s": p1[k],
                      "protonet_1ep_2threads_s": p2[k], "protonet_1ep_scaling_2_vs_1": round(p1[k] / p2[k], 3),
                      "maml2_mb32_2threads_s": m2[k],
                      "load1_medians": [p1["load1_median"], p2["load1_median"], m2["load1_median"]]}))
PY
