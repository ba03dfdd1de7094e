#!/usr/bin/env bash
# quiet-machine acceptance run (lead), session 30
set -u
cd /work/wt/int
BASE=/work/base_bin/metalearn_s29; NEW=build/metalearn
O=bench/results/issue17_s30; mkdir -p $O
export ML_DATA_DIR=/work/shared/data
st() { echo "$(date -u +%FT%TZ) $1 $(uptime) pingpong $(/work/pingpong)" >> $O/started.txt; }
sha256sum $NEW $BASE | cut -c1-12 > $O/binaries.txt
st start
bash bench/maml_sinusoid_vs_torch.sh --reps 7 --ml-iters 20000 --base $BASE > $O/sine_vs_torch_20k.jsonl 2> $O/sine_vs_torch_20k.err; st sine_done
bash bench/omniglot_vs_torch.sh --reps 3 > $O/omniglot_vs_torch.jsonl 2> $O/omniglot_vs_torch.err; st omniglot_done
bash bench/omniglot_vs_torch.sh --reps 3 --configs protonet > $O/omniglot_protonet2.jsonl 2> $O/omniglot_protonet2.err; st protonet2_done
bash bench/scaling_inside.sh --reps 5 $BASE $NEW $O/scaling_inside > $O/scaling_inside.log 2>&1; st scaling_done
bash bench/mem19_rerun.sh --reps 3 $BASE $NEW $O/mem19_rerun > $O/mem19_rerun.log 2>&1; st mem19_done
bash bench/maml_sinusoid_vs_torch.sh --reps 5 --base $BASE > $O/sine_vs_torch.jsonl 2> $O/sine_vs_torch.err; st sine2_done
bash bench/scaling_inside.sh --reps 7 --only eval,supervised $BASE $NEW $O/scaling_inside_run2 > $O/scaling_inside_run2.log 2>&1; st scaling2_done
st done
