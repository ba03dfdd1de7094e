"""Meta-RL runs through the Python package: the same ml_run handle as every
other run (Run.new(env=...), Run.resume, Run.open), the same run folder as
`metalearn train --env`, a resume equal to the uninterrupted run, the
evaluation's rows, the random policy and the adaptation rate chosen on
validation tasks; train_rl / evaluate_rl are shorthands over Run."""
import json

import pytest

import metalearn
from metalearn import Run, RunConfig
from metalearn.run import evaluate_rl, train_rl

TINY = dict(env="nav2d", algo="maml", rollouts=3, horizon=8, meta_batch=2, threads=1, seed=4, quiet=True)


def test_train_resume_evaluate(tmp_path):
    seen = []
    train_rl(RunConfig(**TINY), out=tmp_path / "full", iters=4, callback=lambda p: seen.append(p["iteration"]))
    assert seen == [1, 2, 3, 4] and len((tmp_path / "full/log.jsonl").read_text().splitlines()) == 4
    train_rl(RunConfig(**TINY), out=tmp_path / "part", iters=4, stop_at=2)
    train_rl(resume=tmp_path / "part")
    assert (tmp_path / "part/checkpoint.safetensors").read_bytes() == (tmp_path / "full/checkpoint.safetensors").read_bytes()
    r = evaluate_rl(tmp_path / "full", steps=[0, 1], tasks=3)
    assert r["steps"] == [0, 1] and len(r["return"]) == 2 and all(c >= 0 for c in r["ci95"]) and r["tasks"] == 3
    assert r["eval_lr"] == pytest.approx(0.1)


def test_the_run_handle(tmp_path):
    with Run.new(RunConfig(**TINY), out=tmp_path / "r", iters=3, eval_tasks=3) as run:
        info = run.info
        assert info["algo"] == "maml" and info["n_params"] == 2 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2 + 2
        assert isinstance(run.step(), float) and run.iteration == 1
        run.train()
        assert run.iteration == 3
        ev = run.evaluate()  # a new run: eval.json
    assert ev["steps"] == [0, 1, 2, 3] and ev["tasks"] == 3
    assert json.loads((tmp_path / "r/eval.json").read_text()) == ev
    with Run.open(tmp_path / "r", steps="0,1", tasks=3, eval_lr=[0.01, 0.3]) as run:
        ev = run.evaluate()
        assert ev["eval_lr_grid"] == [0.01, 0.3] and ev["eval_lr"] in (0.01, 0.3) and len(ev["val_return"]) == 2
        with pytest.raises(metalearn.Error, match="opened for evaluation"):
            run.step()
    # the random policy: its initialisation, saved at iteration 0, evaluated like the others
    with Run.new(RunConfig(**TINY), algo="random", out=tmp_path / "rand", eval_tasks=3) as run:
        assert run.train() == 0
        with pytest.raises(metalearn.Error, match="nothing to train"):
            run.step()
        assert run.evaluate()["algo"] == "random"


def test_bad_settings(tmp_path):
    with pytest.raises(metalearn.Error, match="bandit:K: K must be"):
        train_rl(RunConfig(**TINY), env="bandit:0", out=tmp_path / "b", iters=1)
    with pytest.raises(metalearn.Error, match="--eval-lr"):
        evaluate_rl(train_rl(RunConfig(**TINY), out=tmp_path / "e", iters=1, eval_tasks=0), tasks=2, eval_lr="fast")
