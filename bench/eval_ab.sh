#!/usr/bin/env bash
# eval_ab.sh: A/B of two binaries on issue 17's long evaluation episode
# (`metalearn eval` of the zoo's ProtoNet run, 20-way 5-shot, 15 queries per
# class: 400 images, meta-batch 1, so the threads work inside the episode),
# round 9. Per measurement two runs, of 5 and TASKS + 5 episodes: seconds per
# episode = the difference of their "eval_seconds" (the episodes' loop only,
# no start-up) / TASKS, so the first episodes' warm-up (oneDNN's primitives,
# ~1 s) cancels; CPU seconds per episode likewise from perf stat's task-clock.
# Runs of A and B alternate (which goes first alternates too), 1 and 2
# threads each; --rt runs them under `chrt -f 10` (root: SCHED_FIFO).
# Prints one JSON line per run, then per (binary, threads) the medians, the
# scaling (1 thread / 2 threads) and the per-repetition pairs A / B (> 1: B faster).
# Usage: bench/eval_ab.sh [--rt] [--reps 5] [--tasks 60] [--threads "1 2"] A_BIN B_BIN OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/setup.sh
reps=5 tasks=60 rt=() threads="1 2"
while [ $# -gt 3 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --tasks) tasks="$2"; shift 2 ;;
    --rt) rt=(chrt -f 10); shift ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -eq 3 ] || { sed -n '2,13p' "$0"; exit 2; }
out="$3"
mkdir -p "$out"
ab_copies "$1" "$2"
zoo=models/omniglot-protonet-30w1s
eval_run() { # BIN THREADS TASKS -> one JSON line: the run's eval_seconds, CPU seconds, accuracy
  local js
  js=$("${rt[@]}" perf stat -x, -e task-clock -o "$tmp/stat" "$tmp/$1" eval "$zoo" --tasks "$3" --ways 20 --shots 5 \
    --query 15 --steps 1 --lake-runs none --threads "$2" --quiet --json 2>&1 | grep '^{"command"')
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
cpu = [float(l.split(",")[0]) for l in open(sys.argv[2]) if "task-clock" in l][0] / 1000
print(json.dumps({"eval_s": r["eval_seconds"], "cpu_s": cpu, "accuracy": r["results"][0]["accuracy"]}))' "$js" "$tmp/stat"
}
run() { # BIN THREADS REP: (long - short) / tasks, so the first episodes' warm-up (oneDNN's primitives) cancels
  local l0 short long
  l0=$(cut -d' ' -f1 /proc/loadavg)
  short=$(eval_run "$1" "$2" 5) long=$(eval_run "$1" "$2" $((tasks + 5)))
  python3 - "$1" "$2" "$3" "$tasks" "$l0" "$short" "$long" <<'PY' | tee -a "$out/runs.jsonl"
import json, sys
b, th, rep, tasks, l0 = sys.argv[1:6]
s, l = json.loads(sys.argv[6]), json.loads(sys.argv[7])
print(json.dumps({"bench": "eval_ab", "bin": b, "threads": int(th), "rep": int(rep),
                  "s_per_episode": round((l["eval_s"] - s["eval_s"]) / int(tasks), 6),
                  "cpu_s": round((l["cpu_s"] - s["cpu_s"]) / int(tasks), 6),
                  "accuracy": l["accuracy"], "load1_at_start": float(l0)}))
PY
}
: > "$out/runs.jsonl"
for rep in $(seq 1 "$reps"); do
  order="A B"; [ $((rep % 2)) -eq 0 ] && order="B A"
  for bin in $order; do
    for th in $threads; do run "$bin" "$th" "$rep"; done
  done
done
python3 - "$out/runs.jsonl" "$(sha256sum "$tmp/A" | cut -c1-12)" "$(sha256sum "$tmp/B" | cut -c1-12)" <<'PY' | tee "$out/summary.jsonl"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sha = {"A": sys.argv[2], "B": sys.argv[3]}
ths = sorted({r["threads"] for r in rows})
med = {}
for b in "AB":
    for t in ths:
        rs = [r for r in rows if r["bin"] == b and r["threads"] == t]
        med[b, t] = statistics.median(r["s_per_episode"] for r in rs)
        print(json.dumps({"bin": b, "sha256_12": sha[b], "threads": t, "median_s_per_episode": med[b, t],
                          "median_cpu_s": statistics.median(r["cpu_s"] for r in rs), "reps": len(rs)}))
for t in ths:
    pairs = [round(a["s_per_episode"] / b["s_per_episode"], 3) for a in rows for b in rows
             if a["bin"] == "A" and b["bin"] == "B" and a["threads"] == t == b["threads"] and a["rep"] == b["rep"]]
    cpu = [round(a["cpu_s"] / b["cpu_s"], 3) for a in rows for b in rows
           if a["bin"] == "A" and b["bin"] == "B" and a["threads"] == t == b["threads"] and a["rep"] == b["rep"]]
    print(json.dumps({"threads": t, "pairs_A_over_B": pairs, "median_pair": statistics.median(pairs),
                      "cpu_pairs_A_over_B": cpu, "median_cpu_pair": statistics.median(cpu)}))
if set(ths) >= {1, 2}:
    print(json.dumps({"scaling_2_vs_1": {b: round(med[b, 1] / med[b, 2], 3) for b in "AB"}}))
PY
