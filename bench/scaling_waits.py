#!/usr/bin/env python3
"""scaling_waits.py PERF_SCRIPT_TXT [STEPS]: on 2 threads, which thread waits
for which, and in what (bench/scaling_waits.sh runs it).

Input: `perf script -F tid,time,ip,sym,dso` of a 2-thread run sampled with
cpu-clock. The window is the training loop (first to last optimizer sample,
adam_step / update_range); the caller's thread is the process's lowest tid,
"other" the busiest other thread. A sample in libgomp is a thread waiting
(spinning at a region's end or between regions). Prints per thread its
samples per step, its waits, the symbols each spends more time in than the
other thread (same work split in halves: a systematic difference is data one
thread has to fetch from the other's cache), and, while one thread waits,
what the other is doing (the nearest sample within 150 us)."""
import bisect
import collections
import sys


def load(path):
    rows = []
    for line in open(path):
        p = line.split()
        if len(p) < 4:
            continue
        sym = "WAIT (libgomp)" if "libgomp" in p[-1] else " ".join(p[3:-1])
        rows.append((float(p[1].rstrip(":")), int(p[0]), sym))
    opt = [t for t, _, s in rows if "adam_step" in s or "update_range" in s]
    lo, hi = min(opt), max(opt)
    rows = [r for r in rows if lo <= r[0] <= hi]
    main = min(r[1] for r in rows)
    busy = collections.Counter(r[1] for r in rows if r[1] != main)
    other = busy.most_common(1)[0][0]
    return {w: sorted((t, s) for t, tid, s in rows if tid == tid_) for w, tid_ in (("caller", main), ("other", other))}


def main():
    th = load(sys.argv[1])
    steps = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    ms = lambda n: n * 0.1 / steps  # one sample = 0.1 ms of a thread's CPU (perf -c 100000)
    count = {w: collections.Counter(s for _, s in v) for w, v in th.items()}
    for w in th:
        print(f"{w}: {ms(len(th[w])):.2f} ms/step sampled, waiting {ms(count[w]['WAIT (libgomp)']):.2f}")
    print("\nms/step in a symbol, caller / other, largest differences (other - caller):")
    syms = set(count["caller"]) | set(count["other"])
    diff = sorted(syms, key=lambda s: count["other"][s] - count["caller"][s])
    for s in diff[:8] + ["..."] + diff[-15:]:
        if s == "...":
            print("  ...")
            continue
        c, o = ms(count["caller"][s]), ms(count["other"][s])
        print(f"  {c:7.3f} {o:7.3f} {o - c:+7.3f}  {s}")
    for waiting, working in (("other", "caller"), ("caller", "other")):
        times = [t for t, _ in th[working]]
        near = collections.Counter()
        for t, s in th[waiting]:
            if s != "WAIT (libgomp)":
                continue
            i = bisect.bisect_left(times, t)
            best = min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t), default=None)
            near[th[working][best][1] if best is not None and abs(times[best] - t) < 150e-6 else "(not sampled)"] += 1
        print(f"\nwhile the {waiting} thread waits ({ms(sum(near.values())):.2f} ms/step), the {working} is in:")
        for s, n in near.most_common(15):
            print(f"  {ms(n):7.3f}  {s}")


if __name__ == "__main__":
    main()
