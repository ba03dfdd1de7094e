#!/bin/bash
# Federated MAML on sinusoid clients split by amplitude (10 clients, client k
# draws amplitudes in [0.1 + 0.49 k, 0.1 + 0.49 (k + 1))), 3 sampled per
# round, 5 local outer iterations of 5 tasks, against centralized MAML on
# the same number of tasks (1000 x 3 x 5 x 5 = 15000 x 5).
# Usage: bench/federated/sinusoid.sh [BIN] [WORKDIR]
set -u
BIN=${1:-build/metalearn}
WORK=${2:-/tmp/fed-sin}
OUT=bench/results/federated
mkdir -p "$WORK" "$OUT"
C="--algo maml --task sinusoid --meta-batch 5 --eval-steps 1,10 --seed 1 --threads 1 --quiet --json --overwrite"
for spec in "sin-fed|--federated --clients 10 --client-fraction 0.3 --local-iters 5 --rounds 1000 --log-every 50 --checkpoint-every 50" \
            "sin-central|--iters 15000 --log-every 750"; do
    name=${spec%%|*}; args=${spec#*|}
    echo "== $name: $BIN train $C $args" >> "$OUT/commands-sinusoid.txt"
    "$BIN" train $C $args --out "$WORK/$name" > "$WORK/$name.out" 2>&1
    echo "   exit $?" >> "$OUT/commands-sinusoid.txt"
    mkdir -p "$OUT/$name"
    cp "$WORK/$name"/{config.json,log.jsonl,eval.json} "$OUT/$name/"
    tail -n 1 "$WORK/$name.out" > "$OUT/$name/result.json"
done
