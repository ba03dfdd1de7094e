#!/usr/bin/env bash
# CLI tests of `metalearn search` and `eval --split`: a tiny sinusoid search
# (trials, log, best.json that train accepts, plot), diverging trials marked
# failed, interruption + rerun giving the uninterrupted result, bad input.
set -u
BIN="$1"
NAME=search
source "$(dirname "$0")/lib/common.sh"

cat > "$TMP/space.json" <<'EOF'
{"base": {"algo": "maml", "task": "sinusoid", "model": "mlp:16,16", "meta-batch": 5, "shots": 5, "query": 5,
          "eval-steps": "1", "eval-query": 20},
 "space": {"inner-lr": {"log_uniform": [0.001, 1]}, "inner-steps": {"int": [1, 3]},
           "outer-lr": {"log_uniform": [0.0001, 0.01]}, "algo": {"choice": ["maml", "fomaml", "metasgd"]}}}
EOF
ARGS=(--space "$TMP/space.json" --budget 6 --min-iters 30 --max-iters 90 --jobs 2 --threads 1 --val-tasks 30)

# ---- eval --split ----
"$BIN" train --algo maml --task sinusoid --model mlp:16,16 --meta-batch 5 --shots 5 --iters 20 --eval-tasks 0 \
  --quiet --out "$TMP/run" >/dev/null 2>&1
sed -i 's/"iters":.*/"iters": 30,/' "$TMP/run/config.json"
expect "eval --split val" 0 '"split":"val"' -- "$BIN" eval "$TMP/run" --split val --tasks 20 --json
val=$(tail -n 1 "$TMP/out" | sed 's/.*"results"//')
expect "eval --split test (default)" 0 '"split":"test"' -- "$BIN" eval "$TMP/run" --tasks 20 --json
[ "$val" != "$(tail -n 1 "$TMP/out" | sed 's/.*"results"//')" ] \
  && ok "validation tasks differ from the test tasks" || bad "val and test tasks gave identical results"
expect "eval --split bogus" 2 "expected test or val" -- "$BIN" eval "$TMP/run" --split train

# ---- a search ----
expect "random search runs" 0 '"command":"search"' -- "$BIN" search "${ARGS[@]}" --out "$TMP/s1" --json
grep -q "^search rung 0: 6/6 (100%)" "$TMP/err" && grep -q "^search rung 1: 2/2 (100%)" "$TMP/err" \
  && ok "progress of each rung on stderr" || bad "rung progress: $(grep rung "$TMP/err" | head -3)"
[ "$(wc -l < "$TMP/s1/trials.jsonl")" -eq 8 ] && ok "trials.jsonl: 6 first-rung + 2 promoted lines" \
  || bad "trials.jsonl has $(wc -l < "$TMP/s1/trials.jsonl") lines"
grep -q '"rung":1,"iters":90' "$TMP/s1/trials.jsonl" && grep -q '"settings":{"inner-lr":' "$TMP/s1/trials.jsonl" \
  && grep -q '"status":"ok","score":' "$TMP/s1/trials.jsonl" && ok "log lines carry rung, iters, settings, score" \
  || bad "log line format: $(head -n 1 "$TMP/s1/trials.jsonl")"
grep -q "rank  trial" "$TMP/out" && ok "prints a table of the top trials" || bad "no table"
head -c 8 "$TMP/s1/search.png" 2>/dev/null | od -An -tx1 | grep -q "89 50 4e 47" && ok "search.png written" || bad "no search.png"
grep -q '"iters":	90' "$TMP/s1/best.json" && ! grep -q '"out"\|"resume"' "$TMP/s1/best.json" \
  && ok "best.json: iters = max-iters, no out/resume" || bad "best.json: $(cat "$TMP/s1/best.json")"
expect "train --config best.json accepts it unchanged" 0 "" -- "$BIN" train --config "$TMP/s1/best.json" \
  --out "$TMP/best_run" --eval-tasks 10 --quiet
[ -s "$TMP/best_run/checkpoint.safetensors" ] && ok "best config trained" || bad "best config did not train"

expect "evolution search runs" 0 "evolution search" -- "$BIN" search "${ARGS[@]}" --budget 8 --population 4 \
  --strategy evolution --out "$TMP/e1"
[ "$(grep -c '"rung":0' "$TMP/e1/trials.jsonl")" -eq 8 ] && ok "evolution: 8 candidates scored" || bad "evolution log"

# A run's config.json as the base: its iters is the default --max-iters, its out/resume are dropped.
expect "a run's config.json as --config" 0 '"rungs":\[10,30\]' -- "$BIN" search --config "$TMP/run/config.json" \
  --space "$TMP/space.json" --budget 3 --min-iters 10 --val-tasks 10 --jobs 2 --threads 1 --out "$TMP/cfg" --json --quiet
grep -q '"iters":	30' "$TMP/cfg/best.json" && ! grep -q '"out"' "$TMP/cfg/best.json" \
  && ok "best.json from a run config: iters from the base, no out" || bad "best.json: $(cat "$TMP/cfg/best.json")"

# A rerun of a finished search runs nothing and gives the same answer.
expect "rerun of a finished search" 0 '"trials_run_now":0' -- "$BIN" search "${ARGS[@]}" --out "$TMP/s1" --json
best=$(tail -n 1 "$TMP/out" | sed 's/.*"best_trial":\([0-9]*\).*/\1/')
expect "other arguments in the same folder" 2 "another search" -- "$BIN" search "${ARGS[@]}" --seed 9 --out "$TMP/s1"
# A trials.jsonl that cannot be read is an error before any trial, not a new
# search that would run the finished trials again over their folders.
cp -r "$TMP/s1" "$TMP/s_badlog" && rm "$TMP/s_badlog/trials.jsonl" && mkdir "$TMP/s_badlog/trials.jsonl"
expect "unreadable trials.jsonl" 1 "s_badlog/trials.jsonl: read failed" -- "$BIN" search "${ARGS[@]}" --out "$TMP/s_badlog"
# A torn last line (power cut mid-append): that step runs again once, and its
# new line does not land on the torn one (which made it run at every resume).
cp -r "$TMP/s1" "$TMP/s_torn" && head -c -20 "$TMP/s1/trials.jsonl" > "$TMP/s_torn/trials.jsonl"
expect "resume after a torn trials.jsonl" 0 '"trials_run_now":1' -- "$BIN" search "${ARGS[@]}" --out "$TMP/s_torn" --json
expect "and the next resume runs nothing" 0 '"trials_run_now":0' -- "$BIN" search "${ARGS[@]}" --out "$TMP/s_torn" --json

# ---- a trial that diverges at a later rung never wins on its earlier score ----
# The log of s1 with both promoted trials' second rung turned into failures
# (as a divergence after the first rung writes them): the replay must pick a
# trial that never failed, not the winner of the first rung, and show the
# whole reason.
cp -r "$TMP/s1" "$TMP/s3"
rm "$TMP/s3/best.json"
long="train exit 1: meta: query loss became NaN at outer step 31; $(printf 'the rest of a long reason %.0s' $(seq 12))END"
sed -i "/\"rung\":1,/s/\"status\":\"ok\",\"score\":[^,]*,\"metric\":\"mse\"/\"status\":\"failed\",\"score\":null,\"message\":\"$long\"/" \
  "$TMP/s3/trials.jsonl"
[ "$(grep -c '"rung":1,.*"status":"failed"' "$TMP/s3/trials.jsonl")" -eq 2 ] && ok "log edited: both promoted trials failed at rung 1" \
  || bad "could not edit the log: $(cat "$TMP/s3/trials.jsonl")"
expect "replay with the promoted trials failed at rung 1" 0 '"trials_run_now":0' -- "$BIN" search "${ARGS[@]}" --out "$TMP/s3" --json
new_best=$(tail -n 1 "$TMP/out" | sed 's/.*"best_trial":\([0-9]*\).*/\1/')
[ -n "$new_best" ] && [ "$new_best" != "$best" ] && ! grep -q "\"trial\":$new_best,\"rung\":1," "$TMP/s3/trials.jsonl" \
  && ok "a trial that failed at rung 1 does not win (was $best, now $new_best)" || bad "best is trial $new_best (was $best)"
grep -q "$long" "$TMP/out" && ok "the failure's whole reason is printed" || bad "reason cut: $(grep -i failed "$TMP/out")"
grep -q '"rung":1' "$TMP/s3/best.json" && bad "best.json has a rung" || ok "best.json written for the new winner"

# ---- every trial failed: said so, no best.json, non-zero exit ----
cat > "$TMP/allfail.json" <<'EOF2'
{"base": {"algo": "maml", "task": "sinusoid", "model": "mlp:16,16", "meta-batch": 5, "inner-steps": 3, "eval-steps": "1"},
 "space": {"inner-lr": {"log_uniform": [500, 1000]}}}
EOF2
expect "a search where every trial fails" 1 "every trial failed" -- "$BIN" search --space "$TMP/allfail.json" \
  --budget 2 --min-iters 10 --max-iters 30 --jobs 2 --threads 1 --val-tasks 10 --out "$TMP/allfail"
[ ! -e "$TMP/allfail/best.json" ] && ok "no best.json when every trial failed" || bad "best.json written"

# ---- diverging trials are marked failed; the search finishes ----
cat > "$TMP/diverge.json" <<'EOF'
{"base": {"algo": "maml", "task": "sinusoid", "model": "mlp:16,16", "meta-batch": 5, "inner-steps": 3, "eval-steps": "1"},
 "space": {"inner-lr": {"log_uniform": [0.001, 1000]}}}
EOF
expect "search with diverging trials finishes" 0 "best: trial" -- "$BIN" search --space "$TMP/diverge.json" \
  --budget 6 --min-iters 30 --max-iters 90 --jobs 2 --threads 1 --val-tasks 30 --out "$TMP/div"
grep -q '"status":"failed","score":null,"message":"train exit 1: .*NaN\|infinite' "$TMP/div/trials.jsonl" \
  && ok "diverged trials logged as failed with the message" || bad "no failed trial: $(cat "$TMP/div/trials.jsonl")"
grep -q '"status":"ok"' "$TMP/div/trials.jsonl" && ok "the other trials were scored" || bad "no ok trial"

# ---- interrupt, rerun: finished trials kept, the result of an uninterrupted search ----
"$BIN" search "${ARGS[@]}" --out "$TMP/s2" >/dev/null 2>"$TMP/s2.err" &
pid=$!
for i in $(seq 300); do [ "$(cat "$TMP/s2/trials.jsonl" 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.02; done
kill -INT $pid; wait $pid; st=$?
[ $st -eq 130 ] && grep -q "rerun the same command" "$TMP/s2.err" && ok "SIGINT stops the search (exit 130)" \
  || bad "SIGINT: exit $st $(cat "$TMP/s2.err")"
before=$(wc -l < "$TMP/s2/trials.jsonl")
cp "$TMP/s2/trials.jsonl" "$TMP/s2_before.jsonl"
expect "rerun after the interruption" 0 "" -- "$BIN" search "${ARGS[@]}" --out "$TMP/s2" --json
ran=$(tail -n 1 "$TMP/out" | sed 's/.*"trials_run_now":\([0-9]*\).*/\1/')
[ "$before" -ge 1 ] && [ "$ran" -eq $((8 - before)) ] && ok "finished trials not re-run ($before logged, $ran run)" \
  || bad "rerun ran $ran with $before logged"
head -n "$before" "$TMP/s2/trials.jsonl" | cmp -s - "$TMP/s2_before.jsonl" && ok "the log keeps the finished trials" \
  || bad "log rewritten"
cmp -s "$TMP/s1/best.json" "$TMP/s2/best.json" && ok "best.json identical to the uninterrupted search" \
  || bad "best.json differs after interruption"
strip() { sed 's/"seconds":[0-9.e+-]*//' "$1" | sort; }
[ "$(strip "$TMP/s1/trials.jsonl")" = "$(strip "$TMP/s2/trials.jsonl")" ] && ok "same scores as the uninterrupted search" \
  || bad "scores differ after interruption"

# ---- bad input ----
bad_space() { echo "$2" > "$TMP/bad.json"; expect "$1" 2 "$3" -- "$BIN" search --space "$TMP/bad.json" --budget 3 --out "$TMP/bad"; }
bad_space "unknown key" '{"base":{"algo":"maml"},"space":{"inner_lr":{"uniform":[0,1]}}}' "bad.json: unknown key 'inner_lr'"
bad_space "empty range" '{"base":{"algo":"maml"},"space":{"inner-lr":{"uniform":[1,0]}}}' "'inner-lr': uniform range \[1, 0\] is empty"
bad_space "log range with 0" '{"base":{"algo":"maml"},"space":{"inner-lr":{"log_uniform":[0,1]}}}' "'inner-lr': log_uniform needs 0 < lo"
bad_space "empty choice" '{"base":{"algo":"maml"},"space":{"algo":{"choice":[]}}}' "'algo': choice takes a non-empty list"
bad_space "uniform on an integer option" '{"base":{"algo":"maml"},"space":{"inner-steps":{"uniform":[1,3]}}}' "'inner-steps': an integer option"
# A space file that never ends (a device, a FIFO) is refused at a bound, not read into all the memory.
expect "--space /dev/zero is refused at a bound" 1 "/dev/zero: larger than 16777216 bytes" -- \
  timeout -s KILL 60 "$BIN" search --space /dev/zero --budget 2 --out "$TMP/zero"
bad_space "int range beyond 1e9 says so, exactly" '{"base":{"algo":"maml"},"space":{"inner-steps":{"int":[0,2147483647]}}}' "from -1e9 to 1e9, got \[0, 2147483647\]"
bad_space "range outside train's bounds" '{"base":{"algo":"maml"},"space":{"inner-lr":{"uniform":[0,5000]}}}' "'inner-lr': 5000 is outside"
bad_space "unknown algorithm" '{"base":{"algo":"maml"},"space":{"algo":{"choice":["maml","mamal"]}}}' "'mamal' is not a meta-learner"
bad_space "searching a search setting" '{"base":{"algo":"maml"},"space":{"iters":{"int":[1,9]}}}' "'iters' is set by the search"
bad_space "bad base key" '{"base":{"algo":"maml","lr_inner":1},"space":{"inner-lr":{"uniform":[0,1]}}}' "unknown key 'lr_inner'"
bad_space "no algo" '{"space":{"inner-lr":{"uniform":[0,1]}}}' "no \"algo\""
echo "{\"space\":" > "$TMP/bad.json"; expect "not JSON" 1 "not valid JSON" -- "$BIN" search --space "$TMP/bad.json" --budget 3 --out "$TMP/bad"
expect "budget 0" 2 "budget" -- "$BIN" search --space "$TMP/space.json" --budget 0 --out "$TMP/bad"
expect "min-iters above max-iters" 2 "must not exceed" -- "$BIN" search --space "$TMP/space.json" --budget 2 \
  --min-iters 50 --max-iters 10 --out "$TMP/bad"
expect "missing --space" 2 "required" -- "$BIN" search --budget 3 --out "$TMP/bad"
expect "unknown strategy" 2 "expected random or evolution" -- "$BIN" search --space "$TMP/space.json" --budget 3 \
  --strategy grid --out "$TMP/bad"
expect "missing space file" 1 "cannot read" -- "$BIN" search --space "$TMP/nowhere.json" --budget 3 --out "$TMP/bad"
[ ! -e "$TMP/bad/trials.jsonl" ] && ok "bad input runs no trial" || bad "a trial ran despite bad input"

summary
