#!/usr/bin/env bash
# The protocol on every run of train.sh: Omniglot runs at 10, 25, 50 and all
# test classes with the i.i.d. oracle (5 epochs), 10 class orders; sine-seq
# runs at 2, 5 and 10 functions, 20 tasks. Text + JSON per run here.
set -u
BIN=${BIN:-build/metalearn}
OUT=bench/results/oml
for r in "$@"; do
  case "$r" in
    sine-*) "$BIN" eval "runs/$r" --continual 2,5 --continual-orders 20 --continual-oracle 5 --threads 1 --json ;;
    *) "$BIN" eval "runs/$r" --continual 10,25,50 --continual-orders 10 --continual-oracle 5 --threads 1 --json ;;
  esac > "$OUT/continual-$r.txt" 2>&1
  tail -n 1 "$OUT/continual-$r.txt" > "$OUT/continual-$r.json"
  cp "runs/$r/config.json" "$OUT/config-$r.json"
  cp "runs/$r/log.jsonl" "$OUT/log-$r.jsonl"
done
