#!/usr/bin/env python3
"""MAML on sinusoid regression, the learn2learn way: a model, a meta-learner
around it, a loop of meta-batches of tasks, then adapt to a new task's
support set and predict its query points.

    PYTHONPATH=python /usr/bin/python3 examples/python/maml_sinusoid.py [--iters 2000]

With learn2learn this is MAML(model, lr=0.01) + a hand-written inner loop;
here the library runs the inner loop (exact second order) and the outer
Adam step."""
import argparse

import numpy as np

import metalearn
from metalearn.learner import MetaLearner
from metalearn.model import Model

ap = argparse.ArgumentParser()
ap.add_argument("--iters", type=int, default=2000)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--save", help="write the meta-trained weights here (safetensors: --init, PyTorch)")
a = ap.parse_args()

tasks = metalearn.TaskFamily("sinusoid")              # A ~ U[0.1, 5], phase ~ U[0, pi]
model = Model("mlp:40,40", input_shape=(1, 1, 1), outputs=1, seed=1)
maml = MetaLearner(model, "maml", inner_lr=0.01, inner_steps=1, outer_lr=0.001, threads=a.threads)

train = tasks.tasks(shots=10, queries=10, n=a.iters * 25, seed=1)
for it in range(1, a.iters + 1):
    loss = maml.step([next(train) for _ in range(25)])  # 25 tasks per meta-batch
    if it % max(a.iters // 5, 1) == 0:
        print(f"iter {it:5d}  query loss after adaptation {loss:.3f}")

# A new task: adapt on 10 points, predict 100.
test = list(tasks.tasks(shots=10, queries=100, n=100, seed=12345))
for steps in (0, 1, 10):
    mse = np.mean([np.mean((maml.adapt_predict(t.xs, t.ys, t.xq, steps=steps) - t.yq) ** 2) for t in test])
    print(f"new tasks: MSE after {steps:2d} steps {mse:.3f}")
if a.save:
    maml.export().save(a.save)                    # theta under checkpoint names
    print(f"weights: {a.save}")
