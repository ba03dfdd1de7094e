# Samples of `perf script -F tid,time,ip,sym,dso` (perf record -k CLOCK_MONOTONIC) per phase and
# thread, by shared object (JIT = oneDNN's generated kernels, libgomp = OpenMP waiting), using the
# phase marks that the instrumented build (phase_timing_instrumentation.patch) writes to ML_PHASE_LOG.
# Usage: python3 perf_dso_by_phase.py PERF_SCRIPT.txt PHASE_LOG.txt HZ
import collections, bisect, sys
names = {0: 'inner', 1: 'q1_blk1fwd', 2: 'q2_rest', 3: 'q3_recomp_bwd', 4: 'walk', 5: 'commit', 9: 'between'}
log = [l.split() for l in open(sys.argv[2])]
bt = [float(a) for a, b in log]; bp = [int(b) for a, b in log]
hz = float(sys.argv[3]); skip = bt[384]  # after the first 64 tasks (2 iterations)
ntask = sum(1 for i in range(len(bt)) if bt[i] >= skip and bp[i] == 5)
c = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) < 4: continue
    tm = float(p[1][:-1])
    if tm < skip or tm > bt[-1]: continue
    ph = names[bp[bisect.bisect_left(bt, tm)]]
    dso = p[-1].strip('()').split('/')[-1]
    if 'JIT' in line or dso.startswith('perf-'): dso = 'JIT'
    elif dso.startswith('libgomp'): dso = 'libgomp'
    elif dso.startswith('lowmem22') or dso == 'metalearn': dso = 'metalearn'
    c[(ph, p[0])][dso] += 1
print('tasks', ntask)
for k in sorted(c):
    tot = sum(c[k].values())
    print(k[0], 'tid', k[1], 'cpu ms/task %.2f' % (tot / hz * 1e3 / ntask),
          {d: round(v / hz * 1e3 / ntask, 2) for d, v in c[k].most_common(5)})
