import sys, threading
sys.path.insert(0, '/work/wt/py30/python')
import numpy as np, metalearn
from metalearn.model import Model
from metalearn.learner import MetaLearner
ml = MetaLearner(Model("mlp:40,40", (1, 1, 1), 1), "maml", max_batch=4)
f = metalearn.TaskFamily("sinusoid")
tasks = list(f.tasks(10, 10, 4, seed=1))
errs = []
def worker():
    try:
        for _ in range(100):
            ml.step(tasks); ml.evaluate(tasks, 2); ml.adapt_predict(tasks[0].xs, tasks[0].ys, tasks[0].xq)
    except Exception as e:
        errs.append(repr(e))
ts = [threading.Thread(target=worker) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("errors", errs[:3], "theta finite", np.isfinite(ml.export().state_dict()["layers.0.weight"]).all())
