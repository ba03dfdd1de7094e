"""A search through Python is the CLI's search: the same trials and scores,
the same best.json."""
import json
import subprocess

import pytest

import metalearn
from metalearn import _lib as L
from metalearn import search

pytestmark = pytest.mark.skipif(not L.HAVE_SEARCH, reason="libmetalearn without the search driver")

SPACE = {"base": {"algo": "maml", "task": "sinusoid", "model": "mlp:8", "meta-batch": 4},
         "space": {"inner-lr": {"log_uniform": [0.001, 0.1]}, "inner-steps": {"int": [1, 2]}}}
OPTS = dict(budget=3, min_iters=10, max_iters=30, eta=3, jobs=1, threads=1, val_tasks=10, seed=5)


def scores(folder):
    lines = [json.loads(x) for x in (folder / "trials.jsonl").read_text().splitlines()]
    return sorted((x["trial"], x["rung"], x["status"], x["score"]) for x in lines)


def run_or_skip(**kw):
    try:
        return search.run(**kw)
    except metalearn.Error as e:
        if "no trial runner" in str(e):  # a library without its in-process trial runner
            pytest.skip(str(e))
        raise


def test_python_search_is_the_clis(tmp_path, cli):
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in OPTS.items()]
    subprocess.run([cli, "search", "--space", str(tmp_path / "space.json"), "--out", str(tmp_path / "cli"),
                    *flags], check=True, capture_output=True)
    events = []
    got = run_or_skip(space_json=SPACE, out=tmp_path / "py", callback=events.append, **OPTS)
    assert scores(tmp_path / "py") == scores(tmp_path / "cli")
    assert (tmp_path / "py" / "best.json").read_text() == (tmp_path / "cli" / "best.json").read_text()
    assert got["metric"] == "mse" and got["best"]["settings"]
    assert {e["kind"] for e in events} >= {"started", "trial_done"}
    # A rerun replays the log and trains nothing.
    again = search.run(space_json=SPACE, out=tmp_path / "py", **OPTS)
    assert [r["score"] for r in again["results"]] == [r["score"] for r in got["results"]]


def test_bad_search_settings_raise(tmp_path):
    with pytest.raises(metalearn.Error, match="strategy|evolutio"):
        search.run(space_json=SPACE, out=tmp_path / "s", budget=2, strategy="evolutio")
    bad = dict(SPACE, space={"inner_lr": {"uniform": [0, 1]}})
    with pytest.raises(metalearn.Error, match="inner_lr"):
        search.run(space_json=bad, out=tmp_path / "s", budget=2)
    with pytest.raises(metalearn.Error, match="unknown option"):
        search.run(space_json=SPACE, out=tmp_path / "s", budget=2, budgett=3)


def test_ctrl_c_stops_the_search_and_the_same_call_continues(tmp_path):
    import os
    import signal
    whole = run_or_skip(space_json=SPACE, out=tmp_path / "whole", **OPTS)

    def interrupt_after_first_trial(e):
        if e["kind"] == "trial_done":
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C; the callback runs on the driver's thread

    with pytest.raises(KeyboardInterrupt):
        search.run(space_json=SPACE, out=tmp_path / "cut", callback=interrupt_after_first_trial, **OPTS)
    assert len(scores(tmp_path / "cut")) < len(scores(tmp_path / "whole"))
    again = search.run(space_json=SPACE, out=tmp_path / "cut", **OPTS)
    assert scores(tmp_path / "cut") == scores(tmp_path / "whole")
    assert [r["score"] for r in again["results"]] == [r["score"] for r in whole["results"]]
