#!/usr/bin/env bash
# CLI tests of few-shot classification on Omniglot (shared data, found via
# $ML_DATA_DIR, default ../shared/data): tiny training runs of each learner,
# evaluation on held-out classes and on Lake's runs, bit-exact resume, and bad
# input (missing or corrupt zip, impossible episodes).
set -u
BIN="$1"
NAME=fewshot
source "$(dirname "$0")/lib/common.sh"
need_omniglot
DS="omniglot:$DATA/images_background_small1.zip,$DATA/images_background_small2.zip"
SMALL=(--dataset "$DS" --model cnn4:8 --ways 5 --shots 1 --query 2 --meta-batch 2 --eval-tasks 8 --quiet)

for algo in protonet matching r2d2 maml fomaml anil metasgd reptile; do
  expect "$algo: few-shot training and evaluation" 0 "" -- "$BIN" train --algo $algo "${SMALL[@]}" --iters 3 --out "$TMP/$algo" --json
  tail -n 1 "$TMP/out" | grep -q '"accuracy":' || bad "$algo: no accuracy in the JSON line"
  [ -s "$TMP/$algo/split.json" ] && [ -s "$TMP/$algo/checkpoint.safetensors" ] || bad "$algo: run folder incomplete"
done

# 16 filters take oneDNN's convolution primitives (Winograd at 14x14 and 7x7, direct at 3x3):
# second-order MAML gives the same checkpoint whatever the thread count (one task per
# thread, each primitive built for the thread count it runs with).
for t in 1 3; do
  "$BIN" train --algo maml "${SMALL[@]}" --model cnn4:16 --query 5 --meta-batch 4 --iters 2 --threads $t \
    --out "$TMP/dnnl_thr$t" >/dev/null 2>&1
done
[ -s "$TMP/dnnl_thr1/checkpoint.safetensors" ] && cmp -s "$TMP/dnnl_thr1/checkpoint.safetensors" "$TMP/dnnl_thr3/checkpoint.safetensors" \
  && ok "cnn4:16 MAML: 1 and 3 threads give identical checkpoints" || bad "cnn4:16 MAML: thread count changes the result"

# Fewer episodes than threads: the threads work inside the episode (OpenMP budget of the pool's
# spare threads: 64-filter oneDNN primitives, the first layer's SGEMM, the batch-norm passes
# split over channels: 25 images of 64x28x28 are well above kernels_par.h's threshold),
# and the checkpoint must not change: 1 episode on 1 and 2 threads, 2 episodes on 1 and 3
# threads (budgets 2 + 1), evaluation of single long episodes the same way.
for run in "1 1" "1 2" "2 1" "2 3"; do
  read -r mb t <<< "$run"
  "$BIN" train --algo protonet --dataset "$DS" --ways 5 --shots 2 --query 3 --meta-batch $mb --iters 2 \
    --threads $t --eval-tasks 0 --quiet --out "$TMP/inside_mb${mb}_t$t" >/dev/null 2>&1
done
for mb in 1 2; do
  a="$TMP/inside_mb${mb}_t1/checkpoint.safetensors"; b=$(ls "$TMP"/inside_mb${mb}_t[23]/checkpoint.safetensors 2>/dev/null)
  [ -s "$a" ] && [ -n "$b" ] && cmp -s "$a" "$b" \
    && ok "ProtoNet cnn4 5w2s, $mb episode(s) per step: more threads than episodes give the same checkpoint" \
    || bad "ProtoNet cnn4 5w2s, $mb episode(s) per step: the thread count changes the checkpoint"
done
for t in 1 2; do
  "$BIN" eval "$TMP/inside_mb1_t1" --ways 5 --shots 5 --query 10 --episodes 1 --threads $t --json 2>/dev/null \
    | tail -n 1 | sed 's/"eval_seconds":[0-9.]*//; s/"threads":[0-9]*//; s/"[a-z_]*per_second":[0-9.]*//g' > "$TMP/inside_eval$t"
done
[ -s "$TMP/inside_eval1" ] && cmp -s "$TMP/inside_eval1" "$TMP/inside_eval2" \
  && ok "ProtoNet evaluation: 1 and 2 threads give the same figures" \
  || bad "ProtoNet evaluation: the thread count changes the figures: $(cat "$TMP/inside_eval1") vs $(cat "$TMP/inside_eval2")"

# bench on few-shot episodes: the class split goes to a temporary folder in $TMPDIR
# that is removed. (A folder of this test's own: other benches may run beside it.)
mkdir -p "$TMP/benchtmp"
expect "bench few-shot" 0 "tasks/s" -- env TMPDIR="$TMP/benchtmp" "$BIN" bench --algo protonet "${SMALL[@]}" --iters 2 --warmup 1
[ -z "$(ls -A "$TMP/benchtmp")" ] && ok "bench leaves no folder behind" || bad "bench left $(ls -A "$TMP/benchtmp")"
expect "bench makes its folder in \$TMPDIR" 1 "cannot make a temporary folder in $TMP/nowhere" -- \
  env TMPDIR="$TMP/nowhere" "$BIN" bench --algo protonet "${SMALL[@]}" --iters 2 --warmup 1

# Matching Networks with a learned cosine scale: kept in the checkpoint, resumed bit for bit,
# moved by training; refused for other learners.
"$BIN" train --algo matching "${SMALL[@]}" --matching-scale 10 --iters 4 --out "$TMP/ms_full" >/dev/null 2>&1
"$BIN" train --algo matching "${SMALL[@]}" --matching-scale 10 --iters 2 --out "$TMP/ms_part" >/dev/null 2>&1
expect "matching --matching-scale: resume" 0 "" -- "$BIN" train --resume "$TMP/ms_part" --iters 4 --quiet
cmp -s "$TMP/ms_full/checkpoint.safetensors" "$TMP/ms_part/checkpoint.safetensors" \
  && ok "matching scale: resume is bit-identical" || bad "matching scale: resume differs"
scale=$(python3 - "$TMP/ms_full/checkpoint.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
e = h.get("matching.scale"); print(struct.unpack("<f", b[8 + n + e["data_offsets"][0]:][:4])[0] if e else "absent")
PY
)
case "$scale" in absent|10.0|"") bad "matching scale in the checkpoint: $scale" ;; *) ok "matching scale saved and trained ($scale)" ;; esac
expect "matching scale: eval" 0 "" -- "$BIN" eval "$TMP/ms_full" --episodes 4
expect "--matching-scale with another learner" 2 "matching-scale" -- "$BIN" train --algo protonet "${SMALL[@]}" --matching-scale 5 --iters 1 --out "$TMP/ms_bad"

expect "eval with Lake's runs (protonet)" 0 "mean" -- "$BIN" eval "$TMP/protonet" --ways 20 --shots 1 --episodes 6 --lake-runs "$DATA/all_runs.zip"
grep -q "run 20" "$TMP/out" && ok "Lake: an error per run" || bad "Lake table: $(head -c 300 "$TMP/out")"
# MAML-family learners label Lake's runs after --lake-steps (default: the largest --steps).
"$BIN" train --algo maml --dataset "$DS" --model cnn4:8 --ways 20 --shots 1 --query 1 --meta-batch 1 --iters 1 \
  --eval-tasks 0 --quiet --out "$TMP/maml20" >/dev/null 2>&1
expect "eval --lake-steps" 0 "error after 2 step" -- "$BIN" eval "$TMP/maml20" --steps 1,3 --lake-steps 2 --episodes 2 \
  --lake-runs "$DATA/all_runs.zip" --json
grep -q '"lake_runs":{"steps":2' "$TMP/out" && ok "--lake-steps in the JSON line" || bad "--lake-steps JSON: $(tail -c 300 "$TMP/out")"
expect "eval --lake-steps without Lake's runs" 2 "no Lake's runs" -- "$BIN" eval "$TMP/maml" --lake-steps 2 --episodes 2
expect "eval --split val: validation classes" 0 '"split":"val"' -- "$BIN" eval "$TMP/protonet" --split val --episodes 6 --json
grep -q "validation classes" "$TMP/out" && ok "eval --split val names the validation classes" || bad "eval --split val table"
"$BIN" train --algo protonet "${SMALL[@]}" --split 0.7,0,0.3 --iters 1 --out "$TMP/noval" >/dev/null 2>&1
expect "eval --split val without validation classes" 1 "validation split" -- "$BIN" eval "$TMP/noval" --split val --episodes 4
# A two-candidate few-shot search: accuracy on validation classes, higher is better.
printf '{"base": {"algo": "protonet", "dataset": "%s", "model": "cnn4:8", "ways": 5, "shots": 1, "query": 2, "meta-batch": 2},\n "space": {"outer-lr": {"choice": [0.001, 0.003]}}}\n' "$DS" > "$TMP/fs_space.json"
expect "few-shot search" 0 '"direction":"max"' -- "$BIN" search --space "$TMP/fs_space.json" --budget 1 --min-iters 2 \
  --max-iters 2 --jobs 1 --threads 2 --val-tasks 4 --out "$TMP/fs_search" --json --quiet
grep -q '"metric":"accuracy"' "$TMP/fs_search/trials.jsonl" && ok "few-shot search scores accuracy" || bad "few-shot search log"
expect "eval of a 5-way MAML on 20-way runs says why not" 1 "20-way" -- "$BIN" eval "$TMP/maml" --episodes 4 --lake-runs "$DATA/all_runs.zip"

"$BIN" train --algo protonet "${SMALL[@]}" --iters 6 --checkpoint-every 3 --out "$TMP/full" >/dev/null 2>&1
"$BIN" train --algo protonet "${SMALL[@]}" --iters 3 --out "$TMP/part" >/dev/null 2>&1
expect "few-shot resume" 0 "" -- "$BIN" train --resume "$TMP/part" --iters 6 --quiet
cmp -s "$TMP/full/checkpoint.safetensors" "$TMP/part/checkpoint.safetensors" \
  && ok "few-shot resume is bit-identical" || bad "few-shot resume differs"

expect "nearest-neighbour baseline on Lake's runs" 0 "mean" -- "$BIN" eval --algo nn --distance pixel --lake-runs "$DATA/all_runs.zip" --json
tail -n 1 "$TMP/out" | grep -q '"mean_error":0\.[5-9]' && ok "pixel nearest neighbour: 50-99% error, as published (~78%)" || bad "pixel NN: $(tail -n 1 "$TMP/out")"
expect "nn needs --lake-runs" 2 "lake-runs" -- "$BIN" eval --algo nn

# predict: the user's own folders (5 characters: 1 support and 3 query images each).
python3 - "$DATA/images_background_small1.zip" "$TMP/own" <<'PY'
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1]); out = sys.argv[2]
names = sorted(n for n in z.namelist() if n.endswith(".png"))
chars = sorted({os.path.dirname(n) for n in names})[-5:]
for ci, ch in enumerate(chars):
    files = [n for n in names if os.path.dirname(n) == ch][:4]
    for k, f in enumerate(files):
        d = f"{out}/support/c{ci}" if k == 0 else f"{out}/query/c{ci}"
        os.makedirs(d, exist_ok=True)
        open(f"{d}/{os.path.basename(f)}", "wb").write(z.read(f))
PY
expect "predict on the user's folders" 0 "accuracy" -- "$BIN" predict "$TMP/protonet" --support "$TMP/own/support" --query "$TMP/own/query" --json
[ "$(grep -c $'\tc[0-4]$' "$TMP/out")" -eq 15 ] && ok "predict labels every query image" || bad "predict output: $(head -c 300 "$TMP/out")"
mkdir -p "$TMP/own/other/c9" && cp "$TMP"/own/query/c0/*.png "$TMP/own/other/c9/"
expect "predict with a query class missing from support" 1 "not among" -- "$BIN" predict "$TMP/protonet" --support "$TMP/own/support" --query "$TMP/own/other"
expect "predict of nested folders" 1 "nested" -- "$BIN" predict "$TMP/protonet" --support "$TMP/own/support" --query "$TMP/own"
mkdir -p "$TMP/own/flat" && cp "$TMP"/own/query/c0/*.png "$TMP/own/flat/"
expect "predict an unlabelled folder" 0 "" -- "$BIN" predict "$TMP/protonet" --support "$TMP/own/support" --query "$TMP/own/flat"

expect "training with augmentation" 0 "" -- "$BIN" train --algo protonet "${SMALL[@]}" --iters 2 --augment-rotate 10 --augment-scale 0.9,1.1 --augment-translate 2 --augment-flip 0.5 --out "$TMP/aug"
expect "bad augment-scale" 2 "augment-scale" -- "$BIN" train --algo protonet "${SMALL[@]}" --augment-scale 1.2,0.8 --out "$TMP/aug2"
expect "params of an embedding" 0 "" -- "$BIN" params --model cnn4 --outputs 0
grep -q "head" "$TMP/out" && bad "embedding has a head" || ok "embedding has no head"

# Ctrl-C while oneDNN's JIT kernels run: oneDNN 2.6's SGEMM points rsp into a heap buffer, so
# the handler must run on its own stack (sigaltstack). 60 filters take im2col + SGEMM everywhere
# (without the alternate stack, 4 of these 12 interrupts aborted with heap corruption), 64 the
# convolution primitives. Each interrupt must exit 130 with a checkpoint.
sigint_ok=1
for i in 1 2 3 4 5 6; do
  width=60; [ $i -gt 4 ] && width=64
  "$BIN" train --algo protonet --dataset "$DS" --model cnn4:$width --ways 20 --shots 5 --query 5 --meta-batch 2 \
    --iters 100000 --log-every 1 --eval-tasks 0 --quiet --out "$TMP/sigint$i" >"$TMP/sigint.out" 2>&1 &
  pid=$!
  for w in $(seq 1 1200); do [ -s "$TMP/sigint$i/log.jsonl" ] && break; sleep 0.1; done
  sleep "0.$((i % 5 * 2 + 1))"
  kill -INT $pid; wait $pid; st=$?
  if [ $st -ne 130 ] || ! grep -q "checkpoint saved" "$TMP/sigint.out"; then
    sigint_ok=0; bad "Ctrl-C $i during training: exit $st: $(tail -c 300 "$TMP/sigint.out")"
  fi
done
[ $sigint_ok = 1 ] && ok "Ctrl-C during oneDNN kernels: 6 of 6 exit 130 with a checkpoint"
expect "eval an interrupted run" 0 "" -- "$BIN" eval "$TMP/sigint6" --episodes 2 --ways 5 --shots 1

# ---- bad input ----
expect "missing zip" 1 "nowhere.zip" -- "$BIN" train --algo protonet --dataset "omniglot:$TMP/nowhere.zip" --quiet --out "$TMP/b1"
head -c 300000 "$DATA/images_background_small1.zip" > "$TMP/cut.zip"
expect "truncated zip" 1 "cut.zip" -- "$BIN" train --algo protonet --dataset "omniglot:$TMP/cut.zip" --quiet --out "$TMP/b2"
expect "more ways than classes" 1 "ways" -- "$BIN" train --algo protonet "${SMALL[@]}" --rotations 0 --ways 200 --iters 1 --out "$TMP/b3"
expect "more shots + queries than images" 1 "images" -- "$BIN" train --algo protonet "${SMALL[@]}" --shots 15 --query 10 --iters 1 --out "$TMP/b4"
expect "bad split" 2 "--split" -- "$BIN" train --algo protonet "${SMALL[@]}" --split 0.9,0.9,0.1 --out "$TMP/b5"

summary
