"""metalearn.rl: MAML-RL through the shared library (the C tests check the
algorithm; here the binding: settings, steps, evaluation, thread-count
invariance and checkpoints)."""
import numpy as np
import pytest

import metalearn
from metalearn.rl import MetaRL

TINY = dict(hidden=(8,), rollouts=4, horizon=12, meta_batch=3, cg_iters=4, ls_steps=6)


def test_steps_threads_and_resume(tmp_path):
    a = MetaRL(threads=1, **TINY)
    stats = [a.step() for _ in range(2)]
    assert stats[-1]["iter"] == 2 and stats[-1]["kl_after"] < 0.01
    b = MetaRL(threads=2, **TINY)
    b.step(), b.step()
    np.testing.assert_array_equal(a.params(), b.params())
    b.save(tmp_path / "rl.safetensors")
    c = MetaRL(threads=1, **TINY).load(tmp_path / "rl.safetensors")
    assert c.iteration == 2
    a.step(), c.step()
    np.testing.assert_array_equal(a.params(), c.params())
    r = a.evaluate(tasks=3, steps=2, seed=9)
    assert r.shape == (3, 3) and np.all(r < 0)


def test_bad_settings_raise():
    with pytest.raises(metalearn.Error, match="unknown environment"):
        MetaRL(env="cartpole")
    with pytest.raises(metalearn.Error, match="unknown setting 'iters'"):
        MetaRL(iters=3)
    with pytest.raises(metalearn.Error, match="algo 'reptile'"):
        MetaRL(algo="reptile")
