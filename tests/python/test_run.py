"""The run through Python is the CLI's run: the same checkpoint bytes, the
same evaluation; Ctrl-C saves a checkpoint the run resumes from bit for bit."""
import json
import os
import signal
import subprocess

import pytest

import metalearn
from metalearn import Run, RunConfig
from metalearn import _lib as L

pytestmark = pytest.mark.skipif(not L.HAVE_RUN, reason="libmetalearn without the run API")

SINUSOID = dict(algo="maml", task="sinusoid", model="mlp:16,16", iters=60, meta_batch=5, log_every=20,
                checkpoint_every=1000, eval_tasks=20, eval_shots="5,10", threads=1, seed=3)


def flags(settings):
    out = []
    for k, v in settings.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def untimed(d):
    return {k: v for k, v in d.items() if "second" not in k and not k.endswith("_s")}


def cli_train(cli, out, settings, *extra):
    subprocess.run([cli, "train", *flags(settings), "--out", str(out), "--quiet", *extra], check=True,
                   capture_output=True)


def test_a_python_sinusoid_maml_run_writes_the_clis_checkpoint(tmp_path, cli):
    cli_train(cli, tmp_path / "cli", SINUSOID)
    seen = []
    with Run.new(RunConfig(**SINUSOID), out=str(tmp_path / "py")) as run:
        assert run.train(callback=lambda p: seen.append(p["iteration"])) == 60
        result = run.evaluate()
    assert seen == list(range(1, 61))
    ours, theirs = (tmp_path / d / "checkpoint.safetensors" for d in ("py", "cli"))
    assert ours.read_bytes() == theirs.read_bytes()
    cli_eval = json.loads((tmp_path / "cli" / "eval.json").read_text())
    assert untimed(result) == untimed(cli_eval)
    assert [json.loads(x)["loss"] for x in (tmp_path / "py" / "log.jsonl").read_text().splitlines()] == \
        [json.loads(x)["loss"] for x in (tmp_path / "cli" / "log.jsonl").read_text().splitlines()]


def test_ctrl_c_saves_a_checkpoint_and_resume_continues_bit_for_bit(tmp_path, cli):
    cli_train(cli, tmp_path / "cli", SINUSOID)

    def interrupt_at_25(p):
        if p["iteration"] == 25:
            os.kill(os.getpid(), signal.SIGINT)    # a real Ctrl-C, delivered to Python's handler

    run = Run.new(**SINUSOID, out=str(tmp_path / "py"))
    with pytest.raises(KeyboardInterrupt):
        run.train(callback=interrupt_at_25)
    it = run.iteration
    run.close()
    assert 25 <= it < 60
    ck = metalearn.safetensors.load(tmp_path / "py" / "checkpoint.safetensors", metadata=True)[1]
    assert str(it) in ck.values()
    with Run.resume(tmp_path / "py") as run:
        assert run.iteration == it
        run.train()
    assert (tmp_path / "py" / "checkpoint.safetensors").read_bytes() == \
        (tmp_path / "cli" / "checkpoint.safetensors").read_bytes()


def test_run_errors_raise(tmp_path):
    with pytest.raises(metalearn.Error, match="inner-rl"):
        Run.new(algo="maml", task="sinusoid", inner_rl=0.1, out=str(tmp_path / "x"))
    with pytest.raises(metalearn.Error, match="sinus"):
        Run.new(algo="maml", task="sinus", out=str(tmp_path / "x"))
    with pytest.raises(metalearn.Error, match="config.json"):
        Run.resume(tmp_path / "nothing")
    with pytest.raises(metalearn.Error):
        Run.open(tmp_path / "nothing")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "log.jsonl").write_text('{"iter": 1}\n')
    with pytest.raises(metalearn.Error, match="old"):           # a folder holding a run is refused
        Run.new(algo="maml", task="sinusoid", iters=1, out=str(tmp_path / "old"))


def test_b_protonet_omniglot_evaluation_is_the_clis(tmp_path, cli, omniglot):
    run = tmp_path / "proto"
    data = "omniglot:" + ",".join(str(z) for z in omniglot)
    cli_train(cli, run, dict(algo="protonet", dataset=data, model="cnn4:8", ways=5, shots=1, query=2, iters=3,
                             eval_tasks=4, eval_shots="1", threads=1))
    out = subprocess.run([cli, "eval", str(run), "--episodes", "30", "--shots", "1,5", "--json", "--quiet",
                          "--threads", "1"], check=True, capture_output=True, text=True).stdout
    theirs = json.loads(out.strip().splitlines()[-1])
    with Run.open(run, tasks=30, shots="1,5", threads=1) as r:
        ours = r.evaluate()
    assert untimed(ours) == untimed(theirs)
    assert "accuracy" in json.dumps(ours)
    # The trained embedding adapts to an episode: ProtoNet's class scores.
    from metalearn.learner import MetaLearner
    e = next(metalearn.ImageSet.omniglot(omniglot).episodes(5, 1, 2, 1, seed=9))
    assert MetaLearner.from_run(run).adapt_predict(e.xs, e.ys, e.xq).shape == (10, 5)


def test_a_federated_run_from_python_is_the_clis(tmp_path, cli):
    fed = dict(SINUSOID, algo="fomaml", iters=1, federated="true", clients=4, client_fraction=0.5, local_iters=2,
               rounds=5, log_every=1)
    cli_train(cli, tmp_path / "cli", {k: v for k, v in fed.items() if k != "federated"}, "--federated")
    with Run.new(RunConfig(**fed), out=str(tmp_path / "py")) as run:
        assert run.train() == 5
    assert (tmp_path / "py" / "checkpoint.safetensors").read_bytes() == \
        (tmp_path / "cli" / "checkpoint.safetensors").read_bytes()
    log = [json.loads(x) for x in (tmp_path / "py" / "log.jsonl").read_text().splitlines()]
    assert [x["clients"] for x in log] == [2] * 5
    with pytest.raises(metalearn.Error, match="--clients 0: federated training needs at least one client"):
        Run.new(RunConfig(**dict(fed, clients=0)), out=str(tmp_path / "bad"))


def test_continual_protocol_is_the_clis(tmp_path, cli):
    """Run.continual gives the numbers of `metalearn eval RUN --continual ... --json`."""
    settings = dict(algo="oml", task="sine-seq:4", model="mlp:16", shots=8, query=8, iters=3, eval_tasks=0,
                    threads=1, seed=2)
    cli_train(cli, tmp_path / "seq", settings)
    out = subprocess.run([cli, "eval", str(tmp_path / "seq"), "--continual", "2", "--continual-train", "5",
                          "--continual-orders", "3", "--json"], check=True, capture_output=True, text=True).stdout
    want = json.loads(out.strip().splitlines()[-1])
    saved = tmp_path / "seq" / "continual.json"
    cli_file = saved.read_bytes()  # the library saves it, for the CLI as for Python
    assert cli_file == (out.strip().splitlines()[-1] + "\n").encode()
    saved.unlink()
    with Run.open(tmp_path / "seq") as r:
        got = r.continual(counts=(2,), train=5, orders=3)
        assert got == want
        assert saved.read_bytes() == cli_file
        assert r.note == ""  # an OML run: no note
        with pytest.raises(metalearn.Error, match="5 functions asked"):
            r.continual(counts=(5,))
        assert saved.read_bytes() == cli_file  # a refused protocol leaves the saved result
