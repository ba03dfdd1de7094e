#!/usr/bin/env bash
# Supervised training data-parallel over gradient shards (issue 14 part 1,
# issue 17): examples per second of `metalearn train --algo supervised` on
# the supervised config of bench/supervised_vs_torch.sh (cnn4, 64 filters,
# batch 64, Adam 1e-3), one command:
#
#   bash bench/supervised_scaling.sh [ROUNDS] [LIMIT] [EPOCHS]   (defaults 5, 2048, 2)
#
# Data: Fashion-MNIST from Debian's dataset-fashion-mnist when installed
# (ML_FASHION_DIR or /usr/share/dataset-fashion-mnist... as the source table
# says), else a generated Fashion-MNIST-shaped IDX set (28x28, 10 classes, a
# class-dependent bar under noise; LIMIT training images), which the summary
# names. Configurations, alternated in every round so machine load hits
# them alike; all but A0/D0 use --shards 2, so A, B and C train the same bits
# (checked: their checkpoints must be byte-identical):
#   A0: 1 process x 1 thread,  --shards 1 (the plain minibatch step)
#   D0: 1 process x 2 threads, --shards 1 (threads inside the kernels)
#   A:  1 process x 1 thread,  --shards 2
#   B:  1 process x 2 threads, --shards 2 (a shard per thread)
#   C:  mpirun -np 2 x 1 thread, --shards 2 (a shard per rank)
# Each point trains EPOCHS epochs; its speed is the last epoch's examples/s
# (the first warms the arenas) from log.jsonl (rank 0's clock: under mpirun
# it includes waiting for the other rank), and its CPU milliseconds per
# example (all processes and threads: a busy machine barely changes it, so
# it shows the work sharding adds; 2 x CPU(A) / CPU(X) bounds X's speed-up
# on 2 idle cores). Lines go to
# bench/results/supdp/scaling.jsonl with the 1-minute load average at each
# point's start; the summary (medians over rounds, ratios) to
# bench/results/supdp/scaling_summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-5}"; LIMIT="${2:-2048}"; EPOCHS="${3:-2}"
BIN="${BIN:-build/metalearn}"
OUT=bench/results/supdp; mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 # root in a container: this script only
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none
[ -x "$BIN" ] || { echo "build first: cmake -S . -B build && cmake --build build -j2"; exit 1; }
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

if "$BIN" train --algo supervised --dataset fashion-mnist --epochs 1 --limit 128 --quiet >/dev/null 2>&1; then
  DS=fashion-mnist; DATA_NOTE="Fashion-MNIST (Debian dataset-fashion-mnist), first $LIMIT training images"
else
  python3 - "$WORK/data" "$LIMIT" <<'PY'
import gzip, os, random, struct, sys
d, n = sys.argv[1], int(sys.argv[2]); os.makedirs(d, exist_ok=True)
rng = random.Random(0)
def write(split, n):
    imgs, labels = bytearray(os.urandom(n * 784)), bytearray()
    for i in range(n):
        k = rng.randrange(10); labels.append(k)
        img = memoryview(imgs)[i * 784:(i + 1) * 784]
        for p in range(784): img[p] = img[p] // 4           # noise 0..63
        r = 3 + 2 * k
        for c in range(4, 24): img[r * 28 + c] = 255; img[(r + 1) * 28 + c] = 200
    with gzip.open(f"{d}/{split}-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(imgs))
    with gzip.open(f"{d}/{split}-labels-idx1-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))
write("train", n); write("t10k", 500)
PY
  DS="idx:$WORK/data"; DATA_NOTE="generated Fashion-MNIST-shaped IDX set (28x28, 10 classes, $LIMIT training images): no Fashion-MNIST here"
fi
S=(train --algo supervised --dataset "$DS" --model cnn4 --batch-size 64 --lr 1e-3 --limit "$LIMIT" --epochs "$EPOCHS" --quiet)

: > "$OUT/scaling.jsonl"
point() { # CONFIG RANKS THREADS SHARDS ROUND
  local c="$1" np="$2" th="$3" g="$4" r="$5" load
  load=$(cut -d' ' -f1 /proc/loadavg)
  rm -rf "$WORK/$c"
  if [ "$np" -gt 1 ]; then timeout 1800 mpirun --oversubscribe -np "$np" "$BIN" "${S[@]}" --threads "$th" --shards "$g" --out "$WORK/$c" >/dev/null
  else timeout 1800 "$BIN" "${S[@]}" --threads "$th" --shards "$g" --out "$WORK/$c" >/dev/null; fi
  python3 - "$WORK/$c/log.jsonl" "$c" "$np" "$th" "$g" "$load" "$r" "$LIMIT" <<'PY' | tee -a "$OUT/scaling.jsonl"
import json, sys
last = [json.loads(l) for l in open(sys.argv[1])][-1]
limit = int(sys.argv[8]); steps = limit // 64
print(json.dumps({"config": sys.argv[2], "ranks": int(sys.argv[3]), "threads": int(sys.argv[4]), "shards": int(sys.argv[5]),
                  "epoch": last["epoch"], "epoch_seconds": last["seconds"], "examples_per_second": steps * 64 / last["seconds"],
                  "cpu_ms_per_example": 1000 * last["cpu_seconds"] / (steps * 64),
                  "loss": last["loss"], "loadavg": float(sys.argv[6]), "round": int(sys.argv[7])}))
PY
  cp "$WORK/$c/checkpoint.safetensors" "$WORK/$c.safetensors"
}
for r in $(seq "$ROUNDS"); do
  point A0 1 1 1 "$r"; point A 1 1 2 "$r"; point B 1 2 2 "$r"; point C 2 1 2 "$r"; point D0 1 2 1 "$r"
  cmp -s "$WORK/A.safetensors" "$WORK/B.safetensors" && cmp -s "$WORK/A.safetensors" "$WORK/C.safetensors" \
    || { echo "round $r: A, B and C checkpoints differ" >&2; exit 1; }
done
python3 - "$OUT/scaling.jsonl" "$DATA_NOTE" "$(nproc)" > "$OUT/scaling_summary.txt" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"data: {sys.argv[2]}; nproc {sys.argv[3]}; cnn4 (64 filters), batch 64, Adam 1e-3")
print("median and best over rounds of the last epoch's examples/s (best: the least disturbed round, what a busy "
      "machine lets through); loadavg = 1-min load at the points' starts")
med, best, cpu = {}, {}, {}
for c in ["A0", "D0", "A", "B", "C"]:
    pts = [r for r in rows if r["config"] == c]
    med[c] = statistics.median(p["examples_per_second"] for p in pts)
    best[c] = max(p["examples_per_second"] for p in pts)
    cpu[c] = statistics.median(p["cpu_ms_per_example"] for p in pts)
    loads = [p["loadavg"] for p in pts]
    p0 = pts[0]
    print(f"{c}: {p0['ranks']} rank(s) x {p0['threads']} thread(s), --shards {p0['shards']}: {med[c]:.1f} examples/s (best {best[c]:.1f}) "
          f"({[round(p['examples_per_second'], 1) for p in pts]}), load {min(loads):.1f}-{max(loads):.1f}, "
          f"CPU {cpu[c]:.3f} ms/example (whole job)")
for what, a, b in [("1 process x 2 threads vs 1 x 1 (--shards 2)", "B", "A"),
                   ("2 ranks x 1 thread vs 1 x 1 (--shards 2)", "C", "A"),
                   ("2 ranks x 1 thread vs 1 process x 2 threads (--shards 2)", "C", "B"),
                   ("--shards 2 vs --shards 1 on 1 thread", "A", "A0"),
                   ("--shards 1: 2 threads inside the kernels vs 1", "D0", "A0"),
                   ("--shards 2 on 2 threads vs --shards 1 on 2 threads", "B", "D0")]:
    print(f"{what} ({a}/{b}): median {med[a] / med[b]:.2f}x, best {best[a] / best[b]:.2f}x, CPU per example {cpu[a] / cpu[b]:.2f}")
print(f"bound on 2 idle cores from CPU time (2 x CPU(A) / CPU(X); MPI's polling counts as work): "
      f"B {2 * cpu['A'] / cpu['B']:.2f}x, C {2 * cpu['A'] / cpu['C']:.2f}x over A")
PY
cat "$OUT/scaling_summary.txt"
