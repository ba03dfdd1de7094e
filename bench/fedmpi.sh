#!/usr/bin/env bash
# Federated ProtoNet on Omniglot (8 clients by alphabet) in one process vs
# clients on MPI ranks: wall time, payload per round, and whether the
# checkpoints are byte-identical. Writes bench/results/fedmpi/fedmpi.json.
# Usage: bash bench/fedmpi.sh [BUILD_DIR] [ROUNDS]
set -u
BIN="$(cd "${1:-build}" && pwd)/metalearn"; ROUNDS="${2:-10}"
DATA="$(cd "${ML_DATA_DIR:-../shared/data}/omniglot" && pwd)"
OUT="$(cd "$(dirname "$0")" && pwd)/results/fedmpi"; mkdir -p "$OUT"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_tcp_if_include=lo \
  OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none
A=(--federated --algo protonet --dataset "omniglot:$DATA/images_background_small1.zip,$DATA/images_background_small2.zip"
   --model cnn4:64 --ways 5 --shots 1 --query 5 --meta-batch 4 --clients 8 --client-fraction 1 --local-iters 2
   --rounds "$ROUNDS" --eval-tasks 0 --seed 1 --quiet --log-every 1)
run() { local name="$1"; shift; local t0=$(date +%s.%N); "$@" --out "$TMP/$name" >"$TMP/$name.txt" 2>&1 || { tail -5 "$TMP/$name.txt"; exit 1; }
        python3 -c "print(round($(date +%s.%N) - $t0, 2))"; }
t1=$(run p1t2 "$BIN" train "${A[@]}" --threads 2)
t3=$(run r3t1 timeout 900 mpirun --oversubscribe -np 3 "$BIN" train "${A[@]}" --threads 1)
t9=$(run r9t1 timeout 900 mpirun --oversubscribe -np 9 "$BIN" train "${A[@]}" --threads 1)
same3=$(cmp -s "$TMP/p1t2/checkpoint.safetensors" "$TMP/r3t1/checkpoint.safetensors" && echo true || echo false)
same9=$(cmp -s "$TMP/p1t2/checkpoint.safetensors" "$TMP/r9t1/checkpoint.safetensors" && echo true || echo false)
bytes=$(python3 -c "import json; print(json.loads(open('$TMP/r3t1/log.jsonl').readlines()[-1])['round_bytes'])")
cat > "$OUT/fedmpi.json" <<JSON
{"rounds": $ROUNDS, "clients": 8, "model": "cnn4:64", "learner": "protonet 5w1s q5, meta-batch 4, 2 local iters",
 "machine_cores": $(nproc), "one_process_2_threads_s": $t1, "mpi_3_ranks_1_thread_s": $t3, "mpi_9_ranks_1_thread_s": $t9,
 "round_bytes": $bytes, "identical_3_ranks": $same3, "identical_9_ranks": $same9}
JSON
cat "$OUT/fedmpi.json"
