#!/usr/bin/env bash
# (tail25) Build the instrumented binaries from a copy of the tree: python3 bench/results/tail25/instr_stages.py in the copy, then the usual build; env TS="1 2" picks the thread counts.
# tail25_stages_ab.sh A_BIN B_BIN OUT REPS: in-process stage medians (instrumented binaries), A/B and 1T/2T alternated
A=$1 B=$2 out=$3 reps=${4:-3}
cd "$(dirname "$0")/../../.."
for r in $(seq 1 $reps); do
  order="A B"; [ $((r % 2)) -eq 0 ] && order="B A"
  for t in ${TS:-1 2}; do
    for x in $order; do
      bin=$A; [ $x = B ] && bin=$B
      l=$(cut -d' ' -f1 /proc/loadavg)
      ST_LABEL="$x ${t}T rep$r load$l" ML_STAGE_TIMES=$out chrt -f 10 $bin eval models/omniglot-protonet-30w1s --tasks 60 --ways 20 --shots 5 --query 15 --steps 1 --lake-runs none --threads $t --quiet --json >/dev/null
    done
  done
done
