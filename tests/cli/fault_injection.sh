#!/usr/bin/env bash
# Fault injection: a full disk (ENOSPC, or a short write then ENOSPC) while
# writing a checkpoint, the log, config.json, eval.json and a search's files
# (trials.jsonl, best.json, search.png), through the LD_PRELOAD shim
# tests/fault/faultfs.c ($ML_FAULTFS). Each case: a one-line error naming
# the file, a non-zero exit, nothing already saved lost (the previous
# checkpoint loadable, the log without a torn line, no temporaries), and a
# resume or rerun afterwards that gives the uninterrupted result.
set -u
BIN="$1"
NAME=fault
source "$(dirname "$0")/lib/common.sh"
if [ ! -f "${ML_FAULTFS:-}" ]; then
  echo "SKIP: the fault shim is not built (ML_FAULTFS)"; echo "0 passed, 0 failed"; exit 77
fi
# faulty PATTERN NTH MODE cmd...: cmd with writes to PATTERN failing from the NTH on.
faulty() {
  local pattern="$1" nth="$2" mode="$3"; shift 3
  env LD_PRELOAD="$ML_FAULTFS" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    FAULT_PATH="$pattern" FAULT_NTH="$nth" FAULT_MODE="$mode" "$@"
}
one_line() { [ "$(grep -c . "$TMP/err")" -eq 1 ] && ok "$1: a one-line error" || bad "$1: $(cat "$TMP/err")"; }
no_temps() { [ -z "$(find "$1" -name '*.tmp*')" ] && ok "$2: no temporaries" || bad "$2: $(find "$1" -name '*.tmp*')"; }
clean_log() {
  [ -z "$(tail -c 1 "$1/log.jsonl")" ] && ! grep -qv '^{"iter":[0-9]*,.*}$' "$1/log.jsonl" \
    && ok "$2: no torn line in the log" || bad "$2: log: $(tail -c 200 "$1/log.jsonl")"
}
C=(--algo maml --task sinusoid --model mlp:8,8 --meta-batch 3 --shots 4 --query 4 --eval-tasks 0 --log-every 10
   --checkpoint-every 20 --quiet)
"$BIN" train "${C[@]}" --iters 60 --out "$TMP/ref" >/dev/null 2>&1

# The shim works (a control: the same run with no matching path succeeds).
expect "shim loaded, nothing matching: the run succeeds" 0 "" -- \
  faulty no-such-file 1 enospc "$BIN" train "${C[@]}" --iters 20 --out "$TMP/ctl"

# ---- the checkpoint, the log: full disk during training, then resume ----
for mode in enospc short; do
  for what in checkpoint.safetensors log.jsonl; do
    d="$TMP/$mode-${what%%.*}"
    "$BIN" train "${C[@]}" --iters 60 --stop-at 20 --out "$d" >/dev/null 2>&1
    cp "$d/checkpoint.safetensors" "$TMP/ck20"
    expect "$what, $mode: the run stops" 1 "$what" -- faulty "$what" 1 $mode "$BIN" train --resume "$d" --iters 60 --quiet
    one_line "$what, $mode"
    no_temps "$d" "$what, $mode"
    clean_log "$d" "$what, $mode"
    cmp -s "$d/checkpoint.safetensors" "$TMP/ck20" && ok "$what, $mode: the previous checkpoint intact" \
      || bad "$what, $mode: checkpoint changed"
    expect "$what, $mode: the checkpoint loads (eval)" 0 "" -- "$BIN" eval "$d" --tasks 5
    expect "$what, $mode: resume afterwards" 0 "" -- "$BIN" train --resume "$d" --iters 60 --quiet
    cmp -s "$d/checkpoint.safetensors" "$TMP/ref/checkpoint.safetensors" \
      && [ "$(grep -o '"iter":[0-9]*,"loss":[^,]*' "$d/log.jsonl")" = "$(grep -o '"iter":[0-9]*,"loss":[^,]*' "$TMP/ref/log.jsonl")" ] \
      && ok "$what, $mode: the resumed run equals the uninterrupted one (checkpoint and log)" \
      || bad "$what, $mode: resumed run differs"
  done
done
# A failure on the very first checkpoint write of a new run: no checkpoint, no temporary.
expect "first checkpoint fails" 1 "checkpoint.safetensors" -- \
  faulty checkpoint.safetensors 2 short "$BIN" train "${C[@]}" --iters 60 --out "$TMP/first"
no_temps "$TMP/first" "first checkpoint fails"

# ---- config.json: the old one stays ----
cp "$TMP/ref/config.json" "$TMP/config.before"
expect "config.json fails" 1 "config.json" -- faulty config.json 1 short "$BIN" train --resume "$TMP/ref" --iters 60 --quiet
one_line "config.json"
cmp -s "$TMP/ref/config.json" "$TMP/config.before" && ok "config.json: the old one intact" || bad "config.json changed"
no_temps "$TMP/ref" "config.json"

# ---- eval.json: training is kept, an evaluation-only resume writes it ----
expect "eval.json fails" 1 "eval.json" -- faulty eval.json 1 enospc "$BIN" train "${C[@]}" --iters 40 --eval-tasks 5 --out "$TMP/ev"
one_line "eval.json"
[ ! -e "$TMP/ev/eval.json" ] && ok "eval.json: no partial file" || bad "eval.json: a partial file"
no_temps "$TMP/ev" "eval.json"
expect "eval.json: an evaluation-only resume writes it" 0 "" -- "$BIN" train --resume "$TMP/ev" --iters 40 --eval-tasks 5 --quiet
[ -s "$TMP/ev/eval.json" ] && ok "eval.json written on resume" || bad "eval.json missing after resume"

# ---- a search's own files ----
cat > "$TMP/space.json" <<'EOF'
{"base": {"algo": "maml", "task": "sinusoid", "model": "mlp:8,8", "meta-batch": 3, "shots": 4, "query": 4,
          "eval-steps": "1", "eval-query": 10},
 "space": {"inner-lr": {"log_uniform": [0.001, 0.5]}, "outer-lr": {"log_uniform": [0.0001, 0.01]}}}
EOF
S=(--space "$TMP/space.json" --budget 3 --min-iters 10 --max-iters 20 --jobs 1 --threads 1 --val-tasks 10 --quiet)
"$BIN" search "${S[@]}" --out "$TMP/sref" >/dev/null 2>&1
for what in trials.jsonl best.json search.png; do
  d="$TMP/s-$what"
  expect "search, $what fails" 1 "$what" -- faulty "$what" 1 short "$BIN" search "${S[@]}" --out "$d"
  one_line "search, $what"
  if [ -e "$d/trials.jsonl" ] && [ -n "$(tail -c 1 "$d/trials.jsonl")" ]; then bad "search, $what: torn trials.jsonl"
  else ok "search, $what: trials.jsonl has no torn line"; fi
  no_temps "$d" "search, $what"
  expect "search, $what: a rerun finishes" 0 "" -- "$BIN" search "${S[@]}" --out "$d"
  cmp -s "$d/best.json" "$TMP/sref/best.json" && ok "search, $what: best.json equals the uninterrupted search's" \
    || bad "search, $what: best.json differs"
done

# ---- a meta-RL run's checkpoint: the reason (a full disk), the old one kept ----
R=(--env nav2d --algo maml --rollouts 4 --horizon 10 --meta-batch 2 --outer adam --log-every 1 --checkpoint-every 1
   --eval-tasks 2 --threads 1 --quiet)
"$BIN" train "${R[@]}" --iters 4 --out "$TMP/rlref" >/dev/null 2>&1
"$BIN" train "${R[@]}" --iters 4 --stop-at 2 --out "$TMP/rl" >/dev/null 2>&1
cp "$TMP/rl/checkpoint.safetensors" "$TMP/rl2"
expect "RL checkpoint fails" 1 "rl/checkpoint.safetensors: write failed .*No space left on device" -- \
  faulty checkpoint.safetensors 1 short "$BIN" train --resume "$TMP/rl" --iters 4 --quiet
one_line "RL checkpoint"
no_temps "$TMP/rl" "RL checkpoint"
cmp -s "$TMP/rl/checkpoint.safetensors" "$TMP/rl2" && ok "RL checkpoint: the previous one intact" || bad "RL checkpoint changed"
expect "RL checkpoint: resume afterwards" 0 "" -- "$BIN" train --resume "$TMP/rl" --iters 4 --quiet
cmp -s "$TMP/rl/checkpoint.safetensors" "$TMP/rlref/checkpoint.safetensors" \
  && ok "RL checkpoint: the resumed run equals the uninterrupted one" || bad "RL checkpoint: resumed run differs"

# ---- standard output on a full disk (/dev/full): an error naming it, not exit 0 ----
# (stdio writes through libc's own write, which the shim does not see.)
if [ -w /dev/full ]; then
  printf '1.0,2.0\n-1.0,-2.0\n' >"$TMP/sup.csv"; printf '0.5\n' >"$TMP/q.csv"
  expect "predict > /dev/full" 1 "metalearn predict: /dev/full (standard output): write failed: No space left on device" -- \
    sh -c '"$0" predict "$1" --support "$2" --query "$3" --quiet >/dev/full' "$BIN" "$TMP/ref" "$TMP/sup.csv" "$TMP/q.csv"
  one_line "predict > /dev/full"
  expect "eval --json > /dev/full" 1 "metalearn eval: /dev/full (standard output): write failed" -- \
    sh -c '"$0" eval "$1" --tasks 2 --json --quiet >/dev/full' "$BIN" "$TMP/ref"
  expect "--help > /dev/full" 1 "metalearn: /dev/full (standard output): write failed" -- sh -c '"$0" --help >/dev/full' "$BIN"
  expect "predict to a file still works" 0 "" -- sh -c '"$0" predict "$1" --support "$2" --query "$3" --quiet >"$4"' \
    "$BIN" "$TMP/ref" "$TMP/sup.csv" "$TMP/q.csv" "$TMP/pred.csv"
  [ "$(wc -l <"$TMP/pred.csv")" -eq 2 ] && ok "predict: header and one row" || bad "predict: $(cat "$TMP/pred.csv")"
else
  skip "no writable /dev/full here"
fi

summary
