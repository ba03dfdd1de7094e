#!/usr/bin/env bash
# scaling_inside.sh: issue 17's thread scaling when there is one task per step
# (the threads must work inside it), 1 vs 2 threads, as A/B of two binaries:
#   protonet    ProtoNet 20w5s q5, 1 episode per step: seconds per step
#               (median after 3 warm-up steps of 20, from log.jsonl)
#   supervised  Fashion-MNIST cnn4 (64 filters), batch 64, Adam 1e-3, one
#               shard (the default), first LIMIT images, 4 epochs: seconds
#               per step, median of epochs 2-4 (log.jsonl; the first warms up)
#   eval        `metalearn eval` of the zoo's ProtoNet run (meta-batch 1:
#               its episodes are evaluated one at a time, the threads
#               inside each) on 20-way 5-shot episodes of 15 queries per
#               class (400 images): seconds per episode = (wall time of
#               65 episodes - wall time of 5) / 60 (start-up and data
#               loading cancel)
# Every repetition runs, for each configuration, A and B on 1 and 2 threads,
# alternating which binary goes first, so load hits both alike. One JSON
# line per run, then per configuration and binary the median seconds on
# 1 and on 2 threads and the scaling (1-thread / 2-thread), in
# OUT_DIR/runs.jsonl and OUT_DIR/scaling.jsonl (also on stdout).
# --rt runs every measurement under `chrt -f 10` (root: SCHED_FIFO, so a
# loaded machine's other processes cannot preempt it; they still share the
# caches and the memory bus).
#
# Usage: bench/scaling_inside.sh [--reps 5] [--rt] [--only protonet,supervised,eval] [--limit 2048]
#                                BASE_BIN FINAL_BIN [OUT_DIR]
#   (default OUT_DIR bench/results/scale18/rerun; env ML_DATA_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/setup.sh
reps=5 rt=() only=protonet,supervised,eval limit=2048
while [ $# -gt 2 ] && [ "${1#--}" != "$1" ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --rt) rt=(chrt -f 10); shift ;;
    --only) only="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -ge 2 ] || { sed -n '2,27p' "$0"; exit 2; }
out="${3:-bench/results/scale18/rerun}"
mkdir -p "$out"
omniglot_zips
ab_copies "$1" "$2"
zoo=models/omniglot-protonet-30w1s
[ -f "$zoo/checkpoint.safetensors" ] || { echo "missing $zoo" >&2; exit 1; }

cfg_protonet() { # BIN THREADS -> seconds per step
  rm -rf "$tmp/run"
  "${rt[@]}" "$tmp/$1" train --algo protonet --dataset "omniglot:$zips" --ways 20 --shots 5 --query 5 --meta-batch 1 \
    --outer-lr 0.001 --iters 20 --threads "$2" --eval-tasks 0 --log-every 1 --checkpoint-every 1000000 --seed 1 \
    --quiet --out "$tmp/run" > /dev/null
  python3 -c 'import json, statistics, sys
el = [0.0] + [json.loads(l)["elapsed_s"] for l in open(sys.argv[1])]
print(round(statistics.median(el[i + 1] - el[i] for i in range(3, len(el) - 1)), 5))' "$tmp/run/log.jsonl"
}
cfg_supervised() { # BIN THREADS -> seconds per step, median of epochs 2-4
  rm -rf "$tmp/run"
  "${rt[@]}" "$tmp/$1" train --algo supervised --dataset fashion-mnist --model cnn4 --batch-size 64 --lr 1e-3 \
    --limit "$limit" --epochs 4 --threads "$2" --quiet --out "$tmp/run" > /dev/null
  python3 -c 'import json, statistics, sys
ep = [json.loads(l) for l in open(sys.argv[1])][1:]
print(round(statistics.median(e["seconds"] for e in ep) / (int(sys.argv[2]) // 64), 5))' "$tmp/run/log.jsonl" "$limit"
}
eval_wall() { # BIN THREADS EPISODES -> wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  "${rt[@]}" "$tmp/$1" eval "$zoo" --tasks "$3" --ways 20 --shots 5 --query 15 --steps 1 --lake-runs none \
    --threads "$2" --quiet --json > /dev/null
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)"
}
cfg_eval() { # BIN THREADS -> seconds per episode
  local short long
  short=$(eval_wall "$1" "$2" 5) long=$(eval_wall "$1" "$2" 65)
  python3 -c "print(round(($long - $short) / 60, 5))"
}
"$tmp/A" train --algo supervised --dataset fashion-mnist --epochs 1 --limit 128 --quiet --out "$tmp/probe" \
  > /dev/null 2>&1 || { echo "supervised: no Fashion-MNIST (apt-get install dataset-fashion-mnist): skipped" >&2; only="${only//supervised/}"; }

: > "$out/runs.jsonl"
for rep in $(seq 1 "$reps"); do
  for cfg in ${only//,/ }; do
    order="A B"; [ $((rep % 2)) -eq 0 ] && order="B A"
    for bin in $order; do
      for th in 1 2; do
        l0=$(cut -d' ' -f1 /proc/loadavg)
        s=$("cfg_$cfg" "$bin" "$th")
        echo "{\"bench\": \"scaling_inside\", \"config\": \"$cfg\", \"bin\": \"$bin\", \"threads\": $th, \"rep\": $rep, \"seconds\": $s, \"load1_at_start\": $l0}" \
          | tee -a "$out/runs.jsonl"
      done
    done
  done
done
python3 - "$out/runs.jsonl" "$(sha256sum "$tmp/A" | cut -c1-12)" "$(sha256sum "$tmp/B" | cut -c1-12)" "${#rt[@]}" \
  <<'PY' | tee "$out/scaling.jsonl"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sha = {"A": sys.argv[2], "B": sys.argv[3]}
for cfg in dict.fromkeys(r["config"] for r in rows):
    for b, name in (("A", "base"), ("B", "final")):
        med = {t: statistics.median(r["seconds"] for r in rows if r["config"] == cfg and r["bin"] == b and r["threads"] == t)
               for t in (1, 2)}
        loads = [r["load1_at_start"] for r in rows if r["config"] == cfg]
        print(json.dumps({"bench": "scaling_inside_summary", "config": cfg, "binary": name, "sha256_12": sha[b],
                          "realtime": sys.argv[4] != "0", "seconds_1thread": med[1], "seconds_2threads": med[2],
                          "scaling_2_vs_1": round(med[1] / med[2], 3), "load1_median": statistics.median(loads),
                          "reps": len([r for r in rows if r["config"] == cfg and r["bin"] == b and r["threads"] == 1])}))
PY
