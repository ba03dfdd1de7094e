#!/usr/bin/env bash
# Few-shot Omniglot training speed: metalearn vs. PyTorch (bench/torch_omniglot.py),
# same configuration on both sides, 4-block CNN (64 filters, BN in batch-statistics mode):
#   maml2_5w1s_q15_mb32   second-order MAML, 5-way 1-shot, 15 queries/class,
#                         meta-batch 32, 1 inner step at lr 0.4, outer Adam 1e-3
#   fomaml_5w1s_q15_mb32  the same, first order
#   protonet_20w5s_q5     Prototypical Networks, 20-way 5-shot 5-query, 2 episodes
#                         per outer step (metalearn --meta-batch 2), Adam 1e-3
# Throughput = tasks (episodes) per second in the steady state: per implementation
# --warmup-* iterations are dropped, the rest is cut into --blocks blocks and the
# median block rate is taken (metalearn: from its per-iteration log.jsonl; its
# whole-loop iters_per_second is reported too). Torch uses random tensors of the
# right shapes (no data-dependent work, so equivalent for speed); metalearn reads
# the real Omniglot zips. Peak memory: max RSS (/usr/bin/time -v for metalearn,
# getrusage ru_maxrss for torch).
#
# Each repetition runs every configuration on both implementations, alternating
# which goes first. One JSON line per run, then the summary line
#   {"bench":"omniglot_speed","results":[{"config":..,"metalearn_tasks_per_s":..,
#    "torch_tasks_per_s":..,"speedup":..,"metalearn_peak_mb":..,"torch_peak_mb":..,..}]}
# with medians over repetitions; speedup = metalearn / torch (> 1: metalearn faster).
#
# Usage: bench/omniglot_vs_torch.sh [--reps 3] [--threads 2] [--configs maml2,fomaml,protonet]
#          [--maml-blocks 3] [--maml-block-iters 2] [--maml-warmup 1]
#          [--proto-blocks 3] [--proto-block-iters 10] [--proto-warmup 2] [--data DIR]
#   env: METALEARN (binary, default build/metalearn; copied first), ML_DATA_DIR
#   (data = $ML_DATA_DIR/omniglot, else ../shared/data/omniglot).
# Defaults take ~7-8 minutes on the shared 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=3 threads=2 configs=maml2,fomaml,protonet
maml_blocks=3 maml_block_iters=2 maml_warmup=1
proto_blocks=3 proto_block_iters=10 proto_warmup=2
data=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    --maml-blocks) maml_blocks="$2"; shift 2 ;;
    --maml-block-iters) maml_block_iters="$2"; shift 2 ;;
    --maml-warmup) maml_warmup="$2"; shift 2 ;;
    --proto-blocks) proto_blocks="$2"; shift 2 ;;
    --proto-block-iters) proto_block_iters="$2"; shift 2 ;;
    --proto-warmup) proto_warmup="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
if [ -z "$data" ]; then
  if [ -n "${ML_DATA_DIR:-}" ]; then data="$ML_DATA_DIR/omniglot"; else data=../shared/data/omniglot; fi
fi
zips="$data/images_background_small1.zip,$data/images_background_small2.zip"
for z in ${zips//,/ }; do [ -f "$z" ] || { echo "missing $z" >&2; exit 1; }; done
[ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is needed for peak RSS" >&2; exit 1; }

bin="${METALEARN:-build/metalearn}"
[ -x "$bin" ] || { echo "$bin missing (build it first: cmake --build build)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lines="$tmp/lines.jsonl"
: > "$lines"
# Snapshot the binary: others may rebuild build/ while the bench runs.
cp "$bin" "$tmp/metalearn"
ml_sha=$(sha256sum "$tmp/metalearn" | cut -c1-12)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_bench=$(date +%s)

cfg_args() { # config -> "algo ways shots query mb warmup blocks block_iters"
  case "$1" in
    maml2) echo "maml 5 1 15 32 $maml_warmup $maml_blocks $maml_block_iters" ;;
    fomaml) echo "fomaml 5 1 15 32 $maml_warmup $maml_blocks $maml_block_iters" ;;
    protonet) echo "protonet 20 5 5 2 $proto_warmup $proto_blocks $proto_block_iters" ;;
    *) echo "unknown config $1" >&2; exit 2 ;;
  esac
}

run_ml() { # rep config
  local algo ways shots query mb warm blocks bi out iters inner=()
  read -r algo ways shots query mb warm blocks bi <<< "$(cfg_args "$2")"
  iters=$((warm + blocks * bi))
  out="$tmp/ml_$1_$2"
  [ "$algo" = protonet ] || inner=(--inner-steps 1 --inner-lr 0.4)
  /usr/bin/time -v -o "$tmp/time.txt" "$tmp/metalearn" train --algo "$algo" --dataset "omniglot:$zips" \
    --ways "$ways" --shots "$shots" --query "$query" --meta-batch "$mb" "${inner[@]}" --outer-lr 0.001 \
    --iters "$iters" --threads "$threads" --eval-tasks 0 --log-every 1 --checkpoint-every 1000000 \
    --seed "$1" --quiet --json --out "$out" > "$tmp/ml.out"
  REP="$1" CFG="$2" MB="$mb" WARM="$warm" BLOCKS="$blocks" BI="$bi" $PY - "$tmp/ml.out" "$out/log.jsonl" "$tmp/time.txt" <<'EOF' | tee -a "$lines"
import json, os, re, statistics, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
el = [json.loads(l)["elapsed_s"] for l in open(sys.argv[2])]
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[3]).read()).group(1))
mb, warm, blocks, bi = (int(os.environ[k]) for k in ("MB", "WARM", "BLOCKS", "BI"))
assert len(el) == warm + blocks * bi, (len(el), warm, blocks, bi)
t = [0.0] + el
blk = [(t[warm + (b + 1) * bi] - t[warm + b * bi]) / bi for b in range(blocks)]
s = statistics.median(blk)
print(json.dumps({"bench": "omniglot_speed", "impl": "metalearn", "config": os.environ["CFG"], "rep": int(os.environ["REP"]),
  "threads": d["threads"], "iters": d["iterations"], "meta_batch": mb, "warmup_iters": warm,
  "block_seconds_per_iter": [round(x, 4) for x in blk], "seconds_per_iter": round(s, 4),
  "tasks_per_second": round(mb / s, 3), "whole_loop_iters_per_second": d["iters_per_second"],
  "whole_loop_tasks_per_second": round(d["iters_per_second"] * mb, 3), "train_seconds": d["train_seconds"],
  "peak_mb": round(rss_kb / 1024.0, 1)}))
EOF
  rm -rf "$out"
}

run_torch() { # rep config
  local algo ways shots query mb warm blocks bi
  read -r algo ways shots query mb warm blocks bi <<< "$(cfg_args "$2")"
  $PY bench/torch_omniglot.py --config "$2" --warmup "$warm" --blocks "$blocks" --iters "$bi" \
    --threads "$threads" --seed "$1" --quiet > "$tmp/torch.out"
  REP="$1" $PY - "$tmp/torch.out" <<'EOF' | tee -a "$lines"
import json, os, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
d.update(bench="omniglot_speed", rep=int(os.environ["REP"]))
print(json.dumps(d))
EOF
}

for rep in $(seq 1 "$reps"); do
  for cfg in ${configs//,/ }; do
    if [ $((rep % 2)) -eq 1 ]; then run_ml "$rep" "$cfg"; run_torch "$rep" "$cfg"
    else run_torch "$rep" "$cfg"; run_ml "$rep" "$cfg"; fi
  done
done

ML_SHA="$ml_sha" REPS="$reps" THREADS="$threads" LOAD0="$load_start" SECS=$(( $(date +%s) - t_bench )) \
  $PY - "$lines" <<'EOF'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
PEAK = 234.0  # GFLOP/s, 2-core FP32 FMA peak measured on this machine (117 per core)
# Forward FLOPs per 1x28x28 image: convs 2*Cout*H*W*Cin*9 (+ head 2*64*ways for MAML).
F = sum(2 * co * hw * hw * ci * 9 for ci, co, hw in [(1, 64, 28), (64, 64, 14), (64, 64, 7), (64, 64, 3)])
CFG = {  # name -> (result name, unit, flops per task)
  "maml2": ("maml2_5w1s_q15_mb32", "tasks", lambda: 3 * (F + 640) * 5 + 3 * (F + 640) * 75 + 4 * (F + 640) * 5),
  "fomaml": ("fomaml_5w1s_q15_mb32", "tasks", lambda: 3 * (F + 640) * 5 + 3 * (F + 640) * 75),
  "protonet": ("protonet_20w5s_q5", "episodes", lambda: 3 * F * 200),
}
med = lambda xs: statistics.median(xs) if xs else None
r3 = lambda x, n=3: None if x is None else round(x, n)
results = []
for key, (name, unit, fl) in CFG.items():
    ml = [r for r in rows if r["impl"] == "metalearn" and r["config"] == key]
    tt = [r for r in rows if r["impl"] == "torch" and r["config"] == key]
    if not ml and not tt:
        continue
    gft = fl() / 1e9
    mt, tq = med([r["tasks_per_second"] for r in ml]), med([r["tasks_per_second"] for r in tt])
    res = {"config": name, "unit": unit,
           "metalearn_tasks_per_s": r3(mt), "torch_tasks_per_s": r3(tq),
           "speedup": r3(mt / tq) if mt and tq else None,
           "metalearn_peak_mb": r3(med([r["peak_mb"] for r in ml]), 1), "torch_peak_mb": r3(med([r["peak_mb"] for r in tt]), 1),
           "gflop_per_task": round(gft, 4),
           "metalearn_gflops": r3(mt * gft if mt else None, 2), "torch_gflops": r3(tq * gft if tq else None, 2),
           "metalearn_peak_share": r3(mt * gft / PEAK if mt else None), "torch_peak_share": r3(tq * gft / PEAK if tq else None),
           "metalearn_whole_loop_tasks_per_s": r3(med([r["whole_loop_tasks_per_second"] for r in ml])),
           "metalearn_tasks_per_s_reps": [r["tasks_per_second"] for r in ml],
           "torch_tasks_per_s_reps": [r["tasks_per_second"] for r in tt]}
    if unit == "episodes":
        res["metalearn_episodes_per_s"], res["torch_episodes_per_s"] = res["metalearn_tasks_per_s"], res["torch_tasks_per_s"]
    results.append(res)
t0 = next((r for r in rows if r["impl"] == "torch"), {})
print(json.dumps({"bench": "omniglot_speed", "results": results,
  "setup": {"reps": int(os.environ["REPS"]), "threads": int(os.environ["THREADS"]), "metalearn_sha256_12": os.environ["ML_SHA"],
            "torch_version": t0.get("torch"), "torch_memory_format": t0.get("memory_format"), "torch_env": t0.get("env"),
            "torch_data": "random tensors of the right shapes", "metalearn_data": "Omniglot images_background_small1+2 zips",
            "fwd_mflop_per_image_convs": round(F / 1e6, 4), "peak_gflops_2core": PEAK,
            "flop_rule": "convs (+MAML head) only; backward = 2x forward; maml2 task = 3F*support + 3F*query + 4F*support "
                         "(second-order pass through the inner fwd+bwd); fomaml = 3F*support + 3F*query; protonet episode = 3F*(support+query)",
            "loadavg_at_start": os.environ["LOAD0"], "loadavg_at_end": " ".join(open("/proc/loadavg").read().split()[:3]), "bench_seconds": int(os.environ["SECS"])},
  "note": "steady-state medians over reps (warm-up dropped, median block); shared 2-core machine, other jobs may run "
          "concurrently (see loadavg): absolute rates are depressed and noisy, compare the pairs; speedup = metalearn / torch"}))
EOF
