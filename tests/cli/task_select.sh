#!/usr/bin/env bash
# CLI tests of task selection (--task-sampler uniform|similar|curriculum) on
# Omniglot (shared data via $ML_DATA_DIR): tiny runs of each sampler, the
# options in config.json and back through --config, bit-exact resume after an
# interruption, --test-alphabets, and bad input (unknown sampler, similar
# without a target, a missing / empty / mixed-size / too-small target folder).
set -u
BIN="$1"
NAME=task_select
source "$(dirname "$0")/lib/common.sh"
need_omniglot
DS="omniglot:$DATA/images_background_small1.zip,$DATA/images_background_small2.zip"
SMALL=(--algo protonet --dataset "$DS" --model cnn4:8 --ways 5 --shots 1 --query 2 --meta-batch 2 --eval-tasks 8
       --rotations 0 --test-alphabets "Japanese_(katakana)" --threads 1 --quiet)

# Target folders: two katakana characters, two drawings each (105x105), and
# broken variants.
python3 - "$DATA/images_background_small2.zip" "$TMP/t" <<'PY'
import os, struct, sys, zipfile, zlib
z = zipfile.ZipFile(sys.argv[1]); out = sys.argv[2]
names = sorted(n for n in z.namelist() if n.endswith(".png") and "katakana" in n)
chars = sorted({os.path.dirname(n) for n in names})[:2]
for ci, ch in enumerate(chars):
    for f in [n for n in names if os.path.dirname(n) == ch][:2]:
        os.makedirs(f"{out}/good/k{ci}", exist_ok=True)
        os.makedirs(f"{out}/mixed/k{ci}", exist_ok=True)
        data = z.read(f)
        open(f"{out}/good/k{ci}/{os.path.basename(f)}", "wb").write(data)
        open(f"{out}/mixed/k{ci}/{os.path.basename(f)}", "wb").write(data)
def png(path, w, h):  # 8-bit gray, white
    raw = b"".join(b"\0" + b"\xff" * w for _ in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png(f"{out}/mixed/k0/odd.png", 50, 50)
os.makedirs(f"{out}/small/k0", exist_ok=True)
png(f"{out}/small/k0/a.png", 20, 20)
png(f"{out}/small/k0/b.png", 20, 20)
os.makedirs(f"{out}/empty", exist_ok=True)
PY

for s in uniform similar curriculum; do
  expect "$s: training and evaluation" 0 "" -- "$BIN" train "${SMALL[@]}" --task-sampler $s --target test-support:1 \
    --iters 6 --select-every 3 --out "$TMP/$s" --json
  tail -n 1 "$TMP/out" | grep -q '"accuracy":' || bad "$s: no accuracy in the JSON line"
  grep -q "\"task-sampler\":[[:space:]]*\"$s\"" "$TMP/$s/config.json" && ok "$s: config.json names the sampler" \
    || bad "$s: config.json lacks task-sampler"
done
expect "similar to a folder of target images" 0 "" -- "$BIN" train "${SMALL[@]}" --task-sampler similar \
  --target "$TMP/t/good" --select-k 5 --select-prob 0.9 --iters 4 --out "$TMP/folder"
grep -q '"test":' "$TMP/folder/split.json" && python3 - "$TMP/folder/split.json" <<'PY' && ok "--test-alphabets: the test split is katakana only" || bad "test split: $(head -c 300 "$TMP/folder/split.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["test"] and all(n.startswith("Japanese_(katakana)/") for n in s["test"]), s["test"][:3]
assert not any(n.startswith("Japanese_(katakana)/") for n in s["train"])
PY

# The effective config is accepted by --config and gives the same run.
expect "--config with a similar run's config.json" 0 "" -- "$BIN" train --config "$TMP/similar/config.json" --out "$TMP/again"
cmp -s "$TMP/similar/checkpoint.safetensors" "$TMP/again/checkpoint.safetensors" \
  && ok "--config reproduces the run bit for bit" || bad "--config run differs"
"$BIN" train "${SMALL[@]}" --iters 6 --out "$TMP/plain" >/dev/null 2>&1
cmp -s "$TMP/uniform/checkpoint.safetensors" "$TMP/plain/checkpoint.safetensors" \
  && ok "the default sampler is uniform" || bad "--task-sampler uniform differs from the default"

# Resume after an interruption equals the uninterrupted run (the sampler's
# weights and loss averages are in the checkpoint).
for s in similar curriculum; do
  A=("${SMALL[@]}" --task-sampler $s --target test-support:1 --select-every 6 --iters 40 --log-every 4 --eval-tasks 0)
  "$BIN" train "${A[@]}" --out "$TMP/full_$s" >/dev/null 2>&1
  "$BIN" train "${A[@]}" --out "$TMP/cut_$s" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 600); do [ -s "$TMP/cut_$s/log.jsonl" ] && break; sleep 0.05; done
  kill -INT $pid 2>/dev/null; wait $pid
  [ $? -eq 130 ] || echo "[note] $s: the run ended before the interruption; resume is trivially equal"
  expect "$s: resume" 0 "" -- "$BIN" train --resume "$TMP/cut_$s" --quiet
  cmp -s "$TMP/full_$s/checkpoint.safetensors" "$TMP/cut_$s/checkpoint.safetensors" \
    && ok "$s: resumed run is bit-identical" || bad "$s: resumed run differs"
done
python3 - "$TMP/full_similar/checkpoint.safetensors" <<'PY' && ok "the checkpoint holds the sampler state" || bad "no task_sampler.weights in the checkpoint"
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]
assert "task_sampler.weights" in json.loads(b[8:8 + n])
PY
expect "resume of a uniform run as curriculum says what is missing" 1 "task_sampler.ema" -- \
  "$BIN" train --resume "$TMP/uniform" --task-sampler curriculum --iters 8 --quiet

# Bad input: one line, exit 2 for usage, 1 for bad data.
one_line() { [ "$(grep -vc "^usage:" "$TMP/err")" -le 1 ] || bad "$1: multi-line error: $(head -c 300 "$TMP/err")"; }
expect "unknown sampler" 2 "expected uniform, similar or curriculum" -- "$BIN" train "${SMALL[@]}" --task-sampler nearest --iters 1 --out "$TMP/bad1"
one_line "unknown sampler"
expect "similar without --target" 2 "needs --target" -- "$BIN" train "${SMALL[@]}" --task-sampler similar --iters 1 --out "$TMP/bad2"
one_line "similar without --target"
expect "missing target folder" 1 "$TMP/t/nope" -- "$BIN" train "${SMALL[@]}" --task-sampler similar --target "$TMP/t/nope" --iters 1 --out "$TMP/bad3"
one_line "missing target folder"
expect "empty target folder" 1 "no PNG images" -- "$BIN" train "${SMALL[@]}" --task-sampler similar --target "$TMP/t/empty" --iters 1 --out "$TMP/bad4"
one_line "empty target folder"
expect "target images of mixed sizes" 1 "50x50" -- "$BIN" train "${SMALL[@]}" --task-sampler similar --target "$TMP/t/mixed" --iters 1 --out "$TMP/bad5"
one_line "target images of mixed sizes"
expect "target images smaller than the input" 1 "smaller than" -- "$BIN" train "${SMALL[@]}" --task-sampler similar --target "$TMP/t/small" --iters 1 --out "$TMP/bad6"
one_line "target images smaller than the input"
expect "test-support:0" 2 "K >= 1" -- "$BIN" train "${SMALL[@]}" --task-sampler similar --target test-support:0 --iters 1 --out "$TMP/bad7"
one_line "test-support:0"
expect "test-support with too many shots" 1 "has only" -- "$BIN" train "${SMALL[@]}" --task-sampler similar --target test-support:99 --iters 1 --out "$TMP/bad8"
one_line "test-support with too many shots"
expect "unknown held-out alphabet" 2 "no alphabet 'Klingon'" -- "$BIN" train "${SMALL[@]}" --test-alphabets Klingon --iters 1 --out "$TMP/bad9"
one_line "unknown held-out alphabet"
expect "select-prob out of range" 2 "select-prob" -- "$BIN" train "${SMALL[@]}" --task-sampler similar --target test-support:1 --select-prob 1.5 --iters 1 --out "$TMP/bad10"
one_line "select-prob out of range"
expect "a sampler on regression tasks" 2 "few-shot" -- "$BIN" train --algo maml --task sinusoid --task-sampler curriculum --iters 1 --quiet --out "$TMP/bad11"
one_line "a sampler on regression tasks"
expect "a sampler with pretrain" 2 "not episodes" -- "$BIN" train "${SMALL[@]}" --algo pretrain --task-sampler curriculum --iters 1 --out "$TMP/bad12"
one_line "a sampler with pretrain"
summary
