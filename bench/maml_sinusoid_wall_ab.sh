#!/usr/bin/env bash
# Wall-clock ms per iteration of sinusoid MAML-2 (the configuration of
# bench/maml_sinusoid_vs_torch.sh) for several metalearn binaries on the same
# thread count, alternated in every repetition so that a change of machine
# load hits them alike. The marginal time (HI - LO iterations) cancels
# start-up. One JSON line per measurement, then the medians per binary with
# the load average.
#
# Usage: bench/maml_sinusoid_wall_ab.sh [--threads T] [--reps R] [--lo N] [--hi N] BIN...
set -euo pipefail
threads=2 reps=5 lo=500 hi=3000
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --lo) lo="$2"; shift 2 ;;
    --hi) hi="$2"; shift 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wall() { # binary iters -> seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$1" train --algo maml --task sinusoid --model mlp:40,40 --shots 10 --query 10 \
    --meta-batch 25 --inner-steps 1 --inner-lr 0.01 --outer-lr 0.001 --optimizer adam --seed 1 --iters "$2" \
    --threads "$threads" --eval-tasks 0 --quiet --out "$tmp/run" >/dev/null
  t1=$(date +%s.%N)
  rm -rf "$tmp/run"
  python3 -c "print($t1 - $t0)"
}
: > "$tmp/rows"
for rep in $(seq 1 "$reps"); do
  for bin in "${bins[@]}"; do
    w_lo=$(wall "$bin" "$lo"); w_hi=$(wall "$bin" "$hi")
    ms=$(python3 -c "print(round(1000 * ($w_hi - $w_lo) / ($hi - $lo), 4))")
    echo "{\"bench\": \"maml_sinusoid_wall\", \"binary\": \"$bin\", \"threads\": $threads, \"rep\": $rep, \"wall_ms_per_iter\": $ms, \"load_1min\": $(cut -d' ' -f1 /proc/loadavg)}" | tee -a "$tmp/rows"
  done
done
python3 - "$tmp/rows" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bins = list(dict.fromkeys(r["binary"] for r in rows))
print(json.dumps({"bench": "maml_sinusoid_wall", "threads": rows[0]["threads"],
                  "median_wall_ms_per_iter": {b: statistics.median(r["wall_ms_per_iter"] for r in rows if r["binary"] == b) for b in bins},
                  "load_average_1min": round(os.getloadavg()[0], 2)}))
PY
