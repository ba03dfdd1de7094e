import json
import re
import subprocess
import sys

import numpy as np
import pytest

import metalearn
from conftest import REPO
from metalearn import _lib as L
from metalearn.learner import MetaLearner
from metalearn.model import Model


def test_maml_learns_sinusoids_and_adaptation_helps():
    f = metalearn.TaskFamily("sinusoid")
    maml = MetaLearner(Model("mlp:40,40", (1, 1, 1), 1, seed=1), "maml", inner_lr=0.01, outer_lr=0.001, threads=2)
    test = list(f.tasks(10, 50, 25, seed=7))
    before = maml.evaluate(test, 10)[0].mean(0)
    train = f.tasks(10, 10, 300 * 10, seed=1)
    for _ in range(300):
        maml.step([next(train) for _ in range(10)])
    after = maml.evaluate(test, 10)[0].mean(0)
    assert after[10] < after[0] and after[10] < before[10]
    t = test[0]
    y = maml.adapt_predict(t.xs, t.ys, t.xq, steps=10)
    assert y.shape == (50,)
    assert np.mean((y - t.yq) ** 2) == pytest.approx(maml.evaluate([t], 10)[0][0, 10], rel=1e-4)


def test_protonet_on_omniglot_episodes(omniglot):
    s = metalearn.ImageSet.omniglot(omniglot)
    net = MetaLearner(Model("cnn4:8", (1, 28, 28), 0), "protonet", outer_lr=0.001, max_batch=1)
    eps = list(s.episodes(5, 1, 3, 4, seed=1))
    loss, acc = net.evaluate(eps[:1], 0)
    assert 0 <= acc[0, 0] <= 1
    assert np.isfinite(net.step(eps[1:2]))
    scores = net.adapt_predict(eps[2].xs, eps[2].ys, eps[2].xq)
    assert scores.shape == (15, 5)


def test_bad_learner_input_raises():
    m = Model("mlp:8", (1, 1, 1), 1)
    with pytest.raises(metalearn.Error, match="unknown learner 'mamll'"):
        MetaLearner(m, "mamll")
    with pytest.raises(metalearn.Error, match="unknown optimizer"):
        MetaLearner(m, optimizer="adamm")
    with pytest.raises(metalearn.Error, match="protonet"):   # the library: metric learners classify only
        MetaLearner(m, "protonet", loss="mse")
    maml = MetaLearner(m, max_batch=2)
    t = next(metalearn.TaskFamily("linear:2").tasks(5, 5, 1))
    with pytest.raises(metalearn.Error, match="do not hold 5 examples of 1x1x1"):
        maml.step([t])
    with pytest.raises(metalearn.Error, match="3 tasks given"):
        maml.step([t] * 3)


def test_the_example_runs():
    out = subprocess.run([sys.executable, str(REPO / "examples/python/maml_sinusoid.py"), "--iters", "300"],
                         check=True, capture_output=True, text=True, env=_env()).stdout
    mse = {int(s): float(v) for s, v in re.findall(r"after\s+(\d+) steps ([\d.]+)", out)}
    assert mse[10] < mse[0], out


def _env():
    import os
    return dict(os.environ, PYTHONPATH=str(REPO / "python"))


@pytest.mark.parametrize("algo", ["maml", "metasgd", "anil"])
def test_from_run_predicts_what_metalearn_predict_prints(tmp_path, cli, algo):
    run = tmp_path / algo
    subprocess.run([cli, "train", "--algo", algo, "--task", "sinusoid", "--model", "mlp:16,16", "--iters", "30",
                    "--meta-batch", "4", "--eval-tasks", "2", "--out", str(run), "--threads", "1", "--quiet"],
                   check=True, capture_output=True)
    t = next(metalearn.TaskFamily("sinusoid").tasks(5, 7, 1, seed=3))
    np.savetxt(tmp_path / "s.csv", np.c_[t.xs, t.ys], delimiter=",", fmt="%.9g")
    np.savetxt(tmp_path / "q.csv", t.xq, delimiter=",", fmt="%.9g")
    out = subprocess.run([cli, "predict", str(run), "--support", str(tmp_path / "s.csv"), "--query",
                          str(tmp_path / "q.csv"), "--steps", "3", "--json", "--quiet"],
                         check=True, capture_output=True, text=True).stdout
    theirs = np.array(json.loads(out.strip().splitlines()[-1])["predictions"], np.float32)
    s, q = (np.loadtxt(tmp_path / f, delimiter=",", dtype=np.float32, ndmin=2) for f in ("s.csv", "q.csv"))
    ours = MetaLearner.from_run(run).adapt_predict(s[:, :1], s[:, 1], q, steps=3)
    np.testing.assert_array_equal(ours, theirs)
    if L.HAVE_RUN_PREDICT:  # the same through the run API
        with metalearn.Run.open(run, model_only=True) as r:
            np.testing.assert_array_equal(r.predict(s[:, :1], s[:, 1], q, steps=3), theirs)
