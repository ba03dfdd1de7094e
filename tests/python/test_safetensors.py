import numpy as np
import pytest

import metalearn
from metalearn import safetensors


def test_round_trip_keeps_names_order_shapes_and_metadata(tmp_path):
    t = {"z.first": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
         "a.second": np.float32(2.5),                        # rank 0
         "strided": np.arange(10, dtype=np.float64)[::3],    # converted and made contiguous
         "empty": np.zeros((0, 3), np.float32)}
    p = tmp_path / "t.safetensors"
    safetensors.save(p, t, {"algo": "maml", "iter": "7"})
    back, meta = safetensors.load(p, metadata=True)
    assert list(back) == list(t)
    for k in t:
        assert back[k].dtype == np.float32 and back[k].shape == np.shape(t[k])
        np.testing.assert_array_equal(back[k], np.asarray(t[k], np.float32))
    assert meta == {"algo": "maml", "iter": "7"}


def test_same_input_same_bytes(tmp_path):
    t = {"w": np.linspace(0, 1, 7, dtype=np.float32)}
    safetensors.save(tmp_path / "a", t)
    safetensors.save(tmp_path / "b", safetensors.load(tmp_path / "a"))
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_missing_file_raises_with_the_path(tmp_path):
    with pytest.raises(metalearn.Error, match="nope.safetensors"):
        safetensors.load(tmp_path / "nope.safetensors")


def test_corrupt_files_raise_not_crash(tmp_path):
    good = tmp_path / "good.safetensors"
    safetensors.save(good, {"w": np.ones((4, 4), np.float32)})
    b = good.read_bytes()
    cases = {"truncated": b[:len(b) - 5], "header": b[:8] + b"{not json" + b[17:],
             "huge_len": (10**12).to_bytes(8, "little") + b[8:], "empty": b""}
    for name, data in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(data)
        with pytest.raises(metalearn.Error, match=name):
            safetensors.load(p)


def test_bad_tensors_are_refused_before_writing(tmp_path):
    p = tmp_path / "x.safetensors"
    with pytest.raises(metalearn.Error, match="dimensions"):
        safetensors.save(p, {"w": np.zeros((1, 1, 1, 1, 1), np.float32)})
    with pytest.raises(metalearn.Error, match="dtype"):
        safetensors.save(p, {"w": np.array(["a"])})
    with pytest.raises(metalearn.Error):
        safetensors.save(p, {"": np.zeros(2, np.float32)})  # the library refuses an empty name
    assert not p.exists()
