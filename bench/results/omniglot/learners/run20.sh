#!/usr/bin/env bash
# 20-way heads for the MAML-family learners (their 5-way runs cannot be
# evaluated 20-way), each trained 20-way 1-shot 5-query for a fixed time on
# one thread (Ctrl-C via timeout saves a resumable checkpoint), then
# evaluated on 600 held-out 20-way 1-shot episodes (5 queries per class, as in
# training) and Lake's 20 runs. A learner whose run folder already holds a
# checkpoint is only evaluated.
# Usage: bench/results/omniglot/learners/run20.sh BIN SECONDS [NAME...]
#   NAME in fomaml metasgd anil reptile (default: all four)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
bin=$1 secs=$2; shift 2
names=${*:-fomaml metasgd anil reptile}
Z=${ML_DATA_DIR:-../shared/data}/omniglot
ds="omniglot:$Z/images_background_small1.zip,$Z/images_background_small2.zip"
out=bench/results/omniglot/learners
for name in $names; do
  case $name in
    fomaml)  args=(--algo fomaml --meta-batch 4 --inner-steps 1 --inner-lr 0.4 --outer-lr 0.001) ;;
    metasgd) args=(--algo metasgd --meta-batch 4 --inner-steps 1 --inner-lr 0.4 --outer-lr 0.001) ;;
    anil)    args=(--algo anil --meta-batch 4 --inner-steps 1 --inner-lr 0.4 --outer-lr 0.001) ;;
    reptile) args=(--algo reptile --meta-batch 5 --inner-steps 5 --inner-lr 0.1 --outer-lr 0.5) ;;
    *) echo "unknown learner $name" >&2; exit 2 ;;
  esac
  run=$out/${name}_20w1s
  [ -f "$run/checkpoint.safetensors" ] || timeout -s INT "$secs" "$bin" train --dataset "$ds" --ways 20 --shots 1 --query 5 "${args[@]}" \
    --iters 20000 --eval-tasks 0 --threads 1 --seed 1 --log-every 25 --checkpoint-every 100 \
    --quiet --out "$run" > "$run.train.txt" 2>&1 || true
  "$bin" eval "$run" --ways 20 --shots 1 --query 5 --steps 1,5 --episodes 600 --threads 1 \
    --lake-runs "$Z/all_runs.zip" > "$run.eval20.txt" 2>&1
done
