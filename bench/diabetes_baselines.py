#!/usr/bin/env python3
"""diabetes_baselines.py: the non-meta-learned baselines of the diabetes task
experiment (bench/diabetes_csv.sh), scored on the same rows as metalearn eval:
each held-out task adapts on its support rows and is scored on its query rows,
and means come with a Student-t 95% interval over the distinct tasks.

  mean           the training tasks' mean target (0 after standardising)
  support mean   the mean of the task's own support targets (adapted)
  pooled linear  least squares on every row of the training tasks
  + intercept    that fit, shifted by the mean residual on the task's support rows

usage: diabetes_baselines.py TRAIN.csv HELD_OUT.csv [--json]
"""
import csv
import json
import sys

T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131]


def read(path):
    tasks = {}
    with open(path) as f:
        rows = list(csv.reader(f))
    for r in rows[1:]:
        t = tasks.setdefault(r[0], {"support": [], "query": []})
        t[r[1]].append(([float(v) for v in r[2:-1]], float(r[-1])))
    return tasks


def lstsq(points):
    """Ordinary least squares with an intercept by the normal equations (d <= 10)."""
    d = len(points[0][0]) + 1
    a = [[0.0] * d for _ in range(d)]
    b = [0.0] * d
    for x, y in points:
        z = x + [1.0]
        for i in range(d):
            b[i] += z[i] * y
            for j in range(d):
                a[i][j] += z[i] * z[j]
    for c in range(d):  # Gauss-Jordan with partial pivoting
        p = max(range(c, d), key=lambda r: abs(a[r][c]))
        a[c], a[p], b[c], b[p] = a[p], a[c], b[p], b[c]
        for r in range(d):
            if r != c:
                f = a[r][c] / a[c][c]
                a[r] = [u - f * v for u, v in zip(a[r], a[c])]
                b[r] -= f * b[c]
    return [b[i] / a[i][i] for i in range(d)]


def mean_ci(v):
    n = len(v)
    m = sum(v) / n
    s = (sum((x - m) ** 2 for x in v) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return m, (T975[n - 2] if n - 1 <= len(T975) else 1.96) * s / n ** 0.5


def main():
    train, held = read(sys.argv[1]), read(sys.argv[2])
    w = lstsq([p for t in train.values() for p in t["support"] + t["query"]])
    lin = lambda x: sum(wi * xi for wi, xi in zip(w, x)) + w[-1]
    mse = lambda pred, pts: sum((pred(x) - y) ** 2 for x, y in pts) / len(pts)
    per = {"mean": [], "support mean": [], "pooled linear": [], "pooled linear + task intercept": []}
    for t in held.values():
        s, q = t["support"], t["query"]
        sm = sum(y for _, y in s) / len(s)
        shift = sum(y - lin(x) for x, y in s) / len(s)
        per["mean"].append(mse(lambda x: 0.0, q))
        per["support mean"].append(mse(lambda x: sm, q))
        per["pooled linear"].append(mse(lin, q))
        per["pooled linear + task intercept"].append(mse(lambda x: lin(x) + shift, q))
    out = {k: mean_ci(v) for k, v in per.items()}
    if "--json" in sys.argv:
        print(json.dumps({k: {"mse": m, "ci95": h, "tasks": len(per[k])} for k, (m, h) in out.items()}))
    else:
        for k, (m, h) in out.items():
            print(f"{k:34s} {m:7.3f} +- {h:.3f}   ({len(per[k])} held-out tasks)")


if __name__ == "__main__":
    main()
