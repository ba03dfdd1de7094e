#!/usr/bin/env python3
"""Wall seconds per line of a shell test, from its xtrace run with
PS4='+$EPOCHREALTIME:$LINENO: ' (bash -x SCRIPT ... 2>TRACE). Only the
script's own level ('+', not '++' subshells) counts: each line's time is
until the next top-level trace line. Prints the N slowest lines.
Usage: line_times.py TRACE [N]"""
import re, sys

rows = []
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^(\++)(\d+\.\d+):(\d+): (.*)", line)
    if m and len(m.group(1)) == 1:
        rows.append((float(m.group(2)), int(m.group(3)), m.group(4)[:110]))
per = {}
for (t, ln, cmd), (t2, _, _) in zip(rows, rows[1:]):
    d = per.setdefault(ln, [0.0, cmd])
    d[0] += t2 - t
total = rows[-1][0] - rows[0][0] if rows else 0
print(f"total {total:.1f} s over {len(rows)} traced commands")
for ln, (s, cmd) in sorted(per.items(), key=lambda kv: -kv[1][0])[: int(sys.argv[2]) if len(sys.argv) > 2 else 15]:
    print(f"{s:7.1f} s  line {ln:4d}  {cmd}")
