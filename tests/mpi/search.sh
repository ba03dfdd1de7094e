#!/usr/bin/env bash
# `metalearn search` under mpirun: the trials spread over the ranks (rank 0
# proposes them and alone writes the folder), and the trial log and
# best.json are those of one process for N = 1, 2, 3 (random and evolution,
# one or two jobs per rank, the Python package); Ctrl-C on the launcher and a killed rank end the
# job with a message, keep every finished trial in the log, and the search
# resumes with another N to the uninterrupted result; bad input fails every
# rank alike. Every mpirun is bounded by a timeout (lib.sh).
NAME=mpi_search
source "$(dirname "$0")/lib.sh"
PKG="$(cd "$(dirname "$0")/../../python" && pwd)"
cd "$TMP" || exit 1

cat > space.json <<'EOF'
{"base": {"algo": "maml", "task": "sinusoid", "model": "mlp:16,16", "meta-batch": 5, "shots": 5, "query": 5,
          "eval-steps": "1", "eval-query": 20},
 "space": {"inner-lr": {"log_uniform": [0.001, 1]}, "inner-steps": {"int": [1, 3]},
           "outer-lr": {"log_uniform": [0.0001, 0.01]}, "algo": {"choice": ["maml", "fomaml", "metasgd"]}}}
EOF
A="--space space.json --budget 6 --min-iters 30 --max-iters 90 --jobs 1 --threads 1 --val-tasks 30"
E="--space space.json --budget 8 --population 4 --strategy evolution --min-iters 20 --max-iters 60 --threads 1 --val-tasks 20"
# The log as a set of lines without the wall-clock field (lines come in the order trials finish, as with --jobs 2).
strip() { sed 's/"seconds":[0-9.e+-]*//' "$1" | sort; }
same_search() { [ "$(strip "$1/trials.jsonl")" = "$(strip "$2/trials.jsonl")" ] && cmp -s "$1/best.json" "$2/best.json"; }

# ---- one process is the reference; N ranks give its log and best.json ----
"$BIN" search $A --out r1 >r1.txt 2>&1 || bad "random search, 1 process: $(tail -c 300 r1.txt)"
"$BIN" search $E --jobs 1 --out e1 >e1.txt 2>&1 || bad "evolution search, 1 process: $(tail -c 300 e1.txt)"
for n in 2 3; do
  mpi "$n" "$BIN" search $A --out "r$n" --json >"r$n.out" 2>"r$n.err" \
    || { bad "random search on $n ranks: $(tail -c 400 "r$n.err")"; continue; }
  same_search r1 "r$n" && ok "random search on $n ranks: trials.jsonl and best.json as 1 process" \
    || bad "random search on $n ranks differs from 1 process"
  grep -q "on rank $((n - 1)):" "r$n.err" && ok "$n ranks: rank $((n - 1)) ran trials" || bad "$n ranks: no trial on rank $((n - 1))"
  [ "$(grep -c '"command":"search"' "r$n.out")" -eq 1 ] && [ "$(grep -c '^search: random' "r$n.err")" -eq 1 ] \
    && ok "$n ranks: the result and progress printed once (rank 0)" || bad "$n ranks: output $(cat "r$n.out")"
done
# Ranks may run other --jobs / --threads (machines differ): they never change a trial.
mpi 1 "$BIN" search $E --jobs 2 --out e2 : -np 1 "$BIN" search $E --jobs 1 --out e2 >e2.txt 2>&1 && same_search e1 e2 \
  && ok "evolution search on 2 ranks with 2 and 1 jobs: as 1 process" || bad "evolution on 2 ranks: $(tail -c 300 e2.txt)"

# The Python package under mpirun: every process calls search.run, rank 0 gets the ranking.
if [ -n "$SHARED_LIB" ] && /usr/bin/python3 -c "import numpy" 2>/dev/null; then
  cat > py.py <<PY
import sys
sys.path.insert(0, "$PKG")
import metalearn as ml
from metalearn import search
events = []
res = search.run(space="space.json", out=sys.argv[1], budget=6, min_iters=30, max_iters=90, jobs=1, threads=1,
                 val_tasks=30, callback=events.append)
ranks = {e["rank"] for e in events if e["kind"] == "trial_done"}
assert (ml.rank() == 0) == bool(res["results"]) and (ml.rank() > 0 or ranks == {0, 1}), (ml.rank(), ranks)
PY
  ML_LIBRARY="$SHARED_LIB" mpi 2 /usr/bin/python3 py.py py2 >py.txt 2>&1 && same_search r1 py2 \
    && ok "Python search.run on 2 ranks: as 1 process" || bad "Python on 2 ranks: $(grep -v "^--\|^$" py.txt | tail -c 600)"
else
  skip "Python package under mpirun: no numpy for /usr/bin/python3"
fi

# ---- Ctrl-C on mpirun, a killed rank: finished trials kept, resumed with another N ----
# Long enough that the job still runs when Open MPI passes the Ctrl-C on to the
# ranks ($GRACE s after it, lib.sh): 4 rungs, the last trial 60000 iterations
# (a quiet Zen 5: 7.5 s in all, ~7 s of it after the first trial line; with
# 20000 the whole search took 2 s and ended before the signal reached a rank).
L="--space space.json --budget 3 --min-iters 2000 --max-iters 60000 --jobs 1 --threads 1 --val-tasks 30"
"$BIN" search $L --jobs 2 --out l1 >l1.txt 2>&1 || bad "longer search, 1 process: $(tail -c 300 l1.txt)"
wait_lines() { for _ in $(seq 1200); do [ "$(cat "$1/trials.jsonl" 2>/dev/null | wc -l)" -ge "$2" ] && return 0; sleep 0.05; done; return 1; }
# A trial interrupted with its rank may still be saving its checkpoint when
# mpirun returns (it got SIGTERM when its rank ended): allow it 10 s to finish.
# ours OUT: this test's processes of the search into OUT (their command line
# ends with it, their folder is $TMP: mpi_failures, maybe run beside this one
# by ctest -j2, has jobs with "--out int" and "--out killed" too).
here=$(pwd -P)
ours() { local p; for p in $(pgrep -f -- "--out $1\$"); do [ "$(readlink "/proc/$p/cwd")" = "$here" ] && echo "$p"; done; }
left_running() { for _ in $(seq 100); do [ -n "$(ours "$1")" ] || return 1; sleep 0.1; done; return 0; }

env "$GRACE" timeout 120 mpirun --oversubscribe -np 2 "$BIN" search $L --out int >int.out 2>int.err &
job=$!
wait_lines int 1
kill -INT "$(pgrep -P $job -x mpirun)" 2>/dev/null
wait $job; rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$(grep -c 'interrupted; finished trials are in int/trials.jsonl' int.err)" -eq 1 ] \
  && ok "Ctrl-C on mpirun: the search stops, said once (exit $rc)" || bad "Ctrl-C: exit $rc: $(tail -c 400 int.err)"
left_running int && bad "Ctrl-C: processes left running" || ok "Ctrl-C: no rank or trial left running"
cp int/trials.jsonl int_before.jsonl
before=$(wc -l <int_before.jsonl)
mpi 3 "$BIN" search $L --out int --json >int3.out 2>&1 || bad "resume on 3 ranks: $(tail -c 300 int3.out)"
head -n "$before" int/trials.jsonl | cmp -s - int_before.jsonl && [ "$before" -ge 1 ] \
  && ok "the log keeps the $before trials finished before Ctrl-C" || bad "log after Ctrl-C: $before lines, rewritten?"
same_search l1 int && ok "resumed on 3 ranks: the uninterrupted result" || bad "resume on 3 ranks differs from 1 process"

timeout 120 mpirun --oversubscribe -np 3 "$BIN" search $L --out killed >killed.out 2>killed.err &
job=$!
wait_lines killed 1
launcher=$(pgrep -P $job -x mpirun)
kill -9 "$(rank_pid "$launcher" 1)"
wait $job; rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank 1" killed.err && ok "a rank killed ends the job, naming rank 1 (exit $rc)" \
  || bad "rank killed: exit $rc: $(tail -c 400 killed.err)"
left_running killed && { bad "killed rank: processes left running"; kill -9 $(ours killed) 2>/dev/null; } \
  || ok "killed rank: no rank or trial left running"
[ "$(wc -l <killed/trials.jsonl)" -ge 1 ] && ok "the log keeps the trials finished before the kill" || bad "log lost lines"
"$BIN" search $L --out killed >killed1.txt 2>&1 && same_search l1 killed \
  && ok "resumed on 1 process: the uninterrupted result" || bad "resume after kill: $(tail -c 300 killed1.txt)"

# ---- bad input: every rank fails alike, nothing run ----
mkdir -p with without && cp space.json with/
B="--space space.json --budget 2 --min-iters 10 --max-iters 30 --jobs 1 --threads 1 --val-tasks 10"
expect "a rank cannot read the space file" 1 "rank 1 of 2: .*space.json" -- timeout 60 mpirun --oversubscribe \
  -np 1 --wdir "$TMP/with" "$BIN" search $B --out "$TMP/bad1" : -np 1 --wdir "$TMP/without" "$BIN" search $B --out "$TMP/bad1"
[ "$(grep -c 'rank 1 of 2' "$TMP/err")" -ge 2 ] && ok "every rank reports it" || bad "only one rank reported: $(cat "$TMP/err")"
[ ! -e bad1 ] && ok "no search folder written" || bad "bad1: $(ls bad1)"
expect "ranks with other settings" 2 "rank 1 of 2 runs other settings or another build" -- mpi 1 "$BIN" search $A \
  --seed 1 --out bad2 : -np 1 "$BIN" search $A --seed 2 --out bad2
expect "a folder holding another search" 2 "rank 0 of 2: .*another search" -- mpi 2 "$BIN" search $A --seed 9 --out r1
[ "$(grep -c 'another search' "$TMP/err")" -ge 2 ] && ok "every rank reports it" || bad "another search: $(cat "$TMP/err")"
summary
