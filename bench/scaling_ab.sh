#!/usr/bin/env bash
# scaling_ab.sh: A/B of two binaries on one task per step (issue 17, round 7),
# finer than bench/scaling_inside.sh: per run the median seconds per step to
# 5 decimals (log.jsonl's elapsed_s after 3 warm-up steps) and the run's CPU
# seconds (perf stat task-clock, all threads, start-up included), runs of A
# and B alternated (which goes first alternates too), each under
# `chrt -f 10` with --rt (root: SCHED_FIFO, so the other processes of a
# loaded machine do not preempt it; they still share caches and memory).
#   protonet    ProtoNet 20w5s q5, 1 episode per step, ITERS steps
#   supervised  Fashion-MNIST cnn4 batch 64, one shard, first 64 * ITERS images, 3 epochs
#               (seconds per step: median of epochs 2-3 / ITERS)
# Prints one JSON line per run and per (config, binary, threads) the medians.
# Usage: bench/scaling_ab.sh [--rt] [--reps 5] [--iters 40] [--threads "1 2"] [--only protonet,supervised]
#                            A_BIN B_BIN OUT_DIR      (env: ML_DATA_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/setup.sh
reps=5 iters=40 rt=() threads="1 2" only=protonet,supervised
while [ $# -gt 3 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --rt) rt=(chrt -f 10); shift ;;
    --threads) threads="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -eq 3 ] || { sed -n '2,14p' "$0"; exit 2; }
out="$3"
mkdir -p "$out"
omniglot_zips
ab_copies "$1" "$2"
run() { # CONFIG BIN THREADS REP
  rm -rf "$tmp/run"
  local cmd
  case "$1" in
    protonet) cmd=("$tmp/$2" train --algo protonet --dataset "omniglot:$zips" --ways 20 --shots 5 --query 5 --meta-batch 1
                   --outer-lr 0.001 --iters "$iters" --threads "$3" --eval-tasks 0 --log-every 1 --checkpoint-every 1000000
                   --seed 1 --quiet --out "$tmp/run") ;;
    supervised) cmd=("$tmp/$2" train --algo supervised --dataset fashion-mnist --model cnn4 --batch-size 64 --lr 1e-3
                     --limit $((64 * iters)) --epochs 3 --threads "$3" --quiet --out "$tmp/run") ;;
  esac
  "${rt[@]}" perf stat -x, -e task-clock -o "$tmp/stat" "${cmd[@]}" > /dev/null
  python3 - "$tmp/run/log.jsonl" "$tmp/stat" "$1" "$2" "$3" "$4" "$iters" <<'PY'
import json, statistics, sys
log, stat, cfg, b, th, rep, iters = sys.argv[1:]
rows = [json.loads(l) for l in open(log)]
if cfg == "supervised":
    steps = [r["seconds"] / int(iters) for r in rows[1:]]
else:
    el = [r["elapsed_s"] for r in rows if "elapsed_s" in r]
    steps = [el[i + 1] - el[i] for i in range(3, len(el) - 1)]
cpu = [float(l.split(",")[0]) / 1e3 for l in open(stat) if "task-clock" in l][0]
print(json.dumps({"bench": "scaling_ab", "config": cfg, "bin": b, "threads": int(th), "rep": int(rep),
                  "step_s": round(statistics.median(steps), 5) if steps else None, "cpu_s": round(cpu, 4),
                  "load1": float(open("/proc/loadavg").read().split()[0])}))
PY
}
for cfg in ${only//,/ }; do
  for rep in $(seq 1 "$reps"); do
    for th in $threads; do
      if [ $((rep % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
      for b in $order; do run "$cfg" "$b" "$th" "$rep" | tee -a "$out/runs.jsonl"; done
    done
  done
done
python3 - "$out/runs.jsonl" <<'PY' | tee -a "$out/summary.jsonl"
import json, statistics, sys, collections
g = collections.defaultdict(list)
for l in open(sys.argv[1]):
    d = json.loads(l); g[(d["config"], d["bin"], d["threads"])].append(d)
for k, v in sorted(g.items()):
    st = [d["step_s"] for d in v if d["step_s"]]
    print(json.dumps({"config": k[0], "bin": k[1], "threads": k[2], "reps": len(v),
                      "step_s_median": round(statistics.median(st), 5), "cpu_s_median": round(statistics.median(d["cpu_s"] for d in v), 4)}))
PY
