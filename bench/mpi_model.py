#!/usr/bin/env python3
"""Model of one data-parallel outer iteration at 8, 64 and 512 ranks (issue 14).

    python3 bench/mpi_model.py [bench/results/mpi/scaling.jsonl]

Inputs measured here: the CPU seconds of one MAML-2 Omniglot 5w1s q15 task on
one thread (config A of bench/mpi_scaling.sh: CPU per iteration / 32 tasks;
CPU time, since the machine was shared) and the meta-parameter count (cnn4,
112261 floats). Assumed: the network (below) and one thread per rank.

metalearn's reduction (src/meta/meta.c): every rank sends its tasks' rows
(4 * n_meta bytes each) to rank 0, which adds them in task order (the same
bits as one process) and broadcasts the new meta-parameters. Rank 0's link
takes (B - B/P) rows per iteration: its ingress grows with the meta-batch B,
not with P. For comparison, a ring allreduce (2 (P-1)/P * 4 n_meta bytes per
rank) would be cheap at any P, but it adds in an order that depends on P, so
checkpoints would no longer match one process bit for bit.
Speed-up: B * t_task (one rank) over compute + communication; the ideal is
P while B >= P (min(B, P) in general: a rank with no task waits).
"""
import json, math, statistics, sys

path = sys.argv[1] if len(sys.argv) > 1 else "bench/results/mpi/scaling.jsonl"
rows = [json.loads(l) for l in open(path)]
a = [r for r in rows if r["workload"] == "maml2_5w1s" and r["config"] == "A"]
t_task = statistics.median(r["cpu_seconds_per_iter"] for r in a) / 32
n_meta = 112261
row = 4 * n_meta
nets = {"10 GbE (1.25 GB/s, 30 us)": (1.25e9, 30e-6), "100 Gb/s IB (12.5 GB/s, 2 us)": (12.5e9, 2e-6)}
reduce_bw = 5e9  # rank 0 adds B rows: memory-bound, ~5 GB/s of rows read (one core)

print(f"t_task = {t_task * 1000:.1f} ms (measured CPU, 1 thread), n_meta = {n_meta}, row = {row / 1e6:.2f} MB")
for label, bpt in (("meta-batch 32 (fixed)", None), ("meta-batch 4 per rank", 4)):
    print(f"\n{label}:")
    print(f"{'ranks':>6} {'B':>5} {'compute':>9} | " + " | ".join(f"{n:^50}" for n in nets))
    print(f"{'':>6} {'':>5} {'':>9} | " + " | ".join(f"{'gather+bcast':>13} {'speed-up':>9} {'ring allreduce':>15} {'speed-up':>9}" for _ in nets))
    for P in (8, 64, 512):
        B = 32 if bpt is None else bpt * P
        compute = math.ceil(B / P) * t_task
        cells = []
        for bw, lat in nets.values():
            ingress = (B - B / P) * row / bw + math.ceil(math.log2(P)) * lat
            bcast = math.ceil(math.log2(P)) * (lat + row / bw)
            ours = ingress + bcast + B * row / reduce_bw
            ring = 2 * (P - 1) / P * row / bw + 2 * (P - 1) * lat
            serial = B * t_task  # one rank, one thread
            cells.append(f"{ours * 1000:>10.1f} ms {serial / (compute + ours):>8.1f}x {ring * 1000:>12.1f} ms "
                         f"{serial / (compute + ring):>8.1f}x")
        print(f"{P:>6} {B:>5} {compute * 1000:>6.0f} ms | " + " | ".join(cells))
