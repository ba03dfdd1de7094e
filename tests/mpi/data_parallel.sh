#!/usr/bin/env bash
# Data-parallel meta-training under mpirun: checkpoints (and the final
# evaluation) bit-identical to one process for N = 1, 2, 3 ranks and any
# thread count, for a regression learner and few-shot learners; resume with
# another N continues bit for bit.
NAME=mpi_data_parallel
source "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1

# The collectives themselves (tests/test_dist.c) on 3 ranks.
if [ -n "$TEST_DIST" ]; then
  mpi 3 "$TEST_DIST" >dist.txt 2>&1 && ok "dist.h collectives on 3 ranks" || bad "test_dist on 3 ranks: $(tail -c 600 dist.txt)"
fi

# Sinusoid MAML: 1 process x 1 thread is the reference.
S="--algo maml --task sinusoid --meta-batch 5 --iters 8 --eval-tasks 20 --quiet"
"$BIN" train $S --threads 1 --out s1 >/dev/null 2>&1 || bad "sinusoid maml, 1 process"
for spec in "2 1" "3 2"; do
  set -- $spec
  # --checkpoint-minutes 0.0001: a checkpoint falls due by each rank's clock at different times
  mpi "$1" "$BIN" train $S --threads "$2" --checkpoint-minutes 0.0001 --out "s$1x$2" >"s$1x$2.txt" 2>&1 || { bad "sinusoid maml on $1 ranks: $(tail -c 300 "s$1x$2.txt")"; continue; }
  cmp -s s1/checkpoint.safetensors "s$1x$2/checkpoint.safetensors" && same_eval s1/eval.json "s$1x$2/eval.json" \
    && ok "sinusoid maml: $1 ranks x $2 threads = 1 process (checkpoint, evaluation)" \
    || bad "sinusoid maml: $1 ranks x $2 threads differ from 1 process"
done
# Ranks may run different thread counts (machines differ): 1 and 2 threads.
mpi 1 "$BIN" train $S --threads 1 --out smix : -np 1 "$BIN" train $S --threads 2 --out smix >smix.txt 2>&1 \
  && cmp -s s1/checkpoint.safetensors smix/checkpoint.safetensors && ok "ranks with 1 and 2 threads = 1 process" \
  || bad "ranks with 1 and 2 threads: $(tail -c 300 smix.txt)"
[ "$(ls s3x2)" = "$(printf 'checkpoint.safetensors\nconfig.json\neval.json\nlog.jsonl')" ] \
  && ok "one run folder, written once" || bad "run folder of 3 ranks: $(ls s3x2 | tr '\n' ' ')"

# Meta-SGD (learned rates: extra tensors) on 3 ranks.
for a in metasgd; do
  R="--algo $a --task sinusoid --meta-batch 4 --iters 5 --eval-tasks 0 --quiet --optimizer sgd --outer-lr 0.05"
  "$BIN" train $R --threads 1 --out "$a-1" >"$a-1.txt" 2>&1; rc1=$?
  mpi 3 "$BIN" train $R --threads 1 --out "$a-3" >"$a-3.txt" 2>&1; rc3=$?
  # (seen once under heavy load and not reproduced: the exits and messages say which side failed)
  cmp -s "$a-1/checkpoint.safetensors" "$a-3/checkpoint.safetensors" && ok "$a: 3 ranks = 1 process" \
    || bad "$a: 3 ranks differ (exit 1 process $rc1, 3 ranks $rc3: $(tail -c 200 "$a-1.txt") $(tail -c 300 "$a-3.txt"))"
done

# Resume with another N: 2 ranks to iteration 4, then 3 ranks to 8 = 1 process to 8.
S8="--algo maml --task sinusoid --meta-batch 5 --iters 8 --eval-tasks 0 --quiet --checkpoint-every 2"
"$BIN" train $S8 --out r1 >/dev/null 2>&1
mpi 2 "$BIN" train $S8 --out r23 --stop-at 4 >/dev/null 2>&1 && mpi 3 "$BIN" train --resume r23 --iters 8 --quiet >r23.txt 2>&1 \
  && cmp -s r1/checkpoint.safetensors r23/checkpoint.safetensors && ok "resume: 2 ranks then 3 ranks = 1 process" \
  || bad "resume with another N: $(tail -c 300 r23.txt)"
[ "$(wc -l < r23/log.jsonl)" = "$(wc -l < r1/log.jsonl)" ] && ok "resumed log has every line once" || bad "resumed log: $(cat r23/log.jsonl)"

# The Python package under mpirun: the library starts MPI itself, the same run.
PKG="$(cd "$(dirname "$0")/../../python" && pwd)"
if [ -n "$SHARED_LIB" ] && /usr/bin/python3 -c "import numpy" 2>/dev/null; then
  cat > py.py <<PY
import sys
sys.path.insert(0, "$PKG")
import metalearn as ml
run = ml.Run.new(algo="maml", task="sinusoid", meta_batch=5, iters=8, eval_tasks=0, threads=1, out=sys.argv[1], quiet=True)
assert (ml.rank(), ml.size()) in ((0, 2), (1, 2)), (ml.rank(), ml.size())
run.train()
PY
  ML_LIBRARY="$SHARED_LIB" mpi 2 /usr/bin/python3 py.py py2 >py.txt 2>&1 && cmp -s r1/checkpoint.safetensors py2/checkpoint.safetensors \
    && ok "Python Run.new().train() on 2 ranks = 1 process" || bad "Python on 2 ranks: $(tail -c 400 py.txt)"
else
  skip "Python package under mpirun: no numpy for /usr/bin/python3"
fi

# Few-shot (tiny cnn4): ProtoNet and second-order MAML on 3 ranks, R2-D2 on 2.
DATA="${ML_DATA_DIR:-../shared/data}/omniglot"
if [ -f "$DATA/images_background_small1.zip" ]; then
  DS="omniglot:$DATA/images_background_small1.zip"
  for spec in "protonet 3" "maml 3" "r2d2 2"; do
    set -- $spec
    F="--algo $1 --dataset $DS --ways 5 --shots 1 --query 2 --meta-batch 4 --iters 3 --eval-tasks 6 --model cnn4:8 --inner-steps 1 --quiet"
    "$BIN" train $F --threads 2 --out "o-$1-1" >/dev/null 2>&1 || bad "$1 on 1 process"
    mpi "$2" "$BIN" train $F --threads 1 --out "o-$1-$2" >"o-$1.txt" 2>&1 || { bad "$1 on $2 ranks: $(tail -c 300 "o-$1.txt")"; continue; }
    cmp -s "o-$1-1/checkpoint.safetensors" "o-$1-$2/checkpoint.safetensors" && same_eval "o-$1-1/eval.json" "o-$1-$2/eval.json" \
      && ok "omniglot $1: $2 ranks = 1 process" || bad "omniglot $1: $2 ranks differ"
  done
  # Task selection reads every task's loss after each step: the same draws on every rank.
  DS2="omniglot:$DATA/images_background_small1.zip,$DATA/images_background_small2.zip"
  for sampler in curriculum; do
    T=(--algo protonet --dataset "$DS2" --model cnn4:8 --ways 5 --shots 1 --query 2 --meta-batch 3 --eval-tasks 4
       --rotations 0 --test-alphabets "Japanese_(katakana)" --quiet --task-sampler $sampler --target test-support:1
       --iters 6 --select-every 3)
    "$BIN" train "${T[@]}" --threads 1 --out "sel-$sampler-1" >/dev/null 2>&1 || bad "$sampler on 1 process"
    mpi 2 "$BIN" train "${T[@]}" --threads 1 --out "sel-$sampler-2" >"sel-$sampler.txt" 2>&1 \
      || { bad "$sampler on 2 ranks: $(tail -c 300 "sel-$sampler.txt")"; continue; }
    cmp -s "sel-$sampler-1/checkpoint.safetensors" "sel-$sampler-2/checkpoint.safetensors" \
      && ok "task sampler $sampler: 2 ranks = 1 process" || bad "task sampler $sampler: 2 ranks differ"
  done
else
  skip "Omniglot not found in $DATA: few-shot learners not run"
fi
summary
