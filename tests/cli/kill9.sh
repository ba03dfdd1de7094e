#!/usr/bin/env bash
# kill -9 at random moments (seeded, so reproducible; scaled to the machine's
# speed by timing the uninterrupted run) of a training run and
# of a search, each then resumed, against an uninterrupted twin: the final
# checkpoint bit-exact, the log strictly increasing with no torn line and
# the same losses, no temporaries left; the search's trials.jsonl with each
# (trial, rung) once and the same scores, its best.json identical.
set -u
BIN="$1"
NAME=kill9
source "$(dirname "$0")/lib/common.sh"
RANDOM=20261202 # the kill times
KILLS=${ML_KILL9_KILLS:-6}
# timed VAR cmd...: runs cmd, VAR = its wall time in ms.
timed() { local var=$1 t0; shift; t0=$(date +%s%N); "$@"; printf -v "$var" '%d' $(( ($(date +%s%N) - t0) / 1000000 )); }
# pause MS: sleeps a random time up to a quarter of MS, so every kill lands
# before the run ends, whatever the machine's speed.
pause() { local ms=$(( RANDOM % ($1 / 4 + 1) )); sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"; }
# left ITERS: ITERS minus the last iteration in the run's log (all of them before one).
left() { local it; it=$(tail -n 1 "$TMP/run/log.jsonl" 2>/dev/null | sed -n 's/^{"iter":\([0-9]*\),.*/\1/p'); echo $(( $1 - ${it:-0} )); }
no_temps() { [ -z "$(find "$1" -name '*.tmp*')" ] && ok "$2: no temporaries" || bad "$2: $(find "$1" -name '*.tmp*' | head -3)"; }

# ---- training ----
C=(--algo maml --task sinusoid --model mlp:8,8 --meta-batch 3 --shots 4 --query 4 --eval-tasks 0 --log-every 10
   --checkpoint-every 10 --iters 1500 --quiet --threads 1)
timed T "$BIN" train "${C[@]}" --out "$TMP/ref" >/dev/null 2>&1
# A run faster than the timed one (a load spike while timing) can finish before
# its third kill: then it starts over from nothing with pauses half as long.
for attempt in 1 2 3 4; do
killed=0
rm -rf "$TMP/run"
for k in $(seq "$KILLS"); do
  [ "$(left 1500)" -gt 0 ] || break # finished: nothing left to kill
  if [ -f "$TMP/run/checkpoint.safetensors" ]; then
    "$BIN" train --resume "$TMP/run" --iters 1500 --quiet >>"$TMP/train.err" 2>&1 &
  else # killed before its first checkpoint: start again
    "$BIN" train "${C[@]}" --out "$TMP/run" --overwrite >>"$TMP/train.err" 2>&1 &
  fi
  pid=$!
  # a quarter of the time the rest of the run took the reference: a kill misses
  # only if this run is 4x faster than the timed one (a quarter of the whole
  # time per kill let a run finish by its third kill when 1.6x faster)
  pause $(( T * $(left 1500) / 1500 ))
  kill -9 $pid 2>/dev/null && killed=$((killed + 1))
  wait $pid 2>/dev/null
done
[ "$killed" -ge 3 ] && break
T=$((T / 2))
done
if [ -f "$TMP/run/checkpoint.safetensors" ]; then
  expect "training: resume after $killed kills" 0 "" -- "$BIN" train --resume "$TMP/run" --iters 1500 --quiet
else
  expect "training: a run after $killed kills" 0 "" -- "$BIN" train "${C[@]}" --out "$TMP/run" --overwrite
fi
[ "$killed" -ge 3 ] && ok "training: killed $killed times" || bad "training: only $killed kills landed (the run is too fast?)"
cmp -s "$TMP/ref/checkpoint.safetensors" "$TMP/run/checkpoint.safetensors" \
  && ok "training: final checkpoint bit-exact" || bad "training: final checkpoint differs"
log="$TMP/run/log.jsonl"
[ -z "$(tail -c 1 "$log")" ] && ! grep -qv '^{"iter":[0-9]*,.*}$' "$log" \
  && awk -F'"iter":' '{ split($2, a, ","); if (a[1] + 0 <= last) exit 1; last = a[1] + 0 }' "$log" \
  && ok "training: log strictly increasing, no torn line" || bad "training: log: $(grep -o '"iter":[0-9]*' "$log" | tr '\n' ' ' | head -c 300)"
[ "$(grep -o '"iter":[0-9]*,"loss":[^,]*' "$log")" = "$(grep -o '"iter":[0-9]*,"loss":[^,]*' "$TMP/ref/log.jsonl")" ] \
  && ok "training: the log's losses equal the uninterrupted run's" || bad "training: logged losses differ"
no_temps "$TMP/run" "training"
! grep -qi "sanitizer\|segmentation" "$TMP/train.err" && ok "training: no crash report from the killed runs" \
  || bad "training: $(grep -i -m1 "sanitizer\|segmentation" "$TMP/train.err")"

# ---- search ----
cat > "$TMP/space.json" <<'EOF'
{"base": {"algo": "maml", "task": "sinusoid", "model": "mlp:8,8", "meta-batch": 3, "shots": 4, "query": 4,
          "eval-steps": "1", "eval-query": 10, "log-every": 10, "checkpoint-every": 10},
 "space": {"inner-lr": {"log_uniform": [0.001, 0.5]}, "outer-lr": {"log_uniform": [0.0001, 0.01]}}}
EOF
S=(--space "$TMP/space.json" --budget 4 --min-iters 150 --max-iters 300 --jobs 1 --threads 1 --val-tasks 10 --quiet)
timed T "$BIN" search "${S[@]}" --out "$TMP/sref" >/dev/null 2>&1
TRIALS=$(wc -l <"$TMP/sref/trials.jsonl")
# trials_left: the reference's trial lines minus the ones this search has written.
trials_left() { local n=0; [ -f "$TMP/s/trials.jsonl" ] && n=$(wc -l <"$TMP/s/trials.jsonl"); echo $(( TRIALS - n )); }
for attempt in 1 2 3 4; do # as for training: too few kills landed, start over with shorter pauses
killed=0
rm -rf "$TMP/s"
for k in $(seq "$KILLS"); do
  [ "$(trials_left)" -gt 0 ] || break # finished: nothing left to kill
  # its own process group, so the kill takes the trial it is running too
  setsid "$BIN" search "${S[@]}" --out "$TMP/s" >>"$TMP/search.err" 2>&1 &
  pid=$!
  # scaled to what is left, as for training: with the whole search's time per
  # kill, a resumed search with one trial left ended before the kill under load
  pause $(( T * $(trials_left) / TRIALS ))
  kill -9 -- -$pid 2>/dev/null && killed=$((killed + 1))
  wait $pid 2>/dev/null
  # The group's trials die on their own time (init reaps them): the next search
  # must not find one still running, or it keeps that trial's temporary as a
  # live writer's. Dead (gone or a zombie) within 30 s, however loaded the machine.
  for _ in $(seq 600); do
    ps -e -o pgid=,stat= | awk -v g=$pid '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }' || break
    sleep 0.05
  done
done
[ "$killed" -ge 3 ] && break
T=$((T / 2))
done
expect "search: rerun after $killed kills" 0 "" -- "$BIN" search "${S[@]}" --out "$TMP/s"
[ "$killed" -ge 3 ] && ok "search: killed $killed times" || bad "search: only $killed kills landed"
cmp -s "$TMP/sref/best.json" "$TMP/s/best.json" && ok "search: best.json identical" || bad "search: best.json differs"
strip() { sed 's/,"seconds":[0-9.e+-]*//' "$1" | sort; }
[ "$(strip "$TMP/s/trials.jsonl")" = "$(strip "$TMP/sref/trials.jsonl")" ] \
  && ok "search: trials.jsonl has the same (trial, rung, score) lines" || bad "search: trials.jsonl differs"
[ -z "$(grep -o '"trial":[0-9]*,"rung":[0-9]*' "$TMP/s/trials.jsonl" | sort | uniq -d)" ] \
  && ok "search: each (trial, rung) logged once" || bad "search: a (trial, rung) logged twice"
no_temps "$TMP/s" "search"
for t in "$TMP"/s/trials/*/; do
  log="$t/log.jsonl"
  [ -f "$log" ] || continue
  awk -F'"iter":' '{ split($2, a, ","); if (a[1] + 0 <= last || $0 !~ /}$/) exit 1; last = a[1] + 0 }' "$log" || bad "search: $log not strictly increasing"
done
ok "search: the trials' logs checked"

summary
