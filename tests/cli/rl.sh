#!/usr/bin/env bash
# CLI test of meta-RL runs (`metalearn train --env ...`, `metalearn eval RUN`):
# a tiny nav2d run writes config.json, a log line per iteration and a
# checkpoint; --stop-at then --resume gives the uninterrupted run's checkpoint
# byte for byte (also with another thread count), and so does Ctrl-C then
# --resume; eval prints and saves returns before / after adaptation steps with
# 95% intervals (train ends with the same evaluation), at a rate chosen on
# validation tasks from --eval-lr's list; --algo random saves the untrained
# policy; bad settings end with one line on stderr, non-zero, before anything
# is written.
set -u
BIN="$1"
NAME=rl
source "$(dirname "$0")/lib/common.sh"
RL="--env nav2d --algo maml --rollouts 4 --horizon 20 --meta-batch 4 --iters 6 --threads 1 --seed 3 --eval-tasks 2 --quiet"

expect "train nav2d maml" 0 "" -- "$BIN" train $RL --out "$TMP/full" --eval-tasks 3
if grep -q "maml on nav2d, 6 outer iterations, 3 test tasks" "$TMP/out" && grep -q '"tasks":3' "$TMP/full/eval.json"; then
  ok "train ends with the evaluation (table, eval.json)"
else bad "train's evaluation: $(head -c 300 "$TMP/out")"; fi
if [ "$(wc -l < "$TMP/full/log.jsonl")" -eq 6 ] &&
   grep -q '^{"iter":6,"return_before":[-0-9.e]*,"return_after":[-0-9.e]*,.*"elapsed_s":' "$TMP/full/log.jsonl" &&
   grep -q '"env":	"nav2d"' "$TMP/full/config.json" && [ -f "$TMP/full/checkpoint.safetensors" ]; then
  ok "config.json, a log line per iteration, a checkpoint"
else bad "run folder: $(ls "$TMP/full") $(head -c 300 "$TMP/full/log.jsonl")"; fi
expect "refuses an existing run" 1 "already holds a run" -- "$BIN" train $RL --out "$TMP/full"

expect "stop at 3" 0 "" -- "$BIN" train $RL --out "$TMP/part" --stop-at 3
expect "resume to 6 with 2 threads" 0 "" -- "$BIN" train --resume "$TMP/part" --threads 2 --quiet
if cmp -s "$TMP/full/checkpoint.safetensors" "$TMP/part/checkpoint.safetensors" &&
   [ "$(wc -l < "$TMP/part/log.jsonl")" -eq 6 ]; then ok "resume: same checkpoint bytes, one log line per iteration"
else bad "resumed checkpoint or log differs"; fi

# Ctrl-C: the last good checkpoint stays, and --resume finishes the same run.
"$BIN" train ${RL/--iters 6/--iters 4000} --checkpoint-every 1 --out "$TMP/int" 2>"$TMP/int.err" &
pid=$!
for _ in $(seq 300); do [ -f "$TMP/int/checkpoint.safetensors" ] && break; sleep 0.1; done
kill -INT "$pid"; wait "$pid"; st=$?
if [ "$st" -eq 130 ] && grep -q "resume" "$TMP/int.err"; then ok "Ctrl-C: exit 130 with how to resume"
else bad "Ctrl-C: exit $st: $(head -c 300 "$TMP/int.err")"; fi
done_it=$(tail -n 1 "$TMP/int/log.jsonl" | sed 's/{"iter":\([0-9]*\),.*/\1/')
expect "resume the interrupted run to $((done_it + 2))" 0 "" -- "$BIN" train --resume "$TMP/int" --iters $((done_it + 2)) --quiet
expect "the same run uninterrupted" 0 "" -- "$BIN" train ${RL/--iters 6/--iters $((done_it + 2))} --out "$TMP/ref"
if cmp -s "$TMP/int/checkpoint.safetensors" "$TMP/ref/checkpoint.safetensors"; then ok "Ctrl-C + resume: same bytes"
else bad "Ctrl-C + resume differs from the uninterrupted run"; fi

expect "eval --json" 0 "" -- "$BIN" eval "$TMP/full" --steps 0,1,2,3 --tasks 6 --json
if grep -q '^{"env":"nav2d","algo":"maml","iterations":6,"tasks":6,.*"eval_lr":0.1,"steps":\[0,1,2,3\],"return":\[[-0-9.e]*,[-0-9.e]*,[-0-9.e]*,[-0-9.e]*\],"ci95":\[[0-9.e]*,[0-9.e]*,[0-9.e]*,[0-9.e]*\]}$' "$TMP/out" &&
   tail -n 1 "$TMP/out" | cmp -s - "$TMP/full/eval.json"; then ok "eval JSON: steps, return, ci95; eval.json is that line"
else bad "eval JSON: $(head -c 300 "$TMP/out")"; fi
expect "eval table" 0 "steps *return *ci95" -- "$BIN" eval "$TMP/full" --steps 0,1 --tasks 4
expect "eval bad steps" 2 "steps 'x': expected" -- "$BIN" eval "$TMP/full" --steps x --tasks 4
expect "eval --eval-lr grid" 0 "chosen on 4 validation tasks" -- "$BIN" eval "$TMP/full" --steps 0,1 --tasks 4 --eval-lr 0.01,1
if grep -q '"eval_lr_grid":\[0.01,1\]' "$TMP/full/eval.json" && [ "$(wc -l < "$TMP/full/eval.json")" = 1 ]; then
  ok "eval.json records the grid, on one line"
else bad "eval.json: $(head -c 400 "$TMP/full/eval.json")"; fi
expect "eval bad --eval-lr" 2 "eval-lr 'fast': expected" -- "$BIN" eval "$TMP/full" --tasks 4 --eval-lr fast
# --eval-later-scale: the first step as before, the later ones at the rate times the scale.
"$BIN" eval "$TMP/full" --steps 0,1,2,3 --tasks 6 --json 2>/dev/null | tail -n 1 > "$TMP/same.json"
expect "eval --eval-later-scale 0.5" 0 "later steps at 0.05" -- "$BIN" eval "$TMP/full" --steps 0,1,2,3 --tasks 6 --eval-later-scale 0.5 --json
ret() { sed 's/.*"return":\[\([^]]*\)\].*/\1/' "$1" | tr ',' ' '; }
read -r a0 a1 a2 _ <<< "$(ret "$TMP/same.json")"; read -r b0 b1 b2 _ <<< "$(tail -n 1 "$TMP/out" | ret /dev/stdin)"
if tail -n 1 "$TMP/out" | grep -q '"eval_lr":0.1,"eval_later_scale":0.5,"steps"' && [ "$a0 $a1" = "$b0 $b1" ] && [ "$a2" != "$b2" ]; then
  ok "later steps scaled: steps 0-1 unchanged, step 2 differs, JSON records the scale"
else bad "eval-later-scale: same ($a0 $a1 $a2) vs scaled ($b0 $b1 $b2): $(tail -c 300 "$TMP/out")"; fi
expect "eval bad --eval-later-scale" 2 "eval-later-scale" -- "$BIN" eval "$TMP/full" --tasks 4 --eval-later-scale -1
expect "random policy" 0 "random on nav2d, 0 outer iterations" -- "$BIN" train ${RL/--algo maml/--algo random} --out "$TMP/rand" --eval-tasks 3
if [ -f "$TMP/rand/checkpoint.safetensors" ] && [ ! -e "$TMP/rand/log.jsonl" ]; then ok "random: the initialisation saved"
else bad "random run folder: $(ls "$TMP/rand")"; fi

expect "plot" 0 "rl_returns.png" -- "$BIN" plot "$TMP/full" "$TMP/part" "$TMP/rand" --out "$TMP/fig"
if [ -s "$TMP/fig/rl_returns.png" ] && [ -s "$TMP/fig/rl_trajectories.png" ]; then ok "plot: returns and trajectories PNGs"
else bad "plot: $(ls "$TMP/fig" 2>&1)"; fi
mkdir -p "$TMP/nonrl" && echo '{"algo": "maml", "task": "sinusoid"}' > "$TMP/nonrl/config.json"
expect "plot mixes an RL run with another" 2 "is not a meta-RL run" -- "$BIN" plot "$TMP/full" "$TMP/nonrl"

n_bad=0
one_line() { # NAME STATUS PATTERN -- train arguments: one line on stderr, nothing written
  local name="$1" status="$2" pattern="$3"; shift 4
  n_bad=$((n_bad + 1))
  expect "$name" "$status" "$pattern" -- "$BIN" train "$@" --out "$TMP/bad$n_bad" --quiet
  if [ "$(wc -l < "$TMP/err")" -ne 1 ] || [ -e "$TMP/bad$n_bad" ]; then bad "$name: not one line before anything is written"; fi
}
one_line "unknown env" 2 "env 'maze': unknown environment (known: nav2d" -- $RL --env maze
one_line "bandit:0" 2 "env bandit:K: K must be an integer" -- $RL --env bandit:0
one_line "env with an image dataset" 2 "env nav2d and --dataset fashion-mnist: a meta-RL run has no dataset" -- $RL --dataset fashion-mnist
one_line "unknown RL algo" 2 "algo 'protonet' with --env: expected maml, fomaml, pretrain, oracle or random" -- $RL --algo protonet
one_line "unknown outer" 2 "outer 'sgd': expected trpo or adam" -- $RL --outer sgd
expect "bandit:3 pretrain with adam" 0 "" -- "$BIN" train --env bandit:3 --algo pretrain --outer adam --rollouts 4 \
  --horizon 10 --meta-batch 2 --iters 2 --threads 1 --quiet --out "$TMP/bandit"
expect "oracle on nav2d-rot" 0 "" -- "$BIN" train --env nav2d-rot --algo oracle --rollouts 4 --horizon 10 \
  --meta-batch 2 --iters 2 --threads 1 --quiet --out "$TMP/rot"
# A diverging run stops with the iteration named, for TRPO too: its line search
# rejects every step of a NaN loss, which used to freeze the policy and finish
# "successfully" with "loss":-nan (not JSON) in the log.
for outer in trpo adam; do
  expect "NaN ($outer) stops the run" 1 "iteration 1 failed (non-finite value); no checkpoint was saved" -- \
    "$BIN" train ${RL/--iters 6/--iters 3} --outer $outer --inner-lr 1000 --out "$TMP/nan_$outer"
  [ "$(grep -c . "$TMP/err")" -eq 1 ] && ok "NaN ($outer): one line" || bad "NaN ($outer): $(cat "$TMP/err")"
  [ ! -e "$TMP/nan_$outer/log.jsonl" ] && ok "NaN ($outer): no log line of a NaN iteration" \
    || bad "NaN ($outer): log: $(head -c 200 "$TMP/nan_$outer/log.jsonl")"
done
"$BIN" train ${RL/--iters 6/--iters 3} --outer trpo --checkpoint-every 1 --out "$TMP/nan_later" >/dev/null 2>&1
cp "$TMP/nan_later/checkpoint.safetensors" "$TMP/nan_later.ckpt"
expect "NaN after a checkpoint names it" 1 "iteration 4 failed (non-finite value); the last good checkpoint is .*nan_later/checkpoint.safetensors (iteration 3)" -- \
  "$BIN" train --resume "$TMP/nan_later" --iters 6 --inner-lr 1000
cmp -s "$TMP/nan_later/checkpoint.safetensors" "$TMP/nan_later.ckpt" && ok "NaN: the last good checkpoint kept" \
  || bad "NaN: the checkpoint changed"

summary
