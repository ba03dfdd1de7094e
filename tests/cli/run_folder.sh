#!/usr/bin/env bash
# CLI tests of a run folder's safety: a new run never lands on an old one
# unasked (--overwrite replaces it cleanly), --resume cuts the log back to
# the checkpoint and drops a torn line (the log stays strictly increasing,
# its averages those of an uninterrupted run), stale temporaries of killed
# writers are removed, checkpoints (by iterations or by time) never change
# the result, and an evaluation-only resume keeps the training time.
set -u
BIN="$1"
NAME=run_folder
source "$(dirname "$0")/lib/common.sh"
C=(--algo maml --task sinusoid --model mlp:8,8 --meta-batch 3 --shots 4 --query 4 --eval-tasks 0 --log-every 10 --quiet)

# iters DIR: the "iter" values of DIR/log.jsonl, space-separated.
iters() { grep -o '"iter":[0-9]*' "$1/log.jsonl" | cut -d: -f2 | tr '\n' ' '; }
# losses DIR: "iter loss" per line, for comparing two runs' logs.
losses() { sed 's/.*"iter":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/' "$1/log.jsonl"; }
# increasing DIR: every line a complete record, iter strictly increasing.
increasing() {
  [ -z "$(tail -c 1 "$1/log.jsonl")" ] || return 1
  awk -F'"iter":' '{ split($2, a, ","); if (a[1] + 0 <= last || $0 !~ /}$/) exit 1; last = a[1] + 0 }' "$1/log.jsonl"
}

# ---- a new run into a folder holding one ----
"$BIN" train "${C[@]}" --iters 30 --out "$TMP/old" >/dev/null 2>&1
cp "$TMP/old/checkpoint.safetensors" "$TMP/old.ckpt"
expect "a new run into a run folder is refused" 1 "already holds a run (checkpoint.safetensors)" -- \
  "$BIN" train "${C[@]}" --iters 5 --out "$TMP/old"
cmp -s "$TMP/old/checkpoint.safetensors" "$TMP/old.ckpt" && [ "$(iters "$TMP/old")" = "10 20 30 " ] \
  && ok "the refused run left the old one untouched" || bad "the old run changed: $(iters "$TMP/old")"
grep -q -- "--resume $TMP/old" "$TMP/err" && grep -q -- "--overwrite" "$TMP/err" && [ "$(wc -l <"$TMP/err")" -eq 1 ] \
  && ok "the refusal is one line naming --resume and --overwrite" || bad "refusal message: $(cat "$TMP/err")"
mkdir -p "$TMP/logonly" && echo '{"iter":10,"loss":1}' >"$TMP/logonly/log.jsonl"
expect "a folder with only a log is a run too" 1 "log.jsonl" -- "$BIN" train "${C[@]}" --iters 5 --out "$TMP/logonly"
# A setting refused after the setup has made the run's split leaves no
# split.json behind (it would make the folder look like a run and refuse
# the corrected command); the split is written with the run.
{ printf 'task,set,x,y\n'; for t in 0 1 2 3 4 5 6 7 8 9; do for s in support query; do for x in 1 2 3 4 5 6; do
  echo "$t,$s,$x,$((x * t))"; done; done; done; } >"$TMP/t.csv"
S=(--algo maml --task "csv:$TMP/t.csv" --meta-batch 2 --iters 2 --shots 2 --eval-tasks 0 --quiet)
expect "a CSV run refused at setup" 2 "task '0' has only 6 query rows" -- "$BIN" train "${S[@]}" --query 50 --out "$TMP/csvrun"
[ ! -e "$TMP/csvrun" ] && ok "the refused run wrote nothing (no split.json)" || bad "left: $(ls "$TMP/csvrun")"
expect "the corrected command runs in that folder" 0 "" -- "$BIN" train "${S[@]}" --query 2 --out "$TMP/csvrun"
[ -s "$TMP/csvrun/split.json" ] && ok "the run's split is written with the run" || bad "no split.json: $(ls "$TMP/csvrun")"
mkdir -p "$TMP/other" && echo notes >"$TMP/other/notes.txt"
expect "a folder without run files is fine" 0 "" -- "$BIN" train "${C[@]}" --iters 5 --out "$TMP/other"
expect "--overwrite replaces the run" 0 "" -- "$BIN" train "${C[@]}" --iters 20 --log-every 5 --out "$TMP/old" --overwrite
[ "$(iters "$TMP/old")" = "5 10 15 20 " ] && ok "--overwrite: the log is the new run's only" || bad "--overwrite log: $(iters "$TMP/old")"
grep -q '"overwrite":[[:space:]]*false' "$TMP/old/config.json" && ok "config.json does not carry --overwrite" \
  || bad "config.json: $(grep overwrite "$TMP/old/config.json")"
expect "--config of that run into its own folder is refused" 1 "already holds a run" -- \
  "$BIN" train --config "$TMP/old/config.json" --iters 25
expect "--resume continues it" 0 "" -- "$BIN" train --resume "$TMP/old" --iters 25
[ "$(iters "$TMP/old")" = "5 10 15 20 25 " ] && ok "resume appended to the new log" || bad "resume log: $(iters "$TMP/old")"

mkdir -p "$TMP/nockpt" && cp "$TMP/old/config.json" "$TMP/nockpt/" && sed -i "s|$TMP/old|$TMP/nockpt|" "$TMP/nockpt/config.json"
expect "--resume of a run killed before its first checkpoint says how to restart" 1 "no checkpoint to resume from.*--overwrite" -- \
  "$BIN" train --resume "$TMP/nockpt" --iters 25
expect "... and --overwrite restarts it" 0 "" -- "$BIN" train --config "$TMP/nockpt/config.json" --iters 25 --overwrite
grep -q '"resume":[[:space:]]*"' "$TMP/old/config.json" && ok "(a resumed run's config names its folder)" || bad "config.json without resume"
expect "the config of a resumed run starts a new run elsewhere" 0 "" -- \
  "$BIN" train --config "$TMP/old/config.json" --iters 5 --out "$TMP/fromcfg"
[ "$(iters "$TMP/fromcfg")" = "5 " ] && ok "... from iteration 0" || bad "--config of a resumed run: log $(iters "$TMP/fromcfg")"

# ---- an uninterrupted reference, checkpointed only at the end ----
"$BIN" train "${C[@]}" --iters 60 --checkpoint-minutes 0 --out "$TMP/ref" >/dev/null 2>&1
# Checkpoints every iteration, or by time (every 6 ms), give the same bytes.
"$BIN" train "${C[@]}" --iters 60 --checkpoint-every 1 --out "$TMP/every1" >/dev/null 2>&1
cmp -s "$TMP/ref/checkpoint.safetensors" "$TMP/every1/checkpoint.safetensors" \
  && ok "checkpointing every iteration does not change the result" || bad "--checkpoint-every 1 changed the checkpoint"
"$BIN" train "${C[@]}" --iters 60 --checkpoint-minutes 0.0001 --out "$TMP/bytime" >/dev/null 2>&1
cmp -s "$TMP/ref/checkpoint.safetensors" "$TMP/bytime/checkpoint.safetensors" \
  && ok "checkpointing by time does not change the result" || bad "--checkpoint-minutes changed the checkpoint"
# Time-based checkpoints happen: a run killed after a while has one before --checkpoint-every.
"$BIN" train "${C[@]}" --iters 100000000 --checkpoint-every 100000000 --checkpoint-minutes 0.002 --out "$TMP/timed" >/dev/null 2>&1 &
pid=$!
# (0.12 s of training; the wait is bounded far above it for a loaded machine)
for _ in $(seq 600); do [ -f "$TMP/timed/checkpoint.safetensors" ] && break; sleep 0.1; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
[ -f "$TMP/timed/checkpoint.safetensors" ] && ok "--checkpoint-minutes saves before --checkpoint-every" \
  || bad "no time-based checkpoint within 60 s"
expect "--checkpoint-minutes must not be negative" 2 "checkpoint-minutes" -- "$BIN" train "${C[@]}" --checkpoint-minutes -1 --out "$TMP/neg"

# ---- resume after a kill: the log had run past the checkpoint, and a torn line ----
"$BIN" train "${C[@]}" --iters 60 --stop-at 35 --out "$TMP/k" >/dev/null 2>&1 # checkpoint at 35, mid-window
cp "$TMP/k/checkpoint.safetensors" "$TMP/k35.ckpt"
"$BIN" train --resume "$TMP/k" --iters 60 --stop-at 50 --quiet >/dev/null 2>&1
cp "$TMP/k35.ckpt" "$TMP/k/checkpoint.safetensors"   # the kill: log at 50, checkpoint at 35
printf '{"iter":60,"loss":0.1' >>"$TMP/k/log.jsonl"    # and a torn last line
: >"$TMP/k/checkpoint.safetensors.tmp.999999999"       # a dead writer's temporary
: >"$TMP/k/checkpoint.safetensors.tmp.$$"              # a live process's: kept
expect "resume after a kill" 0 "" -- "$BIN" train --resume "$TMP/k" --iters 60 --quiet
[ "$(iters "$TMP/k")" = "10 20 30 40 50 60 " ] && increasing "$TMP/k" \
  && ok "the log is strictly increasing, without the torn line" || bad "log after resume: $(iters "$TMP/k")"
[ "$(losses "$TMP/k")" = "$(losses "$TMP/ref")" ] \
  && ok "the log's losses equal the uninterrupted run's (the window was carried)" || bad "losses differ: $(losses "$TMP/k" | tr '\n' ' ')"
! grep -q '"window"' "$TMP/k/log.jsonl" && ok "no partial window after the resume" || bad "a partial window: $(grep window "$TMP/k/log.jsonl")"
cmp -s "$TMP/ref/checkpoint.safetensors" "$TMP/k/checkpoint.safetensors" && ok "resumed checkpoint bit-exact" || bad "resumed checkpoint differs"
[ ! -e "$TMP/k/checkpoint.safetensors.tmp.999999999" ] && [ -e "$TMP/k/checkpoint.safetensors.tmp.$$" ] \
  && ok "a dead writer's temporary removed, a live one's kept" || bad "temporaries: $(ls "$TMP/k")"
expect "plot reads the repaired log" 0 "" -- "$BIN" plot "$TMP/k" --out "$TMP/k"

cp -r "$TMP/k" "$TMP/torn" && printf '{"iter":70,"lo' >>"$TMP/torn/log.jsonl"
expect "plot skips a torn last line (a run that was never resumed)" 0 "" -- "$BIN" plot "$TMP/torn" --out "$TMP/torn"
echo '{"iter":80,"loss":"x"}' >>"$TMP/torn/log.jsonl"
expect "... but not a malformed complete line" 1 "log.jsonl:7" -- "$BIN" plot "$TMP/torn" --out "$TMP/torn"

# ---- an evaluation-only resume keeps the training time ----
expect "evaluation-only resume" 0 '"train_seconds"' -- "$BIN" train --resume "$TMP/ref" --iters 60 --eval-tasks 5 --json
secs=$(grep -o '"train_seconds":[0-9.]*' "$TMP/out" | cut -d: -f2)
last=$(tail -n 1 "$TMP/ref/log.jsonl" | grep -o '"elapsed_s":[0-9.]*' | cut -d: -f2)
awk -v s="$secs" -v l="$last" 'BEGIN { exit !(s > 0 && s >= l && s < l + 1) }' \
  && ok "train_seconds of an evaluation-only resume is the run's ($secs s)" || bad "train_seconds $secs, log says $last"

# ---- one writer per folder: the same command twice is refused, not doubled ----
# (before: two `train --resume` both ran to the end, every log line twice;
# --overwrite deleted a running run's files under it; two searches ran every trial twice)
# busy FILE cmd...: starts cmd in the background (pid in $busy_pid) and waits
# until FILE exists, i.e. it has taken its folder.
busy() {
  local file="$1"; shift
  "$@" >/dev/null 2>&1 &
  busy_pid=$!
  for _ in $(seq 600); do [ -e "$file" ] && return; sleep 0.05; done
}
# second NAME FOLDER cmd...: while the first holds FOLDER, cmd is refused in one line.
second() {
  local name="$1" folder="$2"; shift 2
  expect "$name while another writes it: refused" 1 "$folder: another process is writing in this folder now" -- "$@"
  [ "$(grep -c . "$TMP/err")" -eq 1 ] && ok "$name: one line" || bad "$name: $(cat "$TMP/err")"
}
"$BIN" train "${C[@]}" --iters 100000 --stop-at 10 --out "$TMP/two" >/dev/null 2>&1
busy "$TMP/two/checkpoint.safetensors" "$BIN" train --resume "$TMP/two" --iters 100000 --quiet
for _ in $(seq 600); do [ "$(wc -l <"$TMP/two/log.jsonl")" -gt 1 ] && break; sleep 0.05; done
second "train --resume" "$TMP/two" "$BIN" train --resume "$TMP/two" --iters 100000 --quiet
second "train --overwrite" "$TMP/two" "$BIN" train "${C[@]}" --iters 10 --out "$TMP/two" --overwrite
[ -f "$TMP/two/checkpoint.safetensors" ] && ok "the running run's files are still there" || bad "the running run's checkpoint is gone"
kill -9 $busy_pid; wait $busy_pid 2>/dev/null
expect "after a kill -9 of the writer, --resume takes the folder" 0 "" -- "$BIN" train --resume "$TMP/two" --iters 40 --quiet
increasing "$TMP/two" && ok "its log: strictly increasing" || bad "log: $(iters "$TMP/two")"
# a meta-RL run
R=(--env nav2d --algo maml --rollouts 4 --horizon 10 --meta-batch 2 --outer adam --eval-tasks 2 --threads 1 --quiet)
busy "$TMP/rl/log.jsonl" "$BIN" train "${R[@]}" --iters 100000 --checkpoint-every 1 --out "$TMP/rl"
second "RL train --overwrite" "$TMP/rl" "$BIN" train "${R[@]}" --iters 2 --out "$TMP/rl" --overwrite
kill -9 $busy_pid; wait $busy_pid 2>/dev/null
# supervised training (a toy IDX set)
python3 "$(dirname "$0")/lib/toyidx.py" "$TMP/idx"
U=(--algo supervised --dataset "idx:$TMP/idx" --model mlp:8 --batch-size 16 --threads 1 --quiet)
busy "$TMP/sup/log.jsonl" "$BIN" train "${U[@]}" --epochs 100000 --out "$TMP/sup"
second "supervised --resume" "$TMP/sup" "$BIN" train --resume "$TMP/sup" --epochs 100000
kill -9 $busy_pid; wait $busy_pid 2>/dev/null
expect "supervised: --resume after the kill" 0 "" -- "$BIN" train --resume "$TMP/sup" --epochs 2
# a search
cat > "$TMP/space.json" <<'JSON'
{"base": {"algo": "maml", "task": "sinusoid", "model": "mlp:8,8", "meta-batch": 3, "shots": 4, "query": 4,
          "eval-steps": "1", "eval-query": 10},
 "space": {"inner-lr": {"log_uniform": [0.001, 0.5]}}}
JSON
S=(--space "$TMP/space.json" --budget 2 --min-iters 100000 --max-iters 100000 --jobs 1 --threads 1 --val-tasks 10 --quiet)
setsid "$BIN" search "${S[@]}" --out "$TMP/s" >/dev/null 2>&1 &
spid=$!
for _ in $(seq 600); do [ -e "$TMP/s/search.json" ] && break; sleep 0.05; done
second "search" "$TMP/s" "$BIN" search "${S[@]}" --out "$TMP/s"
kill -9 -- -$spid; wait $spid 2>/dev/null

summary
