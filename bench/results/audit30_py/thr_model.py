import sys, threading
sys.path.insert(0, '/work/wt/py30/python')
import numpy as np
from metalearn.model import Model
m = Model("cnn4:8", (1, 28, 28), 5)
x = np.random.rand(16, 1, 28, 28).astype(np.float32)
ref = m(x)
bad = []
def worker():
    for _ in range(50):
        y = m(x)
        if not np.array_equal(y, ref): bad.append(float(np.abs(y - ref).max()))
ts = [threading.Thread(target=worker) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("mismatches", len(bad), bad[:3])
