#!/usr/bin/env bash
# The protocol of docs/results.md (section "Continual learning: the paper's
# OML meta-loss and whole-network baselines") on the runs of
# bench/results/oml/train.sh. Text + JSON per run in bench/results/continual/.
#   eval.sh oml pretrain scratch   # a linear head on each run's frozen representation
#   eval.sh whole                  # whole-network scratch (online) and oracle (i.i.d.), from runs/scratch's
#                                  # architecture and split (its parameters are not used)
#   eval.sh sine-oml ...           # incremental sine waves
set -u
BIN=${BIN:-build/metalearn}
OUT=bench/results/continual
for r in "$@"; do
  case "$r" in
    whole) "$BIN" eval runs/scratch --continual 10,25,50 --continual-orders 10 --continual-oracle 5 \
             --continual-whole-network --threads 1 --json ;;
    sine-*) "$BIN" eval "runs/$r" --continual 2,5 --continual-orders 20 --continual-oracle 5 --threads 1 --json ;;
    *) "$BIN" eval "runs/$r" --continual 10,25,50 --continual-orders 10 --continual-oracle 5 --threads 1 --json ;;
  esac > "$OUT/continual-$r.txt" 2>&1
  tail -n 1 "$OUT/continual-$r.txt" > "$OUT/continual-$r.json"
  if [ "$r" != whole ]; then
    cp "runs/$r/config.json" "$OUT/config-$r.json"
    cp "runs/$r/log.jsonl" "$OUT/log-$r.jsonl"
  fi
done
