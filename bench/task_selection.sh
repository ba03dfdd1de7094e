#!/usr/bin/env bash
# Task selection (issue 5 item 2): does drawing training classes by
# similarity to the target alphabet, or easy-to-hard, help? ProtoNet 5-way
# 1-shot on the minimal Omniglot background sets, one alphabet held out as the
# test split (--test-alphabets), same seed and iterations for each sampler;
# then 600 evaluation episodes of the held-out alphabet, 5-way 1- and 5-shot.
# Results: bench/results/task_selection/<sampler>_s<seed>/ and *.txt.
# Usage: bench/task_selection.sh SEED [ITERS] [SAMPLERS...]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${ML_DATA_DIR:-../shared/data}/omniglot"
seed="$1"; iters="${2:-2000}"; shift $(( $# >= 2 ? 2 : 1 ))
samplers=("${@:-uniform similar curriculum}")
[ $# -eq 0 ] && samplers=(uniform similar curriculum)
out=bench/results/task_selection
for s in "${samplers[@]}"; do
  run="$out/${s}_s$seed"
  rm -rf "$run"
  ./build/metalearn train --algo protonet \
    --dataset "omniglot:$DATA/images_background_small1.zip,$DATA/images_background_small2.zip" \
    --test-alphabets "Japanese_(katakana)" --ways 5 --shots 1 --query 15 --meta-batch 1 \
    --outer-lr 0.001 --iters "$iters" --log-every 100 --eval-tasks 0 --seed "$seed" --threads 1 \
    --task-sampler "$s" --target test-support:1 --select-k 50 --select-prob 0.5 --select-every 100 \
    --curriculum-strength 1 --out "$run" > "$run.train.txt" 2>&1
  ./build/metalearn eval "$run" --ways 5 --shots 1,5 --episodes 600 --threads 1 --json > "$run.eval.txt" 2>&1
  tail -n 1 "$run.eval.txt"
done
