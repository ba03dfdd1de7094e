#!/usr/bin/env bash
# Per-iteration timing of sinusoid MAML-2 (bench_sine_iters, the settings of
# bench/maml_sinusoid_ab.sh) for several bench_sine_iters builds, alternated in
# every repetition. Percentiles of the per-iteration time resist descheduling
# on a shared machine (it lengthens some iterations, not all): p10/p25 are the
# undisturbed cost, p50 the typical one. One JSON line per run, then per
# binary the medians over the repetitions of p10, p25, p50 and the mean.
# (A bench_sine_iters for an older tree: copy bench/bench_sine_iters.c into it
# and build the target; it uses the public run API only.)
#
# Usage: bench/sine_iters_ab.sh [--threads T] [--reps R] [--iters N] [--prefix "chrt -f 10"] BIN...
set -euo pipefail
threads=2 reps=5 iters=6000 prefix=
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
[ ${#bins[@]} -gt 0 ] || { sed -n '2,11p' "$0"; exit 2; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for rep in $(seq 1 "$reps"); do
  for bin in "${bins[@]}"; do
    r=$($prefix "$bin" --threads "$threads" --iters "$iters")
    echo "{\"binary\": \"$bin\", \"rep\": $rep, \"load_1min\": $(cut -d' ' -f1 /proc/loadavg), \"run\": $r}" | tee -a "$tmp"
  done
done
python3 - "$tmp" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bins = list(dict.fromkeys(r["binary"] for r in rows))
med = {b: {k: round(statistics.median(r["run"][k] for r in rows if r["binary"] == b), 4)
           for k in ("p10_ms", "p25_ms", "p50_ms", "mean_ms")} for b in bins}
out = {"bench": "sine_iters_ab", "threads": rows[0]["run"]["threads"], "medians": med,
       "load_average_1min": round(os.getloadavg()[0], 2)}
if len(bins) == 2:
    out["first_over_second_p25"] = round(med[bins[0]]["p25_ms"] / med[bins[1]]["p25_ms"], 3)
print(json.dumps(out))
PY
