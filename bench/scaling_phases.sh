#!/usr/bin/env bash
# scaling_phases.sh: where the time of one task on 2 threads goes, against 1
# thread, for the three cases of bench/scaling_inside.sh (protonet,
# supervised, eval). Per case and thread count, one run under
# `perf record -e cpu-clock` (software clock: this VM exposes no hardware
# counters; a sample every 0.25 ms of a thread's CPU) with oneDNN's JIT code named (ONEDNN_JIT_PROFILE=2, perf map),
# and one under `perf stat` (task-clock, context switches, migrations).
# The samples are grouped into phases by symbol (scaling_phases.py) and
# summed over threads, so "2T CPU - 1T CPU" per phase is the work that two
# threads add, and 2 x wall(2T) - CPU(2T) the time a thread sat idle
# (sleeping at a barrier, or a serial part on the other thread).
# Short runs of 5 steps / episodes are subtracted from long ones, so start-up
# (data loading, JIT builds) cancels.
#
# Usage: bench/scaling_phases.sh [--rt] BIN [OUT_DIR]   (default bench/results/scale19/phases)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/setup.sh
rt=()
[ "${1:-}" = --rt ] && { rt=(chrt -f 10); shift; }
[ $# -ge 1 ] || { sed -n '2,16p' "$0"; exit 2; }
bin=$(realpath "$1") out="${2:-bench/results/scale19/phases}"
mkdir -p "$out"
omniglot_zips
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run_case() { # CASE THREADS UNITS: the command line of one run of UNITS steps / episodes
  case "$1" in
    protonet) echo "$bin train --algo protonet --dataset omniglot:$zips --ways 20 --shots 5 --query 5 --meta-batch 1 \
      --outer-lr 0.001 --iters $3 --threads $2 --eval-tasks 0 --log-every 1 --checkpoint-every 1000000 --seed 1 \
      --quiet --out $tmp/run" ;;
    supervised) echo "$bin train --algo supervised --dataset fashion-mnist --model cnn4 --batch-size 64 --lr 1e-3 \
      --limit $((64 * $3)) --epochs 1 --threads $2 --quiet --out $tmp/run" ;;
    eval) echo "$bin eval models/omniglot-protonet-30w1s --tasks $3 --ways 20 --shots 5 --query 15 --steps 1 \
      --lake-runs none --threads $2 --quiet --json" ;;
  esac
}
units() { case "$1" in protonet) echo 40 ;; supervised) echo 128 ;; eval) echo 105 ;; esac; }

for c in protonet supervised eval; do
  for th in 1 2; do
    for n in 5 "$(units $c)"; do
      rm -rf "$tmp/run"
      t0=$(date +%s.%N)
      # shellcheck disable=SC2046
      "${rt[@]}" perf stat -x, -e task-clock,context-switches,cpu-migrations -o "$tmp/stat" $(run_case $c "$th" "$n") > /dev/null
      t1=$(date +%s.%N)
      rm -rf "$tmp/run"
      # shellcheck disable=SC2046
      ONEDNN_JIT_PROFILE=2 "${rt[@]}" perf record -q -e cpu-clock -c 250000 -o "$tmp/perf.data" $(run_case $c "$th" "$n") > /dev/null 2>&1
      perf report -i "$tmp/perf.data" --no-children --sort pid,dso,sym -F sample,pid,dso,sym -t $'\t' --stdio 2> /dev/null \
        | grep -v '^#' | grep -v '^$' > "$out/samples_${c}_${th}t_${n}.tsv"
      python3 -c "import json,sys
s = {l.split(',')[2]: float(l.split(',')[0]) for l in open('$tmp/stat') if l.count(',') > 3}
print(json.dumps({'case': '$c', 'threads': $th, 'units': $n, 'wall_s': round($t1 - $t0, 4),
  'task_clock_s': round(s['task-clock'] / 1e3, 4), 'context_switches': int(s['context-switches']),
  'cpu_migrations': int(s['cpu-migrations']), 'load1': float(open('/proc/loadavg').read().split()[0])}))" \
        | tee -a "$out/stat.jsonl"
    done
  done
done
python3 bench/scaling_phases.py "$out" | tee "$out/phases.txt"
