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

# A checkpoint is evaluated as the learner that wrote it, or not at all.
sed 's/"algo":\([[:space:]]*\)"protonet"/"algo":\1"fomaml"/' "$TMP/maml/config.json" >"$TMP/c" && mv "$TMP/c" "$TMP/maml/config.json"
expect "eval of a maml checkpoint whose config says fomaml" 1 "a maml checkpoint, but the run's config.json says --algo fomaml" -- \
  "$BIN" eval "$TMP/maml" --tasks 3
expect "eval CHECKPOINT of another learner" 1 "a maml checkpoint" -- \
  "$BIN" eval "$TMP/maml/checkpoint.safetensors" --tasks 3
# --init takes parameters of any learner.
expect "--init from another learner's checkpoint" 0 "" -- \
  "$BIN" train --algo fomaml --task sinusoid "${SMALL[@]}" --iters 2 --init "$TMP/maml/checkpoint.safetensors" --out "$TMP/fo"

summary
