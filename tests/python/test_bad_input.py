"""Hostile but realistic calls (the round-12 audit): each must raise a Python
exception naming the argument, never crash, hang or answer something else,
and the objects must stay usable from several threads."""
import threading

import numpy as np
import pytest

import metalearn
from metalearn import rl, safetensors
from metalearn.learner import MetaLearner
from metalearn.model import Model


def _tiny_run(tmp_path):
    cfg = metalearn.RunConfig(algo="maml", task="sinusoid", model="mlp:8", iters=2, meta_batch=2, eval_tasks=2,
                              threads=1, quiet=True)
    return metalearn.Run.new(cfg, out=tmp_path / "run")


def test_a_closed_run_raises_instead_of_crashing(tmp_path):
    run = _tiny_run(tmp_path)
    run.train()
    run.close()
    run.close()  # twice is fine
    for call in (run.step, run.train, run.save, run.evaluate, lambda: run.info, lambda: run.iteration,
                 lambda: run.predict(np.zeros((5, 1)), np.zeros(5), np.zeros((3, 1)))):
        with pytest.raises(metalearn.Error, match="closed"):
            call()
    assert run.dir == tmp_path / "run"
    with metalearn.Run.open(tmp_path / "run", tasks=2) as again:  # the folder is intact
        assert again.iteration == 2


def _in_threads(fn, n=4):
    errors = []

    def guarded():
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
    ts = [threading.Thread(target=guarded) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []


def test_one_model_and_one_learner_from_several_threads():
    m = Model("cnn4:8", (1, 28, 28), 5)
    x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    ref = m(x)

    def forward():
        for _ in range(20):
            np.testing.assert_array_equal(m(x), ref)
    _in_threads(forward)
    ml = MetaLearner(Model("mlp:16", (1, 1, 1), 1), "maml", max_batch=4)
    tasks = list(metalearn.TaskFamily("sinusoid").tasks(5, 5, 4, seed=1))

    def learn():
        for _ in range(20):
            ml.step(tasks)
            ml.evaluate(tasks, 2)
            ml.adapt_predict(tasks[0].xs, tasks[0].ys, tasks[0].xq)
    _in_threads(learn)
    assert all(np.isfinite(v).all() for v in ml.export().state_dict().values())


def test_run_configs_in_threads_keep_their_own_settings():
    # The library's option table pointed into one config for every thread.
    def configure():
        for j in range(200):
            c = metalearn.RunConfig()
            v = 1 + threading.get_ident() % 1000 * 1000 + j
            c.set("iters", v)
            assert c.to_dict()["iters"] == v
    _in_threads(configure)


def test_integers_past_c_int_are_refused_not_wrapped():
    with pytest.raises(metalearn.Error, match="outputs = 4294967297"):
        Model("mlp:8", (1, 1, 1), 2**32 + 1)
    with pytest.raises(TypeError, match="outputs: expected an integer"):
        Model("mlp:8", (1, 1, 1), "5")
    f = metalearn.TaskFamily("sinusoid")
    with pytest.raises(metalearn.Error, match="shots = 4294967299"):
        next(f.tasks(2**32 + 3, 5, 1))  # was a task of 3 shots
    with pytest.raises(metalearn.Error, match="shots = 1000000000"):
        next(f.tasks(10**9, 5, 1))  # was gigabytes, then a hang
    m = Model("mlp:8", (1, 1, 1), 1)
    for kwargs, name in (({"max_batch": 10**9}, "max_batch"), ({"max_batch": 0}, "max_batch"),
                         ({"inner_steps": 2**32 + 1}, "inner_steps"), ({"threads": -3}, "threads")):
        with pytest.raises(metalearn.Error, match=name):
            MetaLearner(m, **kwargs)
    ml = MetaLearner(m)
    t = next(f.tasks(5, 5, 1))
    for steps in (-1, 10**8):
        with pytest.raises(metalearn.Error, match=f"steps = {steps}"):
            ml.evaluate([t], steps)
    with pytest.raises(TypeError, match="steps"):
        ml.evaluate([t], 2.5)
    with pytest.raises(metalearn.Error, match="hidden"):
        rl.MetaRL(hidden="64")  # was the policy (6, 4)
    with pytest.raises(metalearn.Error, match="hidden = 4294967300"):
        rl.MetaRL(hidden=(2**32 + 4,))
    with pytest.raises(metalearn.Error, match="tasks = -1"):
        rl.MetaRL(rollouts=2, meta_batch=2).evaluate(tasks=-1)
    assert ml.evaluate([t], 1)[0].shape == (1, 2)  # still usable


def test_episode_counts_and_classes_are_checked(omniglot):
    s = metalearn.ImageSet.omniglot(omniglot[:1])
    with pytest.raises(metalearn.Error, match="ways = 4294967301"):
        next(s.episodes(2**32 + 5, 1, 1, 1))  # read past the episode's 5 classes
    with pytest.raises(metalearn.Error, match="given twice"):
        next(s.episodes(5, 1, 1, 1, classes=[0, 0, 0, 0, 0]))  # five labels of one class
    with pytest.raises(metalearn.Error, match="neither a class index nor"):
        next(s.episodes(2, 1, 1, 1, classes=[(0, 1, 2), 1]))
    assert next(s.episodes(5.0, 1, 1, 1)).xs.shape == (5, 1, 28, 28)


def test_nan_inputs_and_fractional_labels_are_refused():
    m = Model("mlp:8", (1, 1, 1), 1)
    with pytest.raises(metalearn.Error, match="NaN or Inf"):
        m(np.array([[np.nan]]))  # ReLU made NaN into 0: a finite, wrong answer
    with pytest.raises(metalearn.Error, match="dtype object"):
        m(np.array([[None]], dtype=object))
    ml = MetaLearner(m)
    t = next(metalearn.TaskFamily("sinusoid").tasks(5, 5, 1))
    with pytest.raises(metalearn.Error, match="support inputs have NaN"):
        ml.step([t._replace(xs=np.full((5, 1), np.nan))])
    with pytest.raises(metalearn.Error, match="inner_lr = nan"):
        MetaLearner(m, inner_lr=float("nan"))
    c = MetaLearner(Model("mlp:8", (1, 1, 1), 5), "maml")
    task = type("T", (), dict(xs=np.zeros((5, 1)), ys=np.array([0, 1, 2, 3, 4.7]), xq=np.zeros((5, 1)),
                              yq=np.arange(5)))
    with pytest.raises(metalearn.Error, match="whole numbers"):  # was label 4
        c.step([task])
    with pytest.raises(TypeError, match="has no 'xs'"):
        c.step([(1, 2, 3, 4)])
    assert np.isfinite(ml.step([t]))


def test_a_huge_label_is_refused_before_its_scores_are_allocated():
    net = MetaLearner(Model("cnn4:8", (1, 28, 28), 0), "protonet", max_batch=1)
    x = np.zeros((5, 1, 28, 28), np.float32)
    with pytest.raises(metalearn.Error, match="label 2147483647 with 5 support examples"):
        net.adapt_predict(x, np.array([0, 1, 2, 3, 2**31 - 1]), x)  # was a 40 GiB array
    many = np.zeros((300, 1, 28, 28), np.float32)  # 300 support examples: the library's 256-class limit
    with pytest.raises(metalearn.Error, match="300 classes"):  # said 'label 0 outside [0, 300)'
        net.adapt_predict(many, np.arange(300), x)


def test_load_state_dict_is_all_or_nothing():
    m = Model("mlp:8", (1, 1, 1), 1)
    before = m.state_dict()
    sd = {k: v + 1 for k, v in before.items()}
    sd["layers.1.bias"] = np.zeros(3, np.float32)
    with pytest.raises(metalearn.Error, match="layers.1.bias' has shape"):
        m.load_state_dict(sd)
    for k, v in before.items():
        np.testing.assert_array_equal(m.state_dict()[k], v)  # was half loaded
    sd["layers.1.bias"] = np.zeros(1, complex)
    with pytest.raises(metalearn.Error, match="dtype complex128"):
        m.load_state_dict(sd)
    with pytest.raises(TypeError, match="takes a dict"):
        m.load_state_dict(list(before))


def test_rl_settings_are_checked_before_training():
    for kwargs, text in (({"inner_lr": float("nan")}, "inner_lr = nan"), ({"gamma": 2.0}, "gamma = 2"),
                         ({"cg_iters": 0}, "cg_iters = 0"), ({"rollouts": 10**9}, "rollouts = 1000000000")):
        with pytest.raises(metalearn.Error, match=text):
            rl.MetaRL(**kwargs)


def test_paths_and_settings_with_nul_are_refused(tmp_path):
    with pytest.raises(ValueError, match="null"):
        safetensors.save(str(tmp_path / "a\0b"), {"w": np.zeros(2, np.float32)})
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match="null"):
        metalearn.RunConfig(algo="maml\0x")


def test_search_arguments_are_checked_in_python(tmp_path):
    from metalearn import search
    base = {"base": {"algo": "maml", "task": "sinusoid"}}
    with pytest.raises(metalearn.Error, match="space_json: Out of range float"):  # was 'not valid JSON (line 1)'
        search.run(space_json=dict(base, space={"inner-lr": {"uniform": [float("nan"), 1]}}), out=tmp_path, budget=1)
    with pytest.raises(metalearn.Error, match="space_json: .*set"):
        search.run(space_json=dict(base, space={1, 2}), out=tmp_path, budget=1)
    with pytest.raises(ValueError, match="null"):
        search.run(space_json=dict(base, space={"inner-lr": {"uniform": [0.01, 1]}}), out=str(tmp_path) + "\0x",
                   budget=1)
