import sys, threading, shutil
sys.path.insert(0, '/work/wt/py30/python')
import metalearn
d = '/tmp/py30/t_same'
shutil.rmtree(d, ignore_errors=True)
res = []
def go(i):
    try:
        cfg = metalearn.RunConfig(algo='maml', task='sinusoid', model='mlp:8', iters=30, meta_batch=2, eval_tasks=2, threads=1, quiet=True, seed=i + 1)
        with metalearn.Run.new(cfg, out=d) as r:
            r.train()
        res.append((i, 'ok'))
    except Exception as e:
        res.append((i, str(e)[:150]))
ts = [threading.Thread(target=go, args=(i,)) for i in range(2)]
[t.start() for t in ts]; [t.join() for t in ts]
print(res)
