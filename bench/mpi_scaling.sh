#!/usr/bin/env bash
# Data-parallel speed-up of meta-training under mpirun (issue 14), one command:
#
#   bash bench/mpi_scaling.sh [ROUNDS] [ITERS]      (defaults 3 rounds, 5 timed iterations)
#
# Workloads: second-order MAML, 2 inner steps, Omniglot 5-way 1-shot, 15 queries,
# meta-batch 32; ProtoNet 20-way 5-shot, 15 queries, meta-batch 8 (ProtoNet's
# default meta-batch of 1 leaves nothing to split). Configurations, alternated
# A/B/C in every round so a changing machine load hits them alike:
#   A: 1 process x 1 thread   B: mpirun -np 2 x 1 thread   C: 1 process x 2 threads
# Each point is `metalearn bench` (1 warm-up, ITERS timed iterations, the median
# iteration; under mpirun the slowest rank's). Lines go to
# bench/results/mpi/scaling.jsonl with the load average at the start of each
# point; the summary (medians over rounds, speed-ups) to scaling_summary.txt.
# Needs a build with MPI (build/metalearn), Omniglot in ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"; ITERS="${2:-5}"
BIN="${BIN:-build/metalearn}"
DATA="${ML_DATA_DIR:-../shared/data}/omniglot"
DS="omniglot:$DATA/images_background_small1.zip,$DATA/images_background_small2.zip"
OUT=bench/results/mpi; mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 # root in a container: this script only
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
[ -x "$BIN" ] || { echo "build first: cmake -S . -B build && cmake --build build -j2"; exit 1; }
[ -f "$DATA/images_background_small1.zip" ] || { echo "no Omniglot in $DATA"; exit 1; }

declare -A WORK=(
  [maml2_5w1s]="--algo maml --dataset $DS --ways 5 --shots 1 --query 15 --meta-batch 32 --inner-steps 2"
  [protonet_20w5s]="--algo protonet --dataset $DS --ways 20 --shots 5 --query 15 --meta-batch 8"
)
: > "$OUT/scaling.jsonl"
point() { # WORKLOAD CONFIG RANKS THREADS
  local w="$1" c="$2" np="$3" th="$4" load line
  load=$(cut -d' ' -f1 /proc/loadavg)
  local cmd=("$BIN" bench ${WORK[$w]} --threads "$th" --warmup 1 --iters "$ITERS" --json)
  if [ "$np" -gt 1 ]; then line=$(timeout 1800 mpirun -np "$np" "${cmd[@]}" 2>/dev/null | tail -1)
  else line=$(timeout 1800 "${cmd[@]}" 2>/dev/null | tail -1); fi
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(workload=sys.argv[2], config=sys.argv[3], loadavg=float(sys.argv[4]), round=int(sys.argv[5])); print(json.dumps(d))' \
    "$line" "$w" "$c" "$load" "$r" | tee -a "$OUT/scaling.jsonl"
}
for r in $(seq "$ROUNDS"); do
  for w in maml2_5w1s protonet_20w5s; do
    point "$w" A 1 1
    point "$w" B 2 1
    point "$w" C 1 2
  done
done
python3 - "$OUT/scaling.jsonl" > "$OUT/scaling_summary.txt" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("nproc 2; medians over rounds of each point's median s/iteration; loadavg = 1-min load at the points' starts")
for w in sorted({r["workload"] for r in rows}):
    med, cpu = {}, {}
    for c in "ABC":
        pts = [r for r in rows if r["workload"] == w and r["config"] == c]
        med[c] = statistics.median(p["seconds_per_iter_median"] for p in pts)
        loads = [p["loadavg"] for p in pts]
        comm = statistics.median(p.get("comm_bytes_per_iter", 0) for p in pts) / 1e6
        share = statistics.median(p.get("comm_time_share", 0) for p in pts) * 100
        cpu[c] = statistics.median(p["cpu_seconds_per_iter"] for p in pts)
        print(f"{w} {c}: {med[c]:.4f} s/iter  ({[round(p['seconds_per_iter_median'], 4) for p in pts]}), "
              f"CPU {cpu[c]:.3f} s/iter, load {min(loads):.1f}-{max(loads):.1f}, comm {comm:.2f} MB/iter, "
              f"{share:.1f}% of rank 0's time")
    print(f"{w}: speed-up 2 ranks x 1 thread vs 1 x 1: {med['A'] / med['B']:.2f}x; "
          f"2 ranks x 1 thread vs 1 rank x 2 threads: {med['C'] / med['B']:.2f}x; "
          f"CPU of 2 ranks / 1 process: {cpu['B'] / cpu['A']:.2f} (1.00 = no work added by the split; "
          f"2 / that = the speed-up bound on 2 idle cores)")
PY
cat "$OUT/scaling_summary.txt"
