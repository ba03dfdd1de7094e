#!/usr/bin/env python3
"""Markdown table of bench/results/task_selection/*.eval.txt (last line: JSON)."""
import glob, json, os, re, statistics
rows, acc = {}, {}
for f in sorted(glob.glob("bench/results/task_selection/*_s*.eval.txt")):
    m = re.match(r"(\w+)_s(\d+)\.eval\.txt", os.path.basename(f))
    j = json.loads(open(f).read().strip().splitlines()[-1])
    t = open(f.replace(".eval.", ".train.")).read()
    speed = re.search(r"\(([\d.]+) it/s\)", t)
    r = {x["shots"]: (x["accuracy"], x["ci95"]) for x in j["results"]}
    rows.setdefault(m[1], []).append((int(m[2]), r, speed[1] if speed else "?"))
print("| sampler | seed | 5-way 1-shot | 5-way 5-shot | training it/s (shared machine) |")
print("| --- | --- | --- | --- | --- |")
for s in ("uniform", "similar", "curriculum"):
    for seed, r, sp in rows.get(s, []):
        print(f"| {s} | {seed} | {r[1][0]:.4f} ± {r[1][1]:.4f} | {r[5][0]:.4f} ± {r[5][1]:.4f} | {sp} |")
print()
base = {seed: r for seed, r, _ in rows.get("uniform", [])}
for s in ("uniform", "similar", "curriculum"):
    rs = rows.get(s, [])
    if not rs: continue
    m1 = statistics.mean(r[1][0] for _, r, _ in rs); m5 = statistics.mean(r[5][0] for _, r, _ in rs)
    d1 = [r[1][0] - base[seed][1][0] for seed, r, _ in rs if seed in base]
    d5 = [r[5][0] - base[seed][5][0] for seed, r, _ in rs if seed in base]
    print(f"{s}: mean over {len(rs)} seeds 1-shot {m1:.4f}, 5-shot {m5:.4f}; "
          f"minus uniform, same seed: 1-shot {', '.join(f'{d:+.4f}' for d in d1)}; 5-shot {', '.join(f'{d:+.4f}' for d in d5)}")
