#!/usr/bin/env bash
# Failures of an mpirun job end every rank with a clear message and a
# non-zero status, never a hang (each command is bounded by timeout): a rank
# that cannot read the data, ranks with other settings or another binary,
# Ctrl-C on the launcher (checkpoint saved), a rank killed (the last good
# checkpoint kept, resumable).
NAME=mpi_failures
source "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
S="--algo maml --task sinusoid --meta-batch 4 --iters 3 --eval-tasks 0 --quiet"

# Rank 1 starts in a folder without the data (the same options, a relative path).
mkdir -p with without
printf 'task,set,x,y\n' > with/t.csv
for t in 0 1 2 3 4 5 6 7 8 9; do for s in support query; do for x in 1 2 3 4 5 6 7 8 9 10 11 12; do
  echo "$t,$s,$x,$((x * t))"; done; done; done >> with/t.csv
C="--algo maml --task csv:t.csv --meta-batch 2 --iters 2 --shots 2 --query 2 --eval-tasks 0 --split 1,0,0 --quiet"
expect "a rank cannot read the data" 1 "rank 1 of 2: .*t.csv" -- timeout 60 mpirun --oversubscribe \
  -np 1 --wdir "$TMP/with" "$BIN" train $C --out "$TMP/bad1" : -np 1 --wdir "$TMP/without" "$BIN" train $C --out "$TMP/bad1"
[ "$(grep -c 'rank 1 of 2' "$TMP/err")" -ge 2 ] && ok "every rank reports it" || bad "only one rank reported: $(cat "$TMP/err")"
[ ! -e bad1/checkpoint.safetensors ] && [ ! -e bad1/config.json ] && ok "no run folder written" || bad "bad1: $(ls bad1)"

expect "ranks with other settings" 2 "rank 1 of 2 runs other settings or another build" -- timeout 60 mpirun --oversubscribe \
  -np 1 "$BIN" train $S --seed 1 --out bad2 : -np 1 "$BIN" train $S --seed 2 --out bad2
cp "$BIN" other-build && printf 'x' >> other-build
expect "ranks with another binary" 2 "another build" -- timeout 60 mpirun --oversubscribe \
  -np 1 "$BIN" train $S --out bad3 : -np 1 ./other-build train $S --out bad3
expect "a command that runs as one process" 2 "runs as one process" -- mpi 2 "$BIN" predict --help
expect "meta-RL runs as one process" 2 "meta-RL runs as one process.*mpirun started 2" -- mpi 2 "$BIN" train \
  --env nav2d --rollouts 2 --horizon 4 --meta-batch 1 --iters 1 --out rl --quiet
[ ! -e rl ] && ok "meta-RL under mpirun: no run folder written" || bad "rl: $(ls rl)"

# Ctrl-C on mpirun: every rank stops at the same iteration, rank 0 saves.
L="--algo maml --task sinusoid --meta-batch 5 --iters 1000000 --eval-tasks 0 --threads 1 --checkpoint-every 20"
wait_for_checkpoint() { for _ in $(seq 600); do [ -e "$1/checkpoint.safetensors" ] && return 0; sleep 0.1; done; return 1; }
env "$GRACE" timeout 120 mpirun --oversubscribe -np 2 "$BIN" train $L --out int >int.txt 2>&1 &
job=$!
wait_for_checkpoint int && sleep 0.5
kill -INT "$(pgrep -P $job -x mpirun)" 2>/dev/null
wait $job; rc=$?
grep -q "interrupted at iteration" int.txt && [ $rc -ne 124 ] && ok "Ctrl-C: all ranks stop, checkpoint saved (exit $rc)" \
  || bad "Ctrl-C: exit $rc: $(tail -c 400 int.txt)"
it=$(python3 -c "import json,sys; print(json.loads(open('int/checkpoint.safetensors','rb').read()[8:][:int.from_bytes(open('int/checkpoint.safetensors','rb').read()[:8],'little')])['__metadata__']['iteration'])" 2>/dev/null)
[ -n "$it" ] && timeout 60 "$BIN" train --resume int --iters $((it + 3)) --quiet >/dev/null 2>&1 \
  && ok "the interrupted run resumes on 1 process (from iteration $it)" || bad "resume after Ctrl-C (iteration '$it')"

# A rank killed: the job ends (no hang), Open MPI names the rank, the last checkpoint stays good.
timeout 120 mpirun --oversubscribe -np 3 "$BIN" train $L --out killed >killed.txt 2>&1 &
job=$!
wait_for_checkpoint killed && sleep 0.5
launcher=$(pgrep -P $job -x mpirun)
ranks=($(ps -o pid= --ppid "$launcher"))
kill -9 "$(rank_pid "$launcher" 1)"
wait $job; rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank 1" killed.txt && ok "a rank killed ends the job, naming rank 1 (exit $rc)" \
  || bad "rank killed: exit $rc: $(tail -c 400 killed.txt)"
left=1
for _ in $(seq 300); do # Open MPI ends the other ranks as it exits; give them 30 s (a loaded machine)
  left=0; for p in "${ranks[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
  [ $left -eq 0 ] && break; sleep 0.1
done
[ $left -eq 0 ] && ok "no rank left running" || { bad "ranks left running"; kill -9 "${ranks[@]}" 2>/dev/null; }
timeout 60 "$BIN" train --resume killed --iters 1 --quiet >/dev/null 2>&1; rc=$?
# --iters below the checkpoint: evaluation only (none asked): the checkpoint reads back
[ $rc -eq 0 ] && ok "the last checkpoint of the killed job reads back" || bad "resume after kill: exit $rc"
summary
