#!/usr/bin/env bash
# Speed of `metalearn search` with its trials spread over MPI ranks (issue 14), one command:
#
#   bash bench/search_mpi.sh [ROUNDS] [ITERS]      (defaults 3 rounds, 8000 iterations per trial)
#
# Workload: a random search of 8 sinusoid MAML candidates (inner/outer rate,
# inner steps, algorithm), one rung of ITERS iterations (--min-iters =
# --max-iters: every candidate is one trial), scored on 100 validation tasks.
# Configurations, alternated A/B/C in every round so a changing load hits
# them alike:
#   A: 1 process, --jobs 1     B: mpirun -np 2, --jobs 1 each     C: 1 process, --jobs 2
# (every trial --threads 1). Each point: the wall time of the whole command
# (mpirun's start included) and the search's own "seconds", with the 1-min
# load average at its start, to bench/results/search_mpi/points.jsonl; the
# summary (medians over rounds, speed-ups) to summary.txt. Every point's
# best.json must equal A's (the trials' results do not depend on where they ran).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"; ITERS="${2:-8000}"
BIN="${BIN:-$PWD/build/metalearn}"
OUT=bench/results/search_mpi; mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 # root in a container: this script only
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none
[ -x "$BIN" ] || { echo "build first: cmake -S . -B build && cmake --build build -j2"; exit 1; }
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/space.json" <<'EOF'
{"base": {"algo": "maml", "task": "sinusoid", "meta-batch": 5, "shots": 5, "query": 10, "eval-steps": "1,5"},
 "space": {"inner-lr": {"log_uniform": [0.001, 0.5]}, "inner-steps": {"int": [1, 3]},
           "outer-lr": {"log_uniform": [0.0001, 0.01]}, "algo": {"choice": ["maml", "fomaml", "metasgd"]}}}
EOF
ARGS=(search --space "$WORK/space.json" --budget 8 --min-iters "$ITERS" --max-iters "$ITERS" --threads 1
      --val-tasks 100 --json --quiet)
: > "$OUT/points.jsonl"
point() { # CONFIG RANKS JOBS
  local c="$1" np="$2" jobs="$3" load t0 t1 line dir="$WORK/$1_$r"
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N)
  if [ "$np" -gt 1 ]; then
    line=$(timeout 1800 mpirun --oversubscribe -np "$np" "$BIN" "${ARGS[@]}" --jobs "$jobs" --out "$dir" | tail -1)
  else line=$(timeout 1800 "$BIN" "${ARGS[@]}" --jobs "$jobs" --out "$dir" | tail -1); fi
  t1=$(date +%s.%N)
  local same=1
  [ "$c" = A ] && cp "$dir/best.json" "$WORK/best_A_$r.json"
  cmp -s "$dir/best.json" "$WORK/best_A_$r.json" || same=0
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(json.dumps({"config": sys.argv[2], "ranks": int(sys.argv[3]),
    "jobs": int(sys.argv[4]), "round": int(sys.argv[5]), "wall_seconds": round(float(sys.argv[7]) - float(sys.argv[6]), 3),
    "search_seconds": d["seconds"], "loadavg": float(sys.argv[8]), "best_trial": d["best_trial"],
    "best_json_equals_A": sys.argv[9] == "1", "trials": d["trials_run_now"], "iters": int(sys.argv[10])}))' \
    "$line" "$c" "$np" "$jobs" "$r" "$t0" "$t1" "$load" "$same" "$ITERS" | tee -a "$OUT/points.jsonl"
}
for r in $(seq "$ROUNDS"); do
  point A 1 1
  point B 2 1
  point C 1 2
done
python3 - "$OUT/points.jsonl" > "$OUT/summary.txt" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
name = {"A": "1 process x 1 job", "B": "mpirun -np 2 x 1 job", "C": "1 process x 2 jobs"}
print(f"nproc 2; 8 trials of {rows[0]['iters']} iterations; medians over {len(rows) // 3} rounds; "
      f"loadavg = 1-min load at the points' starts")
med = {}
for c in "ABC":
    pts = [r for r in rows if r["config"] == c]
    med[c] = (statistics.median(p["wall_seconds"] for p in pts), statistics.median(p["search_seconds"] for p in pts))
    loads = [p["loadavg"] for p in pts]
    same = all(p["best_json_equals_A"] for p in pts)
    print(f"{c}: {name[c]:22s} wall {med[c][0]:7.2f} s  search {med[c][1]:7.2f} s  "
          f"load {min(loads):.1f}-{max(loads):.1f}  best.json = A's: {same}")
print(f"speed-up B over A: {med['A'][0] / med['B'][0]:.2f}x wall, {med['A'][1] / med['B'][1]:.2f}x search")
print(f"C over A: {med['A'][0] / med['C'][0]:.2f}x wall;  B / C: {med['C'][0] / med['B'][0]:.2f}x wall")
PY
cat "$OUT/summary.txt"
