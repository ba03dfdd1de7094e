#!/usr/bin/env bash
# cli_meta_regression's Ctrl-C, N times: the signal sent DELAY s after
# config.json appears (the old test: 0.5) or after the first log line (the
# fixed test: "log"). Counts the runs that stopped as the test wants: exit 130,
# "resume" said, a checkpoint saved. Usage: sigint_window.sh BIN N DELAY|log
set -u
BIN="$(realpath "$1")"; N=$2; MODE=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
COMMON=(--task sinusoid --model mlp:16,16 --meta-batch 5 --shots 5 --query 5 --eval-tasks 20 --eval-query 20 --quiet)
ok=0
for i in $(seq "$N"); do
  d="$tmp/r$i"
  "$BIN" train --algo maml "${COMMON[@]}" --iters 100000000 --out "$d" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  if [ "$MODE" = log ]; then for _ in $(seq 600); do [ -s "$d/log.jsonl" ] && break; sleep 0.1; done
  else for _ in $(seq 50); do [ -s "$d/config.json" ] && break; sleep 0.01; done; sleep "$MODE"; fi
  kill -INT $pid; wait $pid; st=$?
  [ $st -eq 130 ] && grep -q resume "$tmp/err" && [ -s "$d/checkpoint.safetensors" ] && ok=$((ok + 1))
done
printf '{"mode":"%s","runs":%d,"ok":%d,"loadavg":"%s"}\n' "$MODE" "$N" "$ok" "$(cut -d' ' -f1-3 /proc/loadavg)"
