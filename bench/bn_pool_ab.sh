#!/usr/bin/env bash
# A/B of two bench_bn_pool binaries (the fused batch norm + ReLU + 2x2
# max-pool forward and backward at the CNN's shapes, 200 images, 64 channels),
# alternating which runs first in each round so that the machine's load hits
# both alike. Per round and binary: each shape's and pass's vector_ms_min
# (the whole-plane path the training uses); then one summary line per shape
# and pass: the median over rounds of each side and of the per-round B/A.
# Usage: bench/bn_pool_ab.sh [--rounds 9] [--samples 11] A_BENCH B_BENCH   (1 thread, CPU time)
set -euo pipefail
rounds=9 samples=11
while [ $# -gt 2 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --samples) samples="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -eq 2 ] || { sed -n '2,8p' "$0"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  order="A B"; [ $((r % 2)) -eq 0 ] && order="B A"
  for s in $order; do
    bin="$1"; [ "$s" = B ] && bin="$2"
    "$bin" --threads 1 --samples "$samples" --cpu 1 | sed "s/^{/{\"side\":\"$s\",\"round\":$r,/" >> "$tmp/all.jsonl"
  done
done
python3 - "$tmp/all.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    print(json.dumps({k: r[k] for k in ("side", "round", "h", "pass", "vector_ms_min")}))
keys = sorted({(r["h"], r["pass"]) for r in rows}, key=lambda k: (-k[0], k[1]))
for h, p in keys:
    by = {(r["side"], r["round"]): r["vector_ms_min"] for r in rows if r["h"] == h and r["pass"] == p}
    rs = sorted({k[1] for k in by})
    a = [by[("A", i)] for i in rs]; b = [by[("B", i)] for i in rs]
    print(json.dumps({"summary": "bn_pool_ab", "h": h, "pass": p, "rounds": len(rs),
                      "A_ms_median": statistics.median(a), "B_ms_median": statistics.median(b),
                      "B_over_A_median": round(statistics.median([y / x for x, y in zip(a, b)]), 4)}))
PY
