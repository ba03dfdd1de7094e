#!/usr/bin/env bash
# CLI tests of meta-learning on regression tasks: run folders, bit-exact
# --resume, thread-count independence, config files, eval, interruption,
# and bad input (malformed CSV, mismatched checkpoints, NaN, unknown keys).
set -u
BIN="$1"
NAME=meta
source "$(dirname "$0")/lib/common.sh"
COMMON=(--task sinusoid --model mlp:16,16 --meta-batch 5 --shots 5 --query 5 --eval-tasks 20 --eval-query 20 --quiet)

for algo in maml fomaml metasgd reptile multitask; do
  expect "$algo trains and writes a run folder" 0 "" -- "$BIN" train --algo $algo "${COMMON[@]}" --iters 30 --out "$TMP/$algo"
  for f in config.json log.jsonl checkpoint.safetensors eval.json; do
    [ -s "$TMP/$algo/$f" ] || bad "$algo: $f missing"
  done
done

# Uninterrupted 60 iterations vs. 30 + resume to 60: identical bytes.
"$BIN" train --algo maml "${COMMON[@]}" --iters 60 --checkpoint-every 20 --out "$TMP/full" >/dev/null 2>&1
"$BIN" train --algo maml "${COMMON[@]}" --iters 30 --checkpoint-every 20 --out "$TMP/part" >/dev/null 2>&1
expect "resume runs" 0 "" -- "$BIN" train --resume "$TMP/part" --iters 60 --quiet
cmp -s "$TMP/full/checkpoint.safetensors" "$TMP/part/checkpoint.safetensors" \
  && ok "resumed run is bit-identical to the uninterrupted one" || bad "resumed checkpoint differs"
cmp -s "$TMP/full/eval.json" "$TMP/part/eval.json" && ok "resumed evaluation identical" || bad "eval.json differs after resume"

# Same result whatever the thread count (Meta-SGD, Adam outside).
for t in 1 3; do
  "$BIN" train --algo metasgd "${COMMON[@]}" --iters 25 --threads $t --out "$TMP/thr$t" >/dev/null 2>&1
done
cmp -s "$TMP/thr1/checkpoint.safetensors" "$TMP/thr3/checkpoint.safetensors" \
  && ok "1 and 3 threads give identical checkpoints" || bad "thread count changes the result"
# MAML on an MLP takes the fused route (src/meta/maml_mlp.c): the same.
for t in 1 2 3; do
  "$BIN" train --algo maml "${COMMON[@]}" --iters 25 --threads $t --out "$TMP/mthr$t" >/dev/null 2>&1
done
cmp -s "$TMP/mthr1/checkpoint.safetensors" "$TMP/mthr2/checkpoint.safetensors" \
  && cmp -s "$TMP/mthr1/checkpoint.safetensors" "$TMP/mthr3/checkpoint.safetensors" \
  && ok "maml (fused route): 1, 2 and 3 threads give identical checkpoints" || bad "maml: thread count changes the result"

# The effective config reproduces the run.
expect "train --config RUN/config.json" 0 "" -- "$BIN" train --config "$TMP/full/config.json" --out "$TMP/again" --quiet
cmp -s "$TMP/full/checkpoint.safetensors" "$TMP/again/checkpoint.safetensors" \
  && ok "config file reproduces the run" || bad "config file run differs"

# eval on a run folder and on a checkpoint file.
expect "eval RUN" 0 "" -- "$BIN" eval "$TMP/full" --shots 5,10 --steps 1,3 --tasks 30 --json
tail -n 1 "$TMP/out" | grep -q '"shots":10,"steps":3' && ok "eval --json reports every shots/steps" || bad "eval json: $(tail -n 1 "$TMP/out")"
grep -q "before adaptation" "$TMP/out" && ok "eval prints before/after adaptation" || bad "eval table"
expect "eval CHECKPOINT" 0 "" -- "$BIN" eval "$TMP/full/checkpoint.safetensors" --tasks 10

# --schedule cosine over the outer iterations, and --stop-at: stopping at 130 of 300 and resuming
# gives the uninterrupted run's bytes (the schedule is a function of the iteration and --iters).
SCH=(--algo maml "${COMMON[@]}" --iters 300 --schedule cosine --log-every 100 --checkpoint-every 70)
"$BIN" train "${SCH[@]}" --out "$TMP/cos_full" >/dev/null 2>&1
expect "--stop-at stops with a checkpoint" 0 "stopped at iteration 130 of 300" -- "$BIN" train "${SCH[@]}" --stop-at 130 --out "$TMP/cos_part"
[ -e "$TMP/cos_part/eval.json" ] && bad "--stop-at: the final evaluation ran"
expect "resume after --stop-at" 0 "" -- "$BIN" train --resume "$TMP/cos_part" --quiet
cmp -s "$TMP/cos_full/checkpoint.safetensors" "$TMP/cos_part/checkpoint.safetensors" \
  && ok "cosine schedule: stop + resume is bit-identical" || bad "cosine schedule: resumed checkpoint differs"
lrs=$(grep -o '"outer_lr":[^}]*' "$TMP/cos_full/log.jsonl" | cut -d: -f2 | tr '\n' ' ')
python3 -c "import sys; v=[float(x) for x in sys.argv[1:]]; sys.exit(0 if len(v)==3 and 5e-4<v[0]<1e-3 and v[1]<v[0] and v[2]<1e-6 else 1)" $lrs \
  && ok "cosine schedule: the logged outer rate falls to ~0 ($lrs)" || bad "cosine schedule: outer_lr $lrs"
expect "--schedule unknown" 2 "expected constant, step or cosine" -- "$BIN" train --algo maml "${COMMON[@]}" --schedule linear --iters 5 --out "$TMP/badsched"

# bench: speed of one configuration, nothing written.
expect "bench --json" 0 '"tasks_per_s":' -- "$BIN" bench --algo maml --task sinusoid --model mlp:16,16 --meta-batch 5 --iters 3 --json
python3 -c "import json,sys; j=json.loads(open(sys.argv[1]).read().splitlines()[-1]); sys.exit(0 if j['tasks_per_s'] > 0 and j['tasks_per_iter'] == 5 and j['iters'] == 3 else 1)" "$TMP/out" \
  && ok "bench: tasks per second from 3 timed iterations" || bad "bench JSON: $(tail -c 300 "$TMP/out")"
expect "bench refuses supervised" 2 "meta-training" -- "$BIN" bench --algo supervised
expect "bench refuses --out" 2 "unknown option" -- "$BIN" bench --algo maml --task sinusoid --out "$TMP/x"

# Interrupted run: SIGINT saves a checkpoint and says how to resume. The signal
# goes after the first log line (iteration 100), written once training runs and
# so after the handler is set (config.json comes before it: a signal then kills).
"$BIN" train --algo maml "${COMMON[@]}" --iters 100000000 --out "$TMP/intr" >"$TMP/out" 2>"$TMP/err" &
pid=$!
for i in $(seq 600); do [ -s "$TMP/intr/log.jsonl" ] && break; sleep 0.1; done
kill -INT $pid; wait $pid; st=$?
[ $st -eq 130 ] && grep -q "resume" "$TMP/err" && [ -s "$TMP/intr/checkpoint.safetensors" ] \
  && ok "SIGINT saves a checkpoint (exit 130)" || bad "SIGINT: exit $st $(cat "$TMP/err")"

# plot: learning curves and the adaptation figure of two runs.
expect "plot two runs" 0 "" -- "$BIN" plot "$TMP/maml" "$TMP/multitask" --out "$TMP"
for f in learning_curve.png adaptation_K5.png; do
  head -c 8 "$TMP/$f" 2>/dev/null | od -An -tx1 | grep -q "89 50 4e 47" && ok "plot wrote $f" || bad "plot: $f missing or not PNG"
done
expect "plot of a folder without runs" 1 "no log.jsonl" -- "$BIN" plot "$TMP/nowhere"
# A log.jsonl or eval.json that is there but cannot be read is an error naming it, not a chart left out.
for f in log.jsonl eval.json; do
  cp -r "$TMP/maml" "$TMP/unreadable_$f" && rm "$TMP/unreadable_$f/$f" && mkdir "$TMP/unreadable_$f/$f"
  expect "plot of a run whose $f is a folder" 1 "unreadable_$f/$f: read failed" -- "$BIN" plot "$TMP/unreadable_$f" --out "$TMP/p_$f"
done

# ---- bad input ----
printf 'task,split,x,y\na,support,1,2\na,query,1\n' > "$TMP/bad_cols.csv"
expect "CSV with a wrong column count" 1 "bad_cols.csv:3" -- "$BIN" train --algo maml --task "csv:$TMP/bad_cols.csv" --quiet --out "$TMP/c1"
printf 'a,support,1,2\na,query,x,3\n' > "$TMP/bad_num.csv"
expect "CSV with a non-number" 1 "bad_num.csv:2" -- "$BIN" train --algo maml --task "csv:$TMP/bad_num.csv" --quiet --out "$TMP/c2"
printf 'a,support,1,2\na,query,1,3\nb,support,2,2\n' > "$TMP/no_query.csv"
expect "CSV task without query points" 1 "no query" -- "$BIN" train --algo maml --task "csv:$TMP/no_query.csv" --quiet --out "$TMP/c3"
python3 - "$TMP/good.csv" "$TMP/held.csv" "$TMP/two_in.csv" <<'PY'
import math, random, sys
random.seed(1)
for path, n_tasks, prefix in ((sys.argv[1], 20, "t"), (sys.argv[2], 7, "h")):
    with open(path, "w") as f:
        f.write("task,split,x,y\n")
        for t in range(n_tasks):
            a, p = random.uniform(0.5, 4), random.uniform(0, 3)
            for split, n in (("support", 10), ("query", 10)):
                for _ in range(n):
                    x = random.uniform(-5, 5); f.write(f"{prefix}{t},{split},{x},{a*math.sin(x-p)}\n")
with open(sys.argv[3], "w") as f:
    f.write("a,support,1,2,3\na,query,1,2,3\n")
PY
expect "CSV tasks train" 0 '"distinct_tasks":true' -- "$BIN" train --algo maml --task "csv:$TMP/good.csv" --model mlp:16,16 --meta-batch 4 --shots 5 --query 5 --iters 20 --eval-tasks 10 --eval-query 5 --quiet --out "$TMP/csv" --json
# A CSV family is split by task (seeded, as image classes are): 20 tasks -> 12 train, 2 val, 6 test.
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); n=[len(s[p]) for p in ('train','val','test')]; sys.exit(0 if s['format']=='metalearn-task-split' and n==[12,2,6] and len(set(s['train']+s['val']+s['test']))==20 else 1)" "$TMP/csv/split.json" \
  && ok "CSV run: split.json deals 12/2/6 distinct tasks" || bad "CSV split.json: $(head -c 300 "$TMP/csv/split.json")"
grep -q "6 distinct test tasks" "$TMP/out" && ! grep -q "600\|10 new" "$TMP/out" && tail -n 1 "$TMP/out" | grep -q '"eval_tasks":6,' \
  && ok "CSV evaluation: each of the 6 test tasks once, and says so" || bad "CSV evaluation text: $(head -c 400 "$TMP/out")"
expect "CSV eval --split val: the validation tasks" 0 "2 distinct validation tasks" -- "$BIN" eval "$TMP/csv" --split val
expect "CSV eval --task: a held-out file" 0 "7 distinct held-out tasks" -- "$BIN" eval "$TMP/csv" --task "csv:$TMP/held.csv" --json
tail -n 1 "$TMP/out" | grep -q '"tasks_from":"file"' && ok "eval --task: JSON names the source of the tasks" || bad "eval --task JSON: $(tail -c 300 "$TMP/out")"
expect "CSV eval --task with other inputs" 2 "2 inputs" -- "$BIN" eval "$TMP/csv" --task "csv:$TMP/two_in.csv"
printf 'a,support,1,2\na,query,1,3\nb,support,2,2\nb,query,2,2\nc,support,1,1\nc,query,1,1\n' > "$TMP/three.csv"
expect "CSV too small for the split" 2 "gives no task" -- "$BIN" train --algo maml --task "csv:$TMP/three.csv" --shots 1 --query 1 --quiet --out "$TMP/c6"
expect "CSV with --split 1,0,0 trains on every task" 0 "" -- "$BIN" train --algo maml --task "csv:$TMP/three.csv" --split 1,0,0 --shots 1 --query 1 --meta-batch 2 --iters 3 --eval-tasks 0 --quiet --out "$TMP/c7"
expect "... and is evaluated on a held-out file" 0 "3 distinct held-out" -- "$BIN" eval "$TMP/c7" --task "csv:$TMP/three.csv" --shots 1 --query 0
expect "... but has no test tasks of its own" 1 "no test tasks" -- "$BIN" eval "$TMP/c7" --shots 1 --query 0
# --val-every: the validation MSE in log.jsonl and in plot, training unchanged (its own generator).
VAL=(--algo maml --task "csv:$TMP/good.csv" --model mlp:16,16 --meta-batch 4 --shots 5 --query 5 --iters 40 --log-every 10 --eval-tasks 0 --quiet)
"$BIN" train "${VAL[@]}" --out "$TMP/noval" >/dev/null 2>&1
expect "--val-every trains" 0 "" -- "$BIN" train "${VAL[@]}" --val-every 20 --out "$TMP/val"
cmp -s "$TMP/noval/checkpoint.safetensors" "$TMP/val/checkpoint.safetensors" \
  && ok "--val-every leaves training bit-identical" || bad "--val-every changes the checkpoint"
[ "$(grep -c '"val_mse":' "$TMP/val/log.jsonl")" -eq 2 ] && [ "$(grep -c '"val_mse":' "$TMP/noval/log.jsonl")" -eq 0 ] \
  && ok "val_mse on the log lines of iterations 20 and 40" || bad "val_mse lines: $(cat "$TMP/val/log.jsonl")"
v=$(grep -o '"val_mse":[0-9.e+-]*' "$TMP/val/log.jsonl" | tail -n 1 | cut -d: -f2)
"$BIN" eval "$TMP/val" --split val --shots 5 --steps 10 --query 0 --json >"$TMP/valeval" 2>/dev/null
python3 -c "import json,sys; j=json.loads(open(sys.argv[1]).read().splitlines()[-1]); r=[x for x in j['results'] if x['steps']==10][0]; sys.exit(0 if abs(r['mse']-float(sys.argv[2]))<=1e-5*abs(r['mse']) else 1)" "$TMP/valeval" "$v" \
  && ok "the last val_mse is what eval --split val reports" || bad "val_mse $v vs eval --split val: $(tail -c 300 "$TMP/valeval")"
mkdir -p "$TMP/valplot"
expect "plot of a --val-every run" 0 "learning_curve" -- "$BIN" plot "$TMP/val" --out "$TMP/valplot"
expect "--val-every not a multiple of --log-every" 2 "multiple of --log-every" -- "$BIN" train "${VAL[@]}" --val-every 15 --out "$TMP/c8"
expect "--val-every with no validation tasks" 2 "no validation tasks" -- "$BIN" train "${VAL[@]}" --val-every 20 --split 0.7,0,0.3 --out "$TMP/c9"
rm "$TMP/c7/split.json"
expect "CSV run without split.json (older runs)" 1 "no split.json" -- "$BIN" eval "$TMP/c7" --shots 1 --query 0
expect "checkpoint of another model" 1 "shape" -- "$BIN" train --algo maml "${COMMON[@]}" --model mlp:8 --init "$TMP/full/checkpoint.safetensors" --iters 1 --out "$TMP/c4"
printf 'not a checkpoint at all' > "$TMP/junk.safetensors"
expect "corrupt checkpoint" 1 "junk.safetensors" -- "$BIN" train --algo maml "${COMMON[@]}" --init "$TMP/junk.safetensors" --iters 1 --out "$TMP/c5"
"$BIN" train --algo maml "${COMMON[@]}" --iters 20 --checkpoint-every 10 --out "$TMP/nan" >/dev/null 2>&1
cp "$TMP/nan/checkpoint.safetensors" "$TMP/nan_before"
expect "NaN loss stops with a message" 1 "NaN\|non-finite\|infinite" -- "$BIN" train --resume "$TMP/nan" --iters 200 --inner-lr 1000 --inner-steps 3
cmp -s "$TMP/nan/checkpoint.safetensors" "$TMP/nan_before" && ok "last good checkpoint kept after NaN" || bad "checkpoint changed after NaN"
printf '{"algo": "maml", "lr_inner": 0.1}' > "$TMP/bad.json"
expect "unknown config key" 2 "unknown key 'lr_inner'" -- "$BIN" train --config "$TMP/bad.json"
expect "unknown algo" 2 "--algo" -- "$BIN" train --algo mamla
expect "bad eval shots" 2 "eval-shots" -- "$BIN" train --algo maml --eval-shots 5,x --quiet
expect "eval of a missing run" 1 "config.json" -- "$BIN" eval "$TMP/nowhere"
expect "eval --help" 0 "" -- "$BIN" eval --help

# A run from before --momentum reached meta-learning: config.json says 0.9,
# the checkpoint has no momentum buffer. It resumes as it trained (momentum 0),
# bit-identical to an uninterrupted momentum-0 run, and config.json says 0.
"$BIN" train --algo reptile "${COMMON[@]}" --optimizer sgd --outer-lr 0.5 --iters 40 --checkpoint-every 20 --out "$TMP/rep_full" >/dev/null 2>&1
"$BIN" train --algo reptile "${COMMON[@]}" --optimizer sgd --outer-lr 0.5 --iters 20 --checkpoint-every 20 --out "$TMP/rep_old" >/dev/null 2>&1
sed -i 's/"momentum":[[:space:]]*0,/"momentum":\t0.9,/' "$TMP/rep_old/config.json"
grep -q '"momentum":.0.9' "$TMP/rep_old/config.json" || bad "test setup: could not write the old momentum"
expect "a pre-momentum run resumes" 0 "without momentum" -- "$BIN" train --resume "$TMP/rep_old" --iters 40
cmp -s "$TMP/rep_full/checkpoint.safetensors" "$TMP/rep_old/checkpoint.safetensors" \
  && ok "pre-momentum run resumed bit-identical to a momentum-0 run" || bad "pre-momentum resume differs"
grep -q '"momentum":.0,' "$TMP/rep_old/config.json" && ok "its config.json now records momentum 0" || bad "config.json still says $(grep momentum "$TMP/rep_old/config.json")"

summary
