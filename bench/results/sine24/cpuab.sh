#!/usr/bin/env bash
# usage: cpuab.sh REPS ITERS BIN... ; prints per-binary median task-clock ms per iteration (1 thread)
reps=$1 iters=$2; shift 2
out=$(mktemp)
for r in $(seq 1 $reps); do for b in "$@"; do
  t=$(perf stat -x, -e task-clock "$b" train --algo maml --task sinusoid --model mlp:40,40 --shots 10 --query 10 --meta-batch 25 --inner-steps 1 --inner-lr 0.01 --outer-lr 0.001 --optimizer adam --seed 1 --iters $iters --threads 1 --eval-tasks 0 --quiet --out ${TMPDIR:-/tmp}/cpuab_run_$$ 2>&1 >/dev/null | grep task-clock | cut -d, -f1)
  rm -rf ${TMPDIR:-/tmp}/cpuab_run_$$
  echo "$b $t" >> $out
done; done
python3 - $out $iters <<'PY'
import sys,statistics,collections,os
d=collections.OrderedDict()
for l in open(sys.argv[1]):
    b,t=l.split(); d.setdefault(b,[]).append(float(t)/int(sys.argv[2]))
for b,v in d.items(): print(f"{b} median {statistics.median(v):.5f} ms/iter  min {min(v):.5f}  n={len(v)}")
print("load", os.getloadavg()[0])
PY
rm -f $out
