#!/bin/bash
# rl500_eval.sh: the 40-test-task table of docs/results.md ("Meta-RL at the
# issue's budget") from the runs of bench/rl500_nav2d.sh, plus the random
# policy (`train --algo random`). The meta-trained policies (maml_trpo,
# maml_adam) adapt at their trained rate (--inner-lr 0.1); every policy that
# is not meta-trained (pretrain, oracle, random) is fine-tuned at the rate of
# GRID that has the best mean return over 1-3 steps on 40 validation tasks
# (eval-seed XOR 0x76616c6964), never chosen on the 40 test tasks
# (--eval-seed 12345). MAML is also shown with the same grid, for reference.
# Usage: bash bench/rl500_eval.sh [METALEARN] [RUNS_DIR] [GRID]
set -euo pipefail
B=${1:-build/metalearn}
RUNS=${2:-runs/rl500}
GRID=${3:-0.003,0.00625,0.0125,0.025,0.05,0.1,0.2,0.4}
R=bench/results/rl/i500
mkdir -p "$R"
[ -f "$RUNS/random/checkpoint.safetensors" ] ||
  "$B" train --env nav2d --algo random --eval-seed 12345 --out "$RUNS/random" --overwrite --quiet > /dev/null
E=(--steps 0,1,2,3 --tasks 40 --threads 2 --json)
for name in maml_trpo maml_adam; do
  "$B" eval "$RUNS/$name" "${E[@]}" | tee "$R/eval_$name.txt" | tail -1 > "$R/eval_$name.json"
done
for name in pretrain_trpo oracle_trpo random; do
  "$B" eval "$RUNS/$name" "${E[@]}" --eval-lr "$GRID" | tee "$R/eval_$name.txt" | tail -1 > "$R/eval_$name.json"
done
# MAML at the grid's best rate (reference only), kept apart from the run's eval.json
cp "$RUNS/maml_trpo/eval.json" "$R/maml_trpo_eval.json.keep"
"$B" eval "$RUNS/maml_trpo" "${E[@]}" --eval-lr "$GRID" | tee "$R/eval_maml_trpo_grid.txt" | tail -1 > "$R/eval_maml_trpo_grid.json"
mv "$R/maml_trpo_eval.json.keep" "$RUNS/maml_trpo/eval.json"
"$B" plot "$RUNS"/{maml_trpo,maml_adam,pretrain_trpo,random,oracle_trpo} --out "$R"
