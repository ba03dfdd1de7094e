"""Meta-RL runs through the Python package (metalearn.run.train_rl /
evaluate_rl, the library's ml_rl_run_*): the same run folder as `metalearn
train --env`, a resume equal to the uninterrupted run, the evaluation's rows."""
import pytest

import metalearn
from metalearn import RunConfig
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


def test_bad_settings_and_the_run_api(tmp_path):
    with pytest.raises(metalearn.Error, match="bandit:K: K must be"):
        train_rl(RunConfig(**TINY), env="bandit:0", out=tmp_path / "b", iters=1)
    with pytest.raises(metalearn.Error, match="a meta-RL run, opened with ml_rl_run_train"):
        metalearn.Run.new(RunConfig(**TINY), out=tmp_path / "r", iters=1)
