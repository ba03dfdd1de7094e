#!/usr/bin/env bash
# CPU time per iteration of sinusoid MAML-2 (the configuration of
# bench/maml_sinusoid_vs_torch.sh) for two metalearn binaries, alternated:
# a figure that a loaded machine disturbs much less than wall time.
#
# Each repetition runs each binary on 1 thread for ITERS_LO and ITERS_HI
# iterations; the marginal user+system CPU seconds per iteration,
# (cpu(HI) - cpu(LO)) / (HI - LO), cancels start-up. Prints one JSON line per
# measurement and a summary with the medians and their ratio (> 1: B is faster).
#
# Usage: bench/maml_sinusoid_cpu_ab.sh A_BIN B_BIN [--reps R] [--lo N] [--hi N]
set -euo pipefail
a="$1" b="$2"; shift 2
reps=5 lo=1000 hi=4000
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --lo) lo="$2"; shift 2 ;;
    --hi) hi="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cpu() { # binary iters -> CPU seconds
  /usr/bin/time -f "%U %S" -o "$tmp/t" "$1" train --algo maml --task sinusoid --model mlp:40,40 --shots 10 --query 10 \
    --meta-batch 25 --inner-steps 1 --inner-lr 0.01 --outer-lr 0.001 --optimizer adam --seed 1 --iters "$2" \
    --threads 1 --eval-tasks 0 --quiet --out "$tmp/run" >/dev/null
  rm -rf "$tmp/run"
  awk '{print $1 + $2}' "$tmp/t"
}
: > "$tmp/rows"
for rep in $(seq 1 "$reps"); do
  for side in a b; do
    bin=$a; [ $side = b ] && bin=$b
    c_lo=$(cpu "$bin" "$lo"); c_hi=$(cpu "$bin" "$hi")
    ms=$(python3 -c "print(round(1000 * ($c_hi - $c_lo) / ($hi - $lo), 4))")
    echo "{\"bench\": \"maml_sinusoid_cpu\", \"side\": \"$side\", \"binary\": \"$bin\", \"rep\": $rep, \"cpu_ms_per_iter\": $ms}" | tee -a "$tmp/rows"
  done
done
python3 - "$tmp/rows" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda s: statistics.median(r["cpu_ms_per_iter"] for r in rows if r["side"] == s)
print(json.dumps({"bench": "maml_sinusoid_cpu", "threads": 1, "a_cpu_ms_per_iter_median": med("a"),
                  "b_cpu_ms_per_iter_median": med("b"), "a_over_b": round(med("a") / med("b"), 3),
                  "load_average_1min": round(os.getloadavg()[0], 2)}))
PY
