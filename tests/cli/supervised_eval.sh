#!/usr/bin/env bash
# `metalearn eval RUN` on a supervised run: train tiny on a generated IDX
# folder (with --limit, so the normalisation depends on it), evaluate the
# run folder, and compare with the accuracy train printed; bad checkpoints
# give a one-line error naming the file.
set -u
BIN="$1"
NAME=supervised_eval
source "$(dirname "$0")/lib/common.sh"

# Class k has a bright 3x3 square at position k, over more noise than train_idx.sh's.
python3 "$(dirname "$0")/lib/toyidx.py" "$TMP/data" 1 120 130

json_field() { tail -n 1 "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null; }

"$BIN" train --algo supervised --dataset "idx:$TMP/data" --model mlp:16 --epochs 1 --batch-size 16 --lr 0.003 \
  --limit 96 --out "$TMP/run" --json --quiet >"$TMP/train.out" 2>"$TMP/train.err"
st=$?
train_acc=$(json_field "$TMP/train.out" test_accuracy)
[ $st -eq 0 ] && [ -n "$train_acc" ] && ok "tiny supervised run with --out (test accuracy $train_acc)" \
  || bad "train: exit $st: $(head -c 300 "$TMP/train.err")"

expect "eval RUN on a supervised run" 0 "test accuracy" -- "$BIN" eval "$TMP/run" --json
eval_acc=$(json_field "$TMP/out" test_accuracy)
[ -n "$eval_acc" ] && [ "$eval_acc" = "$train_acc" ] && ok "eval's accuracy is train's ($eval_acc)" \
  || bad "eval accuracy '$eval_acc' differs from train's '$train_acc'"
# The per-class table and macro line are train's, byte for byte.
diff <(sed '$d' "$TMP/train.out") <(sed '$d' "$TMP/out") >/dev/null && ok "eval prints train's metrics table" \
  || bad "eval table differs: $(diff <(sed '$d' "$TMP/train.out") <(sed '$d' "$TMP/out") | head -c 300)"
tail -n 1 "$TMP/out" | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["command"] == "eval" and j["algo"] == "supervised"
assert len(j["per_class"]) == 10 and all(k in j for k in ("macro_precision", "macro_recall", "macro_f1"))' 2>/dev/null \
  && ok "eval --json: test_accuracy, macro_*, per_class" || bad "eval JSON: $(tail -n 1 "$TMP/out" | head -c 300)"
expect "eval CHECKPOINT file" 0 "test accuracy $(printf '%.4f' "$train_acc")" -- "$BIN" eval "$TMP/run/checkpoint.safetensors"
expect "meta-learning options refused" 2 "supervised run" -- "$BIN" eval "$TMP/run" --shots 5

# ---- bad checkpoints: exit 1, one line naming the file ---------------------------------
cp -r "$TMP/run" "$TMP/nockpt" && rm "$TMP/nockpt/checkpoint.safetensors"
expect "missing checkpoint" 1 "nockpt/checkpoint.safetensors: no checkpoint" -- "$BIN" eval "$TMP/nockpt"
cp -r "$TMP/run" "$TMP/corrupt" && head -c 100 "$TMP/run/checkpoint.safetensors" >"$TMP/corrupt/checkpoint.safetensors"
expect "corrupt checkpoint" 1 "corrupt/checkpoint.safetensors" -- "$BIN" eval "$TMP/corrupt"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && ok "corrupt checkpoint: one line" || bad "corrupt checkpoint: $(cat "$TMP/err")"
cp -r "$TMP/run" "$TMP/other" && sed -i 's/"mlp:16"/"mlp:8"/' "$TMP/other/config.json"
expect "checkpoint of another model" 1 "other/checkpoint.safetensors: tensor" -- "$BIN" eval "$TMP/other"

summary
