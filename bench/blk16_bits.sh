#!/usr/bin/env bash
# Checkpoint bits of two metalearn binaries (issue 17, blocked conv outputs):
# ProtoNet 20w5s q5 (6 steps, 1 and 2 episodes per step) and MAML-2 5w1s q15
# meta-batch 4 (3 steps), each on 1 and 2 threads, plus the evaluation's
# results (eval.json's "results", 4 test episodes); prints one md5 line per run and "identical" or "DIFFERENT".
# Usage: bench/blk16_bits.sh A_BIN B_BIN   (env: ML_DATA_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/setup.sh
omniglot_zips
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
run() { # bin label threads algo mb iters extra...
  local bin="$1" label="$2" th="$3" algo="$4" mb="$5" it="$6"; shift 6
  local out="$tmp/$label"
  "$bin" train --algo "$algo" --dataset "omniglot:$zips" --meta-batch "$mb" --outer-lr 0.001 --iters "$it" \
    --threads "$th" --eval-tasks 4 --log-every 1 --checkpoint-every 1000000 --seed 1 --quiet --out "$out" "$@" > /dev/null
  local res; res=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["results"], sort_keys=True))' "$out/eval.json" | md5sum | cut -c1-12)
  echo "$(md5sum < "$out/checkpoint.safetensors" | cut -c1-32) $res $label"
}
for cfg in "protonet 1 6 --ways 20 --shots 5 --query 5" "protonet 2 6 --ways 20 --shots 5 --query 5" \
           "maml 4 3 --ways 5 --shots 1 --query 15 --inner-steps 1 --inner-lr 0.4" \
           "fomaml 4 3 --ways 5 --shots 1 --query 15 --inner-steps 1 --inner-lr 0.4"; do
  read -r algo mb it rest <<< "$cfg"
  for th in 1 2; do
    a=$(run "$1" "A_${algo}_mb${mb}_${th}t" "$th" "$algo" "$mb" "$it" $rest)
    b=$(run "$2" "B_${algo}_mb${mb}_${th}t" "$th" "$algo" "$mb" "$it" $rest)
    echo "$a"; echo "$b"
    if [ "${a%% *}" = "${b%% *}" ] && [ "$(echo "$a" | cut -d' ' -f2)" = "$(echo "$b" | cut -d' ' -f2)" ]; then echo "identical"; else echo "DIFFERENT"; status=1; fi
  done
done
exit $status
