#!/usr/bin/env python3
"""Resident memory of a running command broken down by mapping, sampled.

Runs CMD, reads /proc/PID/smaps every --every seconds, and prints (JSON) the
breakdown at the largest sampled resident size, the resident series, and the
breakdown at ~60 points of it (the plateau after loading is the "base"). Mappings are grouped: each
library file by name, [heap], [stack], anonymous mappings by size class
(thread stacks are 8 MB + guard anonymous regions), other files.

Usage: bench/mem_smaps.py [--every 0.01] [--out FILE.json] -- CMD ARGS...
Sampling misses short spikes: compare its peak with /usr/bin/time's.
"""
import json, os, subprocess, sys, time


def read_smaps(pid):
    groups, total = {}, 0
    try:
        with open(f"/proc/{pid}/smaps") as f:
            name, size_kb = None, 0
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    size_kb = (hi - lo) // 1024
                    path = parts[5] if len(parts) >= 6 else ""
                    if path.startswith("/"):
                        name = os.path.basename(path)
                    elif path:
                        name = path
                    else:
                        name = "anon %s" % ("<=8MB" if size_kb <= 8196 else ">8MB")
                elif parts[0] == "Rss:":
                    kb = int(parts[1])
                    groups[name] = groups.get(name, 0) + kb
                    total += kb
    except (FileNotFoundError, ProcessLookupError):
        return None
    return total, groups


def main():
    argv = sys.argv[1:]
    every, out = 0.01, None
    while argv and argv[0] != "--":
        if argv[0] == "--every":
            every = float(argv[1]); argv = argv[2:]
        elif argv[0] == "--out":
            out = argv[1]; argv = argv[2:]
        else:
            sys.exit("usage: mem_smaps.py [--every S] [--out F] -- CMD...")
    cmd = argv[1:]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    samples = []
    while p.poll() is None:
        s = read_smaps(p.pid)
        if s:
            samples.append((time.time(), s[0], s[1]))
        time.sleep(every)
    peak = max(samples, key=lambda x: x[1])
    def fmt(sample):
        t, tot, g = sample
        return {"rss_mb": round(tot / 1024, 1),
                "groups_mb": {k: round(v / 1024, 2) for k, v in sorted(g.items(), key=lambda kv: -kv[1]) if v >= 64}}
    res = {"cmd": cmd, "samples": len(samples), "peak": fmt(peak),
           "rss_series_mb": [round(x[1] / 1024, 1) for x in samples[:: max(1, len(samples) // 200)]],
           "series_breakdown": [fmt(x) for x in samples[:: max(1, len(samples) // 60)]]}
    text = json.dumps(res, indent=1)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    print(text)
    sys.exit(p.returncode)


main()
