#!/usr/bin/env bash
# CLI tests of settings that cannot work, refused at setup with a clear
# message (never a crash, never after training): learners on tasks they
# cannot learn, checkpoints of another learner, episode shapes the data
# cannot fill.
set -u
BIN="$1"
NAME=early_errors
source "$(dirname "$0")/lib/common.sh"
SMALL=(--model mlp:8 --meta-batch 2 --shots 3 --query 3 --eval-tasks 3 --eval-query 3 --quiet)

# Metric learners label examples: regression tasks are refused, in train and eval.
for algo in protonet matching r2d2; do
  expect "train --algo $algo --task sinusoid is refused" 2 "$algo classifies only (regression tasks take maml" -- \
    "$BIN" train --algo $algo --task sinusoid "${SMALL[@]}" --iters 2 --out "$TMP/$algo"
  [ -e "$TMP/$algo" ] && bad "$algo: a run folder was written" || ok "$algo: no run folder"
done
"$BIN" train --algo maml --task sinusoid "${SMALL[@]}" --iters 2 --out "$TMP/maml" >/dev/null 2>&1
sed 's/"algo":\([[:space:]]*\)"maml"/"algo":\1"protonet"/' "$TMP/maml/config.json" >"$TMP/c" && mv "$TMP/c" "$TMP/maml/config.json"
expect "eval of a regression run whose config says protonet" 2 "protonet classifies only" -- \
  "$BIN" eval "$TMP/maml" --tasks 3

# A learner that adapts by inner steps refuses 0 of them as a usage error naming the option, before any data.
expect "maml --inner-steps 0 is a usage error" 2 "\-\-inner-steps 0: --algo maml adapts by inner steps" -- \
  "$BIN" train --algo maml --task sinusoid "${SMALL[@]}" --inner-steps 0 --iters 2 --out "$TMP/steps0"
[ -e "$TMP/steps0" ] && bad "inner-steps 0: a run folder was written" || ok "inner-steps 0: no run folder"

# A checkpoint is evaluated as the learner that wrote it, or not at all.
sed 's/"algo":\([[:space:]]*\)"protonet"/"algo":\1"fomaml"/' "$TMP/maml/config.json" >"$TMP/c" && mv "$TMP/c" "$TMP/maml/config.json"
expect "eval of a maml checkpoint whose config says fomaml" 1 "a maml checkpoint, but the run's config.json says --algo fomaml" -- \
  "$BIN" eval "$TMP/maml" --tasks 3
expect "eval CHECKPOINT of another learner" 1 "a maml checkpoint" -- \
  "$BIN" eval "$TMP/maml/checkpoint.safetensors" --tasks 3
# --init takes parameters of any learner.
expect "--init from another learner's checkpoint" 0 "" -- \
  "$BIN" train --algo fomaml --task sinusoid "${SMALL[@]}" --iters 2 --init "$TMP/maml/checkpoint.safetensors" --out "$TMP/fo"

# A NaN before the first checkpoint: no "last good checkpoint" that does not exist.
expect "NaN before any checkpoint" 1 "no checkpoint was saved before this" -- \
  "$BIN" train --algo maml --task sinusoid "${SMALL[@]}" --inner-lr 1000 --inner-steps 3 --iters 50 --out "$TMP/nan0"
grep -q "last good checkpoint" "$TMP/err" && bad "NaN: names a checkpoint that was never written" || ok "NaN: names no checkpoint"
[ -e "$TMP/nan0/checkpoint.safetensors" ] && bad "nan0: a checkpoint exists after all" || ok "nan0: indeed no checkpoint"
"$BIN" train --algo maml --task sinusoid "${SMALL[@]}" --iters 4 --stop-at 2 --out "$TMP/nan2" >/dev/null 2>&1
expect "NaN after a resume names its checkpoint" 1 "last good checkpoint is .*nan2/checkpoint.safetensors (iteration 2)" -- \
  "$BIN" train --resume "$TMP/nan2" --iters 50 --inner-lr 1000 --inner-steps 3
# CSV tasks: 5 tasks (the default split deals 3 / 1 / 1 of them) of 6 support and 4 query rows. Every count the run will
# ask for is checked against them at setup, naming the option and the task.
python3 - "$TMP/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for t in range(5):
        for split, n in (("support", 6), ("query", 4)):
            for i in range(n): f.write(f"t{t},{split},{i * 0.5 - t},{(i + t) % 3 - 1}\n")
PY
CSV=(--algo maml --task "csv:$TMP/t.csv" --model mlp:8 --meta-batch 2 --eval-tasks 3 --quiet)
expect "--shots beyond a CSV task's support rows" 2 "\-\-shots 7: .*t.csv: task 't0' has only 6 support rows" -- \
  "$BIN" train "${CSV[@]}" --shots 7 --query 2 --eval-query 2 --iters 50 --out "$TMP/csv1"
expect "--query beyond a CSV task's query rows" 2 "\-\-query 5: .*task 't0' has only 4 query rows" -- \
  "$BIN" train "${CSV[@]}" --shots 3 --query 5 --eval-query 2 --iters 50 --out "$TMP/csv2"
expect "default --eval-query 100 refused before training" 2 "\-\-eval-query 100: .*has only 4 query rows" -- \
  "$BIN" train "${CSV[@]}" --shots 3 --query 2 --iters 50 --out "$TMP/csv3"
expect "--eval-shots beyond the support rows" 2 "\-\-eval-shots 9: .*has only 6 support rows" -- \
  "$BIN" train "${CSV[@]}" --shots 3 --query 2 --eval-query 2 --eval-shots 3,9 --iters 50 --out "$TMP/csv4"
for d in csv1 csv2 csv3 csv4; do [ -e "$TMP/$d/log.jsonl" ] && bad "$d: training ran before the error"; done
# 0 = all rows of each task, in training and evaluation.
expect "--query 0 --eval-query 0: all rows" 0 "4 query points\|all query points" -- \
  "$BIN" train "${CSV[@]}" --shots 3 --query 0 --eval-query 0 --iters 2 --out "$TMP/csv_all" --eval-tasks 3
grep -q "all query points" "$TMP/out" && ok "evaluation says all query points" || bad "banner: $(head -c 300 "$TMP/out")"
expect "eval --query 0" 0 "all query points" -- "$BIN" eval "$TMP/csv_all" --query 0 --tasks 3
# A CSV "file" that never ends with text (/dev/zero) stops at its first NUL, not after filling the memory.
expect "--task csv:/dev/zero stops at the NUL" 1 "/dev/zero:1: contains a NUL byte" -- \
  timeout -s KILL 60 "$BIN" train "${CSV[@]}" --task csv:/dev/zero --shots 3 --iters 2 --out "$TMP/zero"
printf '1,2\n' >"$TMP/q.csv"
expect "predict --support /dev/zero stops at the NUL" 1 "/dev/zero:1: contains a NUL byte" -- \
  timeout -s KILL 60 "$BIN" predict "$TMP/csv_all" --support /dev/zero --query "$TMP/q.csv" --quiet
# eval's own option names in its messages (--shots, --query, --steps), not train's --eval-*.
expect "eval --shots beyond the rows names --shots" 2 "\-\-shots 7: .*has only 6 support rows" -- \
  "$BIN" eval "$TMP/csv_all" --shots 7 --tasks 3
grep -q "eval-shots" "$TMP/err" && bad "eval --shots: message names --eval-shots" || ok "eval --shots: no --eval-shots"
expect "eval --query beyond the rows names --query" 2 "\-\-query 9: .*has only 4 query rows" -- \
  "$BIN" eval "$TMP/csv_all" --query 9 --tasks 3
expect "eval --steps of no number names --steps" 2 "\-\-steps ',': expected integers" -- \
  "$BIN" eval "$TMP/csv_all" --steps , --tasks 3
expect "--query 0 on sinusoid is refused" 2 "\-\-query 0: sinusoid tasks are drawn afresh" -- \
  "$BIN" train --algo maml --task sinusoid "${SMALL[@]}" --query 0 --iters 2 --out "$TMP/sq0"

# Image episodes: a folder of 10 classes of 6 images; the default split
# leaves 3 test classes, so 5-way evaluation fails at setup, not after training.
PYTHONPATH="$(dirname "$0")/lib" python3 - "$TMP/folder" <<'PY'
import os, struct, sys, zlib
out = sys.argv[1]
from testpng import png
for c in range(10):
    d = f"{out}/class{c}"; os.makedirs(d, exist_ok=True)
    for k in range(6):
        png(f"{d}/img{k}.png", 8, [[255 if (x + y * (c + 1) + k) % 5 == 0 else 0 for x in range(8)] for y in range(8)])
PY
IMG=(--algo protonet --dataset "folder:$TMP/folder" --model cnn4:4 --meta-batch 1 --rotations 0 --quiet)
expect "5-way evaluation on 3 test classes refused at setup" 1 "evaluation (--eval-ways 5, --eval-shots 1) on the test classes of .*only 3 classes, 5 needed" -- \
  "$BIN" train "${IMG[@]}" --ways 2 --eval-ways 5 --shots 1 --query 1 --iters 200 --out "$TMP/img1"
[ -e "$TMP/img1/log.jsonl" ] && bad "img1: training ran before the error" || ok "img1: refused before training"
expect "training episodes larger than the classes" 1 "\-\-ways 2 --shots 4 --query 3: the training classes of .*has 6 images, needs 7" -- \
  "$BIN" train "${IMG[@]}" --ways 2 --shots 4 --query 3 --eval-ways 2 --iters 200 --out "$TMP/img2"
expect "evaluation shots that leave no query image" 1 "eval-shots 6) on the test classes.*needs 7" -- \
  "$BIN" train "${IMG[@]}" --ways 2 --shots 1 --query 1 --eval-shots 1,6 --iters 200 --out "$TMP/img3"
expect "a fitting split trains" 0 "" -- \
  "$BIN" train "${IMG[@]}" --ways 2 --shots 1 --query 1 --split 0.5,0,0.5 --eval-ways 5 --iters 2 --eval-tasks 2 --out "$TMP/img4"
expect "eval --ways beyond the test classes names --ways" 1 "evaluation (--ways 6, --shots 1) on the test classes" -- \
  "$BIN" eval "$TMP/img4" --ways 6 --tasks 2
expect "eval --split val with no validation classes" 1 "the validation split of .* has no classes" -- \
  "$BIN" eval "$TMP/img4" --split val --tasks 2

summary
