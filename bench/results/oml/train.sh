#!/usr/bin/env bash
# The runs of docs/results.md (OML section): OML and the transfer baseline on
# the same network (cnn4:64) and split of Omniglot's two small background
# sets, one thread each. Short budgets for a shared 2-core machine.
set -eu
BIN=${BIN:-build/metalearn}
D=${ML_DATA_DIR:-../shared/data}/omniglot
DATA=(--dataset "omniglot:$D/images_background_small1.zip,$D/images_background_small2.zip" --split 0.5,0.1,0.4
      --model cnn4:64 --threads 1 --seed 1 --eval-tasks 0 --quiet --checkpoint-every 1000)
ITERS=${ITERS:-6000}
SINE=(--task sine-seq --model mlp:64,64,64 --shots 100 --query 100 --meta-batch "${SINE_BATCH:-1}" --outer-lr 0.001 --threads 1
      --seed 1 --eval-tasks 0 --quiet --iters "${SINE_ITERS:-4000}")
case "$1" in
  oml) "$BIN" train --algo oml "${DATA[@]}" --ways 3 --shots 5 --query 5 --inner-lr 0.03 --outer-lr 0.001 \
         --meta-batch 4 --iters "$ITERS" --out runs/oml ;;
  oml-fo) "$BIN" train --algo oml-fo "${DATA[@]}" --ways 3 --shots 5 --query 5 --inner-lr 0.03 --outer-lr 0.001 \
         --meta-batch 4 --iters "$ITERS" --out runs/oml-fo ;;
  pretrain) "$BIN" train --algo pretrain "${DATA[@]}" --batch-size 120 --outer-lr 0.001 --iters "$ITERS" \
         --out runs/pretrain ;;
  # a random representation: one outer step at a negligible rate (--iters 0 is refused)
  scratch) "$BIN" train --algo oml "${DATA[@]}" --ways 3 --shots 5 --query 5 --iters 1 --outer-lr 1e-12 --out runs/scratch ;;
  # Incremental sine waves: 10 functions per trajectory, 10 points each (the
  # protocol learns 40 per function); the same MLP for every learner.
  sine-oml) "$BIN" train --algo oml "${SINE[@]}" --inner-lr 0.003 --out runs/sine-oml ;;
  sine-multitask) "$BIN" train --algo multitask "${SINE[@]}" --out runs/sine-multitask ;;
  sine-scratch) "$BIN" train --algo oml --task sine-seq --model mlp:64,64,64 --shots 100 --query 100 --threads 1 \
         --seed 1 --eval-tasks 0 --quiet --iters 1 --outer-lr 1e-12 --out runs/sine-scratch ;;
  # the same with a wider, deeper MLP (4 x 256; the paper's is 6 x 300 plus a 2-layer head)
  sine-oml-big) "$BIN" train --algo oml "${SINE[@]}" --model mlp:256,256,256,256 --inner-lr 0.003 --out runs/sine-oml-big ;;
  sine-multitask-big) "$BIN" train --algo multitask "${SINE[@]}" --model mlp:256,256,256,256 --out runs/sine-multitask-big ;;
  # second setting: inner rate 0.03, 4 trajectories per step (SINE_BATCH=4)
  sine-oml-b4) "$BIN" train --algo oml "${SINE[@]}" --inner-lr 0.03 --out runs/sine-oml-b4 ;;
  sine-multitask-b4) "$BIN" train --algo multitask "${SINE[@]}" --out runs/sine-multitask-b4 ;;
esac
