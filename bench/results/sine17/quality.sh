#!/bin/bash
# short sinusoid MAML training, base vs new, same settings
for b in base new; do
  bin=/work/base_bin/metalearn; [ $b = new ] && bin=/tmp/sineprof/new_metalearn
  rm -rf /tmp/sineprof/q_$b
  $bin train --algo maml --task sinusoid --model mlp:40,40 --shots 10 --query 10 --meta-batch 25 --inner-steps 1 --inner-lr 0.01 --outer-lr 0.001 --optimizer adam --seed 1 --iters 5000 --threads 1 --eval-tasks 600 --json --quiet --out /tmp/sineprof/q_$b > /tmp/sineprof/q_$b.json 2>&1
done
