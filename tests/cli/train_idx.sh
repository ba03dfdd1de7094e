#!/usr/bin/env bash
# CLI tests of `metalearn train` on small generated IDX folders: a tiny run
# end to end (JSON on the last line), and every kind of bad input with its
# documented exit status and a one-line message naming the file.
set -u
BIN="$1"
NAME=train_idx
source "$(dirname "$0")/lib/common.sh"

# A learnable toy problem: class k has a bright 3x3 square at position k.
python3 "$(dirname "$0")/lib/toyidx.py" "$TMP/good"

# ---- a real run, small --------------------------------------------------------
"$BIN" train --algo supervised --dataset "idx:$TMP/good" --model mlp:32 --epochs 5 --batch-size 16 \
  --lr 0.01 --json --quiet >"$TMP/out" 2>"$TMP/err"
st=$?
last=$(tail -n 1 "$TMP/out")
acc=$(printf '%s' "$last" | python3 -c 'import json,sys; print(json.load(sys.stdin)["test_accuracy"])' 2>/dev/null)
if [ $st -eq 0 ] && [ -n "$acc" ] && python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.9 else 1)"; then
  ok "mlp learns the toy problem (test accuracy $acc), JSON on the last line"
else
  bad "toy run: exit $st, last line: $last $(head -c 300 "$TMP/err")"
fi
grep -q "macro precision" "$TMP/out" && ok "per-class and macro metrics printed" || bad "no metrics table"

"$BIN" train --dataset "idx:$TMP/good" --model cnn4:8 --epochs 1 --batch-size 16 --json --quiet >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && tail -n 1 "$TMP/out" | grep -q '"model":"cnn4:8"' && ok "cnn4 runs on 16x16 images" \
  || bad "cnn4 run: $(head -c 300 "$TMP/err")"

# ---- bad input: exit 1 and a line naming the file ---------------------------------
mkdir -p "$TMP/missing"
expect "missing files" 1 "train-images-idx3-ubyte" -- "$BIN" train --dataset "idx:$TMP/missing" --quiet

mkdir -p "$TMP/trunc" && cp "$TMP"/good/* "$TMP/trunc/"
python3 - "$TMP/trunc" <<'PY'
import gzip, sys
p = sys.argv[1] + "/train-images-idx3-ubyte.gz"
data = gzip.open(p).read()
with gzip.open(p, "wb") as f: f.write(data[:1000])
PY
expect "truncated images" 1 "train-images-idx3-ubyte.gz: truncated" -- "$BIN" train --dataset "idx:$TMP/trunc" --quiet

mkdir -p "$TMP/magic" && cp "$TMP"/good/* "$TMP/magic/"
python3 - "$TMP/magic" <<'PY'
import gzip, sys
p = sys.argv[1] + "/t10k-labels-idx1-ubyte.gz"
data = bytearray(gzip.open(p).read()); data[3] = 0x07
with gzip.open(p, "wb") as f: f.write(bytes(data))
PY
expect "wrong magic number" 1 "t10k-labels-idx1-ubyte.gz: bad magic" -- "$BIN" train --dataset "idx:$TMP/magic" --quiet

mkdir -p "$TMP/count" && cp "$TMP"/good/* "$TMP/count/"
python3 - "$TMP/count" <<'PY'
import gzip, struct, sys
p = sys.argv[1] + "/train-labels-idx1-ubyte.gz"
data = gzip.open(p).read()
with gzip.open(p, "wb") as f: f.write(struct.pack(">II", 0x801, 255) + data[8:8+255])
PY
expect "label count differs from image count" 1 "255 labels" -- "$BIN" train --dataset "idx:$TMP/count" --quiet

mkdir -p "$TMP/corrupt" && cp "$TMP"/good/* "$TMP/corrupt/"
head -c 40 "$TMP/good/train-images-idx3-ubyte.gz" > "$TMP/corrupt/train-images-idx3-ubyte.gz"
printf 'garbage garbage garbage' >> "$TMP/corrupt/train-images-idx3-ubyte.gz"
expect "corrupt gzip" 1 "train-images-idx3-ubyte.gz" -- "$BIN" train --dataset "idx:$TMP/corrupt" --quiet

# NaN during training: a huge learning rate makes the loss blow up.
expect "diverging loss stops with a message" 1 "loss became" -- \
  "$BIN" train --dataset "idx:$TMP/good" --model mlp:32 --epochs 50 --lr 1000 --optimizer sgd --momentum 0 --quiet

# ---- usage errors: exit 2 --------------------------------------------------------
expect "unknown flag" 2 "unknown option '--bogus'" -- "$BIN" train --bogus 1
expect "bad number" 2 "--epochs" -- "$BIN" train --epochs ten
expect "out of range" 2 "--batch-size" -- "$BIN" train --batch-size 1
expect "missing value" 2 "needs a value" -- "$BIN" train --lr
expect "unknown model" 2 "unknown" -- "$BIN" train --model resnet
expect "unknown optimizer" 2 "--optimizer" -- "$BIN" train --optimizer lbfgs
expect "unknown dataset" 2 "--dataset" -- "$BIN" train --dataset mnist
expect "unknown command" 2 "unknown command" -- "$BIN" frobnicate
for sub in train params; do
  expect "$sub --help" 0 "" -- "$BIN" $sub --help
  grep -q "usage: metalearn $sub" "$TMP/out" && ok "$sub --help prints usage on stdout" || bad "$sub --help output"
done
expect "top-level --help" 0 "" -- "$BIN" --help

"$BIN" params --model cnn4 --outputs 5 >"$TMP/out" 2>&1
grep -q "blocks.0.conv.weight *\[64, 1, 3, 3\]" "$TMP/out" && grep -q "head.weight *\[5, 64\]" "$TMP/out" \
  && ok "params lists names and shapes" || bad "params output: $(head -c 300 "$TMP/out")"

summary
