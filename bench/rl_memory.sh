#!/usr/bin/env bash
# Peak resident memory of meta-RL training (the settings of bench/rl500_nav2d.sh:
# 2x64 policy, 20 tasks x 20 trajectories x 100 steps), one JSON line per run:
# "Maximum resident set size" of /usr/bin/time -v over a few iterations (the
# arenas reach their size in the first one), the wall time and the
# checkpoint's sha256, so that two binaries can be checked to compute the same
# bits. Memory does not depend on the machine's load; the times do (alternate
# binaries in one session and compare medians).
#
# Usage: bench/rl_memory.sh [--iters 3] [--label NAME] RUN...
#   RUN = algo:outer:threads[:env], e.g. maml:trpo:2 or fomaml:adam:1:bandit:5
#   env: METALEARN (binary, default build/metalearn; copied first)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/peak_rss.sh
peak_rss_args 2,13p "$@"
peak_rss_binary
for run in "${runs[@]}"; do
  IFS=: read -r algo outer threads env <<< "$run"
  env=${env:-nav2d}
  peak_rss_train --env "$env" --algo "$algo" --outer "$outer" \
    --iters "$iters" --threads "$threads" --eval-seed 12345 --eval-tasks 0 --checkpoint-every 1000000 --quiet
  printf '{"bench":"rl_memory","label":"%s","binary_sha256_12":"%s","env":"%s","algo":"%s","outer":"%s","threads":%s,"iters":%s,"peak_mb":%.1f,"checkpoint_sha256_12":"%s","wall":"%s","loadavg":"%s"}\n' \
    "$label" "$sha" "$env" "$algo" "$outer" "$threads" "$iters" "$(echo "$kb / 1024" | bc -l)" "$ck" "$wall" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
done
