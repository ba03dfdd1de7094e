#!/bin/bash
# rl500_nav2d.sh: the issue's 2d-navigation budget (500 outer iterations)
# through the CLI, the four trained policies in parallel, checkpoint every 25
# iterations. Rerunning it resumes each run from its checkpoint (bit-exact),
# so an interrupted round continues where it stopped. The evaluation is
# bench/rl500_eval.sh's (--eval-tasks 0 here).
# Usage: bash bench/rl500_nav2d.sh [METALEARN] [RUNS_DIR] [ITERS]
set -uo pipefail
B=${1:-build/metalearn}
RUNS=${2:-runs/rl500}
IT=${3:-500}
R=bench/results/rl/i500
mkdir -p "$R" "$RUNS"
for run in maml:trpo:2 pretrain:trpo:1 oracle:trpo:1 maml:adam:1; do
  IFS=: read -r algo outer threads <<<"$run"
  name=${algo}_$outer
  if [ -f "$RUNS/$name/checkpoint.safetensors" ]; then start=(--resume "$RUNS/$name"); else start=(--out "$RUNS/$name"); fi
  ( "$B" train --env nav2d --algo "$algo" --outer "$outer" --iters "$IT" --threads "$threads" --eval-seed 12345 \
      --checkpoint-every 25 --eval-tasks 0 "${start[@]}" >> "$R/train_$name.txt" 2>&1
    cp "$RUNS/$name/log.jsonl" "$R/log_$name.jsonl" ) &
done
wait
