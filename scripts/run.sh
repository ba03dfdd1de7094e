#!/usr/bin/env bash
# The main job (README): installs what is missing, builds, then trains the
# 4-block CNN on Fashion-MNIST and prints test accuracy with per-class
# precision / recall / F1. Extra arguments go to `metalearn train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec ./build/metalearn train --algo supervised --dataset fashion-mnist --model cnn4 --epochs 3 "$@"
