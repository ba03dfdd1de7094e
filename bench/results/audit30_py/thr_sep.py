import sys, threading
sys.path.insert(0, '/work/wt/py30/python')
import numpy as np, metalearn
from metalearn.model import Model
from metalearn.learner import MetaLearner
tasks = list(metalearn.TaskFamily("sinusoid").tasks(5, 5, 4, seed=1))
def train(out, i):
    ml = MetaLearner(Model("mlp:16", (1, 1, 1), 1, seed=i), "maml", max_batch=4)
    for _ in range(100): ml.step(tasks)
    out[i] = ml.export().state_dict()["layers.0.weight"]
seq = {}
for i in range(4): train(seq, i)
par = {}
ts = [threading.Thread(target=train, args=(par, i)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("identical", all(np.array_equal(seq[i], par[i]) for i in range(4)))
