#!/usr/bin/env bash
# Data-parallel supervised training under mpirun (--shards G): checkpoints
# byte-identical for 1 process x 1 or 2 threads and 2 or 3 ranks; resume from
# 2 ranks onto 3; --shards 1 is the plain minibatch step (today's numbers);
# settings the job cannot run are refused on every rank before a write.
NAME=mpi_supervised
source "$(dirname "$0")/lib.sh"
TOYIDX="$(cd "$(dirname "$0")/../cli/lib" && pwd)/toyidx.py"
cd "$TMP" || exit 1

# A small IDX set (class k: a bright square at position k), as tests/cli/train_idx.sh's.
python3 "$TOYIDX" toy
# cnn4 has batch norm: the shards' statistics matter.
S="--algo supervised --dataset idx:toy --model cnn4:8 --batch-size 24 --lr 0.01 --quiet"

"$BIN" train $S --epochs 3 --shards 6 --threads 1 --out g1x1 >/dev/null 2>&1 || bad "--shards 6 on 1 process"
"$BIN" train $S --epochs 3 --shards 6 --threads 2 --out g1x2 >/dev/null 2>&1 || bad "--shards 6 on 2 threads"
cmp -s g1x1/checkpoint.safetensors g1x2/checkpoint.safetensors && ok "--shards 6: 1 thread = 2 threads" \
  || bad "--shards 6: 2 threads differ from 1"
for n in 2 3; do
  mpi "$n" "$BIN" train $S --epochs 3 --shards 6 --threads 1 --out "g$n" >"g$n.txt" 2>&1 \
    || { bad "--shards 6 on $n ranks: $(tail -c 300 "g$n.txt")"; continue; }
  cmp -s g1x1/checkpoint.safetensors "g$n/checkpoint.safetensors" && ok "--shards 6: $n ranks = 1 process (checkpoint)" \
    || bad "--shards 6: $n ranks differ from 1 process"
  [ "$(grep -c 'test accuracy' "g$n.txt")" = 1 ] && ok "$n ranks: the results printed once" || bad "$n ranks printed: $(cat "g$n.txt")"
done
mpi 2 "$BIN" eval g2 --json >e2.txt 2>&1 || bad "eval of a supervised run on 2 ranks: $(tail -c 300 e2.txt)"
[ "$(grep -c 'test accuracy' e2.txt)" = 1 ] && [ "$(grep -c '"command":"eval"' e2.txt)" = 1 ] \
  && ok "eval on 2 ranks: the results printed once" || bad "eval on 2 ranks printed: $(cat e2.txt)"
[ "$(ls g3)" = "$(printf 'checkpoint.safetensors\nconfig.json\nlog.jsonl')" ] && ok "one run folder, written once" \
  || bad "run folder of 3 ranks: $(ls g3 | tr '\n' ' ')"
# Ranks may run different thread counts.
mpi 1 "$BIN" train $S --epochs 3 --shards 6 --threads 2 --out gmix : -np 1 "$BIN" train $S --epochs 3 --shards 6 \
  --threads 1 --out gmix >gmix.txt 2>&1 && cmp -s g1x1/checkpoint.safetensors gmix/checkpoint.safetensors \
  && ok "ranks with 2 and 1 threads = 1 process" || bad "ranks with 2 and 1 threads: $(tail -c 300 gmix.txt)"

# Resume with another N: 2 ranks for 1 epoch, then 3 ranks to epoch 3 = 1 process for 3.
mpi 2 "$BIN" train $S --epochs 1 --shards 6 --out r23 >/dev/null 2>&1 \
  && mpi 3 "$BIN" train --resume r23 --epochs 3 --quiet >r23.txt 2>&1 \
  && cmp -s g1x1/checkpoint.safetensors r23/checkpoint.safetensors && ok "resume: 2 ranks then 3 ranks = 1 process" \
  || bad "resume with another N: $(tail -c 300 r23.txt)"
[ "$(wc -l < r23/log.jsonl)" = 3 ] && ok "resumed log has every epoch once" || bad "resumed log: $(cat r23/log.jsonl)"

# Without --shards under mpirun: one shard per process, written to config.json.
mpi 2 "$BIN" train $S --epochs 1 --out d2 >/dev/null 2>&1 && grep -q '"shards":.*2' d2/config.json \
  && ok "under mpirun -np 2 without --shards: 2 shards, recorded" || bad "default shards: $(grep shards d2/config.json)"

# --shards 1 is the plain minibatch step: the same checkpoint as no --shards, and
# the numbers of the code before shards (this set: final loss 0.275859).
"$BIN" train $S --epochs 3 --out p0 --json >p0.txt 2>&1 && "$BIN" train $S --epochs 3 --shards 1 --out p1 >/dev/null 2>&1 \
  && cmp -s p0/checkpoint.safetensors p1/checkpoint.safetensors && ok "--shards 1 = no --shards" || bad "--shards 1 differs"
grep -q '"final_train_loss":0.275859' p0.txt && ok "one shard gives the numbers from before shards" \
  || bad "one shard: $(tail -n 1 p0.txt | head -c 300)"

# Ctrl-C on mpirun: every rank stops at the same step, rank 0 saves where the run stands
# (mid-epoch, or at an epoch's end when the signal lands on its last step), and 3 ranks
# resume it to the same bits as 1 process without a stop.
env "$GRACE" timeout 120 mpirun --oversubscribe -np 2 "$BIN" train $S --epochs 100000 --shards 6 --threads 1 --out int >int.txt 2>&1 &
job=$!
for _ in $(seq 600); do [ -e int/checkpoint.safetensors ] && break; sleep 0.1; done
sleep 0.3
kill -INT "$(pgrep -P $job -x mpirun)" 2>/dev/null
wait $job; rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$(grep -Ec 'interrupted at (the end of )?epoch' int.txt)" = 1 ] \
  && ok "Ctrl-C: all ranks stop, checkpoint saved, said once (exit $rc)" || bad "Ctrl-C: exit $rc: $(tail -c 400 int.txt)"
ep=$(python3 -c "import json,struct; b=open('int/checkpoint.safetensors','rb').read(); n=struct.unpack('<Q',b[:8])[0]; print(int(json.loads(b[8:8+n])['__metadata__']['epoch']) + 1)" 2>/dev/null)
if [ -n "$ep" ]; then
  mpi 3 "$BIN" train --resume int --epochs "$ep" --quiet >int2.txt 2>&1 \
    && "$BIN" train $S --epochs "$ep" --shards 6 --threads 1 --out intref >/dev/null 2>&1 \
    && cmp -s int/checkpoint.safetensors intref/checkpoint.safetensors \
    && ok "the interrupted run resumed on 3 ranks = 1 process without a stop (epoch $ep)" \
    || bad "resume after Ctrl-C to epoch $ep: $(tail -c 300 int2.txt)"
else
  bad "no readable checkpoint after Ctrl-C"
fi

# Bad input, refused on every rank before anything is written.
expect "--shards below the processes" 2 "rank 0 of 3: --shards 2 with 3 processes" -- mpi 3 "$BIN" train $S --epochs 1 \
  --shards 2 --out bad1
[ "$(grep -c -- '--shards 2 with 3 processes' "$TMP/err")" = 3 ] && ok "every rank says so" || bad "not every rank: $(cat "$TMP/err")"
[ ! -e bad1 ] && ok "no run folder written" || bad "bad1: $(ls bad1)"
expect "a shard of fewer than 2 examples" 2 "--shards 13 with a minibatch of 24 (--batch-size)" -- mpi 2 "$BIN" train $S \
  --epochs 1 --shards 13 --out bad2
mkdir -p with without && cp -r toy with/ 
expect "a rank cannot read the data" 1 "rank 1 of 2: .*train-images" -- timeout 60 mpirun --oversubscribe \
  -np 1 --wdir "$TMP/with" "$BIN" train $S --epochs 1 --out "$TMP/bad3" : -np 1 --wdir "$TMP/without" "$BIN" train $S \
  --epochs 1 --out "$TMP/bad3"
[ ! -e bad3/checkpoint.safetensors ] && [ ! -e bad3/config.json ] && ok "no run folder written" || bad "bad3: $(ls bad3)"
summary
