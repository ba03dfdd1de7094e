#!/bin/bash
# The round-12 readers audit's CLI probes (data30): every crafted input of
# make_probes.py, and corrupted copies of model-zoo run folders, through one
# binary. One line each: exit code, peak RSS (MB), sanitizer reports, the
# first line of stderr.  usage: probe.sh [BINARY] (default build/metalearn)
cd "$(dirname "$0")/../../.."
BIN=${1:-build/metalearn}
W=build-probe; F=$W/f
[ -d $F ] || python3 bench/results/audit30_data/make_probes.py $F
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
p() { local label=$1; shift
  /usr/bin/time -f %M -o $W/rss.txt timeout 300 "$@" >/dev/null 2>$W/err.txt; local rc=$?
  local san; san=$(grep -c -i "sanitizer\|runtime error" $W/err.txt)
  printf '%-20s rc=%-3s rss=%4sMB san=%s  %s\n' "$label" "$rc" "$(( $(tail -1 $W/rss.txt) / 1024 ))" "$san" \
    "$(grep -v '^\(adaptation\|data:\|search\)' $W/err.txt | head -1 | cut -c1-160)"; }
P=models/omniglot-protonet-30w1s; S=models/sinusoid-maml
p csv_wide_blank $BIN train --algo maml --task csv:$F/csv_wide_blank.csv --shots 1 --iters 1 --out $W/o1
p csv_blank10m $BIN train --algo maml --task csv:$F/csv_blank10m.csv --shots 1 --iters 1 --out $W/o2
p csv_longline $BIN train --algo maml --task csv:$F/csv_longline.csv --shots 1 --iters 1 --out $W/o3
p pred_num_wide $BIN predict $S --support $F/num_wide_blank.csv --query $F/q.csv
p pred_csv_dir $BIN predict $S --support $F --query $F/q.csv
p pred_csv_empty $BIN predict $S --support /dev/null --query $F/q.csv
p pred_csv_loop $BIN predict $S --support $F/loop1 --query $F/q.csv
p idx_huge $BIN train --algo protonet --dataset idx:$F/idx_huge --iters 1 --out $W/o4
p idx_gzbomb $BIN train --algo protonet --dataset idx:$F/idx_gzbomb --iters 1 --out $W/o5
p config_deep $BIN train --config $F/deep.json --out $W/o6
p config_deep_obj $BIN train --config $F/deep_obj.json --out $W/o6
for f in st_hdrlen st_hdrlen2 st_shape st_shape2 st_alias; do
  p init_$f $BIN train --algo maml --task sinusoid --iters 1 --init $F/$f.safetensors --out $W/o7_$f; done
for z in omni_bigpng omni_bomb omni_liar omni_hugedecl omni_trunc; do
  p $z $BIN train --algo protonet --dataset omniglot:$F/$z.zip --ways 2 --shots 1 --query 1 --iters 1 --out $W/o8_$z; done
p omni_symloop $BIN train --algo protonet --dataset omniglot:$F/loop1 --ways 2 --shots 1 --query 1 --iters 1 --out $W/o9
p pred_folder_loop $BIN predict $P --support $F/lp --query $F/qry
p pred_png_65535 $BIN predict $P --support $F/supbig --query $F/qry
p pred_png_16Mpx $BIN predict $P --support $F/bigpng --query $F/q16
p lake_truncated $BIN eval $P --lake-runs $F/lake_trunc.zip --tasks 5
p lake_not_lake $BIN eval $P --lake-runs $F/omni_ok.zip --tasks 5
p split_file_deep $BIN eval $P --split-file $F/deep.json --tasks 5
p split_file_dir $BIN eval $P --split-file $F --tasks 5
# run folders with one file broken
R=$W/rr; rm -rf $R; mkdir -p $R
for n in cfgdir cfgempty cfgdeep ckpttrunc ckptdir splitbad logdir evaldir; do cp -r $P $R/$n; done
rm $R/cfgdir/config.json && mkdir $R/cfgdir/config.json; : > $R/cfgempty/config.json; cp $F/deep.json $R/cfgdeep/config.json
head -c 5000 $P/checkpoint.safetensors > $R/ckpttrunc/checkpoint.safetensors
rm $R/ckptdir/checkpoint.safetensors && mkdir $R/ckptdir/checkpoint.safetensors; echo '{"format":' > $R/splitbad/split.json
rm $R/logdir/log.jsonl && mkdir $R/logdir/log.jsonl; rm $R/evaldir/eval.json && mkdir $R/evaldir/eval.json
for n in cfgdir cfgempty cfgdeep ckpttrunc ckptdir splitbad; do p eval_$n $BIN eval $R/$n --tasks 5 --shots 1; done
p plot_logdir $BIN plot $R/logdir --out $W/p1
p plot_evaldir $BIN plot $R/evaldir --out $W/p2
