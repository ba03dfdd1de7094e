#!/usr/bin/env bash
# Bits beyond bench/blk16_bits.sh for issue 17 round 6 (blk19): supervised cnn4
# training (1 and 2 threads) and the model zoo's evaluation, two binaries,
# checkpoint / the eval JSON's "results" compared by md5 (not its timings). Prints "identical" or "DIFFERENT" per pair.
# Usage: bench/blk19_bits_extra.sh A_BIN B_BIN [EPISODES]   (env: ML_DATA_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
eps="${3:-200}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
same() { if [ "$1" = "$2" ]; then echo "identical"; else echo "DIFFERENT"; status=1; fi; }
for th in 1 2; do
  for w in A B; do
    bin="$1"; [ "$w" = B ] && bin="$2"
    "$bin" train --algo supervised --dataset fashion-mnist --model cnn4 --batch-size 64 --lr 1e-3 --limit 512 \
      --epochs 1 --threads "$th" --seed 1 --quiet --out "$tmp/sup_${w}_$th" > /dev/null
    eval "s_$w=\$(md5sum < $tmp/sup_${w}_$th/checkpoint.safetensors | cut -c1-32)"
  done
  echo "$s_A $s_B supervised_${th}t"; same "$s_A" "$s_B"
done
zoo() { # bin model args... -> md5 of the JSON results
  local bin="$1" model="$2"; shift 2
  "$bin" eval "models/$model" --episodes "$eps" --threads 2 --json "$@" 2> /dev/null | grep '^{' |
    python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())["results"], sort_keys=True))' | md5sum | cut -c1-32
}
for cfg in "omniglot-maml-5w1s --shots 1,5 --steps 1,10" "omniglot-protonet-30w1s --ways 20 --shots 1,5"; do
  read -r model rest <<< "$cfg"
  a=$(zoo "$1" "$model" $rest) b=$(zoo "$2" "$model" $rest)
  echo "$a $b zoo_$model"; same "$a" "$b"
done
exit $status
