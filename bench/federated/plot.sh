#!/bin/bash
# Validation accuracy against rounds for the federated runs and their
# centralized twins on one chart (metalearn plot's validation_accuracy.png):
# a centralized run's iteration i is drawn at round i / (clients x
# local-iters), the round at which a federated run has seen as many tasks.
# Usage: bench/federated/plot.sh [BIN]  (reads and writes bench/results/federated)
set -eu
BIN=${1:-build/metalearn}
R=bench/results/federated
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 - "$R" "$T" <<'PY'
import json, os, sys
r, t = sys.argv[1:]
for src, dst, per_round in [("proto-fed", "protonet-federated", 1), ("proto-central", "protonet-centralized", 40),
                            ("maml-fed", "maml-federated", 1), ("maml-central", "maml-centralized", 40),
                            ("fedavg-multitask", "fedavg-multitask", 1)]:
    p = os.path.join(r, src, "log.jsonl")
    if not os.path.exists(p):
        continue
    os.makedirs(os.path.join(t, dst))
    with open(os.path.join(t, dst, "log.jsonl"), "w") as out:
        for line in open(p):
            d = json.loads(line)
            d["iter"] = d["iter"] // per_round
            out.write(json.dumps(d) + "\n")
PY
"$BIN" plot "$T"/* --out "$R/plot"
ls "$R/plot"
