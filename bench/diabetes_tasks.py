#!/usr/bin/env python3
"""diabetes_tasks.py: a real table as a CSV task family for metalearn.

The diabetes table of Efron et al. (2004) ships with Debian's python3-sklearn
(442 patients: age, sex, BMI, blood pressure, six serum measurements, and a
measure of disease progression one year later); nothing is downloaded. Its
rows are grouped into 20 tasks by a grouping column made from the table itself,
sex x age decile (decile boundaries from all patients, so each task holds
about 22 patients). Inputs are BMI, BP and S1..S6 (age and sex define the
task); the target is the progression measure. Both are standardised with the
statistics of the training tasks' rows, so an MSE of 1 is the error of
predicting the training mean.

14 tasks (a seeded draw) go to train.csv, the other 6 to held_out.csv:
train.csv: each task's rows split half support / half query (seeded);
held_out.csv: exactly K (--shots, default 10) support rows per task, the rest
query, so every learner adapts on the same rows and is scored on the same rows.

usage: diabetes_tasks.py OUT_DIR [--shots 10] [--seed 0]
"""
import argparse
import csv
import gzip
import os
import random
import sys

DATA = "/usr/lib/python3/dist-packages/sklearn/datasets/data"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    try:
        with gzip.open(f"{DATA}/diabetes_data_raw.csv.gz", "rt") as f:
            rows = [[float(v) for v in line.split()] for line in f if line.strip()]
        with gzip.open(f"{DATA}/diabetes_target.csv.gz", "rt") as f:
            target = [float(line) for line in f if line.strip()]
    except OSError as e:
        sys.exit(f"diabetes_tasks.py: {e}: install Debian's python3-sklearn (scripts/install-deps.sh --bench)")
    if len(rows) != 442 or len(target) != 442:
        sys.exit("diabetes_tasks.py: expected 442 rows in the diabetes table")
    ages = sorted(r[0] for r in rows)
    cuts = [ages[len(ages) * k // 10] for k in range(1, 10)]  # age decile boundaries
    def group(r):
        decile = sum(r[0] >= c for c in cuts)
        return f"{'female' if r[1] == 2 else 'male'}_age{decile}"
    tasks = {}
    for r, y in zip(rows, target):
        tasks.setdefault(group(r), []).append((r[2:], y))  # BMI, BP, S1..S6
    names = sorted(tasks)
    rng = random.Random(a.seed)
    held = set(rng.sample(names, 6))
    train_names = [n for n in names if n not in held]
    # Standardise with the training tasks' rows only.
    pts = [p for n in train_names for p in tasks[n]]
    d = len(pts[0][0])
    mean = [sum(p[0][j] for p in pts) / len(pts) for j in range(d)]
    std = [(sum((p[0][j] - mean[j]) ** 2 for p in pts) / (len(pts) - 1)) ** 0.5 for j in range(d)]
    ym = sum(p[1] for p in pts) / len(pts)
    ys = (sum((p[1] - ym) ** 2 for p in pts) / (len(pts) - 1)) ** 0.5
    os.makedirs(a.out, exist_ok=True)
    for fname, group_names in (("train.csv", train_names), ("held_out.csv", sorted(held))):
        with open(f"{a.out}/{fname}", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["task", "split"] + ["bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"] + ["progression"])
            for n in group_names:
                pts_n = tasks[n][:]
                rng.shuffle(pts_n)
                k = a.shots if fname == "held_out.csv" else len(pts_n) // 2
                if len(pts_n) <= k:
                    sys.exit(f"diabetes_tasks.py: task {n} has {len(pts_n)} rows, needs more than {k}")
                for i, (x, y) in enumerate(pts_n):
                    xs = [f"{(x[j] - mean[j]) / std[j]:.6f}" for j in range(d)]
                    w.writerow([n, "support" if i < k else "query"] + xs + [f"{(y - ym) / ys:.6f}"])
    sizes = {n: len(tasks[n]) for n in names}
    print(f"{a.out}/train.csv: {len(train_names)} tasks; {a.out}/held_out.csv: {len(held)} tasks "
          f"({a.shots} support rows each); rows per task {min(sizes.values())}..{max(sizes.values())}")


if __name__ == "__main__":
    main()
