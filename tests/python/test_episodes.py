import numpy as np
import pytest

import metalearn


def test_sinusoid_tasks_are_seeded_and_follow_their_function():
    f = metalearn.TaskFamily("sinusoid")
    a = list(f.tasks(shots=5, queries=7, n=3, seed=11))
    b = list(f.tasks(shots=5, queries=7, n=3, seed=11))
    assert a[0].xs.shape == (5, 1) and a[0].yq.shape == (7,)
    for s, t in zip(a, b):
        np.testing.assert_array_equal(s.xs, t.xs)
    amp, phase = a[0].info
    assert 0.1 <= amp < 5 and 0 <= phase < np.pi
    np.testing.assert_allclose(a[0].ys, amp * np.sin(a[0].xs[:, 0] - phase), atol=1e-5)
    assert not np.array_equal(a[0].xs, a[1].xs)


def test_csv_tasks(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("task,split,x,y\na,support,1,2\na,query,3,4\na,query,5,6\nb,support,7,8\nb,query,9,10\n")
    f = metalearn.TaskFamily(f"csv:{p}")
    assert f.task_names == ["a", "b"] and f.in_dim == 1
    t = f.task(0)
    np.testing.assert_array_equal(t.xq[:, 0], [3, 5])
    assert t.name == "a"
    drawn = list(f.tasks(shots=1, queries=1, n=4, seed=0))
    assert {d.name for d in drawn} <= {"a", "b"}


def test_bad_task_specs_raise(tmp_path):
    with pytest.raises(metalearn.Error, match="unknown task family 'sinus'"):
        metalearn.TaskFamily("sinus")
    with pytest.raises(metalearn.Error, match="missing.csv"):
        metalearn.TaskFamily(f"csv:{tmp_path}/missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,support,1,nan_or_text\n")
    with pytest.raises(metalearn.Error, match="bad.csv"):
        metalearn.TaskFamily(f"csv:{bad}")
    f = metalearn.TaskFamily("sinusoid")
    with pytest.raises(metalearn.Error):
        next(f.tasks(shots=0, queries=5, n=1))


def test_omniglot_episodes(omniglot):
    s = metalearn.ImageSet.omniglot(omniglot)
    assert s.n_classes > 20 and len(s) == s.n_classes * 20 and s.size == 28
    eps = list(s.episodes(ways=5, shots=1, queries=3, n=2, seed=4, rotations=True))
    e = eps[0]
    assert e.xs.shape == (5, 1, 28, 28) and e.xq.shape == (15, 1, 28, 28)
    np.testing.assert_array_equal(e.ys, np.arange(5))
    np.testing.assert_array_equal(e.yq, np.repeat(np.arange(5), 3))
    assert len({c for c in e.classes}) == 5 and all(0 <= r < 4 for _, r in e.classes)
    again = next(s.episodes(ways=5, shots=1, queries=3, n=1, seed=4, rotations=True))
    np.testing.assert_array_equal(again.xq, e.xq)
    # Rotation 0 of the first class: the support image is one of its images.
    first = next(s.episodes(ways=1, shots=1, queries=0, n=1, seed=0, classes=[0]))
    imgs = s.images[s.labels == 0]
    assert any(np.array_equal(first.xs[0], im) for im in imgs)
    with pytest.raises(metalearn.Error, match="class"):
        next(s.episodes(ways=5, shots=19, queries=5, n=1))    # 24 images asked of classes with 20
    with pytest.raises(metalearn.Error, match="out of range"):
        next(s.episodes(ways=1, shots=1, queries=1, n=1, classes=[10**6]))


def test_image_folder_errors(tmp_path):
    with pytest.raises(metalearn.Error, match=str(tmp_path)):
        metalearn.ImageSet.folder(tmp_path)            # no PNG at all
    with pytest.raises(metalearn.Error):
        metalearn.ImageSet.omniglot([tmp_path / "none.zip"])
