#!/usr/bin/env bash
# CLI tests of what users expect from the command itself: --version, "did you
# mean" for a mistyped option (every command) or config key, plot --out
# creating its folder.
set -u
BIN="$1"
NAME=ux
source "$(dirname "$0")/lib/common.sh"

# ---- --version: CMake's project version, one place ----
want=$(sed -n 's/^project(metalearn VERSION \([0-9.]*\).*/\1/p' "$(dirname "$0")/../../CMakeLists.txt")
expect "--version" 0 "^metalearn $want\$" -- "$BIN" --version
[ -n "$want" ] && ok "CMakeLists.txt sets the project version ($want)" || bad "no VERSION in project()"

# ---- did you mean: every command's option table, commands, config keys ----
expect "train --inner-rl" 2 "did you mean --inner-lr?" -- "$BIN" train --inner-rl 0.1
expect "train --shts=3" 2 "did you mean --shots?" -- "$BIN" train --shts=3
expect "eval --lake-run" 2 "did you mean --lake-runs?" -- "$BIN" eval RUN --lake-run none
expect "search --budgte" 2 "did you mean --budget?" -- "$BIN" search --budgte 3
expect "predict --suport" 2 "did you mean --support?" -- "$BIN" predict RUN --suport DIR
expect "plot --outt" 2 "did you mean --out?" -- "$BIN" plot RUN --outt DIR
expect "params --modle" 2 "did you mean --model?" -- "$BIN" params --modle cnn4
expect "bench --iter" 2 "did you mean --iters?" -- "$BIN" bench --iter 3
expect "no suggestion for a different word" 2 "unknown option '--colour'$" -- "$BIN" train --colour red
grep -q "did you mean" "$TMP/err" && bad "suggested something for --colour" || ok "nothing suggested for --colour"
expect "command trian" 2 "did you mean train?" -- "$BIN" trian
echo '{"inner_rl": 0.1}' > "$TMP/c.json"
expect "config key inner_rl" 2 "did you mean 'inner-lr'?" -- "$BIN" train --config "$TMP/c.json"

# ---- plot on a run with only a torn first log line names the log, not "no log.jsonl" ----
mkdir -p "$TMP/torn"
printf '{"iter":100,"lo' >"$TMP/torn/log.jsonl"
expect "plot of a torn first log line" 1 "torn/log.jsonl: no complete log line yet" -- "$BIN" plot "$TMP/torn" --out "$TMP/tornfig"
grep -q "no log.jsonl" "$TMP/err" && bad "plot torn: says there is no log.jsonl" || ok "plot torn: does not deny the log"

# ---- plot --out DIR creates DIR ----
"$BIN" train --algo maml --task sinusoid --model mlp:8 --shots 5 --iters 20 --eval-tasks 10 \
  --eval-steps 1 --quiet --out "$TMP/run" >/dev/null 2>&1
expect "plot --out a new folder" 0 "" -- "$BIN" plot "$TMP/run" --out "$TMP/figs/new"
[ -s "$TMP/figs/new/learning_curve.png" ] && ok "plot created the folder and wrote the chart" \
  || bad "no $TMP/figs/new/learning_curve.png"
: > "$TMP/file"
expect "plot --out a path under a file" 1 "$TMP/file" -- "$BIN" plot "$TMP/run" --out "$TMP/file/x"

# ---- Meta-SGD --init FILE: the learned rates come along when the file has them ----
st_tensor() { # FILE NAME -> the tensor's raw bytes as hex
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
lo, hi = h[sys.argv[2]]["data_offsets"]; print(b[8 + n + lo:8 + n + hi].hex())
PY
}
MS=(--algo metasgd --task sinusoid --model mlp:8 --shots 5 --meta-batch 2 --eval-tasks 0)
"$BIN" train "${MS[@]}" --iters 30 --inner-lr 0.05 --quiet --out "$TMP/ms" >/dev/null 2>&1
expect "metasgd --init a metasgd checkpoint" 0 "parameters and Meta-SGD rates (alpha.NAME)" -- "$BIN" train "${MS[@]}" \
  --iters 1 --outer-lr 1e-12 --init "$TMP/ms/checkpoint.safetensors" --out "$TMP/ms2"
a=$(st_tensor "$TMP/ms/checkpoint.safetensors" alpha.layers.0.weight)
b=$(st_tensor "$TMP/ms2/checkpoint.safetensors" alpha.layers.0.weight)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "the learned rates were loaded, not reset to --inner-lr" || bad "rates differ: $a vs $b"
expect "metasgd --init a maml checkpoint" 0 "no alpha.NAME rates in it" -- "$BIN" train "${MS[@]}" \
  --iters 1 --init "$TMP/run/checkpoint.safetensors" --model mlp:8 --out "$TMP/ms3"

# ---- eval --lake-runs none; no Lake's runs by default on another dataset ----
# A folder set of 4 classes of 6 PNGs; a tiny ProtoNet run on it whose
# config names Lake's runs at a path that does not exist, so any attempt
# to run them fails loudly.
PYTHONPATH="$(dirname "$0")/lib" python3 - "$TMP" <<'PY'
import os, struct, sys, zlib
out = sys.argv[1]
from testpng import png
for c in range(4):
    d = f"{out}/folder/class{c}"; os.makedirs(d, exist_ok=True)
    for k in range(6):
        png(f"{d}/img{k}.png", 20, [[255 if (x + y * (c + 1) + k) % 5 == 0 else 0 for x in range(20)] for y in range(20)])
PY
"$BIN" train --algo protonet --dataset "folder:$TMP/folder" --split 0.5,0,0.5 --model cnn4:8 --ways 2 --shots 1 \
  --query 2 --rotations 0 --iters 2 --eval-tasks 0 --quiet --out "$TMP/fs" >/dev/null 2>&1
python3 - "$TMP/fs/config.json" "$TMP/no_such_runs.zip" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["lake-runs"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
# ---- per-learner defaults: metric learners take 1 episode per update ----
grep -q '"meta-batch":[[:space:]]*1,' "$TMP/fs/config.json" && ok "protonet: config.json records meta-batch 1 (the learner's default)" \
  || bad "protonet meta-batch: $(grep meta-batch "$TMP/fs/config.json")"
grep -q '"meta-batch":[[:space:]]*25,' "$TMP/run/config.json" && ok "maml: config.json records meta-batch 25" \
  || bad "maml meta-batch: $(grep meta-batch "$TMP/run/config.json")"
expect "train --help: the meta-batch default depends on the learner" 0 "meta-batch.*default: the learner's" -- \
  "$BIN" train --help
expect "banner shows the effective meta-batch" 0 "meta-batch 1\|meta batch 1\|batch 1" -- "$BIN" train --algo r2d2 \
  --dataset "folder:$TMP/folder" --split 0.5,0,0.5 --model cnn4:8 --ways 2 --shots 1 --query 2 --rotations 0 --iters 1 \
  --eval-tasks 0 --out "$TMP/r2"
grep -q '"meta-batch":[[:space:]]*1,' "$TMP/r2/config.json" && ok "r2d2: meta-batch 1" || bad "r2d2 meta-batch"

EV=(--ways 2 --shots 1 --episodes 2)
expect "eval uses the run's Lake's runs" 1 "no_such_runs" -- "$BIN" eval "$TMP/fs" "${EV[@]}"
expect "eval --lake-runs none" 0 "accuracy" -- "$BIN" eval "$TMP/fs" "${EV[@]}" --lake-runs none --json
grep -q "lake" "$TMP/out" && bad "--lake-runs none still reports Lake's runs" || ok "no Lake's runs in the output"
expect "eval on another dataset skips the run's Lake's runs" 0 "on folder:" -- "$BIN" eval "$TMP/fs" "${EV[@]}" \
  --dataset "folder:$TMP/folder" --json
expect "--lake-runs PATH with another dataset still runs them" 1 "no_such_runs" -- "$BIN" eval "$TMP/fs" "${EV[@]}" \
  --dataset "folder:$TMP/folder" --lake-runs "$TMP/no_such_runs.zip"
expect "--lake-steps with --lake-runs none" 2 "no Lake's runs" -- "$BIN" eval "$TMP/fs" "${EV[@]}" --lake-runs none \
  --lake-steps 3
expect "eval --algo nn --lake-runs none" 2 "needs --lake-runs PATH" -- "$BIN" eval --algo nn --lake-runs none

# ---- predict: class probabilities; regression runs ----
expect "predict --json: class probabilities" 0 '"probabilities":{"class0":' -- "$BIN" predict "$TMP/fs" \
  --support "$TMP/folder" --query "$TMP/folder" --json
tail -n 1 "$TMP/out" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
for p in j["predictions"]:
    pr = p["probabilities"]
    assert abs(sum(pr.values()) - 1) < 1e-4, pr
    assert max(pr, key=pr.get) == p["class"], p
' && ok "probabilities sum to 1 and the most probable class is the label" || bad "probabilities: $(tail -c 300 "$TMP/out")"
expect "predict --probs: a table" 0 "class probabilities" -- "$BIN" predict "$TMP/fs" --support "$TMP/folder" \
  --query "$TMP/folder" --probs
[ "$(grep -c '^class[0-3]/img[0-5].png *\( *[01]\.[0-9]\{4\}\)\{4\}$' "$TMP/out")" -eq 24 ] \
  && ok "one row of 4 probabilities per query image" || bad "table: $(tail -n 5 "$TMP/out")"

printf 'x,y\n-3,1.5\n-1,"-0.5"\n0,0.25\n2,1\n4,-2\n' > "$TMP/sup.csv"
printf 'x\n-2\n1\n3.5\n' > "$TMP/qx.csv"
printf '%s\n' '-2,1' '1,0' '3.5,-1' > "$TMP/qxy.csv"
expect "predict a regression run: CSV out" 0 "^x_1,y$" -- "$BIN" predict "$TMP/run" --support "$TMP/sup.csv" \
  --query "$TMP/qx.csv" --steps 5
[ "$(grep -c '^-\?[0-9.]*,-\?[0-9.e-]*$' "$TMP/out")" -eq 3 ] && grep -q '^3.5,' "$TMP/out" \
  && ok "one predicted y per query row" || bad "regression output: $(cat "$TMP/out")"
expect "regression predict with targets: MSE" 0 '"mse":' -- "$BIN" predict "$TMP/run" --support "$TMP/sup.csv" \
  --query "$TMP/qxy.csv" --steps 5 --json
"$BIN" predict "$TMP/run" --support "$TMP/sup.csv" --query "$TMP/qx.csv" --steps 0 > "$TMP/p0" 2>/dev/null
"$BIN" predict "$TMP/run" --support "$TMP/sup.csv" --query "$TMP/qx.csv" --steps 5 > "$TMP/p5" 2>/dev/null
cmp -s "$TMP/p0" "$TMP/p5" && bad "adapting on the support rows changed nothing" || ok "the support rows adapt the model"
expect "regression support without y" 1 "sup1.csv: 1 columns" -- sh -c "cut -d, -f1 '$TMP/sup.csv' > '$TMP/sup1.csv'; \
  '$BIN' predict '$TMP/run' --support '$TMP/sup1.csv' --query '$TMP/qx.csv'"
printf '1,abc\n' > "$TMP/bad.csv"
expect "regression support with a bad number" 1 "bad.csv:1: column 2: not a number 'abc'" -- "$BIN" predict "$TMP/run" \
  --support "$TMP/bad.csv" --query "$TMP/qx.csv"
expect "regression query missing" 1 "nothere.csv" -- "$BIN" predict "$TMP/run" --support "$TMP/sup.csv" \
  --query "$TMP/nothere.csv"

# ---- progress on stderr (lines when not a terminal), JSON on stdout untouched ----
expect "eval reports progress" 0 "^evaluation: 40/40 (100%)" -- "$BIN" eval "$TMP/run" --tasks 40 --json
grep -q "^evaluation: 25/40 (62%)" "$TMP/err" && ok "a line per batch past each 10%" || bad "progress lines: $(cat "$TMP/err")"
tail -n 1 "$TMP/out" | python3 -c 'import json, sys; json.loads(sys.stdin.read())' && ! grep -q "(100%)" "$TMP/out" \
  && ok "stdout holds the JSON only" || bad "stdout: $(tail -c 200 "$TMP/out")"
expect "eval --quiet" 0 "" -- "$BIN" eval "$TMP/run" --tasks 40 --quiet
[ ! -s "$TMP/err" ] && ok "eval --quiet prints nothing on stderr" || bad "stderr: $(head -c 200 "$TMP/err")"
expect "predict reports the adaptation steps" 0 "^adaptation: 5/5 (100%)" -- "$BIN" predict "$TMP/run" \
  --support "$TMP/sup.csv" --query "$TMP/qx.csv" --steps 5
expect "predict --quiet" 0 "" -- "$BIN" predict "$TMP/run" --support "$TMP/sup.csv" --query "$TMP/qx.csv" --steps 5 --quiet
grep -q "adaptation" "$TMP/err" && bad "predict --quiet still reports" || ok "predict --quiet prints no progress"
if command -v script >/dev/null; then
  script -qc "'$BIN' eval '$TMP/run' --tasks 40 --json >/dev/null" /dev/null > "$TMP/tty" 2>&1
  grep -q "evaluation \[#*\] 100% 40/40" "$TMP/tty" && ok "a bar on a terminal" || bad "terminal: $(head -c 300 "$TMP/tty")"
else
  skip "no script(1) to fake a terminal"
fi

summary
