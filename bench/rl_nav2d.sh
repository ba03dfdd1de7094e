#!/bin/bash
# rl_nav2d.sh: the 2D-navigation table of docs/results.md ("Meta-RL"): trains
# MAML-TRPO, MAML-Adam, the pretrained and the oracle policies with
# bench_maml_rl (pytorch-maml-rl's 2d-navigation settings but for the number
# of outer iterations), then each evaluates the return before and after 1-3
# adaptation steps on the same 40 test tasks (--eval-seed 12345); the random
# policy is the untrained initialisation, adapted the same way.
# Usage: bash bench/rl_nav2d.sh [BUILD_DIR] [ITERS_TRPO] [ITERS_ADAM]
set -euo pipefail
B=${1:-build}/bench/bench_maml_rl
IT=${2:-30}
IA=${3:-60}
R=bench/results/rl
mkdir -p $R
$B --algo maml --outer trpo --iters "$IT" --threads 2 --save $R/maml_trpo.safetensors > $R/maml_trpo.jsonl &
$B --algo maml --outer adam --iters "$IA" --threads 1 --save $R/maml_adam.safetensors > $R/maml_adam.jsonl &
$B --algo pretrain --outer trpo --iters "$IT" --threads 1 --save $R/pretrain.safetensors > $R/pretrain.jsonl &
$B --algo oracle --outer trpo --iters "$IT" --threads 1 --save $R/oracle.safetensors > $R/oracle.jsonl &
$B --algo pretrain --iters 0 --threads 1 > $R/random.jsonl
wait
for f in maml_trpo maml_adam pretrain oracle random; do tail -1 $R/$f.jsonl; done
