#!/usr/bin/env bash
# scaling_waits.sh: which of the two threads waits for the other, and in
# what, for supervised cnn4 batch 64 (one shard, 128 steps) on 2 threads:
# one run under `perf record -e cpu-clock -c 100000` (a sample per 0.1 ms of
# a thread's CPU; oneDNN's JIT kernels named), then bench/scaling_waits.py.
# Kernels that split one job in halves should cost both threads the same; a
# symbol one thread spends systematically longer in points at data it has
# to take from the other's cache (issue 17, round 9).
# Usage: bench/scaling_waits.sh [--rt] BIN [OUT_DIR]   (default bench/results/scale23/waits)
set -euo pipefail
cd "$(dirname "$0")/.."
rt=()
[ "${1:-}" = --rt ] && { rt=(chrt -f 10); shift; }
[ $# -ge 1 ] || { sed -n '2,9p' "$0"; exit 2; }
bin=$(realpath "$1") out="${2:-bench/results/scale23/waits}"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ONEDNN_JIT_PROFILE=2 "${rt[@]}" perf record -q -e cpu-clock -c 100000 -o "$tmp/perf.data" "$bin" train --algo supervised \
  --dataset fashion-mnist --model cnn4 --batch-size 64 --lr 1e-3 --limit 8192 --epochs 1 --threads 2 --quiet \
  --out "$tmp/run" > /dev/null 2>&1
perf script -i "$tmp/perf.data" -F tid,time,ip,sym,dso 2> /dev/null > "$tmp/samples.txt"
python3 bench/scaling_waits.py "$tmp/samples.txt" 127 | tee "$out/waits.txt"
echo "load1 $(cut -d' ' -f1 /proc/loadavg), $(head -1 "$tmp/run/log.jsonl")" | tee -a "$out/waits.txt"
