#!/usr/bin/env bash
# Transfer baseline vs meta-learners on Omniglot, and cross-domain checks
# with Fashion-MNIST (docs/results.md, "Transfer and cross-domain"). Run from
# the repository root after building; raw outputs go to bench/results/transfer/.
# Expects bench/results/transfer/protonet_20w5s (a copy of the Omniglot
# ProtoNet run of bench/results/omniglot) and trains the other two runs.
set -eu
B=build/metalearn
R=bench/results/transfer
D=../shared/data/omniglot
OMNI="omniglot:$D/images_background_small1.zip,$D/images_background_small2.zip"
T="--threads 2 --episodes 600"
T60="--threads 2 --episodes 60"
step() { echo "+ $*" >&2; }
# ev OUT ARGS...: metalearn eval ARGS > OUT, skipped when OUT already holds results.
ev() { local out=$1; shift; grep -q '"results":\[{' "$out" 2>/dev/null && return 0; $B eval "$@" > "$out"; }

if [ ! -f $R/pretrain_omniglot/checkpoint.safetensors ]; then
  step pretrain
  $B train --algo pretrain --dataset "$OMNI" --iters 4000 --batch-size 64 --outer-lr 0.001 --eval-tasks 0 \
    --threads 1 --checkpoint-every 500 --log-every 100 --out $R/pretrain_omniglot \
    > $R/pretrain_omniglot.stdout 2> $R/pretrain_omniglot.stderr
fi
cmp $R/pretrain_omniglot/split.json $R/protonet_20w5s/split.json   # same classes (seed 1, 0.6,0.1,0.3)
if [ ! -f $R/protonet_fmnist/checkpoint.safetensors ]; then
  step protonet on fashion-mnist
  $B train --algo protonet --dataset fashion-mnist --rotations 0 --split 1,0,0 --ways 5 --shots 5 --query 15 \
    --meta-batch 2 --iters 2000 --eval-tasks 0 --threads 2 --log-every 100 --out $R/protonet_fmnist \
    > $R/protonet_fmnist.stdout 2> $R/protonet_fmnist.stderr
fi

# Same 600 episodes for every model (eval seed 20260101), 15 queries per class
# (--episodes given: the runs trained with --eval-tasks 0 would evaluate none).
for run in protonet_20w5s pretrain_omniglot; do
  steps=""; [ $run = pretrain_omniglot ] && steps="--steps 10,100"
  step $run in-domain
  ev $R/$run.omniglot_5way.txt $R/$run --ways 5 --shots 1,5 --query 15 $steps $T --json
  ev $R/$run.omniglot_20way.txt $R/$run --ways 20 --shots 1 --query 15 $steps $T --json
  step $run on fashion-mnist
  ev $R/$run.fmnist_5way.txt $R/$run --dataset fashion-mnist --ways 5 --shots 1,5 --query 15 $steps $T --json
done
step protonet_fmnist on the Omniglot test classes
ev $R/protonet_fmnist.omniglot_5way.txt $R/protonet_fmnist --dataset "$OMNI" --split-file $R/protonet_20w5s/split.json --ways 5 --shots 1,5 --query 15 $T --json
ev $R/protonet_fmnist.omniglot_20way.txt $R/protonet_fmnist --dataset "$OMNI" --split-file $R/protonet_20w5s/split.json --ways 20 --shots 1 --query 15 $T --json
# in-domain reference: its own (seen) 10 classes, unseen t10k images
ev $R/protonet_fmnist.fmnist_5way.txt $R/protonet_fmnist --dataset fashion-mnist --eval-classes all --ways 5 --shots 1,5 --query 15 $T --json

# Fine-tuning the whole network is ~100x the cost: the first 60 of the same
# episodes, 5-way 1-shot, against head-only on those 60.
step pretrain fine-tune all
ev $R/pretrain_omniglot.finetune_all_60ep.txt $R/pretrain_omniglot --ways 5 --shots 1 --query 15 --steps 10,50 --finetune all $T60 --json
ev $R/pretrain_omniglot.finetune_head_60ep.txt $R/pretrain_omniglot --ways 5 --shots 1 --query 15 --steps 10,50 $T60 --json
