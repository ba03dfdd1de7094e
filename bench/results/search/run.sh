#!/usr/bin/env bash
# Strategy search on sinusoid regression (docs/results.md, "Strategy search").
# Usage: bash bench/results/search/run.sh BUILD_DIR WORK_DIR  (writes raw outputs next to this script)
#   SPACE=space file name here (default space_sinusoid.json), TAG=suffix of the output names,
#   SEEDS="1 2" search seeds, FINALS="default random_s1 ..." configs trained for 20000 iterations.
set -eu
BIN="$(realpath "$1")/metalearn"; WORK="$2"; HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$WORK"; cd "$WORK"
SPACE="$HERE/${SPACE:-space_sinusoid.json}"; TAG="${TAG:-}"
COMMON=(--space "$SPACE" --budget 27 --min-iters 600 --max-iters 6000 --eta 3 --jobs 1 --threads 1 --val-tasks 300 --json)
for seed in ${SEEDS:-1 2}; do
  for strat in random evolution; do
    out="${strat}_s$seed$TAG"
    [ -f "$HERE/$out.out" ] && continue
    { time "$BIN" search "${COMMON[@]}" --strategy $strat --population 9 --seed $seed --out "$out" ; } >"$HERE/$out.out" 2>"$HERE/$out.err"
    cp "$out/trials.jsonl" "$HERE/$out.trials.jsonl"; cp "$out/best.json" "$HERE/$out.best.json"; cp "$out/search.png" "$HERE/$out.png"
  done
done
# Full-length training (the default run's 20000 iterations) of each search's best and of the default config,
# then the test tasks (eval-seed, never seen by the search).
for name in ${FINALS:-default random_s1 evolution_s1 random_s2 evolution_s2}; do
  name="$name$TAG"
  [ -f "$HERE/final_$name.out" ] && continue
  if [ "$name" = "default$TAG" ]; then cfg=(--algo maml --task sinusoid --model mlp:40,40 --shots 10 --meta-batch 25 --inner-steps 1 --inner-lr 0.01 --outer-lr 0.001)
  else cfg=(--config "$HERE/$name.best.json"); fi
  rm -rf "final_$name"
  { time "$BIN" train "${cfg[@]}" --iters 20000 --eval-tasks 0 --threads 1 --quiet --out "final_$name" --json ; } >"$HERE/final_$name.train.out" 2>&1 || true
  "$BIN" eval "final_$name" --tasks 600 --threads 1 --json >"$HERE/final_$name.out" 2>&1 || true
done
