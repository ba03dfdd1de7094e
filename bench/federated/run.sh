#!/bin/bash
# Federated vs centralized meta-learning on Omniglot (the two
# images_background_small zips: 8 alphabets, 242 characters, 28x28), 5-way
# 1-shot. Every federated run: 8 clients = the 8 alphabets (each client holds
# only its alphabet's training characters, with rotations), all clients per
# round, E local outer iterations; its centralized twin sees the same number
# of tasks (rounds x clients x E x meta-batch) from all training classes.
# Usage: bench/federated/run.sh [BIN] [WORKDIR]; results (logs, eval.json,
# JSON lines) land in bench/results/federated/.
set -u
BIN=${1:-build/metalearn}
WORK=${2:-/tmp/fed-bench}
OUT=bench/results/federated
D=${ML_DATA_DIR:-../shared/data}/omniglot
DS=omniglot:$D/images_background_small1.zip,$D/images_background_small2.zip
mkdir -p "$WORK" "$OUT"
COMMON="--dataset $DS --ways 5 --shots 1 --query 5 --eval-tasks 300 --seed 1 --threads 2 --quiet --json --overwrite"
run() { # name, then train arguments
    local name=$1; shift
    echo "== $name: $BIN train $COMMON $*" | tee -a "$OUT/commands.txt"
    local t0=$(date +%s)
    "$BIN" train $COMMON --out "$WORK/$name" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"
    local rc=$?
    echo "   exit $rc in $(( $(date +%s) - t0 )) s" | tee -a "$OUT/commands.txt"
    mkdir -p "$OUT/$name"
    cp "$WORK/$name"/{config.json,log.jsonl,eval.json,split.json} "$OUT/$name/" 2>/dev/null
    tail -n 1 "$WORK/$name.out" > "$OUT/$name/result.json"
    cp "$WORK/$name.out" "$OUT/$name/stdout.txt"
}
: > "$OUT/commands.txt"
# Held-out characters of every alphabet (--split 0.6,0.1,0.3 by character);
# the validation characters give the accuracy-vs-rounds curve.
PROTO="--algo protonet --meta-batch 2 --eval-tasks 300"
run proto-fed     $PROTO --federated --clients 8 --local-iters 5 --rounds 40 --log-every 1 --val-every 5 --checkpoint-every 1
run proto-central $PROTO --iters 1600 --log-every 40 --val-every 200
MAML="--inner-steps 1 --inner-lr 0.4 --meta-batch 4 --eval-steps 1,5"
run maml-fed      --algo maml $MAML --federated --clients 8 --local-iters 5 --rounds 20 --log-every 1 --val-every 5 --checkpoint-every 1
run maml-central  --algo maml $MAML --iters 800 --log-every 40 --val-every 200
run fedavg-multitask --algo multitask $MAML --federated --clients 8 --local-iters 5 --rounds 20 --log-every 1 --val-every 5 --checkpoint-every 1
# New clients: held-out alphabets (--split-by alphabet: 6 training alphabets
# = 6 clients, 2 test alphabets never seen by any client).
ALPHA="--split-by alphabet --split 0.75,0,0.25"
run proto-fed-alpha     $PROTO $ALPHA --federated --clients 6 --local-iters 5 --rounds 40 --log-every 1 --checkpoint-every 1
run proto-central-alpha $PROTO $ALPHA --iters 1200 --log-every 40
run maml-fed-alpha      --algo maml $MAML $ALPHA --federated --clients 6 --local-iters 5 --rounds 20 --log-every 1 --checkpoint-every 1
run maml-central-alpha  --algo maml $MAML $ALPHA --iters 600 --log-every 40
run fedavg-multitask-alpha --algo multitask $MAML $ALPHA --federated --clients 6 --local-iters 5 --rounds 20 --log-every 1 --checkpoint-every 1
"$BIN" plot "$WORK/proto-fed" "$WORK/maml-fed" "$WORK/fedavg-multitask" --out "$OUT/plot-federated" > /dev/null 2>&1
"$BIN" plot "$WORK/proto-central" "$WORK/maml-central" --out "$OUT/plot-central" > /dev/null 2>&1
echo done | tee -a "$OUT/commands.txt"
