#!/usr/bin/env python3
"""Summarises the raw outputs of run.sh (docs/results.md, "Strategy search")."""
import glob, json, os, statistics, sys
here = os.path.dirname(os.path.abspath(__file__))
def last_json(path):
    return json.loads(open(path).read().strip().splitlines()[-1])
print("search               rung-0: failed  median(ok)  best | best val score (6000 it)  best settings  search s")
for path in sorted(glob.glob(os.path.join(here, "*.trials.jsonl"))):
    name = os.path.basename(path)[:-len(".trials.jsonl")]
    lines = [json.loads(l) for l in open(path)]
    r0 = [l for l in lines if l["rung"] == 0]
    ok = [l["score"] for l in r0 if l["status"] == "ok"]
    summ = last_json(os.path.join(here, name + ".out"))
    print("%-20s %2d/%d  %8.3f  %8.4f | %.4f  %s  %.0f" % (name, len(r0) - len(ok), len(r0), statistics.median(ok), min(ok),
          summ["best_score"], json.dumps(summ["best_settings"]), summ["seconds"]))
print()
print("final (20000 it, 600 test tasks, K=10)   0 steps          1 step           10 steps        train s")
for path in sorted(glob.glob(os.path.join(here, "final_*.out"))):
    if path.endswith(".train.out"): continue
    name = os.path.basename(path)[len("final_"):-len(".out")]
    j = last_json(path)
    cells = {r["steps"]: "%.4f +- %.4f" % (r["mse"], r["ci95"]) if r["mse"] is not None else "diverged (%d)" % r["diverged_tasks"] for r in j["results"]}
    t = json.loads([l for l in open(path[:-4] + ".train.out") if l.startswith("{")][-1])["train_seconds"]
    print("%-40s %-16s %-16s %-16s %.0f" % (name, cells.get(0, "-"), cells.get(1, "-"), cells.get(10, "-"), t))
