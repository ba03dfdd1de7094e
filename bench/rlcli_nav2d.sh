#!/bin/bash
# rlcli_nav2d.sh: the meta-RL 2D-navigation runs of docs/results.md ("Meta-RL
# through the CLI"): MAML-TRPO and the pretrained policy trained with
# `metalearn train --env nav2d` (pytorch-maml-rl's 2d-navigation settings, the
# CLI's defaults, but ITERS outer iterations), evaluated with `metalearn eval
# RUN --steps 0,1,2,3 --tasks 40 --json` on the test tasks of --eval-seed 12345
# (those of bench/rl_nav2d.sh, so the numbers compare with its table), and
# plotted with `metalearn plot`.
# Usage: bash bench/rlcli_nav2d.sh [BUILD_DIR] [ITERS] [RUNS_DIR]
set -euo pipefail
B=${1:-build}/metalearn
IT=${2:-30}
RUNS=${3:-runs/rlcli}
R=bench/results/rlcli
mkdir -p "$R" "$RUNS"
for algo in maml pretrain; do
  "$B" train --env nav2d --algo $algo --iters "$IT" --threads 2 --eval-seed 12345 --checkpoint-every 5 \
    --out "$RUNS/$algo" --overwrite 2> "$R/train_$algo.txt"
  cp "$RUNS/$algo/log.jsonl" "$R/log_$algo.jsonl"
  "$B" eval "$RUNS/$algo" --steps 0,1,2,3 --tasks 40 --json > "$R/eval_$algo.json"
done
"$B" plot "$RUNS/maml" "$RUNS/pretrain" --out "$R"
cat "$R"/eval_*.json
