#!/usr/bin/env python3
"""scaling_phases.py OUT_DIR: the table of bench/scaling_phases.sh.

Per case: CPU milliseconds per step (or episode) in each phase, on 1 thread
and summed over both threads on 2 (long run minus short run, divided by the
difference in steps), the 2-thread wall time, and the loss against perfect
scaling split into work two threads add (2T CPU - 1T CPU per phase) and idle
time (2 x wall - CPU on 2 threads). cpu-clock sampled every 250000 ns
(perf -c): one sample is 0.25 ms of one thread's CPU."""
import json
import re
import sys
from collections import defaultdict

# our binary or library: whatever dso is none of the others (the binary may be a copy)
OURS = r"^(?!.*(JIT|dnnl|gomp|libc|kernel|libz|libpng|ld-linux|libm)).*$"
PHASES = [  # (phase, dso regex, symbol regex): the first match wins
    ("conv fwd/bwd-data (oneDNN JIT)", r"JIT", r"wino_conv_4x3_data|conv_fwd_kernel|conv_bwd_data_kernel"),
    ("conv bwd-weights (oneDNN JIT)", r"JIT", r"bwd_weights"),
    ("reorders (oneDNN JIT)", r"JIT", r"reorder|single_blk"),
    ("gemm (oneDNN JIT)", r"JIT", r"gemm"),
    ("oneDNN other", r"JIT|dnnl", r""),
    ("openmp (wait, fork/join)", r"gomp", r""),
    ("bn/relu/pool kernels", OURS, r"bn_|channel_stats|grad_sums|pool|relu|blk_|lanes_to_planes|planes_to|pad_planes"),
    ("im2col / gemm (ours)", OURS, r"im2col|col2im|gemm|sgemm"),
    ("elementwise (ours)", OURS, r"(^|\s)k_|unary_range|binary|axpy"),
    ("optimizer / grads copy", OURS, r"adam|step_range|update_range|copy_grads|optim"),
    ("data (load, decode, episode)", OURS, r"load|inflate|png|decode|episode|gather|image|zip|crc"),
    ("libmetalearn other", OURS, r""),
    ("memcpy/memset (libc)", r"libc", r"mem"),
    ("kernel (faults, syscalls, irq)", r"kernel", r""),
]
# libz without symbols: data; whatever is left: other
PHASES.insert(-1, ("data (load, decode, episode)", r"libz|libpng", r""))


def phase_of(dso, sym):
    for name, d, s in PHASES:
        if re.search(d, dso) and re.search(s, sym):
            return name
    return "other"


def samples(path):
    """{phase: samples}, {thread: samples}"""
    ph, th, pt = defaultdict(int), defaultdict(int), defaultdict(lambda: defaultdict(int))
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 4:
            continue
        n, tid, dso, sym = int(parts[0]), parts[1].strip(), parts[2].strip(), parts[3].strip()
        ph[phase_of(dso, sym)] += n
        th[tid] += n
        pt[tid][phase_of(dso, sym)] += n
    return ph, th, pt


def thread_phases(short, long_):
    """[{phase: ms}] of the main thread (lowest thread id: the process's own) and the busiest other thread,
    each long run minus short run; the two runs' other threads are matched by rank of sample count."""
    def ranked(d):
        ids = sorted(d, key=lambda t: int(t.split(":")[0]))
        main, rest = ids[0], sorted(ids[1:], key=lambda t: -sum(d[t].values()))
        return [d[main]] + ([d[rest[0]]] if rest else [])
    s, l = ranked(short), ranked(long_)
    return [{p: v - (s[i].get(p, 0) if i < len(s) else 0) for p, v in l[i].items()} for i in range(len(l))]


def main():
    out = sys.argv[1]
    stats = [json.loads(l) for l in open(f"{out}/stat.jsonl")]
    ms_per_sample = 1000.0 / 4000
    for case in dict.fromkeys(s["case"] for s in stats):
        per = {}
        for th in (1, 2):
            rows = sorted((s for s in stats if s["case"] == case and s["threads"] == th), key=lambda s: s["units"])
            short, long_ = rows[0], rows[-1]
            du = long_["units"] - short["units"]
            ps, ts, ps_t = samples(f"{out}/samples_{case}_{th}t_{short['units']}.tsv")
            pl, tl, ptl = samples(f"{out}/samples_{case}_{th}t_{long_['units']}.tsv")
            phase_ms = {p: (pl.get(p, 0) - ps.get(p, 0)) * ms_per_sample / du for p in set(ps) | set(pl)}
            threads_ms = sorted(((tl[t] - ts.get(t, 0)) * ms_per_sample / du for t in tl), reverse=True)
            per[th] = {
                "wall_ms": (long_["wall_s"] - short["wall_s"]) * 1e3 / du,
                "cpu_ms": (long_["task_clock_s"] - short["task_clock_s"]) * 1e3 / du,
                "ctx_switches": (long_["context_switches"] - short["context_switches"]) / du,
                "migrations": (long_["cpu_migrations"] - short["cpu_migrations"]) / du,
                "phase_ms": phase_ms,
                "threads_ms": threads_ms[:2],
                # per thread, long run minus short: the main thread (lowest id) first, then the busiest other
                "thread_phase_ms": [{p: v * ms_per_sample / du for p, v in t.items()} for t in thread_phases(ps_t, ptl)],
                "load1": [short["load1"], long_["load1"]],
            }
        a, b = per[1], per[2]
        print(f"== {case}: ms per step/episode (long run - short run) / steps; load1 at the ends "
              f"{a['load1']} {b['load1']}")
        print(f"wall: 1T {a['wall_ms']:.2f}  2T {b['wall_ms']:.2f}  scaling {a['wall_ms'] / b['wall_ms']:.3f}x")
        print(f"task-clock: 1T {a['cpu_ms']:.2f}  2T {b['cpu_ms']:.2f} (2T/1T {b['cpu_ms'] / a['cpu_ms']:.3f}); "
              f"idle on 2T = 2 x wall - CPU = {2 * b['wall_ms'] - b['cpu_ms']:.2f}")
        print(f"context switches / step: 1T {a['ctx_switches']:.1f} 2T {b['ctx_switches']:.1f}; "
              f"migrations / step: 1T {a['migrations']:.2f} 2T {b['migrations']:.2f}")
        print(f"samples per thread on 2T (ms/step): {', '.join(f'{t:.2f}' for t in b['threads_ms'])}")
        loss = 2 * b["wall_ms"] - a["wall_ms"]
        print(f"loss against perfect scaling: 2 x wall(2T) - wall(1T) = {loss:.2f} ms")
        print(f"  {'phase':34s} {'1T ms':>8s} {'2T ms (sum)':>12s} {'added':>8s}")
        phases = sorted(set(a["phase_ms"]) | set(b["phase_ms"]), key=lambda p: -a["phase_ms"].get(p, 0))
        for p in phases:
            x, y = a["phase_ms"].get(p, 0), b["phase_ms"].get(p, 0)
            if abs(x) < 0.005 and abs(y) < 0.005:
                continue
            print(f"  {p:34s} {x:8.2f} {y:12.2f} {y - x:+8.2f}")
        busy, other = (b["thread_phase_ms"] + [{}])[:2]
        print(f"  2T per thread: main {sum(busy.values()):.2f} ms, other {sum(other.values()):.2f} ms; main minus other:",
              ", ".join(f"{p} {busy.get(p, 0) - other.get(p, 0):+.2f}" for p in sorted(busy, key=lambda p: -abs(busy.get(p, 0) - other.get(p, 0)))[:7]))
        print(f"  {'idle (2 x wall - CPU)':34s} {a['wall_ms'] - a['cpu_ms']:8.2f} "
              f"{2 * b['wall_ms'] - b['cpu_ms']:12.2f} {2 * b['wall_ms'] - b['cpu_ms']:+8.2f}")
        print(json.dumps({"case": case, "per_threads": per}), file=open(f"{out}/phases_{case}.json", "w"))
        print()


if __name__ == "__main__":
    main()
