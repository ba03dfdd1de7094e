"""Few-shot episodes over image sets (Omniglot zips, folders of PNGs) and
regression tasks (sinusoid, linear[:D], csv:FILE), drawn by the library's
samplers (the same draws as the CLI for a seed) and returned as NumPy arrays."""
import ctypes as C
from collections import namedtuple

import numpy as np

from . import _lib as L

Episode = namedtuple("Episode", "xs ys xq yq classes")
Episode.__doc__ = """One N-way K-shot episode, class-major: xs [ways*shots, 1, S, S] float32,
ys [ways*shots] int32 in 0..ways-1, xq / yq the same for the queries, classes
[(class name, quarter turns)] for labels 0..ways-1."""
Task = namedtuple("Task", "xs ys xq yq info name")
Task.__doc__ = """One regression task: xs [k, D], ys [k], xq [q, D], yq [q] float32;
info the true parameters of a synthetic task (sinusoid: amplitude, phase),
name the CSV task's name (None for synthetic tasks)."""


def _copy(ptr, shape, dtype):
    n = int(np.prod(shape))
    if n == 0:
        return np.zeros(shape, dtype=dtype)
    return np.ctypeslib.as_array(ptr, shape=(n,)).astype(dtype, copy=True).reshape(shape)


def _rng(seed):
    r = L.Rng()
    L.lib.ml_rng_seed(C.byref(r), L.seed_arg("seed", seed))
    return r


MAX_IMAGE_SIZE = 4096  # ml_image_options.size, as the library bounds it (0: its default, 28)
MAX_POINTS = 100000    # shots / queries of a regression task: train's --shots / --query bound


class ImageSet:
    """Images decoded once into [n, 1, S, S] floats in [0, 1] (strokes high),
    grouped into classes. Build with ImageSet.omniglot(paths) or
    ImageSet.folder(dir)."""

    def __init__(self):
        self._s = L.ImageSet()

    @classmethod
    def omniglot(cls, paths, size=28):
        """Omniglot zips (or unpacked trees), e.g. images_background.zip."""
        if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__"):
            paths = [paths]
        enc = [L.path_arg(p) for p in paths]
        self, err = cls(), L.errbuf()
        opt = L.ImageOptions(size=L.int_arg("size", size, 0, MAX_IMAGE_SIZE))
        arr = (C.c_char_p * max(len(enc), 1))(*enc)
        L.check(L.lib.ml_omniglot_load(arr, len(enc), C.byref(opt), C.byref(self._s), err, L.ERRLEN), err)
        return self

    @classmethod
    def folder(cls, path, size=28):
        """DIR/class/NAME.png (labelled) or DIR/NAME.png (one unlabelled class)."""
        self, err = cls(), L.errbuf()
        opt = L.ImageOptions(size=L.int_arg("size", size, 0, MAX_IMAGE_SIZE))
        L.check(L.lib.ml_image_folder_load(L.path_arg(path), C.byref(opt), C.byref(self._s), err, L.ERRLEN), err)
        return self

    def __del__(self):
        if getattr(self, "_s", None) is not None:
            L.lib.ml_image_set_free(C.byref(self._s))

    def __len__(self):
        return self._s.n

    @property
    def size(self):
        return self._s.size

    @property
    def n_classes(self):
        return self._s.n_classes

    @property
    def class_names(self):
        return [self._s.class_names[i].decode() for i in range(self._s.n_classes)]

    @property
    def images(self):
        """A copy of every image: [n, 1, S, S] float32."""
        return _copy(self._s.x, (self._s.n, 1, self._s.size, self._s.size), np.float32)

    @property
    def labels(self):
        """The class of every image: [n] int32."""
        return _copy(self._s.y, (self._s.n,), np.int32)

    def _class_list(self, classes, rotations):
        lst = L.ClassList()
        if classes is None:
            L.check(L.lib.ml_class_list_all(C.byref(self._s), C.byref(lst)), what="class list")
        else:
            refs = self._class_refs(classes)
            # The library owns the list's memory (ml_class_list_free): copy a
            # full list of the set, then overwrite it with the chosen classes.
            L.check(L.lib.ml_class_list_all(C.byref(self._s), C.byref(lst)), what="class list")
            if len(refs) > lst.n:
                L.lib.ml_class_list_free(C.byref(lst))
                raise L.Error(f"{len(refs)} classes given, the set has {self._s.n_classes}")
            for i, (c, r) in enumerate(refs):
                lst.items[i].cls, lst.items[i].rot = c, r
            lst.n = len(refs)
        if rotations:
            out = L.ClassList()
            st = L.lib.ml_class_list_expand_rotations(C.byref(lst), C.byref(out))
            L.lib.ml_class_list_free(C.byref(lst))
            L.check(st, what="rotations")
            lst = out
        return lst

    def _class_refs(self, classes):
        """[(class, quarter turns)] from class indices or pairs, each in range
        and distinct (a class twice would be two labels of one class)."""
        refs = []
        for c in classes:
            pair = (c, 0) if np.ndim(c) == 0 else tuple(c)
            if len(pair) != 2:
                raise L.Error(f"classes: {c!r} is neither a class index nor a (class, quarter turns) pair")
            cls, rot = (L.int_arg("classes", v, -L.INT_MAX, L.INT_MAX) for v in pair)
            if not (0 <= cls < self._s.n_classes and 0 <= rot < 4):
                raise L.Error(f"class ({cls}, {rot}) out of range: {self._s.n_classes} classes, rotations 0..3")
            refs.append((cls, rot))
        if len(set(refs)) != len(refs):
            dup = next(r for r in refs if refs.count(r) > 1)
            raise L.Error(f"classes: class {dup} given twice (the classes of an episode are distinct)")
        return refs

    def episodes(self, ways, shots, queries, n, seed=0, classes=None, rotations=False):
        """Yields n episodes drawn with ml_episode_sample from `classes`
        (class indices or (class, quarter turns) pairs; None: every class;
        rotations=True adds the three rotated copies of each as classes)."""
        ways, shots = L.int_arg("ways", ways, 1), L.int_arg("shots", shots, 1)
        queries, n, rng = L.int_arg("queries", queries, 0), L.int_arg("n", n, 0, 2**63 - 1), _rng(seed)
        lst = self._class_list(classes, rotations)
        ep, err = L.Episode(), L.errbuf()
        try:
            L.check(L.lib.ml_episode_init(C.byref(ep), ways, shots, queries, self._s.size), what="episode")
            names = self.class_names
            S = self._s.size
            for _ in range(n):
                L.check(L.lib.ml_episode_sample(C.byref(ep), C.byref(self._s), C.byref(lst), None, C.byref(rng),
                                                err, L.ERRLEN), err)
                cls = [(names[ep.classes[k].cls], ep.classes[k].rot) for k in range(ways)]
                yield Episode(_copy(ep.xs, (ways * shots, 1, S, S), np.float32),
                              _copy(ep.ys, (ways * shots,), np.int32),
                              _copy(ep.xq, (ways * queries, 1, S, S), np.float32),
                              _copy(ep.yq, (ways * queries,), np.int32), cls)
        finally:
            L.lib.ml_episode_free(C.byref(ep))
            L.lib.ml_class_list_free(C.byref(lst))


class TaskFamily:
    """A regression task family by spec: "sinusoid", "linear", "linear:D" or
    "csv:FILE" (the --task values of `metalearn train`)."""

    def __init__(self, spec):
        self._f, err = L.TaskFamily(), L.errbuf()
        L.check(L.lib.ml_task_family_init(C.byref(self._f), str(spec).encode(), err, L.ERRLEN), err)
        self.spec = spec

    def __del__(self):
        if getattr(self, "_f", None) is not None:
            L.lib.ml_task_family_free(C.byref(self._f))

    @property
    def in_dim(self):
        return self._f.in_dim

    @property
    def task_names(self):
        """CSV families: the tasks' names in file order (else [])."""
        return [L.lib.ml_task_family_task_name(C.byref(self._f), i).decode() for i in range(self._f.n_tasks)]

    def _task(self, t):
        d = self._f.in_dim
        name = None
        if t.task_index >= 0:
            name = L.lib.ml_task_family_task_name(C.byref(self._f), t.task_index).decode()
        info = tuple(t.info[i] for i in range(L.lib.ml_task_family_n_info(C.byref(self._f))))
        return Task(_copy(t.xs, (t.k, d), np.float32), _copy(t.ys, (t.k,), np.float32),
                    _copy(t.xq, (t.q, d), np.float32), _copy(t.yq, (t.q,), np.float32), info, name)

    def _alloc(self, k, q):
        k, q = L.int_arg("shots", k, 0, MAX_POINTS), L.int_arg("queries", q, 0, MAX_POINTS)
        ms, mq = C.c_int(0), C.c_int(0)
        L.lib.ml_task_family_max_points(C.byref(self._f), C.byref(ms), C.byref(mq))
        kc, qc = (k if k > 0 else ms.value), (q if q > 0 else mq.value)
        if kc < 1 or qc < 1:
            raise L.Error(f"{self.spec}: shots {k} and queries {q} must be >= 1 (0 = all rows: CSV only)")
        t = L.RegressionTask()
        L.check(L.lib.ml_regression_task_alloc(C.byref(t), max(kc, ms.value), max(qc, mq.value), self._f.in_dim),
                what="task")
        return t, k, q

    def tasks(self, shots, queries, n, seed=0):
        """Yields n tasks drawn with ml_task_sample: `shots` support and
        `queries` query points (CSV: 0 = all of a task's rows)."""
        (t, shots, queries), err, rng = self._alloc(shots, queries), L.errbuf(), _rng(seed)
        n = L.int_arg("n", n, 0, 2**63 - 1)
        try:
            for _ in range(n):
                L.check(L.lib.ml_task_sample(C.byref(self._f), C.byref(rng), shots, queries, C.byref(t), err,
                                             L.ERRLEN), err)
                yield self._task(t)
        finally:
            L.lib.ml_regression_task_free(C.byref(t))

    def task(self, index, shots=0, queries=0):
        """CSV task `index` without randomness: its first rows (0 = all)."""
        (t, shots, queries), err = self._alloc(shots, queries), L.errbuf()
        try:
            index = L.int_arg("index", index, -L.INT_MAX, L.INT_MAX)  # the library names one out of range
            L.check(L.lib.ml_task_get_csv(C.byref(self._f), index, shots, queries, C.byref(t), err, L.ERRLEN), err)
            return self._task(t)
        finally:
            L.lib.ml_regression_task_free(C.byref(t))
