#!/usr/bin/env bash
# Few-shot quality on Omniglot, meta-trained only on the minimal background
# sets (images_background_small1/2, 242 characters; split by character 60/10/30,
# rotations as new training classes). Each learner is evaluated on 600
# episodes of held-out characters (5-way 1-shot, 5-way 5-shot; 20-way 1-shot
# for learners without a fixed head) and on Lake's 20 one-shot runs.
# Results: bench/results/omniglot/<name>/ (config, log, checkpoint, eval.json).
# Usage: bench/omniglot_quality.sh NAME [extra train flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${ML_DATA_DIR:-../shared/data}/omniglot"
name="$1"; shift
out="bench/results/omniglot/$name"
rm -rf "$out"
./build/metalearn train --dataset "omniglot:$DATA/images_background_small1.zip,$DATA/images_background_small2.zip" \
  --eval-tasks 600 --lake-runs "$DATA/all_runs.zip" --seed 1 --out "$out" --json "$@" \
  > "$out.stdout" 2> "$out.stderr"
tail -n 1 "$out.stdout"
