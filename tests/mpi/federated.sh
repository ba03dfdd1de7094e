#!/usr/bin/env bash
# Federated meta-learning with clients on MPI ranks (src/federated/transport_mpi.c):
# checkpoints byte-identical to the one-process simulation for 2 and 3 ranks
# with more clients than ranks, resume per round on another N, the privacy
# boundary recorded on every rank, and failures that end every rank naming
# one (each command bounded by timeout).
NAME=mpi_federated
source "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1

# The privacy boundary over MPI: each rank records what it sends (tests/test_federated.c --mpi).
TEST_FED="$(dirname "$TEST_DIST")/test_federated"
if [ -x "$TEST_FED" ]; then
  mkdir -p priv
  mpi 3 "$TEST_FED" --mpi "$TMP/priv" >priv.txt 2>&1 && [ "$(grep -c '1 passed, 0 failed' priv.txt)" = 3 ] \
    && ok "privacy boundary on 3 ranks: only model tensors and count/loss cross, each from its own rank" \
    || bad "privacy boundary on 3 ranks: $(tail -c 600 priv.txt)"
else
  skip "test_federated not found beside $TEST_DIST"
fi

# Sinusoid MAML, 5 clients (more than the ranks), 60% per round.
S="--federated --algo maml --task sinusoid --model mlp:16,16 --clients 5 --client-fraction 0.6 --local-iters 2
   --meta-batch 3 --rounds 4 --eval-tasks 10 --seed 5 --threads 1 --quiet --checkpoint-every 1 --log-every 1"
"$BIN" train $S --out f1 >f1.txt 2>&1 || bad "federated sinusoid, 1 process: $(tail -c 300 f1.txt)"
for n in 2 3; do
  mpi "$n" "$BIN" train $S --out "f$n" >"f$n.txt" 2>&1 || { bad "federated sinusoid on $n ranks: $(tail -c 300 "f$n.txt")"; continue; }
  cmp -s f1/checkpoint.safetensors "f$n/checkpoint.safetensors" && same_eval f1/eval.json "f$n/eval.json" \
    && ok "federated sinusoid: $n ranks = 1 process (checkpoint, evaluation)" || bad "federated sinusoid: $n ranks differ"
done
[ "$(ls f3)" = "$(printf 'checkpoint.safetensors\nconfig.json\neval.json\nlog.jsonl')" ] \
  && ok "one run folder, written once" || bad "run folder of 3 ranks: $(ls f3 | tr '\n' ' ')"
# The log's round bytes count both ways, summed over the ranks.
b1=$(python3 -c "import json; print([json.loads(l)['round_bytes'] for l in open('f1/log.jsonl')])")
b3=$(python3 -c "import json; print([json.loads(l)['round_bytes'] for l in open('f3/log.jsonl')])")
[ "$b1" = "$b3" ] && ok "bytes per round the same on 3 ranks ($b3)" || bad "bytes per round: 1 process $b1, 3 ranks $b3"

# Resume per round with another N: 3 ranks to round 2, then 2 ranks to 4 = 1 process.
mpi 3 "$BIN" train $S --out r32 --stop-at 2 >r.txt 2>&1 && mpi 2 "$BIN" train --resume r32 --quiet >>r.txt 2>&1 \
  && cmp -s f1/checkpoint.safetensors r32/checkpoint.safetensors && ok "resume: 3 ranks then 2 ranks = 1 process" \
  || bad "resume with another N: $(tail -c 300 r.txt)"
[ "$(wc -l < r32/log.jsonl)" = "$(wc -l < f1/log.jsonl)" ] && ok "resumed log has every round once" || bad "resumed log"

# A client that fails mid-round (its loss diverges) ends every rank, naming its rank.
D="--federated --algo maml --task sinusoid --clients 3 --local-iters 3 --rounds 2 --eval-tasks 0 --quiet
   --optimizer sgd --outer-lr 1000 --inner-lr 1000"
expect "a client fails mid-round" 1 "rank [12] of 3: round 1, client" -- timeout 60 mpirun --oversubscribe -np 3 "$BIN" train $D --out div
[ ! -e div/checkpoint.safetensors ] && ok "no checkpoint from the failed round" || bad "div: $(ls div)"
expect "ranks with other client counts" 2 "rank 1 of 2 runs other settings" -- timeout 60 mpirun --oversubscribe \
  -np 1 "$BIN" train $S --out bad1 : -np 1 "$BIN" train $S --clients 4 --out bad1

# Omniglot ProtoNet, 8 clients by alphabet (tiny cnn4), and a rank that cannot read the data.
DATA="${ML_DATA_DIR:-../shared/data}/omniglot"
if [ -f "$DATA/images_background_small1.zip" ] && [ -f "$DATA/images_background_small2.zip" ]; then
  mkdir -p with without
  ln -sf "$(cd "$DATA" && pwd)"/images_background_small{1,2}.zip with/
  O="--federated --algo protonet --dataset omniglot:images_background_small1.zip,images_background_small2.zip
     --model cnn4:8 --ways 5 --shots 1 --query 2 --meta-batch 1 --clients 8 --client-fraction 0.5 --local-iters 1
     --rotations 0 --rounds 2 --eval-tasks 4 --seed 2 --threads 1 --quiet"
  (cd with && "$BIN" train $O --out "$TMP/o1" >"$TMP/o1.txt" 2>&1) || bad "omniglot protonet, 1 process: $(tail -c 300 o1.txt)"
  (cd with && mpi 3 "$BIN" train $O --out "$TMP/o3" >"$TMP/o3.txt" 2>&1) \
    && cmp -s o1/checkpoint.safetensors o3/checkpoint.safetensors && same_eval o1/eval.json o3/eval.json \
    && ok "federated omniglot protonet (8 clients): 3 ranks = 1 process" || bad "omniglot protonet on 3 ranks: $(tail -c 300 o3.txt)"
  expect "a rank cannot read the data" 1 "rank 1 of 2: .*images_background_small1.zip" -- timeout 60 mpirun --oversubscribe \
    -np 1 --wdir "$TMP/with" "$BIN" train $O --out "$TMP/bad2" : -np 1 --wdir "$TMP/without" "$BIN" train $O --out "$TMP/bad2"
  [ "$(grep -c 'rank 1 of 2' "$TMP/err")" -ge 2 ] && ok "every rank reports it" || bad "only one rank reported: $(cat "$TMP/err")"
  [ ! -e bad2/config.json ] && ok "no run folder written" || bad "bad2: $(ls bad2)"
else
  skip "Omniglot not found in $DATA: federated ProtoNet over MPI not run"
fi
summary
