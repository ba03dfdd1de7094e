#!/usr/bin/env bash
# Ctrl-C on a 2-rank `metalearn train` under mpirun, N times, with Open MPI's
# default kill delay and with the tests' GRACE (tests/mpi/lib.sh): how often
# rank 0 gets to save and say "interrupted" before mpirun SIGKILLs the ranks.
# Usage: bash bench/flaky18/mpi_ctrlc.sh BIN [N] [LOADERS]
#   LOADERS busy loops run beside it (0: none), to mimic a loaded CI machine.
# One JSON line per setting: {"grace_s":..,"runs":N,"ok":K,"loadavg":".."}.
set -u
BIN="$(realpath "$1")"; N="${2:-10}"; LOADERS="${3:-0}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_tcp_if_include=lo \
  OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none
tmp=$(mktemp -d); loaders=()
cleanup() { for p in "${loaders[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq "$LOADERS"); do (while :; do :; done) & loaders+=($!); done
cd "$tmp" || exit 1
L="--algo maml --task sinusoid --meta-batch 5 --iters 1000000 --eval-tasks 0 --threads 1 --checkpoint-every 20 --quiet"
for grace in 1 3; do
  ok=0
  for i in $(seq "$N"); do
    rm -rf int
    env OMPI_MCA_odls_base_sigkill_timeout=$grace timeout 120 mpirun --oversubscribe -np 2 "$BIN" train $L --out int >int.txt 2>&1 &
    job=$!
    for _ in $(seq 600); do [ -e int/checkpoint.safetensors ] && break; sleep 0.1; done
    sleep 0.5
    kill -INT "$(pgrep -P $job -x mpirun)" 2>/dev/null
    wait $job; rc=$?
    grep -q "interrupted at iteration" int.txt && [ $rc -ne 124 ] && ok=$((ok + 1))
  done
  printf '{"grace_s":%d,"runs":%d,"ok":%d,"loaders":%d,"loadavg":"%s"}\n' "$grace" "$N" "$ok" "$LOADERS" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
