#!/usr/bin/env bash
# Checkpoint sha256 of short MAML / first-order MAML runs on MLP shapes other
# than the sinusoid benchmark's (several inputs, one or three hidden layers,
# 2 and 3 inner steps, widths not multiples of 16) for each binary: a change
# to the fused MLP route (src/meta/maml_mlp.c) that keeps the arithmetic must
# print the same hash for every binary on each line group.
#
# Usage: bench/maml_mlp_bits_shapes.sh BIN...
set -euo pipefail
[ $# -gt 0 ] || { sed -n '2,8p' "$0"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while read -r task model steps; do
  for algo in maml fomaml; do
    for bin in "$@"; do
      "$bin" train --algo "$algo" --task "$task" --model "$model" --shots 7 --query 9 --meta-batch 5 \
        --inner-steps "$steps" --inner-lr 0.01 --outer-lr 0.001 --optimizer adam --seed 3 --iters 50 --threads 2 \
        --eval-tasks 0 --quiet --out "$tmp/run" >/dev/null
      echo "$(sha256sum < "$tmp/run/checkpoint.safetensors" | cut -c1-16) $algo $task $model steps=$steps $bin"
      rm -rf "$tmp/run"
    done
  done
done <<'CFG'
sinusoid mlp:40,32 2
sinusoid mlp:40,32 3
linear:5 mlp:24 2
linear:1 mlp:8,8,8 2
sine-seq:3 mlp:20,20 2
CFG
