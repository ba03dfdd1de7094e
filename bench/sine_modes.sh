#!/usr/bin/env bash
# Does the cache-line round trip between the two vCPUs select the sinusoid's
# fast 2-thread mode? Alternates, N times: bench/cpu_pingpong.c (cpu 0 <-> 1)
# and a bench_sine_iters run per binary, one JSON line per round with the
# round trip before and after and each binary's p50 ms/iteration. A fast
# round (p50 ~0.07 ms) next to a short round trip, and slow ones next to long
# ones, would say that the host's placement of the vCPUs sets the mode.
#
# Usage: bench/sine_modes.sh [--rounds N] [--iters N] [--prefix "chrt -f 10"] BENCH_SINE_ITERS...
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=20 iters=3000 prefix=
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
[ ${#bins[@]} -gt 0 ] || { sed -n '2,9p' "$0"; exit 2; }
pp=$(mktemp)
trap 'rm -f "$pp"' EXIT
gcc -O2 -pthread bench/cpu_pingpong.c -o "$pp"
trip() { $prefix "$pp" 0 1 20000 | python3 -c 'import json,sys; print(json.load(sys.stdin)["min"])'; }
for r in $(seq 1 "$rounds"); do
  before=$(trip)
  runs=""
  for bin in "${bins[@]}"; do
    p50=$($prefix "$bin" --threads 2 --iters "$iters" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p50_ms"])')
    runs="$runs${runs:+, }\"$bin\": $p50"
  done
  echo "{\"round\": $r, \"t\": \"$(date -u +%H:%M:%S)\", \"load_1min\": $(cut -d' ' -f1 /proc/loadavg), \"round_trip_ns_before\": $before, \"p50_ms\": {$runs}, \"round_trip_ns_after\": $(trip)}"
done
