#!/usr/bin/env bash
# bench/diabetes_csv.sh: the CSV experiment a user would run on a real table
# (docs/results.md, "A real table as tasks"). The diabetes table shipped with
# Debian's python3-sklearn becomes 20 tasks (sex x age decile, see
# bench/diabetes_tasks.py): 14 in train.csv, 6 in held_out.csv. Settings are
# chosen on validation tasks of train.csv only (--split 0.7,0.3,0 and
# --val-every: inner rate and iterations with the lowest validation MSE),
# then MAML and the multi-task baseline train on all 14 tasks and are scored
# on the 6 held-out tasks (10 support rows each, every other row a query),
# beside a pooled linear fit and predicting the mean (diabetes_baselines.py).
# About a minute on one core.
# usage: bench/diabetes_csv.sh [OUT_DIR]   (BIN=build/metalearn by default)
set -euo pipefail
BIN="${BIN:-build/metalearn}"
OUT="${1:-runs/diabetes}"
HERE="$(dirname "$0")"
python3 "$HERE/diabetes_tasks.py" "$OUT/data"
COMMON=(--task "csv:$OUT/data/train.csv" --model mlp:40,40 --shots 4 --query 4 --meta-batch 5 --eval-tasks 0
        --threads 1 --quiet --overwrite)
for algo in maml multitask; do
  for lr in 0.01 0.03 0.1; do
    "$BIN" train --algo $algo "${COMMON[@]}" --split 0.7,0.3,0 --inner-lr $lr --eval-shots 4 --eval-steps 10 \
      --iters 2000 --log-every 100 --val-every 100 --out "$OUT/select_${algo}_$lr"
  done
  # The (inner rate, iterations) of the lowest validation MSE.
  read -r lr iters val < <(python3 - "$OUT" $algo <<'PY'
import glob, json, sys
best = None
for path in glob.glob(f"{sys.argv[1]}/select_{sys.argv[2]}_*/log.jsonl"):
    lr = path.split("_")[-1].split("/")[0]
    for line in open(path):
        j = json.loads(line)
        if j.get("val_mse") is not None and (best is None or j["val_mse"] < best[2]):
            best = (lr, j["iter"], j["val_mse"])
print(*best)
PY
)
  echo "$algo: chosen on validation tasks: --inner-lr $lr --iters $iters (validation MSE $val)"
  "$BIN" train --algo $algo "${COMMON[@]}" --split 1,0,0 --inner-lr "$lr" --iters "$iters" --out "$OUT/$algo"
  "$BIN" eval "$OUT/$algo" --task "csv:$OUT/data/held_out.csv" --shots 10 --steps 1,10,100 --query 0 --threads 1
done
echo "baselines on the same held-out rows:"
python3 "$HERE/diabetes_baselines.py" "$OUT/data/train.csv" "$OUT/data/held_out.csv"
