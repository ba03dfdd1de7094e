#!/usr/bin/env bash
# probes.sh BIN: the durability findings of round 12 (dur30), each one line of outcome.
# Run with the base binary and with the fixed one: see probes_before.txt / probes_after.txt.
set -u
BIN="$1"; T=$(mktemp -d); trap 'rm -rf "$T"' EXIT; cd "$T"
S=(--algo maml --task sinusoid --model mlp:8,8 --meta-batch 3 --shots 4 --query 4 --eval-tasks 0 --log-every 10 --checkpoint-every 10 --quiet --threads 1)
R=(--env nav2d --algo maml --rollouts 4 --horizon 10 --meta-batch 2 --eval-tasks 2 --threads 1 --quiet)
say() { printf '%-58s %s\n' "$1" "$2"; }
# 1. meta-RL TRPO at --inner-lr 1000: NaN loss
"$BIN" train "${R[@]}" --outer trpo --inner-lr 1000 --iters 3 --out rlnan >/dev/null 2>err; rc=$?
say "RL trpo --inner-lr 1000" "exit $rc; $(head -c 120 err)$(grep -c nan rlnan/log.jsonl 2>/dev/null | sed 's/^/ log lines with nan: /')"
# 2. meta-RL checkpoint on a full disk (faultfs shim, ML_FAULTFS)
if [ -f "${ML_FAULTFS:-}" ]; then
  "$BIN" train "${R[@]}" --outer adam --iters 4 --stop-at 2 --checkpoint-every 1 --out rlfull >/dev/null 2>&1
  LD_PRELOAD=$ML_FAULTFS FAULT_PATH=checkpoint.safetensors FAULT_MODE=enospc "$BIN" train --resume rlfull --iters 4 --quiet 2>err >/dev/null
  say "RL checkpoint, ENOSPC" "exit $?; $(sed "s|$T/||" err)"
fi
# 3. stdout on a full disk
"$BIN" train "${S[@]}" --iters 20 --out run >/dev/null 2>&1
printf '1,2\n-1,-2\n' >s.csv; printf '0.5\n' >q.csv
"$BIN" predict run --support s.csv --query q.csv --quiet >/dev/full 2>err; say "predict > /dev/full" "exit $?; $(cat err)"
"$BIN" eval run --tasks 2 --json --quiet >/dev/full 2>err; say "eval --json > /dev/full" "exit $?; $(cat err)"
# 4. the same resume twice at once
"$BIN" train "${S[@]}" --iters 2000 --out ref >/dev/null 2>&1
"$BIN" train "${S[@]}" --iters 2000 --stop-at 10 --out two >/dev/null 2>&1
"$BIN" train --resume two --iters 2000 --quiet >/dev/null 2>e1 & p=$!
sleep 0.2; "$BIN" train --resume two --iters 2000 --quiet >/dev/null 2>e2; rc=$?; wait $p
say "train --resume twice at once" "second exit $rc; log lines $(wc -l <two/log.jsonl) (uninterrupted: $(wc -l <ref/log.jsonl)); $(sed "s|$T/||" e2)"
