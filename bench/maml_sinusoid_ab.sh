#!/usr/bin/env bash
# Time per iteration of sinusoid MAML-2 (the configuration of
# bench/maml_sinusoid_vs_torch.sh) for several metalearn binaries on the same
# thread count, alternated in every repetition so that a change of machine
# load hits them alike. The marginal time, (t(HI) - t(LO)) / (HI - LO),
# cancels start-up. --measure wall: wall-clock ms; --measure cpu: user+system
# CPU ms (a loaded machine disturbs it much less; use it with 1 thread, where
# no thread spins). One JSON line per measurement, then the medians per
# binary with the load average (and, for two binaries, first / second: > 1
# means the second is faster).
#
# Usage: bench/maml_sinusoid_ab.sh [--measure wall|cpu] [--threads T] [--reps R] [--lo N] [--hi N] BIN...
set -euo pipefail
measure=wall threads=2 reps=5 lo=500 hi=3000
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --measure) measure="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --lo) lo="$2"; shift 2 ;;
    --hi) hi="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
[ "$measure" = wall ] || [ "$measure" = cpu ] || { echo "--measure: wall or cpu, not '$measure'" >&2; exit 2; }
[ ${#bins[@]} -gt 0 ] || { sed -n '2,12p' "$0"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seconds() { # binary iters -> seconds (wall or CPU) of the whole run
  /usr/bin/time -f "%e %U %S" -o "$tmp/t" "$1" train --algo maml --task sinusoid --model mlp:40,40 --shots 10 \
    --query 10 --meta-batch 25 --inner-steps 1 --inner-lr 0.01 --outer-lr 0.001 --optimizer adam --seed 1 \
    --iters "$2" --threads "$threads" --eval-tasks 0 --quiet --out "$tmp/run" >/dev/null
  rm -rf "$tmp/run"
  if [ "$measure" = wall ]; then awk '{print $1}' "$tmp/t"; else awk '{print $2 + $3}' "$tmp/t"; fi
}
: > "$tmp/rows"
for rep in $(seq 1 "$reps"); do
  for bin in "${bins[@]}"; do
    t_lo=$(seconds "$bin" "$lo"); t_hi=$(seconds "$bin" "$hi")
    ms=$(python3 -c "print(round(1000 * ($t_hi - $t_lo) / ($hi - $lo), 4))")
    echo "{\"bench\": \"maml_sinusoid_ab\", \"measure\": \"$measure\", \"binary\": \"$bin\", \"threads\": $threads, \"rep\": $rep, \"ms_per_iter\": $ms, \"load_1min\": $(cut -d' ' -f1 /proc/loadavg)}" | tee -a "$tmp/rows"
  done
done
python3 - "$tmp/rows" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bins = list(dict.fromkeys(r["binary"] for r in rows))
med = {b: statistics.median(r["ms_per_iter"] for r in rows if r["binary"] == b) for b in bins}
out = {"bench": "maml_sinusoid_ab", "measure": rows[0]["measure"], "threads": rows[0]["threads"],
       "median_ms_per_iter": med, "load_average_1min": round(os.getloadavg()[0], 2)}
if len(bins) == 2:
    out["first_over_second"] = round(med[bins[0]] / med[bins[1]], 3)
print(json.dumps(out))
PY
