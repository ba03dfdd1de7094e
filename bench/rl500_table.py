#!/usr/bin/env python3
"""rl500_table.py: the markdown rows of docs/results.md's meta-RL table from
bench/results/rl/i500/{eval,ref}_*.json (bench/rl500_eval.sh's outputs).
Usage: python3 bench/rl500_table.py [DIR]"""
import json
import sys
from pathlib import Path

d = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/rl/i500")
rows = [("MAML-TRPO", "eval_maml_trpo"), ("MAML-Adam", "eval_maml_adam"), ("pretrained (TRPO)", "eval_pretrain_trpo"),
        ("random", "eval_random"), ("oracle (TRPO)", "eval_oracle_trpo"),
        ("*MAML-TRPO, rate from the grid*", "ref_maml_trpo_grid"), ("*pretrained at 0.1*", "ref_pretrain_trpo_lr0.1"),
        ("*random at 0.1*", "ref_random_lr0.1"), ("*oracle at 0.1*", "ref_oracle_trpo_lr0.1")]
print("| policy | outer iterations | adaptation rate | 0 steps | 1 step | 2 steps | 3 steps |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for label, name in rows:
    p = d / f"{name}.json"
    if not p.exists():
        continue
    j = json.loads(p.read_text())
    rate = f"{j['eval_lr']:g}" + (f", later x{j['eval_later_scale']:g}" if "eval_later_scale" in j else "") + \
        (" (validation)" if "eval_lr_grid" in j else "")
    cells = [f"{r:.1f} ± {c:.1f}" for r, c in zip(j["return"], j["ci95"])]
    print(f"| {label} | {j['iterations']} | {rate} | " + " | ".join(cells) + " |")
