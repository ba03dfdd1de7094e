#!/usr/bin/env bash
# A/B speed of two metalearn binaries on one few-shot Omniglot training
# configuration, alternating which runs first in each repetition so that the
# machine's load hits both alike. Per run: the median seconds per iteration
# after --warmup iterations (from log.jsonl's elapsed_s); per binary: the
# median over repetitions. One JSON line per run, then a summary line.
# --measure cpu: CPU seconds per iteration instead, for machines too loaded
# for wall-clock figures: `perf stat -e task-clock` of a run of ITERS
# iterations minus that of a run of 2 (start-up, data loading, first
# allocations), divided by ITERS - 2. CPU time ignores preemption by other
# processes (shared caches and the memory bus still count); use it with 1
# thread (with 2, OpenMP's spin-wait adds CPU time that is not work).
#
# Usage: bench/ab_speed.sh [--measure wall|cpu] [--reps 5] [--iters 12] [--warmup 2] A_BIN B_BIN RUN
#   RUN = algo:ways:shots:query:meta_batch:threads (as bench/memory_omniglot.sh)
#   env: ML_DATA_DIR; B_ARGS: extra train options for B only (e.g. --low-memory)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/setup.sh
reps=5 iters=12 warmup=2 measure=wall
while [ $# -gt 3 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --measure) measure="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -eq 3 ] || { sed -n '2,19p' "$0"; exit 2; }
[ "$measure" = wall ] || [ "$measure" = cpu ] || { echo "--measure: wall or cpu, not '$measure'" >&2; exit 2; }
if [ "$measure" = cpu ]; then
  [ "$iters" -gt 2 ] || { echo "--iters must be > 2" >&2; exit 2; }
  command -v perf > /dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
fi
omniglot_zips
ab_copies "$1" "$2"
IFS=: read -r algo ways shots query mb threads <<< "$3"
inner=()
[ "$algo" = protonet ] || inner=(--inner-steps 1 --inner-lr 0.4)
train() { # which iters [prefix...]: one training run in a fresh folder
  local which="$1" n="$2"; shift 2
  rm -rf "$tmp/run"
  "$@" "$tmp/$which" train --algo "$algo" --dataset "omniglot:$zips" --ways "$ways" --shots "$shots" \
    --query "$query" --meta-batch "$mb" "${inner[@]}" --outer-lr 0.001 --iters "$n" --threads "$threads" \
    --eval-tasks 0 --log-every 1 --checkpoint-every 1000000 --seed 1 --quiet --out "$tmp/run" \
    $([ "$which" = B ] && echo "${B_ARGS:-}")
}
cpu_ms() { # which iters -> task-clock ms of the whole run
  train "$1" "$2" perf stat -x, -e task-clock 2>&1 > /dev/null | grep task-clock | cut -d, -f1
}
one() { # which rep
  local l0; l0=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$measure" = cpu ]; then
    local short long
    short=$(cpu_ms "$1" 2) long=$(cpu_ms "$1" "$iters")
    python3 -c "import json; print(json.dumps({'bench': 'ab_speed', 'measure': 'cpu', 'bin': '$1', 'rep': $2, 'run': '$3',
      'seconds_per_iter': round(($long - $short) / 1000 / ($iters - 2), 4), 'load1_at_start': $l0}))"
    return
  fi
  train "$1" "$iters" > /dev/null
  python3 - "$tmp/run/log.jsonl" "$1" "$2" "$warmup" "$3" "$l0" <<'PY'
import json, statistics, sys
el = [json.loads(l)["elapsed_s"] for l in open(sys.argv[1])]
w = int(sys.argv[4]); t = [0.0] + el
d = [t[i + 1] - t[i] for i in range(w, len(el))]
print(json.dumps({"bench": "ab_speed", "bin": sys.argv[2], "rep": int(sys.argv[3]), "run": sys.argv[5],
                  "seconds_per_iter": round(statistics.median(d), 4), "load1_at_start": float(sys.argv[6])}))
PY
}
for rep in $(seq 1 "$reps"); do
  if [ $((rep % 2)) -eq 1 ]; then one A "$rep" "$3"; one B "$rep" "$3"; else one B "$rep" "$3"; one A "$rep" "$3"; fi
done | tee "$tmp/lines"
python3 - "$tmp/lines" "$3" "$(sha256sum "$tmp/A" | cut -c1-12)" "$(sha256sum "$tmp/B" | cut -c1-12)" "$measure" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {b: statistics.median([r["seconds_per_iter"] for r in rows if r["bin"] == b]) for b in "AB"}
print(json.dumps({"bench": "ab_speed_summary", "measure": sys.argv[5], "run": sys.argv[2], "A_sha256_12": sys.argv[3], "B_sha256_12": sys.argv[4],
                  "A_seconds_per_iter": med["A"], "B_seconds_per_iter": med["B"], "B_speedup": round(med["A"] / med["B"], 3),
                  "load1_median": statistics.median([r["load1_at_start"] for r in rows]), "reps": len(rows) // 2}))
PY
