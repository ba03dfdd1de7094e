#!/usr/bin/env bash
# Peak resident memory of few-shot Omniglot training (4-block CNN, 64 filters), one
# JSON line per run: what /usr/bin/time -v reports as "Maximum resident set size"
# for `metalearn train` over a few iterations (the first ones included: the
# arenas reach their size in the first meta-batch), plus the checkpoint's
# sha256 so that two binaries can be checked to compute the same thing.
# Memory does not depend on the machine's load; the times printed do.
#
# Usage: bench/memory_omniglot.sh [--iters 3] [--label NAME] RUN...
#   RUN = algo:ways:shots:query:meta_batch:threads, e.g. maml:5:1:15:32:2
#   (maml = second order with 1 inner step at lr 0.4; fomaml likewise;
#   protonet without inner steps)
#   env: METALEARN (binary, default build/metalearn; copied first), ML_DATA_DIR,
#   TRAIN_ARGS (extra train options for every run, e.g. --low-memory)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/setup.sh
source bench/lib/peak_rss.sh
peak_rss_args 2,16p "$@"
omniglot_zips
for z in ${zips//,/ }; do [ -f "$z" ] || { echo "missing $z" >&2; exit 1; }; done
peak_rss_binary
for run in "${runs[@]}"; do
  IFS=: read -r algo ways shots query mb threads <<< "$run"
  inner=()
  [ "$algo" = protonet ] || inner=(--inner-steps 1 --inner-lr 0.4)
  peak_rss_train --algo "$algo" --dataset "omniglot:$zips" \
    --ways "$ways" --shots "$shots" --query "$query" --meta-batch "$mb" "${inner[@]}" --outer-lr 0.001 \
    --iters "$iters" --threads "$threads" --eval-tasks 0 --checkpoint-every 1000000 --seed 1 --quiet ${TRAIN_ARGS:-}
  printf '{"bench":"omniglot_memory","label":"%s","binary_sha256_12":"%s","algo":"%s","ways":%s,"shots":%s,"query":%s,"meta_batch":%s,"threads":%s,"iters":%s,"peak_mb":%.1f,"checkpoint_sha256_12":"%s","train_args":"%s","wall":"%s","loadavg":"%s"}\n' \
    "$label" "$sha" "$algo" "$ways" "$shots" "$query" "$mb" "$threads" "$iters" "$(echo "$kb / 1024" | bc -l)" "$ck" "${TRAIN_ARGS:-}" "$wall" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
done
