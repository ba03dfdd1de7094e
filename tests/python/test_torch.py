"""Weights written from PyTorch load into metalearn and give the same outputs,
and back (skipped without python3-torch)."""
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from metalearn import safetensors, torch_interop  # noqa: E402
from metalearn.model import Model  # noqa: E402

CASES = [("mlp:40,40", (1, 1, 1), 1, (16, 1)), ("cnn4:8", (1, 28, 28), 5, (10, 1, 28, 28)),
         ("cnn4:8", (1, 28, 28), 0, (10, 1, 28, 28))]  # a headless ProtoNet embedding


@pytest.mark.parametrize("spec,shape,outputs,xshape", CASES)
def test_metalearn_to_torch_and_back_same_outputs(tmp_path, spec, shape, outputs, xshape):
    x = np.random.default_rng(0).random(xshape, dtype=np.float32)
    m = Model(spec, shape, outputs, seed=5)
    module = torch_interop.to_torch(m)
    with torch.no_grad():
        yt = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(yt, m(x), atol=2e-5, rtol=1e-4)
    # PyTorch -> an --init file under metalearn's names -> metalearn: same outputs.
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(0.9).add_(0.01)
        yt = module(torch.from_numpy(x)).numpy()
    torch_interop.save_init(module, tmp_path / "init.safetensors")
    assert list(safetensors.load(tmp_path / "init.safetensors")) == list(m.shapes)
    m2 = Model(spec, shape, outputs, seed=6).load(tmp_path / "init.safetensors", strict=True)
    np.testing.assert_allclose(m2(x), yt, atol=2e-5, rtol=1e-4)


def test_checkpoint_tensors_that_are_not_parameters_are_skipped(tmp_path):
    m = Model("mlp:8", (1, 1, 1), 1)
    ck = dict(m.state_dict(), **{"optim.exp_avg": np.zeros(25, np.float32), "alpha.layers.0.weight":
                                 np.zeros((8, 1), np.float32)})
    safetensors.save(tmp_path / "ck.safetensors", ck)
    module = torch_interop.to_torch(tmp_path / "ck.safetensors")
    assert sorted(module.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    (tmp_path / "ck.safetensors").rename(tmp_path / "checkpoint.safetensors")   # a run folder
    assert sorted(torch_interop.to_torch(tmp_path).state_dict()) == sorted(module.state_dict())


def test_a_torch_init_file_is_what_train_starts_from(tmp_path, cli):
    """`train --init` from a PyTorch module: a run of one outer step at a rate
    of 1e-12 ends where it started, on the module's weights."""
    module = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
    torch_interop.save_init(module, tmp_path / "init.safetensors")
    run = tmp_path / "run"
    subprocess.run([cli, "train", "--algo", "maml", "--task", "sinusoid", "--model", "mlp:8", "--iters", "1",
                    "--meta-batch", "2", "--optimizer", "sgd", "--outer-lr", "1e-12", "--eval-tasks", "2", "--init",
                    str(tmp_path / "init.safetensors"), "--out", str(run), "--threads", "1"],
                   check=True, capture_output=True)
    ck = safetensors.load(run / "checkpoint.safetensors")
    for name, want in torch_interop.from_torch(module).items():
        np.testing.assert_allclose(ck[name], want, rtol=1e-6, atol=1e-9)


def test_foreign_modules_are_refused():
    from metalearn import Error
    with pytest.raises(Error, match="Dropout"):
        torch_interop.from_torch(nn.Sequential(nn.Linear(2, 2), nn.Dropout()))
    with pytest.raises(Error, match="no model parameters"):
        torch_interop.to_torch({"optim.step": np.zeros(1, np.float32)})


def test_a_cli_run_in_torch_predicts_what_metalearn_predict_prints(tmp_path, cli):
    run = tmp_path / "run"
    subprocess.run([cli, "train", "--algo", "maml", "--task", "sinusoid", "--model", "mlp:8", "--iters", "20",
                    "--meta-batch", "2", "--eval-tasks", "2", "--out", str(run), "--threads", "1"],
                   check=True, capture_output=True)
    (tmp_path / "s.csv").write_text("1,2\n2,3\n")
    x = np.array([0.5, -1.5, 3.0, 4.25], np.float32)
    (tmp_path / "q.csv").write_text("".join(f"{v}\n" for v in x))
    out = subprocess.run([cli, "predict", str(run), "--support", str(tmp_path / "s.csv"), "--query",
                          str(tmp_path / "q.csv"), "--steps", "0", "--quiet"],
                         check=True, capture_output=True, text=True).stdout.split()
    printed = np.array([float(line.split(",")[1]) for line in out[1:]])
    with torch.no_grad():
        y = torch_interop.to_torch(run)(torch.from_numpy(x[:, None])).numpy()[:, 0]
    np.testing.assert_allclose(y, printed, atol=2e-6)   # predict prints 9 significant digits


def test_a_torch_state_dict_round_trips_through_safetensors(tmp_path):
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 9, 3))
    sd = module.state_dict()  # BatchNorm's running statistics included; num_batches_tracked is an integer
    safetensors.save(tmp_path / "sd.safetensors", sd)
    back = {k: torch.from_numpy(v) for k, v in safetensors.load(tmp_path / "sd.safetensors").items()}
    assert list(back) == list(sd)
    for k in sd:
        assert torch.equal(back[k].to(sd[k].dtype), sd[k])
    fresh = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 9, 3))
    fresh.load_state_dict({k: v.to(sd[k].dtype) for k, v in back.items()}, strict=True)


def test_odd_inputs_are_refused_by_name_or_mapped():
    import metalearn
    to_torch, from_torch = torch_interop.to_torch, torch_interop.from_torch
    sd = {k: torch.tensor(v, requires_grad=True) for k, v in Model("mlp:8", (1, 1, 1), 1).state_dict().items()}
    assert isinstance(to_torch(sd), torch.nn.Sequential)  # was: can't call numpy() on a tensor that requires grad
    sd = Model("mlp:8", (1, 1, 1), 1).state_dict()
    sd["layers.0.weight"] = np.zeros(8, np.float32)
    with pytest.raises(metalearn.Error, match=r"'layers.0.weight' has shape \[8\], expected 2 dimensions"):
        to_torch(sd)  # was an IndexError
    with pytest.raises(TypeError, match="to_torch takes"):
        to_torch(None)
    with pytest.raises(TypeError, match="from_torch takes a torch.nn.Module"):
        from_torch(5)
    with pytest.raises(metalearn.Error, match="Conv2d that metalearn's cnn4 has not"):
        from_torch(torch.nn.Sequential(torch.nn.Conv2d(1, 8, 5), torch.nn.BatchNorm2d(8)))
    # no bias / no affine batch norm: the same function as zero bias and unit scale (was AttributeError)
    mod = torch.nn.Sequential(torch.nn.Linear(1, 8, bias=False), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    m = Model("mlp:8", (1, 1, 1), 1)
    m.load_state_dict(from_torch(mod))
    x = np.linspace(-1, 1, 5, dtype=np.float32).reshape(5, 1)
    np.testing.assert_allclose(m(x), mod(torch.from_numpy(x)).detach().numpy(), atol=1e-6)
    bn = from_torch(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4, affine=False)))
    np.testing.assert_array_equal(bn["blocks.0.bn.weight"], np.ones(4, np.float32))
