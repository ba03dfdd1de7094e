import sys, threading
sys.path.insert(0, '/work/wt/py30/python')
import metalearn
from metalearn.run import RunConfig
bad = []
def worker(i):
    for j in range(300):
        c = RunConfig()
        v = 1 + i * 1000 + j
        c.set("iters", v)
        c.set("inner-steps", i + 1)
        d = c.to_dict()
        if d["iters"] != v or d["inner-steps"] != i + 1:
            bad.append((i, j, d["iters"], v, d["inner-steps"]))
ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("mismatches", len(bad), bad[:3])
