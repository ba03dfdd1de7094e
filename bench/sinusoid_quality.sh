#!/usr/bin/env bash
# Quality of the meta-learners on the MAML paper's sinusoid regression:
# 1-40-40-1 ReLU MLP, K=10 support and 10 query points in training,
# meta-batch 25, one inner step at lr 0.01, Adam 1e-3 outside, 70,000
# iterations; evaluated on 600 new tasks with 100 query points each, at
# 5/10/20 shots after 1 and 10 steps. Results: bench/results/sinusoid/<algo>/.
# Usage: bench/sinusoid_quality.sh [ITERS] [ALGOS...]
set -euo pipefail
cd "$(dirname "$0")/.."
iters="${1:-70000}"; shift || true
algos=("${@:-maml metasgd fomaml reptile multitask}")
[ -x build/metalearn ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null; }
for algo in ${algos[@]}; do
  out="bench/results/sinusoid/$algo"
  rm -rf "$out"
  extra=()
  # Reptile: 5 inner steps and outer SGD with epsilon 0.1 (its paper's regime).
  [ "$algo" = reptile ] && extra=(--inner-steps 5 --optimizer sgd --outer-lr 0.1)
  ./build/metalearn train --algo "$algo" --task sinusoid --model mlp:40,40 --shots 10 --query 10 \
    --meta-batch 25 --inner-lr 0.01 --outer-lr 0.001 --iters "$iters" --seed 1 \
    --eval-tasks 600 --eval-query 100 --eval-shots 5,10,20 --eval-steps 1,10 \
    --log-every 500 --checkpoint-every 5000 --out "$out" --json "${extra[@]}" \
    > "$out.stdout" 2> "$out.stderr" || { echo "$algo failed: $(tail -1 "$out.stderr")"; continue; }
  tail -n 1 "$out.stdout"
done
