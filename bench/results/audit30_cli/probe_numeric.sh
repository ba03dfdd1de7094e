#!/bin/bash
# numeric edge probe: train options on a tiny sinusoid run
BIN=/work/wt/cli30/build/metalearn
T=/tmp/c30/num; rm -rf $T; mkdir -p $T
BASE=(--algo maml --task sinusoid --model mlp:8 --meta-batch 2 --shots 3 --query 3 --eval-tasks 2 --eval-query 3 --iters 2 --threads 1 --quiet)
opts="$($BIN train --help | grep -oE '^  --[a-z0-9-]+ [NX]' | awk '{print $1}' | sed 's/--//')"
n=0
for o in $opts; do
  for v in 0 -1 1e12 2147483648 9223372036854775808 18446744073709551615 1e999 nan inf -inf 12abc "" " 5" 0x10 1.5 -0; do
    n=$((n+1))
    args=("${BASE[@]}")
    timeout 60 $BIN train "${args[@]}" --$o "$v" --out $T/r$n >$T/o 2>$T/e; st=$?
    line=$(head -c 300 $T/e | head -1)
    nl=$(wc -l <$T/e)
    case $st in 0|1|2) ;; *) echo "STATUS $st: --$o '$v': $line";; esac
    grep -qi "sanitizer\|segmentation\|(null)" $T/e && echo "CRASH/NULL --$o '$v': $line"
    [ $st -ne 0 ] && [ $nl -gt 3 ] && echo "MULTILINE($nl) --$o '$v': $(head -3 $T/e|tr '\n' '|')"
    echo "$st	--$o	'$v'	$line" >> $T/table
    rm -rf $T/r$n
  done
done
echo "cases $n"
