#!/usr/bin/env bash
# CLI test of OML (--algo oml / oml-fo: one file, src/meta/oml.c, plus rows of
# the learner table) and of `eval --continual`, the continual-learning
# protocol: trains on a tiny folder set and on sine waves, resumes bit for
# bit, gives the same bytes on 1 and 2 threads, puts OML and non-OML runs
# through the protocol (JSON rows), and refuses bad protocol settings with a
# message naming the option.
set -u
BIN="$1"
NAME=learner_oml
source "$(dirname "$0")/lib/common.sh"
OMNI="${ML_DATA_DIR:-../shared/data}/omniglot"

PYTHONPATH="$(dirname "$0")/lib" python3 - "$TMP" <<'PY'
import os, sys
from testpng import png
out = sys.argv[1]
for c in range(10):
    d = f"{out}/folder/class{c}"; os.makedirs(d, exist_ok=True)
    for k in range(6):
        png(f"{d}/img{k}.png", 20, [[255 if (x * (c % 3 + 1) + y * (c // 3 + 1) + k) % 5 == 0 else 0 for x in range(20)] for y in range(20)])
PY
TINY=(--dataset "folder:$TMP/folder" --split 0.4,0.2,0.4 --model cnn4:8 --ways 2 --shots 2 --query 2
      --rotations 0 --eval-tasks 4 --inner-lr 0.03 --meta-batch 2 --quiet)

expect "oml trains and evaluates on a folder set" 0 '"accuracy":' -- "$BIN" train --algo oml "${TINY[@]}" --iters 4 --out "$TMP/run" --json
grep -q '"algo":"oml"' "$TMP/run/checkpoint.safetensors" && ok "the checkpoint names the learner" || bad "checkpoint algo"
# A run of a build before the class head (no oml.head.* in its checkpoint, made here by
# dropping them): evaluation still reads it, --resume is refused in one line naming the file.
"$BIN" train --algo oml "${TINY[@]}" --iters 2 --eval-tasks 0 --out "$TMP/old" >/dev/null 2>&1
python3 - "$TMP/old/checkpoint.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head, data = json.loads(raw[8:8 + n]), raw[8 + n:]
keep = sorted((k for k in head if k != "__metadata__" and not k.startswith("oml.head.")), key=lambda k: head[k]["data_offsets"][0])
out, blob = {"__metadata__": head["__metadata__"]}, b""
for k in keep:
    b, e = head[k]["data_offsets"]
    out[k] = dict(head[k], data_offsets=[len(blob), len(blob) + e - b])
    blob += data[b:e]
text = json.dumps(out).encode()
text += b" " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text + blob)
PY
expect "a run from before the class head is evaluated" 0 "" -- "$BIN" eval "$TMP/old" --tasks 2
expect "a run from before the class head cannot be resumed" 1 \
  "old/checkpoint.safetensors: no tensor 'oml.head.weight': the run predates oml's class head over the training classes (an older build); \`metalearn eval\` still reads it, but it cannot be resumed: train a new run" \
  -- "$BIN" train --resume "$TMP/old" --iters 4
[ "$(grep -c "^metalearn train: " "$TMP/err")" = 1 ] && ok "the refusal is one line" || bad "resume refusal: $(cat "$TMP/err")"
expect "oml-fo trains" 0 "" -- "$BIN" train --algo oml-fo "${TINY[@]}" --iters 2 --out "$TMP/fo"

expect "oml, stopped after 2 iterations" 0 "" -- "$BIN" train --algo oml "${TINY[@]}" --iters 4 --stop-at 2 --out "$TMP/half"
expect "oml, resumed" 0 "" -- "$BIN" train --resume "$TMP/half" --iters 4 --quiet
cmp -s "$TMP/run/checkpoint.safetensors" "$TMP/half/checkpoint.safetensors" && ok "resume is bit-exact" \
  || bad "resumed checkpoint differs"
expect "oml on 2 threads" 0 "" -- "$BIN" train --algo oml "${TINY[@]}" --iters 4 --threads 2 --out "$TMP/two"
expect "oml on 1 thread" 0 "" -- "$BIN" train --algo oml "${TINY[@]}" --iters 4 --threads 1 --out "$TMP/one"
cmp -s "$TMP/one/checkpoint.safetensors" "$TMP/two/checkpoint.safetensors" && ok "the same bytes on 1 and 2 threads" \
  || bad "checkpoints differ with the thread count"

grep -q '"oml.head.weight"' "$TMP/run/checkpoint.safetensors" && ok "oml keeps a head over every training class" \
  || bad "no oml.head.weight in the checkpoint"
# The paper's meta-loss is the default (15 remembered images); --remember 0 keeps the class head without replay.
expect "oml without remembered images" 0 "" -- "$BIN" train --algo oml "${TINY[@]}" --remember 0 --iters 4 --out "$TMP/r0"
cmp -s "$TMP/run/checkpoint.safetensors" "$TMP/r0/checkpoint.safetensors" && bad "--remember 0 changed nothing" \
  || ok "--remember changes the meta-loss"
expect "oml-fo without remembered images, stopped" 0 "" -- "$BIN" train --algo oml-fo "${TINY[@]}" --remember 3 --iters 4 --stop-at 2 --out "$TMP/fohalf"
expect "oml-fo resumed" 0 "" -- "$BIN" train --resume "$TMP/fohalf" --iters 4 --quiet
expect "oml-fo uninterrupted" 0 "" -- "$BIN" train --algo oml-fo "${TINY[@]}" --remember 3 --iters 4 --threads 2 --out "$TMP/foall"
cmp -s "$TMP/fohalf/checkpoint.safetensors" "$TMP/foall/checkpoint.safetensors" \
  && ok "oml-fo with replay: stopped and resumed = uninterrupted on 2 threads, bit for bit" || bad "oml-fo replay checkpoints differ"
expect "--remember is OML's" 2 "--remember: only --algo oml and oml-fo replay remembered images (got --algo maml)" -- \
  "$BIN" train --algo maml "${TINY[@]}" --remember 3 --iters 1 --out "$TMP/badrem"
expect "oml learns sine waves online" 0 '"mse":' -- "$BIN" train --algo oml --task sinusoid --model mlp:16,16 --shots 5 \
  --iters 3 --eval-tasks 5 --quiet --json --out "$TMP/sine"
expect "oml is listed in train --help" 0 "Javed & White" -- "$BIN" train --help

# The protocol: 4 test classes, 2 validation classes, 4 images learned and 2 held out per class.
CONT=(--continual 2 --continual-test 2 --continual-orders 3 --continual-lr 0.1,0.01)
expect "eval --continual --json" 0 '"continual":{"algo":"oml"' -- "$BIN" eval "$TMP/run" "${CONT[@]}" --continual-oracle 2 --json
grep -q '"rows":\[{"classes":2,"accuracy":' "$TMP/out" && grep -q '{"classes":4,' "$TMP/out" \
  && grep -q '"forgetting":' "$TMP/out" && ok "one JSON row per class count, and all classes" || bad "continual JSON rows"
tail -n 1 "$TMP/out" | cmp -s - "$TMP/run/continual.json" \
  && ok "RUN/continual.json is the --json line (saved by the library)" || bad "continual.json differs from the --json line"
"$BIN" eval "$TMP/run" "${CONT[@]}" --json > "$TMP/a.json" 2>/dev/null
"$BIN" eval "$TMP/run" "${CONT[@]}" --json --threads 1 > "$TMP/b.json" 2>/dev/null
cmp -s "$TMP/a.json" "$TMP/b.json" && ok "the protocol is seeded (same output twice)" || bad "continual output differs"
"$BIN" train --algo maml "${TINY[@]}" --iters 2 --out "$TMP/maml" >/dev/null 2>&1
expect "a MAML run goes through the protocol, with a note" 0 "not OML: the protocol uses its representation" -- \
  "$BIN" eval "$TMP/maml" "${CONT[@]}"
[ -f "$TMP/maml/continual.json" ] && ok "eval --continual saves RUN/continual.json" || bad "no continual.json"
expect "plot draws accuracy vs classes learned for both runs" 0 "continual.png" -- "$BIN" plot "$TMP/run" "$TMP/maml" --out "$TMP/plots"
cp "$TMP/run/continual.json" "$TMP/own.json" 2>/dev/null
expect "the whole-network baselines" 0 '"learner":"whole-network"' -- "$BIN" eval "$TMP/run" "${CONT[@]}" --continual-oracle 2 \
  --continual-whole-network --json
grep -q '"rows":\[{"classes":2,"accuracy":[0-9.e-]*,"ci95":[0-9.e-]*,"first":[0-9.e-]*,"first_ci95":[0-9.e-]*,"oracle":null' "$TMP/out" \
  && grep -q '"classes":4,"accuracy":[^}]*"oracle":[0-9]' "$TMP/out" && ok "whole-network oracle after all classes only" \
  || bad "whole-network JSON rows"
[ -f "$TMP/run/continual_whole_network.json" ] && cmp -s "$TMP/run/continual.json" "$TMP/own.json" \
  && ! grep -q whole-network "$TMP/run/continual.json" \
  && ok "the whole-network result is saved beside the run's own continual.json, not over it" \
  || bad "whole-network result replaced continual.json or was not saved"
expect "no whole network for sine waves" 2 "take a few-shot image run" -- "$BIN" eval "$TMP/sine" --continual 2 --continual-whole-network
expect "more classes than the test split" 2 "10 classes asked, the run's test split has 4 (--continual)" -- \
  "$BIN" eval "$TMP/run" --continual 10
expect "no image for the test side" 2 "leaves no image for the test side" -- "$BIN" eval "$TMP/run" --continual 2 --continual-test 0
expect "no image left to learn" 2 "none to learn (--continual-test)" -- "$BIN" eval "$TMP/run" --continual 2 --continual-test 6
expect "a bad class list" 2 "expected class counts" -- "$BIN" eval "$TMP/run" --continual 2,x
expect "oml on incremental sine waves" 0 "" -- "$BIN" train --algo oml --task sine-seq:4 --model mlp:16 --shots 8 --query 8 \
  --iters 2 --eval-tasks 2 --quiet --out "$TMP/seq"
expect "the incremental sine benchmark" 0 '"functions":4,"mse":' -- "$BIN" eval "$TMP/seq" --continual 2 --continual-train 5 \
  --continual-orders 3 --continual-oracle 2 --json
expect "more functions than a task has" 2 "5 functions asked, the run's tasks (sine-seq:F) have 4" -- "$BIN" eval "$TMP/seq" --continual 5
expect "a regression run without function ids" 2 "or a --task sine-seq run" -- "$BIN" eval "$TMP/sine" --continual 2

if [ -f "$OMNI/images_background_small1.zip" ]; then
  expect "oml on Omniglot, then the protocol" 0 '"accuracy":' -- "$BIN" train --algo oml --dataset "omniglot:$OMNI/images_background_small1.zip" \
    --model cnn4:8 --ways 3 --shots 5 --query 5 --iters 3 --eval-tasks 5 --quiet --json --out "$TMP/omni"
  expect "Omniglot continual 10,25" 0 '"classes":25' -- "$BIN" eval "$TMP/omni" --continual 10,25 --continual-orders 2 --json
else
  skip "oml on Omniglot: $OMNI not found (set ML_DATA_DIR)"
fi
summary
