"""Run each probe snippet in its own interpreter; report outcome in one line."""
import subprocess, sys, os, json
PRE = """
import numpy as np, metalearn, ctypes as C, os, sys
from metalearn import safetensors, _lib as L
from metalearn.model import Model
from metalearn.learner import MetaLearner
from metalearn.episodes import ImageSet, TaskFamily
from metalearn.run import Run, RunConfig
from metalearn import rl
T = os.environ.get('PT', '/tmp/py30/t')
D = '/work/shared/data'
"""
def run(name, code, timeout=60):
    env = dict(os.environ, PYTHONPATH='/work/wt/py30/python', ML_LIBRARY='/work/wt/py30/build/libmetalearn.so')
    src = PRE + "\ntry:\n" + "\n".join("    " + l for l in code.strip().splitlines()) + \
          "\n    print('RESULT ok', repr(_r) if '_r' in dir() else '')\nexcept Exception as e:\n    print('RESULT', type(e).__name__ + ':', str(e)[:200])\n"
    try:
        p = subprocess.run(["/usr/bin/python3", "-c", src], capture_output=True, text=True, timeout=timeout, env=env)
        lines = [l for l in p.stdout.splitlines() if l.startswith('RESULT')]
        if p.returncode < 0:
            out = f"CRASH signal {-p.returncode} " + p.stderr.strip().splitlines()[-1][:200] if p.stderr.strip() else f"CRASH signal {-p.returncode}"
        elif p.returncode != 0:
            out = f"EXIT {p.returncode} " + (p.stderr.strip().splitlines() or [''])[-1][:200]
        else:
            out = lines[-1][7:] if lines else "(no result)"
    except subprocess.TimeoutExpired:
        out = "HANG (timeout)"
    print(f"{name:40s} | {out}", flush=True)
    return out
if __name__ == "__main__":
    probes = {}
    exec(open(sys.argv[1]).read(), {"P": probes})
    only = sys.argv[2:] 
    for k, v in probes.items():
        if not only or any(o in k for o in only):
            run(k, v)
