#!/bin/bash
# rlcli_nav2d.sh: the meta-RL 2D-navigation runs of docs/results.md ("Meta-RL
# through the CLI"): MAML-TRPO and the pretrained policy trained with
# `metalearn train --env nav2d` (pytorch-maml-rl's 2d-navigation settings, the
# CLI's defaults, but ITERS outer iterations, Adam ITERS_ADAM), evaluated with `metalearn eval
# RUN --steps 0,1,2,3 --tasks 40 --json` on the test tasks of --eval-seed 12345
# (those of bench/rl_nav2d.sh, so the numbers compare with its table), and
# plotted with `metalearn plot`.
# Usage: bash bench/rlcli_nav2d.sh [BUILD_DIR] [ITERS] [ITERS_ADAM] [RUNS_DIR]
set -euo pipefail
B=${1:-build}/metalearn
IT=${2:-30}
IA=${3:-60}
RUNS=${4:-runs/rlcli}
R=bench/results/rlcli
mkdir -p "$R" "$RUNS"
for run in maml:trpo:$IT pretrain:trpo:$IT oracle:trpo:$IT maml:adam:$IA; do
  IFS=: read -r algo outer iters <<<"$run"
  name=${algo}_$outer
  "$B" train --env nav2d --algo "$algo" --outer "$outer" --iters "$iters" --threads 2 --eval-seed 12345 \
    --checkpoint-every 5 --out "$RUNS/$name" --overwrite 2> "$R/train_$name.txt"
  cp "$RUNS/$name/log.jsonl" "$R/log_$name.jsonl"
  "$B" eval "$RUNS/$name" --steps 0,1,2,3 --tasks 40 --json > "$R/eval_$name.json"
done
"$B" plot "$RUNS"/{maml_trpo,maml_adam,pretrain_trpo,oracle_trpo} --out "$R"
cat "$R"/eval_*.json
