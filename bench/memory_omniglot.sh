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
#   env: METALEARN (binary, default build/metalearn; copied first), ML_DATA_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
iters=3 label=""
runs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --iters) iters="$2"; shift 2 ;;
    --label) label="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) runs+=("$1"); shift ;;
  esac
done
[ ${#runs[@]} -gt 0 ] || { echo "no RUN given (see --help)" >&2; exit 2; }
data="${ML_DATA_DIR:-../shared/data}/omniglot"
zips="$data/images_background_small1.zip,$data/images_background_small2.zip"
for z in ${zips//,/ }; do [ -f "$z" ] || { echo "missing $z" >&2; exit 1; }; done
[ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is needed" >&2; exit 1; }
bin="${METALEARN:-build/metalearn}"
[ -x "$bin" ] || { echo "$bin missing (build it first)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$bin" "$tmp/metalearn" # others may rebuild build/ meanwhile
sha=$(sha256sum "$tmp/metalearn" | cut -c1-12)
for run in "${runs[@]}"; do
  IFS=: read -r algo ways shots query mb threads <<< "$run"
  inner=()
  [ "$algo" = protonet ] || inner=(--inner-steps 1 --inner-lr 0.4)
  rm -rf "$tmp/run"
  /usr/bin/time -v -o "$tmp/time.txt" "$tmp/metalearn" train --algo "$algo" --dataset "omniglot:$zips" \
    --ways "$ways" --shots "$shots" --query "$query" --meta-batch "$mb" "${inner[@]}" --outer-lr 0.001 \
    --iters "$iters" --threads "$threads" --eval-tasks 0 --checkpoint-every 1000000 --seed 1 --quiet \
    --out "$tmp/run" > /dev/null
  kb=$(grep -oP 'Maximum resident set size \(kbytes\): \K[0-9]+' "$tmp/time.txt")
  wall=$(grep -oP 'Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): \K[0-9:.]+' "$tmp/time.txt")
  ck=$(sha256sum "$tmp/run/checkpoint.safetensors" | cut -c1-12)
  printf '{"bench":"omniglot_memory","label":"%s","binary_sha256_12":"%s","algo":"%s","ways":%s,"shots":%s,"query":%s,"meta_batch":%s,"threads":%s,"iters":%s,"peak_mb":%.1f,"checkpoint_sha256_12":"%s","wall":"%s","loadavg":"%s"}\n' \
    "$label" "$sha" "$algo" "$ways" "$shots" "$query" "$mb" "$threads" "$iters" "$(echo "$kb / 1024" | bc -l)" "$ck" "$wall" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
done
