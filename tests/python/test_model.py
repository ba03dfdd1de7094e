import numpy as np
import pytest

import metalearn
from metalearn.model import Model


def test_state_dict_names_and_round_trip(tmp_path):
    m = Model("mlp:40,40", (1, 1, 1), 1, seed=1)
    assert list(m.shapes) == [f"layers.{i}.{k}" for i in range(3) for k in ("weight", "bias")]
    assert m.shapes["layers.1.weight"] == (40, 40)
    m.save(tmp_path / "m.safetensors")
    other = Model("mlp:40,40", (1, 1, 1), 1, seed=2).load(tmp_path / "m.safetensors")
    x = np.linspace(-5, 5, 9, dtype=np.float32).reshape(9, 1)
    np.testing.assert_array_equal(other(x), m(x))


def test_wrong_shapes_and_names_raise():
    m = Model("cnn4:8", (1, 28, 28), 5)
    sd = m.state_dict()
    sd["head.weight"] = np.zeros((4, 8), np.float32)
    with pytest.raises(metalearn.Error, match=r"'head.weight' has shape \[4, 8\], expected \[5, 8\]"):
        m.load_state_dict(sd)
    sd = m.state_dict()
    del sd["blocks.2.bn.bias"]
    with pytest.raises(metalearn.Error, match="blocks.2.bn.bias' missing"):
        m.load_state_dict(sd)
    sd = dict(m.state_dict(), **{"optim.exp_avg": np.zeros(3, np.float32)})
    with pytest.raises(metalearn.Error, match="unexpected tensor 'optim.exp_avg'"):
        m.load_state_dict(sd)
    m.load_state_dict(sd, strict=False)
    with pytest.raises(metalearn.Error, match=r"expected \[N, 1, 28, 28\]"):
        m(np.zeros((2, 3, 28, 28)))
    with pytest.raises(metalearn.Error, match="model 'cnn9'"):
        Model("cnn9", (1, 28, 28), 5)
    with pytest.raises(metalearn.Error, match="input_shape"):
        Model("mlp", (0, 1, 1), 1)
