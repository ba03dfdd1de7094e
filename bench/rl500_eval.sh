#!/bin/bash
# rl500_eval.sh: the 40-test-task table of docs/results.md ("Meta-RL at the
# issue's budget") from the runs of bench/rl500_nav2d.sh, plus the random
# policy (`train --algo random`). The meta-trained policies (maml_trpo,
# maml_adam) adapt at their trained rate (--inner-lr 0.1); every policy that
# is not meta-trained (pretrain, oracle, random) is fine-tuned at the rate of
# GRID with the best mean return over 1-3 steps on 40 validation tasks
# (eval-seed XOR 0x76616c6964), never chosen on the 40 test tasks
# (--eval-seed 12345). For reference only (on copies, so the runs' eval.json
# stay the table's): MAML-TRPO with the same grid, and every baseline at the
# inner rate 0.1 (the earlier rounds' rule).
# LATER (default 1) scales the rate of the steps after the first for every
# policy and every rate of the grid; LATER=0.5 is the MAML authors' evaluation
# (cbfinn/maml_rl, test_maml_point.py: the first step at the rate, the later
# ones at half of it).
# Usage: [LATER=0.5] [RESULTS=DIR] bash bench/rl500_eval.sh [METALEARN] [RUNS_DIR] [GRID]
set -euo pipefail
B=${1:-build/metalearn}
RUNS=${2:-runs/rl500}
GRID=${3:-0.003,0.00625,0.0125,0.025,0.05,0.1,0.2,0.4}
R=${RESULTS:-bench/results/rl/i500}
mkdir -p "$R"
[ -f "$RUNS/random/checkpoint.safetensors" ] ||
  "$B" train --env nav2d --algo random --eval-seed 12345 --out "$RUNS/random" --overwrite --quiet > /dev/null
E=(--steps 0,1,2,3 --tasks 40 --threads 2 --json --eval-later-scale "${LATER:-1}")
for name in maml_trpo maml_adam pretrain_trpo oracle_trpo random; do
  case $name in maml_*) lr=();; *) lr=(--eval-lr "$GRID");; esac
  "$B" eval "$RUNS/$name" "${E[@]}" "${lr[@]}" > "$R/eval_$name.txt"
  tail -1 "$R/eval_$name.txt" > "$R/eval_$name.json"
done
REF=$(mktemp -d)
trap 'rm -rf "$REF"' EXIT
for name in maml_trpo pretrain_trpo oracle_trpo random; do
  cp -r "$RUNS/$name" "$REF/$name"
  case $name in maml_*) lr=(--eval-lr "$GRID"); tag=grid;; *) lr=(--eval-lr 0.1); tag=lr0.1;; esac
  "$B" eval "$REF/$name" "${E[@]}" "${lr[@]}" > "$R/ref_${name}_$tag.txt"
  tail -1 "$R/ref_${name}_$tag.txt" > "$R/ref_${name}_$tag.json"
done
"$B" plot "$RUNS"/{maml_trpo,maml_adam,pretrain_trpo,random,oracle_trpo} --out "$R"
