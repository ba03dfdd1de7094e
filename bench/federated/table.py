#!/usr/bin/env python3
"""The federated table of docs/results.md from bench/results/federated/*/
(result.json: train's --json line; log.jsonl: rounds, bytes, val_acc).
Usage: python3 bench/federated/table.py [DIR] > DIR/table.md"""
import json, os, sys

d = sys.argv[1] if len(sys.argv) > 1 else "bench/results/federated"
ROWS = [("proto-fed", "ProtoNet, federated (8 clients = 8 alphabets)"),
        ("proto-central", "ProtoNet, centralized, same tasks"),
        ("maml-fed", "MAML, federated (8 clients)"),
        ("maml-central", "MAML, centralized, same tasks"),
        ("fedavg-multitask", "FedAvg of multitask + fine-tune (8 clients)"),
        ("proto-fed-alpha", "ProtoNet, federated (6 clients), held-out alphabets"),
        ("proto-central-alpha", "ProtoNet, centralized, held-out alphabets"),
        ("maml-fed-alpha", "MAML, federated (6 clients), held-out alphabets"),
        ("maml-central-alpha", "MAML, centralized, held-out alphabets"),
        ("fedavg-multitask-alpha", "FedAvg of multitask + fine-tune (6 clients), held-out alphabets")]
print("| run | setting | 5w1s accuracy on held-out classes (95% CI) | rounds / iterations | bytes per round | train s |")
print("|---|---|---|---|---|---|")
curves = {}
for name, what in ROWS:
    p = os.path.join(d, name, "result.json")
    if not os.path.exists(p) or os.path.getsize(p) == 0:
        print(f"| {name} | {what} | not run | | | |")
        continue
    r = json.load(open(p))
    acc = ", ".join(f"{x['accuracy'] * 100:.1f} ± {x['ci95'] * 100:.1f}" + (f" ({x['steps']} steps)" if x["steps"] else "")
                    for x in r["results"])
    log = [json.loads(l) for l in open(os.path.join(d, name, "log.jsonl"))]
    rb = {l.get("round_bytes") for l in log if "round_bytes" in l}
    bytes_ = ", ".join(f"{b / 1e6:.2f} MB" for b in sorted(rb)) if rb else "-"
    print(f"| {name} | {what} | {acc} | {r['iterations']} | {bytes_} | {r['train_seconds']:.0f} |")
    curves[name] = [(l["iter"], l["val_acc"]) for l in log if "val_acc" in l]
print()
print("Validation accuracy (5w1s, validation characters) against rounds; a centralized run's iteration i")
print("is round i / (clients x local iters) by tasks seen:")
print()
for name, c in curves.items():
    if c:
        print(f"- {name}: " + ", ".join(f"{i}: {a * 100:.1f}" for i, a in c))
