#!/usr/bin/env bash
# Speed of second-order MAML on the sinusoid family: metalearn vs. PyTorch
# (bench/torch_maml_sinusoid.py, same configuration: 1-40-40-1 ReLU MLP,
# meta-batch 25, K=10 support + 10 query, one inner SGD step at 0.01 with
# create_graph, MSE, outer Adam 1e-3).
#
# Each repetition runs, alternating: metalearn --threads T, metalearn
# --threads 1, torch (threads: best of 1 and 2 unless --torch-threads N).
# Prints one JSON line per run, then a summary line whose speedup_median is
# torch_ms_per_iter_median / metalearn_ms_per_iter_median (> 1: metalearn
# faster). Medians, because the 2-core machine is shared and noisy.
#
# Usage: bench/maml_sinusoid_vs_torch.sh [--reps R] [--ml-iters N] [--torch-iters N]
#          [--threads T] [--torch-threads 0|1|2] [--blas auto|system] [--base BIN]
#   --base BIN: also run another metalearn binary (e.g. main's build) with
#   --threads T in each repetition, alternated with the others; the summary
#   then has base_ms_per_iter_median and speedup_vs_base_median.
#   --blas auto (default): if the system libblas.so.3 is not OpenBLAS but the
#   system libblas.so.3 is not OpenBLAS, give torch the installed OpenBLAS
#   (libopenblas0-pthread, from scripts/install-deps.sh --bench) via LD_LIBRARY_PATH
#   (the system BLAS is the netlib reference one, ~2x slower for torch here).
#   Nothing is installed system-wide. --blas system: torch as installed.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=3 ml_iters=3000 torch_iters=1000 threads=2 torch_threads=0 blas=auto base=
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --ml-iters) ml_iters="$2"; shift 2 ;;
    --torch-iters) torch_iters="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --torch-threads) torch_threads="$2"; shift 2 ;;
    --blas) blas="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3

# metalearn binary (others may be editing the tree: retry a broken build).
if [ ! -x build/metalearn ]; then
  for attempt in 1 2 3 4; do
    if cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 >/dev/null; then break; fi
    echo "build failed (attempt $attempt), retrying in 60 s" >&2; sleep 60
  done
fi
[ -x build/metalearn ] || { echo "build/metalearn missing" >&2; exit 1; }

# BLAS for torch.
torch_env=()
if [ "$blas" = auto ]; then
  # Debian's torch uses whatever libblas.so.3 the alternatives system picks;
  # scripts/install-deps.sh --bench installs OpenBLAS (pthreads), which normally
  # becomes that choice. If the reference BLAS is still selected, point torch
  # alone at OpenBLAS.
  sysblas=$(readlink -f /lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
  libdir=/usr/lib/x86_64-linux-gnu/openblas-pthread
  if [[ "$sysblas" != *openblas* && -e "$libdir/libblas.so.3" ]]; then
    torch_env=(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lines="$tmp/lines.jsonl"
: > "$lines"
# Snapshot the binary: others may rebuild build/ while the bench runs.
cp build/metalearn "$tmp/metalearn"
ml_sha=$(sha256sum "$tmp/metalearn" | cut -c1-12)
if [ -n "$base" ]; then cp "$base" "$tmp/base_metalearn"; fi

run_ml() { # rep threads [binary impl-name]
  local out="$tmp/ml_$1_$2" last bin="${3:-$tmp/metalearn}" impl="${4:-metalearn}"
  last=$("$bin" train --algo maml --task sinusoid --model mlp:40,40 --shots 10 --query 10 \
    --meta-batch 25 --inner-steps 1 --inner-lr 0.01 --outer-lr 0.001 --optimizer adam --seed 1 \
    --iters "$ml_iters" --threads "$2" --eval-tasks 0 \
    --quiet --json --out "$out" | tail -n 1)
  rm -rf "$out"
  IMPL="$impl" REP="$1" LAST="$last" $PY -c '
import json, os
d = json.loads(os.environ["LAST"])
print(json.dumps({"bench": "maml_sinusoid", "impl": os.environ["IMPL"], "rep": int(os.environ["REP"]),
  "threads": d["threads"], "iters": d["iterations"], "train_seconds": d["train_seconds"],
  "ms_per_iter": round(1000.0 / d["iters_per_second"], 4)}))' | tee -a "$lines"
}

run_torch() { # rep
  local last
  last=$(env "${torch_env[@]}" $PY bench/torch_maml_sinusoid.py --iters "$torch_iters" --warmup 50 --blocks 5 \
    --threads "$torch_threads" --seed "$1" --quiet | tail -n 1)
  REP="$1" LAST="$last" $PY -c '
import json, os
d = json.loads(os.environ["LAST"])
d.update(bench="maml_sinusoid", impl="torch", rep=int(os.environ["REP"]), ms_per_iter=d["ms_per_iter_median"])
print(json.dumps(d))' | tee -a "$lines"
}

for rep in $(seq 1 "$reps"); do
  run_ml "$rep" "$threads"
  run_ml "$rep" 1
  run_torch "$rep"
  if [ -n "$base" ]; then run_ml "$rep" "$threads" "$tmp/base_metalearn" base; fi
done

ML_SHA="$ml_sha" THREADS="$threads" ML_ITERS="$ml_iters" TORCH_ITERS="$torch_iters" REPS="$reps" $PY - "$lines" <<'EOF'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
T = int(os.environ["THREADS"])
med = lambda xs: round(statistics.median(xs), 4) if xs else None
ml = [r["ms_per_iter"] for r in rows if r["impl"] == "metalearn" and r["threads"] == T]
ml1 = [r["ms_per_iter"] for r in rows if r["impl"] == "metalearn" and r["threads"] == 1]
tt = [r for r in rows if r["impl"] == "torch"]
tm = [r["ms_per_iter"] for r in tt]
bm = [r["ms_per_iter"] for r in rows if r["impl"] == "base"]
print(json.dumps({
  "bench": "maml_sinusoid",
  "config": {"model": "mlp 1-40-40-1 relu", "meta_batch": 25, "shots": 10, "query": 10, "inner_steps": 1,
             "inner_lr": 0.01, "second_order": True, "outer": "adam", "outer_lr": 0.001,
             "reps": int(os.environ["REPS"]), "metalearn_iters": int(os.environ["ML_ITERS"]),
             "torch_iters": int(os.environ["TORCH_ITERS"]), "torch_warmup": 50, "metalearn_threads": T, "metalearn_sha256_12": os.environ["ML_SHA"],
             "torch_threads": sorted({r["threads"] for r in tt}), "torch_version": tt[0]["torch"] if tt else None,
             "torch_blas": tt[0].get("blas") if tt else None},
  "metalearn_ms_per_iter_median": med(ml),
  "metalearn_threads1_ms_per_iter_median": med(ml1),
  "torch_ms_per_iter_median": med(tm),
  "speedup_median": round(med(tm) / med(ml), 3) if ml and tm else None,
  "speedup_threads1_median": round(med(tm) / med(ml1), 3) if ml1 and tm else None,
  "base_ms_per_iter_median": med(bm),
  "speedup_vs_base_median": round(med(bm) / med(ml), 3) if ml and bm else None,
  "load_average_1min": round(os.getloadavg()[0], 2),
  "note": "medians over reps; shared noisy 2-core machine; speedup = torch ms / metalearn ms",
}))
EOF
