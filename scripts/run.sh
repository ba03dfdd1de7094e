#!/usr/bin/env bash
# The main job (README): installs what is missing, builds, then meta-learns
# sinusoid regression with second-order MAML (MAML paper setup, shortened),
# trains the multi-task "pretrained" baseline on the same tasks, prints each
# one's error before and after adapting to 600 new tasks, and plots both.
# About a minute on 2 cores. Extra arguments go to both `metalearn train` calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
out=runs/demo
for algo in maml multitask; do
  echo "== metalearn train --algo $algo --task sinusoid =="
  ./build/metalearn train --algo "$algo" --task sinusoid --model mlp:40,40 --shots 10 --meta-batch 25 \
    --inner-steps 1 --inner-lr 0.01 --outer-lr 0.001 --iters 20000 --eval-shots 5,10 --eval-steps 1,10 \
    --out "$out/$algo" --overwrite "$@" # the demo's folders are remade on every run
done
echo "== metalearn plot =="
./build/metalearn plot "$out/maml" "$out/multitask" --out "$out"
