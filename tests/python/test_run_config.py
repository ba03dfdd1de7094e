import json

import pytest

import metalearn
from metalearn import RunConfig


def test_defaults_and_settings_by_name_as_the_cli_has_them(tmp_path):
    c = RunConfig(algo="maml", task="sinusoid", inner_lr=0.02, iters=100, eval_shots=[5, 10], overwrite=True)
    assert c.inner_lr == pytest.approx(0.02) and c["iters"] == 100 and c.eval_shots == "5,10"
    assert c.overwrite is True and c.shots == 10 and c.resume is None
    names = [o[0] for o in RunConfig.options()]
    assert "inner-lr" in names and "meta-batch" in names
    c.resolve().save(tmp_path / "c.json")  # (unresolved, momentum is -1: "by algorithm")
    assert json.loads((tmp_path / "c.json").read_text())["inner-lr"] == pytest.approx(0.02)
    back = RunConfig(config=tmp_path / "c.json")
    assert back.to_dict() == c.to_dict()


def test_bad_settings_raise_the_librarys_messages(tmp_path):
    with pytest.raises(metalearn.Error, match=r"unknown option 'inner-rl' \(did you mean 'inner-lr'\?\)"):
        RunConfig(inner_rl=0.1)
    with pytest.raises(metalearn.Error, match="--iters: -1 is outside"):
        RunConfig(iters=-1)
    with pytest.raises(metalearn.Error, match="not a number"):
        RunConfig(outer_lr="fast")
    p = tmp_path / "bad.json"
    p.write_text('{"inner_rl": 1}')
    with pytest.raises(metalearn.Error, match="bad.json"):
        RunConfig(config=p)
    with pytest.raises(metalearn.Error, match="missing.json"):
        RunConfig(config=tmp_path / "missing.json")
