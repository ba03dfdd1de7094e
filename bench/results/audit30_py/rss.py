import sys, resource, os
sys.path.insert(0, '/work/wt/py30/python')
import numpy as np, metalearn
from metalearn import safetensors
from metalearn.model import Model
from metalearn.learner import MetaLearner
def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 // 1024
m = Model("mlp:8", (1,1,1), 1)
ml = MetaLearner(m, max_batch=2)
f = metalearn.TaskFamily("sinusoid")
t = next(f.tasks(5,5,1))
bad = t._replace(xs=np.full((5,1), np.nan))
open('/tmp/py30/bad.st','wb').write(b'\x10\x00\x00\x00\x00\x00\x00\x00{"a":1}')
calls = [
 ("forward nan", lambda: m(np.array([[np.nan]]))),
 ("model bad spec", lambda: Model("mlp:0", (1,1,1), 1)),
 ("model init fail", lambda: Model("cnn4:8", (1,2,2), 5)),
 ("step nan", lambda: ml.step([bad])),
 ("learner bad algo", lambda: MetaLearner(m, "protonet", loss="mse")),
 ("st corrupt", lambda: safetensors.load('/tmp/py30/bad.st')),
 ("st missing", lambda: safetensors.load('/nonexistent')),
 ("tf bad", lambda: metalearn.TaskFamily("csv:/nonexistent.csv")),
 ("runconfig bad", lambda: metalearn.RunConfig(iters=-1)),
 ("run open missing", lambda: metalearn.Run.open('/nonexistent')),
 ("rl bad", lambda: metalearn.rl.MetaRL(env='bandit:0')),
]
for name, fn in calls:
    for i in range(10000 if name not in ("run open missing",) else 3000):
        if i == 500: r0 = rss()
        try: fn()
        except Exception: pass
    print(f"{name:20s} rss growth after warmup {rss() - r0} KB (now {rss()} KB)", flush=True)
