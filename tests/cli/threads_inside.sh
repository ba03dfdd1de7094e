#!/usr/bin/env bash
# Threads inside one task (issue 17): with fewer tasks than threads, the spare
# threads work inside the task's kernels, split by rules that depend on the data
# only (conv.c, conv_dnnl.c: backward-weights in chunks fixed by the batch size,
# summed in chunk order), so 1, 2 and 3 threads give byte-identical checkpoints.
# The batches here hold >= 32 images, enough for several backward-weight chunks.
set -u
BIN="$1"
NAME=threads_inside
source "$(dirname "$0")/lib/common.sh"

# same_over_threads WHAT ARGS...: train on 1, 2 and 3 threads, compare checkpoints.
same_over_threads() {
  local what="$1"; shift
  for t in 1 2 3; do
    "$BIN" train "$@" --threads $t --quiet --out "$TMP/$what.t$t" >"$TMP/$what.log$t" 2>&1 \
      || { bad "$what on $t threads: $(tail -c 300 "$TMP/$what.log$t")"; return; }
  done
  local a="$TMP/$what.t1/checkpoint.safetensors"
  if [ -s "$a" ] && cmp -s "$a" "$TMP/$what.t2/checkpoint.safetensors" && cmp -s "$a" "$TMP/$what.t3/checkpoint.safetensors"; then
    ok "$what: 1, 2 and 3 threads give the same checkpoint"
  else
    bad "$what: the thread count changes the checkpoint"
  fi
}

# (Supervised training, which writes no checkpoint, is tested the same way in tests/test_threads.c.)
DATA="${ML_DATA_DIR:-../shared/data}/omniglot"
if [ -f "$DATA/images_background_small1.zip" ]; then
  DS="omniglot:$DATA/images_background_small1.zip,$DATA/images_background_small2.zip"
  # one ProtoNet episode of 5 x (5 + 3) = 40 images per step (64 filters: oneDNN primitives)
  same_over_threads protonet --algo protonet --dataset "$DS" --ways 5 --shots 5 --query 3 --meta-batch 1 \
    --iters 2 --eval-tasks 0 --seed 3
  # one second-order MAML task per step, 5 x 8 = 40 query images (16 filters: oneDNN primitives)
  same_over_threads maml2 --algo maml --dataset "$DS" --model cnn4:16 --ways 5 --shots 1 --query 8 \
    --meta-batch 1 --inner-steps 1 --inner-lr 0.4 --iters 2 --eval-tasks 0 --seed 3
else
  skip "Omniglot not found in $DATA: ProtoNet and MAML-2 parts"
fi
summary
