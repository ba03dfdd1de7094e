#!/usr/bin/env bash
# The protocol of docs/results.md (section "Continual learning: the paper's
# OML meta-loss and whole-network baselines") on the runs of
# bench/results/oml/train.sh. Text + JSON per run in bench/results/continual/.
#   eval.sh oml pretrain scratch   # a linear head on each run's frozen representation
#   eval.sh whole                  # whole-network scratch (online) and oracle (i.i.d.), from runs/scratch's
#                                  # architecture and split (its parameters are not used)
#   eval.sh sine-oml ...           # incremental sine waves
#   eval.sh grids-oml grids-pretrain   # the same run with the rate grid ending at 1e-5, at 3e-5, or below 1e-6
set -u
BIN=${BIN:-build/metalearn}
OUT=bench/results/continual
grid() { # RUN SUFFIX RATES
  "$BIN" eval "runs/$1" --continual 10,25,50 --continual-orders 10 --continual-lr "$3" --threads 1 --json \
    > "$OUT/continual-$1-$2.txt" 2>&1
  tail -n 1 "$OUT/continual-$1-$2.txt" > "$OUT/continual-$1-$2.json"
}
for r in "$@"; do
  if [ "${r#grids-}" != "$r" ]; then
    n=${r#grids-}
    grid "$n" grid-1e-5 0.03,0.01,0.003,0.001,0.0003,0.0001,0.00003,0.00001
    grid "$n" grid-3e-5 0.3,0.1,0.03,0.01,0.003,0.001,0.0003,0.0001,0.00003
    grid "$n" smaller-rates 0.000001,0.0000003,0.0000001
    continue
  fi
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
