#!/usr/bin/env bash
# CLI tests of few-shot image sets beyond Omniglot and of the transfer
# baseline: idx:DIR and folder:DIR sources (made here), Fashion-MNIST (the
# Debian package dataset-fashion-mnist; skipped with a message when absent),
# cross-domain evaluation (eval RUN --dataset), --algo pretrain (train,
# evaluate, resume bit-for-bit, fine-tune all) and bad input.
set -u
BIN="$1"
NAME=fewshot_datasets
source "$(dirname "$0")/lib/common.sh"
OMNI="${ML_DATA_DIR:-../shared/data}/omniglot"
FMNIST=/usr/share/datasets/fashion-mnist

# A small IDX set: 4 classes of 12 images (12x12: resized to 28x28), and a
# folder set: 4 classes of 6 PNGs, with a copy holding an empty class folder.
PYTHONPATH="$(dirname "$0")/lib" python3 - "$TMP" <<'PY'
import gzip, os, struct, sys, zlib, random
out = sys.argv[1]; random.seed(3)
n, h = 48, 12
labels = [i % 4 for i in range(n)]
pix = bytes(min(255, (labels[i] * 60 + random.randrange(40)) * ((p // h + p % h + labels[i]) % 3 == 0))
            for i in range(n) for p in range(h * h))
os.makedirs(f"{out}/idx", exist_ok=True)
for split in ("train", "t10k"):
    with gzip.open(f"{out}/idx/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, h, h) + pix)
    with gzip.open(f"{out}/idx/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))
from testpng import png
for c in range(4):
    d = f"{out}/folder/class{c}"; os.makedirs(d, exist_ok=True)
    for k in range(6):
        png(f"{d}/img{k}.png", 20, [[255 if (x + y * (c + 1) + k) % 5 == 0 else 0 for x in range(20)] for y in range(20)])
PY
cp -r "$TMP/folder" "$TMP/folder_empty" && mkdir -p "$TMP/folder_empty/class9"
mkdir -p "$TMP/folder_half" && cp -r "$TMP/folder/class0" "$TMP/folder/class1" "$TMP/folder_half"
TINY=(--model cnn4:8 --ways 2 --shots 1 --query 2 --meta-batch 2 --rotations 0 --quiet)

expect "idx:DIR few-shot training" 0 '"accuracy":' -- "$BIN" train --algo protonet --dataset "idx:$TMP/idx" --split 0.5,0,0.5 "${TINY[@]}" --iters 3 --eval-tasks 4 --out "$TMP/idx_run" --json
grep -q '"0"' "$TMP/idx_run/split.json" && ok "idx: classes are the labels" || bad "idx split: $(head -c 200 "$TMP/idx_run/split.json")"
expect "folder:DIR few-shot training" 0 '"accuracy":' -- "$BIN" train --algo maml --dataset "folder:$TMP/folder" --split 0.5,0,0.5 "${TINY[@]}" --iters 2 --eval-tasks 4 --out "$TMP/folder_run" --json
expect "folder with an empty class" 1 "class9" -- "$BIN" train --algo protonet --dataset "folder:$TMP/folder_empty" "${TINY[@]}" --iters 1 --out "$TMP/x1"
expect "unknown dataset spec" 2 "unknown for meta-learning" -- "$BIN" train --algo protonet --dataset mnist-ish "${TINY[@]}" --iters 1 --out "$TMP/x2"
expect "empty idx: spec" 2 "" -- "$BIN" train --algo protonet --dataset "idx:" "${TINY[@]}" --iters 1 --out "$TMP/x3"
expect "more ways than training classes" 1 "training split has only 2 classes" -- "$BIN" train --algo protonet --dataset "idx:$TMP/idx" --split 0.5,0,0.5 "${TINY[@]}" --ways 3 --iters 1 --out "$TMP/x4"
expect "more ways than test classes at eval" 1 "test classes" -- "$BIN" eval "$TMP/idx_run" --ways 3 --episodes 2
expect "alphabet split of a label set" 2 "only Omniglot has alphabets" -- "$BIN" train --algo protonet --dataset "idx:$TMP/idx" --split-by alphabet "${TINY[@]}" --iters 1 --out "$TMP/x5"
expect "missing idx folder" 1 "nothere" -- "$BIN" train --algo protonet --dataset "idx:$TMP/nothere" "${TINY[@]}" --iters 1 --out "$TMP/x6"

# Cross-domain evaluation: the idx run on the folder's classes (all of them).
split_before=$(cksum < "$TMP/idx_run/split.json")
expect "eval on another dataset" 0 "on folder:" -- "$BIN" eval "$TMP/idx_run" --dataset "folder:$TMP/folder" --ways 4 --shots 1 --episodes 4 --json
tail -n 1 "$TMP/out" | grep -q '"eval_classes":"all"' && grep -q "all its classes (4 classes)" "$TMP/out" \
  && ok "cross-domain eval uses every class of the other dataset" || bad "cross-domain: $(head -c 300 "$TMP/out")"
expect "cross-domain eval, test split of the other dataset" 0 '"eval_classes":"test"' -- "$BIN" eval "$TMP/idx_run" --dataset "folder:$TMP/folder" --eval-classes test --ways 2 --episodes 2 --json
[ "$(cksum < "$TMP/idx_run/split.json")" = "$split_before" ] && ok "the run's split is left alone" || bad "split.json rewritten"
expect "eval on another run's test classes (--split-file)" 0 "held-out classes (2 classes)" -- "$BIN" eval "$TMP/folder_run" --dataset "idx:$TMP/idx" --images train --split-file "$TMP/idx_run/split.json" --ways 2 --episodes 2
expect "--split-file of another dataset" 1 "class9\|unknown\|not" -- "$BIN" eval "$TMP/idx_run" --dataset "folder:$TMP/folder" --split-file "$TMP/idx_run/split.json" --episodes 2
expect "--split-file with --eval-classes all" 2 "does not go with" -- "$BIN" eval "$TMP/idx_run" --split-file "$TMP/idx_run/split.json" --eval-classes all
expect "eval --eval-classes bogus" 2 "eval-classes" -- "$BIN" eval "$TMP/idx_run" --dataset "folder:$TMP/folder" --eval-classes some
expect "eval --images bogus" 2 "images" -- "$BIN" eval "$TMP/idx_run" --dataset "idx:$TMP/idx" --images both
expect "eval --dataset unknown" 2 "expected omniglot" -- "$BIN" eval "$TMP/idx_run" --dataset "cifar"
"$BIN" train --algo maml --task sinusoid --iters 2 --meta-batch 2 --eval-tasks 2 --quiet --out "$TMP/reg" >/dev/null 2>&1
expect "eval --dataset of a regression run" 2 "regression run" -- "$BIN" eval "$TMP/reg" --dataset "idx:$TMP/idx"
expect "regression run still evaluates" 0 "mse" -- "$BIN" eval "$TMP/reg" --tasks 2
# Runs written before few-shot IDX sets stored the supervised default dataset.
sed -i 's/"dataset":[^,]*,/"dataset": "fashion-mnist",/' "$TMP/reg/config.json"
grep -q '"dataset": "fashion-mnist"' "$TMP/reg/config.json" || bad "could not make a legacy config"
expect "legacy regression run (dataset fashion-mnist, no split.json)" 0 "mse" -- "$BIN" eval "$TMP/reg" --tasks 2

# Metric learners compute their episode head in one pass: no inner steps in the banner, no
# adaptation chart with a query-MSE axis, no adaptation steps in predict.
"$BIN" train --algo r2d2 --dataset "idx:$TMP/idx" --split 0.5,0,0.5 --model cnn4:8 --ways 2 --shots 1 --query 2 \
  --meta-batch 2 --rotations 0 --iters 2 --eval-tasks 2 --out "$TMP/r2d2" >/dev/null 2>"$TMP/err"
grep -q "no inner steps" "$TMP/err" && ! grep -q "inner step(s) at" "$TMP/err" \
  && ok "r2d2 banner: no inner steps" || bad "r2d2 banner: $(grep '^train:' "$TMP/err")"
rm -f "$TMP/plots"/*.png; mkdir -p "$TMP/plots"
expect "plot of a metric learner's run" 0 "learning_curve" -- "$BIN" plot "$TMP/r2d2" --out "$TMP/plots"
ls "$TMP/plots"/adaptation_K*.png >/dev/null 2>&1 && bad "plot drew an adaptation (query MSE) chart for r2d2" || ok "plot: no adaptation chart for r2d2"
expect "predict with a metric learner" 0 '"steps":0' -- "$BIN" predict "$TMP/idx_run" --support "$TMP/folder" --query "$TMP/folder" --json
expect "predict --steps with a metric learner" 2 "no adaptation steps" -- "$BIN" predict "$TMP/idx_run" --support "$TMP/folder" --query "$TMP/folder" --steps 3
expect "predict of a MAML run reports its steps" 0 '"steps":10' -- "$BIN" predict "$TMP/folder_run" --support "$TMP/folder_half" --query "$TMP/folder_half" --json

# --val-every on a few-shot run: val_acc (what eval --split val reports) in the log and its own
# chart from plot; training is bit-identical with or without it.
VE=(--algo protonet --dataset "folder:$TMP/folder" --split 0.5,0.5,0 --model cnn4:8 --ways 2 --shots 1 --query 2
    --meta-batch 2 --rotations 0 --iters 6 --log-every 3 --eval-tasks 0 --quiet)
"$BIN" train "${VE[@]}" --out "$TMP/ve0" >/dev/null 2>&1
expect "few-shot --val-every" 0 "" -- "$BIN" train "${VE[@]}" --val-every 3 --out "$TMP/ve1"
cmp -s "$TMP/ve0/checkpoint.safetensors" "$TMP/ve1/checkpoint.safetensors" && [ "$(grep -c '"val_acc":' "$TMP/ve1/log.jsonl")" -eq 2 ] \
  && ok "few-shot --val-every: val_acc logged, training unchanged" || bad "few-shot --val-every: $(cat "$TMP/ve1/log.jsonl")"
va=$(grep -o '"val_acc":[0-9.e+-]*' "$TMP/ve1/log.jsonl" | tail -n 1 | cut -d: -f2)
expect "eval --split val of that run" 0 "" -- "$BIN" eval "$TMP/ve1" --split val --episodes 600 --json
tail -n 1 "$TMP/out" | grep -q "\"accuracy\":$va," && ok "val_acc is eval --split val's accuracy ($va)" || bad "val_acc $va vs $(tail -c 200 "$TMP/out")"
mkdir -p "$TMP/veplot"
expect "plot draws the validation accuracy" 0 "validation_accuracy.png" -- "$BIN" plot "$TMP/ve1" --out "$TMP/veplot"

# The transfer baseline.
PRE=(--algo pretrain --dataset "idx:$TMP/idx" --split 0.5,0,0.5 --model cnn4:8 --rotations 1 --batch-size 8 --quiet)
expect "pretrain training and evaluation" 0 '"steps":100' -- "$BIN" train "${PRE[@]}" --iters 4 --ways 2 --shots 1 --eval-tasks 4 --out "$TMP/pre" --json
grep -q '"eval-steps":\s*"100"' "$TMP/pre/config.json" && ok "pretrain: 100 fine-tuning steps by default" || bad "pretrain eval-steps: $(grep eval-steps "$TMP/pre/config.json")"
"$BIN" train "${PRE[@]}" --iters 6 --checkpoint-every 3 --eval-tasks 0 --out "$TMP/pre_full" >/dev/null 2>&1
"$BIN" train "${PRE[@]}" --iters 3 --eval-tasks 0 --out "$TMP/pre_part" >/dev/null 2>&1
expect "pretrain resume" 0 "" -- "$BIN" train --resume "$TMP/pre_part" --iters 6 --quiet
cmp -s "$TMP/pre_full/checkpoint.safetensors" "$TMP/pre_part/checkpoint.safetensors" \
  && ok "pretrain resume is bit-identical (head included)" || bad "pretrain resume differs"
expect "pretrain eval, fine-tune all, any ways" 0 '"steps":5' -- "$BIN" eval "$TMP/pre" --ways 2 --steps 0,5 --finetune all --episodes 3 --json
expect "pretrain cross-domain eval" 0 "on folder:" -- "$BIN" eval "$TMP/pre" --dataset "folder:$TMP/folder" --ways 4 --steps 3 --episodes 2
expect "pretrain predict on a folder" 0 "accuracy" -- "$BIN" predict "$TMP/pre" --support "$TMP/folder" --query "$TMP/folder" --steps 20
expect "pretrain on a regression task" 2 "needs an image dataset" -- "$BIN" train --algo pretrain --task sinusoid --iters 1 --out "$TMP/x7"
expect "pretrain --finetune bogus" 2 "expected head or all" -- "$BIN" train "${PRE[@]}" --finetune some --iters 1 --out "$TMP/x8"
expect "--finetune all without pretrain" 2 "only --algo pretrain" -- "$BIN" train --algo protonet --dataset "idx:$TMP/idx" "${TINY[@]}" --finetune all --iters 1 --out "$TMP/x9"
expect "eval --finetune all of a protonet run" 2 "only --algo pretrain" -- "$BIN" eval "$TMP/idx_run" --finetune all --episodes 2

if [ -f "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  expect "fashion-mnist few-shot training" 0 "on fashion-mnist" -- "$BIN" train --algo protonet --dataset fashion-mnist --split 0.6,0,0.4 "${TINY[@]}" --iters 2 --eval-tasks 2 --out "$TMP/fm" --json
  grep -q '"6"\|"9"' "$TMP/fm/split.json" && ok "fashion-mnist: 10 label classes" || bad "fashion-mnist split"
  expect "Fashion-MNIST run evaluated on the idx set" 0 "all its classes (4 classes)" -- "$BIN" eval "$TMP/fm" --dataset "idx:$TMP/idx" --ways 2 --episodes 2
  expect "idx run evaluated on Fashion-MNIST test images" 0 "all its classes (10 classes)" -- "$BIN" eval "$TMP/idx_run" --dataset fashion-mnist --ways 5 --episodes 2 --query 5
  expect "more ways than Fashion-MNIST classes" 1 "10 classes" -- "$BIN" eval "$TMP/idx_run" --dataset fashion-mnist --ways 12 --episodes 2
else
  skip "Fashion-MNIST tests: $FMNIST/train-images-idx3-ubyte.gz not found (apt-get install dataset-fashion-mnist)"
fi
if [ -f "$OMNI/images_background_small1.zip" ]; then
  expect "idx run evaluated on Omniglot" 0 "all its classes" -- "$BIN" eval "$TMP/idx_run" --dataset "omniglot:$OMNI/images_background_small1.zip" --ways 5 --episodes 2 --query 3
else
  skip "Omniglot cross-domain test: $OMNI not found (set ML_DATA_DIR)"
fi
summary
