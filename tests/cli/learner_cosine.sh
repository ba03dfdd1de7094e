#!/usr/bin/env bash
# CLI test of the cosine nearest-class-mean learner (--algo cosine), the
# learner added as one file (src/meta/cosine.c) plus one row of the learner
# table: it trains and evaluates on a tiny folder set and on Omniglot, keeps
# its learned scale in the checkpoint, resumes bit for bit, and is refused
# on regression tasks like the other episode heads.
set -u
BIN="$1"
NAME=learner_cosine
source "$(dirname "$0")/lib/common.sh"
OMNI="${ML_DATA_DIR:-../shared/data}/omniglot"

PYTHONPATH="$(dirname "$0")/lib" python3 - "$TMP" <<'PY'
import os, sys
from testpng import png
out = sys.argv[1]
for c in range(4):
    d = f"{out}/folder/class{c}"; os.makedirs(d, exist_ok=True)
    for k in range(6):
        png(f"{d}/img{k}.png", 20, [[255 if (x + y * (c + 1) + k) % 5 == 0 else 0 for x in range(20)] for y in range(20)])
PY
TINY=(--algo cosine --dataset "folder:$TMP/folder" --split 0.5,0,0.5 --model cnn4:8 --ways 2 --shots 1 --query 2
      --rotations 0 --eval-tasks 4 --quiet)

expect "cosine trains and evaluates on a folder set" 0 '"accuracy":' -- "$BIN" train "${TINY[@]}" --iters 4 --out "$TMP/run" --json
grep -q '"cosine.scale"' "$TMP/run/checkpoint.safetensors" && ok "the learned scale is in the checkpoint" \
  || bad "no cosine.scale in the checkpoint"
grep -q '"algo":"cosine"' "$TMP/run/checkpoint.safetensors" && ok "the checkpoint names the learner" || bad "checkpoint algo"
expect "cosine eval (no inner steps: one row per shot count)" 0 "steps" -- "$BIN" eval "$TMP/run" --ways 2 --shots 1 --episodes 3

# Resume: 2 + 2 iterations give the bytes of 4.
expect "cosine, stopped after 2 iterations" 0 "" -- "$BIN" train "${TINY[@]}" --iters 4 --stop-at 2 --out "$TMP/half"
expect "cosine, resumed" 0 "" -- "$BIN" train --resume "$TMP/half" --iters 4 --quiet
cmp -s "$TMP/run/checkpoint.safetensors" "$TMP/half/checkpoint.safetensors" && ok "resume is bit-exact" \
  || bad "resumed checkpoint differs"

expect "cosine on a regression task" 2 "cosine classifies only" -- "$BIN" train --algo cosine --task sinusoid --iters 1 --out "$TMP/x1"
expect "cosine is listed in train --help" 0 "cosine nearest-class-mean" -- "$BIN" train --help

if [ -f "$OMNI/images_background_small1.zip" ]; then
  expect "cosine on Omniglot" 0 '"accuracy":' -- "$BIN" train --algo cosine --dataset "omniglot:$OMNI/images_background_small1.zip" \
    --model cnn4:8 --ways 5 --shots 1 --query 2 --iters 4 --eval-tasks 5 --quiet --json --out "$TMP/omni"
else
  echo "SKIP: cosine on Omniglot: $OMNI not found (set ML_DATA_DIR)"
fi
summary
