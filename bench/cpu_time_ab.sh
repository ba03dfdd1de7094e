#!/usr/bin/env bash
# CPU time per training iteration of two metalearn binaries, alternated, for
# machines too loaded for wall-clock figures: per run, `perf stat -e
# task-clock` of a run of ITERS iterations minus that of a run of 2 (start-up,
# data loading, first-iteration allocations), divided by ITERS - 2. CPU time
# ignores preemption by other processes (shared caches and memory bus still
# count), so it is steadier than s/iter under load; use it with 1 thread (with
# 2, OpenMP's spin-wait adds CPU time that is not work).
# One JSON line per run, then a summary line with the medians and B's speedup.
#
# Usage: bench/cpu_time_ab.sh [--reps 3] [--iters 20] A_BIN B_BIN RUN
#   RUN = algo:ways:shots:query:meta_batch:threads (as bench/ab_speed.sh)
#   env: ML_DATA_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
reps=3 iters=20
while [ $# -gt 3 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -eq 3 ] || { sed -n '2,13p' "$0"; exit 2; }
[ "$iters" -gt 2 ] || { echo "--iters must be > 2" >&2; exit 2; }
command -v perf > /dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
data="${ML_DATA_DIR:-../shared/data}/omniglot"
zips="$data/images_background_small1.zip,$data/images_background_small2.zip"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$1" "$tmp/A"; cp "$2" "$tmp/B"
IFS=: read -r algo ways shots query mb threads <<< "$3"
inner=()
[ "$algo" = protonet ] || inner=(--inner-steps 1 --inner-lr 0.4)
cpu_ms() { # bin iters -> task-clock ms of the whole run
  rm -rf "$tmp/run"
  perf stat -x, -e task-clock "$tmp/$1" train --algo "$algo" --dataset "omniglot:$zips" --ways "$ways" \
    --shots "$shots" --query "$query" --meta-batch "$mb" "${inner[@]}" --outer-lr 0.001 --iters "$2" \
    --threads "$threads" --eval-tasks 0 --log-every 1 --checkpoint-every 1000000 --seed 1 --quiet \
    --out "$tmp/run" 2>&1 > /dev/null | grep task-clock | cut -d, -f1
}
for r in $(seq 1 "$reps"); do
  order="A B"; [ $((r % 2)) -eq 0 ] && order="B A"
  for b in $order; do
    l0=$(cut -d' ' -f1 /proc/loadavg)
    short=$(cpu_ms "$b" 2) long=$(cpu_ms "$b" "$iters")
    python3 -c "import json; print(json.dumps({'bench': 'cpu_time_ab', 'bin': '$b', 'rep': $r, 'run': '$3',
      'cpu_s_per_iter': round(($long - $short) / 1000 / ($iters - 2), 4), 'load1_at_start': $l0}))"
  done
done | tee "$tmp/lines"
python3 - "$tmp/lines" "$3" "$reps" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {b: statistics.median(r["cpu_s_per_iter"] for r in rows if r["bin"] == b) for b in "AB"}
print(json.dumps({"bench": "cpu_time_ab_summary", "run": sys.argv[2], "A_cpu_s_per_iter": med["A"],
                  "B_cpu_s_per_iter": med["B"], "B_speedup": round(med["A"] / med["B"], 3),
                  "load1_median": statistics.median(r["load1_at_start"] for r in rows), "reps": int(sys.argv[3])}))
PY
