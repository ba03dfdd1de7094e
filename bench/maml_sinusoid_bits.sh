#!/usr/bin/env bash
# The checkpoint of a 300-iteration sinusoid MAML-2 run (the settings of
# bench/maml_sinusoid_ab.sh) by each binary on 1, 2 and 3 threads: one sha256
# per line. A speed change must print the same hash everywhere.
#
# Usage: bench/maml_sinusoid_bits.sh BIN...
set -euo pipefail
[ $# -gt 0 ] || { sed -n '2,6p' "$0"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for bin in "$@"; do
  for t in 1 2 3; do
    "$bin" train --algo maml --task sinusoid --model mlp:40,40 --shots 10 --query 10 --meta-batch 25 \
      --inner-steps 1 --inner-lr 0.01 --outer-lr 0.001 --optimizer adam --seed 1 --iters 300 --threads "$t" \
      --eval-tasks 0 --quiet --out "$tmp/run" >/dev/null
    echo "$(sha256sum < "$tmp/run/checkpoint.safetensors" | cut -d' ' -f1) threads=$t $bin"
    rm -rf "$tmp/run"
  done
done
