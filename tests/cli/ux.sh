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

# ---- plot --out DIR creates DIR ----
"$BIN" train --algo maml --task sinusoid --model mlp:8 --meta-batch 2 --shots 5 --iters 20 --eval-tasks 10 \
  --eval-steps 1 --quiet --out "$TMP/run" >/dev/null 2>&1
expect "plot --out a new folder" 0 "" -- "$BIN" plot "$TMP/run" --out "$TMP/figs/new"
[ -s "$TMP/figs/new/learning_curve.png" ] && ok "plot created the folder and wrote the chart" \
  || bad "no $TMP/figs/new/learning_curve.png"
: > "$TMP/file"
expect "plot --out a path under a file" 1 "$TMP/file" -- "$BIN" plot "$TMP/run" --out "$TMP/file/x"

summary
