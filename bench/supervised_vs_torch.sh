#!/usr/bin/env bash
# supervised_vs_torch.sh: seconds per epoch of supervised cnn4 training on
# Fashion-MNIST, metalearn vs the same model in PyTorch (bench/torch_supervised.py).
#
# Usage: bench/supervised_vs_torch.sh [--limit N] [--epochs E] [--batch-size B]
#            [--threads T] [--repeats R] [--seed S] [--metalearn PATH] [--no-build]
#            [--torch-args "ARGS"]
# Every option can also be given by environment: LIMIT EPOCHS BATCH THREADS
# REPEATS SEED METALEARN NO_BUILD=1 TORCH_ARGS PYTHON (default /usr/bin/python3).
#
# stdout: one JSON line per run ({"bench":"supervised_cnn4","repeat":i,"impl":...}),
# then one summary JSON line (always the last line). Progress and the child
# processes' logs go to stderr / $LOG_DIR. The two implementations alternate
# (metalearn first on odd repeats, torch first on even ones) and the summary
# reports medians, since the machine is shared and noisy.
# speedup = torch seconds per epoch / metalearn seconds per epoch (> 1: metalearn faster).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIMIT=${LIMIT:-12000}
EPOCHS=${EPOCHS:-2}
BATCH=${BATCH:-64}
THREADS=${THREADS:-2}
REPEATS=${REPEATS:-3}
SEED=${SEED:-1}
LR=${LR:-1e-3}
METALEARN=${METALEARN:-$ROOT/build/metalearn}
NO_BUILD=${NO_BUILD:-0}
TORCH_ARGS=${TORCH_ARGS:-}
PYTHON=${PYTHON:-/usr/bin/python3}

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --limit) LIMIT=$2; shift 2 ;;
        --epochs) EPOCHS=$2; shift 2 ;;
        --batch-size) BATCH=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --repeats) REPEATS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --metalearn) METALEARN=$2; shift 2 ;;
        --no-build) NO_BUILD=1; shift ;;
        --torch-args) TORCH_ARGS=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "supervised_vs_torch: unknown option '$1'" >&2; usage 2 ;;
    esac
done
for v in LIMIT EPOCHS BATCH THREADS REPEATS SEED; do
    case "${!v}" in ''|*[!0-9]*) echo "supervised_vs_torch: $v must be a non-negative integer" >&2; exit 2 ;; esac
done
[ "$REPEATS" -ge 1 ] && [ "$EPOCHS" -ge 1 ] && [ "$THREADS" -ge 1 ] || { echo "supervised_vs_torch: repeats, epochs and threads must be >= 1" >&2; exit 2; }

LOG_DIR=${LOG_DIR:-$(mktemp -d /tmp/supervised_vs_torch.XXXXXX)}
mkdir -p "$LOG_DIR"
note() { echo "supervised_vs_torch: $*" >&2; }

# ---- build metalearn (current sources); fall back to the existing binary or a direct gcc build
if [ "$NO_BUILD" != 1 ]; then
    if { [ -f "$ROOT/build/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >"$LOG_DIR/build.log" 2>&1; } &&
        cmake --build "$ROOT/build" -j2 --target metalearn >>"$LOG_DIR/build.log" 2>&1; then
        :
    elif [ -x "$METALEARN" ]; then
        note "cmake build failed (see $LOG_DIR/build.log); using the existing $METALEARN"
    else
        note "cmake build failed; building with gcc directly into $LOG_DIR/metalearn"
        (cd "$ROOT" && gcc -O3 -march=native -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc \
            $(find src -name '*.c') -ldnnl -fopenmp -lz -lm -o "$LOG_DIR/metalearn") >>"$LOG_DIR/build.log" 2>&1 ||
            { note "gcc build failed too, see $LOG_DIR/build.log"; exit 1; }
        METALEARN=$LOG_DIR/metalearn
    fi
fi
[ -x "$METALEARN" ] || { note "no metalearn binary at $METALEARN"; exit 1; }
"$PYTHON" -c 'import torch, numpy' 2>/dev/null || { note "$PYTHON cannot import torch and numpy"; exit 1; }

CONFIG=$("$PYTHON" - "$LIMIT" "$EPOCHS" "$BATCH" "$THREADS" "$REPEATS" "$SEED" "$LR" "$TORCH_ARGS" <<'EOF'
import json, os, sys
l, e, b, t, r, s, lr, ta = sys.argv[1:]
print(json.dumps({"model": "cnn4", "dataset": "fashion-mnist", "limit": int(l), "epochs": int(e), "batch_size": int(b),
                  "threads": int(t), "repeats": int(r), "seed": int(s), "lr": float(lr), "optimizer": "adam",
                  "torch_args": ta, "nproc": os.cpu_count(), "loadavg_start": os.getloadavg()[0],
                  "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE")}, separators=(",", ":")))
EOF
)

# run_one IMPL REPEAT: runs one training, prints its JSON result line on stdout.
run_one() {
    local impl=$1 rep=$2 out=$LOG_DIR/$1.$2.out err=$LOG_DIR/$1.$2.err rc=0
    note "repeat $rep/$REPEATS: $impl ..."
    if [ "$impl" = metalearn ]; then
        "$METALEARN" train --algo supervised --dataset fashion-mnist --model cnn4 --epochs "$EPOCHS" \
            --batch-size "$BATCH" --lr "$LR" --optimizer adam --seed "$SEED" --threads "$THREADS" \
            --json --limit "$LIMIT" >"$out" 2>"$err" || rc=$?
    else
        # shellcheck disable=SC2086
        "$PYTHON" "$ROOT/bench/torch_supervised.py" --epochs "$EPOCHS" --batch-size "$BATCH" --lr "$LR" \
            --seed "$SEED" --threads "$THREADS" --limit "$LIMIT" $TORCH_ARGS >"$out" 2>"$err" || rc=$?
    fi
    "$PYTHON" - "$impl" "$rep" "$rc" "$out" "$err" <<'EOF'
import json, re, sys
impl, rep, rc, out, err = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
row = {"bench": "supervised_cnn4", "repeat": rep, "impl": impl}
lines = [l for l in open(out).read().splitlines() if l.strip()]
try:
    d = json.loads(lines[-1]) if rc == 0 and lines else None
except ValueError:
    d = None
if d is None:
    row.update({"ok": False, "exit_code": rc, "error": (open(err).read().strip().splitlines() or ["no output"])[-1]})
else:
    eps = d.get("epoch_seconds") or [float(m) for m in re.findall(r"^epoch \d+/\d+ .* ([0-9.]+) s$", open(err).read(), re.M)]
    row.update({"ok": True, "seconds_per_epoch": d["seconds_per_epoch"], "epoch_seconds": eps,
                "train_seconds": d["train_seconds"], "test_accuracy": d["test_accuracy"],
                "final_train_loss": d.get("final_train_loss"), "threads": d.get("threads"),
                "train_examples": d.get("train_examples")})
print(json.dumps(row, separators=(",", ":")))
EOF
}

ROWS=$LOG_DIR/rows.jsonl
: >"$ROWS"
for rep in $(seq 1 "$REPEATS"); do
    if [ $((rep % 2)) -eq 1 ]; then order="metalearn torch"; else order="torch metalearn"; fi
    for impl in $order; do
        run_one "$impl" "$rep" | tee -a "$ROWS"
    done
done

"$PYTHON" - "$ROWS" "$CONFIG" "$LOG_DIR" <<'EOF'
import json, os, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
config = json.loads(sys.argv[2])
config["loadavg_end"] = os.getloadavg()[0]
ok = lambda impl: [r for r in rows if r["impl"] == impl and r["ok"]]
med = lambda xs: round(st.median(xs), 4) if xs else None
m, t = ok("metalearn"), ok("torch")
ms, ts = med([r["seconds_per_epoch"] for r in m]), med([r["seconds_per_epoch"] for r in t])
# Per-repeat ratios (both runs of a repeat are adjacent in time, so they saw similar load).
pairs = {}
for r in m + t:
    pairs.setdefault(r["repeat"], {})[r["impl"]] = r["seconds_per_epoch"]
ratios = [p["torch"] / p["metalearn"] for p in pairs.values() if "torch" in p and "metalearn" in p and p["metalearn"] > 0]
print(json.dumps({
    "bench": "supervised_cnn4", "config": config,
    "metalearn_sec_per_epoch_median": ms, "torch_sec_per_epoch_median": ts,
    "speedup_median": med(ratios),
    "speedup_of_medians": round(ts / ms, 4) if ms and ts else None,
    "speedup_definition": "torch_sec_per_epoch / metalearn_sec_per_epoch (>1: metalearn faster)",
    "metalearn_sec_per_epoch_min": min((r["seconds_per_epoch"] for r in m), default=None),
    "torch_sec_per_epoch_min": min((r["seconds_per_epoch"] for r in t), default=None),
    "metalearn_test_acc": med([r["test_accuracy"] for r in m]), "torch_test_acc": med([r["test_accuracy"] for r in t]),
    "runs_ok": {"metalearn": len(m), "torch": len(t)}, "log_dir": sys.argv[3],
}, separators=(",", ":")))
sys.exit(0 if m and t else 1)
EOF
